// DockerCalls against a daemon that accepts and never answers.
#include "injector/docker_calls.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/event_loop.h"
#include "tests/support/process.h"
#include "tests/support/tcp_peers.h"

using namespace connectable;
using namespace std::chrono_literals;
using connectable::testing::tempDir;

namespace {

// Accepts every connection and keeps it open, silent, until destroyed.
class SilentDaemon {
 public:
  explicit SilentDaemon(const std::string& dir) : path_(dir + "/docker.sock") {
    fd_ = connectable::testing::listenUnix(path_);
    BOOST_REQUIRE(fd_ >= 0);
    thread_ = std::thread([this] {
      while (!done_) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 20) <= 0) continue;
        int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c >= 0) open_.push_back(c);
      }
    });
  }
  ~SilentDaemon() {
    done_ = true;
    thread_.join();
    for (int c : open_) ::close(c);
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  DockerEndpoint endpoint() const { return *parseDockerHost("unix://" + path_); }

 private:
  std::string path_;
  int fd_ = -1;
  std::atomic<bool> done_{false};
  std::vector<int> open_;
  std::thread thread_;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(DockerCallsShutdown)

BOOST_AUTO_TEST_CASE(DestroyingCutsARequestThatHasJustStarted) {
  // Review: ~DockerCalls interrupts when running_ != 0, but DockerConnection::get() clears
  // interrupted_ when it begins; an interrupt that lands between the worker taking the job
  // and get() starting is lost, and the join waits for the whole request (here its 1.5 s
  // read timeout; for ever with a daemon that trickles).
  SilentDaemon daemon(tempDir());
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  DockerCalls::Options options;
  options.client.requestTimeout = 1500ms;
  std::mt19937 random(42);
  int slow = 0;
  long worstMs = 0;
  for (int i = 0; i < 400 && slow == 0; ++i) {
    auto calls = std::make_unique<DockerCalls>(loop, daemon.endpoint(), options);
    BOOST_REQUIRE(calls->start());
    calls->negotiate([](Result<DockerCalls::Negotiated>) {});
    const auto spin = std::chrono::nanoseconds(random() % 80000);
    for (auto until = Clock::now() + spin; Clock::now() < until;) {
    }
    const auto before = Clock::now();
    calls.reset();
    const long ms = std::chrono::duration_cast<Millis>(Clock::now() - before).count();
    worstMs = std::max(worstMs, ms);
    if (ms > 1000) {
      ++slow;
      BOOST_TEST_MESSAGE("slow destructor at attempt " << i);
    }
  }
  BOOST_TEST(slow == 0, "a destructor waited " << worstMs << " ms for a request it should have cut");
}

BOOST_AUTO_TEST_SUITE_END()
