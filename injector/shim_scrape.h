// scrapeShims: asks many shims' control sockets for one path (/metrics, /status) without
// blocking the loop, within bounds that do not grow with the number of containers on the
// host: at most `maxInFlight` connections open at a time, at most `maxReply` bytes from one
// shim, and at most `maxBytes` of answers held in all, those still coming counted as they
// come. A host with a thousand shims is scraped with 32 sockets, not a thousand (nor past a
// soft limit of 1024 descriptors); one whose shims all answer the most they may costs
// 64 MiB, not gigabytes, while small answers are still asked for 32 at a time.
// Not thread-safe: runs on the loop's thread.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "common/event_loop.h"
#include "common/http_fetch.h"
#include "common/status.h"

namespace connectable {

struct ShimScrapeLimits {
  Millis timeout{500};             // for each shim, from its connect on
  // For the whole scrape (0: none): past it, `done` runs with what came, and the shims not
  // heard from yet count as not answering. A scraper waits only so long.
  Millis deadline{0};
  size_t maxInFlight = 32;
  size_t maxReply = size_t{8} << 20;
  size_t maxBytes = size_t{64} << 20;  // answers kept and answers coming, heads included
};

struct ShimScrapeResult {
  // One per socket, in order: the shim's answer, or why there is none (no answer in time,
  // a failure, or an answer that did not fit in what was left of maxBytes).
  std::vector<Result<HttpReply>> replies;
  size_t overBudget = 0;  // answers dropped or cut short because maxBytes was reached
};

// `done` runs once, from the loop, never from inside this call.
// REQUIRES: the loop runs until then.
void scrapeShims(EventLoop& loop, std::vector<std::string> controlSockets, const std::string& path,
                 ShimScrapeLimits limits, std::function<void(ShimScrapeResult)> done);

}  // namespace connectable
