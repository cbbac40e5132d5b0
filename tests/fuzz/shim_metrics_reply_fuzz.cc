// A shim's answer to the injector's GET /metrics, as it comes off the control socket: the
// shim runs as nobody beside the container's code, which may own it by now, and its lines
// are merged into the injector's /metrics, which Prometheus refuses whole for one bad line.
// Merged as MetricsEndpoint::gather merges it. Nothing may crash; the merged text, read
// again as strictly, loses no line, and the injector's own samples
// are in it unchanged.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/http_fetch.h"
#include "common/metrics.h"
#include "tests/fuzz/fuzz_check.h"

using namespace connectable;
using connectable::fuzz::check;

namespace {

const char* const kId = "3f2a9c0d1e4b5a6f7081928374655647382910abcdef0123456789abcdef0123";

std::string injectorText() {
  MetricsText m;
  m.family("connectable_injector_shims_running", "gauge", "Shims the injector supervises now.");
  m.sample("connectable_injector_shims_running", {}, 1);
  m.family("connectable_injector_injection_latency_seconds", "histogram",
           "From the container's first event to its shim listening.");
  m.histogram("connectable_injector_injection_latency_seconds", {}, {0.01, 0.1, 1}, {1, 2, 0, 0}, 0.05);
  m.family("connectable_shim_up", "gauge", "1 when the container's shim answered on its control socket.");
  m.sample("connectable_shim_up", {{"container", "app"}, {"container_id", kId}}, 1);
  return m.text();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto reply = parseHttpReply(std::string(reinterpret_cast<const char*>(data), size));
  if (!reply || reply->code != 200) return 0;
  static const std::string own = injectorText();
  MetricsMerger merger;
  merger.addOwn(own);
  merger.addFrom(reply->body, {{"container", "app"}, {"container_id", kId}});
  const std::string merged = merger.text();
  for (size_t at = 0; at < own.size();) {
    size_t eol = own.find('\n', at);
    check(merged.find(own.substr(at, eol - at + 1)) != std::string::npos);
    at = eol + 1;
  }

  MetricsMerger again;
  again.addFrom(merged, {});
  check(again.rejected() == 0 && again.cut() == 0);
  const std::string reread = again.text();
  check(std::count(reread.begin(), reread.end(), '\n') == std::count(merged.begin(), merged.end(), '\n'));
  return 0;
}
