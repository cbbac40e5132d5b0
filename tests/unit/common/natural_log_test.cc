#include "common/natural_log.h"

#include <boost/test/unit_test.hpp>
#include <cmath>
#include <random>

using connectable::naturalLog;

BOOST_AUTO_TEST_SUITE(NaturalLog)

BOOST_AUTO_TEST_CASE(AgreesWithLibmOverTheUnitIntervalAndBeyond) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  double worst = 0;
  for (int i = 0; i < 200000; ++i) {
    const double u = uniform(rng);
    for (double x : {u, 1.0 - u, u * 1e-12, u * 1e12, 1.0 + u}) {
      if (x <= 0) continue;
      const double want = std::log(x);
      const double error = want == 0 ? std::abs(naturalLog(x)) : std::abs(naturalLog(x) - want) / std::abs(want);
      worst = std::max(worst, error);
    }
  }
  BOOST_TEST(worst < 1e-14);
}

BOOST_AUTO_TEST_CASE(IsExactWhereTheAnswerIsKnown) {
  BOOST_TEST(naturalLog(1.0) == 0.0);
  BOOST_TEST(std::abs(naturalLog(0.5) + std::log(2.0)) < 1e-16);
  BOOST_TEST(std::abs(naturalLog(std::exp(1.0)) - 1.0) < 1e-15);
  BOOST_TEST(std::abs(naturalLog(1e-300) - std::log(1e-300)) < 1e-12);
  BOOST_TEST(std::abs(naturalLog(4.9e-324) - std::log(4.9e-324)) < 1e-12);  // the smallest subnormal
}

BOOST_AUTO_TEST_SUITE_END()
