#include "shim/health_probes.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <unordered_set>

#include "common/log.h"
#include "shim/upstream_socket.h"

namespace connectable {

// One backend's probe: waiting for the penalty's end (a timer), then connecting (a socket
// watched by epoll, and the connect timeout's timer), then watching the connection for
// kHangUpWindow. Lives in HealthProbes::probes_ until dropped, then until the end of the
// loop's batch, where an event already fetched for its socket may still be waiting
// (EventLoop::defer).
class HealthProbes::Probe : public IoHandler {
 public:
  Probe(HealthProbes& owner, std::shared_ptr<Backend> backend) : owner_(owner), backend_(std::move(backend)) {}

  // Waits for the backend's penalty's end, from now on: a failure since the wait began has
  // moved it.
  void waitForPenaltyEnd() {
    if (fd_ >= 0) return;  // in flight: its result decides what comes next
    cancelTimer();
    timer_ = owner_.loop_.addTimerAt(backend_->penalizedUntil, [this] {
      timer_ = 0;
      start();
    });
  }

  // Cancels the timer and closes the socket: nothing of this probe runs again.
  void stop() {
    cancelTimer();
    closeSocket();
  }

  void onIo(uint32_t events) override {
    if (fd_ < 0) return;  // ended earlier in this batch
    if (connected_) {
      watch();
      return;
    }
    // As for a client's connect (Connection::onUpstreamIo): a failed one raises EPOLLERR.
    if (events & (EPOLLERR | EPOLLHUP)) {
      failed(std::strerror(failedConnectError(fd_)));
    } else if (events & EPOLLOUT) {
      connected();
    }
  }

 private:
  void start() {
    EventLoop& loop = owner_.loop_;
    Backend& b = *backend_;
    // A client's connect to it, under way when a DNS answer left it out, failed after
    // dropGone ran: not a backend any more, so not probed.
    const auto& current = owner_.backends_.backends();
    if (std::none_of(current.begin(), current.end(), [&](const auto& c) { return c.get() == &b; })) {
      owner_.drop(b);
      return;
    }
    const SocketAddress& address = b.address;
    const int fd = upstreamSocket(address);
    const int socketError = fd < 0 ? errno : 0;
    if (outOfDescriptors(socketError)) {
      // Tried again once as long as its penalty has passed, without counting it against it.
      log::debug("no descriptor for a health probe; tried again later",
                 {{"port", std::to_string(owner_.port_)}, {"backend", address.toString()}});
      timer_ = loop.addTimer(owner_.balancer_.penaltyFor(b.consecutiveFailures), [this] {
        timer_ = 0;
        start();
      });
      return;
    }
    ++b.probes;
    startedAt_ = loop.now();
    if (fd < 0) {
      failed(errnoStatus("socket", socketError).message());  // its family is off in this kernel
      return;
    }
    fd_ = fd;
    b.probing = true;
    // One that connects at once is writable at once: onIo goes on from there, as for the rest.
    if (::connect(fd_, address.sockaddr_ptr(), address.length()) != 0 && errno != EINPROGRESS) {
      failed(std::strerror(errno));
      return;
    }
    if (Status s = loop.add(fd_, EPOLLOUT, this); !s) {
      failed(s.message());
      return;
    }
    timer_ = loop.addTimer(owner_.connectTimeout_, [this] {
      timer_ = 0;
      failed("connect timeout");
    });
  }

  // Connected: a backend that answers a client's connect may still hang up on it at once
  // without a byte (Connection::hungUpWithoutAByte), and that fails the probe too. One that
  // speaks first, or says nothing for kHangUpWindow, passes.
  void connected() {
    connected_ = true;
    cancelTimer();
    if (Status s = owner_.loop_.modify(fd_, EPOLLIN | EPOLLRDHUP, this); !s) {
      failed(s.message());
      return;
    }
    timer_ = owner_.loop_.addTimer(std::min(kHangUpWindow, owner_.connectTimeout_), [this] {
      timer_ = 0;
      succeeded();
    });
  }

  void watch() {
    char greeting[512];
    const ssize_t n = ::recv(fd_, greeting, sizeof greeting, MSG_DONTWAIT);
    if (n > 0) {
      // Read, not only peeked: closed with its greeting unread, the backend would get a reset.
      succeeded();
    } else if (n == 0) {
      failed("hung up without a byte");
    } else if (errno != EAGAIN && errno != EINTR) {
      failed(std::strerror(errno));
    }
  }

  void succeeded() {
    stop();
    owner_.answeredAgain(*backend_);  // drops this probe
  }

  void failed(const std::string& why) {
    stop();
    Backend& b = *backend_;
    const Clock::time_point now = owner_.loop_.now();
    ++b.probeFailures;
    owner_.balancer_.penalize(b, startedAt_, now);
    // The warning that it started failing was said once already (Connection::backendFailed).
    const auto next = std::chrono::duration_cast<Millis>(b.penalizedUntil - now);
    log::debug("health probe failed", {{"port", std::to_string(owner_.port_)},
                                       {"backend", b.address.toString()},
                                       {"error", why},
                                       {"next_probe_in_ms", std::to_string(next.count())}});
    waitForPenaltyEnd();
  }

  void cancelTimer() {
    if (timer_) owner_.loop_.cancelTimer(timer_);
    timer_ = 0;
  }

  void closeSocket() {
    connected_ = false;
    if (fd_ < 0) return;
    // A plain close: the backend sees an empty connection end (or none, if it had not
    // answered). Closing the only descriptor also takes it out of epoll.
    ::close(fd_);
    fd_ = -1;
    backend_->probing = false;
  }

  HealthProbes& owner_;
  std::shared_ptr<Backend> backend_;
  int fd_ = -1;
  bool connected_ = false;
  EventLoop::TimerId timer_ = 0;
  Clock::time_point startedAt_{};
};

HealthProbes::HealthProbes(EventLoop& loop, const BackendSet& backends, const Balancer& balancer, Millis connectTimeout,
                           uint16_t port)
    : loop_(loop), backends_(backends), balancer_(balancer), connectTimeout_(connectTimeout), port_(port) {}

HealthProbes::~HealthProbes() {
  for (auto& [backend, probe] : probes_) probe->stop();
}

void HealthProbes::probeWhenPenaltyEnds(const std::shared_ptr<Backend>& backend) {
  auto& probe = probes_[backend.get()];
  if (!probe) probe = std::make_shared<Probe>(*this, backend);
  probe->waitForPenaltyEnd();
}

void HealthProbes::answeredAgain(Backend& backend) {
  if (backend.failingLogged) {
    backend.failingLogged = false;
    log::info("backend answers again", {{"port", std::to_string(port_)},
                                        {"backend", backend.address.toString()},
                                        {"failed_connects_in_a_row", std::to_string(backend.consecutiveFailures)}});
  }
  balancer_.recordSuccess(backend);
  drop(backend);
}

void HealthProbes::dropGone() {
  if (probes_.empty()) return;
  std::unordered_set<const Backend*> current;
  for (const auto& b : backends_.backends()) current.insert(b.get());
  for (auto it = probes_.begin(); it != probes_.end();) {
    const Backend* backend = (it++)->first;  // drop() erases it
    if (!current.count(backend)) drop(*backend);
  }
}

void HealthProbes::drop(const Backend& backend) {
  auto it = probes_.find(&backend);
  if (it == probes_.end()) return;
  it->second->stop();
  // Freed after the batch: an event fetched for its socket in this batch may still come.
  loop_.defer([probe = std::move(it->second)] {});
  probes_.erase(it);
}

}  // namespace connectable
