#include "injector/status_command.h"

#include <Poco/Exception.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <optional>

#include "common/http_fetch.h"
#include "common/log.h"
#include "common/nearest_name.h"
#include "common/target.h"
#include "common/terminal_text.h"
#include "injector/docker_container.h"
#include "injector/docker_json.h"
#include "injector/problem_records.h"
#include "injector/shim_scrape.h"
#include "injector/shim_supervisor.h"
#include "injector/state_dir_lock.h"
#include "shim/shim_options.h"
#include "shim/shim_status.h"

namespace connectable {
namespace {

const char* kUsage =
    "usage: connectable status [--json] [--state-dir DIR] [--timeout DUR] [CONTAINER]\n"
    "  CONTAINER: a name, an id or an id prefix; all containers when absent\n";

std::string cell(const std::string& s) { return s.empty() ? "-" : s; }

// A shim runs as nobody beside untrusted code, and may be that code's by now: what it says
// goes to root's terminal, where control characters would be escape sequences (a title,
// the clipboard, rows rewritten above).
std::string printable(std::string s) {
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  return s;
}

// The same answer goes into --json as it came, so it must be one object and nothing else:
// text that closes it could add rows for containers of its choice. parseObject refuses
// anything after the value, raw control characters in strings, and text that is not UTF-8;
// a raw C1 control or bidi override, valid in a JSON string, or a carriage return between
// values, would still act on the terminal that shows it (our own shims write none).
Status checkJsonObject(const std::string& text) {
  if (auto parsed = docker_json::parseObject(text); !parsed) return parsed.status();
  if (auto control = firstTerminalControl(text); !control.empty())
    return Status::error(control + " of the answer, which a terminal would act on");
  return Status::ok();
}

std::string bytesText(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0) {
    std::snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(n));
  } else {
    std::snprintf(buf, sizeof buf, "%.1f%s", v, units[u]);
  }
  return buf;
}

using Row = std::vector<std::string>;

// At most this many items of a list in a cell or a note: a label may name hundreds of
// targets, and one of 701 made a line of 31,000 characters. --json has them all.
constexpr size_t kItemsShown = 3;

// "a, b, c ... and 698 more"; `more` is said of the ones left out (" (2 penalized)").
std::string shortList(const std::vector<std::string>& items, const std::string& separator,
                      const std::string& more = "") {
  std::string out;
  for (size_t i = 0; i < items.size() && i < kItemsShown; ++i) out += (i ? separator : "") + items[i];
  if (items.size() > kItemsShown) out += " ... and " + std::to_string(items.size() - kItemsShown) + " more" + more;
  return out;
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> out;
  for (size_t from = 0;;) {
    size_t to = text.find(separator, from);
    out.push_back(text.substr(from, to - from));
    if (to == std::string::npos) return out;
    from = to + 1;
  }
}

// Cells of one port, from the shim's JSON. POCO throws on a malformed answer: caught by the caller.
Row portRow(const StatusRow& r, const Poco::JSON::Object::Ptr& shim, const Poco::JSON::Object::Ptr& port) {
  std::vector<std::string> backends;
  size_t penalizedUnshown = 0;  // a penalized backend past the first few is still counted
  auto list = port->getArray("backends");
  for (size_t i = 0; i < list->size(); ++i) {
    auto b = list->getObject(static_cast<unsigned>(i));
    std::string state = b->getValue<std::string>("state");
    if (state == "penalized") {
      if (i >= kItemsShown) ++penalizedUnshown;
      // Its penalty ran out and the shim is testing it: "0s" would read as "in turn now".
      if (b->has("probing") && b->getValue<bool>("probing")) {
        state += ", probing";
      } else {
        char buf[32];
        std::snprintf(buf, sizeof buf, " %.0fs", b->getValue<double>("penalty_seconds_left"));
        state += buf;
      }
    }
    backends.push_back(b->getValue<std::string>("address") + " " + state);
  }
  std::string backendsCell =
      shortList(backends, ", ", penalizedUnshown ? " (" + std::to_string(penalizedUnshown) + " penalized)" : "");
  if (backendsCell.empty()) backendsCell = "none";
  auto conns = port->getObject("connections");
  auto bytes = port->getObject("bytes");
  std::string connsCell =
      std::to_string(conns->getValue<uint64_t>("active")) + "/" + std::to_string(conns->getValue<uint64_t>("total"));
  std::string bytesCell =
      bytesText(bytes->getValue<uint64_t>("to_backends")) + "/" + bytesText(bytes->getValue<uint64_t>("from_backends"));
  // The container's own program holds the port: its clients reach that program, never these
  // backends, however well they answer. As the shim's own text status says it.
  if (port->has("not_served") && !port->isNull("not_served")) {
    backendsCell = "NOT SERVED";
    connsCell = bytesCell = "-";
  }
  std::string failures;
  auto f = port->getObject("failures");
  std::vector<std::string> names;
  f->getNames(names);
  for (const auto& n : names) {
    auto v = f->getValue<uint64_t>(n);
    if (v) failures += (failures.empty() ? "" : " ") + n + "=" + std::to_string(v);
  }
  return {
      r.containerName,
      shortContainerId(r.containerId),
      std::to_string(port->getValue<int>("port")),
      shortList(split(port->getValue<std::string>("target"), ','), ","),
      backendsCell,
      connsCell,
      bytesCell,
      cell(failures),
      std::to_string(r.shimPid),
      std::to_string(r.restarts),
      formatAge(shim->getValue<double>("uptime_seconds"))};
}

// A target's problem as the resolver words it, which names the host mostly ("x.consul: no
// such name (NXDOMAIN)", "SRV lookup of x.consul failed: ..."): the target is named once.
std::string namedProblem(const std::string& target, const std::string& problem) {
  auto parsed = parseTarget(target);
  if (problem.find(parsed ? parsed->host : target) != std::string::npos) return problem;
  return target + ": " + problem;
}

// What is wrong with a port now, read from its own part of the shim's answer: the shim's
// last error is only the newest one, and a newer error on another port hid this one.
// Empty when nothing is; problems that ended are no longer in the answer.
// POCO throws on a malformed answer: caught by the caller.
std::string portProblem(const Poco::JSON::Object::Ptr& port) {
  const std::string name = "port " + std::to_string(port->getValue<int>("port"));
  if (port->has("not_served") && !port->isNull("not_served"))
    return name + " not served: " + port->getValue<std::string>("not_served");
  std::vector<std::string> issues, pending;
  if (auto targets = port->getArray("targets")) {
    for (size_t i = 0; i < targets->size(); ++i) {
      auto t = targets->getObject(static_cast<unsigned>(i));
      const std::string text = t->getValue<std::string>("target");
      const std::string dns = t->getValue<std::string>("dns");
      if (dns.rfind("failed: ", 0) == 0) {
        issues.push_back("DNS failing: " + namedProblem(text, dns.substr(8)));
      } else if (dns.rfind("stale: ", 0) == 0) {
        issues.push_back("DNS failing, its last answer still used: " + namedProblem(text, dns.substr(7)));
      } else if (dns == "pending") {
        pending.push_back(text);
      }
      std::vector<std::string> outside;
      if (auto list = t->getArray("outside_allow_upstream"))
        for (size_t k = 0; k < list->size(); ++k)
          outside.push_back(list->getElement<std::string>(static_cast<unsigned>(k)));
      if (!outside.empty()) issues.push_back(text + ": " + shortList(outside, ", ") + " outside --allow-upstream");
    }
  }
  const bool none = port->getArray("backends")->size() == 0;
  if (none && issues.empty() && !pending.empty())
    issues.push_back("waiting for the first DNS answer for " + shortList(pending, ", "));
  if (issues.empty()) return none ? name + ": no backends" : "";
  return name + (none ? ": no backends: " : ": ") + shortList(issues, "; ");
}

// A record that names a shim no longer running. The injector rewrites a shim's record as
// the shim ends, and removes those of shims gone by the time it starts, so the record is
// stale: either no injector runs with the state dir, or it has not got to it yet.
std::string goneShimText(pid_t pid, const Result<bool>& injectorRuns) {
  const std::string text = "its shim (pid " + std::to_string(pid) + ") is gone and its record is stale";
  if (!injectorRuns)
    return text + " (whether an injector runs with this state dir is unknown: " + injectorRuns.status().message() + ")";
  if (*injectorRuns) return text + ": the injector running with this state dir has not handled it yet";
  return text + ": no injector is running with this state dir to remove it";
}

}  // namespace

std::string notRunningText(const ShimInfo& info, int64_t now) {
  std::string text = "shim not running: " + (info.notRunning.empty() ? "waiting to be started again" : info.notRunning);
  const int64_t in = info.nextStart - now;
  text += "; next try in " + formatAge(static_cast<double>(std::max<int64_t>(in, 0)));
  if (info.portRetries > 0)
    text += " (the port was still taken at " + std::to_string(info.portRetries) + " tr" +
            (info.portRetries == 1 ? "y" : "ies") + " so far)";
  return text;
}

std::string notRunningText(const ShimInfo& info) {
  return notRunningText(
      info, std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

namespace {

constexpr const char* kLastRecorded =
    "as an injector last recorded it: none runs with this state dir now, and the container may have changed or gone "
    "since";

}  // namespace

std::string formatStatusTable(const std::vector<StatusRow>& rows) {
  std::vector<Row> table = {{"CONTAINER", "ID", "PORT", "TARGET", "BACKENDS", "CONNS(ACTIVE/TOTAL)", "BYTES(OUT/IN)",
                             "FAILURES", "SHIM PID", "RESTARTS", "UPTIME"}};
  std::vector<std::string> notes;
  for (const auto& r : rows) {
    for (const auto& p : r.problems) notes.push_back(containerDisplayName(r.containerName, r.containerId) + ": " + p);
    if (r.shimJson.empty()) {
      table.push_back({r.containerName, shortContainerId(r.containerId), "-", "-", "-", "-", "-", "-",
                       r.shimPid ? std::to_string(r.shimPid) : "-", std::to_string(r.restarts), "-"});
      if (!r.error.empty()) notes.push_back(containerDisplayName(r.containerName, r.containerId) + ": " + r.error);
      if (r.lastRecorded) notes.push_back(containerDisplayName(r.containerName, r.containerId) + ": " + kLastRecorded);
      continue;
    }
    // As --json reads it: POCO's parser alone stops at a 0xff byte and reads what came before.
    auto parsed = docker_json::parseObject(r.shimJson);
    if (!parsed) {
      notes.push_back(r.containerName + ": unreadable status: " + parsed.status().message());
      continue;
    }
    try {
      const docker_json::ObjectPtr& shim = *parsed;
      auto ports = shim->getArray("ports");
      for (size_t i = 0; i < ports->size(); ++i) {
        auto port = ports->getObject(static_cast<unsigned>(i));
        table.push_back(portRow(r, shim, port));
        // For as long as it lasts, not only while it is the shim's last error.
        if (std::string problem = portProblem(port); !problem.empty())
          notes.push_back(containerDisplayName(r.containerName, r.containerId) + ": " + problem);
      }
      if (shim->has("last_error") && !shim->isNull("last_error")) {
        auto e = shim->getObject("last_error");
        notes.push_back(containerDisplayName(r.containerName, r.containerId) + ": last error " +
                        formatAge(e->getValue<double>("seconds_ago")) + " ago: " + e->getValue<std::string>("message"));
      }
    } catch (const Poco::Exception& e) {
      notes.push_back(r.containerName + ": unreadable status: " + e.displayText());
    } catch (const std::exception& e) {
      notes.push_back(r.containerName + ": unreadable status: " + e.what());
    }
  }
  for (auto& row : table)
    for (auto& c : row) c = printable(std::move(c));
  std::vector<size_t> width(table[0].size(), 0);
  for (const auto& row : table)
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  std::string out;
  for (const auto& row : table) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line += std::string(width[c] - row[c].size() + 2, ' ');
    }
    out += line + "\n";
  }
  if (!notes.empty()) out += "\n";
  for (const auto& n : notes) out += printable(n) + "\n";
  return out;
}

namespace {

// Why a container the injector records no shim for has none: its "no shim: " note (its
// labels all bad, the host's network, a shim given up on), else what the records tell.
std::string whyNoShim(const StatusRow& r) {
  for (auto p = r.problems.rbegin(); p != r.problems.rend(); ++p)
    if (p->rfind("no shim: ", 0) == 0) return *p;
  return "no shim: none runs for it now (the container is not running, or not yet started)";
}

}  // namespace

std::string formatStatusJson(const std::vector<StatusRow>& rows) {
  std::string out = "[";
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    std::string shim = r.shimJson;
    while (!shim.empty() && (shim.back() == '\n' || shim.back() == ' ')) shim.pop_back();
    std::string error = r.error;
    if (Status s = shim.empty() ? Status::ok() : checkJsonObject(shim); !s) {
      error = "unreadable status: " + s.message();
      shim.clear();
    }
    if (shim.empty() && error.empty()) error = whyNoShim(r);  // `shim` is null: say why
    if (r.lastRecorded) error += std::string("; ") + kLastRecorded;
    std::string problems;
    for (const auto& p : r.problems) problems += (problems.empty() ? "\"" : ",\"") + log::jsonEscape(p) + "\"";
    out += std::string(i ? "," : "") + "\n{\"container_name\":\"" + log::jsonEscape(r.containerName) +
           "\",\"container_id\":\"" + log::jsonEscape(r.containerId) + "\",\"shim_pid\":" + std::to_string(r.shimPid) +
           ",\"restarts\":" + std::to_string(r.restarts) +
           ",\"error\":" + (error.empty() ? "null" : "\"" + log::jsonEscape(error) + "\"") +
           ",\"problems\":[" + problems + "]" + ",\"shim\":" + (shim.empty() ? "null" : shim) + "}";
  }
  return out + "\n]\n";
}

int runStatusCommand(const std::vector<std::string>& args) {
  std::string stateDir = "/run/connectable";
  std::string which;
  bool json = false;
  Millis timeout{1000};
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](const std::string& name) -> std::string {
      if (a.rfind(name + "=", 0) == 0) return a.substr(name.size() + 1);
      return i + 1 < args.size() ? args[++i] : "";
    };
    if (a == "--json") {
      json = true;
    } else if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--state-dir" || a.rfind("--state-dir=", 0) == 0) {
      stateDir = value("--state-dir");
      if (stateDir.empty()) {
        std::fprintf(stderr, "connectable status: --state-dir needs a path\n");
        return 2;
      }
    } else if (a == "--timeout" || a.rfind("--timeout=", 0) == 0) {
      auto d = parseDuration(value("--timeout"));
      if (!d || d->count() == 0) {
        std::fprintf(stderr, "connectable status: --timeout: %s\n", d ? "must be longer than 0" : d.status().message().c_str());
        return 2;
      }
      timeout = *d;
    } else if (a.rfind('-', 0) == 0 || !which.empty()) {
      static const std::vector<std::string> kOptions = {"--json", "--help", "--state-dir", "--timeout"};
      const std::string hint = a.rfind("--", 0) == 0 ? didYouMean(a.substr(0, a.find('=')), kOptions) : "";
      std::fprintf(stderr, "connectable status: unexpected argument '%s'%s\n%s", a.c_str(), hint.c_str(), kUsage);
      return 2;
    } else {
      which = a;
    }
  }

  std::string dir = stateDir + "/shims";
  auto files = shimRecordFiles(stateDir);
  if (!files) {
    // The usual cause besides the two asked: an injector run with another --state-dir.
    std::fprintf(stderr,
                 "connectable status: %s (is the injector running, and are you root? An injector started with "
                 "--state-dir DIR is asked with the same --state-dir DIR)\n",
                 files.status().message().c_str());
    return 1;
  }

  std::vector<StatusRow> rows;
  std::map<std::string, ProblemRecord> problems;
  for (auto& p : readProblemRecords(stateDir)) problems[p.containerId] = std::move(p);
  auto wanted = [&](const std::string& name, const std::string& id) {
    return which.empty() || which == name || id.rfind(which, 0) == 0;
  };
  std::optional<Result<bool>> injectorRuns;  // asked once, and only when a shim is gone
  bool staleRecords = false;
  for (const auto& file : *files) {
    auto record = readShimRecord(file);
    if (!record) continue;  // being rewritten, or not ours: the injector owns these records
    StatusRow r;
    r.containerId = record->info.containerId;
    r.containerName = record->info.containerName;
    r.shimPid = record->info.shimPid;
    r.restarts = record->info.restarts;
    if (auto p = problems.find(r.containerId); p != problems.end()) {
      r.problems = std::move(p->second.problems);
      problems.erase(p);
    }
    if (!wanted(r.containerName, r.containerId)) continue;
    if (r.shimPid == 0) {
      r.error = notRunningText(record->info);  // no socket to ask
      if (!injectorRuns) injectorRuns = StateDirLock::heldByAnInjector(stateDir);
      if (*injectorRuns && !**injectorRuns) r.error += ", but no injector is running with this state dir to try";
    } else if (!recordedShimRuns(*record)) {
      // Its pid may be another process's by now: shown nowhere, and its socket not asked.
      if (!injectorRuns) injectorRuns = StateDirLock::heldByAnInjector(stateDir);
      r.error = goneShimText(r.shimPid, *injectorRuns);
      r.shimPid = 0;
      staleRecords = true;
    }
    rows.push_back(r);
  }
  // Containers the injector knows of but runs no shim for, and says why.
  for (auto& [id, p] : problems) {
    if (!wanted(p.containerName, id)) continue;
    StatusRow r;
    r.containerId = id;
    r.containerName = p.containerName;
    r.problems = std::move(p.problems);
    // The injector removes a container's problems when it goes; without one, they stay.
    if (!injectorRuns) injectorRuns = StateDirLock::heldByAnInjector(stateDir);
    r.lastRecorded = *injectorRuns && !**injectorRuns;
    rows.push_back(std::move(r));
  }
  if (!which.empty() && rows.empty()) {
    std::fprintf(stderr, "connectable status: no injected container named or with an id starting '%s'\n", which.c_str());
    return 1;
  }
  std::sort(rows.begin(), rows.end(), [](const StatusRow& a, const StatusRow& b) {
    return a.containerName != b.containerName ? a.containerName < b.containerName : a.containerId < b.containerId;
  });

  // On a private loop, 32 shims at a time: a stuck shim costs one timeout, and a host with
  // more shims than descriptors is still shown whole.
  EventLoop loop;
  if (Status s = loop.init(); !s) {
    std::fprintf(stderr, "connectable status: %s\n", s.message().c_str());
    return 1;
  }
  std::vector<std::string> sockets;
  std::vector<size_t> asked;  // the rows of containers with a shim
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i].shimPid == 0) continue;
    sockets.push_back(dir + "/" + rows[i].containerId + ".sock");
    asked.push_back(i);
  }
  ShimScrapeLimits limits;
  limits.timeout = timeout;
  bool done = false;
  scrapeShims(loop, std::move(sockets), "/status", limits, [&](ShimScrapeResult scraped) {
    for (size_t k = 0; k < asked.size(); ++k) {
      auto& reply = scraped.replies[k];
      StatusRow& row = rows[asked[k]];
      if (!reply) {
        row.error = reply.status().message();
      } else if (reply->code != 200) {
        row.error = "shim answered " + std::to_string(reply->code) + ": " + reply->body;
      } else {
        row.shimJson = std::move(reply->body);
      }
    }
    done = true;
    loop.stop();
  });
  if (!done) loop.run();
  std::fputs((json ? formatStatusJson(rows) : formatStatusTable(rows)).c_str(), stdout);
  return staleRecords ? 3 : 0;
}

}  // namespace connectable
