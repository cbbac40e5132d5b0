#include "shim/health_probes.h"

#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <atomic>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/support/loop_runner.h"
#include "tests/support/tcp_peers.h"

using namespace connectable;
using namespace connectable::testing;
using namespace std::chrono_literals;

namespace {

std::vector<Target> targets(const std::vector<std::string>& texts) {
  std::vector<Target> out;
  for (const auto& t : texts) out.push_back(*parseTarget(t));
  return out;
}

long openFds() {
  return std::distance(std::filesystem::directory_iterator("/proc/self/fd"), std::filesystem::directory_iterator());
}

// A port's backends, balancer and probes on `loop`, with short penalties: 20 ms after a
// first failure, doubling up to 80 ms.
struct Port {
  Port(EventLoop& loop, const std::vector<std::string>& texts, Millis connectTimeout = 2000ms)
      : loop(loop), set(targets(texts)), probes(loop, set, balancer, connectTimeout, 6000) {}
  // A client's connect to `b` failed just now.
  void fail(const std::shared_ptr<Backend>& b) {
    balancer.recordFailure(*b, Clock::now(), Clock::now());
    probes.probeWhenPenaltyEnds(b);
  }
  bool runUntil(const std::function<bool()>& done, Millis timeout) { return testing::runUntil(loop, done, timeout); }

  EventLoop& loop;
  BackendSet set;
  Balancer balancer{BalancePolicy::RoundRobin, {20ms, 80ms}, 1};
  HealthProbes probes;
};

struct Loop {
  Loop() { BOOST_REQUIRE(loop.init()); }
  EventLoop loop;
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(HealthProbing, Loop)

BOOST_AUTO_TEST_CASE(AProbeAtThePenaltysEndPutsABackendThatAnswersBackInTurnWithoutSendingAByte) {
  std::atomic<long> bytes{0}, ended{0};
  TcpServer revived([&](int fd) {
    char buf[256];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) bytes += n;
    ++ended;
  });
  TcpServer healthy(holdHandler());
  Port port(loop, {revived.address(), healthy.address()});
  auto b = port.set.backends()[0];
  port.fail(b);
  // Not before the penalty's end, which is no reason to put it back in turn either.
  BOOST_TEST(!port.runUntil([&] { return revived.accepted() > 0; }, 10ms));
  BOOST_TEST(b->penalized());
  BOOST_TEST(b->probes == 0u);
  BOOST_REQUIRE(port.runUntil([&] { return !b->penalized(); }, 2s));
  BOOST_TEST(b->probes == 1u);
  BOOST_TEST(b->probeFailures == 0u);
  BOOST_TEST(b->consecutiveFailures == 0u);
  BOOST_TEST(port.probes.watched() == 0u);
  BOOST_TEST(!b->probing);
  BOOST_REQUIRE(port.runUntil([&] { return ended > 0; }, 2s));
  BOOST_TEST(revived.accepted() == 1);
  BOOST_TEST(bytes.load() == 0);
  // A backend that never failed is never probed.
  port.runUntil([] { return false; }, 100ms);
  BOOST_TEST(healthy.accepted() == 0);
  BOOST_TEST(port.set.backends()[1]->probes == 0u);
}

BOOST_AUTO_TEST_CASE(ARefusingBackendStaysPenalizedAndIsProbedAgainAtEachLongerPenaltysEnd) {
  ReservedPort dead;
  Port port(loop, {dead.address()});
  auto b = port.set.backends()[0];
  port.fail(b);
  // Each probe's failure, as polled every 5 ms: when, and the penalty it set.
  std::vector<std::pair<Clock::time_point, Clock::time_point>> failures{{b->lastFailure, b->penalizedUntil}};
  port.runUntil(
      [&] {
        if (b->lastFailure != failures.back().first) failures.emplace_back(b->lastFailure, b->penalizedUntil);
        return failures.size() >= 6;
      },
      3s);
  BOOST_REQUIRE(failures.size() >= 6u);
  for (size_t i = 1; i < failures.size(); ++i) {
    // Never before the penalty's end, and the penalty doubles up to its cap: 20, 40, 80, 80 ms.
    BOOST_TEST((failures[i].first >= failures[i - 1].second), "probe " << i << " came early");
    const Millis penalty = std::chrono::duration_cast<Millis>(failures[i].second - failures[i].first);
    BOOST_TEST(penalty.count() == std::min<long>(20L << i, 80L), "penalty after probe " << i);
  }
  BOOST_TEST(b->penalized());
  BOOST_TEST(b->probes >= 5u);
  BOOST_TEST(b->probeFailures == b->probes);
  BOOST_TEST(b->consecutiveFailures == b->probes + 1);
  BOOST_TEST(b->connectFailures == 1u);  // the client's only
  BOOST_TEST(port.probes.watched() == 1u);
}

BOOST_AUTO_TEST_CASE(AProbeThatGetsNoAnswerFailsAtTheConnectTimeoutAndShowsAsProbingMeanwhile) {
  SilentListener silent;
  Port port(loop, {silent.address()}, 150ms);
  auto b = port.set.backends()[0];
  port.fail(b);
  BOOST_REQUIRE(port.runUntil([&] { return b->probing; }, 2s));
  const auto probing = Clock::now();
  // Past its penalty, and still not in turn: nothing has reached it.
  BOOST_TEST(!b->penaltyRunning(Clock::now()));
  BOOST_TEST(b->penalized());
  BOOST_REQUIRE(port.runUntil([&] { return b->probeFailures == 1; }, 2s));
  BOOST_TEST(std::chrono::duration_cast<Millis>(Clock::now() - probing).count() >= 140);
  BOOST_TEST(!b->probing);
  BOOST_TEST(b->consecutiveFailures == 2u);
  BOOST_TEST(b->penaltyRunning(Clock::now()));
  BOOST_TEST(port.probes.watched() == 1u);  // the next waits for the new penalty's end
}

BOOST_AUTO_TEST_CASE(ABackendAConnectionReachesBeforeItsPenaltyEndsIsNotProbed) {
  TcpServer live(holdHandler());
  Port port(loop, {live.address()});
  auto b = port.set.backends()[0];
  port.fail(b);
  port.probes.answered(*b);  // a client that tried it last got through
  BOOST_TEST(!b->penalized());
  BOOST_TEST(port.probes.watched() == 0u);
  port.runUntil([] { return false; }, 150ms);
  BOOST_TEST(live.accepted() == 0);
  BOOST_TEST(b->probes == 0u);
}

BOOST_AUTO_TEST_CASE(ABackendADnsAnswerLeavesOutHasItsProbeInFlightDroppedAndItsSocketClosed) {
  SilentListener silent;
  Port port(loop, {"backend.example:6379"}, 5s);
  port.set.update(0, {{SocketAddress::loopbackV4(silent.port()), 0, 1, "backend.example"}});
  auto b = port.set.backends()[0];
  const long fds = openFds();
  port.fail(b);
  BOOST_REQUIRE(port.runUntil([&] { return b->probing; }, 2s));
  BOOST_TEST(openFds() == fds + 1);
  port.set.update(0, {});
  port.probes.dropGone();
  BOOST_TEST(!b->probing);
  BOOST_TEST(port.probes.watched() == 0u);
  port.runUntil([] { return false; }, 20ms);  // the probe itself is freed after the batch
  BOOST_TEST(openFds() == fds);
  BOOST_TEST(b.use_count() == 1);
}

BOOST_AUTO_TEST_CASE(ABackendLeftOutBeforeItsPenaltyEndsIsNotProbed) {
  // Its connection failed after the answer that left it out: dropGone had run already.
  TcpServer live(holdHandler());
  Port port(loop, {"backend.example:6379"});
  port.set.update(0, {{SocketAddress::loopbackV4(live.port()), 0, 1, "backend.example"}});
  auto b = port.set.backends()[0];
  port.set.update(0, {});
  port.fail(b);
  port.runUntil([] { return false; }, 150ms);
  BOOST_TEST(live.accepted() == 0);
  BOOST_TEST(b->probes == 0u);
  BOOST_TEST(port.probes.watched() == 0u);
}

BOOST_AUTO_TEST_CASE(ProbesEndedWithTheirPortCloseTheirSocketsAndCancelTheirTimers) {
  SilentListener silent;
  TcpServer live(holdHandler());
  const long fds = openFds();
  auto port = std::make_unique<Port>(loop, std::vector<std::string>{silent.address(), live.address()}, 5s);
  auto inFlight = port->set.backends()[0];
  auto scheduled = port->set.backends()[1];
  port->fail(inFlight);
  BOOST_REQUIRE(port->runUntil([&] { return inFlight->probing; }, 2s));
  port->balancer.recordFailure(*scheduled, Clock::now(), Clock::now());
  port->probes.probeWhenPenaltyEnds(scheduled);
  port.reset();
  BOOST_TEST(openFds() == fds);
  BOOST_TEST(!inFlight->probing);
  // A timer left behind would run into the freed probes here (and fail under ASan).
  testing::runUntil(loop, [] { return false; }, 150ms);
  BOOST_TEST(live.accepted() == 0);
  BOOST_TEST(scheduled->probes == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
