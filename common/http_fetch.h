// HttpFetch: one HTTP/1.0 GET to a UNIX-socket server (a shim's control socket), driven by
// the caller's event loop with a deadline and a bound on the answer's size, so a stuck or
// runaway shim costs the caller at most the timeout and never blocks its loop.
// Not thread-safe: runs on the loop's thread.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/event_loop.h"
#include "common/status.h"

namespace connectable {

struct HttpReply {
  int code = 0;
  std::string body;
};

using HttpFetchDone = std::function<void(Result<HttpReply>)>;

// Starts the request; `done` runs exactly once, from the loop (never from inside this call),
// with the reply or why there is none. The fetch frees itself afterwards.
// REQUIRES: the loop runs until `done` was called (at most `timeout` later).
void fetchHttpUnix(EventLoop& loop, const std::string& socketPath, const std::string& path, Millis timeout,
                   HttpFetchDone done, size_t maxReply = 8 << 20);

// The same, blocking: runs a private loop until the answer is there. For command-line use.
Result<HttpReply> fetchHttpUnixBlocking(const std::string& socketPath, const std::string& path, Millis timeout);

// Splits "HTTP/1.0 200 OK\r\n...\r\n\r\nbody". Pure function.
Result<HttpReply> parseHttpReply(const std::string& raw);

}  // namespace connectable
