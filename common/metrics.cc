#include "common/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "common/utf8.h"

namespace connectable {

std::string escapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string escapeHelp(std::string_view help) {
  std::string out;
  for (char c : help) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string formatLabels(const MetricLabels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i) out += ',';
    out += labels[i].first + "=\"" + escapeLabelValue(labels[i].second) + '"';
  }
  return out + "}";
}

namespace {

std::string formatDouble(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

}  // namespace

void MetricsText::family(const std::string& name, const char* type, const std::string& help) {
  text_ += "# HELP " + name + " " + escapeHelp(help) + "\n# TYPE " + name + " " + type + "\n";
}

void MetricsText::sample(const std::string& name, const MetricLabels& labels, uint64_t value) {
  text_ += name + formatLabels(labels) + " " + std::to_string(value) + "\n";
}

void MetricsText::sampleDouble(const std::string& name, const MetricLabels& labels, double value) {
  text_ += name + formatLabels(labels) + " " + formatDouble(value) + "\n";
}

void MetricsText::histogram(const std::string& name, const MetricLabels& labels, const std::vector<double>& bounds,
                            const std::vector<uint64_t>& counts, double sum) {
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds.size(); ++i) {
    cumulative += i < counts.size() ? counts[i] : 0;
    MetricLabels l = labels;
    l.emplace_back("le", i < bounds.size() ? formatDouble(bounds[i]) : "+Inf");
    sample(name + "_bucket", l, cumulative);
  }
  sampleDouble(name + "_sum", labels, sum);
  sample(name + "_count", labels, cumulative);
}

namespace {

// The first `count` words of line, split at spaces and tabs.
std::vector<std::string_view> firstWords(std::string_view line, size_t count) {
  std::vector<std::string_view> words;
  size_t pos = 0;
  while (words.size() < count) {
    pos = line.find_first_not_of(" \t", pos);
    if (pos == std::string_view::npos) break;
    size_t end = line.find_first_of(" \t", pos);
    words.push_back(line.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos));
    pos = end;
  }
  return words;
}

bool isLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool isDigit(char c) { return c >= '0' && c <= '9'; }

// The length of the metric name (letters, digits, '_' and ':') or, without colons, label
// name that `s` starts with; 0 if it starts with none.
size_t nameLength(std::string_view s, bool colons) {
  auto ok = [&](char c, bool first) { return isLetter(c) || (colons && c == ':') || (!first && isDigit(c)); };
  size_t n = 0;
  while (n < s.size() && ok(s[n], n == 0)) ++n;
  return n;
}

size_t digits(std::string_view s, size_t pos) {
  size_t n = pos;
  while (n < s.size() && isDigit(s[n])) ++n;
  return n - pos;
}

// A sample's value as the format writes it: a decimal float, or +Inf, -Inf, NaN.
bool isValue(std::string_view s) {
  if (s == "+Inf" || s == "-Inf" || s == "Inf" || s == "NaN") return true;
  size_t pos = !s.empty() && (s[0] == '+' || s[0] == '-') ? 1 : 0;
  size_t whole = digits(s, pos);
  pos += whole;
  size_t fraction = 0;
  if (pos < s.size() && s[pos] == '.') fraction = digits(s, ++pos), pos += fraction;
  if (whole + fraction == 0) return false;
  if (pos < s.size() && (s[pos] == 'e' || s[pos] == 'E')) {
    if (++pos < s.size() && (s[pos] == '+' || s[pos] == '-')) ++pos;
    size_t exponent = digits(s, pos);
    if (exponent == 0) return false;
    pos += exponent;
  }
  // Prometheus refuses a value past the largest double (but reads one below the smallest as 0).
  return pos == s.size() && !std::isinf(std::strtod(std::string(s).c_str(), nullptr));
}

// Milliseconds as an int64, which is how Prometheus reads them.
bool isTimestamp(std::string_view s) {
  int64_t ms = 0;
  auto [end, error] = std::from_chars(s.data(), s.data() + s.size(), ms);
  return !s.empty() && error == std::errc() && end == s.data() + s.size();
}

// HELP text escapes only backslash and newline.
bool isHelpText(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i)
    if (s[i] == '\\' && (++i >= s.size() || (s[i] != '\\' && s[i] != 'n'))) return false;
  return true;
}

bool isKnownType(std::string_view t) {
  return t == "counter" || t == "gauge" || t == "histogram" || t == "summary" || t == "untyped";
}

// One sample line read strictly: its name, its labels (values still escaped) and what
// follows them (value and timestamp, each after one space).
struct SampleLine {
  std::string_view name;
  std::vector<std::pair<std::string_view, std::string_view>> labels;
  std::string rest;
};

bool parseSampleLine(std::string_view line, SampleLine* out) {
  size_t pos = nameLength(line, true);
  if (pos == 0) return false;
  out->name = line.substr(0, pos);
  if (pos < line.size() && line[pos] == '{') {
    // Looked up, not compared pair by pair: a reply of megabytes may be one line of labels.
    std::set<std::string_view> seen;
    ++pos;
    while (pos < line.size() && line[pos] != '}') {
      size_t n = nameLength(line.substr(pos), false);
      if (n == 0 || pos + n + 1 >= line.size() || line[pos + n] != '=' || line[pos + n + 1] != '"') return false;
      std::string_view key = line.substr(pos, n);
      pos += n + 2;
      size_t valueStart = pos;
      while (pos < line.size() && line[pos] != '"') {
        if (line[pos] == '\\') {
          if (++pos >= line.size() || (line[pos] != '\\' && line[pos] != '"' && line[pos] != 'n')) return false;
        }
        ++pos;
      }
      if (pos >= line.size()) return false;
      if (!seen.insert(key).second) return false;  // a label twice: Prometheus refuses the whole scrape
      std::string_view value = line.substr(valueStart, pos - valueStart);
      // The name is no label to set, and a bucket's bound or a quantile must be a number:
      // otherwise, too, the whole scrape is refused.
      if (key == "__name__" || ((key == "le" || key == "quantile") && !isValue(value))) return false;
      out->labels.emplace_back(key, value);
      ++pos;
      if (pos < line.size() && line[pos] == ',') ++pos;
    }
    if (pos >= line.size()) return false;
    ++pos;
  }
  std::string_view rest = line.substr(pos);
  std::vector<std::string_view> words = firstWords(rest, 3);
  if (rest.empty() || (rest[0] != ' ' && rest[0] != '\t')) return false;
  if (!(words.size() == 1 || (words.size() == 2 && isTimestamp(words[1]))) || !isValue(words[0])) return false;
  // Blanks after the value would be read by promtool as the start of a timestamp.
  out->rest = " " + std::string(words[0]) + (words.size() == 2 ? " " + std::string(words[1]) : "");
  return true;
}

}  // namespace

MetricsMerger::Family& MetricsMerger::familyFor(const std::string& name) {
  auto it = families_.find(name);
  if (it != families_.end()) return it->second;
  order_.push_back(name);
  return families_[name];
}

template <typename Fn>
void MetricsMerger::forEachLine(const std::string& text, Fn&& fn) {
  for (std::string_view rest = text; !rest.empty();) {
    size_t eol = rest.find('\n');
    std::string_view line = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 1);
    if (!line.empty()) fn(line);
  }
}

void MetricsMerger::addOwn(const std::string& text) {
  std::string current;
  forEachLine(text, [&](std::string_view line) {
    if (line[0] == '#') {
      std::vector<std::string_view> words = firstWords(line, 3);
      if (words.size() < 3 || (words[1] != "HELP" && words[1] != "TYPE")) return;
      current = std::string(words[2]);
      Family& f = familyFor(current);
      f.own = true;
      (words[1] == "HELP" ? f.help : f.type) = std::string(line);
      return;
    }
    std::string name(line.substr(0, line.find_first_of("{ ")));
    familyFor(ownerOf(name, current)).samples.push_back(std::string(line));
  });
}

void MetricsMerger::addFrom(const std::string& text, const MetricLabels& extra) {
  std::string prefix;
  for (const auto& [k, v] : extra) prefix += (prefix.empty() ? "" : ",") + k + "=\"" + escapeLabelValue(v) + '"';
  std::string current;
  size_t fromThis = 0;
  bool over = false;
  // Each line kept, with what holding it costs beyond its bytes (a string, a family entry).
  auto fits = [&](size_t bytes) {
    bytes += 64;
    if (over || fromThis + bytes > limits_.fromEach || fromAll_ + bytes > limits_.fromAll) {
      if (!over) ++cut_;
      over = true;
      return false;
    }
    fromThis += bytes;
    fromAll_ += bytes;
    return true;
  };
  forEachLine(text, [&](std::string_view line) {
    if (over) return;
    // Raw controls would reach whoever reads /metrics on a terminal (ESC, C1 CSI), or make
    // the text read in another order (bidi overrides); the format escapes none of them.
    if (!isPlainText(line)) {
      ++rejected_;
      return;
    }
    if (line[0] == '#') {
      // "# HELP name text" or "# TYPE name kind"; other comments are dropped. The first
      // source to describe a family describes it; ours cannot be described by another.
      std::vector<std::string_view> words = firstWords(line, 5);
      if (words.size() < 3 || (words[1] != "HELP" && words[1] != "TYPE")) return;
      current.clear();
      const std::string_view help = line.substr(static_cast<size_t>(words[2].end() - line.begin()));
      if (nameLength(words[2], true) != words[2].size() ||
          (words[1] == "TYPE" && (words.size() != 4 || !isKnownType(words[3]))) ||
          (words[1] == "HELP" && !isHelpText(help))) {
        ++rejected_;
        return;
      }
      // Prometheus files the parts of a histogram or summary under it, whoever describes them.
      if (partOf(std::string(words[2]))) {
        ++rejected_;
        return;
      }
      current = std::string(words[2]);
      if (!families_.count(current) && !fits(2 * current.size())) return;
      Family& f = familyFor(current);
      if (f.own) return;
      std::string& field = words[1] == "HELP" ? f.help : f.type;
      // Prometheus reads everything after the one blank behind the name as the type.
      if (field.empty() && fits(line.size()))
        field = words[1] == "HELP" ? std::string(line) : "# TYPE " + current + " " + std::string(words[3]);
      return;
    }
    SampleLine sample;
    if (!parseSampleLine(line, &sample)) {
      ++rejected_;
      return;
    }
    std::string name(sample.name);
    const Family* whole = partOf(name);
    const std::string owner = ownerOf(name, current);
    if (!families_.count(owner) && !fits(2 * owner.size())) return;
    Family& f = familyFor(owner);
    if (f.own || (whole && whole->own)) {
      ++rejected_;
      return;
    }
    // A label of the source's own with the name of one we add is kept as exported_<name>,
    // as Prometheus does: a label twice would make it refuse the whole scrape.
    std::string relabelled = name + "{" + prefix;
    std::set<std::string> keys;
    for (const auto& [k, v] : extra) keys.insert(k);
    for (const auto& [k, v] : sample.labels) {
      std::string key(k);
      if (keys.count(key)) key = "exported_" + key;
      if (!keys.insert(key).second) {
        ++rejected_;
        return;
      }
      relabelled += (relabelled.back() == '{' ? "" : ",") + key + "=\"" + std::string(v) + '"';
    }
    relabelled += "}";
    relabelled += sample.rest;
    if (!fits(relabelled.size())) return;
    f.samples.push_back(std::move(relabelled));
  });
}

// Samples belong to the family described last when they are its own or its histogram's or
// summary's parts.
std::string MetricsMerger::ownerOf(const std::string& name, const std::string& current) {
  if (current.empty() || name.compare(0, current.size(), current) != 0) return name;
  std::string_view suffix = std::string_view(name).substr(current.size());
  return suffix.empty() || suffix == "_bucket" || suffix == "_sum" || suffix == "_count" ? current : name;
}

const MetricsMerger::Family* MetricsMerger::partOf(const std::string& name) const {
  for (std::string_view suffix : {"_bucket", "_sum", "_count"}) {
    if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
    auto it = families_.find(name.substr(0, name.size() - suffix.size()));
    if (it == families_.end()) return nullptr;
    auto typed = [&](std::string_view type) {
      const std::string& t = it->second.type;
      return t.size() > type.size() && t.compare(t.size() - type.size(), type.size(), type) == 0 && t[t.size() - type.size() - 1] == ' ';
    };
    return typed("histogram") || (typed("summary") && suffix != "_bucket") ? &it->second : nullptr;
  }
  return nullptr;
}

std::string MetricsMerger::text() const {
  std::string out;
  for (const auto& name : order_) {
    const Family& f = families_.at(name);
    if (!f.help.empty()) out += f.help + "\n";
    if (!f.type.empty()) out += f.type + "\n";
    for (const auto& s : f.samples) out += s + "\n";
  }
  return out;
}

}  // namespace connectable
