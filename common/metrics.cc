#include "common/metrics.h"

#include <cmath>
#include <cstdio>

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

}  // namespace

MetricsMerger::Family& MetricsMerger::familyFor(const std::string& name) {
  auto it = families_.find(name);
  if (it != families_.end()) return it->second;
  order_.push_back(name);
  return families_[name];
}

void MetricsMerger::add(const std::string& text, const MetricLabels& extra) {
  std::string prefix;
  for (const auto& [k, v] : extra) prefix += (prefix.empty() ? "" : ",") + k + "=\"" + escapeLabelValue(v) + '"';
  std::string current;
  for (std::string_view rest = text; !rest.empty();) {
    size_t eol = rest.find('\n');
    std::string_view line = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 1);
    if (line.empty()) continue;
    if (line[0] == '#') {
      // "# HELP name text" or "# TYPE name kind"; other comments are dropped.
      std::vector<std::string_view> words = firstWords(line, 3);
      if (words.size() < 3 || (words[1] != "HELP" && words[1] != "TYPE")) continue;
      Family& f = familyFor(std::string(words[2]));
      (words[1] == "HELP" ? f.help : f.type) = std::string(line);
      current = std::string(words[2]);
      continue;
    }
    size_t nameEnd = line.find_first_of("{ ");
    if (nameEnd == std::string_view::npos) continue;
    std::string name(line.substr(0, nameEnd));
    // Samples belong to the family announced last when they extend its name (_bucket...).
    std::string owner = !current.empty() && name.compare(0, current.size(), current) == 0 ? current : name;
    std::string relabelled;
    if (prefix.empty()) {
      relabelled = std::string(line);
    } else if (line[nameEnd] == '{') {
      bool emptyLabels = nameEnd + 1 < line.size() && line[nameEnd + 1] == '}';
      relabelled = name + "{" + prefix + (emptyLabels ? "" : ",") + std::string(line.substr(nameEnd + 1));
    } else {
      relabelled = name + "{" + prefix + "}" + std::string(line.substr(nameEnd));
    }
    familyFor(owner).samples.push_back(std::move(relabelled));
  }
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
