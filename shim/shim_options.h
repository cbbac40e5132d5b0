// ShimOptions: the command line of connectable-shim, parsed and checked before anything
// starts, so a bad argument exits 2 with a message naming it and nothing half-runs.
// Pure functions over plain values; no thread-safety concerns.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/log.h"
#include "common/status.h"
#include "common/target.h"
#include "shim/proxy.h"

namespace connectable {

// A UNIX socket path fits sockaddr_un's 108 bytes with its NUL.
constexpr size_t kMaxControlPath = 107;

// How connections move bytes: through an io_uring where the kernel allows it (auto), or
// with epoll readiness and recv/send/splice calls alone.
enum class DataPath { Auto, Epoll };

struct ShimOptions {
  std::string netnsPath;          // --netns PATH
  int netnsFd = -1;               // --netns-fd N (inherited)
  bool upstreamInTarget = false;  // --upstream-netns=target
  std::vector<ConnectSpec> connects;
  ProxyOptions proxy;
  std::string user = "nobody";
  log::Level logLevel = log::Level::Info;
  log::Format logFormat = log::Format::Text;
  std::string dnsServers;         // every --dns HOST[:PORT][,...], joined; empty: /etc/resolv.conf
  Millis dnsMinTtl{1000};
  Millis dnsTimeout{2000};
  pid_t exitWithPid = 0;          // --exit-with-pid: stop when that process ends
  int exitWithPidfd = -1;         // --exit-with-pidfd: the same, from an inherited pidfd
  std::string name;               // --name: who this shim serves, added to every log line
  std::string controlPath;        // --control: UNIX socket answering status and metrics
  uint16_t statusPort = 0;        // --status-port: plain-text status on loopback in the netns
  DataPath dataPath = DataPath::Auto;  // --data-path
  bool help = false;
  bool version = false;
};

// Exit statuses: 0 done, 1 failed, 2 bad arguments, 3 a port is already taken in the namespace
// (the supervisor retries that one slowly: someone else holds the port).
constexpr int kExitPortInUse = 3;

// "2s", "500ms", "1m", "1h", "0"; a bare number is seconds.
Result<Millis> parseDuration(std::string_view text);

Result<ShimOptions> parseShimOptions(const std::vector<std::string>& args);

// How a shim reads one option, for telling whether two command lines give it the same
// options: whether the option's values add up (--connect, --dns, --allow-upstream) or the
// last one wins, and its value as the shim takes it: a duration as its milliseconds, so
// that 2s and 2000ms read alike. A value that does not parse reads as written.
struct ShimOptionReading {
  bool repeats = false;
  std::string value;
};
ShimOptionReading readShimOption(std::string_view name, std::string_view value);

const char* shimUsage();

}  // namespace connectable
