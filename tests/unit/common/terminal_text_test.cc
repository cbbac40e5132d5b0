#include "common/terminal_text.h"

#include <boost/test/unit_test.hpp>
#include <string>

using connectable::firstTerminalControl;
using connectable::terminalText;

BOOST_AUTO_TEST_SUITE(TerminalText)

BOOST_AUTO_TEST_CASE(EscapeSequencesLoseTheCharacterThatStartsThem) {
  // A title, then clear the screen, then the clipboard (OSC 52), then a row rewritten.
  BOOST_TEST(terminalText("\x1b]0;owned\x07\x1b[2J\x1b]52;c;cm0K\x07\r\x1b[1A") == "?]0;owned??[2J?]52;c;cm0K???[1A");
  BOOST_TEST(terminalText("a\x7f" "b\tc") == "a?b?c");
}

BOOST_AUTO_TEST_CASE(TheC1ControlsAndBidiOverridesAreReplacedAsTheAsciiOnesAre) {
  // U+009B is CSI, U+009D OSC: xterm obeys them in UTF-8. U+202E reverses what follows.
  BOOST_TEST(terminalText("\xc2\x9b" "2J \xc2\x9d" "0;t\xc2\x9c") == "?2J ?0;t?");
  BOOST_TEST(terminalText("x\xe2\x80\xae" "gnp.exe") == "x?gnp.exe");
  BOOST_TEST(terminalText("\xe2\x81\xa6" "a\xe2\x81\xa9" "\xe2\x80\x8f" "\xe2\x80\xa8") == "?a???");
}

BOOST_AUTO_TEST_CASE(NewlinesStayUnlessOneLineIsAskedForAndOtherUtf8Stays) {
  BOOST_TEST(terminalText("a\nb") == "a\nb");
  BOOST_TEST(terminalText("a\nb", false) == "a?b");
  const std::string text = "caf\xc3\xa9 \xce\xb1\xce\xb2 \xe2\x82\xac \xf0\x9f\x90\xb3";
  BOOST_TEST(terminalText(text) == text);
}

BOOST_AUTO_TEST_CASE(EachByteThatIsNoUtf8BecomesOneQuestionMark) {
  BOOST_TEST(terminalText("a\xff" "b") == "a?b");
  BOOST_TEST(terminalText("\xc3(") == "?(");
  BOOST_TEST(terminalText("\xe2\x82") == "??");
  BOOST_TEST(terminalText("\xc0\xaf") == "??");  // an overlong '/'
}

BOOST_AUTO_TEST_CASE(TheFirstCharacterItWouldReplaceIsNamedWithItsOffset) {
  BOOST_TEST(firstTerminalControl("plain \xce\xb1\n") == "");
  BOOST_TEST(firstTerminalControl("ab\x1b[2J") == "U+001B at byte 2");
  BOOST_TEST(firstTerminalControl("\xce\xb1\xe2\x80\xae") == "U+202E at byte 2");
  BOOST_TEST(firstTerminalControl("a\r") == "U+000D at byte 1");
  BOOST_TEST(firstTerminalControl("a\n", false) == "U+000A at byte 1");
  BOOST_TEST(firstTerminalControl("ok\xff") == "byte 0xFF at byte 2");
  for (std::string text : {"a\x1b", "\xc2\x9b", "\x7f", "\xff", "x\xe2\x81\xa6"})
    BOOST_TEST(firstTerminalControl(text).empty() == (terminalText(text) == text), text);
}

BOOST_AUTO_TEST_SUITE_END()
