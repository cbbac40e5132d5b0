#include "common/log.h"

#include <Poco/JSON/Parser.h>

#include <boost/test/unit_test.hpp>
#include <string>

using connectable::log::jsonEscape;

namespace {

// What a JSON parser reads back from the escaped text, as a JSON string.
std::string readBack(const std::string& escaped) {
  Poco::JSON::Parser parser;
  return parser.parse("{\"v\":\"" + escaped + "\"}").extract<Poco::JSON::Object::Ptr>()->getValue<std::string>("v");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(LogEscaping)

BOOST_AUTO_TEST_CASE(ValidUtf8PassesThroughAndControlsAreEscaped) {
  const std::string text = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xb3 \"q\" \\ \n\t\x01";
  BOOST_TEST(readBack(jsonEscape(text)) == text);
  BOOST_TEST(jsonEscape("\x7f") == "\\u007f");
}

BOOST_AUTO_TEST_CASE(C1ControlsAndBidiOverridesAreEscapedThoughJsonAllowsThemRaw) {
  // From a label or a DNS name: raw, U+009B (CSI) acts on xterm as ESC [ does, and U+202E
  // makes the line read backwards from there in any bidi-aware viewer.
  BOOST_TEST(jsonEscape("\xc2\x9b" "2J") == "\\u009b2J");
  BOOST_TEST(jsonEscape("\xc2\x9d" "0;t\xc2\x9c") == "\\u009d0;t\\u009c");
  BOOST_TEST(jsonEscape("x\xe2\x80\xae" "gnp.exe") == "x\\u202egnp.exe");
  BOOST_TEST(jsonEscape("\xe2\x81\xa6\xe2\x81\xa9\xe2\x80\xa8") == "\\u2066\\u2069\\u2028");
  const std::string hidden = "\xc2\x85 \xe2\x80\xab \xe2\x80\x8e";
  BOOST_TEST(readBack(jsonEscape(hidden)) == hidden);  // still the same text to a parser
  BOOST_TEST(jsonEscape("\xc2\xa0") == "\xc2\xa0");  // U+00A0 is text: it stays
}

BOOST_AUTO_TEST_CASE(BytesThatAreNoUtf8BecomeReplacementCharactersSoTheLineStaysJson) {
  // A DNS answer may carry any byte in a name; log shippers drop a line that is not UTF-8.
  for (const std::string& bad : {std::string("\xff"), std::string("a\xc3"), std::string("\xc3(x"), std::string("\xe2\x82"),
                                std::string("\xc0\xaf"), std::string("\xed\xa0\x80"), std::string("\xf4\x90\x80\x80"),
                                std::string("\x80z")}) {
    const std::string escaped = jsonEscape(bad);
    BOOST_TEST(escaped.find("\\ufffd") != std::string::npos, "'" << escaped << "'");
    for (unsigned char c : escaped) BOOST_TEST(c < 0x80, "a raw byte left in '" << escaped << "'");
    BOOST_CHECK_NO_THROW(readBack(escaped));
  }
  BOOST_TEST(jsonEscape("a\xff" "b") == "a\\ufffdb");
  BOOST_TEST(jsonEscape("\xc3(") == "\\ufffd(");
}

BOOST_AUTO_TEST_SUITE_END()
