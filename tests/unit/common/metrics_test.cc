#include "common/metrics.h"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <ctime>

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
  merger.addFrom(shim, {{"container", "one"}});
  merger.addFrom(shim, {{"container", "t\"wo"}});
  BOOST_TEST(merger.text() ==
             "# HELP a_total A.\n# TYPE a_total counter\na_total{container=\"one\",port=\"1\"} 5\n"
             "a_total{container=\"t\\\"wo\",port=\"1\"} 5\n"
             "# HELP b B.\n# TYPE b gauge\nb{container=\"one\"} 2\nb{container=\"t\\\"wo\"} 2\n");
}

BOOST_AUTO_TEST_CASE(AShimsLabelNamedLikeOneWeAddIsKeptAsExported) {
  // Twice the same label name would make Prometheus refuse the scrape of every container.
  MetricsMerger merger;
  merger.addFrom("x{container=\"victim\",port=\"1\"} 1\n", {{"container", "evil"}});
  BOOST_TEST(merger.text() == "x{container=\"evil\",exported_container=\"victim\",port=\"1\"} 1\n");
  BOOST_TEST(merger.rejected() == 0u);
}

BOOST_AUTO_TEST_CASE(LinesOfAShimThatAreNotExpositionTextAreLeftOutAndTheRestKept) {
  const std::string bad[] = {
      "x{ 1",                       // label set never closed
      "x{a=\"b} 1",                 // value never closed
      "x{a=b} 1",                   // value not quoted
      "x{a=\"\\q\"} 1",             // an escape the format does not have
      "x{a=\"1\",a=\"2\"} 1",       // a label twice
      "x{a=\"\xff\"} 1",            // not UTF-8
      "x{a=\"\xed\xa0\x80\"} 1",    // a surrogate, not UTF-8 either
      "x{0a=\"1\"} 1",              // a label name starting with a digit
      "1x 1",                       // nor a metric name
      "x{a=\"1\"}1",                // no space before the value
      "x abc",                      // a value that is no number
      "x 1 2 3",                    // more than value and timestamp
      "x 1 1.5",                    // a timestamp that is no integer
      "x",                          // no value
      "# TYPE x nonsense",          // no such type
      "# TYPE x gauge extra",       // more than a type
      "# HELP 1x starts with a digit",
  };
  std::string text;
  for (const auto& line : bad) text += line + std::string("\n");
  text += "# HELP good_total Good.\n# TYPE good_total counter\ngood_total{a=\"x\\\\y\\\"z\\n\",} 3 1700000000000\n"
          "g 1e+20\ng -Inf\ng NaN\ng .5\ng -2.5E-3\ng{} 7\n";
  MetricsMerger merger;
  merger.addFrom(text, {{"container", "c"}});
  BOOST_TEST(merger.rejected() == std::size(bad));
  BOOST_TEST(merger.text() ==
             "# HELP good_total Good.\n# TYPE good_total counter\n"
             "good_total{container=\"c\",a=\"x\\\\y\\\"z\\n\"} 3 1700000000000\n"
             "g{container=\"c\"} 1e+20\ng{container=\"c\"} -Inf\ng{container=\"c\"} NaN\ng{container=\"c\"} .5\n"
             "g{container=\"c\"} -2.5E-3\ng{container=\"c\"} 7\n");
}

BOOST_AUTO_TEST_CASE(LinesOfAShimWithATerminalControlAreLeftOut) {
  // Whoever reads the injector's /metrics with curl reads them on a terminal; the format
  // escapes only backslash, quote and newline.
  const std::string bad[] = {
      "# HELP a_total \x1b]0;owned\x07 title",  // ESC ] sets the terminal's title
      "b{a=\"\x1b[2J\"} 1",                   // ESC [ clears the screen
      "c{a=\"\xc2\x9b" "2J\"} 1",          // the same as one C1 character, CSI
      "# HELP d_total \xe2\x80\xaegnp.exe",   // a right-to-left override
      "e{a=\"x\ry\"} 1",                      // a carriage return
      "f{a=\"\x7f\"} 1",                      // DEL
  };
  std::string text;
  for (const auto& line : bad) text += line + std::string("\n");
  text += "# HELP good_total Caf\xc3\xa9s servis.\ngood_total{a=\"\xc3\xa9\"} 3\n";
  MetricsMerger merger;
  merger.addFrom(text, {{"container", "c"}});
  BOOST_TEST(merger.rejected() == std::size(bad));
  BOOST_TEST(merger.text() == "# HELP good_total Caf\xc3\xa9s servis.\ngood_total{container=\"c\",a=\"\xc3\xa9\"} 3\n");
}

BOOST_AUTO_TEST_CASE(AShimCanNeitherAddToNorRedescribeOurOwnFamilies) {
  MetricsMerger merger;
  merger.addOwn("# HELP up_total Ours.\n# TYPE up_total counter\nup_total 1\n");
  merger.addFrom("# HELP up_total Theirs.\n# TYPE up_total gauge\nup_total 0\nup_total_bucket 0\n", {{"container", "c"}});
  BOOST_TEST(merger.text() == "# HELP up_total Ours.\n# TYPE up_total counter\nup_total 1\n");
  BOOST_TEST(merger.rejected() == 2u);
}

BOOST_AUTO_TEST_CASE(TheFirstShimToDescribeAFamilyDescribesItAndPartsStayWithTheirHistogram) {
  MetricsMerger merger;
  merger.addFrom("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 2\nh_count 1\nhx 5\n", {{"container", "a"}});
  merger.addFrom("# TYPE h gauge\nh_count 3\n", {{"container", "b"}});
  BOOST_TEST(merger.text() ==
             "# TYPE h histogram\nh_bucket{container=\"a\",le=\"+Inf\"} 1\nh_sum{container=\"a\"} 2\n"
             "h_count{container=\"a\"} 1\nh_count{container=\"b\"} 3\nhx{container=\"a\"} 5\n");
}

BOOST_AUTO_TEST_CASE(ASampleThatPrometheusWouldReadButNotStoreIsLeftOut) {
  // Each of these parses, but fails the whole scrape when Prometheus (or promtool) reads it.
  const std::string bad[] = {
      "x 1e400",                          // a value past the largest double
      "x 1 99999999999999999999",         // a timestamp past int64
      "x{__name__=\"y\"} 1",              // the name as a label: reserved, and then twice
      "h_bucket{le=\"many\"} 1",          // a bucket bound that is no number
      "s{quantile=\"half\"} 1",           // nor a quantile
  };
  std::string text;
  for (const auto& line : bad) text += line + std::string("\n");
  text += "x 1e-400\nx -9223372036854775808 0\nh_bucket{le=\"+Inf\"} 2\ns{quantile=\"0.5\"} 1\n";
  MetricsMerger merger;
  merger.addFrom(text, {{"container", "c"}});
  BOOST_TEST(merger.rejected() == std::size(bad));
  BOOST_TEST(merger.text() ==
             "x{container=\"c\"} 1e-400\nx{container=\"c\"} -9223372036854775808 0\n"
             "h_bucket{container=\"c\",le=\"+Inf\"} 2\ns{container=\"c\",quantile=\"0.5\"} 1\n");
}

BOOST_AUTO_TEST_CASE(ASamplesValueAndTimestampAreWrittenWithOneSpaceBeforeEach) {
  // promtool takes a blank after the value for the start of a timestamp that is not there.
  MetricsMerger merger;
  merger.addFrom("x 1 \ny\t2\t3\t\n", {{"container", "c"}});
  BOOST_TEST(merger.rejected() == 0u);
  BOOST_TEST(merger.text() == "x{container=\"c\"} 1\ny{container=\"c\"} 2 3\n");
}

BOOST_AUTO_TEST_CASE(AShimsTypeIsWrittenAsPrometheusReadsItAndAHelpWithAnEscapeItLacksIsLeftOut) {
  // Prometheus takes everything after the one blank behind the name for the type, so
  // "counter " or " counter" is no type and fails the scrape; promtool refuses "\x" in HELP.
  MetricsMerger merger;
  merger.addFrom("# TYPE a  counter\na 1\n# TYPE b\tgauge \t\nb 2\n# HELP c C\\x.\n# HELP c C\\\\x.\\n\nc 3\n",
                 {{"container", "c"}});
  BOOST_TEST(merger.rejected() == 1u);
  BOOST_TEST(merger.text() ==
             "# TYPE a counter\na{container=\"c\"} 1\n# TYPE b gauge\nb{container=\"c\"} 2\n"
             "# HELP c C\\\\x.\\n\nc{container=\"c\"} 3\n");
}

BOOST_AUTO_TEST_CASE(AShimCannotAddToOurHistogramByItsPartsAlone) {
  // Without a TYPE line before them they are no family described last, yet Prometheus
  // files them under ours.
  MetricsMerger merger;
  merger.addOwn("# TYPE lat histogram\nlat_bucket{le=\"+Inf\"} 1\nlat_sum 0.5\nlat_count 1\n");
  merger.addFrom("lat_bucket{le=\"+Inf\"} 9\nlat_sum 9\nlat_count 9\n# TYPE lat_count counter\n", {{"container", "c"}});
  BOOST_TEST(merger.text() == "# TYPE lat histogram\nlat_bucket{le=\"+Inf\"} 1\nlat_sum 0.5\nlat_count 1\n");
  BOOST_TEST(merger.rejected() == 4u);
}

BOOST_AUTO_TEST_CASE(NoShimDescribesAPartOfAnotherShimsHistogramAsAFamilyOfItsOwn) {
  // promtool takes "# TYPE h_bucket gauge" for a second TYPE line of the histogram h.
  MetricsMerger merger;
  merger.addFrom("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 2\nh_count 1\n", {{"container", "a"}});
  merger.addFrom("# HELP h_bucket B.\n# TYPE h_bucket gauge\nh_bucket 3\n# TYPE h_bucket_x gauge\nh_bucket_x 4\n",
                 {{"container", "b"}});
  BOOST_TEST(merger.rejected() == 2u);
  BOOST_TEST(merger.text() ==
             "# TYPE h histogram\nh_bucket{container=\"a\",le=\"+Inf\"} 1\nh_sum{container=\"a\"} 2\n"
             "h_count{container=\"a\"} 1\nh_bucket{container=\"b\"} 3\n# TYPE h_bucket_x gauge\nh_bucket_x{container=\"b\"} 4\n");
}

BOOST_AUTO_TEST_CASE(ASampleWithVeryManyLabelsIsMergedInTimeThatGrowsWithItsLengthNotItsSquare) {
  // An answer of 8 MiB may be one line of a million labels: checked pair by pair for one
  // given twice, that held the injector's loop (Docker events, every shim) for many minutes.
  // Measured as a ratio, in this thread's CPU time, not against a clock: an emulated CPU
  // (the kernel check's qemu) is ten times slower, and a busy machine stretches wall time.
  auto cpuSecondsToMerge = [](int labels) {
    std::string line = "x{";
    for (int i = 0; i < labels; ++i) line += "l" + std::to_string(i) + "=\"\",";
    line += "exported_container=\"\",container=\"\"} 1\n";
    MetricsMerger merger;
    timespec a{}, b{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
    merger.addFrom(line, {{"container", "c"}});
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
    BOOST_TEST(merger.rejected() == 1u);  // container becomes exported_container, which it has
    return static_cast<double>(b.tv_sec - a.tv_sec) + static_cast<double>(b.tv_nsec - a.tv_nsec) / 1e9;
  };
  double small = cpuSecondsToMerge(10000);
  for (int i = 0; i < 2; ++i) small = std::min(small, cpuSecondsToMerge(10000));
  const double large = cpuSecondsToMerge(100000);
  // Ten times the labels: about ten times the work when linear, a hundred times pair by pair.
  BOOST_TEST(large < 40 * std::max(small, 1e-4), "10,000 labels: " << small << " s, 100,000: " << large << " s");
}

BOOST_AUTO_TEST_CASE(WhatShimsAddIsBoundedOnceLabelledAndTheRestIsLeftOut) {
  // 8 MiB of the shortest samples is two million lines; each labelled with a container's
  // name and id is thirty times longer. Unbounded, one shim made the injector hold 1 GB.
  std::string flood;
  while (flood.size() < (size_t{8} << 20)) flood += "a 1\n";
  const MetricLabels who = {{"container", "c"}, {"container_id", std::string(64, 'f')}};
  MetricsMerger merger;
  merger.addOwn("# TYPE ours gauge\nours 1\n");
  merger.addFrom(flood, who);
  merger.addFrom("b 2\n", {{"container", "d"}});  // another shim's room is its own
  const std::string text = merger.text();
  BOOST_TEST(text.size() < (size_t{4} << 20));
  BOOST_TEST(text.size() > (size_t{1} << 20));
  BOOST_TEST(merger.cut() == 1u);
  BOOST_TEST(text.find("ours 1\n") != std::string::npos);
  BOOST_TEST(text.find("b{container=\"d\"} 2\n") != std::string::npos);

  // All of them together are bounded too.
  MetricsMerger::Limits limits;
  limits.fromAll = size_t{6} << 20;
  MetricsMerger all(limits);
  for (int i = 0; i < 3; ++i) all.addFrom(flood, {{"container", std::to_string(i)}});
  BOOST_TEST(all.text().size() < (size_t{6} << 20));
  BOOST_TEST(all.cut() == 3u);  // the first two each up to 4 MiB of its own, the third up to the rest
}

BOOST_AUTO_TEST_SUITE_END()
