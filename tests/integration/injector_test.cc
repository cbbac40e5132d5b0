// The injector against a real Docker Engine: labelled containers, started by the test from
// an offline busybox image, reach backends on the host's loopback through their shims.
#define BOOST_TEST_MODULE injector with a real Docker Engine
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <fstream>
#include <regex>
#include <thread>

#include "tests/support/docker_fixture.h"
#include "tests/support/process.h"
#include "tests/support/tcp_peers.h"

using namespace connectable::testing;
using namespace std::chrono_literals;

namespace {

std::string httpReply(const std::string& body) {
  return "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body;
}

std::string binary(const std::string& name) { return std::string(CONNECTABLE_BIN_DIR) + "/" + name; }

// The injector as a process of the test, with its own state dir.
class InjectorProcess {
 public:
  explicit InjectorProcess(std::string stateDir, std::vector<std::string> extraArgs = {})
      : stateDir_(std::move(stateDir)), log_(stateDir_ + "/injector.log"), extraArgs_(std::move(extraArgs)) {
    start();
  }
  void start() {
    std::vector<std::string> argv = {binary("connectable"), "--state-dir", stateDir_, "--log-level", "debug",
                                     "--connect-timeout", "1s"};
    argv.insert(argv.end(), extraArgs_.begin(), extraArgs_.end());
    child_ = Child::spawn(argv, log_);
    if (!waitLog("reconciled", 15s)) throw std::runtime_error("injector did not start:\n" + child_.log());
  }
  bool waitLog(const std::string& text, std::chrono::milliseconds timeout = 10s) {
    return waitFor([&] { return child_.log().find(text) != std::string::npos; }, timeout);
  }
  std::string log() const { return child_.log(); }
  Child& child() { return child_; }
  // The shim serving a container, from the injector's record of it; 0 if none.
  pid_t shimOf(const std::string& containerId) const {
    std::string record = readFile(stateDir_ + "/shims/" + containerId + ".json");
    std::smatch m;
    if (!std::regex_search(record, m, std::regex("\"shim_pid\":(\\d+)"))) return 0;
    return std::stoi(m[1]);
  }
  bool waitShim(const std::string& containerId, std::chrono::milliseconds timeout = 10s) {
    return waitFor([&] { pid_t p = shimOf(containerId); return p > 0 && kill(p, 0) == 0; }, timeout);
  }
  const std::string& stateDir() const { return stateDir_; }

 private:
  std::string stateDir_;
  std::string log_;
  std::vector<std::string> extraArgs_;
  Child child_;
};

bool processAlive(pid_t pid) {
  std::string stat = readFile("/proc/" + std::to_string(pid) + "/stat");
  if (stat.empty()) return false;
  auto close = stat.rfind(')');
  return close != std::string::npos && stat[close + 2] != 'Z';
}

RunResult fetchInside(const std::string& container, uint16_t port, const std::string& ip = "127.0.0.1") {
  return run({kDocker, "exec", container, "wget", "-qO-", "http://" + ip + ":" + std::to_string(port) + "/"}, 20s);
}

struct Fixture {
  Fixture() : state(tempDir()), web(replyHandler(httpReply("from-web"))), api(replyHandler(httpReply("from-api"))) {
    signal(SIGPIPE, SIG_IGN);
    image = docker.busyboxImage();
  }
  std::string label(uint16_t listen, const TcpServer& backend) {
    return "connect." + std::to_string(listen) + "=127.0.0.1:" + std::to_string(backend.port());
  }
  std::string name(const std::string& what) { return "connectable-test-" + std::to_string(getpid()) + "-" + what; }

  DockerResources docker;
  std::string image;
  std::string state;
  TcpServer web, api;
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(Injector, Fixture)

BOOST_AUTO_TEST_CASE(LabelledContainersReachTheirBackendsOnEveryNetworkKind) {
  InjectorProcess injector(state);
  std::string net = name("net");
  BOOST_REQUIRE(run({kDocker, "network", "create", "--subnet", "198.18.91.0/24", net}).exitCode == 0);
  docker.recordNetwork(net);
  std::string none = name("none"), bridged = name("bridged");
  BOOST_REQUIRE(!docker.runDetached({"--name", none, "--network", "none", "-l", label(8080, web), image, "sleep", "120"}).empty());
  BOOST_REQUIRE(!docker.runDetached({"--name", bridged, "--network", net, "-l", label(8080, web), image, "sleep", "120"}).empty());
  for (auto c : {none, bridged}) {
    BOOST_REQUIRE(injector.waitShim(docker.idOf(c)));
    auto r = fetchInside(c, 8080);
    BOOST_TEST(r.out == "from-web", c << ": " << r.err);
  }
  BOOST_TEST(injector.log().find("container=\"" + none) != std::string::npos);  // log lines name the container
}

BOOST_AUTO_TEST_CASE(TwoLabelsGiveTwoPorts) {
  InjectorProcess injector(state);
  std::string app = name("two");
  std::string id = docker.runDetached({"--name", app, "--network", "none", "-l", label(8080, web), "-l", label(9090, api), image, "sleep", "120"});
  BOOST_REQUIRE(injector.waitShim(id));
  BOOST_TEST(fetchInside(app, 8080).out == "from-web");
  BOOST_TEST(fetchInside(app, 9090).out == "from-api");
}

BOOST_AUTO_TEST_CASE(ABadLabelIsReportedAndTheGoodOneStillWorks) {
  InjectorProcess injector(state);
  std::string app = name("badlabel");
  std::string id = docker.runDetached({"--name", app, "--network", "none", "-l", label(8080, web), "-l",
                                       "connect.70000=redis.service.consul", "-l", "connectable.balance=fastest",
                                       image, "sleep", "120"});
  BOOST_REQUIRE(injector.waitShim(id));
  BOOST_TEST(fetchInside(app, 8080).out == "from-web");
  std::string log = injector.log();
  BOOST_TEST(log.find("ignoring bad label container=\"" + app) != std::string::npos, log);
  BOOST_TEST(log.find("'70000' is out of range") != std::string::npos);
  BOOST_TEST(log.find("--balance: 'fastest'") != std::string::npos);

  // `connectable status` says it too, and lists a container whose every label is bad.
  std::string lonely = name("onlybad");
  docker.runDetached({"--name", lonely, "--network", "none", "-l", "connect.0=127.0.0.1:1", image, "sleep", "120"});
  BOOST_TEST(injector.waitLog("ignoring bad label container=\"" + lonely));
  auto status = run({binary("connectable"), "status", "--state-dir", state});
  BOOST_TEST(status.exitCode == 0, status.err);
  BOOST_TEST(status.out.find(app + " (" + id.substr(0, 12) + "): ignored bad label: ") != std::string::npos, status.out);
  BOOST_TEST(status.out.find("'70000' is out of range") != std::string::npos, status.out);
  BOOST_TEST(status.out.find(lonely + " (") != std::string::npos, status.out);
  BOOST_TEST(status.out.find("'0' is out of range") != std::string::npos, status.out);
  // Removed, it is gone from status too.
  BOOST_REQUIRE(run({kDocker, "rm", "-f", lonely}).exitCode == 0);
  BOOST_TEST(waitFor([&] {
    return run({binary("connectable"), "status", "--state-dir", state}).out.find(lonely) == std::string::npos;
  }, 10s));
}

BOOST_AUTO_TEST_CASE(ANetworkNoneContainerReachesItsBackendAndNothingElse) {
  InjectorProcess injector(state);
  std::string app = name("isolated");
  std::string id = docker.runDetached({"--name", app, "--network", "none", "-l", label(8080, web), image, "sleep", "120"});
  BOOST_REQUIRE(injector.waitShim(id));
  BOOST_TEST(fetchInside(app, 8080).out == "from-web");
  BOOST_TEST(fetchInside(app, api.port()).exitCode != 0);               // another host service: not there
  BOOST_TEST(fetchInside(app, 80, "198.18.91.1").exitCode != 0);          // no route anywhere
}

BOOST_AUTO_TEST_CASE(StopRemovesTheShimAndRestartBringsANewOne) {
  InjectorProcess injector(state);
  std::string app = name("restart");
  std::string id = docker.runDetached({"--name", app, "--network", "none", "-l", label(8080, web), image, "sleep", "120"});
  BOOST_REQUIRE(injector.waitShim(id));
  pid_t first = injector.shimOf(id);
  BOOST_REQUIRE(run({kDocker, "stop", "-t", "1", app}, 30s).exitCode == 0);
  BOOST_TEST(waitFor([&] { return !processAlive(first); }, 5s));
  BOOST_TEST(waitFor([&] { return injector.shimOf(id) == 0; }, 5s));  // its record is gone too
  BOOST_REQUIRE(run({kDocker, "start", app}, 30s).exitCode == 0);
  BOOST_REQUIRE(injector.waitShim(id));
  BOOST_TEST(injector.shimOf(id) != first);
  BOOST_TEST(fetchInside(app, 8080).out == "from-web");
}

BOOST_AUTO_TEST_CASE(HostNetworkContainersAreNeverInjected) {
  InjectorProcess injector(state);
  std::string app = name("hostnet");
  std::string id = docker.runDetached({"--name", app, "--network", "host", "-l", "connect.39999=127.0.0.1:1", image, "sleep", "120"});
  BOOST_REQUIRE(!id.empty());
  BOOST_TEST(injector.waitLog("never injects there"));
  BOOST_TEST(injector.shimOf(id) == 0);
  int fd = connectTcp("127.0.0.1", 39999, 500);  // nothing listens on the host for it
  BOOST_TEST(fd < 0);
  if (fd >= 0) close(fd);
}

BOOST_AUTO_TEST_CASE(AKilledShimIsBackWithinASecond) {
  InjectorProcess injector(state);
  std::string app = name("crash");
  std::string id = docker.runDetached({"--name", app, "--network", "none", "-l", label(8080, web), image, "sleep", "120"});
  BOOST_REQUIRE(injector.waitShim(id));
  pid_t first = injector.shimOf(id);
  kill(first, SIGKILL);
  auto killed = std::chrono::steady_clock::now();
  BOOST_REQUIRE(waitFor([&] { pid_t p = injector.shimOf(id); return p != first && p > 0 && processAlive(p); }, 5s));
  auto back = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - killed).count();
  BOOST_TEST(back < 1000, "back after " << back << " ms");
  BOOST_TEST(fetchInside(app, 8080).out == "from-web");
  // `connectable status` counts the restart.
  auto status = run({binary("connectable"), "status", "--state-dir", injector.stateDir(), app});
  BOOST_TEST(std::regex_search(status.out, std::regex(app + ".*\\s" + std::to_string(injector.shimOf(id)) + "\\s+1\\s")),
             status.out);
}

BOOST_AUTO_TEST_CASE(ASecondInjectorOnTheSameDaemonRefusesToStart) {
  // Two would both inject every labelled container and fight over its ports.
  InjectorProcess injector(state);
  std::string other = tempDir();
  auto second = run({binary("connectable"), "--state-dir", other}, 10s);
  BOOST_TEST(second.exitCode == 1);
  BOOST_TEST(second.err.find("another connectable injector (pid " + std::to_string(injector.child().pid()) +
                             ") already watches unix:///var/run/docker.sock") != std::string::npos,
             second.err);
  run({"rm", "-rf", other});
}

BOOST_AUTO_TEST_CASE(ASecondInjectorReachingTheSameDaemonThroughAnotherSocketRefusesToStart) {
  // A socket of its own that leads to the same daemon (a relay here; a container given the
  // socket file after a dockerd restart is another such case): no name of the socket in
  // common, but the daemon's ID.
  InjectorProcess injector(state);
  std::string other = tempDir();
  std::string relayPath = other + "/docker.sock";
  Child relay = Child::spawn({"socat", "UNIX-LISTEN:" + relayPath + ",fork", "UNIX-CONNECT:/var/run/docker.sock"});
  BOOST_REQUIRE(waitFor([&] { return access(relayPath.c_str(), F_OK) == 0; }, 5s));
  std::string otherState = tempDir();
  auto second = run({binary("connectable"), "--state-dir", otherState, "--docker", "unix://" + relayPath}, 20s);
  BOOST_TEST(second.exitCode == 1);
  BOOST_TEST(second.err.find("another connectable injector (pid " + std::to_string(injector.child().pid()) +
                             ") already watches the Docker daemon behind unix://" + relayPath) != std::string::npos,
             second.err);
  relay.kill();
  run({"rm", "-rf", other, otherState});
}

BOOST_AUTO_TEST_CASE(AnInjectorForAnotherDaemonOnTheSameStateDirRefusesToStart) {
  // A second dockerd on the host, and its injector's unit copied with only --docker
  // changed: sharing the state dir, each would adopt the other's shims and stop them as
  // "container not running".
  InjectorProcess injector(state);
  std::string other = tempDir();
  auto second = run({binary("connectable"), "--state-dir", state, "--docker", "unix://" + other + "/docker.sock"}, 10s);
  BOOST_TEST(second.exitCode == 1);
  BOOST_TEST(second.err.find("another injector (pid " + std::to_string(injector.child().pid()) + ") uses the state dir " +
                             state + ": each injector needs its own --state-dir") != std::string::npos,
             second.err);
  run({"rm", "-rf", other});
}

BOOST_AUTO_TEST_CASE(AShimProgramThatCannotRunIsReportedWithTheReason) {
  // The program is there when the injector starts (it checks), and gone when it is needed:
  // an upgrade or a build replacing it at the wrong moment.
  std::string shim = state + "/shim";
  BOOST_REQUIRE(symlink(binary("connectable-shim").c_str(), shim.c_str()) == 0);
  InjectorProcess injector(state, {"--shim", shim});
  unlink(shim.c_str());
  std::string app = name("noshim");
  docker.runDetached({"--name", app, "--network", "none", "-l", label(8080, web), image, "sleep", "120"});
  BOOST_TEST(injector.waitLog("could not run the shim program"), injector.log());
  BOOST_TEST(injector.log().find("No such file or directory") != std::string::npos, injector.log());
}

BOOST_AUTO_TEST_CASE(AKilledInjectorReadoptsItsShimsAndOpenConnectionsSurvive) {
  TcpServer echo(echoHandler());
  auto injector = std::make_unique<InjectorProcess>(state);
  std::string app = name("readopt");
  std::string id = docker.runDetached({"--name", app, "--network", "none", "-l", label(7000, echo), image, "sleep", "120"});
  BOOST_REQUIRE(injector->waitShim(id));
  pid_t shim = injector->shimOf(id);
  // An open connection through the shim: nc inside the container, fed by a pipe we hold.
  Child nc = Child::spawn({kDocker, "exec", "-i", app, "sh", "-c",
                           "(echo one; sleep 3; echo two) | nc 127.0.0.1 7000 > /tmp/got"});
  BOOST_REQUIRE(waitFor([&] { return echo.accepted() == 1; }, 5s));
  injector->child().kill();  // SIGKILL
  // Restarted with another option for its shims: the adopted one keeps serving as it was
  // started, and both the log and the status say so.
  injector = std::make_unique<InjectorProcess>(state, std::vector<std::string>{"--connect-timeout", "3s"});
  BOOST_TEST(injector->waitLog("adopted running shim"));
  BOOST_TEST(injector->shimOf(id) == shim);  // the same process: no duplicate, no orphan
  BOOST_TEST(nc.wait(15s) == 0);
  auto got = run({kDocker, "exec", app, "cat", "/tmp/got"});
  BOOST_TEST(got.out == "one\ntwo\n");
  BOOST_TEST(echo.accepted() == 1);  // one connection, carried across the restart
  BOOST_TEST(injector->waitLog("shim runs with the options it was started with"), injector->log());
  BOOST_TEST(injector->log().find(", would now get --connect-timeout=3s") != std::string::npos, injector->log());
  auto status = run({binary("connectable"), "status", "--state-dir", state, app});
  BOOST_TEST(status.out.find("`docker restart " + app + "` applies them") != std::string::npos, status.out);
}

BOOST_AUTO_TEST_CASE(ShimsGivenUidsOfTheirOwnServeAndCannotSignalOneAnotherAcrossARestart) {
  // Under one shared user, any shim (or anything else running as nobody) could kill the
  // others; with --shim-uids each container's shim is alone in its uid.
  const std::vector<std::string> uids = {"--shim-uids", "2000100-2000199"};
  auto injector = std::make_unique<InjectorProcess>(state, uids);
  auto uidOf = [](pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);)
      if (line.rfind("Uid:", 0) == 0) return line.substr(4);
    return std::string();
  };
  // Signal 0 to `pid` from a process running as `uid`: whether it could signal it.
  auto canSignal = [](const std::string& uid, pid_t pid) {
    return run({"setpriv", "--reuid=" + uid, "--regid=" + uid, "--clear-groups", "kill", "-0", std::to_string(pid)})
               .exitCode == 0;
  };
  std::vector<std::string> ids;
  std::vector<pid_t> shims;
  for (const char* what : {"uid-a", "uid-b"}) {
    ids.push_back(docker.runDetached({"--name", name(what), "--network", "none", "-l", label(8080, web), image, "sleep", "120"}));
    BOOST_REQUIRE(injector->waitShim(ids.back()));
    shims.push_back(injector->shimOf(ids.back()));
    BOOST_TEST(fetchInside(name(what), 8080).out == "from-web");
  }
  BOOST_TEST(uidOf(shims[0]) == "\t2000100\t2000100\t2000100\t2000100");
  BOOST_TEST(uidOf(shims[1]) == "\t2000101\t2000101\t2000101\t2000101");
  BOOST_TEST(canSignal("2000100", shims[0]));  // the check itself works
  BOOST_TEST(!canSignal("2000100", shims[1]));
  BOOST_TEST(!canSignal("65534", shims[0]));

  // A new injector adopts them, and gives the next container a uid neither has.
  injector->child().kill();
  injector = std::make_unique<InjectorProcess>(state, uids);
  BOOST_TEST(injector->waitLog("adopted running shim"));
  ids.push_back(docker.runDetached({"--name", name("uid-c"), "--network", "none", "-l", label(8080, web), image, "sleep", "120"}));
  BOOST_REQUIRE(injector->waitShim(ids.back()));
  BOOST_TEST(uidOf(injector->shimOf(ids.back())) == "\t2000102\t2000102\t2000102\t2000102");
  BOOST_TEST(fetchInside(name("uid-c"), 8080).out == "from-web");
}

BOOST_AUTO_TEST_CASE(AShimExitsWithItsContainerEvenWithoutTheInjector) {
  auto injector = std::make_unique<InjectorProcess>(state);
  std::string app = name("orphan");
  std::string id = docker.runDetached({"--name", app, "--network", "none", "-l", label(8080, web), image, "sleep", "120"});
  BOOST_REQUIRE(injector->waitShim(id));
  pid_t shim = injector->shimOf(id);
  injector->child().kill();
  BOOST_REQUIRE(run({kDocker, "kill", app}, 30s).exitCode == 0);
  BOOST_TEST(waitFor([&] { return !processAlive(shim); }, 5s));
}

BOOST_AUTO_TEST_CASE(AnAppThatConnectsAtItsFirstInstructionIsNeverRefused) {
  InjectorProcess injector(state);
  int served = 0;
  std::string failures;
  for (int i = 0; i < 20; ++i) {
    auto r = run({kDocker, "run", "--rm", "--network", "none", "-l", label(8080, web), image, "wget", "-qO-",
                  "http://127.0.0.1:8080/"}, 60s);
    if (r.out == "from-web") {
      ++served;
    } else {
      failures += "run " + std::to_string(i) + ": " + r.err + "\n";
    }
  }
  BOOST_TEST(served == 20, failures);
  BOOST_TEST(injector.log().find("injected before start") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(ThirtyContainersStartedAtOnceAreAllServed) {
  InjectorProcess injector(state);
  std::vector<std::string> names;
  std::vector<Child> runs;
  for (int i = 0; i < 30; ++i) {
    names.push_back(name("many-" + std::to_string(i)));
    docker.recordContainer(names.back());
    runs.push_back(Child::spawn({kDocker, "run", "-d", "--name", names.back(), "--network", "none", "-l", label(8080, web),
                                 image, "sleep", "120"}));
  }
  for (auto& r : runs) BOOST_REQUIRE(r.wait(120s) == 0);
  int served = 0;
  for (const auto& n : names) {
    BOOST_REQUIRE(injector.waitShim(docker.idOf(n), 20s));
    served += fetchInside(n, 8080).out == "from-web";
  }
  BOOST_TEST(served == 30);
}

BOOST_AUTO_TEST_CASE(InjectionResumesAfterTheDockerDaemonRestarts) {
  if (readFile("/tmp/connectable-dockerd/dockerd.pid").empty()) {
    BOOST_TEST_MESSAGE("the Docker daemon was not started by scripts/test: not restarting someone else's daemon");
    BOOST_TEST(false, "run through scripts/test, which owns the daemon this test restarts");
    return;
  }
  InjectorProcess injector(state);
  auto restarted = sh(". " + repoRoot() + "/scripts/lib/dockerd.sh && dockerd_restart_own", 120s);
  BOOST_REQUIRE_MESSAGE(restarted.exitCode == 0, restarted.err);
  BOOST_TEST(injector.waitLog("Docker event stream ended", 10s));
  std::string app = name("after-restart");
  std::string id = docker.runDetached({"--name", app, "--network", "none", "-l", label(8080, web), image, "sleep", "120"});
  BOOST_REQUIRE_MESSAGE(!id.empty(), docker.lastError());
  BOOST_REQUIRE(injector.waitShim(id, 20s));
  BOOST_TEST(fetchInside(app, 8080).out == "from-web");
}


BOOST_AUTO_TEST_CASE(AContainerSharingAnotherOnesNetworkGetsItsOwnPortThere) {
  InjectorProcess injector(state);
  std::string owner = name("owner"), guest = name("guest");
  std::string ownerId = docker.runDetached({"--name", owner, "--network", "none", "-l", label(8080, web), image, "sleep", "120"});
  BOOST_REQUIRE(injector.waitShim(ownerId));
  std::string guestId = docker.runDetached({"--name", guest, "--network", "container:" + owner, "-l", label(9090, api), image, "sleep", "120"});
  BOOST_REQUIRE_MESSAGE(!guestId.empty(), docker.lastError());
  BOOST_REQUIRE(injector.waitShim(guestId));
  // One namespace, two shims, each port reachable from both containers.
  BOOST_TEST(fetchInside(guest, 8080).out == "from-web");
  BOOST_TEST(fetchInside(owner, 9090).out == "from-api");
}

BOOST_AUTO_TEST_CASE(SigtermLeavesShimsServingUnlessToldToStopThem) {
  std::string app = name("sigterm");
  std::string id;
  pid_t shim = 0;
  {
    InjectorProcess injector(state);
    id = docker.runDetached({"--name", app, "--network", "none", "-l", label(8080, web), image, "sleep", "120"});
    BOOST_REQUIRE(injector.waitShim(id));
    shim = injector.shimOf(id);
    injector.child().signal(SIGTERM);
    BOOST_TEST(injector.child().wait(5s) == 0);
  }
  BOOST_TEST(processAlive(shim));
  BOOST_TEST(fetchInside(app, 8080).out == "from-web");
  // Started with --stop-shims-on-exit, the next one takes its shims down with it.
  Child stopper = Child::spawn({binary("connectable"), "--state-dir", state, "--stop-shims-on-exit"}, state + "/stopper.log");
  BOOST_REQUIRE(waitFor([&] { return stopper.log().find("adopted running shim") != std::string::npos; }, 10s));
  stopper.signal(SIGTERM);
  BOOST_TEST(stopper.wait(10s) == 0);
  BOOST_TEST(!processAlive(shim));
}

BOOST_AUTO_TEST_SUITE_END()
