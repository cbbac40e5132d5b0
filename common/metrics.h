// Metrics: the Prometheus text exposition format (0.0.4), written by hand: families with
// HELP and TYPE lines, escaped label values, and a merger that gathers many shims' texts
// into one, adding labels that say whose each sample is.
// Plain values; no thread-safety concerns.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace connectable {

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

// Label values escape '\\', '"' and newlines; HELP text escapes '\\' and newlines.
std::string escapeLabelValue(std::string_view value);
std::string escapeHelp(std::string_view help);
// `{a="x",b="y"}`, or "" without labels.
std::string formatLabels(const MetricLabels& labels);

class MetricsText {
 public:
  // Starts a family. REQUIRES: each name once; its samples follow before the next family.
  void family(const std::string& name, const char* type, const std::string& help);
  // `name` is the family's, or with a suffix (_bucket, _sum, _count) for histograms.
  void sample(const std::string& name, const MetricLabels& labels, uint64_t value);
  void sampleDouble(const std::string& name, const MetricLabels& labels, double value);
  // A histogram over `bounds` (seconds, ascending) from raw bucket counts (not cumulative;
  // counts.size() == bounds.size() + 1, the last one above every bound).
  void histogram(const std::string& name, const MetricLabels& labels, const std::vector<double>& bounds,
                 const std::vector<uint64_t>& counts, double sum);

  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

// Merges exposition texts: each family's HELP and TYPE appear once, followed by the samples
// of every input, each sample with `extra` labels prepended.
class MetricsMerger {
 public:
  void add(const std::string& text, const MetricLabels& extra);
  std::string text() const;

 private:
  struct Family {
    std::string help, type;
    std::vector<std::string> samples;
  };
  std::vector<std::string> order_;
  std::map<std::string, Family> families_;
  Family& familyFor(const std::string& name);
};

}  // namespace connectable
