#include "shim/proxy.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "common/listener_bind.h"
#include "common/log.h"
#include "shim/connection.h"

namespace connectable {
namespace {

// Connections a listening socket's kernel queue holds for accept: its TCP_INFO says.
uint32_t acceptQueueLength(int fd) {
  tcp_info info{};
  socklen_t length = sizeof info;
  if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &length) != 0) return 0;
  return info.tcpi_unacked;
}

// A shim held at --max-conns may stay there for hours, and meets the limit again at every
// connection that ends: it says so once, then once in this long at most.
constexpr auto kLimitLogInterval = std::chrono::minutes(1);

}  // namespace

// A listening socket of a port; edge-triggered, so every wake-up accepts until EAGAIN.
class ListenPort::Listener : public IoHandler {
 public:
  Listener(ListenPort& port, int fd, SocketAddress address, size_t index)
      : port(port), fd(fd), address(address), index(index) {}
  ~Listener() override {
    if (fd >= 0) ::close(fd);
  }
  void onIo(uint32_t) override {
    pending = true;
    port.proxy_.acceptFrom(*this);
  }

  ListenPort& port;
  int fd;
  SocketAddress address;
  size_t index;          // in Proxy::listeners_
  bool pending = false;  // connections may wait in the backlog
};

ListenPort::ListenPort(Proxy& proxy, const ConnectSpec& spec, const ProxyOptions& options, uint64_t seed)
    : proxy_(proxy),
      spec_(spec),
      backends_(spec.targets, options.allowUpstream),
      balancer_(options.balance, options.penalty, seed),
      probes_(proxy.loop(), backends_, balancer_, options.connectTimeout, spec.port) {}

uint64_t ListenPort::waiting() const {
  uint64_t n = 0;
  for (const auto& l : listeners_) n += acceptQueueLength(l->fd);
  return n;
}

void ListenPort::backendsChanged() {
  probes_.dropGone();
  if (backends_.awaitingFirstAnswer()) return;
  auto waiting = waiting_;  // connections remove themselves as they go on
  for (Connection* c : waiting) c->backendsReady();
}

const char* failureReasonName(FailureReason reason) {
  switch (reason) {
    case FailureReason::ConnectRefused: return "connect_refused";
    case FailureReason::ConnectTimeout: return "connect_timeout";
    case FailureReason::ConnectError: return "connect_error";
    case FailureReason::NoBackend: return "no_backend";
    case FailureReason::ClientGone: return "client_gone";
    case FailureReason::ClientError: return "client_error";
    case FailureReason::BackendError: return "backend_error";
    case FailureReason::BackendTimeout: return "backend_timeout";
    case FailureReason::BackendHungUp: return "backend_hung_up";
    case FailureReason::DrainTimeout: return "drain_timeout";
    case FailureReason::IdleTimeout: return "idle_timeout";
    case FailureReason::Internal: return "internal";
    case FailureReason::kCount: break;
  }
  return "unknown";
}

void Proxy::noteError(std::string what) {
  lastError_ = std::move(what);
  lastErrorAt_ = loop_.now();
}

Proxy::Proxy(EventLoop& loop, ProxyOptions options) : loop_(loop), options_(options), pipes_(loop) {}

Proxy::~Proxy() {
  destroying_ = true;
  auto open = connections_;
  for (Connection* c : open) c->close("shutting down", true);
  // close() defers deletion to the loop; the loop may not run again, so delete here.
  for (Connection* c : open) delete c;
  connections_.clear();
  for (auto& port : ports_)
    for (auto& l : port->listeners_) loop_.remove(l->fd);
}

ListenPort& Proxy::addPort(const ConnectSpec& spec) {
  uint64_t seed = options_.seed ? options_.seed + ports_.size() : std::random_device{}();
  ports_.push_back(std::make_unique<ListenPort>(*this, spec, options_, seed));
  return *ports_.back();
}

namespace {

Result<int> makeListener(const SocketAddress& address, bool* inUse) {
  *inUse = false;
  int fd = socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return errnoStatus("socket", errno);
  int one = 1;
  // Accepted sockets inherit TCP_NODELAY and SO_OOBINLINE from the listener: no setsockopt
  // per accept. OOBINLINE: a TCP urgent byte is carried on as an ordinary byte, not lost.
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_OOBINLINE, &one, sizeof one);
  if (bindListener(fd, address) != 0) {
    int err = errno;
    ::close(fd);
    *inUse = err == EADDRINUSE;
    if (err == EADDRINUSE)
      return Status::error("port " + std::to_string(address.port()) + " is already in use on " +
                           address.ipString() + " in the target network namespace");
    return errnoStatus("binding " + address.toString(), err);
  }
  if (::listen(fd, SOMAXCONN) != 0) {
    int err = errno;
    ::close(fd);
    return errnoStatus("listening on " + address.toString(), err);
  }
  return fd;
}

}  // namespace

Status Proxy::listen(bool* portInUse) {
  bool inUse = false;
  bool* taken = portInUse ? portInUse : &inUse;
  *taken = false;
  Status firstTaken = Status::ok();
  size_t served = 0;
  for (auto& port : ports_) {
    const uint16_t p = port->spec().port;
    bool portTaken = false;
    std::vector<std::pair<int, SocketAddress>> made;
    Status failed = Status::ok();
    for (const SocketAddress& address : {SocketAddress::loopbackV4(p), SocketAddress::loopbackV6(p)}) {
      auto fd = makeListener(address, &portTaken);
      if (fd) {
        made.emplace_back(*fd, address);
      } else if (portTaken || address.family() == AF_INET) {
        failed = fd.status();
        break;
      } else {
        // No ::1 here (IPv6 disabled in the namespace, as Docker often does): IPv4 serves.
        log::debug("no IPv6 loopback listener", {{"port", std::to_string(p)}, {"reason", fd.status().message()}});
      }
    }
    if (!failed) {
      for (auto& m : made) ::close(m.first);
      if (!portTaken) return failed;
      // Half a port would answer on 127.0.0.1 or ::1 only, "localhost" then reaching the
      // shim or the other program by whichever address it resolves to first: none of it.
      if (firstTaken.isOk()) firstTaken = failed;
      port->notServed_ = failed.message();
      continue;
    }
    for (auto& [fd, address] : made) {
      port->listeners_.push_back(std::make_unique<ListenPort::Listener>(*port, fd, address, listeners_.size()));
      listeners_.push_back(port->listeners_.back().get());
      port->listenAddresses_.push_back(address);
    }
    ++served;
  }
  if (served == 0) {
    // Nothing to serve: the caller exits with its own status, which the injector retries.
    *taken = true;
    return firstTaken;
  }
  for (auto& port : ports_) {
    if (port->notServed_.empty()) continue;
    log::error("port not served; the others are",
               {{"port", std::to_string(port->spec().port)}, {"error", port->notServed_}});
    noteError("port " + std::to_string(port->spec().port) + " not served: " + port->notServed_);
  }
  return Status::ok();
}

Status Proxy::start() {
  for (auto& port : ports_) {
    for (auto& l : port->listeners_) {
      if (Status s = loop_.add(l->fd, EPOLLIN | EPOLLET, l.get()); !s) return s;
      l->pending = true;
    }
  }
  // Connections may have queued between listen() and now: take them.
  resumeAccepting();
  return Status::ok();
}

void Proxy::acceptFrom(ListenPort::Listener& listener) {
  while (!draining_) {
    if (options_.maxConns && connections_.size() >= options_.maxConns) {
      // Leave the rest in the kernel's backlog; a closing connection resumes us.
      warnAtLimit(listener);
      return;
    }
    sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int fd = accept4(listener.fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      if (err == EAGAIN) {
        listener.pending = false;
        return;
      }
      if (err == EINTR || err == ECONNABORTED || err == EPROTO) continue;
      // EMFILE, ENFILE, ENOBUFS, ENOMEM: the connection stays queued. Retrying at once would
      // spin; retry on a timer instead.
      warnShortage(listener.address.port(), "accept failed; retrying shortly", errnoStatus("accept", err));
      scheduleAcceptRetry();
      return;
    }
    nextListener_ = listener.index + 1;
    ListenPort& port = listener.port;
    ++port.counters_.accepted;
    auto* conn = new Connection(*this, port, fd, SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss), len));
    connections_.insert(conn);
    ++port.counters_.active;
    conn->start();  // may close it at once; deletion is deferred either way
  }
}

void Proxy::warnShortage(uint16_t port, const char* what, const Status& error) {
  if (loop_.now() - lastShortageLog_ < std::chrono::seconds(1)) return;
  log::warn(what, {{"port", std::to_string(port)}, {"error", error.message()}});
  noteError("port " + std::to_string(port) + ": " + error.message());
  lastShortageLog_ = loop_.now();
}

void Proxy::warnAtLimit(const ListenPort::Listener& listener) {
  if (limitLogged_ && loop_.now() - lastLimitLog_ < kLimitLogInterval) return;
  const uint32_t waiting = acceptQueueLength(listener.fd);
  if (waiting == 0) return;  // at the limit, but nobody is kept waiting by it yet
  const std::string limit = std::to_string(options_.maxConns);
  log::warn(
      "connection limit reached; new connections wait in the backlog",
      {{"port", std::to_string(listener.address.port())}, {"max_conns", limit}, {"waiting", std::to_string(waiting)}});
  noteError("--max-conns " + limit + " reached: new connections wait in the backlog");
  limitLogged_ = true;
  lastLimitLog_ = loop_.now();
}

void Proxy::scheduleAcceptRetry() {
  if (acceptRetryArmed_) return;
  acceptRetryArmed_ = true;
  loop_.addTimer(kShortageRetry, [this] {
    acceptRetryArmed_ = false;
    resumeAccepting();
  });
}

void Proxy::resumeAccepting() {
  // From the listener after the one that accepted last: at --max-conns, where each slot
  // that frees takes one client, a fixed order would give every slot to the first port
  // with a backlog, and another port's clients would wait for as long as it has one.
  const size_t n = listeners_.size();
  const size_t first = n > 0 ? nextListener_ % n : 0;
  for (size_t k = 0; k < n; ++k) {
    ListenPort::Listener& l = *listeners_[(first + k) % n];
    if (l.pending) acceptFrom(l);
  }
}

void Proxy::connectionClosed(Connection* conn) {
  if (connections_.erase(conn) == 0) return;
  if (destroying_) return;  // the destructor deletes; the loop will not run again
  loop_.defer([conn] { delete conn; });
  if (draining_) {
    if (connections_.empty() && onDrained_) {
      auto done = std::move(onDrained_);
      onDrained_ = nullptr;
      done();
    }
    return;
  }
  if (options_.maxConns && connections_.size() < options_.maxConns && !resumeScheduled_) {
    resumeScheduled_ = true;
    loop_.defer([this] {
      resumeScheduled_ = false;
      resumeAccepting();
    });
  }
}

void Proxy::drain(std::function<void()> onDone) {
  if (draining_) return;
  draining_ = true;
  for (auto& port : ports_) {
    for (auto& l : port->listeners_) {
      loop_.remove(l->fd);
      ::close(l->fd);
      l->fd = -1;
    }
  }
  log::info("draining", {{"connections", std::to_string(connections_.size())},
                         {"timeout_ms", std::to_string(options_.drainTimeout.count())}});
  if (connections_.empty()) {
    onDone();
    return;
  }
  onDrained_ = std::move(onDone);
  loop_.addTimer(options_.drainTimeout, [this] {
    if (!onDrained_) return;
    log::warn("drain timeout: closing remaining connections", {{"connections", std::to_string(connections_.size())}});
    auto open = connections_;
    for (Connection* c : open) c->close("drain timeout", true, FailureReason::DrainTimeout);
  });
}

}  // namespace connectable
