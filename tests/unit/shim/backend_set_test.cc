#include "shim/backend_set.h"

#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

using namespace connectable;

namespace {

std::vector<Target> targets(std::vector<std::string> texts) {
  std::vector<Target> out;
  for (const auto& t : texts) out.push_back(*parseTarget(t));
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(Backends)

BOOST_AUTO_TEST_CASE(AnAddressGivenTwiceIsOneBackend) {
  // Not a double share of the traffic, nor two metric series with the same labels.
  BackendSet set(targets({"198.18.0.5:6379", "198.18.0.6:6379", "198.18.0.5:6379"}));
  BOOST_REQUIRE_EQUAL(set.backends().size(), 2u);
  BOOST_TEST(set.backends()[0]->address.toString() == "198.18.0.5:6379");
  BOOST_TEST(set.backends()[1]->address.toString() == "198.18.0.6:6379");
}

BOOST_AUTO_TEST_CASE(AnIpv4MappedLiteralIsTheIpv4AddressItCarries) {
  // 127.0.0.1:1 and [::ffff:127.0.0.1]:1 made two backends: a double share of the traffic
  // and two rows in the status and the metrics for one address.
  BackendSet set(targets({"127.0.0.1:1", "[::ffff:127.0.0.1]:1"}));
  BOOST_REQUIRE_EQUAL(set.backends().size(), 1u);
  BOOST_TEST(set.backends()[0]->address.toString() == "127.0.0.1:1");
}

BOOST_AUTO_TEST_CASE(ADnsAnswerNamingAnAddressTwiceMakesOneBackend) {
  BackendSet set(targets({"redis.service.consul"}));
  const auto a = *SocketAddress::parseIp("198.18.0.5", 6379);
  set.update(0, {{a, 1, 10, "x.node.consul"}, {a, 2, 20, "y.node.consul"}});
  BOOST_REQUIRE_EQUAL(set.backends().size(), 1u);
  BOOST_TEST(set.backends()[0]->priority == 1);  // the first record for it
}

BOOST_AUTO_TEST_CASE(ADnsAnswerNoConnectionShouldGoToIsLeftOutAndSaysWhy) {
  // A DNS sinkhole answers 0.0.0.0 for a blocked name, and connect() takes 0.0.0.0 for the
  // local host: the shim would have proxied to whatever listens on that port there.
  BackendSet set(targets({"redis.service.consul", "mixed.service.consul"}));
  const auto any = *SocketAddress::parseIp("0.0.0.0", 6379);
  const auto any6 = *SocketAddress::parseIp("::", 6379);
  const auto multicast = *SocketAddress::parseIp("224.0.0.1", 6379);
  const auto good = *SocketAddress::parseIp("198.18.0.5", 6379);
  set.update(0, {{any, 0, 1, "a"}, {any6, 0, 1, "b"}});
  BOOST_TEST(set.backendsOf(0).empty());
  BOOST_TEST(set.problem(0) ==
             "its answer 0.0.0.0:6379,[::]:6379 was left out: 0.0.0.0 is the unspecified address, which Linux "
             "connects to the local host");
  // Beside a good address, the good one serves and the target is fine.
  set.update(1, {{multicast, 0, 1, "c"}, {good, 0, 1, "d"}});
  BOOST_REQUIRE_EQUAL(set.backendsOf(1).size(), 1u);
  BOOST_TEST(set.backendsOf(1)[0]->address.toString() == "198.18.0.5:6379");
  BOOST_TEST(set.problem(1) == "");
  BOOST_REQUIRE_EQUAL(set.backends().size(), 1u);
  // A DNS error stays the problem said.
  set.update(0, {{any, 0, 1, "a"}}, "every DNS server failed it", true);
  BOOST_TEST(set.problem(0) == "every DNS server failed it");
}

BOOST_AUTO_TEST_CASE(WhyATargetHasNoBackendsNamesItOnce) {
  BackendSet set(targets({"nosuch.service.consul", "nohost.node.consul:80", "other.service.consul"}));
  set.update(0, {}, "nosuch.service.consul: no such name (NXDOMAIN)", false);
  set.update(1, {}, "nohost.node.consul: no such name (NXDOMAIN)", false);
  set.update(2, {}, "every DNS server failed it", false);
  BOOST_TEST(set.problems() ==
             "nosuch.service.consul: no such name (NXDOMAIN); nohost.node.consul: no such name (NXDOMAIN); "
             "other.service.consul: every DNS server failed it");
}

BOOST_AUTO_TEST_CASE(ABackendKeepsItsCountersAcrossAnswersThatStillNameIt) {
  BackendSet set(targets({"redis.service.consul"}));
  const auto a = *SocketAddress::parseIp("198.18.0.5", 6379);
  set.update(0, {{a, 1, 10, "x.node.consul"}});
  auto first = set.backends()[0];
  first->connectFailures = 3;
  set.update(0, {{a, 1, 10, "x.node.consul"}, {*SocketAddress::parseIp("198.18.0.6", 6379), 1, 10, "y.node.consul"}});
  BOOST_REQUIRE_EQUAL(set.backends().size(), 2u);
  BOOST_TEST(set.backends()[0].get() == first.get());
  BOOST_TEST(set.backends()[0]->connectFailures == 3u);
}

BOOST_AUTO_TEST_CASE(AnAddressNamedByTwoTargetsIsInTheBetterPriorityOfThemAndKeepsItWhenOneLetsGo) {
  // A literal next to a DNS name that also lists it: one backend, in the group the literal
  // puts it in (priority 0), not in whichever target was answered last; and once the name
  // no longer lists it, the literal's priority and weight are all that is left.
  BackendSet set(targets({"198.18.0.5:6379", "redis.service.consul", "cache.service.consul"}));
  const auto a = *SocketAddress::parseIp("198.18.0.5", 6379);
  set.update(1, {{a, 10, 5, "x.node.consul"}});
  BOOST_REQUIRE_EQUAL(set.backends().size(), 1u);
  BOOST_TEST(set.backends()[0]->priority == 0);
  BOOST_TEST(set.backends()[0]->weight == 1);
  set.update(2, {{a, 0, 40, "y.node.consul"}});  // same priority: the first target's share stays
  BOOST_TEST(set.backends()[0]->priority == 0);
  BOOST_TEST(set.backends()[0]->weight == 1);
  set.update(1, {});
  set.update(2, {});
  BOOST_REQUIRE_EQUAL(set.backends().size(), 1u);
  BOOST_TEST(set.backends()[0]->priority == 0);
  BOOST_TEST(set.backends()[0]->weight == 1);
  BOOST_TEST(set.backends()[0]->target == "198.18.0.5:6379");

  // Two names listing one address in different groups: the better group, whatever the
  // order of their answers.
  BackendSet names(targets({"redis.service.consul", "cache.service.consul"}));
  names.update(0, {{a, 1, 10, "x.node.consul"}});
  names.update(1, {{a, 5, 10, "y.node.consul"}});
  BOOST_REQUIRE_EQUAL(names.backends().size(), 1u);
  BOOST_TEST(names.backends()[0]->priority == 1);
  names.update(0, {});
  BOOST_TEST(names.backends()[0]->priority == 5);
  BOOST_TEST(names.backends()[0]->target == "cache.service.consul");
}

BOOST_AUTO_TEST_SUITE_END()
