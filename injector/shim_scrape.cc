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
  size_t held = 0;              // bytes of the replies kept, and of those coming
  std::vector<size_t> reading;  // per socket: bytes of its answer come so far
  std::vector<bool> cut;        // per socket: its answer found no room left
  bool reported = false;  // done has run: later answers are dropped
  EventLoop::TimerId deadlineTimer = 0;

  void launch() {
    while (!reported && inFlight < limits.maxInFlight && next < sockets.size()) {
      const size_t i = next++;
      ++inFlight;
      auto self = shared_from_this();
      fetchHttpUnix(*loop, sockets[i], path, limits.timeout,
                    [self, i](Result<HttpReply> reply) { self->finished(i, std::move(reply)); },
                    std::min(limits.maxReply, limits.maxBytes),
                    [self, i](size_t bytes) { return self->mayGrow(i, bytes); });
    }
  }

  // Answers count as they come: 32 of them coming at once hold memory before any is kept.
  bool mayGrow(size_t i, size_t bytes) {
    if (reported) return false;  // nobody wants them any more
    if (held + bytes > limits.maxBytes) {
      cut[i] = true;
      return false;
    }
    held += bytes;
    reading[i] += bytes;
    return true;
  }

  void finished(size_t i, Result<HttpReply> reply) {
    --inFlight;
    held -= reading[i];  // what came is now the body, or freed
    reading[i] = 0;
    if (reported) return;
    if (cut[i]) {
      ++result.overBudget;
      reply = Status::error("answer left out: the shims' answers together are over " +
                            std::to_string(limits.maxBytes >> 20) + " MiB");
    }
    if (reply) held += reply->body.size();
    result.replies[i] = std::move(reply);
    launch();
    if (inFlight == 0 && next == sockets.size()) report();
  }

  void report() {
    reported = true;
    if (deadlineTimer) loop->cancelTimer(deadlineTimer);
    deadlineTimer = 0;
    done(std::move(result));
  }

  void deadlinePassed() {
    deadlineTimer = 0;
    for (auto& r : result.replies)
      if (!r && r.status().message() == kNotYet) r = Status::error("no answer within the scrape's deadline");
    report();
  }

  static constexpr const char* kNotYet = "not asked";
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
  s->result.replies.resize(s->sockets.size(), Status::error(Scrape::kNotYet));
  s->reading.resize(s->sockets.size());
  s->cut.resize(s->sockets.size());
  if (s->sockets.empty()) {
    loop.defer([s] { s->done(std::move(s->result)); });
    return;
  }
  if (limits.deadline.count() > 0) {
    std::weak_ptr<Scrape> weak = s;
    s->deadlineTimer = loop.addTimer(limits.deadline, [weak] {
      if (auto alive = weak.lock()) alive->deadlinePassed();
    });
  }
  s->launch();
}

}  // namespace connectable
