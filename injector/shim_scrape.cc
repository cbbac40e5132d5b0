#include "injector/shim_scrape.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "common/http_fetch.h"

namespace connectable {
namespace {

struct Scrape : std::enable_shared_from_this<Scrape> {
  EventLoop* loop = nullptr;
  std::vector<std::string> sockets;
  ShimScrapeLimits limits;
  std::function<void(ShimScrapeResult)> done;
  ShimScrapeResult result;
  size_t next = 0;      // the next socket to ask
  size_t inFlight = 0;
  size_t kept = 0;      // bytes of result.texts

  void launch() {
    while (inFlight < limits.maxInFlight && next < sockets.size()) {
      const size_t i = next++;
      ++inFlight;
      auto self = shared_from_this();
      fetchHttpUnix(*loop, sockets[i], "/metrics", limits.timeout,
                    [self, i](Result<HttpReply> reply) { self->finished(i, std::move(reply)); },
                    std::min(limits.maxReply, limits.maxBytes));
    }
  }

  void finished(size_t i, Result<HttpReply> reply) {
    --inFlight;
    if (reply && reply->code == 200) {
      if (kept + reply->body.size() <= limits.maxBytes) {
        kept += reply->body.size();
        result.texts[i] = std::move(reply->body);
      } else {
        ++result.overBudget;
      }
    }
    launch();
    if (inFlight == 0 && next == sockets.size()) done(std::move(result));
  }
};

}  // namespace

void scrapeShims(EventLoop& loop, std::vector<std::string> controlSockets, ShimScrapeLimits limits,
                 std::function<void(ShimScrapeResult)> done) {
  auto s = std::make_shared<Scrape>();
  s->loop = &loop;
  s->sockets = std::move(controlSockets);
  s->limits = limits;
  s->limits.maxInFlight = std::max<size_t>(1, limits.maxInFlight);
  s->done = std::move(done);
  s->result.texts.resize(s->sockets.size());
  if (s->sockets.empty()) {
    loop.defer([s] { s->done(std::move(s->result)); });
    return;
  }
  s->launch();
}

}  // namespace connectable
