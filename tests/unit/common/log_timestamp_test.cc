// The time that starts every log line.
#include "common/log.h"

#include <boost/test/unit_test.hpp>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <string>

BOOST_AUTO_TEST_SUITE(LogTimestamps)

// What the C library says of the same time, as the log used to write it.
std::string fromGmtime(int64_t unixMillis) {
  const time_t seconds = static_cast<time_t>(unixMillis / 1000);
  struct tm tm;
  gmtime_r(&seconds, &tm);
  char ts[64];
  std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(unixMillis % 1000));
  return ts;
}

BOOST_AUTO_TEST_CASE(ALinesTimeIsTheUtcDateAndTimeToTheMillisecond) {
  using connectable::log::utcTimestamp;
  BOOST_TEST(utcTimestamp(0) == "1970-01-01T00:00:00.000Z");
  BOOST_TEST(utcTimestamp(951782400123) == "2000-02-29T00:00:00.123Z");      // a leap day of a 400th year
  BOOST_TEST(utcTimestamp(4107542399999) == "2100-02-28T23:59:59.999Z");     // no leap day in 2100
  BOOST_TEST(utcTimestamp(4107542400000) == "2100-03-01T00:00:00.000Z");
  BOOST_TEST(utcTimestamp(1796256000000) == "2026-12-03T00:00:00.000Z");
  BOOST_TEST(utcTimestamp(253402300799999) == "9999-12-31T23:59:59.999Z");
}

BOOST_AUTO_TEST_CASE(ALinesTimeAgreesWithTheCLibraryOverFourCenturies) {
  // Every day's last millisecond and a step through each day, from 1970 to 2370.
  for (int64_t day = 0; day < 146097; ++day) {
    for (int64_t ms : {day * 86400000, day * 86400000 + 86399999, day * 86400000 + (day * 7919 % 86400000)}) {
      const std::string ours = connectable::log::utcTimestamp(ms);
      if (ours != fromGmtime(ms)) {
        BOOST_TEST(ours == fromGmtime(ms), "at " << ms << " ms");
        return;
      }
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
