#include "shim/shim_options.h"

#include <cctype>
#include <set>

#include "common/nearest_name.h"
#include "common/quoted.h"
#include "common/srv_resolver.h"

namespace connectable {

Result<Millis> parseDuration(std::string_view text) {
  size_t i = 0;
  uint64_t value = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    value = value * 10 + static_cast<uint64_t>(text[i] - '0');
    if (value > 1'000'000'000) return Status::error("duration " + quoted(text) + " is too large");
    ++i;
  }
  if (i == 0) return Status::error("duration " + quoted(text) + " must start with a number (as 2s, 500ms, 1m)");
  std::string_view unit = text.substr(i);
  if (!unit.empty() && (unit.front() == '.' || unit.front() == ','))
    return Status::error("duration " + quoted(text) + " is not a whole number of ms, s, m or h (as 1500ms for 1.5s)");
  if (unit.empty() || unit == "s") return Millis(value * 1000);
  if (unit == "ms") return Millis(value);
  if (unit == "m") return Millis(value * 60'000);
  if (unit == "h") return Millis(value * 3'600'000);
  return Status::error("duration " + quoted(text) + " has an unknown unit (use ms, s, m or h)");
}

const char* shimUsage() {
  return R"(usage: connectable-shim [--netns PATH | --netns-fd N] --connect PORT=TARGET[,TARGET...] ... [options]

Listens on 127.0.0.1:PORT (and [::1]:PORT where the namespace has IPv6 loopback) inside a
network namespace and proxies every connection to one of the targets.

Targets:  NAME             DNS SRV lookup (redis.service.consul, _redis._tcp.example.org)
          HOST:PORT        A/AAAA lookup of HOST, fixed PORT
          IPV4:PORT        literal address, as 198.18.0.5:6379
          [IPV6]:PORT      literal address, as [fd00::5]:6379

Options:
  --connect PORT=TARGETS   a port and its targets (repeatable; at least one)
  --netns PATH             create the listeners in this network namespace
                           (/var/run/netns/NAME, /proc/PID/ns/net)
  --netns-fd N             the same, from an inherited file descriptor
  --upstream-netns WHERE   'shim' (default): upstream connections and DNS leave from the
                           shim's own namespace; 'target': from the target namespace
                           (then DNS targets need --dns: /etc/resolv.conf is the host's)
  --balance POLICY         random (default), round-robin, least-conn, p2c
  --connect-timeout DUR    per backend attempt (default 2s)
  --idle-timeout DUR       close connections idle this long; 0 = never (default 1h)
  --tcp-keepalive DUR      an upstream connection open this long gets TCP keepalive: a
                           backend silent this long is probed every third of it, and the
                           client reset after 3 unanswered probes; 0 = never (default 30s)
  --max-conns N            past N open connections, new ones wait in the backlog (default 10000)
  --drain-timeout DUR      on SIGTERM, how long open connections may finish (default 10s)
  --allow-upstream RANGES  CIDR[,CIDR...]: connect only to backends in these networks; any
                           other address a target names or a DNS answer gives is left out
                           (repeatable; default: any address)
  --dns SERVERS            IP[:PORT][,...] DNS servers, by address: 127.0.0.1:8600,
                           [::1]:53 (repeatable; servers add up, asked in the order
                           given; default: those of /etc/resolv.conf)
  --dns-min-ttl DUR        shortest time an answer is cached (default 1s)
  --dns-timeout DUR        per query attempt, doubled for the second round of servers
                           (default 2s); a name's first connections wait for its first
                           lookup, answered or failed (6s with one server, unanswered)
  --exit-with-pid PID      exit when process PID ends (the container's init)
  --exit-with-pidfd N      the same, from an inherited pidfd (no pid reuse race)
  --name NAME              name this shim in every log line (the injector passes the container)
  --control PATH           answer status (JSON) and metrics (Prometheus) on this UNIX socket,
                           root only: curl --unix-socket PATH http://shim/status
  --status-port PORT       also answer a plain-text status on 127.0.0.1:PORT (and [::1]) inside the namespace
  --user NAME|UID          unprivileged user to switch to when started as root (default nobody);
                           a number needs no passwd entry, and its group is the same number
  --data-path MODE         auto (default): io_uring where the kernel allows it, else epoll;
                           epoll: readiness and one system call per read or write
  --log-level LEVEL        debug, info (default), warn, error
  --log-format FORMAT      text (default) or json
  --help, --version
Durations: 500ms, 2s, 1m, 1h (a bare number is seconds).
Exit status: 0 stopped (SIGTERM, SIGINT, or the watched process ended), 1 failed to start,
2 bad arguments, 3 every --connect port is already taken in the namespace (one taken
port alone is left out, and the others are served).
Inherited file descriptors above 2 are closed at start, except those of --netns-fd and
--exit-with-pidfd.

connectable-shim status --control PATH [--json]
                           print what the shim listening on PATH does (a table, or its JSON)
)";
}

namespace {

Result<uint64_t> parseCount(std::string_view option, std::string_view text, uint64_t max) {
  if (text.empty()) return Status::error(std::string(option) + ": '' is not a number");
  uint64_t v = 0;
  for (char c : text) {
    if (!std::isdigit(static_cast<unsigned char>(c)))
      return Status::error(std::string(option) + ": " + quoted(text) + " is not a number");
    if (v <= max) v = v * 10 + static_cast<uint64_t>(c - '0');  // past max it only grows: no overflow
  }
  if (v > max) return Status::error(std::string(option) + ": " + std::string(text) + " is larger than " + std::to_string(max));
  return v;
}

bool isDurationOption(std::string_view name) {
  return name == "--connect-timeout" || name == "--idle-timeout" || name == "--drain-timeout" ||
         name == "--dns-min-ttl" || name == "--dns-timeout" || name == "--tcp-keepalive";
}

}  // namespace

ShimOptionReading readShimOption(std::string_view name, std::string_view value) {
  ShimOptionReading reading;
  // The options parseShimOptions adds up rather than replaces.
  reading.repeats = name == "--connect" || name == "--dns" || name == "--allow-upstream";
  reading.value = std::string(value);
  if (isDurationOption(name))
    if (auto d = parseDuration(value)) reading.value = std::to_string(d->count()) + "ms";
  return reading;
}

Result<ShimOptions> parseShimOptions(const std::vector<std::string>& args) {
  ShimOptions o;
  std::set<uint16_t> ports;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    std::string value;
    bool hasValue = false;
    if (arg == "-h") {
      o.help = true;
      continue;
    }
    if (arg.rfind("--", 0) == 0) {
      size_t eq = arg.find('=');
      if (eq != std::string::npos) {
        value = arg.substr(eq + 1);
        arg = arg.substr(0, eq);
        hasValue = true;
      }
    } else {
      return Status::error("unexpected argument '" + arg + "'");
    }
    if (arg == "--help") { o.help = true; continue; }
    if (arg == "--version") { o.version = true; continue; }
    static const std::set<std::string> kTakesValue = {
        "--connect", "--netns", "--netns-fd", "--upstream-netns", "--balance", "--connect-timeout",
        "--idle-timeout", "--drain-timeout", "--dns-min-ttl", "--dns-timeout", "--max-conns", "--dns",
        "--tcp-keepalive",
        "--exit-with-pid", "--exit-with-pidfd", "--name", "--user", "--log-level", "--log-format",
        "--control", "--status-port", "--data-path", "--allow-upstream"};
    if (!kTakesValue.count(arg)) {
      std::vector<std::string> known = {"--help", "--version"};
      known.insert(known.end(), kTakesValue.begin(), kTakesValue.end());
      return Status::error("unknown option '" + arg + "'" + didYouMean(arg, known));
    }
    auto need = [&]() -> Result<std::string> {
      if (hasValue) return value;
      if (i + 1 >= args.size()) return Status::error(arg + " needs a value");
      return args[++i];
    };
    auto v = need();
    if (!v) return v.status();
    const std::string& val = *v;
    if (arg == "--connect") {
      auto spec = parseConnectSpec(val);
      if (!spec) return spec.status().withContext("--connect");
      if (!ports.insert(spec->port).second)
        return Status::error("--connect " + quoted(val) + ": port " + std::to_string(spec->port) + " is given twice");
      o.connects.push_back(std::move(*spec));
    } else if (arg == "--netns") {
      if (val.empty()) return Status::error("--netns needs a path");
      o.netnsPath = val;
    } else if (arg == "--netns-fd") {
      auto n = parseCount(arg, val, 1 << 20);
      if (!n) return n.status();
      o.netnsFd = static_cast<int>(*n);
    } else if (arg == "--upstream-netns") {
      if (val == "target") o.upstreamInTarget = true;
      else if (val == "shim") o.upstreamInTarget = false;
      else return Status::error("--upstream-netns: " + quoted(val) + " is neither 'shim' nor 'target'");
    } else if (arg == "--data-path") {
      if (val == "auto") o.dataPath = DataPath::Auto;
      else if (val == "epoll") o.dataPath = DataPath::Epoll;
      else return Status::error("--data-path: " + quoted(val) + " is neither 'auto' nor 'epoll'");
    } else if (arg == "--balance") {
      if (!parseBalancePolicy(val, &o.proxy.balance))
        return Status::error("--balance: " + quoted(val) + " is not one of random, round-robin, least-conn, p2c");
    } else if (isDurationOption(arg)) {
      auto d = parseDuration(val);
      if (!d) return d.status().withContext(arg);
      if (arg == "--connect-timeout") o.proxy.connectTimeout = *d;
      if (arg == "--idle-timeout") o.proxy.idleTimeout = *d;
      if (arg == "--drain-timeout") o.proxy.drainTimeout = *d;
      if (arg == "--dns-min-ttl") o.dnsMinTtl = *d;
      if (arg == "--dns-timeout") o.dnsTimeout = *d;
      if (arg == "--tcp-keepalive") o.proxy.tcpKeepalive = *d;
      if ((arg == "--connect-timeout" || arg == "--dns-timeout") && d->count() == 0)
        return Status::error(arg + " must be longer than 0");
      // The kernel counts keepalive in whole seconds.
      if (arg == "--tcp-keepalive" && d->count() % 1000 != 0)
        return Status::error(arg + ": " + quoted(val) + " is not whole seconds (0 turns it off)");
      // Bounds a deployment can want, well inside what clocks and timers can add up; a DNS
      // answer cached for less than 100 ms would have the shim ask over and over. (A zero
      // timeout is refused just above.)
      struct Range { const char* option; Millis min, max; const char* maxText; };
      static const Range kRanges[] = {
          {"--connect-timeout", Millis(0), Millis(3'600'000), "1h"},
          {"--idle-timeout", Millis(0), Millis(30LL * 24 * 3'600'000), "720h"},
          {"--drain-timeout", Millis(0), Millis(24LL * 3'600'000), "24h"},
          {"--dns-min-ttl", Millis(100), Millis(24LL * 3'600'000), "24h"},
          {"--dns-timeout", Millis(0), Millis(300'000), "5m"},
          {"--tcp-keepalive", Millis(0), Millis(2LL * 3'600'000), "2h"},
      };
      for (const Range& r : kRanges) {
        if (arg != r.option) continue;
        if (*d > r.max) return Status::error(arg + ": " + quoted(val) + " is longer than " + r.maxText);
        if (*d < r.min) return Status::error(arg + ": " + quoted(val) + " is shorter than " + std::to_string(r.min.count()) + "ms");
      }
    } else if (arg == "--max-conns") {
      auto n = parseCount(arg, val, 10'000'000);
      if (!n) return n.status();
      o.proxy.maxConns = *n;
    } else if (arg == "--dns") {
      if (val.empty()) return Status::error("--dns needs at least one server");
      // Checked here, not only when the shim starts: the injector checks every shim's options
      // with this parser before it starts one, and must refuse a bad --dns itself.
      if (auto servers = parseDnsServers(val); !servers) return servers.status().withContext("--dns");
      // Repeats add up, as --connect and --allow-upstream do: a second --dns that replaced
      // the first would drop servers without a word.
      o.dnsServers += (o.dnsServers.empty() ? "" : ",") + val;
    } else if (arg == "--allow-upstream") {
      auto ranges = AddressRanges::parse(val);
      if (!ranges) return ranges.status().withContext("--allow-upstream");
      o.proxy.allowUpstream.add(*ranges);
    } else if (arg == "--exit-with-pid") {
      auto n = parseCount(arg, val, 1 << 22);
      if (!n || *n == 0) return Status::error("--exit-with-pid: " + quoted(val) + " is not a process id");
      o.exitWithPid = static_cast<pid_t>(*n);
    } else if (arg == "--exit-with-pidfd") {
      auto n = parseCount(arg, val, 1 << 20);
      if (!n) return n.status();
      o.exitWithPidfd = static_cast<int>(*n);
    } else if (arg == "--name") {
      o.name = val;
    } else if (arg == "--control") {
      if (val.empty() || val.size() > kMaxControlPath)
        return Status::error("--control needs a socket path of at most " + std::to_string(kMaxControlPath) + " characters");
      o.controlPath = val;
    } else if (arg == "--status-port") {
      auto port = parsePort(val);
      if (!port) return port.status().withContext("--status-port");
      o.statusPort = *port;
    } else if (arg == "--user") {
      if (val.empty()) return Status::error("--user needs a name");
      o.user = val;
    } else if (arg == "--log-level") {
      if (!log::parseLevel(val, &o.logLevel))
        return Status::error("--log-level: " + quoted(val) + " is not one of debug, info, warn, error");
    } else if (arg == "--log-format") {
      if (!log::parseFormat(val, &o.logFormat))
        return Status::error("--log-format: " + quoted(val) + " is neither 'text' nor 'json'");
    }
  }
  if (o.help || o.version) return o;
  if (o.connects.empty()) return Status::error("no --connect given: nothing to do");
  if (o.statusPort && ports.count(o.statusPort))
    return Status::error("--status-port " + std::to_string(o.statusPort) + " is also a --connect port");
  if (o.exitWithPid && o.exitWithPidfd >= 0) return Status::error("--exit-with-pid and --exit-with-pidfd exclude each other");
  if (!o.netnsPath.empty() && o.netnsFd >= 0) return Status::error("--netns and --netns-fd exclude each other");
  if (o.upstreamInTarget && o.netnsPath.empty() && o.netnsFd < 0)
    return Status::error("--upstream-netns=target needs --netns or --netns-fd");
  // The servers of /etc/resolv.conf, read in the shim's mount namespace, belong to the
  // host's network; asked from the target namespace they may reach nothing (127.0.0.53).
  if (o.upstreamInTarget && o.dnsServers.empty()) {
    for (const ConnectSpec& spec : o.connects)
      for (const Target& t : spec.targets)
        if (t.asksDnsServer())
          return Status::error("--upstream-netns=target needs --dns: --connect '" + spec.text() +
                               "' needs DNS, whose questions would leave from the target namespace, where the "
                               "servers of this host's /etc/resolv.conf may not answer");
  }
  return o;
}

}  // namespace connectable
