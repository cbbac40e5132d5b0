// scrapeShims: asks many shims' control sockets for their /metrics without blocking the loop,
// within bounds that do not grow with the number of containers on the host: at most
// `maxInFlight` connections open at a time, at most `maxReply` bytes from one shim, and at
// most `maxBytes` of answers kept in all. A host with a thousand shims is scraped with 32
// sockets, not a thousand; one whose shims all answer the most they may costs 64 MiB, not
// gigabytes. Not thread-safe: runs on the loop's thread.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "common/event_loop.h"

namespace connectable {

struct ShimScrapeLimits {
  Millis timeout{500};             // for each shim, from its connect on
  size_t maxInFlight = 32;
  size_t maxReply = size_t{8} << 20;
  size_t maxBytes = size_t{64} << 20;
};

struct ShimScrapeResult {
  // One per socket, in order: the shim's metrics text, or "" when it did not answer in
  // time, failed, or its answer did not fit in what was left of maxBytes.
  std::vector<std::string> texts;
  size_t overBudget = 0;  // answers dropped because maxBytes was reached
};

// `done` runs once, from the loop, never from inside this call.
// REQUIRES: the loop runs until then.
void scrapeShims(EventLoop& loop, std::vector<std::string> controlSockets, ShimScrapeLimits limits,
                 std::function<void(ShimScrapeResult)> done);

}  // namespace connectable
