// A container's labels, which anyone who may start a container writes: records separated by
// the input's first byte, each `key=value` (a newline in the seeds). Read as the injector
// reads them, with and without a host --max-conns. Nothing may crash or loop; every bad
// label is a non-empty error; what is accepted is a shim command line the shim accepts,
// whose --connect values read back as the same ports and targets, those of the plain
// connect.<port> label where there is a valid one.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "injector/label_parser.h"
#include "shim/shim_options.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/same_target.h"

using namespace connectable;
using connectable::fuzz::check;
using connectable::fuzz::sameTarget;

namespace {

std::map<std::string, std::string> labelsFrom(std::string_view input) {
  std::map<std::string, std::string> labels;
  if (input.empty()) return labels;
  const char separator = input.front();
  input.remove_prefix(1);
  while (!input.empty()) {
    size_t end = input.find(separator);
    std::string_view record = input.substr(0, end);
    size_t eq = record.find('=');
    labels[std::string(record.substr(0, eq))] = eq == record.npos ? "" : std::string(record.substr(eq + 1));
    if (end == input.npos) break;
    input.remove_prefix(end + 1);
  }
  return labels;
}

bool sameTargets(const std::vector<Target>& a, const std::vector<Target>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), sameTarget);
}

void checkRequest(const std::map<std::string, std::string>& labels, const ContainerRequest& r, const LabelLimits& limits) {
  for (const auto& e : r.errors) check(!e.empty());
  check(r.wanted() == !r.connects.empty());
  if (r.wanted() || !r.shimArgs.empty() || !r.errors.empty()) check(mentionsConnectable(labels));
  for (size_t i = 0; i < r.connects.size(); ++i) {
    const ConnectSpec& c = r.connects[i];
    check(c.port >= 1 && !c.targets.empty());
    if (i > 0) check(r.connects[i - 1].port < c.port);
    // What the injector hands the shim as --connect=<text> must read back the same.
    auto again = parseConnectSpec(c.text());
    check(again.isOk() && again->port == c.port && sameTargets(again->targets, c.targets));
    check(c.text().find('\0') == std::string::npos);  // an exec argument ends at a NUL
    // A valid connect.<port>, written without leading zeros, is the one that takes its port.
    auto plain = labels.find("connect." + std::to_string(c.port));
    if (plain != labels.end() && plain->second.size() <= kMaxLabelValue) {
      auto spec = parseConnectSpec(std::to_string(c.port), plain->second);
      if (spec) check(sameTargets(spec->targets, c.targets));
    }
  }
  bool upstreamInTarget = false;
  for (const auto& a : r.shimArgs) {
    const auto& names = labelOptionNames();
    check(a.find('\0') == std::string::npos);
    check(std::any_of(names.begin(), names.end(), [&](const std::string& n) { return a.rfind("--" + n + "=", 0) == 0; }));
    if (a == "--upstream-netns=target") upstreamInTarget = true;
    if (a.rfind("--max-conns=", 0) == 0 && limits.maxConns) {
      auto n = parseShimOptions({"--connect=1=127.0.0.1:1", a});
      check(n.isOk() && n->proxy.maxConns >= 1 && n->proxy.maxConns <= limits.maxConns);
    }
  }
  if (!r.wanted()) return;
  // The command line ShimSupervisor::ensure builds. Only --upstream-netns=target with DNS
  // targets and no --dns may be refused there, and is, by this same check.
  std::vector<std::string> args = {"--netns-fd", "3", "--exit-with-pidfd", "4", "--name", "app", "--control",
                                   "/run/connectable/shims/app.sock"};
  args.insert(args.end(), r.shimArgs.begin(), r.shimArgs.end());
  for (const auto& c : r.connects) args.push_back("--connect=" + c.text());
  auto shim = parseShimOptions(args);
  if (!upstreamInTarget) check(shim.isOk());
  if (shim) check(shim->connects.size() == r.connects.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto labels = labelsFrom(std::string_view(reinterpret_cast<const char*>(data), size));
  (void)mentionsConnectable(labels);
  for (const LabelLimits& limits : {LabelLimits{}, LabelLimits{100}}) {
    ContainerRequest request = parseContainerLabels(labels, limits);
    checkRequest(labels, request, limits);
  }
  return 0;
}
