// scrapeShims against a farm of stand-in shims: UNIX sockets whose HTTP answers come a little
// later, served by one thread that counts how many connections are open at once.
#include "injector/shim_scrape.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "common/event_loop.h"
#include "tests/support/loop_runner.h"
#include "tests/support/process.h"
#include "tests/support/tcp_peers.h"

using namespace connectable;
using namespace std::chrono_literals;
using connectable::testing::runUntil;

namespace {

class ShimFarm {
 public:
  // Shim i answers body(i), 20 ms after it accepted the connection.
  ShimFarm(size_t count, std::function<std::string(size_t)> body) : body_(std::move(body)) {
    dir_ = connectable::testing::tempDir();
    for (size_t i = 0; i < count; ++i) {
      paths_.push_back(dir_ + "/shim" + std::to_string(i) + ".sock");
      int fd = connectable::testing::listenUnix(paths_.back(), 64);
      BOOST_REQUIRE(fd >= 0);
      listeners_.push_back(fd);
    }
    thread_ = std::thread([this] { serve(); });
  }
  ~ShimFarm() {
    done_ = true;
    thread_.join();
    for (int fd : listeners_) ::close(fd);
    for (const auto& p : paths_) ::unlink(p.c_str());
    ::rmdir(dir_.c_str());
  }
  const std::vector<std::string>& sockets() const { return paths_; }
  size_t mostOpenAtOnce() const { return mostOpen_; }
  size_t asked() const { return asked_; }

 private:
  struct Open {
    size_t shim;
    std::chrono::steady_clock::time_point answerAt;
  };
  void serve() {
    std::map<int, Open> open;
    while (!done_) {
      std::vector<pollfd> fds;
      for (int fd : listeners_) fds.push_back({fd, POLLIN, 0});
      ::poll(fds.data(), fds.size(), 2);
      for (size_t i = 0; i < listeners_.size(); ++i) {
        if (!(fds[i].revents & POLLIN)) continue;
        int c = ::accept4(listeners_[i], nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) continue;
        open[c] = Open{i, std::chrono::steady_clock::now() + 20ms};
        ++asked_;
        mostOpen_ = std::max(mostOpen_.load(), open.size());
      }
      auto now = std::chrono::steady_clock::now();
      for (auto it = open.begin(); it != open.end();) {
        if (now < it->second.answerAt) {
          ++it;
          continue;
        }
        // Read the request first: a UNIX socket closed with unread data resets its peer.
        char request[4096];
        [[maybe_unused]] ssize_t r = ::recv(it->first, request, sizeof request, MSG_DONTWAIT);
        std::string reply = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + body_(it->second.shim);
        [[maybe_unused]] ssize_t n = ::send(it->first, reply.data(), reply.size(), MSG_NOSIGNAL);
        ::close(it->first);
        it = open.erase(it);
      }
    }
    for (auto& [fd, o] : open) ::close(fd);
  }

  std::function<std::string(size_t)> body_;
  std::string dir_;
  std::vector<std::string> paths_;
  std::vector<int> listeners_;
  std::thread thread_;
  std::atomic<bool> done_{false};
  std::atomic<size_t> mostOpen_{0};
  std::atomic<size_t> asked_{0};
};

std::string metricOf(size_t shim) { return "connectable_uptime_seconds " + std::to_string(shim) + "\n"; }

}  // namespace

BOOST_AUTO_TEST_SUITE(ShimScrape)

BOOST_AUTO_TEST_CASE(AHundredShimsAreAskedAFewAtATimeAndAllAnswer) {
  ShimFarm farm(100, metricOf);
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  ShimScrapeLimits limits;
  limits.maxInFlight = 8;
  limits.timeout = 2000ms;
  bool done = false;
  ShimScrapeResult result;
  scrapeShims(loop, farm.sockets(), limits, [&](ShimScrapeResult r) {
    result = std::move(r);
    done = true;
  });
  BOOST_REQUIRE(runUntil(loop, [&] { return done; }, 10s));
  BOOST_TEST(farm.mostOpenAtOnce() <= 8u);
  BOOST_TEST(farm.mostOpenAtOnce() >= 2u, "asked one at a time");
  BOOST_REQUIRE_EQUAL(result.texts.size(), 100u);
  for (size_t i = 0; i < 100; ++i) BOOST_TEST(result.texts[i] == metricOf(i), "shim " << i);
  BOOST_TEST(result.overBudget == 0u);
}

BOOST_AUTO_TEST_CASE(AnswersPastTheBudgetAreLeftOutAndCounted) {
  const std::string big(100 * 1024, '#');  // a comment line of 100 KiB
  ShimFarm farm(20, [&](size_t) { return big + "\n"; });
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  ShimScrapeLimits limits;
  limits.maxBytes = 1024 * 1024;  // room for ten of them
  bool done = false;
  ShimScrapeResult result;
  scrapeShims(loop, farm.sockets(), limits, [&](ShimScrapeResult r) {
    result = std::move(r);
    done = true;
  });
  BOOST_REQUIRE(runUntil(loop, [&] { return done; }, 10s));
  size_t kept = 0;
  for (const auto& t : result.texts) kept += t.empty() ? 0 : 1;
  BOOST_TEST(kept == 10u);
  BOOST_TEST(result.overBudget == 10u);
}

BOOST_AUTO_TEST_CASE(NoShimsIsAnAnswerToo) {
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  bool done = false;
  scrapeShims(loop, {}, ShimScrapeLimits{}, [&](ShimScrapeResult r) {
    BOOST_TEST(r.texts.empty());
    done = true;
  });
  BOOST_TEST(!done, "called back from inside the call");
  BOOST_TEST(runUntil(loop, [&] { return done; }, 2s));
}

BOOST_AUTO_TEST_SUITE_END()
