// scrapeShims against a farm of stand-in shims whose answers come 20 ms after they accepted.
#include "injector/shim_scrape.h"

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "common/event_loop.h"
#include "tests/support/loop_runner.h"
#include "tests/support/shim_farm.h"

using namespace connectable;
using namespace std::chrono_literals;
using connectable::testing::runUntil;
using connectable::testing::ShimFarm;

namespace {

std::string metricOf(size_t shim) { return "connectable_uptime_seconds " + std::to_string(shim) + "\n"; }

// Scrapes the farm's /metrics on `loop`, waiting up to 10 s for the result.
ShimScrapeResult scrape(EventLoop& loop, const ShimFarm& farm, const ShimScrapeLimits& limits) {
  bool done = false;
  ShimScrapeResult result;
  scrapeShims(loop, farm.sockets(), "/metrics", limits, [&](ShimScrapeResult r) {
    result = std::move(r);
    done = true;
  });
  BOOST_REQUIRE(runUntil(loop, [&] { return done; }, 10s));
  return result;
}

// The answers kept; each one left out must say it was over the budget, as `over` words it.
size_t keptUnder(const ShimScrapeResult& result, const std::string& over) {
  size_t kept = 0;
  for (const auto& r : result.replies) {
    if (r) ++kept;
    else BOOST_TEST(r.status().message().find(over) != std::string::npos, r.status().message());
  }
  return kept;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(ShimScrape)

BOOST_AUTO_TEST_CASE(AHundredShimsAreAskedAFewAtATimeAndAllAnswer) {
  ShimFarm farm(100, metricOf);
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  ShimScrapeLimits limits;
  limits.maxInFlight = 8;
  limits.timeout = 2000ms;
  ShimScrapeResult result = scrape(loop, farm, limits);
  BOOST_TEST(farm.mostOpenAtOnce() <= 8u);
  BOOST_TEST(farm.mostOpenAtOnce() >= 2u, "asked one at a time");
  BOOST_REQUIRE_EQUAL(result.replies.size(), 100u);
  for (size_t i = 0; i < 100; ++i) {
    BOOST_REQUIRE_MESSAGE(result.replies[i], "shim " << i << ": " << result.replies[i].status().message());
    BOOST_TEST(result.replies[i]->code == 200);
    BOOST_TEST(result.replies[i]->body == metricOf(i), "shim " << i);
  }
  BOOST_TEST(result.overBudget == 0u);
}

BOOST_AUTO_TEST_CASE(AnswersPastTheBudgetAreLeftOutAndCounted) {
  const std::string big(100 * 1024, '#');  // a comment line of 100 KiB
  ShimFarm farm(20, [&](size_t) { return big + "\n"; });
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  ShimScrapeLimits limits;
  limits.maxBytes = 1024 * 1024;  // room for ten of them
  ShimScrapeResult result = scrape(loop, farm, limits);
  BOOST_TEST(keptUnder(result, "over 1 MiB") == 10u);
  BOOST_TEST(result.overBudget == 10u);
}

BOOST_AUTO_TEST_CASE(AnswersStillComingCountAgainstTheBudget) {
  // Eight answers of 2 MiB coming side by side, and room for one: were only the answers
  // kept counted, all eight would be read to their end (16 MiB held) before seven were
  // dropped. They count as they come, so those that cannot fit are cut while they come.
  const std::string big(2 << 20, '#');
  ShimFarm farm(8, [&](size_t) { return big + "\n"; });
  farm.limitSendBuffer(4096);  // what the farm sent is what the scrape read, give or take 8 KiB
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  ShimScrapeLimits limits;
  limits.maxInFlight = 8;
  limits.maxBytes = 3 << 20;
  // 2 MiB through 4 KiB send buffers: a loaded machine (a sanitizer build, beside other
  // jobs) takes longer than the default 500 ms, which is not what this is about.
  limits.timeout = Millis(5000);
  ShimScrapeResult result = scrape(loop, farm, limits);
  BOOST_TEST(keptUnder(result, "over 3 MiB") == 1u);
  BOOST_TEST(result.overBudget == 7u);
  // Seven cut short; one of them may have been refused its very last piece, which from the
  // farm looks like an answer read to its end.
  BOOST_TEST(farm.cutShort() >= 6u, 7 - farm.cutShort() << " answers read to their end, then dropped");
}

BOOST_AUTO_TEST_CASE(SmallAnswersAreAskedForAllAtOnceUnderABudgetTheLargestWouldExceed) {
  // 32 answers of the most a shim may send (8 MiB) are four times the budget (64 MiB); the
  // few KiB shims answer are still asked for 32 at a time, not 8.
  ShimFarm farm(64, metricOf);
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  ShimScrapeResult result = scrape(loop, farm, ShimScrapeLimits{});
  BOOST_TEST(farm.mostOpenAtOnce() == 32u);
  for (size_t i = 0; i < 64; ++i)
    BOOST_TEST((result.replies[i] && result.replies[i]->body == metricOf(i)), "shim " << i);
}

BOOST_AUTO_TEST_CASE(PastTheDeadlineWhatCameIsTheAnswerAndTheRestCountsAsSilent) {
  // 40 shims that take 10 s each, 8 at a time, each given 1 s: without a deadline, 5 s.
  ShimFarm farm(40, metricOf, 10s);
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  ShimScrapeLimits limits;
  limits.maxInFlight = 8;
  limits.timeout = 1s;
  limits.deadline = 500ms;
  auto started = Clock::now();
  ShimScrapeResult result = scrape(loop, farm, limits);
  BOOST_TEST(std::chrono::duration_cast<Millis>(Clock::now() - started).count() < 2000);
  BOOST_REQUIRE_EQUAL(result.replies.size(), 40u);
  for (const auto& r : result.replies) {
    BOOST_TEST(!r);
    if (!r) BOOST_TEST(r.status().message() == "no answer within the scrape's deadline");
  }
  runUntil(loop, [] { return false; }, 1500ms);  // the asks still out time out, and ask no more
  BOOST_TEST(farm.asked() == 8u);
}

BOOST_AUTO_TEST_CASE(NoShimsIsAnAnswerToo) {
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  bool done = false;
  scrapeShims(loop, {}, "/metrics", ShimScrapeLimits{}, [&](ShimScrapeResult r) {
    BOOST_TEST(r.replies.empty());
    done = true;
  });
  BOOST_TEST(!done, "called back from inside the call");
  BOOST_TEST(runUntil(loop, [&] { return done; }, 2s));
}

BOOST_AUTO_TEST_SUITE_END()
