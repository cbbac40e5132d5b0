#include "common/nearest_name.h"

#include <boost/test/unit_test.hpp>

using namespace connectable;

BOOST_AUTO_TEST_SUITE(NearestName)

BOOST_AUTO_TEST_CASE(EditDistanceCountsInsertionsDeletionsReplacementsAndSwapsOfNeighbours) {
  BOOST_TEST(editDistance("connect", "connect") == 0u);
  BOOST_TEST(editDistance("conect", "connect") == 1u);   // an insertion
  BOOST_TEST(editDistance("connects", "connect") == 1u); // a deletion
  BOOST_TEST(editDistance("connekt", "connect") == 1u);  // a replacement
  BOOST_TEST(editDistance("cnonect", "connect") == 1u);  // two neighbours swapped: one slip, not two
  BOOST_TEST(editDistance("", "dns") == 3u);
}

BOOST_AUTO_TEST_CASE(TheNearestNameWithinTheEditsAllowedIsTheGuessUnlessAnotherIsAsNear) {
  const std::vector<std::string> names = {"--exit-with-pid", "--exit-with-pidfd", "--state-dir", "--dns"};
  BOOST_TEST(nearestName("--statedir", names).value_or("") == "--state-dir");
  BOOST_TEST(nearestName("--exit-with-pidf", names).has_value() == false);  // one from each of two
  BOOST_TEST(nearestName("--frobnicate", names).has_value() == false);  // far from all
  BOOST_TEST(nearestName("--dns", names).has_value() == false);  // not mistyped
  BOOST_TEST(nearestName("--sdirs", {"--dir"}, 1).has_value() == false);  // two edits, one allowed
  BOOST_TEST(nearestName("--sdirs", {"--dir"}, 2).value_or("") == "--dir");
  BOOST_TEST(didYouMean("--dsn", names) == " (did you mean '--dns'?)");
  BOOST_TEST(didYouMean("--frobnicate", names) == "");
}

BOOST_AUTO_TEST_SUITE_END()
