// Proxy: the shim's data path. Listens on loopback ports, and for each accepted connection
// tries the port's backends in the balancer's order until one connects, then moves bytes
// both ways with splice(2) through pooled pipes until both sides have finished.
// Single-threaded: everything runs on the EventLoop's thread; not thread-safe.
//
// Guarantees: bytes in flight per direction are bounded by one pipe (backpressure: a slow
// reader stops reads from the fast writer); a half-close is carried to the other side; an
// abort (RST or error) on one side aborts the other; past --max-conns new connections stay
// in the kernel's backlog instead of being refused.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "common/address_ranges.h"
#include "common/event_loop.h"
#include "common/target.h"
#include "shim/backend_set.h"
#include "shim/balancer.h"
#include "shim/health_probes.h"
#include "shim/pipe_pool.h"

namespace connectable {

struct ProxyOptions {
  Millis connectTimeout{2000};
  Millis idleTimeout{3600 * 1000};  // 0: never
  // An upstream connection open this long gets TCP keepalive (Connection::turnOnKeepalive).
  Millis tcpKeepalive{30 * 1000};    // 0: never
  Millis drainTimeout{10000};
  // The longest a connection waits for its port's first DNS answer, which ends sooner when
  // that first lookup fails; the shim sets it to the resolver's longestLookup().
  Millis firstAnswerTimeout{2000};
  size_t maxConns = 10000;          // 0: unlimited
  BalancePolicy balance = BalancePolicy::Random;
  PenaltyPolicy penalty;
  uint64_t seed = 0;                // 0: random
  AddressRanges allowUpstream;      // --allow-upstream; empty: any address
};

class Connection;
class Proxy;

// Why a client connection or one connect attempt failed; counted per port.
enum class FailureReason {
  ConnectRefused,  // one backend refused (the next was tried)
  ConnectTimeout,  // one backend did not answer in --connect-timeout
  ConnectError,    // one backend attempt failed otherwise (unreachable, its address family off here)
  NoBackend,       // the client was closed: every backend failed, or none exists
  ClientGone,      // the client left before a backend answered
  ClientError,     // reading from or writing to the client failed
  BackendError,    // reading from or writing to the backend failed (reset mid-stream)
  BackendTimeout,  // the backend stopped answering: keepalive probes or retransmissions went unanswered
  BackendHungUp,   // the backend ended the connection without a byte, soon after its connect (Connection::hungUpWithoutAByte)
  DrainTimeout,    // still open when the drain timeout ended it
  IdleTimeout,     // nothing moved for --idle-timeout (reset if bytes were still on their way)
  Internal,        // out of resources on our side
  kCount,
};
constexpr size_t kFailureReasons = static_cast<size_t>(FailureReason::kCount);
const char* failureReasonName(FailureReason reason);  // "connect_refused", ...

struct PortCounters {
  uint64_t accepted = 0;
  uint64_t active = 0;
  uint64_t established = 0;
  uint64_t noBackend = 0;       // closed because every backend failed or none exists
  uint64_t failovers = 0;       // connect attempts past the first
  uint64_t bytesToBackend = 0;
  uint64_t bytesFromBackend = 0;
  std::array<uint64_t, kFailureReasons> failures{};

  void count(FailureReason r) { ++failures[static_cast<size_t>(r)]; }
};

// One kind of warning a port logs at most once a second: a client hammering a dead service,
// or every pooled connection of a vanished backend, must not flood the log.
class LogThrottle {
 public:
  // When a line may go out now: how many were held back since the last one, which the
  // line reports. Otherwise none, and this one is counted as held back.
  std::optional<uint64_t> pass(Clock::time_point now) {
    if (now - last_ < std::chrono::seconds(1)) {
      ++held_;
      return std::nullopt;
    }
    last_ = now;
    const uint64_t held = held_;
    held_ = 0;
    return held;
  }

 private:
  Clock::time_point last_{};
  uint64_t held_ = 0;
};

// One --connect: its listeners, backends, balancer and counters.
class ListenPort {
 public:
  ListenPort(Proxy& proxy, const ConnectSpec& spec, const ProxyOptions& options, uint64_t seed);

  const ConnectSpec& spec() const { return spec_; }
  BackendSet& backends() { return backends_; }
  Balancer& balancer() { return balancer_; }
  HealthProbes& probes() { return probes_; }
  PortCounters& counters() { return counters_; }
  const std::vector<SocketAddress>& listenAddresses() const { return listenAddresses_; }
  // Why the port has no listener, empty when it has: taken in the namespace when the shim
  // started (by the container's own program, most often), while the shim serves the others.
  const std::string& notServed() const { return notServed_; }
  // Clients the kernel has connected and we have not accepted yet (past --max-conns, or at
  // the fd limit): what `ss -lt` shows as Recv-Q.
  uint64_t waiting() const;

  // Call after backends() changed: connections waiting for a first answer go on, and
  // backends left out are no longer probed.
  void backendsChanged();

 private:
  friend class Proxy;
  friend class Connection;
  class Listener;

  Proxy& proxy_;
  ConnectSpec spec_;
  BackendSet backends_;
  Balancer balancer_;
  HealthProbes probes_;  // after backends_ and balancer_, which it uses until destroyed
  PortCounters counters_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::vector<SocketAddress> listenAddresses_;
  std::string notServed_;
  std::vector<Connection*> waiting_;  // accepted before the first DNS answer
  LogThrottle noBackendLog_;  // "no backend reachable"
  LogThrottle timeoutLog_;    // "backend stopped answering"
};

class Proxy {
 public:
  Proxy(EventLoop& loop, ProxyOptions options);
  ~Proxy();
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  // Once the resolver says how long its lookups may take; before any connection.
  void setFirstAnswerTimeout(Millis timeout) { options_.firstAnswerTimeout = timeout; }

  // Adds a port; returns it so the caller can feed its DNS answers.
  ListenPort& addPort(const ConnectSpec& spec);
  // Creates every port's listening sockets in the calling thread's current network
  // namespace: 127.0.0.1, and ::1 where the namespace has it. A port already taken there
  // is left out (notServed(), logged, the last error) and the others are served, as a bad
  // label leaves the others working; fails when every port is taken, *portInUse then
  // telling that apart from other failures.
  Status listen(bool* portInUse = nullptr);
  // Starts accepting (registers the listeners with the loop). Any namespace will do.
  Status start();
  // Stops accepting; calls onDone once no connection is left or drainTimeout passed.
  void drain(std::function<void()> onDone);

  const std::vector<std::unique_ptr<ListenPort>>& ports() const { return ports_; }
  size_t activeConnections() const { return connections_.size(); }
  EventLoop& loop() { return loop_; }
  const ProxyOptions& options() const { return options_; }
  PipePool& pipes() { return pipes_; }
  bool draining() const { return draining_; }

  // With an io_uring: open connections on the epoll path now (a bulk transfer, a peer that
  // stopped reading), and how many times connections moved there and back to the ring.
  struct EpollPath {
    uint64_t connections = 0;
    uint64_t entered = 0;
    uint64_t returned = 0;
  };
  const EpollPath& epollPath() const { return epollPath_; }

  // How soon accept4 or socket(), failed for want of fds or memory, is tried again.
  static constexpr Millis kShortageRetry{100};
  // Logs such a failure, at most once a second: a shim at its fd limit must not flood the
  // log. Also noted for status.
  void warnShortage(uint16_t port, const char* what, const Status& error);

  // The latest problem worth an operator's eye, for status: what and when.
  void noteError(std::string what);
  const std::string& lastError() const { return lastError_; }
  Clock::time_point lastErrorAt() const { return lastErrorAt_; }

 private:
  friend class Connection;
  friend class ListenPort;
  void acceptFrom(ListenPort::Listener& listener);
  void resumeAccepting();
  void connectionClosed(Connection* conn);
  void scheduleAcceptRetry();
  void warnAtLimit(const ListenPort::Listener& listener);

  EventLoop& loop_;
  ProxyOptions options_;
  PipePool pipes_;
  std::vector<std::unique_ptr<ListenPort>> ports_;
  std::vector<ListenPort::Listener*> listeners_;  // every port's, in the order made
  size_t nextListener_ = 0;  // resumeAccepting starts there: after the one that accepted last
  std::unordered_set<Connection*> connections_;
  EpollPath epollPath_;
  bool draining_ = false;
  bool acceptRetryArmed_ = false;
  bool resumeScheduled_ = false;
  bool destroying_ = false;
  std::function<void()> onDrained_;
  Clock::time_point lastShortageLog_{};
  bool limitLogged_ = false;
  Clock::time_point lastLimitLog_{};
  std::string lastError_;
  Clock::time_point lastErrorAt_{};
};

}  // namespace connectable
