#include "common/metrics.h"

#include <boost/test/unit_test.hpp>

using namespace connectable;

BOOST_AUTO_TEST_SUITE(Metrics)

BOOST_AUTO_TEST_CASE(LabelValuesAreEscaped) {
  BOOST_TEST(escapeLabelValue("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
  BOOST_TEST(formatLabels({{"container", "we\"ird"}, {"port", "80"}}) == "{container=\"we\\\"ird\",port=\"80\"}");
  BOOST_TEST(formatLabels({}) == "");
}

BOOST_AUTO_TEST_CASE(FamiliesHaveHelpAndTypeBeforeTheirSamples) {
  MetricsText m;
  m.family("connectable_x_total", "counter", "Things.\nMore");
  m.sample("connectable_x_total", {{"port", "1"}}, 18446744073709551615ull);
  BOOST_TEST(m.text() == "# HELP connectable_x_total Things.\\nMore\n# TYPE connectable_x_total counter\n"
                         "connectable_x_total{port=\"1\"} 18446744073709551615\n");
}

BOOST_AUTO_TEST_CASE(HistogramBucketsAreCumulative) {
  MetricsText m;
  m.family("h_seconds", "histogram", "H.");
  m.histogram("h_seconds", {}, {0.1, 1}, {2, 0, 1}, 3.5);
  BOOST_TEST(m.text().find("h_seconds_bucket{le=\"0.1\"} 2\nh_seconds_bucket{le=\"1\"} 2\n"
                           "h_seconds_bucket{le=\"+Inf\"} 3\nh_seconds_sum 3.5\nh_seconds_count 3\n") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(MergerGroupsFamiliesAndLabelsEverySample) {
  std::string shim = "# HELP a_total A.\n# TYPE a_total counter\na_total{port=\"1\"} 5\n"
                     "# HELP b B.\n# TYPE b gauge\nb 2\n";
  MetricsMerger merger;
  merger.add(shim, {{"container", "one"}});
  merger.add(shim, {{"container", "t\"wo"}});
  BOOST_TEST(merger.text() ==
             "# HELP a_total A.\n# TYPE a_total counter\na_total{container=\"one\",port=\"1\"} 5\n"
             "a_total{container=\"t\\\"wo\",port=\"1\"} 5\n"
             "# HELP b B.\n# TYPE b gauge\nb{container=\"one\"} 2\nb{container=\"t\\\"wo\"} 2\n");
}

BOOST_AUTO_TEST_SUITE_END()
