// The injector as a container, run the way docs/running.md says: the image from
// examples/docker/build-image, least privilege, an app container with --network none
// reaching a server on the host's loopback through its label.
//
// The test runs its own dockerd (own socket, data and exec roots, no bridge, no iptables):
// an injector already watching the host's daemon would race ours for every labelled
// container, and ours would inject into other people's containers. Everything it starts
// (daemon, containers, images, temp dir) is removed, also when a check fails.
#define BOOST_TEST_MODULE injector container integration
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/shim_process.h"
#include "tests/support/tcp_peers.h"

using namespace connectable::testing;
using namespace std::chrono_literals;

namespace {

const std::string kDocker = "/usr/bin/docker";  // not the newer client first in PATH
// Debian's docker.io puts it in /usr/sbin, Docker's docker-ce in /usr/bin (as dockerd.sh).
const std::string kDockerd = access("/usr/sbin/dockerd", X_OK) == 0 ? "/usr/sbin/dockerd" : "/usr/bin/dockerd";
const std::string kTag = std::to_string(getpid());
const std::string kInjectorImage = "connectable-itest-" + kTag;
const std::string kBusyboxImage = "connectable-itest-busybox-" + kTag;
const std::string kInjectorName = "connectable-itest-injector-" + kTag;
const std::string kReply = "hello from the host\n";

// tests/integration/<this file> -> the repository root.
std::string repoRoot() {
  std::string path = __FILE__;
  for (int i = 0; i < 3; ++i) path = path.substr(0, path.rfind('/'));
  return path;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

RunResult docker(std::vector<std::string> args, std::chrono::milliseconds timeout = 60s) {
  args.insert(args.begin(), kDocker);
  return run(args, timeout);
}

// A fresh directory, emptied and removed at the end; mounts a daemon left in it go first.
struct TempDir {
  std::string path = tempDir();
  ~TempDir() {
    std::ifstream mounts("/proc/mounts");
    std::vector<std::string> inside;
    std::string device, point, rest;
    while (mounts >> device >> point && std::getline(mounts, rest)) {
      if (point.rfind(path + "/", 0) == 0) inside.push_back(point);
    }
    std::sort(inside.rbegin(), inside.rend());  // deepest first
    for (const auto& p : inside) umount2(p.c_str(), MNT_DETACH);
    run({"rm", "-rf", path});
  }
};

// A dockerd of our own, reached through DOCKER_HOST by every docker command of this process.
class PrivateDockerd {
 public:
  explicit PrivateDockerd(const std::string& dir) : dir_(dir), socket_(dir + "/docker.sock") {
    daemon_ = Child::spawn({kDockerd, "--host", "unix://" + socket_, "--data-root", dir + "/data", "--exec-root",
                            dir + "/exec", "--pidfile", dir + "/dockerd.pid", "--bridge", "none",
                            "--iptables=false", "--ip-masq=false"},
                           dir + "/dockerd.log");
    ::setenv("DOCKER_HOST", ("unix://" + socket_).c_str(), 1);
    bool up = waitFor([&] { return !daemon_.running() || docker({"info"}, 10s).exitCode == 0; }, 60s);
    if (!up || !daemon_.running()) {
      std::string log = daemon_.log();
      stop();
      BOOST_FAIL("dockerd did not start; its log:\n" + log);
    }
  }
  ~PrivateDockerd() { stop(); }
  const std::string& socket() const { return socket_; }

 private:
  void stop() {
    ::unsetenv("DOCKER_HOST");
    daemon_.signal(SIGTERM);
    if (daemon_.wait(30s) < 0) daemon_.kill();
    // dockerd stops the containerd it started; should it not have, that one is ours too.
    std::ifstream pidFile(dir_ + "/exec/containerd/containerd.pid");
    pid_t containerd = 0;
    if (pidFile >> containerd && containerd > 0 &&
        trim(readFile("/proc/" + std::to_string(containerd) + "/comm")) == "containerd")
      ::kill(containerd, SIGTERM);
  }

  std::string dir_;
  std::string socket_;
  Child daemon_;
};

// Containers and images, removed in reverse order whatever happened.
struct Created {
  std::vector<std::string> containers, images;
  ~Created() {
    for (auto it = containers.rbegin(); it != containers.rend(); ++it) docker({"rm", "-f", *it});
    for (const auto& i : images) docker({"image", "rm", "-f", i});
  }
};

struct Environment {
  TempDir temp;
  PrivateDockerd dockerd{temp.path};
  Created created;
  TcpServer backend{replyHandler("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                                 std::to_string(kReply.size()) + "\r\n\r\n" + kReply)};
  pid_t injectorPid = 0;

  Environment() {
    auto built = run({repoRoot() + "/examples/docker/build-image", std::string(CONNECTABLE_BIN_DIR) + "/..",
                      kInjectorImage},
                     120s);
    if (built.exitCode != 0) BOOST_FAIL("examples/docker/build-image: " + built.err);
    created.images.push_back(kInjectorImage);
    BOOST_TEST_MESSAGE(trim(built.out));
    auto busybox = run({"bash", "-c", ". '" + repoRoot() + "/scripts/lib/images.sh' && build_busybox_image " +
                                          kBusyboxImage},
                       120s);
    if (busybox.exitCode != 0) BOOST_FAIL("building " + kBusyboxImage + ": " + busybox.err);
    created.images.push_back(kBusyboxImage);
    startInjector();
  }

  // The least-privilege command line of docs/running.md, with our daemon's socket.
  void startInjector() {
    auto r = docker({"run", "-d", "--name", kInjectorName, "--cap-drop", "ALL", "--cap-add", "SYS_ADMIN",
                     "--cap-add", "SYS_PTRACE", "--cap-add", "SETUID", "--cap-add", "SETGID", "--cap-add",
                     "SETPCAP", "--cap-add", "KILL", "--cap-add", "NET_BIND_SERVICE", "--pid=host",
                     "--net=host", "-v", dockerd.socket() + ":/var/run/docker.sock:ro", "-v",
                     "/sys/fs/cgroup:/sys/fs/cgroup:ro", kInjectorImage});
    if (r.exitCode != 0) BOOST_FAIL("docker run (injector): " + r.err);
    created.containers.push_back(kInjectorName);
    refreshInjectorPid();
    // Watching before the app exists: its create event is then seen, not only reconciled.
    bool watching = waitFor([&] { return injectorLog().find("docker event stream connected") != std::string::npos; }, 20s);
    if (!watching) BOOST_FAIL("the injector container is not watching Docker; its log:\n" + injectorLog());
  }

  void refreshInjectorPid() {
    auto pid = docker({"inspect", "-f", "{{.State.Pid}}", kInjectorName});
    injectorPid = std::atoi(trim(pid.out).c_str());
    if (injectorPid <= 0) BOOST_FAIL("the injector container is not running; its log:\n" + injectorLog());
  }

  std::string injectorLog() {
    auto logs = docker({"logs", kInjectorName});
    return logs.out + logs.err;  // the injector logs to stderr
  }

  std::string runApp(const std::string& name) {
    auto r = docker({"run", "-d", "--name", name, "--network", "none", "-l",
                     "connect.8080=" + backend.address(), kBusyboxImage, "sleep", "600"});
    BOOST_REQUIRE_MESSAGE(r.exitCode == 0, "docker run (app): " << r.err);
    created.containers.push_back(name);
    return name;
  }

  // busybox wget: its -T option crashes the static busybox here, so time it out from outside.
  std::string fetchInside(const std::string& app) {
    return docker({"exec", app, "wget", "-qO-", "127.0.0.1:8080"}, 10s).out;
  }

  bool fetchesBackend(const std::string& app) {
    return waitFor([&] { return fetchInside(app) == kReply; }, 10s);
  }

  // The shim the injector container runs for `app`: a child of the injector's process.
  pid_t shimFor(const std::string& app) {
    for (const auto& line : splitLines(run({"ps", "-o", "pid=,args=", "--ppid", std::to_string(injectorPid)}).out)) {
      if (line.find("connectable-shim") != std::string::npos && line.find("--name " + app + " ") != std::string::npos)
        return std::atoi(line.c_str());
    }
    return 0;
  }

  static std::vector<std::string> splitLines(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }
};

Environment* env = nullptr;

struct GlobalEnvironment {
  std::unique_ptr<Environment> owned;
  GlobalEnvironment() {
    owned = std::make_unique<Environment>();
    env = owned.get();
  }
  ~GlobalEnvironment() { env = nullptr; }
};

std::string statusField(pid_t pid, const std::string& field) {
  std::istringstream in(readFile("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(in, line);)
    if (line.rfind(field + ":", 0) == 0) return line.substr(field.size() + 1);
  return "";
}

}  // namespace

BOOST_TEST_GLOBAL_FIXTURE(GlobalEnvironment);

BOOST_AUTO_TEST_SUITE(InjectorContainer)

BOOST_AUTO_TEST_CASE(LabelledContainerReachesAServerOnTheHostsLoopback) {
  BOOST_REQUIRE(env);
  const std::string app = env->runApp("connectable-itest-app-" + kTag);
  BOOST_CHECK_MESSAGE(env->fetchesBackend(app), "wget inside the app got '" << env->fetchInside(app)
                                                    << "'; injector log:\n" << env->injectorLog());
  pid_t shim = env->shimFor(app);
  BOOST_REQUIRE_MESSAGE(shim > 0, "no shim for " << app << " under the injector container (pid "
                                                 << env->injectorPid << "); its log:\n" << env->injectorLog());
  // getpwnam("nobody") works in the scratch image, and no capability is left.
  BOOST_CHECK(statusField(shim, "Uid").find("65534\t65534\t65534\t65534") != std::string::npos);
  BOOST_CHECK_EQUAL(statusField(shim, "CapEff"), "\t0000000000000000");
  // Its own system call filter stacks on the container's (Docker's default profile): one
  // more than the injector has (none of its own in a sanitizer build). Installed once it
  // listens, so it may take a moment.
  const pid_t injector = env->injectorPid;
  const int inherited = std::atoi(statusField(injector, "Seccomp_filters").c_str());
  BOOST_CHECK(waitFor(
      [&] { return std::atoi(statusField(shim, "Seccomp_filters").c_str()) == inherited + kShimsOwnFilters; }, 2s));
  BOOST_CHECK(inherited >= 1);  // the injector runs under Docker's profile, as the example says
  BOOST_CHECK(env->injectorLog().find("refused by the shim's filter") == std::string::npos);
  // With the read-only cgroup mount the listener normally exists before the app's process runs.
  BOOST_WARN_MESSAGE(env->injectorLog().find("injected before start container=\"" + app) != std::string::npos,
                     "the shim came on the start event, not before it");
}

BOOST_AUTO_TEST_CASE(StatusWorksThroughDockerExecInTheInjectorContainer) {
  BOOST_REQUIRE(env);
  const std::string app = env->runApp("connectable-itest-status-" + kTag);
  BOOST_REQUIRE(env->fetchesBackend(app));
  // The shims and their control sockets live in the injector container's filesystem.
  auto table = docker({"exec", kInjectorName, "connectable", "status"});
  BOOST_CHECK_MESSAGE(table.exitCode == 0, table.err);
  std::string id = trim(docker({"inspect", "-f", "{{.Id}}", app}).out);
  BOOST_CHECK_MESSAGE(std::regex_search(table.out, std::regex(app + "\\s+" + id.substr(0, 12) + "\\s+8080\\s+" +
                                                               env->backend.address())),
                      table.out);
  auto json = docker({"exec", kInjectorName, "connectable", "status", "--json", app});
  BOOST_CHECK(json.exitCode == 0);
  BOOST_CHECK(json.out.find("\"container_id\":\"" + id + "\"") != std::string::npos);
  BOOST_CHECK(json.out.find("\"shim\":{") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(RestartedInjectorContainerInjectsAgain) {
  BOOST_REQUIRE(env);
  const std::string app = env->runApp("connectable-itest-app2-" + kTag);
  BOOST_REQUIRE(env->fetchesBackend(app));
  pid_t before = env->shimFor(app);
  BOOST_REQUIRE(before > 0);

  auto stopped = docker({"stop", "-t", "5", kInjectorName});
  BOOST_REQUIRE_MESSAGE(stopped.exitCode == 0, stopped.err);
  // The shims are processes of the injector container: stopping it ends them (docs/running.md).
  BOOST_CHECK(waitFor([&] { return ::access(("/proc/" + std::to_string(before)).c_str(), F_OK) != 0; }, 10s));
  BOOST_CHECK(env->fetchInside(app).empty());

  auto started = docker({"start", kInjectorName});
  BOOST_REQUIRE_MESSAGE(started.exitCode == 0, started.err);
  env->refreshInjectorPid();
  BOOST_CHECK_MESSAGE(env->fetchesBackend(app), "no answer after the restart; injector log:\n" << env->injectorLog());
  BOOST_CHECK(env->shimFor(app) > 0);
}

BOOST_AUTO_TEST_SUITE_END()
