// The supervisor against stand-in shims (small shell scripts) and a child `sleep` as the
// container's init: its namespace is ours, which is all ensure() needs.
#include "injector/shim_supervisor.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/event_loop.h"
#include "tests/support/captured_output.h"
#include "tests/support/process.h"
#include "tests/support/shim_process.h"
#include "tests/support/loop_runner.h"
#include "tests/support/tcp_peers.h"

using namespace connectable;
using namespace std::chrono_literals;
using connectable::testing::runUntil;
using connectable::testing::CapturedOutput;
using connectable::testing::Child;
using connectable::testing::readFile;
using connectable::testing::tempDir;

namespace {

const std::string kId = "8f3c11155b1b2f0e6a7d4c3b2a19080706050403020100ffeeddccbbaa998877";

// A shim stand-in: `body` after #!/bin/sh. Replaced atomically, so a spawn never sees half.
void writeShim(const std::string& path, const std::string& body) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << "#!/bin/sh\n" << body;
  }
  BOOST_REQUIRE(chmod(tmp.c_str(), 0755) == 0);
  BOOST_REQUIRE(std::rename(tmp.c_str(), path.c_str()) == 0);
}
// Ignored dispositions survive exec: this sleep ignores SIGTERM, as a hung shim would.
const char* kStubbornShim = "trap '' TERM\nexec sleep 30\n";
const char* kPoliteShim = "exec sleep 30\n";

// Gone for good: exited and reaped (a zombie still answers kill(pid, 0)).
bool reaped(pid_t pid) { return kill(pid, 0) != 0 && errno == ESRCH; }

// Reaps our child `pid`, waiting up to `timeout`; false if it did not end by then.
bool reapWithin(pid_t pid, std::chrono::milliseconds timeout, int* status) {
  return connectable::testing::waitFor([&] { return waitpid(pid, status, WNOHANG) == pid; }, timeout);
}

// Our child, still there (a zombie counts): the only processes this test may kill.
bool ourChild(pid_t pid) {
  std::string stat = readFile("/proc/" + std::to_string(pid) + "/stat");
  auto close = stat.rfind(')');
  if (close == std::string::npos) return false;
  int ppid = 0;
  return std::sscanf(stat.c_str() + close + 2, "%*c %d", &ppid) == 1 && ppid == getpid();
}

// A supervisor in a fresh state dir; whatever shim it started is killed at the end, also
// when a check failed.
struct SupervisorFixture {
  std::string dir = tempDir();
  std::string shimPath = dir + "/shim";
  EventLoop loop;
  SupervisorOptions options;
  std::unique_ptr<ShimSupervisor> supervisor;
  std::set<pid_t> shims;
  std::vector<Child> inits;  // containers' inits made by startThenRestart
  ContainerRequest request = parseContainerLabels({{"connect.6000", "198.18.0.5:6379"}});
  connectable::testing::ReservedPort shimPort;  // for a real shim: it binds it with SO_REUSEADDR

  SupervisorFixture() {
    BOOST_REQUIRE(loop.init());
    options.shimPath = shimPath;
    options.stateDir = dir;  // short enough for the control sockets' paths
    options.stopGrace = 200ms;
  }
  ~SupervisorFixture() {
    if (supervisor)
      for (const auto& shim : supervisor->list()) shims.insert(shim.shimPid);
    supervisor.reset();
    // Shims it forgot are deleted by the loop after the turn that forgot them.
    runUntil(loop, [] { return false; }, 20ms);
    for (pid_t pid : shims) {
      if (ourChild(pid)) {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
      }
    }
  }
  ShimSupervisor& start() {
    supervisor = std::make_unique<ShimSupervisor>(loop, options);
    Status s = supervisor->init();
    BOOST_REQUIRE_MESSAGE(s, s.message());
    return *supervisor;
  }
  // A shim for a first init, then the container restarts: that init ends and a new one,
  // in a new namespace, gets a shim of its own. `shimScript`, when given, is the shim
  // program from the restart on. Returns the first shim's pid and the second's.
  std::pair<pid_t, pid_t> startThenRestart(const char* shimScript = nullptr) {
    inits.push_back(Child::spawn({"sleep", "30"}));
    pid_t first = ensure(inits.back());
    inits.back().kill();
    if (shimScript) writeShim(shimPath, shimScript);
    inits.push_back(Child::spawn({"sleep", "30"}));
    return {first, ensure(inits.back())};
  }
  // ensure() for kId with `init` as the container's init, whatever becomes of the shim.
  Status tryEnsure(const Child& init) {
    auto process = ProcessHandle::open(init.pid());
    BOOST_REQUIRE_MESSAGE(process, process.status().message());
    auto netns = process->openNetns();
    BOOST_REQUIRE_MESSAGE(netns, netns.status().message());
    return supervisor->ensure(kId, "app", request, std::move(*process), std::move(*netns));
  }
  // ensure() for kId with `init` as the container's init; returns the new shim's pid.
  // The real shim (or options.shimPath, a copy of it) serving a free loopback port for
  // `init`, started by a new supervisor; its pid.
  pid_t ensureRealShim(const Child& init) {
    if (options.shimPath == shimPath) options.shimPath = connectable::testing::shimBinary();
    request = parseContainerLabels({{"connect." + std::to_string(shimPort.port()), "198.18.0.5:6379"}});
    start();
    Status s = tryEnsure(init);
    BOOST_REQUIRE_MESSAGE(s, s.message());
    BOOST_REQUIRE_EQUAL(supervisor->list().size(), 1u);
    const pid_t pid = supervisor->list()[0].shimPid;
    shims.insert(pid);
    return pid;
  }
  pid_t ensure(const Child& init) {
    Status s = tryEnsure(init);
    BOOST_REQUIRE_MESSAGE(s, s.message());
    BOOST_REQUIRE_EQUAL(supervisor->list().size(), 1u);
    pid_t pid = supervisor->list()[0].shimPid;
    shims.insert(pid);
    // Past the script, and its signal dispositions set: the script may now be rewritten.
    BOOST_REQUIRE(connectable::testing::waitFor(
        [&] { return readFile("/proc/" + std::to_string(pid) + "/comm") == "sleep\n"; }, 2s));
    return pid;
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(ShimSupervisorReplacingAShim)

BOOST_AUTO_TEST_CASE(TheOldShimIsKilledAfterTheGraceAndReapedWhileTheNewOneKeepsServing) {
  SupervisorFixture f;
  writeShim(f.shimPath, kStubbornShim);
  ShimSupervisor& supervisor = f.start();
  auto [old, fresh] = f.startThenRestart();
  BOOST_REQUIRE(fresh != old);

  BOOST_TEST(runUntil(f.loop, [&] { return reaped(old); }, 2s), "the old shim was never killed and reaped");
  runUntil(f.loop, [] { return false; }, 300ms);  // past the old shim's grace, twice over
  BOOST_REQUIRE_EQUAL(supervisor.list().size(), 1u);
  BOOST_TEST(supervisor.list()[0].shimPid == fresh, "the new shim was killed in the old one's place");
  BOOST_TEST(kill(fresh, 0) == 0);
  BOOST_TEST(supervisor.restartsTotal() == 0u);
  // The record and the control socket path are the new shim's: the old one's exit left them.
  std::string record = readFile(f.options.stateDir + "/shims/" + kId + ".json");
  BOOST_TEST(record.find("\"shim_pid\":" + std::to_string(fresh) + ",") != std::string::npos, record);
}

BOOST_AUTO_TEST_CASE(StoppingAllWaitsForTheReplacedShimToo) {
  SupervisorFixture f;
  // Long enough that the replaced shim's grace, counted from the restart, outlasts the
  // new shim's polite end on a slow machine too.
  f.options.stopGrace = 2s;
  writeShim(f.shimPath, kStubbornShim);
  ShimSupervisor& supervisor = f.start();
  auto [old, fresh] = f.startThenRestart(kPoliteShim);

  supervisor.stopAll();
  BOOST_REQUIRE(runUntil(f.loop, [&] { return supervisor.list().empty(); }, 2s));
  BOOST_TEST(reaped(fresh));
  // The replaced one ignores SIGTERM and waits for its SIGKILL: not all gone yet.
  BOOST_TEST(!supervisor.allGone());
  BOOST_TEST(runUntil(f.loop, [&] { return supervisor.allGone(); }, 5s));
  BOOST_TEST(reaped(old));
}

BOOST_AUTO_TEST_CASE(ASupervisorGoingAwayKillsTheShimItWasReplacing) {
  // No record names it, so no later injector could: it must not outlive us.
  SupervisorFixture f;
  writeShim(f.shimPath, kStubbornShim);
  f.start();
  auto [old, fresh] = f.startThenRestart(kPoliteShim);

  f.supervisor.reset();
  int status = 0;
  BOOST_REQUIRE_MESSAGE(reapWithin(old, 2s, &status), "the replaced shim outlived its supervisor");
  BOOST_TEST((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL));
  BOOST_TEST(kill(fresh, 0) == 0, "the current shim keeps serving, as always when the injector exits");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(ShimSupervisorStopping)

BOOST_AUTO_TEST_CASE(AStoppedShimIsGivenItsDrainTimeoutBeforeItIsKilled) {
  // --stop-shims-on-exit stops shims whose containers go on running: on SIGTERM a shim lets
  // open connections finish for its --drain-timeout (here a label's), and is late only after.
  SupervisorFixture f;  // a grace of 200 ms
  const std::string ready = f.dir + "/ready", drained = f.dir + "/drained";
  writeShim(f.shimPath, "trap 'sleep 0.6; : > " + drained + "; exit 0' TERM\n: > " + ready + "\nwhile :; do sleep 0.05; done\n");
  f.request = parseContainerLabels({{"connect.6000", "198.18.0.5:6379"}, {"connectable.drain-timeout", "2s"}});
  BOOST_REQUIRE(f.request.errors.empty());
  ShimSupervisor& supervisor = f.start();
  Child init = Child::spawn({"sleep", "30"});
  BOOST_REQUIRE(f.tryEnsure(init));
  f.shims.insert(supervisor.list()[0].shimPid);
  BOOST_REQUIRE(connectable::testing::waitFor([&] { return access(ready.c_str(), F_OK) == 0; }, 2s));

  supervisor.stopAll();
  BOOST_REQUIRE(runUntil(f.loop, [&] { return supervisor.allGone(); }, 5s));
  BOOST_TEST(access(drained.c_str(), F_OK) == 0, "the shim was killed while it drained");
}

BOOST_AUTO_TEST_CASE(AShimThatDoesNotStopWithinItsDrainTimeoutIsKilled) {
  SupervisorFixture f;
  writeShim(f.shimPath, kStubbornShim);
  f.request = parseContainerLabels({{"connect.6000", "198.18.0.5:6379"}, {"connectable.drain-timeout", "300ms"}});
  ShimSupervisor& supervisor = f.start();
  Child init = Child::spawn({"sleep", "30"});
  const pid_t shim = f.ensure(init);
  const auto stopped = Clock::now();
  supervisor.stop(kId, "test");
  BOOST_REQUIRE(runUntil(f.loop, [&] { return supervisor.allGone(); }, 5s));
  BOOST_TEST(reaped(shim));
  BOOST_TEST((Clock::now() - stopped >= 450ms), "killed before its drain timeout and grace");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(ShimSupervisorAdopting)

BOOST_AUTO_TEST_CASE(ARunningShimIsAdoptedByItsArgumentsWhateverItsProgramIsCalled) {
  // --shim may name any file. A restarted injector knows its shims by pid, start time and
  // the arguments it gave them, not by the program's name.
  SupervisorFixture f;
  const std::string renamed = f.dir + "/my-proxy";
  {
    std::ifstream in(connectable::testing::shimBinary(), std::ios::binary);
    std::ofstream out(renamed, std::ios::binary);
    out << in.rdbuf();
  }
  BOOST_REQUIRE(chmod(renamed.c_str(), 0755) == 0);
  f.options.shimPath = renamed;
  Child init = Child::spawn({"sleep", "30"});
  const pid_t shim = f.ensureRealShim(init);
  BOOST_REQUIRE(connectable::testing::waitFor([&] { return readFile("/proc/" + std::to_string(shim) + "/comm") == "my-proxy\n"; }, 2s));
  f.supervisor.reset();  // the injector goes away; its shims keep serving

  ShimSupervisor restarted(f.loop, f.options);
  BOOST_REQUIRE(restarted.init());
  BOOST_TEST(restarted.adopt() == std::vector<std::string>{kId});
  BOOST_REQUIRE_EQUAL(restarted.list().size(), 1u);
  BOOST_TEST(restarted.list()[0].shimPid == shim);
  BOOST_TEST(restarted.list()[0].adopted);
}

BOOST_AUTO_TEST_CASE(AnAdoptedShimStartedWithOtherOptionsKeepsServingAndSaysHowTheyDiffer) {
  // The host's floor raised since the shim started: it keeps serving with its old one
  // (restarting it would cut its connections), and the difference is told, not hidden.
  SupervisorFixture f;
  f.options.shimArgs = {"--dns-min-ttl=100ms", "--connect-timeout=2s"};
  Child init = Child::spawn({"sleep", "30"});
  const pid_t shim = f.ensureRealShim(init);
  BOOST_TEST(f.supervisor->optionsDrift(kId) == "");
  f.supervisor.reset();

  f.options.shimArgs = {"--dns-min-ttl=1s", "--connect-timeout=2s"};
  ShimSupervisor& restarted = f.start();
  BOOST_REQUIRE(restarted.adopt() == std::vector<std::string>{kId});
  BOOST_REQUIRE(f.tryEnsure(init));
  BOOST_REQUIRE_EQUAL(restarted.list().size(), 1u);
  BOOST_TEST(restarted.list()[0].shimPid == shim, "the adopted shim was replaced");
  BOOST_TEST(restarted.optionsDrift(kId) == "started with --dns-min-ttl=100ms, would now get --dns-min-ttl=1s");
  f.supervisor.reset();

  // As it was started, spelt otherwise: the shim reads 0.1s as 100ms and 2000ms as 2s.
  f.options.shimArgs = {"--dns-min-ttl=100ms", "--connect-timeout=2000ms"};
  ShimSupervisor& same = f.start();
  BOOST_REQUIRE(same.adopt() == std::vector<std::string>{kId});
  BOOST_REQUIRE(f.tryEnsure(init));
  BOOST_TEST(same.optionsDrift(kId) == "");
}

BOOST_AUTO_TEST_CASE(OptionsAreComparedAsTheShimReadsThem) {
  // The last of an option given twice applies: a label's dns-min-ttl=5s (after the host's
  // options) outweighs the host's floor, whatever that became. Log options, the name and
  // the uid change no proxying.
  SupervisorFixture f;
  f.options.shimArgs = {"--dns-min-ttl=100ms", "--log-level=info", "--dns-min-ttl=5s"};
  Child init = Child::spawn({"sleep", "30"});
  f.ensureRealShim(init);  // f.request: a connect label of its own
  f.supervisor.reset();

  f.options.shimArgs = {"--dns-min-ttl=1s", "--log-level=debug", "--log-format=json"};
  ShimSupervisor& restarted = f.start();
  BOOST_REQUIRE(restarted.adopt() == std::vector<std::string>{kId});
  ContainerRequest labelled = f.request;
  labelled.shimArgs.push_back("--dns-min-ttl=5s");
  restarted.checkOptions(kId, "renamed", labelled);
  BOOST_TEST(restarted.optionsDrift(kId) == "");
  restarted.checkOptions(kId, "app", f.request);  // without the label: the floor differs
  BOOST_TEST(restarted.optionsDrift(kId) == "started with --dns-min-ttl=5s, would now get --dns-min-ttl=1s");
  ContainerRequest none = labelled;
  none.connects.clear();
  restarted.checkOptions(kId, "app", none);
  BOOST_TEST(restarted.optionsDrift(kId).rfind("started with --connect=", 0) == 0, restarted.optionsDrift(kId));
  BOOST_TEST(restarted.optionsDrift(kId).find(", which it would no longer get") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(AShimsUidDiffersOnlyWhenItIsOutsideTheShimUidsNow) {
  // Each shim keeps the uid it was given for as long as it runs; a new range leaves it out.
  if (geteuid() != 0) {
    BOOST_TEST_MESSAGE("needs root to run a shim as another uid; not checked");
    return;
  }
  SupervisorFixture f;
  f.options.shimUidFirst = 2000300;
  f.options.shimUidCount = 10;
  Child init = Child::spawn({"sleep", "30"});
  f.ensureRealShim(init);
  f.supervisor.reset();

  ShimSupervisor& same = f.start();
  BOOST_REQUIRE(same.adopt() == std::vector<std::string>{kId});
  same.checkOptions(kId, "app", f.request);
  BOOST_TEST(same.optionsDrift(kId) == "");
  f.supervisor.reset();

  f.options.shimUidFirst = 2000400;
  ShimSupervisor& moved = f.start();
  BOOST_REQUIRE(moved.adopt() == std::vector<std::string>{kId});
  moved.checkOptions(kId, "app", f.request);
  BOOST_TEST(moved.optionsDrift(kId) == "runs as uid 2000300, outside --shim-uids 2000400-2000409");
}

BOOST_AUTO_TEST_CASE(AShimWhoseRecordIsUnreadableIsStoppedNotLeftHoldingItsPorts) {
  // Adopted it cannot be (its pid and start time are in the record), and left running it
  // would hold the container's ports against the shim started in its place, unwatched.
  SupervisorFixture f;
  Child init = Child::spawn({"sleep", "30"});
  const pid_t shim = f.ensureRealShim(init);
  f.supervisor.reset();
  std::ofstream(f.dir + "/shims/" + kId + ".json", std::ios::trunc) << "{\"container_id\": \"" << kId << "\", \"shim_pi";

  CapturedOutput log(STDERR_FILENO, f.dir + "/log");
  ShimSupervisor restarted(f.loop, f.options);
  BOOST_REQUIRE(restarted.init());
  BOOST_TEST(restarted.adopt().empty());
  int status = 0;
  BOOST_TEST(reapWithin(shim, 5s, &status), "the shim of the unreadable record still runs");
  BOOST_TEST(log.text().find("no readable record") != std::string::npos, log.text());
}

BOOST_AUTO_TEST_CASE(AShimOfAnotherStateDirIsLeftAlone) {
  // Two injectors for two daemons keep their shims apart by state dir.
  SupervisorFixture f;
  Child init = Child::spawn({"sleep", "30"});
  const pid_t shim = f.ensureRealShim(init);

  SupervisorOptions other = f.options;
  other.stateDir = tempDir();
  ShimSupervisor elsewhere(f.loop, other);
  BOOST_REQUIRE(elsewhere.init());
  BOOST_TEST(elsewhere.adopt().empty());
  BOOST_TEST(!reapWithin(shim, 300ms, nullptr), "another state dir's shim was stopped");
}

BOOST_AUTO_TEST_CASE(AProcessWithOtherArgumentsIsNotAdopted) {
  // A record whose pid and start time match but whose arguments do not: not our shim.
  SupervisorFixture f;
  writeShim(f.shimPath, kPoliteShim);  // becomes `sleep 30`: not the arguments it was given
  f.start();
  Child init = Child::spawn({"sleep", "30"});
  const pid_t shim = f.ensure(init);
  f.supervisor.reset();

  ShimSupervisor restarted(f.loop, f.options);
  BOOST_REQUIRE(restarted.init());
  BOOST_TEST(restarted.adopt().empty());
  BOOST_TEST(restarted.list().empty());
  BOOST_TEST(kill(shim, 0) == 0, "a process that is not ours was signalled");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(ShimSupervisorStateDir)

namespace {
mode_t modeOf(const std::string& path) {
  struct stat st {};
  BOOST_REQUIRE(lstat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}
Status initWith(const std::string& stateDir) {
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  SupervisorOptions options;
  options.shimPath = "/bin/true";
  options.stateDir = stateDir;
  ShimSupervisor supervisor(loop, options);
  return supervisor.init();
}
}  // namespace

BOOST_AUTO_TEST_CASE(MissingDirectoriesAreCreatedPrivate) {
  std::string dir = tempDir();
  Status s = initWith(dir + "/st");
  BOOST_REQUIRE_MESSAGE(s, s.message());
  BOOST_TEST(modeOf(dir + "/st") == 0700u);
  BOOST_TEST(modeOf(dir + "/st/shims") == 0700u);
}

BOOST_AUTO_TEST_CASE(AnExistingDirectoryKeepsItsMode) {
  // --state-dir /tmp once made /tmp private to root.
  std::string dir = tempDir();
  BOOST_REQUIRE(chmod(dir.c_str(), 0755) == 0);
  Status s = initWith(dir);
  BOOST_REQUIRE_MESSAGE(s, s.message());
  BOOST_TEST(modeOf(dir) == 0755u);
}

BOOST_AUTO_TEST_CASE(ADirectoryOthersMayWriteIsRefused) {
  // adopt() runs what the records there say, as root: nobody else may write them.
  std::string dir = tempDir();
  BOOST_REQUIRE(chmod(dir.c_str(), 01777) == 0);
  Status s = initWith(dir);
  BOOST_TEST(!s);
  BOOST_TEST(s.message().find(dir + " is writable by group or others") != std::string::npos, s.message());
  BOOST_TEST(modeOf(dir) == 01777u);

  std::string other = tempDir();
  BOOST_REQUIRE(mkdir((other + "/shims").c_str(), 0700) == 0);
  BOOST_REQUIRE(chmod((other + "/shims").c_str(), 0770) == 0);
  s = initWith(other);
  BOOST_TEST(!s);
  BOOST_TEST(s.message().find(other + "/shims is writable by group or others") != std::string::npos, s.message());
}

BOOST_AUTO_TEST_CASE(ASymlinkOrAFileIsRefused) {
  std::string dir = tempDir();
  BOOST_REQUIRE(mkdir((dir + "/r").c_str(), 0700) == 0);
  BOOST_REQUIRE(symlink((dir + "/r").c_str(), (dir + "/l").c_str()) == 0);
  Status s = initWith(dir + "/l");
  BOOST_TEST(!s);
  BOOST_TEST(s.message().find("is a symbolic link") != std::string::npos, s.message());

  std::string other = tempDir();
  BOOST_REQUIRE(symlink((dir + "/r").c_str(), (other + "/shims").c_str()) == 0);
  s = initWith(other);
  BOOST_TEST(!s);
  BOOST_TEST(s.message().find(other + "/shims is a symbolic link") != std::string::npos, s.message());

  std::string third = tempDir();
  std::ofstream((third + "/shims").c_str()) << "not a directory";
  s = initWith(third);
  BOOST_TEST(!s);
  BOOST_TEST(s.message().find(third + "/shims is not a directory") != std::string::npos, s.message());
}

BOOST_AUTO_TEST_CASE(ADirectoryOwnedBySomeoneElseIsRefused) {
  if (geteuid() != 0) {
    BOOST_TEST_MESSAGE("needs root to give a directory away; not checked");
    return;
  }
  std::string dir = tempDir();
  BOOST_REQUIRE(mkdir((dir + "/shims").c_str(), 0700) == 0);
  BOOST_REQUIRE(chown((dir + "/shims").c_str(), 65534, 65534) == 0);
  Status s = initWith(dir);
  BOOST_TEST(!s);
  BOOST_TEST(s.message().find(dir + "/shims is owned by uid 65534") != std::string::npos, s.message());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(ShimSupervisorStartingAShim)

BOOST_AUTO_TEST_CASE(AContainerWhoseLabelsTheHostsOptionsCannotServeGetsNoShimAndIsToldWhy) {
  // Each fine alone: lookups from the container's namespace, and a DNS name, but the host
  // gave no --dns, and its resolv.conf names servers of the host's network.
  SupervisorFixture f;
  writeShim(f.shimPath, kPoliteShim);
  f.request = parseContainerLabels({{"connect.6000", "redis.service.consul"}, {"connectable.upstream-netns", "target"}});
  BOOST_REQUIRE(f.request.errors.empty());
  ShimSupervisor& supervisor = f.start();
  Child init = Child::spawn({"sleep", "30"});
  Status s = f.tryEnsure(init);
  for (const auto& shim : supervisor.list()) f.shims.insert(shim.shimPid);
  BOOST_TEST(!s.isOk());
  BOOST_TEST(s.message().find("--upstream-netns=target needs --dns") != std::string::npos, s.message());
  BOOST_TEST(supervisor.list().empty(), "a shim was started that could only exit");
  // The same answer without a process to inject into: no wait mends it.
  BOOST_TEST(supervisor.checkArguments(kId, "app", f.request).message() == s.message());

  f.options.shimArgs = {"--dns=127.0.0.1:8600"};  // the host names a server: served
  f.options.stateDir = tempDir();                  // another injector: a state dir of its own
  ShimSupervisor withDns(f.loop, f.options);
  BOOST_REQUIRE(withDns.init());
  auto process = ProcessHandle::open(init.pid());
  BOOST_REQUIRE(process);
  auto netns = process->openNetns();
  BOOST_REQUIRE(netns);
  Status served = withDns.ensure(kId, "app", f.request, std::move(*process), std::move(*netns));
  BOOST_TEST(served.isOk(), served.message());
  for (const auto& shim : withDns.list()) f.shims.insert(shim.shimPid);
  withDns.stopAll();
  BOOST_TEST(runUntil(f.loop, [&] { return withDns.allGone(); }, 5s));
}

BOOST_AUTO_TEST_CASE(TheShimGetsNoneOfTheInjectorsEnvironmentButWhatItNeeds) {
  // The injector's environment is the host's (a proxy's credentials, where Docker listens,
  // systemd's sockets): none of it is for a process that serves untrusted containers.
  SupervisorFixture f;
  const std::string seen = f.dir + "/env";
  writeShim(f.shimPath, "env > " + seen + "\nexec sleep 30\n");
  BOOST_REQUIRE(setenv("HTTPS_PROXY", "http://admin:hunter2@198.18.0.1:3128", 1) == 0);
  BOOST_REQUIRE(setenv("TZ", "UTC", 1) == 0);
  f.start();
  Child init = Child::spawn({"sleep", "30"});
  f.ensure(init);
  unsetenv("HTTPS_PROXY");
  unsetenv("TZ");
  std::string env = "\n" + readFile(seen);
  BOOST_TEST(env.find("hunter2") == std::string::npos, env);
  BOOST_TEST(env.find("\nTZ=UTC\n") != std::string::npos, env);
}

BOOST_AUTO_TEST_CASE(ArgumentsTooLongForExecAreReportedAndNeverRetried) {
  // execve refuses one argument of 128 KiB or more (E2BIG): retrying could never help.
  SupervisorFixture f;
  writeShim(f.shimPath, kPoliteShim);
  f.request.shimArgs.push_back("--name=" + std::string(200 * 1024, 'x'));
  ShimSupervisor& supervisor = f.start();
  Child init = Child::spawn({"sleep", "30"});
  CapturedOutput log(STDERR_FILENO, f.dir + "/log");
  (void)f.tryEnsure(init);
  for (const auto& shim : supervisor.list()) f.shims.insert(shim.shimPid);
  runUntil(f.loop, [] { return false; }, 400ms);  // past the first restart (100 ms)
  for (const auto& shim : supervisor.list()) f.shims.insert(shim.shimPid);
  BOOST_TEST(supervisor.restartsTotal() == 0u);
  BOOST_TEST(!supervisor.serves(kId));
  BOOST_TEST(log.text().find("bytes, over exec's limit") != std::string::npos, log.text());
}

BOOST_AUTO_TEST_CASE(AShimThatCannotBeStartedAgainLeavesNoRecordBehind) {
  // The shim died and its container's namespace can no longer be entered (here its init
  // moved to another one; in life, /proc/<pid>/ns/net refused): no shim serves it, and no
  // record or control socket may say one does, for `connectable status` to list.
  SupervisorFixture f;
  const std::string die = f.dir + "/die", moveNetns = f.dir + "/move";
  writeShim(f.shimPath, ": > \"$8\"\nwhile [ ! -e " + die + " ]; do sleep 0.02; done\nexit 1\n");  // $8: --control's
  f.options.restartMin = 10ms;
  ShimSupervisor& supervisor = f.start();
  Child init = Child::spawn({"sh", "-c", "while [ ! -e " + moveNetns + " ]; do sleep 0.02; done; exec unshare -n sleep 30"});
  BOOST_REQUIRE(f.tryEnsure(init));
  BOOST_REQUIRE_EQUAL(supervisor.list().size(), 1u);
  f.shims.insert(supervisor.list()[0].shimPid);
  const std::string record = f.dir + "/shims/" + kId + ".json", control = f.dir + "/shims/" + kId + ".sock";
  BOOST_REQUIRE(connectable::testing::waitFor([&] { return access(control.c_str(), F_OK) == 0; }, 2s));

  struct stat ours {}, theirs {};
  BOOST_REQUIRE(stat("/proc/self/ns/net", &ours) == 0);
  std::ofstream(moveNetns).close();
  BOOST_REQUIRE(connectable::testing::waitFor([&] {
    return stat(("/proc/" + std::to_string(init.pid()) + "/ns/net").c_str(), &theirs) == 0 && theirs.st_ino != ours.st_ino;
  }, 2s));
  std::ofstream(die).close();
  BOOST_REQUIRE(runUntil(f.loop, [&] { return supervisor.list().empty(); }, 2s));
  BOOST_TEST(access(record.c_str(), F_OK) != 0, "the record of a shim that is gone is left");
  BOOST_TEST(access(control.c_str(), F_OK) != 0, "the control socket of a shim that is gone is left");
}

BOOST_AUTO_TEST_CASE(ARenamedContainersShimGoesByTheNewNameFromItsNextStart) {
  // The running shim keeps the arguments it was started with: a restarted injector knows
  // it by them. Its record and the next shim take the new name.
  SupervisorFixture f;
  writeShim(f.shimPath, kPoliteShim);
  f.options.restartMin = 10ms;
  ShimSupervisor& supervisor = f.start();
  Child init = Child::spawn({"sleep", "30"});
  const pid_t first = f.ensure(init);
  const std::string path = f.dir + "/shims/" + kId + ".json";
  supervisor.rename(kId, "web");
  BOOST_TEST(supervisor.list()[0].containerName == "web");
  std::string record = readFile(path);
  BOOST_TEST(record.find(R"("container_name":"web")") != std::string::npos, record);
  BOOST_TEST(record.find("\"app (8f3c11155b1b)\"") != std::string::npos, record);

  kill(first, SIGKILL);
  BOOST_REQUIRE(runUntil(f.loop, [&] {
    auto shims = supervisor.list();
    return shims.size() == 1 && shims[0].shimPid != first && shims[0].shimPid != 0 && supervisor.serves(kId);
  }, 2s));
  f.shims.insert(supervisor.list()[0].shimPid);
  record = readFile(path);
  BOOST_TEST(record.find("\"web (8f3c11155b1b)\"") != std::string::npos, record);
}

BOOST_AUTO_TEST_CASE(AShimThatCouldNotBeStartedAtAllIsNoSuccess) {
  // The injector counts and logs a container as injected when ensure() succeeds.
  SupervisorFixture f;
  writeShim(f.shimPath, kPoliteShim);
  f.request.shimArgs.push_back("--name=" + std::string(200 * 1024, 'x'));
  ShimSupervisor& supervisor = f.start();
  Child init = Child::spawn({"sleep", "30"});
  Status s = f.tryEnsure(init);
  for (const auto& shim : supervisor.list()) f.shims.insert(shim.shimPid);
  BOOST_TEST(!s.isOk(), "no shim, yet a success");
  BOOST_TEST(s.message().find("over exec's limit") != std::string::npos, s.message());
  BOOST_TEST(!supervisor.serves(kId));
}

BOOST_AUTO_TEST_CASE(WithShimUidsEachContainersShimHasAUidOfItsOwnKeptAcrossItsRestarts) {
  SupervisorFixture f;
  writeShim(f.shimPath, kPoliteShim);
  f.options.shimUidFirst = 2000000;
  f.options.shimUidCount = 2;
  ShimSupervisor& supervisor = f.start();
  std::vector<Child> inits;
  auto ensureFor = [&](const std::string& id, const Child& init) {
    auto process = ProcessHandle::open(init.pid());
    BOOST_REQUIRE(process);
    auto netns = process->openNetns();
    BOOST_REQUIRE(netns);
    return supervisor.ensure(id, id.substr(0, 4), f.request, std::move(*process), std::move(*netns));
  };
  auto uidOf = [&](const std::string& id) {
    auto record = readShimRecord(f.options.stateDir + "/shims/" + id + ".json");
    BOOST_REQUIRE_MESSAGE(record, record.status().message());
    std::string uid;
    for (const auto& a : record->args)
      if (a.rfind("--user=", 0) == 0) uid = a.substr(7);
    return uid;
  };
  const std::string a(64, 'a'), b(64, 'b'), c(64, 'c');
  for (int i = 0; i < 3; ++i) inits.push_back(Child::spawn({"sleep", "30"}));
  BOOST_REQUIRE(ensureFor(a, inits[0]));
  BOOST_REQUIRE(ensureFor(b, inits[1]));
  BOOST_TEST(uidOf(a) == "2000000");
  BOOST_TEST(uidOf(b) == "2000001");
  // The range is used up: a third container is told why it gets no shim.
  Status third = ensureFor(c, inits[2]);
  BOOST_REQUIRE(!third);
  BOOST_TEST(third.message().find("--shim-uids 2000000-2000001") != std::string::npos, third.message());
  // A container restarting (a new namespace) keeps its uid, though its old shim still exits.
  inits[0].kill();
  inits.push_back(Child::spawn({"sleep", "30"}));
  BOOST_REQUIRE(ensureFor(a, inits.back()));
  BOOST_TEST(uidOf(a) == "2000000");
  // A container gone gives its uid back.
  supervisor.stop(b, "container died");
  BOOST_REQUIRE(runUntil(f.loop, [&] { return supervisor.list().size() == 1; }, 2s));
  BOOST_REQUIRE(ensureFor(c, inits[2]));
  BOOST_TEST(uidOf(c) == "2000001");
  for (const auto& shim : supervisor.list()) f.shims.insert(shim.shimPid);
}

BOOST_AUTO_TEST_CASE(GivingUpOnAShimThatDiedIsToldWithWhy) {
  // After a shim died the injector is not asking; it learns why the container is left
  // without one from here, for `connectable status`.
  SupervisorFixture f;
  writeShim(f.shimPath, "sleep 0.2\nexit 2\n");  // as the shim does with arguments it refuses
  ShimSupervisor& supervisor = f.start();
  std::string who, why;
  supervisor.onNotServing([&](const std::string& id, const std::string& reason) {
    who = id;
    why = reason;
  });
  Child init = Child::spawn({"sleep", "30"});
  BOOST_REQUIRE(f.tryEnsure(init));
  f.shims.insert(supervisor.list()[0].shimPid);
  BOOST_REQUIRE(runUntil(f.loop, [&] { return !who.empty(); }, 5s));
  BOOST_TEST(who == kId);
  BOOST_TEST(why.find("rejected its arguments") != std::string::npos, why);
  BOOST_TEST(supervisor.list().empty());
}

namespace {

size_t occurrences(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// A container's program holding the ports the shim wants (listeners in our namespace,
// which the fixture's inits share), and a stand-in shim that fails as the real one does
// while they are held: its own error line, exit 3. It serves once the test frees one.
struct TakenPortFixture : SupervisorFixture {
  std::vector<std::unique_ptr<connectable::testing::TcpServer>> holders;
  std::string freeFlag = dir + "/free";
  std::string tries = dir + "/tries";
  explicit TakenPortFixture(size_t ports = 1) {
    std::map<std::string, std::string> labels;
    for (size_t i = 0; i < ports; ++i) {
      holders.push_back(std::make_unique<connectable::testing::TcpServer>([](int) {}));
      labels["connect." + std::to_string(holders.back()->port())] = "198.18.0.5:" + std::to_string(6379 + i);
    }
    request = parseContainerLabels(labels);
    writeShim(shimPath, "echo x >> " + tries + "\n[ -e " + freeFlag + " ] && exec sleep 30\n" +
                            "echo 'port " + std::to_string(port()) + " is already in use' >&2\nexit 3\n");
    options.restartMax = 100ms;
    options.portFreeAfter = 300ms;
  }
  uint16_t port() const { return holders.front()->port(); }
  // Asks for the shim of `init`'s container and waits until its first try has failed.
  void untilWaiting(ShimSupervisor& supervisor, Child& init) {
    BOOST_REQUIRE(tryEnsure(init));
    shims.insert(supervisor.list()[0].shimPid);
    BOOST_REQUIRE(runUntil(loop, [&] { return supervisor.list()[0].shimPid == 0; }, 5s));
  }
  size_t starts() const { return occurrences(readFile(tries), "x"); }
  void free(size_t which = 0) {
    holders.at(which)->stop();
    std::ofstream(freeFlag) << "";
  }
  // Frees the port and waits for the shim then started, one that ignores SIGTERM (it drains
  // long), to be past its script; its pid.
  pid_t untilStartedOnceFree(ShimSupervisor& supervisor) {
    writeShim(shimPath, std::string("[ -e ") + freeFlag + " ] || exit 3\n" + kStubbornShim);
    free();
    BOOST_REQUIRE(runUntil(loop, [&] { return supervisor.list()[0].shimPid != 0; }, 5s));
    const pid_t pid = supervisor.list()[0].shimPid;
    shims.insert(pid);
    BOOST_REQUIRE(connectable::testing::waitFor(
        [&] { return readFile("/proc/" + std::to_string(pid) + "/comm") == "sleep\n"; }, 2s));
    return pid;
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(AContainerWhosePortsWereAllTakenGetsItsShimOnceOneIsFree) {
  // A shim serves the ports it can bind and leaves the taken ones out: it needs one free
  // port, not all of them, and waiting for all would leave the freed one unserved.
  TakenPortFixture f(2);
  ShimSupervisor& supervisor = f.start();
  Child init = Child::spawn({"sleep", "30"});
  CapturedOutput log(STDERR_FILENO, f.dir + "/log");
  f.untilWaiting(supervisor, init);
  runUntil(f.loop, [] { return false; }, 500ms);  // tries while both are taken
  const size_t whileBothTaken = f.starts();
  f.free(1);
  const bool started = runUntil(f.loop, [&] { return supervisor.list()[0].shimPid != 0; }, 3s);
  if (started) f.shims.insert(supervisor.list()[0].shimPid);
  log.restore();
  BOOST_TEST(whileBothTaken == 1u, "a shim started while both ports were taken: " << whileBothTaken);
  BOOST_TEST(started, "no shim once one of the two ports was free:\n" << log.text());
}

BOOST_AUTO_TEST_CASE(AShimWaitingForItsNextTryNamesNoPidButWhyAndWhenAndItsTriesAreNoRestarts) {
  // `connectable status` showed the pid of a process long gone, and RESTARTS grew at every
  // try, as if a shim that never served had crashed each time.
  TakenPortFixture f;
  ShimSupervisor& supervisor = f.start();
  Child init = Child::spawn({"sleep", "30"});
  CapturedOutput log(STDERR_FILENO, f.dir + "/log");
  f.untilWaiting(supervisor, init);
  runUntil(f.loop, [] { return false; }, 700ms);  // several tries
  ShimInfo info = supervisor.list()[0];
  auto record = readShimRecord(f.dir + "/shims/" + kId + ".json");
  BOOST_REQUIRE_MESSAGE(record, record.status().message());
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  log.restore();
  BOOST_TEST(record->info.shimPid == 0);
  BOOST_TEST(record->info.notRunning ==
                 "a port of " + std::to_string(f.port()) + " is already taken inside the container",
             record->info.notRunning);
  BOOST_TEST(record->info.nextStart >= now);
  BOOST_TEST(record->info.nextStart <= now + 1);
  BOOST_TEST(info.portRetries >= 3u);
  BOOST_TEST(info.restarts == 0u);
  BOOST_TEST(supervisor.restartsTotal() == 0u);

  f.free();
  BOOST_REQUIRE(runUntil(f.loop, [&] { return supervisor.list()[0].shimPid != 0 && supervisor.list()[0].portRetries == 0; }, 5s));
  f.shims.insert(supervisor.list()[0].shimPid);
  record = readShimRecord(f.dir + "/shims/" + kId + ".json");
  BOOST_REQUIRE(record);
  BOOST_TEST(record->info.shimPid == supervisor.list()[0].shimPid);
  BOOST_TEST(record->info.notRunning.empty());
  BOOST_TEST(supervisor.list()[0].restarts == 0u, "a shim that never served was not restarted");
}

BOOST_AUTO_TEST_CASE(APortTakenInsideTheContainerIsLoggedOnceAndWaitedOutWithoutStartingAShimEachTry) {
  // Every 10 s for as long as the container ran: `shim started`, and the shim's own `port
  // ... is already in use`. The injector now checks the port itself and starts a shim
  // only once it is free, and says so in one line.
  TakenPortFixture f;
  ShimSupervisor& supervisor = f.start();
  std::vector<std::string> told;
  supervisor.onNotServing([&](const std::string&, const std::string& why) { told.push_back(why); });
  Child init = Child::spawn({"sleep", "30"});
  CapturedOutput log(STDERR_FILENO, f.dir + "/log");
  BOOST_REQUIRE(f.tryEnsure(init));
  f.shims.insert(supervisor.list()[0].shimPid);
  runUntil(f.loop, [] { return false; }, 1000ms);  // ten tries at 100 ms
  const size_t startsWhileTaken = f.starts();
  const std::string taken = log.text();
  f.free();
  BOOST_REQUIRE(runUntil(f.loop, [&] { return log.text().find("the shim serves") != std::string::npos; }, 5s));
  f.shims.insert(supervisor.list()[0].shimPid);
  log.restore();
  const std::string text = log.text();
  BOOST_TEST(startsWhileTaken == 1u, "a shim started at every try: " << startsWhileTaken);
  BOOST_TEST(occurrences(taken, "is already in use") == 1u, taken);
  BOOST_TEST(occurrences(taken, "shim started") == 1u, taken);
  BOOST_TEST(occurrences(taken, "a port is already taken inside the container; retrying") == 1u, taken);
  BOOST_TEST(occurrences(text, "the taken port is free now; the shim serves") == 1u, text);
  BOOST_TEST(text.find("tries=") != std::string::npos, text);
  BOOST_TEST(told.empty(), "a container waiting for its port is not given up on");
  BOOST_TEST(supervisor.serves(kId));
}

BOOST_AUTO_TEST_CASE(AShimStoppedBeforeItsTakenPortCountsAsFreeIsNotSaidToServe) {
  // The check that a shim started after a taken port serves comes portFreeAfter later: by
  // then the shim may be stopping (its container died) or replaced (it restarted), and the
  // line, and the reset of the port retries, would be about the wrong shim.
  TakenPortFixture f;
  f.options.portFreeAfter = 1000ms;  // far after the stop, even on a slow machine
  ShimSupervisor& supervisor = f.start();
  Child init = Child::spawn({"sleep", "30"});
  CapturedOutput log(STDERR_FILENO, f.dir + "/log");
  f.untilWaiting(supervisor, init);
  f.untilStartedOnceFree(supervisor);
  supervisor.stop(kId, "container died");
  runUntil(f.loop, [] { return false; }, 1300ms);
  log.restore();
  BOOST_TEST(log.text().find("the shim serves") == std::string::npos, log.text());
}

BOOST_AUTO_TEST_CASE(AShimReplacedBeforeItsTakenPortCountsAsFreeLeavesItsSuccessorAlone) {
  TakenPortFixture f;
  f.options.portFreeAfter = 1000ms;
  f.options.stopGrace = 2000ms;  // the replaced shim is still there when the check comes
  ShimSupervisor& supervisor = f.start();
  f.inits.push_back(Child::spawn({"sleep", "30"}));
  CapturedOutput log(STDERR_FILENO, f.dir + "/log");
  f.untilWaiting(supervisor, f.inits.back());
  f.untilStartedOnceFree(supervisor);
  f.inits.back().kill();  // the container restarts
  f.inits.push_back(Child::spawn({"sleep", "30"}));
  BOOST_REQUIRE(f.tryEnsure(f.inits.back()));
  f.shims.insert(supervisor.list()[0].shimPid);
  runUntil(f.loop, [] { return false; }, 1300ms);
  log.restore();
  BOOST_TEST(log.text().find("the shim serves") == std::string::npos, log.text());
}

BOOST_AUTO_TEST_CASE(AShimProgramThatCannotRunIsLoggedWithTheRealReason) {
  SupervisorFixture f;
  {
    std::ofstream out(f.shimPath);
    out << "neither a script nor an ELF file\n";
  }
  BOOST_REQUIRE(chmod(f.shimPath.c_str(), 0755) == 0);
  ShimSupervisor& supervisor = f.start();
  Child init = Child::spawn({"sleep", "30"});
  CapturedOutput log(STDERR_FILENO, f.dir + "/log");
  BOOST_REQUIRE(f.tryEnsure(init));
  auto logged = [&] { return log.text().find("could not run the shim program") != std::string::npos; };
  BOOST_TEST(runUntil(f.loop, logged, 2s));
  supervisor.stop(kId, "test over");
  std::string text = log.text();
  BOOST_TEST(text.find("Exec format error") != std::string::npos, text);
  BOOST_TEST(text.find("replaced while starting") == std::string::npos, text);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(ShimRecords)

const ShimRecord kRecord{ShimInfo{}, 111, 222, {"--netns-fd", "3", "--connect", "6000=redis.service.consul"}};

BOOST_AUTO_TEST_CASE(ARecordIsReadBackAsItWasWritten) {
  ShimRecord written = kRecord;
  written.info.containerId = kId;
  written.info.containerName = "app";
  written.info.shimPid = 42;
  written.info.ports = "6000";
  auto read = parseShimRecord(shimRecordText(written));
  BOOST_REQUIRE_MESSAGE(read, read.status().message());
  BOOST_TEST(read->info.containerId == kId);
  BOOST_TEST(read->info.shimPid == 42);
  BOOST_TEST(read->shimStartTime == 111u);
  BOOST_TEST(read->args == written.args);
}

BOOST_AUTO_TEST_CASE(ARecordWithTextBehindAByteTheJsonParserTakesForTheEndIsUnreadable) {
  // POCO's parser stops at a 0xff byte and would take the record before it as the whole.
  ShimRecord written = kRecord;
  written.info.containerId = kId;
  const std::string text = shimRecordText(written);
  BOOST_REQUIRE(parseShimRecord(text));
  BOOST_TEST(!parseShimRecord(text + "\xff" "garbage"));
}

BOOST_AUTO_TEST_CASE(ARecordThatIsNotUtf8IsUnreadable) {
  // The injector writes every record in UTF-8 (what is not becomes U+FFFD).
  ShimRecord written = kRecord;
  written.info.containerId = kId;
  written.info.containerName = "app";
  std::string text = shimRecordText(written);
  text.replace(text.find("\"app\""), 5, "\"a\xfe" "p\"");
  BOOST_TEST(!parseShimRecord(text));
}

BOOST_AUTO_TEST_SUITE_END()
