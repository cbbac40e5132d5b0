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
