// connectable-shim: listens inside a network namespace, proxies to discovered backends.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>

#include "common/event_loop.h"
#include "common/http_fetch.h"
#include "common/http_server.h"
#include "common/inherited_fds.h"
#include "common/log.h"
#include "common/netns.h"
#include "common/privileges.h"
#include "common/srv_resolver.h"
#include "common/syscall_filter.h"
#include "common/terminal_text.h"
#include "common/unique_fd.h"
#include "shim/discovery.h"
#include "shim/proxy.h"
#include "shim/shim_options.h"
#include "shim/shim_status.h"

using namespace connectable;

namespace {

constexpr const char* kVersion = "0.1.0";

// Wakes the loop when a watched process ends, through a pidfd: no polling, no PID reuse.
class ProcessWatch : public IoHandler {
 public:
  explicit ProcessWatch(std::function<void()> onExit) : onExit_(std::move(onExit)) {}
  Status watch(EventLoop& loop, pid_t pid) {
    int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
    if (fd < 0) return errnoStatus("pidfd_open(" + std::to_string(pid) + ")", errno);
    return watchFd(loop, fd);
  }
  Status watchFd(EventLoop& loop, int pidfd) {
    fd_.reset(pidfd);
    fcntl(pidfd, F_SETFD, FD_CLOEXEC);
    return loop.add(pidfd, EPOLLIN, this);
  }
  void onIo(uint32_t) override { onExit_(); }

 private:
  UniqueFd fd_;
  std::function<void()> onExit_;
};

int fail(const Status& s, int code) {
  log::error(s.message());
  return code;
}

// `connectable-shim status --control PATH [--json]`: asks a running shim, prints its answer.
int statusCommand(const std::vector<std::string>& args) {
  std::string control;
  bool json = false;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--json") {
      json = true;
    } else if (args[i] == "--control") {
      if (i + 1 >= args.size()) {
        std::fprintf(stderr, "connectable-shim status: --control needs a socket path\n");
        return 2;
      }
      control = args[++i];
    } else if (args[i].rfind("--control=", 0) == 0) {
      control = args[i].substr(10);
    } else {
      std::fprintf(stderr, "connectable-shim status: unexpected argument '%s'\nusage: connectable-shim status --control PATH [--json]\n",
                   args[i].c_str());
      return 2;
    }
  }
  if (control.empty()) {
    std::fprintf(stderr, "connectable-shim status: --control PATH is required\n");
    return 2;
  }
  auto reply = fetchHttpUnixBlocking(control, json ? "/status" : "/status?format=text", Millis(2000));
  if (!reply) {
    std::fprintf(stderr, "connectable-shim status: %s\n", reply.status().message().c_str());
    return 1;
  }
  // The shim runs as nobody beside untrusted code, and may be that code's by now: what it
  // answers reaches root's terminal without a character that would act on it.
  if (reply->code != 200) {
    std::fprintf(stderr, "connectable-shim status: %s answered %d: %s", control.c_str(), reply->code,
                 terminalText(reply->body).c_str());
    return 1;
  }
  std::fputs(terminalText(reply->body).c_str(), stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  openStandardFds();
  // splice(2) to a closed socket raises SIGPIPE and has no MSG_NOSIGNAL: errors come as EPIPE.
  signal(SIGPIPE, SIG_IGN);

  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "status") return statusCommand({args.begin() + 1, args.end()});
  auto parsed = parseShimOptions(args);
  if (!parsed) {
    std::fprintf(stderr, "connectable-shim: %s\n(see connectable-shim --help)\n", parsed.status().message().c_str());
    return 2;
  }
  ShimOptions& opt = *parsed;
  if (opt.help) {
    std::fputs(shimUsage(), stdout);
    return 0;
  }
  if (opt.version) {
    std::printf("connectable-shim %s\n", kVersion);
    return 0;
  }
  // Checked before any port opens: the injector restarts a shim that fails later, for ever.
  if (geteuid() == 0) {
    if (Status s = checkUnprivilegedUser(opt.user); !s) {
      std::fprintf(stderr, "connectable-shim: --user: %s\n(see connectable-shim --help)\n", s.message().c_str());
      return 2;
    }
  }
  // Only what we were handed on purpose survives: anything else a parent left open would
  // outlive the privilege drop below. Nothing of ours is open yet.
  closeInheritedFds({opt.netnsFd, opt.exitWithPidfd});
  log::configure(opt.logLevel, opt.logFormat, opt.name.empty() ? "connectable-shim" : "connectable-shim[" + opt.name + "]");

  // Two fds per connection: the usual soft limit of 1024 would cap a shim near 500
  // connections whatever --max-conns says. The hard limit is what the operator allows.
  struct rlimit fds;
  if (getrlimit(RLIMIT_NOFILE, &fds) == 0 && fds.rlim_cur < fds.rlim_max) {
    fds.rlim_cur = fds.rlim_max;
    setrlimit(RLIMIT_NOFILE, &fds);
  }

  ResolverOptions dnsOptions;
  dnsOptions.queryTimeout = opt.dnsTimeout;
  dnsOptions.minTtl = opt.dnsMinTtl;
  if (!opt.dnsServers.empty()) {
    auto servers = parseDnsServers(opt.dnsServers);
    if (!servers) {
      std::fprintf(stderr, "connectable-shim: --dns: %s\n", servers.status().message().c_str());
      return 2;
    }
    dnsOptions.servers = *servers;
  }

  EventLoop loop;
  if (Status s = loop.init(); !s) return fail(s, 1);
  // 256 queued operations before a submit is forced. Read buffers of 16 KiB, mapped but only
  // paid for once used (a read that fills one moves its connection to splice): 64 to start
  // with, grown by 64 whenever more reads bring bytes at once than there are buffers, up to
  // 256 (4 MiB of address space; the memory is what the busiest moment wrote into). The
  // kernel pins the ring that lists them, 16 bytes a buffer: 256 keep it to one page per shim.
  if (opt.dataPath == DataPath::Auto) {
    if (Status s = loop.enableRing(256, 64, 256); !s)
      log::info("io_uring not available, the data path uses epoll", {{"reason", s.message()}});
  }
  const char* dataPath = loop.ring() ? "io_uring" : "epoll";
  Proxy proxy(loop, opt.proxy);
  for (const auto& spec : opt.connects) proxy.addPort(spec);

  // Both servers answer from `status`, made once the resolver exists; nothing is served
  // before the loop runs.
  std::unique_ptr<ShimStatus> status;
  HttpServer::Options controlOptions;
  controlOptions.allowedUids = {0, geteuid()};
  HttpServer control(loop, [&](const HttpRequest& r, const HttpServer::Respond& respond) { status->serveControl(r, respond); },
                     controlOptions);
  HttpServer statusPort(loop, [&](const HttpRequest& r, const HttpServer::Respond& respond) { status->serveStatusPort(r, respond); },
                        HttpServer::Options{});
  bool statusPortUp = false;  // on 127.0.0.1 at least
  auto listenStatusPort = [&]() -> Status {
    if (!opt.statusPort) return Status::ok();
    if (Status s = statusPort.listenTcp(SocketAddress::loopbackV4(opt.statusPort)); !s) return s.withContext("--status-port");
    statusPortUp = true;
    // Also on ::1, like the data ports ("localhost" may resolve there first), unless the
    // namespace has no IPv6; taken by someone else is an error.
    int err = 0;
    Status v6 = statusPort.listenTcp(SocketAddress::loopbackV6(opt.statusPort), &err);
    if (!v6 && err == EADDRINUSE) return v6.withContext("--status-port");
    if (!v6) log::debug("no IPv6 loopback status listener", {{"reason", v6.message()}});
    return Status::ok();
  };

  // Listeners are made inside the target namespace; everything else outside it.
  std::string where = "current";
  Status statusPortServed = Status::ok();
  if (!opt.netnsPath.empty() || opt.netnsFd >= 0) {
    auto target = opt.netnsFd >= 0 ? NetnsFd::adopt(opt.netnsFd) : NetnsFd::open(opt.netnsPath);
    if (!target) return fail(target.status(), 1);
    auto home = NetnsFd::current();
    if (!home) return fail(home.status(), 1);
    if (Status s = enterNetns(*target); !s) return fail(s, 1);
    bool portInUse = false;
    Status listened = proxy.listen(&portInUse);
    if (listened) statusPortServed = listenStatusPort();
    if (!opt.upstreamInTarget) {
      if (Status s = enterNetns(*home); !s) return fail(s, 1);
    }
    if (!listened) return fail(listened, portInUse ? kExitPortInUse : 1);
    where = opt.netnsFd >= 0 ? "fd " + std::to_string(opt.netnsFd) : opt.netnsPath;
  } else {
    bool portInUse = false;
    if (Status s = proxy.listen(&portInUse); !s) return fail(s, portInUse ? kExitPortInUse : 1);
    statusPortServed = listenStatusPort();
  }
  if (!statusPortServed) {
    // The status port is for looking in, the data ports are what the container runs on: one
    // taken by the container's own program must not take its dependencies away too.
    log::error(statusPortUp ? "status port served on 127.0.0.1 only" : "status port not served; the data ports are",
               {{"error", statusPortServed.message()}});
    proxy.noteError(statusPortServed.message());
  }
  // Made while still privileged, mode 0600: the listening fd keeps working as nobody.
  if (!opt.controlPath.empty()) {
    if (Status s = control.listenUnix(opt.controlPath); !s) return fail(s, 1);
  }

  // DNS queries leave from wherever we are now: the shim's namespace, or the target's with
  // --upstream-netns=target (c-ares makes its sockets lazily, per query).
  std::unique_ptr<ServiceResolver> resolver;
  if (needsDiscovery(proxy)) {
    resolver = std::make_unique<ServiceResolver>(loop, dnsOptions);
    if (Status s = resolver->init(); !s) return fail(s.withContext("DNS resolver"), 1);
    attachDiscovery(*resolver, proxy);
    // A first connection waits for as long as its name's first lookup may go on: an answer
    // to c-ares's second question (after --dns-timeout) is still in time.
    proxy.setFirstAnswerTimeout(resolver->longestLookup());
  }

  ShimIdentity identity;
  identity.name = opt.name;
  identity.version = kVersion;
  identity.pid = getpid();
  identity.started = Clock::now();
  identity.startedWall = std::chrono::system_clock::now();
  identity.statusPort = statusPortUp ? opt.statusPort : 0;
  identity.dataPath = dataPath;
  identity.ring = loop.ring();
  status = std::make_unique<ShimStatus>(proxy, resolver.get(), identity);

  ProcessWatch watched([&] {
    log::info("watched process ended; exiting");
    loop.stop();
  });
  if (opt.exitWithPid) {
    if (Status s = watched.watch(loop, opt.exitWithPid); !s) return fail(s, 1);
  } else if (opt.exitWithPidfd >= 0) {
    if (Status s = watched.watchFd(loop, opt.exitWithPidfd); !s) return fail(s.withContext("--exit-with-pidfd"), 1);
  }

  if (geteuid() == 0) {
    if (Status s = dropPrivileges(opt.user); !s) return fail(s.withContext("dropping privileges"), 1);
  } else if (Status s = dropPrivilegesAsNonRoot(); !s) {
    return fail(s, 1);
  }

  auto drain = [&] {
    proxy.drain([&] { loop.stop(); });
  };
  if (Status s = loop.onSignal(SIGTERM, drain); !s) return fail(s, 1);
  if (Status s = loop.onSignal(SIGINT, drain); !s) return fail(s, 1);
  if (Status s = loop.onSignal(SIGHUP, [&] {
        if (!resolver) return;
        log::info("SIGHUP: resolving every name again");
        resolver->refreshAll();
      });
      !s)
    return fail(s, 1);
  if (Status s = proxy.start(); !s) return fail(s, 1);

  for (const auto& port : proxy.ports()) {
    if (!port->notServed().empty()) continue;  // said when listen() left it out
    std::string listen;
    for (const auto& a : port->listenAddresses()) listen += (listen.empty() ? "" : ",") + a.toString();
    log::info("listening", {{"listen", listen}, {"target", port->spec().text()}, {"netns", where},
                            {"upstream", opt.upstreamInTarget ? "target" : "shim"},
                            {"balance", balancePolicyName(opt.proxy.balance)},
                            {"data_path", dataPath}});
  }
  if (!opt.controlPath.empty()) log::info("control socket ready", {{"path", opt.controlPath}});
  if (statusPortUp) log::info("status port ready", {{"listen", SocketAddress::loopbackV4(opt.statusPort).toString()}});

  // Last, once nothing is left to set up: from here on the shim only proxies.
  std::unique_ptr<SyscallFilter> filter;
#if defined(__SANITIZE_ADDRESS__)
  // The sanitizers' runtime reads files and starts a tracer thread at exit: not confined.
  log::debug("no system call filter under the sanitizers");
  status->setSyscallFilter(false, "a sanitizer build");
#else
  auto confined = SyscallFilter::install(loop, [&](long number) {
    log::error("system call refused by the shim's filter; it failed with ENOSYS", {{"syscall", std::to_string(number)}});
    proxy.noteError("system call " + std::to_string(number) + " refused by the shim's filter");
    status->noteRefusedSyscall(number);
  });
  if (confined) {
    filter = std::move(*confined);
    status->setSyscallFilter(true);
  } else {
    log::warn("system calls not confined", {{"reason", confined.status().message()}});
    status->setSyscallFilter(false, confined.status().message());
  }
#endif
  loop.run();
  log::info("stopped", {{"connections", std::to_string(proxy.activeConnections())}});
  return 0;
}
