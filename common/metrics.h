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
// of every input. Our own text is taken as written; another source's (a shim's, which may
// run code of the container's by now) is read strictly, since one bad line makes Prometheus
// refuse the whole scrape, every container's.
class MetricsMerger {
 public:
  // What other sources may add, counting each line kept with its labels: an answer's size
  // is bounded, but a short line of it may grow tenfold once labelled.
  struct Limits {
    size_t fromEach = size_t{4} << 20;
    size_t fromAll = size_t{32} << 20;
  };
  MetricsMerger() : MetricsMerger(Limits{}) {}
  explicit MetricsMerger(Limits limits) : limits_(limits) {}

  // Families described here are ours: no other source adds samples to them.
  void addOwn(const std::string& text);
  // Each sample gets `extra` labels prepended; a label of its own with one of their names
  // is kept as exported_<name>. Lines that are not well-formed exposition text, not UTF-8,
  // or samples of our families are left out and counted in rejected().
  void addFrom(const std::string& text, const MetricLabels& extra);
  std::string text() const;
  size_t rejected() const { return rejected_; }
  // Sources whose lines past a limit were left out.
  size_t cut() const { return cut_; }

 private:
  struct Family {
    std::string help, type;
    std::vector<std::string> samples;
    bool own = false;
  };
  std::vector<std::string> order_;
  std::map<std::string, Family> families_;
  size_t rejected_ = 0;
  Limits limits_;
  size_t fromAll_ = 0;  // bytes added by other sources so far
  size_t cut_ = 0;
  Family& familyFor(const std::string& name);
  static std::string ownerOf(const std::string& name, const std::string& current);
  // The histogram or summary whose _bucket, _sum or _count `name` is; none if not known.
  const Family* partOf(const std::string& name) const;
  template <typename Fn>
  static void forEachLine(const std::string& text, Fn&& fn);
};

}  // namespace connectable
