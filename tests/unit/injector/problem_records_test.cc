// The problem records `connectable status` shows beside the shims, as the injector writes
// them and the status command reads them back.
#include "injector/problem_records.h"

#include <sys/stat.h>

#include <boost/test/unit_test.hpp>

#include <fstream>
#include <string>

#include "tests/support/process.h"

using namespace connectable;
using connectable::testing::tempDir;

namespace {

const std::string kId = "8f3c11155b1b2f0e6a7d4c3b2a19080706050403020100ffeeddccbbaa998877";

// A state dir with one record written by ProblemRecords, `from` in its text then made `to`.
std::string stateDirWithRecord(const std::string& from, const std::string& to) {
  std::string dir = tempDir();
  ProblemRecords problems(dir);
  BOOST_REQUIRE(problems.init());
  problems.set({kId, "app", {"ignored bad label: connect.0: '0' is out of range"}});
  const std::string path = dir + "/problems/" + kId + ".json";
  std::string text = connectable::testing::readFile(path);
  if (!from.empty()) {
    const size_t at = text.find(from);
    BOOST_REQUIRE(at != std::string::npos);
    text.replace(at, from.size(), to);
    std::ofstream(path, std::ios::trunc) << text;
  }
  return dir;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(ProblemRecordsRead)

BOOST_AUTO_TEST_CASE(ARecordIsReadBackAsItWasWritten) {
  auto records = readProblemRecords(stateDirWithRecord("", ""));
  BOOST_REQUIRE_EQUAL(records.size(), 1u);
  BOOST_TEST(records[0].containerId == kId);
  BOOST_TEST(records[0].containerName == "app");
  BOOST_REQUIRE_EQUAL(records[0].problems.size(), 1u);
  BOOST_TEST(records[0].problems[0] == "ignored bad label: connect.0: '0' is out of range");
}

BOOST_AUTO_TEST_CASE(ARecordWithTextBehindAByteTheJsonParserTakesForTheEndIsUnreadable) {
  // POCO's parser stops at a 0xff byte and would take the record before it as the whole.
  BOOST_TEST(readProblemRecords(stateDirWithRecord("]}", "]}\xff" "garbage")).empty());
}

BOOST_AUTO_TEST_CASE(ARecordThatIsNotUtf8IsUnreadable) {
  // The injector writes every record in UTF-8 (what is not becomes U+FFFD).
  BOOST_TEST(readProblemRecords(stateDirWithRecord("\"app\"", "\"a\xfe" "p\"")).empty());
}

BOOST_AUTO_TEST_SUITE_END()
