#include "injector/shim_supervisor.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <Poco/Exception.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

#include "common/log.h"
#include "common/privileges.h"
#include "common/target.h"
#include "injector/docker_container.h"
#include "injector/docker_json.h"
#include "injector/port_probe.h"
#include "shim/shim_options.h"

namespace connectable {
namespace {

// Exit codes of the forked child when the shim program never ran (the shell's convention).
constexpr int kExitChildSetup = 126;
constexpr int kExitExecFailed = 127;
// Where the child writes its errno when it cannot run the shim; closed by a successful exec.
constexpr int kErrnoFd = 5;

// execve refuses (E2BIG) one string of MAX_ARG_STRLEN (32 pages) or more, and arguments
// plus environment beyond ARG_MAX: no retry could help, so this is checked before fork.
Status checkArgvFits(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  const size_t maxArg = static_cast<size_t>(sysconf(_SC_PAGESIZE)) * 32;
  size_t total = 0;
  for (const auto& a : argv) {
    if (a.size() + 1 > maxArg)
      return Status::error("argument '" + a.substr(0, 32) + "...' is " + std::to_string(a.size()) +
                           " bytes, over exec's limit of " + std::to_string(maxArg - 1));
    total += a.size() + 1 + sizeof(char*);
  }
  for (const auto& e : env) total += e.size() + 1 + sizeof(char*);
  long argMax = sysconf(_SC_ARG_MAX);
  const size_t limit = argMax > 0 ? static_cast<size_t>(argMax) / 2 : 128 * 1024;  // well under it
  if (total > limit)
    return Status::error("arguments and environment of " + std::to_string(total) +
                         " bytes, over exec's limit (half of ARG_MAX: " + std::to_string(limit) + ")");
  return Status::ok();
}

// The injector's environment is the host's (a proxy's credentials, where Docker listens,
// systemd's sockets), none of it for a process serving untrusted containers. The shim is
// configured by its arguments alone; it keeps the search path, the time zone, and what
// sanitizer builds read.
std::vector<std::string> shimEnvironment() {
  static const char* const kPassed[] = {"PATH", "TZ", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"};
  std::vector<std::string> env;
  for (const char* name : kPassed)
    if (const char* value = std::getenv(name)) env.push_back(std::string(name) + "=" + value);
  return env;
}

// Unix time, for records read by another process (`connectable status`).
int64_t wallClockSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// In the child, before _exit: tells the parent why the shim never ran.
void reportErrno(int fd, int err) {
  ssize_t unused = write(fd, &err, sizeof err);
  (void)unused;
}

// In the parent: the child's errno, or 0 once its exec succeeded (and closed the pipe).
// Waits for that, which takes as long as the few calls before the exec.
int readChildErrno(int fd) {
  int err = 0;
  ssize_t n;
  do {
    n = read(fd, &err, sizeof err);
  } while (n < 0 && errno == EINTR);
  return n == static_cast<ssize_t>(sizeof err) ? err : 0;
}

}  // namespace


struct ShimSupervisor::Managed : IoHandler {
  ShimSupervisor* owner = nullptr;
  ShimInfo info;
  std::vector<std::string> args;  // after argv[0]; fds 3 and 4 are the namespace and the init
  ProcessHandle init;
  ProcessHandle shim;
  unsigned long long shimStartTime = 0;
  unsigned long long initStartTime = 0;
  bool ourChild = false;
  bool stopping = false;
  bool gone = false;  // exited and forgotten; deletion deferred
  bool retired = false;  // replaced by a successor under the same id; in retired_
  uint32_t crashesInARow = 0;
  int execErrno = 0;  // why the last spawn's child could not run the shim; 0 if it did
  // A port of it is taken inside the container: logged once, then waited out quietly, each
  // try a port retry (info.portRetries), not a restart.
  bool portInUseLogged = false;
  std::string optionsDrift;  // see ShimSupervisor::optionsDrift
  Clock::time_point startedAt;
  EventLoop::TimerId killTimer = 0;
  EventLoop::TimerId restartTimer = 0;
  EventLoop::TimerId servingTimer = 0;  // after a taken port: still up then, it serves

  void onIo(uint32_t) override {
    if (!gone) owner->onShimExit(*this);
  }
};

namespace {

// The options a shim's arguments give it, as it reads them (readShimOption): of a
// repeatable option every value in order, of another the last; each value as written and
// as read. Left out: what is the injector's own business (the descriptors, the control
// socket, the name, which a rename changes, and with `withUser` false the uid, which
// --shim-uids gives) and the log options, which change no proxying.
struct OptionValue {
  std::string written, read;
  bool operator==(const OptionValue& o) const { return read == o.read; }
};
std::map<std::string, std::vector<OptionValue>> effectiveOptions(const std::vector<std::string>& args, bool withUser) {
  static const std::set<std::string> kIgnored = {"--netns-fd", "--exit-with-pidfd", "--name", "--control",
                                                 "--log-level", "--log-format"};
  std::map<std::string, std::vector<OptionValue>> options;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string name = args[i], value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    } else if (i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0) {
      value = args[++i];
    }
    if (name.rfind("--", 0) != 0 || kIgnored.count(name) || (name == "--user" && !withUser)) continue;  // no option
    auto reading = readShimOption(name, value);
    auto& values = options[name];
    if (!reading.repeats) values.clear();
    values.push_back({value, reading.value});
  }
  return options;
}

// How the options of a shim started with `running` differ from those `wanted` gives, as
// ShimSupervisor::optionsDrift says it; empty when they do not. Cut past 512 bytes (a
// label may be 16 KiB), at a character's start.
std::string argumentsDrift(const std::vector<std::string>& running, const std::vector<std::string>& wanted,
                           bool withUser) {
  const auto has = effectiveOptions(running, withUser), gets = effectiveOptions(wanted, withUser);
  std::string lost, gained;
  auto add = [](std::string& out, const std::string& name, const std::vector<OptionValue>& values) {
    for (const auto& v : values) out += (out.empty() ? "" : " ") + name + "=" + v.written;
  };
  static const std::vector<OptionValue> kNone;
  std::set<std::string> names;
  for (const auto& [name, values] : has) names.insert(name);
  for (const auto& [name, values] : gets) names.insert(name);
  for (const auto& name : names) {
    auto h = has.find(name), g = gets.find(name);
    const auto& before = h == has.end() ? kNone : h->second;
    const auto& after = g == gets.end() ? kNone : g->second;
    if (before == after) continue;
    add(lost, name, before);
    add(gained, name, after);
  }
  std::string drift;
  if (!lost.empty() && !gained.empty()) drift = "started with " + lost + ", would now get " + gained;
  else if (!lost.empty()) drift = "started with " + lost + ", which it would no longer get";
  else if (!gained.empty()) drift = "would now also get " + gained;
  if (drift.size() > 512) {
    size_t cut = 509;
    while (cut > 0 && (static_cast<unsigned char>(drift[cut]) & 0xc0) == 0x80) --cut;
    drift = drift.substr(0, cut) + "...";
  }
  return drift;
}

log::Field containerField(const ShimInfo& info) {
  return {"container", containerDisplayName(info.containerName, info.containerId)};
}

bool makeDirs(const std::string& path) {
  std::string partial;
  std::istringstream parts(path);
  std::string part;
  while (std::getline(parts, part, '/')) {
    if (part.empty()) {
      partial = partial.empty() ? "/" : partial;
      continue;
    }
    partial += (partial.empty() || partial.back() == '/' ? "" : "/") + part;
    if (mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST) return false;
  }
  return true;
}

}  // namespace

Status replaceStateFile(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    if (!out) return Status::error("cannot write " + tmp);
  }
  // rename is atomic: a crash leaves the old file or the new one, never half of one.
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    Status s = errnoStatus("renaming " + tmp + " to " + path, errno);
    ::unlink(tmp.c_str());
    return s;
  }
  return Status::ok();
}

Status checkPrivateDir(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return errnoStatus("state dir " + path, errno);
  if (S_ISLNK(st.st_mode)) return Status::error("state dir " + path + " is a symbolic link; give the directory itself");
  if (!S_ISDIR(st.st_mode)) return Status::error("state dir " + path + " is not a directory");
  if (st.st_uid != geteuid())
    return Status::error("state dir " + path + " is owned by uid " + std::to_string(st.st_uid) + ", not by uid " +
                         std::to_string(geteuid()) + " (this injector)");
  if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Status::error("state dir " + path + " is writable by group or others (mode " + mode +
                         "); give a directory only this injector may write");
  }
  return Status::ok();
}

ShimSupervisor::ShimSupervisor(EventLoop& loop, SupervisorOptions options)
    : loop_(loop), options_(std::move(options)) {}

ShimSupervisor::~ShimSupervisor() {
  for (auto& [id, m] : shims_) unwatch(*m);
  for (auto& m : retired_) {
    unwatch(*m);
    // Nobody would kill or reap it after us, and no record lets a later injector find it.
    if (m->shim.valid()) (void)m->shim.signal(SIGKILL);
  }
}

void ShimSupervisor::unwatch(Managed& m) {
  if (m.shim.valid()) loop_.remove(m.shim.fd());
  if (m.killTimer) loop_.cancelTimer(m.killTimer);
  if (m.restartTimer) loop_.cancelTimer(m.restartTimer);
  if (m.servingTimer) loop_.cancelTimer(m.servingTimer);
  m.killTimer = m.restartTimer = m.servingTimer = 0;
}

Status ShimSupervisor::init() {
  // <state-dir>/shims/<64 hex>.sock must fit a UNIX socket address.
  if (controlPath(std::string(64, '0')).size() > kMaxControlPath)
    return Status::error("--state-dir '" + options_.stateDir + "' is too long for the shims' control sockets (at most " +
                         std::to_string(kMaxStateDir) + " characters)");
  // Missing directories are created private; existing ones are checked, never chmod'ed
  // (--state-dir /tmp must not make /tmp root's only).
  if (!makeDirs(options_.stateDir)) return errnoStatus("creating state dir " + options_.stateDir, errno);
  if (Status s = checkPrivateDir(options_.stateDir); !s) return s;
  // Before any record is read: another injector's would be adopted, and its shims stopped.
  if (!stateDirLock_.held()) {
    auto lock = StateDirLock::acquire(options_.stateDir);
    if (!lock) return lock.status();
    stateDirLock_ = std::move(*lock);
  }
  std::string shims = options_.stateDir + "/shims";
  if (mkdir(shims.c_str(), 0700) != 0 && errno != EEXIST) return errnoStatus("creating state dir " + shims, errno);
  return checkPrivateDir(shims);
}

std::string ShimSupervisor::statePath(const std::string& containerId) const {
  return options_.stateDir + "/shims/" + containerId + ".json";
}

std::string ShimSupervisor::controlPath(const std::string& containerId) const {
  return options_.stateDir + "/shims/" + containerId + ".sock";
}

bool ShimSupervisor::serves(const std::string& containerId) const {
  auto it = shims_.find(containerId);
  return it != shims_.end() && !it->second->stopping;
}

bool ShimSupervisor::servesLiveInit(const std::string& containerId) const {
  auto it = shims_.find(containerId);
  return it != shims_.end() && !it->second->stopping && it->second->init.alive();
}

pid_t ShimSupervisor::initPidOf(const std::string& containerId) const {
  auto it = shims_.find(containerId);
  return it == shims_.end() ? 0 : it->second->info.initPid;
}

std::string ShimSupervisor::containerNameOf(const std::string& containerId) const {
  auto it = shims_.find(containerId);
  return it == shims_.end() ? "" : it->second->info.containerName;
}

std::vector<std::string> ShimSupervisor::argumentsFor(const std::string& containerId, const std::string& containerName,
                                                      const ContainerRequest& request) const {
  std::vector<std::string> args = {"--netns-fd", "3", "--exit-with-pidfd", "4", "--name",
                                   containerDisplayName(containerName, containerId), "--control",
                                   controlPath(containerId)};
  args.insert(args.end(), options_.shimArgs.begin(), options_.shimArgs.end());
  args.insert(args.end(), request.shimArgs.begin(), request.shimArgs.end());
  for (const auto& c : request.connects) args.push_back("--connect=" + c.text());
  return args;
}

namespace {

// A shim's command line as the shim itself will check it, before one is started for it.
Status checkShimCommandLine(const std::vector<std::string>& args) {
  auto checked = parseShimOptions(args);
  return checked ? Status::ok() : checked.status().withContext("shim options");
}

}  // namespace

Status ShimSupervisor::checkArguments(const std::string& containerId, const std::string& containerName,
                                      const ContainerRequest& request) const {
  return checkShimCommandLine(argumentsFor(containerId, containerName, request));
}

void ShimSupervisor::checkOptions(const std::string& containerId, const std::string& containerName,
                                  const ContainerRequest& request) {
  auto it = shims_.find(containerId);
  if (it == shims_.end() || it->second->stopping) return;
  it->second->optionsDrift = driftOf(it->second->args, argumentsFor(containerId, containerName, request));
}

std::string ShimSupervisor::optionsDrift(const std::string& containerId) const {
  auto it = shims_.find(containerId);
  return it == shims_.end() || it->second->stopping ? "" : it->second->optionsDrift;
}

std::vector<ShimInfo> ShimSupervisor::list() const {
  std::vector<ShimInfo> out;
  for (const auto& [id, m] : shims_) out.push_back(m->info);
  return out;
}

Status ShimSupervisor::ensure(const std::string& containerId, const std::string& containerName,
                              const ContainerRequest& request, ProcessHandle init, NetnsFd netns) {
  // The shim's command line, checked by its own rules before anything is replaced or
  // started: the host's options and the container's labels are each fine alone, but not
  // every pair is (--upstream-netns=target with DNS targets needs --dns).
  std::vector<std::string> args = argumentsFor(containerId, containerName, request);
  auto inode = netns.inode();
  if (!inode) return inode.status();
  auto it = shims_.find(containerId);
  if (it != shims_.end()) {
    Managed& old = *it->second;
    if (!old.stopping && old.info.netnsInode == *inode && old.init.alive()) {
      old.optionsDrift = driftOf(old.args, args);
      return Status::ok();
    }
  }
  if (options_.shimUidCount > 0) {
    auto uid = uidFor(containerId);
    if (!uid) return uid.status();
    args.push_back("--user=" + std::to_string(*uid));
  }
  if (Status s = checkShimCommandLine(args); !s) return s;
  if (it != shims_.end()) {
    Managed& old = *it->second;
    // The container restarted (new namespace) or we had the wrong process: start over.
    log::info("replacing shim for a new namespace", {containerField(old.info)});
    stop(containerId, "replaced");
    retire(containerId);
  }
  auto m = std::make_unique<Managed>();
  m->owner = this;
  m->info.containerId = containerId;
  m->info.containerName = containerName;
  m->info.initPid = init.pid();
  m->info.netnsInode = *inode;
  m->info.since = loop_.now();
  for (const auto& c : request.connects) m->info.ports += (m->info.ports.empty() ? "" : ",") + std::to_string(c.port);
  auto initStart = processStartTime(init.pid());
  if (!initStart) return initStart.status().withContext("container init");
  m->initStartTime = *initStart;
  m->init = std::move(init);
  m->info.control = controlPath(containerId);
  // The shim's log lines then name the container as the injector's do: name (short id).
  m->args = std::move(args);
  Managed& ref = *m;
  shims_[containerId] = std::move(m);
  (void)netns;  // spawn reopens it from the init: the same namespace, checked by inode
  return spawn(ref);
}

namespace {

// The uid a shim was given by number (the last --user wins, as in its parser); none for a
// name.
std::optional<uint32_t> numericUser(const std::vector<std::string>& args) {
  std::optional<uint32_t> uid;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string value;
    if (args[i].rfind("--user=", 0) == 0) value = args[i].substr(7);
    else if (args[i] == "--user" && i + 1 < args.size()) value = args[i + 1];
    else continue;
    uid = parseUid(value);
  }
  return uid;
}

}  // namespace

Result<uint32_t> ShimSupervisor::uidFor(const std::string& containerId) const {
  std::set<uint32_t> taken;
  std::optional<uint32_t> own;
  auto note = [&](const Managed& m) {
    auto uid = numericUser(m.args);
    if (!uid) return;
    // A container restarted keeps its uid: its old shim, still exiting, is its own.
    if (m.info.containerId == containerId && *uid - options_.shimUidFirst < options_.shimUidCount) own = uid;
    taken.insert(*uid);
  };
  for (const auto& [id, m] : shims_) note(*m);
  for (const auto& m : retired_) note(*m);
  if (own) return *own;
  for (uint64_t uid = options_.shimUidFirst; uid < uint64_t{options_.shimUidFirst} + options_.shimUidCount; ++uid)
    if (!taken.count(static_cast<uint32_t>(uid))) return static_cast<uint32_t>(uid);
  return Status::error("every uid of --shim-uids " + std::to_string(options_.shimUidFirst) + "-" +
                       std::to_string(options_.shimUidFirst + options_.shimUidCount - 1) + " is some other shim's");
}

std::string ShimSupervisor::driftOf(const std::vector<std::string>& running, const std::vector<std::string>& wanted) const {
  // Without --shim-uids, every shim runs as the host's --user: compared as any option.
  if (options_.shimUidCount == 0) return argumentsDrift(running, wanted, true);
  // With it, each shim has a uid of its own, as long as it runs: it differs only when it is
  // outside the range now (the range changed, or --shim-uids is new).
  std::string drift = argumentsDrift(running, wanted, false);
  auto uid = numericUser(running);
  if (!uid || *uid - options_.shimUidFirst >= options_.shimUidCount)
    drift += (drift.empty() ? "" : "; ") + (uid ? "runs as uid " + std::to_string(*uid) : std::string("runs as a user named")) +
             ", outside --shim-uids " + std::to_string(options_.shimUidFirst) + "-" +
             std::to_string(options_.shimUidFirst + options_.shimUidCount - 1);
  return drift;
}

Status ShimSupervisor::spawn(Managed& m) {
  // Giving up on a restart: the record and control socket of the shim that died would
  // otherwise name it until the next injector, for `connectable status` to list.
  auto netns = m.init.openNetns();
  if (!netns) {
    log::warn("cannot open the container's namespace; not starting its shim",
              {containerField(m.info), {"error", netns.status().message()}});
    removeState(m.info.containerId);
    forget(m.info.containerId);
    return netns.status();
  }
  auto inode = netns->inode();
  if (!inode || *inode != m.info.netnsInode) {
    log::warn("the container's init changed namespace; not starting its shim", {containerField(m.info)});
    removeState(m.info.containerId);
    forget(m.info.containerId);
    return Status::error("the container's init changed namespace");
  }
  // Renamed since the last start: the new shim's log lines name the container as it is now.
  auto name = std::find(m.args.begin(), m.args.end(), "--name");
  if (name != m.args.end() && name + 1 != m.args.end()) name[1] = containerDisplayName(m.info.containerName, m.info.containerId);
  // Everything the child needs is built before fork: after it, only async-signal-safe calls.
  std::vector<std::string> argvStrings = {options_.shimPath};
  argvStrings.insert(argvStrings.end(), m.args.begin(), m.args.end());
  std::vector<char*> argv;
  for (auto& a : argvStrings) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> envStrings = shimEnvironment();
  std::vector<char*> envp;
  for (auto& e : envStrings) envp.push_back(e.data());
  envp.push_back(nullptr);
  if (Status s = checkArgvFits(argvStrings, envStrings); !s) {
    log::error("the shim's arguments are too long to run it; not starting it",
               {containerField(m.info), {"error", s.message()}});
    removeState(m.info.containerId);
    forget(m.info.containerId);
    return s;
  }
  const int nsFd = netns->fd();
  const int initFd = m.init.fd();
  int errnoPipe[2];
  if (pipe2(errnoPipe, O_CLOEXEC) != 0) {
    const std::string why = errnoStatus("pipe", errno).message();
    log::error("cannot start the shim", {containerField(m.info), {"error", why}});
    scheduleRestart(m, "could not start it: " + why);
    return Status::ok();
  }

  pid_t pid = fork();
  if (pid < 0) {
    const std::string why = errnoStatus("fork", errno).message();
    log::error("fork failed", {containerField(m.info), {"error", why}});
    close(errnoPipe[0]);
    close(errnoPipe[1]);
    scheduleRestart(m, "could not start it: " + why);
    return Status::ok();
  }
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    setsid();  // its own session: a Ctrl-C meant for the injector does not reach the shims
    // Move the fds out of the way first, so no dup below can clobber another.
    int ns = fcntl(nsFd, F_DUPFD, 10);
    int ini = fcntl(initFd, F_DUPFD, 10);
    int err = fcntl(errnoPipe[1], F_DUPFD_CLOEXEC, 10);
    if (ns < 0 || ini < 0 || err < 0 || dup2(ns, 3) < 0 || dup2(ini, 4) < 0 || dup3(err, kErrnoFd, O_CLOEXEC) < 0) {
      reportErrno(err >= 0 ? err : errnoPipe[1], errno);
      _exit(kExitChildSetup);
    }
    close_range(kErrnoFd + 1, ~0u, 0);
    execve(argv[0], argv.data(), envp.data());
    reportErrno(kErrnoFd, errno);
    _exit(kExitExecFailed);
  }
  close(errnoPipe[1]);
  m.execErrno = readChildErrno(errnoPipe[0]);
  close(errnoPipe[0]);
  auto handle = ProcessHandle::open(pid);
  if (!handle) {
    // Cannot happen for our own child (a zombie keeps its pid until reaped); be safe anyway.
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    log::error("cannot watch the new shim", {containerField(m.info), {"error", handle.status().message()}});
    scheduleRestart(m, "could not watch it: " + handle.status().message());
    return Status::ok();
  }
  m.shim = std::move(*handle);
  m.ourChild = true;
  m.startedAt = loop_.now();
  m.info.shimPid = pid;
  m.info.notRunning.clear();
  m.info.nextStart = 0;
  auto started = processStartTime(pid);
  m.shimStartTime = started ? *started : 0;
  if (Status s = loop_.add(m.shim.fd(), EPOLLIN, &m); !s) {
    log::error("cannot watch the new shim", {containerField(m.info), {"error", s.message()}});
  }
  writeState(m);
  // While a port is taken, a try is told once its outcome is known (it serves, or not).
  log::write(m.portInUseLogged ? log::Level::Debug : log::Level::Info, "shim started",
             {containerField(m.info), {"pid", std::to_string(pid)}, {"ports", m.info.ports},
              {"init_pid", std::to_string(m.info.initPid)}});
  return Status::ok();
}

void ShimSupervisor::onShimExit(Managed& m) {
  loop_.remove(m.shim.fd());
  std::string how = "exited";
  int code = -1;
  if (m.ourChild) {
    int status = 0;
    if (waitpid(m.info.shimPid, &status, WNOHANG) == m.info.shimPid) {
      if (WIFEXITED(status)) {
        code = WEXITSTATUS(status);
        how = "exited with status " + std::to_string(code);
      } else if (WIFSIGNALED(status)) {
        how = std::string("killed by signal ") + std::to_string(WTERMSIG(status));
      }
    }
  }
  m.shim.reset();
  if (m.killTimer) loop_.cancelTimer(m.killTimer);
  if (m.servingTimer) loop_.cancelTimer(m.servingTimer);  // it did not stay up
  m.killTimer = m.servingTimer = 0;
  if (m.retired) {
    // The record and control socket are its successor's now: leave them.
    log::info("replaced shim stopped", {containerField(m.info), {"pid", std::to_string(m.info.shimPid)}, {"how", how}});
    dropRetired(m);
    return;
  }
  if (m.stopping) {
    log::info("shim stopped", {containerField(m.info), {"pid", std::to_string(m.info.shimPid)}, {"how", how}});
    removeState(m.info.containerId);
    forget(m.info.containerId);
    return;
  }
  if (!m.init.alive()) {
    // The container's init ended and the shim followed it, as it should.
    log::info("shim exited with its container", {containerField(m.info), {"pid", std::to_string(m.info.shimPid)}});
    removeState(m.info.containerId);
    forget(m.info.containerId);
    return;
  }
  if ((code == kExitExecFailed || code == kExitChildSetup) && m.execErrno != 0) {
    // The program never ran, for the reason the child sent (missing, not executable, being
    // replaced by a build or an upgrade right then...): retry, unless it can never work.
    std::string why = std::string(code == kExitChildSetup ? "could not pass the namespace and pidfd to it: " : "") +
                      std::strerror(m.execErrno);
    if (m.execErrno == E2BIG) {
      log::error("could not run the shim program; not retrying", {containerField(m.info), {"path", options_.shimPath},
                                                                  {"error", why}});
      const std::string id = m.info.containerId;
      removeState(id);
      forget(id);
      notServing(id, "could not run the shim program: " + why);
      return;
    }
    log::error("could not run the shim program; retrying", {containerField(m.info), {"path", options_.shimPath},
                                                            {"error", why}});
    scheduleRestart(m, "could not run the shim program: " + why);
    return;
  }
  if (code == 2) {
    log::error("shim rejected its arguments; not restarting it", {containerField(m.info), {"how", how}});
    const std::string id = m.info.containerId;
    removeState(id);
    forget(id);
    notServing(id, "the shim rejected its arguments (" + how + "); see the injector's log");
    return;
  }
  if (code == kExitPortInUse) {
    // Someone in the container holds the port: retrying fast would only spin. Try again
    // at the slowest pace, and say so once: the shim's own line says which port.
    if (!m.portInUseLogged) {
      log::warn("a port is already taken inside the container; retrying every few seconds",
                {containerField(m.info), {"ports", m.info.ports}, {"retry_ms", std::to_string(options_.restartMax.count())}});
      m.portInUseLogged = true;
    } else {
      ++m.info.portRetries;  // the port looked free, and was taken again by the time the shim bound it
    }
    scheduleRestart(m, "a port of " + m.info.ports + " is already taken inside the container");
    return;
  }
  m.portInUseLogged = false;
  m.info.portRetries = 0;
  log::warn("shim died; restarting", {containerField(m.info), {"pid", std::to_string(m.info.shimPid)}, {"how", how}});
  scheduleRestart(m, "it died (" + how + ")");
}

namespace {

// "6000,7000" as ShimInfo::ports says them.
std::vector<uint16_t> portNumbers(const std::string& ports) {
  std::vector<uint16_t> out;
  std::istringstream in(ports);
  std::string one;
  while (std::getline(in, one, ','))
    if (auto port = parsePort(one)) out.push_back(*port);
  return out;
}

}  // namespace

void ShimSupervisor::scheduleRestart(Managed& m, const std::string& why) {
  Millis delay = options_.restartMax;  // a taken port: at the slowest pace
  if (!m.portInUseLogged) {
    // A shim that ran a while before dying starts its back-off afresh.
    if (loop_.now() - m.startedAt > std::chrono::seconds(30)) m.crashesInARow = 0;
    delay = options_.restartMin;
    for (uint32_t i = 0; i < m.crashesInARow && delay < options_.restartMax; ++i) delay *= 2;
    delay = std::min(delay, options_.restartMax);
    ++m.crashesInARow;
  }
  // What `connectable status` reads meanwhile: no pid of a process that is gone, but why
  // none runs and when the next try is.
  m.info.shimPid = 0;
  m.info.notRunning = why;
  m.info.nextStart = wallClockSeconds() + (delay.count() + 999) / 1000;
  writeState(m);
  std::string id = m.info.containerId;
  m.restartTimer = loop_.addTimer(delay, [this, id] {
    auto it = shims_.find(id);
    if (it == shims_.end()) return;
    Managed& mm = *it->second;
    mm.restartTimer = 0;
    if (mm.stopping || !mm.init.alive()) {
      removeState(id);
      forget(id);
      return;
    }
    if (mm.portInUseLogged) {
      // Started only once the port is free: a shim started every 10 s into a port still
      // taken would log its failure each time, for as long as the container runs.
      if (stillTaken(mm)) {
        ++mm.info.portRetries;
        log::debug("a port is still taken inside the container", {containerField(mm.info), {"ports", mm.info.ports},
                                                                  {"tries", std::to_string(mm.info.portRetries)}});
        scheduleRestart(mm, mm.info.notRunning);
        return;
      }
    } else {
      // A restart is a shim started again after it died: tries while a port is taken are not.
      ++mm.info.restarts;
      ++restartsTotal_;
    }
    if (Status s = spawn(mm); !s) {
      notServing(id, s.message());  // logged there too
      return;
    }
    if (!mm.portInUseLogged) return;
    // Bound to this shim, not to the id, as the kill timer: a successor may hold the id by
    // then. Its exit, stop() and unwatch() cancel it.
    Managed* target = &mm;
    mm.servingTimer = loop_.addTimer(options_.portFreeAfter, [this, target] {
      Managed& up = *target;
      up.servingTimer = 0;
      up.portInUseLogged = false;
      log::info("the taken port is free now; the shim serves",
                {containerField(up.info), {"pid", std::to_string(up.info.shimPid)},
                 {"tries", std::to_string(up.info.portRetries + 1)}});
      up.info.portRetries = 0;
      writeState(up);
    });
  });
}

bool ShimSupervisor::stillTaken(Managed& m) {
  auto netns = m.init.openNetns();
  if (!netns) return false;  // spawn() says why
  const std::vector<uint16_t> ports = portNumbers(m.info.ports);
  auto taken = takenLoopbackPorts(*netns, ports);
  if (!taken) {
    // Then the shim's own try tells, as it did before the check.
    log::debug("cannot check the container's ports; starting the shim to see",
               {containerField(m.info), {"error", taken.status().message()}});
    return false;
  }
  // A shim serves the ports it can bind and leaves the taken ones out: one free port is
  // enough for it to start.
  return taken->size() == ports.size();
}

void ShimSupervisor::stop(const std::string& containerId, const std::string& reason) {
  auto it = shims_.find(containerId);
  if (it == shims_.end()) return;
  Managed& m = *it->second;
  if (m.stopping) return;
  m.stopping = true;
  if (m.restartTimer) {
    loop_.cancelTimer(m.restartTimer);
    m.restartTimer = 0;
  }
  // A shim stopping (its container died, or a new namespace replaces it) serves no more.
  if (m.servingTimer) {
    loop_.cancelTimer(m.servingTimer);
    m.servingTimer = 0;
  }
  if (!m.shim.valid()) {  // between a crash and its restart
    removeState(containerId);
    forget(containerId);
    return;
  }
  log::info("stopping shim", {containerField(m.info), {"pid", std::to_string(m.info.shimPid)}, {"reason", reason}});
  (void)m.shim.signal(SIGTERM);
  // On SIGTERM the shim lets open connections finish for its --drain-timeout: killing it
  // sooner would cut them while its container runs on (--stop-shims-on-exit). A container
  // that is gone has none left to finish.
  Millis grace = options_.stopGrace;
  if (m.init.alive())
    if (auto parsed = parseShimOptions(m.args)) grace += parsed->proxy.drainTimeout;
  // Bound to this shim, not to the id: a successor may hold the id by the time it fires.
  // Whoever deletes m cancels the timer first.
  Managed* target = &m;
  m.killTimer = loop_.addTimer(grace, [target] {
    target->killTimer = 0;
    if (!target->shim.valid()) return;
    log::warn("shim did not stop in time; killing it", {containerField(target->info)});
    (void)target->shim.signal(SIGKILL);
  });
}

void ShimSupervisor::rename(const std::string& containerId, const std::string& containerName) {
  auto it = shims_.find(containerId);
  if (it == shims_.end() || it->second->info.containerName == containerName) return;
  it->second->info.containerName = containerName;
  writeState(*it->second);
}

void ShimSupervisor::stopAll() {
  // Replaced shims are stopping already, each with its own kill timer.
  std::vector<std::string> ids;
  for (auto& [id, m] : shims_) ids.push_back(id);
  for (auto& id : ids) stop(id, "injector exiting");
}

void ShimSupervisor::forget(const std::string& containerId) {
  auto it = shims_.find(containerId);
  if (it == shims_.end()) return;
  auto m = std::move(it->second);
  shims_.erase(it);
  dispose(std::move(m));
}

void ShimSupervisor::dispose(std::unique_ptr<Managed> m) {
  m->gone = true;
  unwatch(*m);
  loop_.defer([raw = m.release()] { delete raw; });  // its onIo may be on the stack
  if (onShimGone_) onShimGone_();  // out of every list, so its uid is free
}

bool ShimSupervisor::hasUidFor(const std::string& containerId) const {
  return options_.shimUidCount == 0 || static_cast<bool>(uidFor(containerId));
}

void ShimSupervisor::retire(const std::string& containerId) {
  auto it = shims_.find(containerId);
  if (it == shims_.end()) return;  // it had exited already
  it->second->retired = true;
  retired_.push_back(std::move(it->second));
  shims_.erase(it);
}

void ShimSupervisor::dropRetired(Managed& m) {
  auto it = std::find_if(retired_.begin(), retired_.end(), [&](const auto& r) { return r.get() == &m; });
  if (it == retired_.end()) return;
  auto owned = std::move(*it);
  retired_.erase(it);
  dispose(std::move(owned));
}

void ShimSupervisor::writeState(const Managed& m) {
  const ShimRecord record{m.info, m.shimStartTime, m.initStartTime, m.args};
  if (Status s = replaceStateFile(statePath(m.info.containerId), shimRecordText(record)); !s)
    log::warn("cannot write shim state", {containerField(m.info), {"error", s.message()}});
}

void ShimSupervisor::removeState(const std::string& containerId) {
  ::unlink(statePath(containerId).c_str());
  ::unlink(controlPath(containerId).c_str());  // the shim, no longer root, cannot
}

std::string shimRecordText(const ShimRecord& record) {
  const ShimInfo& info = record.info;
  std::string json = "{\"container_id\":\"" + log::jsonEscape(info.containerId) + "\",\"container_name\":\"" +
                     log::jsonEscape(info.containerName) + "\",\"shim_pid\":" + std::to_string(info.shimPid) +
                     ",\"shim_start_time\":" + std::to_string(record.shimStartTime) +
                     ",\"init_pid\":" + std::to_string(info.initPid) +
                     ",\"init_start_time\":" + std::to_string(record.initStartTime) +
                     ",\"netns_inode\":" + std::to_string(info.netnsInode) + ",\"ports\":\"" + log::jsonEscape(info.ports) +
                     "\",\"restarts\":" + std::to_string(info.restarts) +
                     (info.shimPid != 0 ? std::string()
                                        : ",\"not_running\":\"" + log::jsonEscape(info.notRunning) +
                                              "\",\"next_start\":" + std::to_string(info.nextStart)) +
                     ",\"port_retries\":" + std::to_string(info.portRetries) + ",\"args\":[";
  for (size_t i = 0; i < record.args.size(); ++i) json += (i ? ",\"" : "\"") + log::jsonEscape(record.args[i]) + "\"";
  return json + "]}\n";
}

Result<ShimRecord> parseShimRecord(const std::string& text) {
  // Its writer's JSON is UTF-8; the check refuses text a 0xff byte would hide from POCO.
  auto parsed = docker_json::parseObject(text);
  if (!parsed) return parsed.status();
  const docker_json::ObjectPtr& obj = *parsed;
  ShimRecord r;
  try {
    r.info.containerId = obj->getValue<std::string>("container_id");
    r.info.containerName = obj->getValue<std::string>("container_name");
    r.info.shimPid = obj->getValue<int>("shim_pid");
    r.shimStartTime = obj->getValue<unsigned long long>("shim_start_time");
    r.info.initPid = obj->getValue<int>("init_pid");
    r.initStartTime = obj->getValue<unsigned long long>("init_start_time");
    r.info.netnsInode = obj->getValue<unsigned long>("netns_inode");
    r.info.ports = obj->getValue<std::string>("ports");
    if (obj->has("restarts")) r.info.restarts = obj->getValue<uint32_t>("restarts");
    if (obj->has("not_running")) r.info.notRunning = obj->getValue<std::string>("not_running");
    if (obj->has("next_start")) r.info.nextStart = obj->getValue<int64_t>("next_start");
    if (obj->has("port_retries")) r.info.portRetries = obj->getValue<uint32_t>("port_retries");
    auto args = obj->getArray("args");
    if (!args) return Status::error("no args");
    for (size_t i = 0; i < args->size(); ++i) r.args.push_back(args->getElement<std::string>(static_cast<unsigned>(i)));
  } catch (const Poco::Exception& e) {
    return Status::error(e.displayText());
  } catch (const std::exception& e) {
    return Status::error(e.what());
  }
  return r;
}

Result<ShimRecord> readShimRecord(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::error("cannot open " + path);
  return parseShimRecord(std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>()));
}

Result<std::vector<std::string>> shimRecordFiles(const std::string& stateDir) {
  std::string dir = stateDir + "/shims";
  DIR* d = opendir(dir.c_str());
  if (!d) return errnoStatus("cannot read " + dir, errno);
  std::vector<std::string> files;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0) files.push_back(dir + "/" + name);
  }
  closedir(d);
  return files;
}

bool recordedShimRuns(const ShimRecord& record) {
  const pid_t pid = record.info.shimPid;
  return pid > 0 && sameProcess(pid, record.shimStartTime) && processArguments(pid) == record.args;
}

std::vector<std::string> ShimSupervisor::adopt() {
  std::vector<std::string> adopted;
  auto files = shimRecordFiles(options_.stateDir);
  if (!files) return adopted;
  for (const auto& file : *files) {
    auto record = readShimRecord(file);
    if (!record) {
      log::warn("ignoring unreadable shim record", {{"path", file}, {"error", record.status().message()}});
      ::unlink(file.c_str());
      continue;
    }
    // The process we started, not a reuse of its pid.
    const bool shimOk = recordedShimRuns(*record);
    auto m = std::make_unique<Managed>();
    m->owner = this;
    m->info = std::move(record->info);
    m->shimStartTime = record->shimStartTime;
    m->initStartTime = record->initStartTime;
    m->args = std::move(record->args);
    m->info.control = controlPath(m->info.containerId);
    if (file != statePath(m->info.containerId)) {
      ::unlink(file.c_str());
      continue;
    }
    bool initOk = sameProcess(m->info.initPid, m->initStartTime);
    auto shim = shimOk ? ProcessHandle::open(m->info.shimPid) : Result<ProcessHandle>(Status::error("gone"));
    auto init = initOk ? ProcessHandle::open(m->info.initPid) : Result<ProcessHandle>(Status::error("gone"));
    // Check again after pinning both: a pid reused in between fails the start-time test.
    if (shim && init && sameProcess(m->info.shimPid, m->shimStartTime) && sameProcess(m->info.initPid, m->initStartTime)) {
      m->shim = std::move(*shim);
      m->init = std::move(*init);
      m->ourChild = false;
      m->info.adopted = true;
      m->info.since = loop_.now();
      m->startedAt = loop_.now();
      Managed& ref = *m;
      std::string id = m->info.containerId;
      shims_[id] = std::move(m);
      if (Status s = loop_.add(ref.shim.fd(), EPOLLIN, &ref); !s)
        log::warn("cannot watch adopted shim", {containerField(ref.info), {"error", s.message()}});
      log::info("adopted running shim", {containerField(ref.info), {"pid", std::to_string(ref.info.shimPid)}});
      adopted.push_back(id);
    } else {
      if (shim && !init) (void)shim->signal(SIGTERM);  // its container is gone; it should be too
      log::info("forgetting shim record of a process that is gone", {containerField(m->info)});
      ::unlink(file.c_str());
      ::unlink(controlPath(m->info.containerId).c_str());
    }
  }
  stopUnrecordedShims();
  return adopted;
}

void ShimSupervisor::stopUnrecordedShims() {
  // What ensure() gives every shim first, naming its control socket in our state dir.
  const std::string prefix = options_.stateDir + "/shims/";
  auto unrecordedId = [&](const std::vector<std::string>& args) -> std::string {
    if (args.size() < 8 || args[0] != "--netns-fd" || args[2] != "--exit-with-pidfd" || args[4] != "--name" ||
        args[6] != "--control")
      return "";
    const std::string& control = args[7];
    if (control.compare(0, prefix.size(), prefix) != 0) return "";
    std::string id = control.substr(prefix.size(), 64);
    if (!isContainerId(id) || control != controlPath(id) || shims_.count(id)) return "";
    return id;
  };
  DIR* proc = opendir("/proc");
  if (!proc) return;
  while (dirent* e = readdir(proc)) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    const pid_t pid = static_cast<pid_t>(std::strtol(e->d_name, nullptr, 10));
    const std::vector<std::string> args = processArguments(pid);
    const std::string id = unrecordedId(args);
    if (id.empty()) continue;
    auto process = ProcessHandle::open(pid);
    if (!process || processArguments(pid) != args) continue;  // gone, or its pid reused
    log::warn("stopping a shim that has no readable record; its container gets a new one",
              {{"container", containerDisplayName("", id)}, {"pid", std::to_string(pid)}});
    (void)process->signal(SIGTERM);  // it closes its listeners at once, then drains
    ::unlink(controlPath(id).c_str());
  }
  closedir(proc);
}

}  // namespace connectable
