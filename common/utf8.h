// UTF-8 well-formedness (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF),
// for what comes from outside and is written out as JSON or Prometheus text. Pure; any thread.
#pragma once

#include <cstddef>
#include <string_view>

namespace connectable {

// Length of the well-formed sequence starting at text[i] (1 for ASCII), or 0 if none does.
// REQUIRES: i < text.size().
inline size_t utf8SequenceLength(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  size_t n;
  unsigned char low = 0x80, high = 0xbf;  // the second byte's range
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c == 0xe0) low = 0xa0;
    if (c == 0xed) high = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c == 0xf0) low = 0x90;
    if (c == 0xf4) high = 0x8f;
  } else {
    return 0;
  }
  if (text.size() - i < n || byte(i + 1) < low || byte(i + 1) > high) return 0;
  for (size_t k = 2; k < n; ++k)
    if ((byte(i + k) & 0xc0) != 0x80) return 0;
  return n;
}

// The code point of the well-formed sequence of `n` bytes at text[i] (n from utf8SequenceLength).
inline char32_t utf8Decode(std::string_view text, size_t i, size_t n) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  if (n == 1) return byte(i);
  char32_t cp = byte(i) & (0x7f >> n);
  for (size_t k = 1; k < n; ++k) cp = cp << 6 | (byte(i + k) & 0x3f);
  return cp;
}

// A code point that a terminal or a text viewer acts on instead of showing: the C1 controls
// (U+009B is CSI, U+009D OSC, which xterm obeys in UTF-8 as it does ESC [ and ESC ]), the
// line and paragraph separators, and the bidirectional marks, embeddings, overrides and
// isolates, which make a log line read in an order other than its bytes' (a name that
// reads "exe.png").
inline bool isHiddenControl(char32_t cp) {
  return (cp >= 0x80 && cp <= 0x9f) || cp == 0x061c || cp == 0x200e || cp == 0x200f || (cp >= 0x2028 && cp <= 0x202e) ||
         (cp >= 0x2066 && cp <= 0x2069);
}

// A code point a terminal acts on instead of showing: the ASCII controls (ESC starts the
// sequences that set a title or rewrite rows; even a tab or a newline moves the cursor),
// DEL, and the hidden controls above. Callers allow the few they mean to keep.
inline bool isTerminalControl(char32_t cp) { return cp < 0x20 || cp == 0x7f || isHiddenControl(cp); }

inline bool isUtf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const size_t n = utf8SequenceLength(text, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

// Well-formed UTF-8 that shows as it reads: no ASCII control but the tab, no DEL, no
// hidden control. What a line from a less trusted source must be before it is served to a
// reader who may have it on a terminal.
inline bool isPlainText(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const size_t n = utf8SequenceLength(text, i);
    if (n == 0) return false;
    const char32_t cp = utf8Decode(text, i, n);
    if (isTerminalControl(cp) && cp != '\t') return false;
    i += n;
  }
  return true;
}

}  // namespace connectable
