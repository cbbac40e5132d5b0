// connectable: the injector. Watches Docker and runs a shim in every labelled container.
#include <sys/resource.h>
#include <unistd.h>

#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>

#include "common/event_loop.h"
#include "common/inherited_fds.h"
#include "common/log.h"
#include "injector/docker_endpoint.h"
#include "injector/injector.h"
#include "injector/injector_lock.h"
#include "injector/injector_options.h"
#include "injector/metrics_endpoint.h"
#include "injector/status_command.h"

using namespace connectable;

namespace {

// Docker's cgroup paths name the container: then our shims live and die with it.
bool runningInAContainer() {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    if (line.find("/docker/") != std::string::npos || line.find("/docker-") != std::string::npos) return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  // An uncaught exception's last words go to the log, in its format, as the shim's do.
  std::set_terminate(log::lastWords);
  openStandardFds();
  // What a parent left open without close-on-exec is not ours to hold for the injector's
  // lifetime (a root process), nor to pass on. Nothing of ours is open yet.
  closeInheritedFds({});
  signal(SIGPIPE, SIG_IGN);
  if (argc > 1 && std::string(argv[1]) == "status") return runStatusCommand(std::vector<std::string>(argv + 2, argv + argc));
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  std::string selfExe = n > 0 ? std::string(self, static_cast<size_t>(n)) : std::string(argv[0]);

  auto parsed = parseInjectorCommandLine(std::vector<std::string>(argv + 1, argv + argc), selfExe);
  if (!parsed) {
    std::fprintf(stderr, "connectable: %s\n(see connectable --help)\n", parsed.status().message().c_str());
    return 2;
  }
  InjectorCommandLine& cmd = *parsed;
  if (cmd.help) {
    std::fputs(injectorUsage(), stdout);
    return 0;
  }
  if (cmd.version) {
    std::puts("connectable 0.1.0");
    return 0;
  }
  log::configure(cmd.logLevel, cmd.logFormat, "connectable");
  if (access(cmd.options.supervisor.shimPath.c_str(), X_OK) != 0) {
    log::error("shim binary not found or not executable", {{"path", cmd.options.supervisor.shimPath}});
    return 1;
  }
  // The injector holds descriptors for every shim it supervises (their pidfds and their
  // containers' inits') and a scrape of /metrics opens 32 more: the usual soft limit of 1024
  // would cap a host at a few hundred containers. The hard limit is what the operator allows.
  struct rlimit fds;
  if (getrlimit(RLIMIT_NOFILE, &fds) == 0 && fds.rlim_cur < fds.rlim_max) {
    fds.rlim_cur = fds.rlim_max;
    setrlimit(RLIMIT_NOFILE, &fds);
  }
  std::vector<std::string> endpointWarnings;
  auto endpoint = chooseDockerEndpoint(cmd.docker, DockerEnvironment::fromProcess(), &endpointWarnings);
  if (!endpoint) {
    std::fprintf(stderr, "connectable: %s\n", endpoint.status().message().c_str());
    return 2;
  }
  for (const auto& warning : endpointWarnings) log::warn(warning);

  auto lock = InjectorLock::acquire(*endpoint);
  if (!lock) {
    log::error("cannot start", {{"error", lock.status().message()}});
    return 1;
  }
  if (!lock->held()) log::warn(lock->warning());

  EventLoop loop;
  if (Status s = loop.init(); !s) {
    log::error(s.message());
    return 1;
  }
  if (Status s = lock->answerProbes(loop); !s) log::warn(s.message());
  Injector injector(loop, *endpoint, cmd.options);
  std::unique_ptr<MetricsEndpoint> metrics;
  if (!cmd.metricsListen.empty()) {
    auto address = parseListenAddress(cmd.metricsListen);
    if (!address) {
      std::fprintf(stderr, "connectable: --metrics-listen: %s\n", address.status().message().c_str());
      return 2;
    }
    metrics = std::make_unique<MetricsEndpoint>(loop, injector);
    if (Status s = metrics->listen(*address); !s) {
      log::error("cannot serve metrics", {{"error", s.message()}});
      return 1;
    }
    log::info("serving metrics", {{"listen", address->toString()}, {"path", "/metrics"}});
  }
  int exitCode = 0;
  injector.claimDaemonWith(
      [&](const std::string& daemonId) {
        const size_t warned = lock->warning().size();
        Status s = lock->claimDaemon(daemonId, *endpoint);
        if (s && lock->warning().size() > warned) log::warn(lock->warning());
        return s;
      },
      [&](const Status& why) {
        log::error("cannot start", {{"error", why.message()}});
        exitCode = 1;
        loop.stop();
      });
  auto shutdown = [&] { injector.shutdown([&] { loop.stop(); }); };
  if (Status s = loop.onSignal(SIGTERM, shutdown); !s) return 1;
  if (Status s = loop.onSignal(SIGINT, shutdown); !s) return 1;
  // The shims are our children: reap them through their pidfds, never through SIGCHLD.
  if (Status s = injector.start(); !s) {
    log::error("cannot start", {{"error", s.message()}});
    return 1;
  }
  if (runningInAContainer()) {
    log::warn("running inside a container: its shims end when this container stops, and a new "
              "start injects them again (run on the host to keep connections across restarts)");
  }
  log::info("watching Docker", {{"docker", endpoint->toString()}, {"state_dir", cmd.options.supervisor.stateDir},
                                {"shim", cmd.options.supervisor.shimPath}});
  loop.run();
  return exitCode;
}
