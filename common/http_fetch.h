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
// Asked before the fetch keeps `bytes` more of the answer (head and body, as they come);
// false ends the fetch with an error. Lets fetches that run together share one bound.
using HttpFetchMayGrow = std::function<bool(size_t bytes)>;

// Starts the request; `done` runs exactly once, from the loop (never from inside this call),
// with the reply or why there is none. The fetch frees itself afterwards, and what it read
// is either the reply's body or freed before `done` runs.
// REQUIRES: the loop runs until `done` was called (at most `timeout` later).
void fetchHttpUnix(EventLoop& loop, const std::string& socketPath, const std::string& path, Millis timeout,
                   HttpFetchDone done, size_t maxReply = 8 << 20, HttpFetchMayGrow mayGrow = nullptr);

// The same, blocking: runs a private loop until the answer is there. For command-line use.
Result<HttpReply> fetchHttpUnixBlocking(const std::string& socketPath, const std::string& path, Millis timeout);

// Splits "HTTP/1.0 200 OK\r\n...\r\n\r\nbody". Pure function; a moved-in `raw` becomes the
// body in place, so an answer is never held twice.
Result<HttpReply> parseHttpReply(std::string raw);

}  // namespace connectable
