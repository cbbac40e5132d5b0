#include "injector/shim_scrape.h"

#include <algorithm>
#include <memory>
#include <utility>


namespace connectable {
namespace {

struct Scrape : std::enable_shared_from_this<Scrape> {
  EventLoop* loop = nullptr;
  std::vector<std::string> sockets;
  std::string path;
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
      fetchHttpUnix(*loop, sockets[i], path, limits.timeout,
                    [self, i](Result<HttpReply> reply) { self->finished(i, std::move(reply)); },
                    std::min(limits.maxReply, limits.maxBytes));
    }
  }

  void finished(size_t i, Result<HttpReply> reply) {
    --inFlight;
    if (reply && kept + reply->body.size() > limits.maxBytes) {
      ++result.overBudget;
      reply = Status::error("answer left out: the shims' answers together are over " +
                            std::to_string(limits.maxBytes >> 20) + " MiB");
    }
    if (reply) kept += reply->body.size();
    result.replies[i] = std::move(reply);
    launch();
    if (inFlight == 0 && next == sockets.size()) done(std::move(result));
  }
};

}  // namespace

void scrapeShims(EventLoop& loop, std::vector<std::string> controlSockets, const std::string& path,
                 ShimScrapeLimits limits, std::function<void(ShimScrapeResult)> done) {
  auto s = std::make_shared<Scrape>();
  s->loop = &loop;
  s->sockets = std::move(controlSockets);
  s->path = path;
  s->limits = limits;
  s->limits.maxInFlight = std::max<size_t>(1, limits.maxInFlight);
  s->done = std::move(done);
  s->result.replies.resize(s->sockets.size(), Status::error("not asked"));
  if (s->sockets.empty()) {
    loop.defer([s] { s->done(std::move(s->result)); });
    return;
  }
  s->launch();
}

}  // namespace connectable
