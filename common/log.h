// Log: one line per event on stderr, as text or JSON, filtered by level.
// Single-threaded by design (both programs run one event loop); not thread-safe.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace connectable::log {

enum class Level { Debug = 0, Info = 1, Warn = 2, Error = 3 };
enum class Format { Text, Json };

// A key/value pair carried by a log line: text shows `key=value`, JSON a member.
using Field = std::pair<std::string_view, std::string>;

void configure(Level level, Format format, std::string component);
bool parseLevel(std::string_view text, Level* out);
bool parseFormat(std::string_view text, Format* out);
bool enabled(Level level);

void write(Level level, std::string_view message, std::initializer_list<Field> fields = {});
// The same, with fields gathered at run time: those with nothing to say left out.
void write(Level level, std::string_view message, const std::vector<Field>& fields);

inline void debug(std::string_view m, std::initializer_list<Field> f = {}) { if (enabled(Level::Debug)) write(Level::Debug, m, f); }
inline void info(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::Info, m, f); }
inline void warn(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::Warn, m, f); }
inline void error(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::Error, m, f); }

// "YYYY-MM-DDTHH:MM:SS.mmmZ", the UTC time that starts every line, for a time in ms since
// the epoch (from 1970 on). Computed here: glibc's gmtime_r reads /etc/localtime the first
// time it runs, which a shim confined to a proxy's system calls can no longer open.
std::string utcTimestamp(int64_t unixMillis);

// A terminate handler: logs the exception in flight (what() of a std::exception) as an
// error line in the configured format, then aborts. Nothing is allocated when the
// exception is std::bad_alloc, and a second call (the log itself throwing) aborts at once.
[[noreturn]] void lastWords() noexcept;

// JSON string escaping, shared with whoever writes JSON by hand on the data path.
std::string jsonEscape(std::string_view text);

}  // namespace connectable::log
