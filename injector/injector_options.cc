#include "injector/injector_options.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <set>
#include <utility>

#include "common/nearest_name.h"
#include "common/privileges.h"
#include "shim/shim_options.h"

namespace connectable {

const char* injectorUsage() {
  return R"(usage: connectable [options]
       connectable status [--json] [--state-dir DIR] [--timeout DUR] [CONTAINER]

Watches Docker and puts a connectable-shim into every container labelled
connect.<port>=<target>[,<target>...], so the container reaches its dependencies at
localhost:<port>. Runs as root (it enters the containers' network namespaces).

Options:
  --docker URL             unix://PATH or tcp://HOST:PORT (default: DOCKER_HOST, else the docker
                           CLI's context, else unix:///var/run/docker.sock); plain HTTP, so
                           refused where DOCKER_TLS_VERIFY, DOCKER_TLS, DOCKER_CERT_PATH or the
                           context asks for TLS
  --state-dir DIR          where shims are recorded for re-adoption (default /run/connectable)
  --shim PATH              the shim binary (default: connectable-shim next to this program)
  --stop-shims-on-exit     on SIGTERM, stop the shims too (default: leave them serving)
  --metrics-listen IP:PORT serve Prometheus metrics of the injector and all its shims on
                           http://IP:PORT/metrics (default: off)
  --shim-uids FIRST-LAST   run each container's shim as a uid of its own from this range, one
                           no other user or program has (no passwd entry needed), instead of
                           all as --user: then no shim can signal, renice or limit another;
                           refused if /etc/passwd or /etc/group has an id in it
  --log-level LEVEL        debug, info (default), warn, error
  --log-format FORMAT      text (default) or json
  --help, --version

Passed to every shim (a container's connectable.<option> labels override all but --dns,
--user, --data-path and --allow-upstream, which are the host's choice; --max-conns a label
may only lower, --dns-min-ttl only raise):
  --dns SERVERS  --dns-min-ttl DUR  --dns-timeout DUR  --balance POLICY
  --connect-timeout DUR  --idle-timeout DUR  --max-conns N  --drain-timeout DUR  --user NAME
  --data-path MODE  --allow-upstream CIDR[,CIDR...]  --tcp-keepalive DUR
See connectable-shim --help for their meaning.
)";
}

namespace {

// FIRST-LAST, both uids other than root's and (uid_t)-1 ("unchanged" to setresuid).
Status parseUidRange(const std::string& text, SupervisorOptions* out) {
  const size_t dash = text.find('-');
  std::optional<uid_t> first, last;
  if (dash != std::string::npos) {
    first = parseUid(std::string_view(text).substr(0, dash));
    last = parseUid(std::string_view(text).substr(dash + 1));
  }
  if (!first || !last || *first == 0 || *last == 0)
    return Status::error("'" + text + "' is not FIRST-LAST, two uids from 1 to 4294967294");
  if (*last < *first) return Status::error("'" + text + "': LAST is below FIRST");
  out->shimUidFirst = *first;
  out->shimUidCount = *last - *first + 1;
  return Status::ok();
}

// An entry of a passwd or group file: its name and its uid or gid (the third field).
struct Account {
  std::string name;
  uid_t id = 0;
};

// The entries of a passwd or group file; none if it does not exist. Comments, NIS
// (+name, -name) and malformed lines are skipped.
Result<std::vector<Account>> readAccounts(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> in(std::fopen(path.c_str(), "re"), &std::fclose);
  if (!in) {
    if (errno == ENOENT) return std::vector<Account>{};
    return errnoStatus("reading " + path, errno);
  }
  std::vector<Account> out;
  char* buffer = nullptr;
  size_t capacity = 0;
  for (ssize_t n; (n = getline(&buffer, &capacity, in.get())) >= 0;) {
    std::string_view line(buffer, static_cast<size_t>(n));
    if (line.empty() || line[0] == '#' || line[0] == '+' || line[0] == '-') continue;
    const size_t first = line.find(':');
    const size_t second = first == std::string_view::npos ? first : line.find(':', first + 1);
    const size_t third = second == std::string_view::npos ? second : line.find(':', second + 1);
    if (third == std::string_view::npos) continue;
    if (auto id = parseUid(line.substr(second + 1, third - second - 1)))
      out.push_back({std::string(line.substr(0, first)), *id});
  }
  std::free(buffer);
  return out;
}

// A shim's uid and its group (the same number) must be no one else's: whoever had that uid
// could signal, renice or limit the shim, and a group would give the shim its files.
Status checkShimUidsAreFree(const SupervisorOptions& o, const AccountFiles& files) {
  const uint64_t first = o.shimUidFirst, last = first + o.shimUidCount - 1;
  const std::string range = std::to_string(first) + "-" + std::to_string(last);
  std::string clash;
  size_t clashes = 0;
  for (const auto& [path, kind] : {std::pair{files.passwd, "uid"}, std::pair{files.group, "gid"}}) {
    auto accounts = readAccounts(path);
    if (!accounts) return accounts.status().withContext("--shim-uids");
    for (const Account& a : *accounts) {
      if (a.id < first || a.id > last) continue;
      if (clashes++ == 0) clash = std::string(kind) + " " + std::to_string(a.id) + " (" + a.name + ")";
    }
  }
  if (clashes == 0) return Status::ok();
  return Status::error(clash + " is in --shim-uids " + range +
                       (clashes == 2 ? " (and 1 more user or group)"
                        : clashes > 2 ? " (and " + std::to_string(clashes - 1) + " more users and groups)"
                                      : "") +
                       ": a shim would share its uid or group; choose uids no user or group has, e.g. 2000000-2065535");
}

// `connectable status` as one who wrote the injector's command line with `status` after
// its options meant it: the subcommand first, with the options of status they gave.
std::string statusCommandFor(const std::vector<std::string>& args) {
  std::string command = "connectable status";
  for (size_t i = 0; i < args.size(); ++i) {
    for (const char* option : {"--state-dir", "--timeout"}) {
      if (args[i] == option && i + 1 < args.size()) command += " " + args[i] + " " + args[i + 1];
      if (args[i].rfind(std::string(option) + "=", 0) == 0) command += " " + args[i];
    }
    if (args[i] == "--json") command += " --json";
  }
  return command;
}

}  // namespace

Result<InjectorCommandLine> parseInjectorCommandLine(const std::vector<std::string>& args, const std::string& selfExe,
                                                     const AccountFiles& accounts) {
  static const std::set<std::string> kShimOptions = {"--dns", "--dns-min-ttl", "--dns-timeout", "--balance",
                                                     "--connect-timeout", "--idle-timeout", "--max-conns",
                                                     "--drain-timeout", "--user", "--data-path",
                                                     "--allow-upstream", "--tcp-keepalive"};
  InjectorCommandLine c;
  auto slash = selfExe.rfind('/');
  c.options.supervisor.shimPath = (slash == std::string::npos ? std::string(".") : selfExe.substr(0, slash)) + "/connectable-shim";
  for (size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i], value;
    bool hasValue = false;
    if (arg == "-h") {
      c.help = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0) {
      if (i == 0 && arg == "run") continue;
      if (arg == "status") return Status::error("'status' must come first: " + statusCommandFor(args));
      return Status::error("unexpected argument '" + arg + "'");
    }
    size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      hasValue = true;
    }
    if ((arg == "--help" || arg == "--version" || arg == "--stop-shims-on-exit") && hasValue)
      return Status::error(arg + " takes no value (given '" + value + "')");
    if (arg == "--help") { c.help = true; continue; }
    if (arg == "--version") { c.version = true; continue; }
    if (arg == "--stop-shims-on-exit") { c.options.stopShimsOnExit = true; continue; }
    static const std::set<std::string> kOwn = {"--docker", "--state-dir", "--shim", "--log-level", "--log-format",
                                               "--metrics-listen", "--shim-uids"};
    if (!kOwn.count(arg) && !kShimOptions.count(arg)) {
      // `connectable --json status`: the option is status's, and so is the mistake.
      if (std::find(args.begin() + static_cast<long>(i) + 1, args.end(), "status") != args.end())
        return Status::error("'status' must come first: " + statusCommandFor(args));
      std::vector<std::string> known = {"--help", "--version", "--stop-shims-on-exit"};
      known.insert(known.end(), kOwn.begin(), kOwn.end());
      known.insert(known.end(), kShimOptions.begin(), kShimOptions.end());
      return Status::error("unknown option '" + arg + "'" + didYouMean(arg, known));
    }
    if (!hasValue) {
      if (i + 1 >= args.size()) return Status::error(arg + " needs a value");
      value = args[++i];
    }
    if (arg == "--docker") {
      c.docker = value;
    } else if (arg == "--state-dir") {
      if (value.empty() || value.front() != '/') return Status::error("--state-dir needs an absolute path");
      if (value.size() > kMaxStateDir)
        return Status::error("--state-dir '" + value + "' is longer than " + std::to_string(kMaxStateDir) +
                             " characters, too long for the shims' control sockets");
      c.options.supervisor.stateDir = value;
    } else if (arg == "--metrics-listen") {
      if (value.empty()) return Status::error("--metrics-listen needs IP:PORT");
      c.metricsListen = value;
    } else if (arg == "--shim") {
      c.options.supervisor.shimPath = value;
    } else if (arg == "--shim-uids") {
      if (Status s = parseUidRange(value, &c.options.supervisor); !s) return s.withContext("--shim-uids");
    } else if (arg == "--log-level") {
      if (!log::parseLevel(value, &c.logLevel)) return Status::error("--log-level: '" + value + "' is not one of debug, info, warn, error");
    } else if (arg == "--log-format") {
      if (!log::parseFormat(value, &c.logFormat)) return Status::error("--log-format: '" + value + "' is neither 'text' nor 'json'");
    } else {
      // The shim's own parser judges the value, so the two programs never disagree.
      auto checked = parseShimOptions({"--connect=1=127.0.0.1:1", arg + "=" + value});
      if (!checked) return checked.status();
      c.options.supervisor.shimArgs.push_back(arg + "=" + value);
    }
  }
  if (c.options.supervisor.shimUidCount > 0) {
    for (const auto& a : c.options.supervisor.shimArgs)
      if (a.rfind("--user=", 0) == 0) return Status::error("--user and --shim-uids: give one or the other");
    if (Status s = checkShimUidsAreFree(c.options.supervisor, accounts); !s) return s;
  } else {
    // Every shim becomes this user once listening (the last --user, as in its parser): one
    // that cannot work here would fail every container's shim, restarted over and over.
    std::string user = ShimOptions().user;
    for (const auto& a : c.options.supervisor.shimArgs)
      if (a.rfind("--user=", 0) == 0) user = a.substr(7);
    if (Status s = checkUnprivilegedUser(user); !s) return s.withContext("--user");
  }
  c.options.supervisor.shimArgs.push_back(std::string("--log-level=") + (c.logLevel == log::Level::Debug ? "debug" : c.logLevel == log::Level::Info ? "info" : c.logLevel == log::Level::Warn ? "warn" : "error"));
  c.options.supervisor.shimArgs.push_back(std::string("--log-format=") + (c.logFormat == log::Format::Json ? "json" : "text"));
  return c;
}

}  // namespace connectable
