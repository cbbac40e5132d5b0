#include "common/log.h"

#include <Poco/JSON/Parser.h>

#include <fcntl.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <string>

using connectable::log::jsonEscape;

namespace {

// What a JSON parser reads back from the escaped text, as a JSON string.
std::string readBack(const std::string& escaped) {
  Poco::JSON::Parser parser;
  return parser.parse("{\"v\":\"" + escaped + "\"}").extract<Poco::JSON::Object::Ptr>()->getValue<std::string>("v");
}

// The text line that log::write puts on stderr, captured through a pipe.
std::string textLogLine(std::string_view message, std::initializer_list<connectable::log::Field> fields) {
  namespace log = connectable::log;
  int pipeFds[2];
  BOOST_REQUIRE(::pipe2(pipeFds, O_CLOEXEC) == 0);
  const int savedStderr = ::dup(STDERR_FILENO);
  ::dup2(pipeFds[1], STDERR_FILENO);
  log::configure(log::Level::Info, log::Format::Text, "test");
  log::write(log::Level::Warn, message, fields);
  log::configure(log::Level::Info, log::Format::Text, "connectable");  // as it was
  ::dup2(savedStderr, STDERR_FILENO);
  ::close(savedStderr);
  ::close(pipeFds[1]);
  std::string line(4096, '\0');
  const ssize_t n = ::read(pipeFds[0], line.data(), line.size());
  ::close(pipeFds[0]);
  line.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return line;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(LogEscaping)

BOOST_AUTO_TEST_CASE(ATextLogLineCarriesNoRawControlFromAMessageOrAField) {
  // A message quoting outside input (a label, a DNS name) or a field's value would
  // otherwise put ESC, a C1 CSI, a bidi override or a line of its own on the terminal.
  const std::string outside = "x\x1b]0;t\x07 \xc2\x9b" "2J \xe2\x80\xae \nforged line";
  const std::string line = textLogLine("bad label " + outside, {{"label", outside}});
  BOOST_TEST(line.size() > 1);
  BOOST_TEST(line.find('\n') == line.size() - 1, line);  // one line
  BOOST_TEST(line.find('\x1b') == std::string::npos, line);
  BOOST_TEST(line.find("\xc2\x9b") == std::string::npos, line);
  BOOST_TEST(line.find("\xe2\x80\xae") == std::string::npos, line);
  BOOST_TEST(line.find(" warn test: bad label x\\u001b]0;t\\u0007 \\u009b2J \\u202e \\nforged line") !=
                 std::string::npos,
             line);
  BOOST_TEST(line.find(" label=\"x\\u001b]0;t\\u0007 \\u009b2J \\u202e \\nforged line\"\n") != std::string::npos,
             line);
}

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
