#include "shim/balancer.h"

#include <boost/test/unit_test.hpp>
#include <map>
#include <set>

using namespace connectable;

namespace {

Balancer::BackendList makeBackends(int n, uint16_t priority = 0, uint16_t weight = 1, int firstOctet = 1) {
  Balancer::BackendList out;
  for (int i = 0; i < n; ++i) {
    auto b = std::make_shared<Backend>();
    b->address = *SocketAddress::parseIp("198.18.0." + std::to_string(firstOctet + i), 6379);
    b->priority = priority;
    b->weight = weight;
    out.push_back(b);
  }
  return out;
}

std::string first(const Balancer::BackendList& order) { return order.front()->address.ipString(); }

const Clock::time_point kNow = Clock::time_point() + std::chrono::hours(1);

// One priority group weighted 10, 90 and 0: 198.18.0.1, .2 and .3.
Balancer::BackendList weighted10And90And0() {
  auto backends = makeBackends(1, 0, 10, 1);
  auto more = makeBackends(1, 0, 90, 2);
  auto none = makeBackends(1, 0, 0, 3);
  backends.insert(backends.end(), more.begin(), more.end());
  backends.insert(backends.end(), none.begin(), none.end());
  return backends;
}

// How often each backend came first in 10,000 orders.
std::map<std::string, int> firstPicks(Balancer& balancer, const Balancer::BackendList& backends) {
  std::map<std::string, int> firsts;
  Balancer::BackendList order;
  for (int i = 0; i < 10000; ++i) {
    balancer.order(backends, &order);
    ++firsts[first(order)];
  }
  return firsts;
}

// As weighted10And90And0's are while idle: first nine times as often for weight 90 as for
// 10, and weight 0 a last resort (RFC 2782).
void checkFirstPicksFollowTheWeights(Balancer& balancer, const Balancer::BackendList& backends) {
  std::map<std::string, int> firsts = firstPicks(balancer, backends);
  BOOST_TEST(std::abs(firsts["198.18.0.1"] - 1000) < 200);
  BOOST_TEST(std::abs(firsts["198.18.0.2"] - 9000) < 200);
  BOOST_TEST(firsts["198.18.0.3"] < 40);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(BalancerOrder)

BOOST_AUTO_TEST_CASE(EveryBackendAppearsExactlyOnceInEveryPolicy) {
  for (auto policy : {BalancePolicy::Random, BalancePolicy::RoundRobin, BalancePolicy::LeastConn, BalancePolicy::PowerOfTwo}) {
    Balancer balancer(policy, {}, 42);
    auto backends = makeBackends(5);
    balancer.recordFailure(*backends[2], kNow, kNow);
    Balancer::BackendList order;
    for (int round = 0; round < 20; ++round) {
      balancer.order(backends, &order);
      std::set<Backend*> seen;
      for (auto& b : order) seen.insert(b.get());
      BOOST_TEST(order.size() == 5u);
      BOOST_TEST(seen.size() == 5u);
    }
  }
}

BOOST_AUTO_TEST_CASE(RandomShuffleReachesEveryBackendFirstAndEvenly) {
  Balancer balancer(BalancePolicy::Random, {}, 7);
  auto backends = makeBackends(4);
  std::map<std::string, int> firsts;
  Balancer::BackendList order;
  const int rounds = 8000;
  for (int i = 0; i < rounds; ++i) {
    balancer.order(backends, &order);
    ++firsts[first(order)];
  }
  BOOST_TEST(firsts.size() == 4u);
  for (auto& [ip, count] : firsts) BOOST_TEST(std::abs(count - rounds / 4) < rounds / 20, ip << " first " << count << " times");
}

BOOST_AUTO_TEST_CASE(RandomFollowsSrvWeightsWithinAPriorityGroup) {
  Balancer balancer(BalancePolicy::Random, {}, 11);
  auto backends = makeBackends(1, 0, 10, 1);
  auto more = makeBackends(1, 0, 30, 2);
  auto most = makeBackends(1, 0, 60, 3);
  backends.insert(backends.end(), more.begin(), more.end());
  backends.insert(backends.end(), most.begin(), most.end());
  std::map<std::string, int> firsts = firstPicks(balancer, backends);
  BOOST_TEST(std::abs(firsts["198.18.0.1"] - 1000) < 200);
  BOOST_TEST(std::abs(firsts["198.18.0.2"] - 3000) < 300);
  BOOST_TEST(std::abs(firsts["198.18.0.3"] - 6000) < 300);
}

BOOST_AUTO_TEST_CASE(RandomPicksEachNextBackendByTheWeightsOfThoseLeft) {
  // Weights 10, 30, 60: the second place goes to A with probability
  // 0.3 * 10/70 + 0.6 * 10/40 = 0.193, to B 0.1 * 30/90 + 0.6 * 30/40 = 0.483, to C 0.324.
  Balancer balancer(BalancePolicy::Random, {}, 13);
  auto backends = makeBackends(1, 0, 10, 1);
  auto more = makeBackends(1, 0, 30, 2);
  auto most = makeBackends(1, 0, 60, 3);
  backends.insert(backends.end(), more.begin(), more.end());
  backends.insert(backends.end(), most.begin(), most.end());
  std::map<std::string, int> seconds;
  Balancer::BackendList order;
  for (int i = 0; i < 10000; ++i) {
    balancer.order(backends, &order);
    ++seconds[order[1]->address.ipString()];
  }
  BOOST_TEST(std::abs(seconds["198.18.0.1"] - 1929) < 250);
  BOOST_TEST(std::abs(seconds["198.18.0.2"] - 4833) < 300);
  BOOST_TEST(std::abs(seconds["198.18.0.3"] - 3238) < 300);
}

BOOST_AUTO_TEST_CASE(AWeightZeroBackendComesLastAlmostAlways) {
  Balancer balancer(BalancePolicy::Random, {}, 17);
  auto backends = makeBackends(1, 0, 0, 1);
  auto other = makeBackends(1, 0, 1, 2);
  backends.insert(backends.end(), other.begin(), other.end());
  int zeroFirst = 0;
  Balancer::BackendList order;
  for (int i = 0; i < 10000; ++i) {
    balancer.order(backends, &order);
    zeroFirst += first(order) == "198.18.0.1";
  }
  BOOST_TEST(zeroFirst > 0);    // still reachable first now and then (RFC 2782)
  BOOST_TEST(zeroFirst < 40);   // about 1 in 1000
}

BOOST_AUTO_TEST_CASE(LowerPriorityGroupIsAlwaysTriedFirst) {
  for (auto policy : {BalancePolicy::Random, BalancePolicy::RoundRobin, BalancePolicy::LeastConn, BalancePolicy::PowerOfTwo}) {
    Balancer balancer(policy, {}, 3);
    auto backends = makeBackends(3, 20, 1, 10);
    auto preferred = makeBackends(2, 10, 1, 1);
    backends.insert(backends.end(), preferred.begin(), preferred.end());
    Balancer::BackendList order;
    for (int i = 0; i < 50; ++i) {
      balancer.order(backends, &order);
      BOOST_TEST(order[0]->priority == 10);
      BOOST_TEST(order[1]->priority == 10);
      BOOST_TEST(order[2]->priority == 20);
    }
  }
}

BOOST_AUTO_TEST_CASE(RoundRobinRotatesInAStableOrder) {
  Balancer balancer(BalancePolicy::RoundRobin, {}, 1);
  auto backends = makeBackends(3);
  Balancer::BackendList order;
  std::vector<std::string> firsts;
  for (int i = 0; i < 6; ++i) {
    balancer.order(backends, &order);
    firsts.push_back(first(order));
  }
  std::vector<std::string> expected = {"198.18.0.1", "198.18.0.2", "198.18.0.3",
                                       "198.18.0.1", "198.18.0.2", "198.18.0.3"};
  BOOST_TEST(firsts == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(LeastConnPicksTheLeastLoadedPerUnitOfWeight) {
  Balancer balancer(BalancePolicy::LeastConn, {}, 5);
  auto backends = makeBackends(3);
  backends[0]->active = 5;
  backends[1]->active = 1;
  backends[2]->active = 3;
  Balancer::BackendList order;
  balancer.order(backends, &order);
  BOOST_TEST(first(order) == "198.18.0.2");
  BOOST_TEST(order[1]->address.ipString() == "198.18.0.3");
  // Weight 4 with 3 active (0.75 each) beats weight 1 with 1 active.
  backends[2]->weight = 4;
  balancer.order(backends, &order);
  BOOST_TEST(first(order) == "198.18.0.3");
}

BOOST_AUTO_TEST_CASE(LeastConnBreaksTiesAtRandom) {
  Balancer balancer(BalancePolicy::LeastConn, {}, 9);
  auto backends = makeBackends(3);
  std::set<std::string> firsts;
  Balancer::BackendList order;
  for (int i = 0; i < 100; ++i) {
    balancer.order(backends, &order);
    firsts.insert(first(order));
  }
  BOOST_TEST(firsts.size() == 3u);
}

BOOST_AUTO_TEST_CASE(LeastConnFollowsSrvWeightsWhileTheBackendsAreEquallyLoaded) {
  // Short requests keep every backend at 0 active most of the time: the weights must still
  // decide, as "per unit of weight" says, and weight 0 is a last resort (RFC 2782).
  Balancer balancer(BalancePolicy::LeastConn, {}, 19);
  checkFirstPicksFollowTheWeights(balancer, weighted10And90And0());
}

BOOST_AUTO_TEST_CASE(PowerOfTwoNeverPicksTheBusierOfItsTwoChoices) {
  Balancer balancer(BalancePolicy::PowerOfTwo, {}, 13);
  auto backends = makeBackends(2);
  backends[0]->active = 10;
  backends[1]->active = 0;
  Balancer::BackendList order;
  for (int i = 0; i < 100; ++i) {
    balancer.order(backends, &order);
    BOOST_TEST(first(order) == "198.18.0.2");
  }
  // With three, the busiest is never first: it always loses its pairing.
  auto three = makeBackends(3);
  three[0]->active = 9;
  three[1]->active = 1;
  three[2]->active = 2;
  std::map<std::string, int> firsts;
  for (int i = 0; i < 3000; ++i) {
    balancer.order(three, &order);
    ++firsts[first(order)];
  }
  BOOST_TEST(firsts["198.18.0.1"] == 0);
  BOOST_TEST(firsts["198.18.0.2"] > firsts["198.18.0.3"]);
}

BOOST_AUTO_TEST_CASE(PowerOfTwoDrawsItsTwoChoicesBySrvWeight) {
  // As random does within a priority group (RFC 2782): weight 90 nine times as often as
  // weight 10 while both are idle, and weight 0 a last resort.
  Balancer balancer(BalancePolicy::PowerOfTwo, {}, 23);
  auto backends = weighted10And90And0();
  checkFirstPicksFollowTheWeights(balancer, backends);
  // Load is compared per unit of weight: 3 active on weight 90 is lighter than 1 on 10.
  backends[0]->active = 1;
  backends[1]->active = 3;
  int heavierFirst = 0;
  Balancer::BackendList order;
  for (int i = 0; i < 1000; ++i) {
    balancer.order(backends, &order);
    heavierFirst += first(order) == "198.18.0.1";
  }
  BOOST_TEST(heavierFirst == 0);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(PassiveHealth)

BOOST_AUTO_TEST_CASE(FailedBackendIsTriedLastUntilSomethingReachesItAgain) {
  // Not until its penalty ends: a backend that blackholes would then make the next client
  // wait the whole connect timeout. Its health probe, or a connection that tried it last,
  // puts it back in turn (recordSuccess).
  Balancer balancer(BalancePolicy::Random, {Millis(1000), Millis(30000)}, 21);
  auto backends = makeBackends(3);
  balancer.recordFailure(*backends[0], kNow, kNow);
  BOOST_TEST(backends[0]->penaltyRunning(kNow + Millis(999)));
  BOOST_TEST(!backends[0]->penaltyRunning(kNow + Millis(1000)));
  Balancer::BackendList order;
  int last = 0;
  for (int i = 0; i < 100; ++i) {
    balancer.order(backends, &order);
    last += order.back()->address.ipString() == "198.18.0.1";
  }
  BOOST_TEST(last == 100);
  balancer.recordSuccess(*backends[0]);
  std::set<std::string> firsts;
  for (int i = 0; i < 100; ++i) {
    balancer.order(backends, &order);
    firsts.insert(first(order));
  }
  BOOST_TEST(firsts.count("198.18.0.1") == 1u);
}

BOOST_AUTO_TEST_CASE(PenaltyDoublesWithEachFailureInARowUpToTheMaximum) {
  Balancer balancer(BalancePolicy::Random, {Millis(500), Millis(4000)}, 1);
  BOOST_TEST(balancer.penaltyFor(1).count() == 500);
  BOOST_TEST(balancer.penaltyFor(2).count() == 1000);
  BOOST_TEST(balancer.penaltyFor(3).count() == 2000);
  BOOST_TEST(balancer.penaltyFor(4).count() == 4000);
  BOOST_TEST(balancer.penaltyFor(20).count() == 4000);
  auto backends = makeBackends(1);
  balancer.recordFailure(*backends[0], kNow - Millis(20), kNow - Millis(10));
  balancer.recordFailure(*backends[0], kNow - Millis(5), kNow);  // tried after the first failed
  BOOST_TEST(backends[0]->consecutiveFailures == 2u);
  BOOST_TEST(backends[0]->connectFailures == 2u);
  BOOST_TEST((backends[0]->penalizedUntil == kNow + Millis(1000)));
}

BOOST_AUTO_TEST_CASE(ConnectsAlreadyUnderWayWhenOneFailedCountAsOneFailureInARow) {
  // A backend restarts: twenty connects that were in flight are refused together.
  Balancer balancer(BalancePolicy::Random, {Millis(1000), Millis(30000)}, 1);
  auto backends = makeBackends(1);
  Backend& b = *backends[0];
  for (int i = 0; i < 20; ++i) balancer.recordFailure(b, kNow - Millis(50 - i), kNow + Millis(i / 5));
  BOOST_TEST(b.connectFailures == 20u);
  BOOST_TEST(b.consecutiveFailures == 1u);
  // The penalty starts again from the last of them, at its first length.
  BOOST_TEST((b.penalizedUntil == kNow + Millis(3) + Millis(1000)));
  // A connect made once the failure was known, and failing too, is the next in a row.
  balancer.recordFailure(b, kNow + Millis(1500), kNow + Millis(1600));
  BOOST_TEST(b.consecutiveFailures == 2u);
  BOOST_TEST((b.penalizedUntil == kNow + Millis(1600) + Millis(2000)));
}

BOOST_AUTO_TEST_CASE(SuccessClearsThePenalty) {
  Balancer balancer(BalancePolicy::Random, {}, 1);
  auto backends = makeBackends(1);
  balancer.recordFailure(*backends[0], kNow, kNow);
  BOOST_TEST(backends[0]->penalized());
  balancer.recordSuccess(*backends[0]);
  BOOST_TEST(!backends[0]->penalized());
  BOOST_TEST(!backends[0]->penaltyRunning(kNow));
  BOOST_TEST(backends[0]->consecutiveFailures == 0u);
  BOOST_TEST(backends[0]->connectFailures == 1u);  // history stays for status
}

BOOST_AUTO_TEST_CASE(AProbesFailurePenalizesLikeAClientsWithoutCountingAsAClientsConnectFailure) {
  Balancer balancer(BalancePolicy::Random, {Millis(500), Millis(4000)}, 1);
  auto backends = makeBackends(1);
  Backend& b = *backends[0];
  balancer.recordFailure(b, kNow - Millis(20), kNow - Millis(10));
  balancer.penalize(b, kNow + Millis(490), kNow + Millis(500));  // the probe at its penalty's end
  BOOST_TEST(b.consecutiveFailures == 2u);
  BOOST_TEST((b.penalizedUntil == kNow + Millis(500) + Millis(1000)));
  BOOST_TEST(b.connectFailures == 1u);  // connect_failures stays the clients' count
}

BOOST_AUTO_TEST_CASE(PenalizedBackendsComeInOrderOfRecovery) {
  Balancer balancer(BalancePolicy::Random, {Millis(1000), Millis(30000)}, 2);
  auto backends = makeBackends(3);
  balancer.recordFailure(*backends[0], kNow - Millis(20), kNow - Millis(10));
  balancer.recordFailure(*backends[0], kNow - Millis(5), kNow);  // 2 s
  balancer.recordFailure(*backends[1], kNow, kNow);  // 1 s
  Balancer::BackendList order;
  balancer.order(backends, &order);
  BOOST_TEST(order[0]->address.ipString() == "198.18.0.3");
  BOOST_TEST(order[1]->address.ipString() == "198.18.0.2");
  BOOST_TEST(order[2]->address.ipString() == "198.18.0.1");
}

BOOST_AUTO_TEST_SUITE_END()
