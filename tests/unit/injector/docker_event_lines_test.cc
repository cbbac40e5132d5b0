// How the event stream cuts Docker's /events body into lines, whatever the reads it comes in.
#include "injector/docker_event_lines.h"

#include <boost/test/unit_test.hpp>

#include <string>
#include <string_view>
#include <vector>

using connectable::DockerEventLine;
using connectable::DockerEventLines;

namespace {

struct Seen {
  DockerEventLine::Kind kind;
  std::string text;
  size_t bytes;
};

// Feeds `reads` one after the other, as the stream's reads would come.
std::vector<Seen> linesOf(DockerEventLines& lines, const std::vector<std::string>& reads) {
  std::vector<Seen> seen;
  for (const std::string& read : reads) {
    std::string_view input = read;
    while (!input.empty()) {
      if (auto line = lines.take(&input)) seen.push_back({line->kind, std::string(line->text), line->bytes});
    }
  }
  return seen;
}

std::vector<Seen> linesOf(const std::vector<std::string>& reads, size_t maxLineBytes = 100) {
  DockerEventLines lines(maxLineBytes);
  return linesOf(lines, reads);
}

constexpr auto kText = DockerEventLine::Kind::Text;
constexpr auto kBlank = DockerEventLine::Kind::Blank;
constexpr auto kOverlong = DockerEventLine::Kind::Overlong;

}  // namespace

BOOST_AUTO_TEST_SUITE(DockerEventLineSplitting)

BOOST_AUTO_TEST_CASE(EachLineComesWithoutItsNewlineAndWithTheBytesItTook) {
  auto seen = linesOf({"{\"a\":1}\n{\"b\":2}\n"});
  BOOST_REQUIRE_EQUAL(seen.size(), 2u);
  BOOST_TEST((seen[0].kind == kText));
  BOOST_TEST(seen[0].text == "{\"a\":1}");
  BOOST_TEST(seen[0].bytes == 8u);
  BOOST_TEST(seen[1].text == "{\"b\":2}");
}

BOOST_AUTO_TEST_CASE(ALineSplitAcrossReadsComesOutWhole) {
  auto seen = linesOf({"{\"a\"", ":1", "}\n{\"b", "\":2}\n"});
  BOOST_REQUIRE_EQUAL(seen.size(), 2u);
  BOOST_TEST(seen[0].text == "{\"a\":1}");
  BOOST_TEST(seen[1].text == "{\"b\":2}");
  BOOST_TEST(seen[1].bytes == 8u);
}

BOOST_AUTO_TEST_CASE(AReadOfOneNewlineEndsTheLineBeforeIt) {
  auto seen = linesOf({"{}", "\n", "\n"});
  BOOST_REQUIRE_EQUAL(seen.size(), 2u);
  BOOST_TEST(seen[0].text == "{}");
  BOOST_TEST((seen[1].kind == kBlank));
  BOOST_TEST(seen[1].bytes == 1u);
}

BOOST_AUTO_TEST_CASE(EmptyLinesAndLinesOfWhitespaceOrCarriageReturnsAreBlank) {
  auto seen = linesOf({"\n \t\n\r\n\r \r\n"});
  BOOST_REQUIRE_EQUAL(seen.size(), 4u);
  for (const auto& s : seen) BOOST_TEST((s.kind == kBlank));
  BOOST_TEST(seen[3].bytes == 4u);
}

BOOST_AUTO_TEST_CASE(ACarriageReturnBeforeTheNewlineStaysInTheLine) {
  // CRLF-ended lines (a proxy's doing) still parse: JSON reads the CR as whitespace.
  auto seen = linesOf({"{}\r\n"});
  BOOST_REQUIRE_EQUAL(seen.size(), 1u);
  BOOST_TEST((seen[0].kind == kText));
  BOOST_TEST(seen[0].text == "{}\r");
  BOOST_TEST(seen[0].bytes == 4u);
}

BOOST_AUTO_TEST_CASE(ACarriageReturnAloneDoesNotEndALine) {
  auto seen = linesOf({"{}\r{}\n"});
  BOOST_REQUIRE_EQUAL(seen.size(), 1u);
  BOOST_TEST(seen[0].text == "{}\r{}");
}

BOOST_AUTO_TEST_CASE(ALineOfExactlyTheLimitIsText) {
  auto seen = linesOf({std::string(10, 'x') + "\n"}, 10);
  BOOST_REQUIRE_EQUAL(seen.size(), 1u);
  BOOST_TEST((seen[0].kind == kText));
  BOOST_TEST(seen[0].text == std::string(10, 'x'));
}

BOOST_AUTO_TEST_CASE(ALineOverTheLimitIsOverlongAndTheNextLineComesWhole) {
  auto seen = linesOf({std::string(7, 'x'), std::string(4, 'x') + "\n{}\n"}, 10);
  BOOST_REQUIRE_EQUAL(seen.size(), 2u);
  BOOST_TEST((seen[0].kind == kOverlong));
  BOOST_TEST(seen[0].text.empty());
  BOOST_TEST(seen[0].bytes == 12u);
  BOOST_TEST((seen[1].kind == kText));
  BOOST_TEST(seen[1].text == "{}");
}

BOOST_AUTO_TEST_CASE(ABlankLineOverTheLimitIsOverlongToo) {
  auto seen = linesOf({std::string(11, ' ') + "\n"}, 10);
  BOOST_REQUIRE_EQUAL(seen.size(), 1u);
  BOOST_TEST((seen[0].kind == kOverlong));
}

BOOST_AUTO_TEST_CASE(ALineTheStreamCutsOffIsPendingNotHandedOn) {
  // The daemon closing mid-line: the line is not an event, and the stream can say it lost one.
  DockerEventLines lines(100);
  auto seen = linesOf(lines, {"{}\n{\"Type\":\"cont"});
  BOOST_REQUIRE_EQUAL(seen.size(), 1u);
  BOOST_TEST(lines.pendingBytes() == 13u);
}

BOOST_AUTO_TEST_CASE(NothingIsPendingRightAfterALineEnds) {
  DockerEventLines lines(100);
  (void)linesOf(lines, {"{}\n"});
  BOOST_TEST(lines.pendingBytes() == 0u);
  DockerEventLines overlong(1);
  (void)linesOf(overlong, {"{}", "{}"});
  BOOST_TEST(overlong.pendingBytes() == 4u);
}

BOOST_AUTO_TEST_CASE(TakeStopsAtTheEndOfTheFirstLine) {
  DockerEventLines lines(100);
  std::string_view input = "{}\n{\"b\":2}\n";
  auto line = lines.take(&input);
  BOOST_REQUIRE(line);
  BOOST_TEST(line->text == "{}");
  BOOST_TEST(input == "{\"b\":2}\n");
}

BOOST_AUTO_TEST_SUITE_END()
