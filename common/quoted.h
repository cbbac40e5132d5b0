// quoted(): what an error message shows of text a user wrote, in single quotes: all of it
// when short, else its start and its length, so a 100 KB label makes a short message in the
// log, the problem records and the status. Pure; any thread.
#pragma once

#include <string>
#include <string_view>

#include "common/utf8.h"

namespace connectable {

inline constexpr size_t kQuotedWhole = 128;  // text up to this many bytes is quoted whole
inline constexpr size_t kQuotedStart = 64;   // of longer text, at most this many bytes

// 'db.example.org:5432', or 'xxxx...' (100000 bytes), cut between UTF-8 characters.
inline std::string quoted(std::string_view text) {
  if (text.size() <= kQuotedWhole) return "'" + std::string(text) + "'";
  size_t end = 0;
  while (end < kQuotedStart) {
    size_t n = utf8SequenceLength(text, end);
    if (n == 0) n = 1;  // a byte that is no character: shown as it is, alone
    if (end + n > kQuotedStart) break;
    end += n;
  }
  return "'" + std::string(text.substr(0, end)) + "...' (" + std::to_string(text.size()) + " bytes)";
}

}  // namespace connectable
