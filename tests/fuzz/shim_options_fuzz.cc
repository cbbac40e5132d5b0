// A shim's command line, arguments separated by NUL bytes as in /proc/<pid>/cmdline: what
// the injector builds from a container's labels, and what an operator types. Each argument
// is also read as a duration. Nothing may crash; an error says something; what parses has
// at least one --connect, distinct ports, a status port apart from them and durations
// inside their documented bounds.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "shim/shim_options.h"
#include "tests/fuzz/fuzz_check.h"

using namespace connectable;
using connectable::fuzz::check;

namespace {

void checkDuration(std::string_view text) {
  auto d = parseDuration(text);
  if (!d) {
    check(!d.status().message().empty());
    return;
  }
  // A bare number is seconds; no unit takes more than 10^9 of anything (hours at most).
  check(d->count() >= 0 && d->count() <= 1'000'000'000LL * 3'600'000);
  check(!text.empty() && text.front() >= '0' && text.front() <= '9');
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> args;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  while (!input.empty()) {
    size_t end = input.find('\0');
    args.emplace_back(input.substr(0, end));
    if (end == input.npos) break;
    input.remove_prefix(end + 1);
  }
  for (const auto& a : args) {
    checkDuration(a);
    if (size_t eq = a.find('='); eq != std::string::npos) checkDuration(std::string_view(a).substr(eq + 1));
  }

  auto o = parseShimOptions(args);
  if (!o) {
    check(!o.status().message().empty());
    return 0;
  }
  if (o->help || o->version) return 0;
  check(!o->connects.empty());
  std::set<uint16_t> ports;
  for (const auto& c : o->connects) {
    check(c.port >= 1 && !c.targets.empty());
    check(ports.insert(c.port).second);
  }
  check(!ports.count(o->statusPort));
  check(o->proxy.connectTimeout.count() > 0 && o->proxy.connectTimeout <= Millis(3'600'000));
  check(o->dnsTimeout.count() > 0 && o->dnsTimeout <= Millis(300'000));
  check(o->dnsMinTtl >= Millis(100) && o->dnsMinTtl <= Millis(24LL * 3'600'000));
  check(o->proxy.idleTimeout.count() >= 0 && o->proxy.drainTimeout.count() >= 0);
  check(o->netnsPath.empty() || o->netnsFd < 0);
  check(o->exitWithPid == 0 || o->exitWithPidfd < 0);
  check(o->controlPath.size() <= kMaxControlPath);
  check(!o->user.empty());
  return 0;
}
