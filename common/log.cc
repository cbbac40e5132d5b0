#include "common/log.h"

#include <sys/time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <new>

#include "common/utf8.h"

namespace connectable::log {
namespace {

Level gLevel = Level::Info;
Format gFormat = Format::Text;
std::string gComponent = "connectable";

const char* levelName(Level level) {
  switch (level) {
    case Level::Debug: return "debug";
    case Level::Info: return "info";
    case Level::Warn: return "warn";
    case Level::Error: return "error";
  }
  return "?";
}

bool hasControlOrNonAscii(std::string_view v) {
  for (char c : v)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) return true;
  return false;
}

bool needsQuotes(std::string_view v) {
  if (v.empty()) return true;
  for (char c : v)
    if (c == ' ' || c == '"' || c == '=') return true;
  // Quoted values are escaped: no raw control or stray byte reaches the terminal.
  return hasControlOrNonAscii(v);
}

}  // namespace

void configure(Level level, Format format, std::string component) {
  gLevel = level;
  gFormat = format;
  gComponent = std::move(component);
}

bool parseLevel(std::string_view text, Level* out) {
  for (Level l : {Level::Debug, Level::Info, Level::Warn, Level::Error}) {
    if (text == levelName(l)) { *out = l; return true; }
  }
  return false;
}

bool parseFormat(std::string_view text, Format* out) {
  if (text == "text") { *out = Format::Text; return true; }
  if (text == "json") { *out = Format::Json; return true; }
  return false;
}

bool enabled(Level level) { return level >= gLevel; }

std::string jsonEscape(std::string_view text) {
  // What comes from outside (DNS names, labels, client input in errors) may hold any byte:
  // the output is always valid JSON in UTF-8, each byte that is not UTF-8 becoming U+FFFD.
  std::string out;
  out.reserve(text.size() + 2);
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (u < 0x20 || u == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", u);
          out += buf;
        } else if (u < 0x80) {
          out += c;
        } else if (size_t n = utf8SequenceLength(text, i)) {
          // Valid JSON either way; escaped, a C1 control or a bidi override from a label
          // or a DNS name cannot act on the terminal or the viewer that shows the line.
          if (const char32_t cp = utf8Decode(text, i, n); isHiddenControl(cp)) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(cp));
            out += buf;
          } else {
            out.append(text.substr(i, n));
          }
          i += n - 1;
        } else {
          out += "\\ufffd";
        }
    }
  }
  return out;
}

std::string utcTimestamp(int64_t unixMillis) {
  const int64_t seconds = unixMillis / 1000;
  const int64_t days = seconds / 86400;
  const int64_t secondOfDay = seconds % 86400;
  // The civil date of a day count, with years that begin on March 1st, so that the leap
  // day is the last of its year: 400-year eras of 146097 days, then the year of the era
  // by its 365-day years less the leap days before it, then the month by 153-day halves
  // of a March-to-February year (31 30 31 30 31 | 31 30 31 30 31 | 31 28/29).
  const int64_t shifted = days + 719468;  // from 0000-03-01 to 1970-01-01
  const int64_t era = shifted / 146097;
  const int64_t dayOfEra = shifted - era * 146097;
  const int64_t yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146096) / 365;
  const int64_t dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100);
  const int64_t monthFromMarch = (5 * dayOfYear + 2) / 153;
  const int64_t day = dayOfYear - (153 * monthFromMarch + 2) / 5 + 1;
  const int64_t month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9;
  const int64_t year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
  char ts[128];  // what any int64_t fields could print, not only real dates
  std::snprintf(ts, sizeof ts, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld.%03lldZ", static_cast<long long>(year),
                static_cast<long long>(month), static_cast<long long>(day), static_cast<long long>(secondOfDay / 3600),
                static_cast<long long>(secondOfDay / 60 % 60), static_cast<long long>(secondOfDay % 60),
                static_cast<long long>(unixMillis % 1000));
  return ts;
}

namespace {

// The fields from `first` up to `last`: an initializer list's or a vector's, alike.
void writeLine(Level level, std::string_view message, const Field* first, const Field* last) {
  struct timeval tv;
  gettimeofday(&tv, nullptr);
  const std::string ts = utcTimestamp(static_cast<int64_t>(tv.tv_sec) * 1000 + tv.tv_usec / 1000);
  std::string line;
  line.reserve(128);
  if (gFormat == Format::Json) {
    line += "{\"ts\":\"";
    line += ts;
    line += "\",\"level\":\"";
    line += levelName(level);
    line += "\",\"component\":\"" + jsonEscape(gComponent) + "\",\"msg\":\"";
    line += jsonEscape(message);
    line += '"';
    for (const Field* f = first; f != last; ++f) {
      const auto& [k, v] = *f;
      line += ",\"" + jsonEscape(k) + "\":\"" + jsonEscape(v) + '"';
    }
    line += "}\n";
  } else {
    line += ts;
    line += ' ';
    line += levelName(level);
    line += ' ';
    line += gComponent;
    line += ": ";
    // Messages are fixed text, values go in fields; one that quotes outside input anyway
    // reaches the terminal escaped, as a field's value does.
    line += hasControlOrNonAscii(message) ? jsonEscape(message) : std::string(message);
    for (const Field* f = first; f != last; ++f) {
      const auto& [k, v] = *f;
      line += ' ';
      line += k;
      line += '=';
      if (needsQuotes(v)) {
        line += '"' + jsonEscape(v) + '"';
      } else {
        line += v;
      }
    }
    line += '\n';
  }
  // One write(2) per line so concurrent writers (many shims, one journal) never interleave.
  ssize_t unused = ::write(STDERR_FILENO, line.data(), line.size());
  (void)unused;
}

}  // namespace

void write(Level level, std::string_view message, std::initializer_list<Field> fields) {
  if (enabled(level)) writeLine(level, message, fields.begin(), fields.end());
}

void write(Level level, std::string_view message, const std::vector<Field>& fields) {
  if (enabled(level)) writeLine(level, message, fields.data(), fields.data() + fields.size());
}

[[noreturn]] void lastWords() noexcept {
  static bool saying = false;
  if (!saying) {
    saying = true;
    static constexpr char kNoMemory[] = "uncaught exception: out of memory (std::bad_alloc), aborting\n";
    try {
      if (std::exception_ptr e = std::current_exception()) std::rethrow_exception(e);
      write(Level::Error, "std::terminate called without an exception in flight, aborting");
    } catch (const std::bad_alloc&) {
      // Building a log line allocates: the fixed words go out as they are.
      ssize_t unused = ::write(STDERR_FILENO, kNoMemory, sizeof kNoMemory - 1);
      (void)unused;
    } catch (const std::exception& e) {
      write(Level::Error, "uncaught exception, aborting", {{"exception", e.what()}});
    } catch (...) {
      write(Level::Error, "uncaught exception (not a std::exception), aborting");
    }
  }
  std::abort();
}

}  // namespace connectable::log
