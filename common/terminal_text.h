// Text from a process we do not trust (a shim, which runs beside untrusted code and may be
// its by now), made safe to print on root's terminal. Pure; any thread.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

#include "common/utf8.h"

namespace connectable {

// `text` with every character a terminal or a viewer would act on instead of showing made
// a '?': ASCII controls but the newline (ESC starts the sequences that set a title, the
// clipboard, or rewrite the rows above), DEL, the C1 controls and bidi overrides (see
// isHiddenControl), and each byte that is not UTF-8. Other UTF-8 (a name in Greek) stays.
inline std::string terminalText(std::string_view text, bool keepNewlines = true) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      out += !isTerminalControl(c) || (c == '\n' && keepNewlines) ? static_cast<char>(c) : '?';
      ++i;
    } else if (const size_t n = utf8SequenceLength(text, i); n == 0) {
      out += '?';
      ++i;
    } else {
      if (isTerminalControl(utf8Decode(text, i, n))) {
        out += '?';
      } else {
        out.append(text.substr(i, n));
      }
      i += n;
    }
  }
  return out;
}

// The first character of `text` that terminalText would make a '?', named for a message:
// "U+009B at byte 812", "byte 0xFF at byte 3" (not UTF-8); empty when there is none.
inline std::string firstTerminalControl(std::string_view text, bool keepNewlines = true) {
  char name[64];
  for (size_t i = 0; i < text.size();) {
    const size_t n = utf8SequenceLength(text, i);
    if (n == 0) {
      std::snprintf(name, sizeof name, "byte 0x%02X at byte %zu", static_cast<unsigned char>(text[i]), i);
      return name;
    }
    const char32_t cp = utf8Decode(text, i, n);
    if (isTerminalControl(cp) && !(cp == '\n' && keepNewlines)) {
      std::snprintf(name, sizeof name, "U+%04X at byte %zu", static_cast<unsigned>(cp), i);
      return name;
    }
    i += n;
  }
  return {};
}

}  // namespace connectable
