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
