#include "shim/proxy.h"

#include <boost/test/unit_test.hpp>

using namespace connectable;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_SUITE(PortLogThrottle)

BOOST_AUTO_TEST_CASE(TheFirstLineGoesOutThenOneASecondSayingHowManyWereHeldBack) {
  LogThrottle throttle;
  const Clock::time_point t0 = Clock::now();
  auto first = throttle.pass(t0);
  BOOST_REQUIRE(first.has_value());
  BOOST_TEST(*first == 0u);
  BOOST_TEST(!throttle.pass(t0 + 10ms).has_value());
  BOOST_TEST(!throttle.pass(t0 + 999ms).has_value());
  auto next = throttle.pass(t0 + 1s);
  BOOST_REQUIRE(next.has_value());
  BOOST_TEST(*next == 2u);
  auto after = throttle.pass(t0 + 5s);
  BOOST_REQUIRE(after.has_value());
  BOOST_TEST(*after == 0u, "the count starts again after each line");
}

BOOST_AUTO_TEST_SUITE_END()
