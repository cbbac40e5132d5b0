#include "shim/connection.h"

#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/log.h"
#include "shim/proxy.h"
#include "shim/upstream_socket.h"

namespace connectable {
namespace {

// Reads up to this size are copied through the stack (recv + send: two cheap syscalls);
// a read that fills it marks the direction as bulk, which splice moves without copying.
constexpr size_t kCopyBuffer = size_t{16} * 1024;
constexpr uint32_t kSocketEvents = EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLRDHUP | EPOLLET;

// What accepted sockets inherit from the listener (proxy.cc), set on upstream sockets.
void setUpstreamOptions(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_OOBINLINE, &one, sizeof one);
}

}  // namespace

void Connection::Side::onIo(uint32_t events) {
  if (conn->closed()) return;  // closed earlier in this batch; deletion is deferred
  // Gone back to the ring earlier in this batch: the ring's reads own the sockets now, and
  // they see whatever this event was about.
  if (conn->inRing_) return;
  if (fd < 0) return;  // the backend's, closed by a failover earlier in this batch
  if (events & (EPOLLIN | EPOLLPRI | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) readable = true;
  if (events & EPOLLPRI) urgent = true;
  if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) peerClosed = true;
  if (events & EPOLLERR) peerFailed = true;
  if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) writable = true;
  if (upstream) {
    conn->onUpstreamIo(events);
  } else {
    conn->onClientIo(events);
  }
}

Connection::Connection(Proxy& proxy, ListenPort& port, int clientFd, const SocketAddress& peer)
    : proxy_(proxy), port_(port), peer_(peer), lastActivity_(proxy.loop().now()) {
  client_.conn = this;
  client_.fd = clientFd;
  upstream_.conn = this;
  upstream_.upstream = true;
  toBackend_.from = &client_;
  toBackend_.to = &upstream_;
  toClient_.from = &upstream_;
  toClient_.to = &client_;
  connectOp_.conn = this;
  for (Direction* d : {&toBackend_, &toClient_}) {
    d->read.conn = d->write.conn = this;
    d->read.dir = d->write.dir = d;
    d->write.send = true;
  }
}

Connection::~Connection() {
  if (state_ != State::Closed) close("destroyed", true);
}

void Connection::start() {
  if (proxy_.loop().ring()) {
    // The client's first read is made now: it notices a client that gives up while we
    // connect, and holds what the client sends until the backend answers.
    inRing_ = true;
    ringRead(toBackend_);
  } else if (Status s = proxy_.loop().add(client_.fd, kSocketEvents, &client_); !s) {
    // Registered now, so a client that gives up while we connect is noticed at once.
    // (epoll_ctl fails for want of memory, or of fs.epoll.max_user_watches, which every
    // shim of one uid shares.)
    proxy_.warnShortage(port_.spec().port, "closing client connection: cannot watch its socket", s);
    close("registering client socket", true, FailureReason::Internal);
    return;
  }
  if (port_.backends().awaitingFirstAnswer()) {
    state_ = State::Waiting;
    port_.waiting_.push_back(this);
    timer_ = proxy_.loop().addTimer(proxy_.options().firstAnswerTimeout, [this] {
      timer_ = 0;
      lastError_ = "no DNS answer while the resolver tried";
      backendsReady();
    });
    return;
  }
  backendsReady();
}

void Connection::backendsReady() {
  if (state_ != State::Waiting) return;
  if (timer_) proxy_.loop().cancelTimer(timer_);
  timer_ = 0;
  leaveWaitingList();
  state_ = State::Connecting;
  port_.balancer().order(port_.backends().backends(), &order_);
  connectNext();
}

void Connection::leaveWaitingList() {
  auto& waiting = port_.waiting_;
  auto it = std::find(waiting.begin(), waiting.end(), this);
  if (it != waiting.end()) waiting.erase(it);
}

void Connection::connectNext() {
  auto& loop = proxy_.loop();
  while (nextAttempt_ < order_.size()) {
    backend_ = order_[nextAttempt_];
    const SocketAddress& addr = backend_->address;
    int fd = upstreamSocket(addr);
    const int socketError = fd < 0 ? errno : 0;
    if (outOfDescriptors(socketError)) {
      waitForDescriptor(socketError);  // not this backend's fault, and no other would fare better
      return;
    }
    fdWaitStarted_ = {};
    attemptStarted_ = loop.now();
    if (++nextAttempt_ > 1) ++port_.counters().failovers;
    if (fd < 0) {
      // Its family is off in this kernel (ipv6.disable=1, yet a name's AAAA record brought
      // it): it fails as an unreachable backend does, and the others are tried.
      lastError_ = errnoStatus("socket", socketError).message();
      port_.counters().count(FailureReason::ConnectError);
      backendFailed(loop.now());
      continue;
    }
    setUpstreamOptions(fd);
    upstream_.fd = fd;
    upstream_.readable = upstream_.writable = upstream_.peerClosed = upstream_.urgent = false;
    upstream_.peerFailed = upstream_.resetUnseen = upstream_.corked = false;  // of one hung up on
    if (inRing_) {
      // The ring connects and says when it is done: no epoll registration, no connect call
      // of our own. The timeout cancels it, and the completion then says -ECANCELED.
      connectOp_.inFlight = true;
      ++ringOps_;
      loop.ring()->connect(fd, addr.sockaddr_ptr(), addr.length(), &connectOp_);
      timer_ = loop.addTimer(proxy_.options().connectTimeout, [this] {
        timer_ = 0;
        proxy_.loop().ring()->cancel(&connectOp_);
      });
      return;
    }
    if (::connect(fd, addr.sockaddr_ptr(), addr.length()) == 0 || errno == EINPROGRESS) {
      if (Status s = loop.add(fd, kSocketEvents, &upstream_); !s) {
        // Our shortage (memory, or fs.epoll.max_user_watches, which every shim of one uid
        // shares), not the backend's: no backend would fare better, and none is blamed.
        closeUpstreamSocket();
        backend_.reset();
        proxy_.warnShortage(port_.spec().port, "closing client connection: cannot watch its backend socket", s);
        close("registering backend socket", true, FailureReason::Internal);
        return;
      }
      timer_ = loop.addTimer(proxy_.options().connectTimeout, [this] {
        timer_ = 0;
        connectFailed("connect timeout", FailureReason::ConnectTimeout);
      });
      return;
    }
    int err = errno;
    closeUpstreamSocket();
    lastError_ = std::strerror(err);
    port_.counters().count(err == ECONNREFUSED ? FailureReason::ConnectRefused : FailureReason::ConnectError);
    backendFailed(loop.now());
  }
  backend_.reset();
  ++port_.counters().noBackend;
  if (auto held = port_.noBackendLog_.pass(loop.now())) {
    std::string problems = port_.backends().problems();
    std::string why = order_.empty() ? (!lastError_.empty() ? lastError_ : !problems.empty() ? problems : "no backends known")
                                     : "all " + std::to_string(order_.size()) + " backends failed, last: " + lastError_;
    log::warn("closing client connection: no backend reachable",
              {{"port", std::to_string(port_.spec().port)}, {"target", port_.spec().text()},
               {"reason", why}, {"repeats_not_logged", std::to_string(*held)}});
    proxy_.noteError("port " + std::to_string(port_.spec().port) + ": no backend reachable: " + why);
  }
  // Abort rather than close: a clean EOF could pass for a complete, empty response.
  close("no backend reachable", true, FailureReason::NoBackend);
}

void Connection::waitForDescriptor(int err) {
  // The client waits, as those still in the backlog do, and the socket is tried again once
  // a connection may have ended; at the fd limit, accept4 fails too, so no client joins
  // it meanwhile. Given up when a backend that does not answer would be.
  auto& loop = proxy_.loop();
  const Status error = errnoStatus("socket", err);
  if (fdWaitStarted_ == Clock::time_point{}) fdWaitStarted_ = loop.now();
  if (loop.now() - fdWaitStarted_ < proxy_.options().connectTimeout) {
    proxy_.warnShortage(port_.spec().port, "no descriptor for a backend connection; the client waits", error);
    timer_ = loop.addTimer(Proxy::kShortageRetry, [this] {
      timer_ = 0;
      connectNext();
    });
    return;
  }
  proxy_.warnShortage(port_.spec().port, "closing client connection: no descriptor for a backend connection", error);
  backend_.reset();
  close("out of descriptors", true, FailureReason::Internal);
}

void Connection::closeUpstreamSocket() {
  if (upstream_.fd < 0) return;
  ::close(upstream_.fd);  // closing the only descriptor also takes it out of epoll
  upstream_.fd = -1;
}

void Connection::connectFailed(const char* why, FailureReason reason) {
  if (timer_) proxy_.loop().cancelTimer(timer_);
  timer_ = 0;
  lastError_ = why;
  port_.counters().count(reason);
  closeUpstreamSocket();
  backendFailed(proxy_.loop().now());
  connectNext();
}

void Connection::backendFailed(Clock::time_point now) {
  Backend& b = *backend_;
  port_.balancer().recordFailure(b, attemptStarted_, now);
  port_.probes().probeWhenPenaltyEnds(backend_);
  const std::string port = std::to_string(port_.spec().port);
  log::debug("backend connect failed", {{"port", port}, {"backend", b.address.toString()}, {"error", lastError_}});
  // Said once when a backend starts failing (and once when it answers again), not at each
  // connect: a dead one is tried again whenever its penalty ends. At most once a minute, so
  // that one failing now and then says so once, not at every blip.
  if (b.failingLogged || (b.failingLoggedAt != Clock::time_point{} && now - b.failingLoggedAt < std::chrono::minutes(1)))
    return;
  b.failingLogged = true;
  b.failingLoggedAt = now;
  log::warn("backend failing; the others are tried first",
            {{"port", port}, {"backend", b.address.toString()}, {"error", lastError_},
             {"penalty_ms", std::to_string(port_.balancer().penaltyFor(b.consecutiveFailures).count())}});
}

void Connection::onUpstreamIo(uint32_t events) {
  if (state_ == State::Connecting) {
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    // A failed connect always raises EPOLLERR; only then is SO_ERROR worth a syscall.
    if (events & (EPOLLERR | EPOLLHUP)) {
      const int err = failedConnectError(upstream_.fd);
      if (err == ECONNRESET) {
        // Connected, and reset since (a server that answers and gives up at once): no
        // failed connect. Its bytes go to the client, then the reset, as without a proxy
        // and as on the ring path, which sees the connect complete first.
        upstream_.resetUnseen = true;
        established();
        return;
      }
      connectFailed(std::strerror(err), err == ECONNREFUSED ? FailureReason::ConnectRefused : FailureReason::ConnectError);
      return;
    }
    established();
    return;
  }
  if (state_ == State::Open) pumpAll();
}

void Connection::onClientIo(uint32_t events) {
  if (state_ == State::Open) {
    onOpenClientIo(events);
  } else if (events & (EPOLLERR | EPOLLHUP)) {
    // The client is gone before we reached a backend: nobody is left to serve.
    close("client went away while connecting", true, FailureReason::ClientGone);
  }
}

void Connection::established() {
  auto& loop = proxy_.loop();
  if (timer_) loop.cancelTimer(timer_);
  timer_ = 0;
  state_ = State::Open;
  // A penalized backend that answered a connect is back in turn once it serves this client
  // (its first byte, or an end that is no hang-up), not at the connect, which a forwarder
  // with nothing behind it answers too.
  answerPending_ = backend_->penalized();
  openedAt_ = loop.now();
  ++backend_->active;
  ++backend_->total;
  // Once per client, also after a failover: a counter that went down between two
  // scrapes would read as a reset to Prometheus.
  if (!countedEstablished_) ++port_.counters().established;
  countedEstablished_ = true;
  // A client that went quiet a while ago may have given up since; one that spoke a moment
  // ago is not asked (a system call per connection, for a race no proxy can close anyway).
  const bool clientMayHaveLeft = loop.now() - lastActivity_ >= kClientMayHaveLeft;
  lastActivity_ = loop.now();
  // Guarded: the fields would be built even when debug lines are dropped.
  if (log::enabled(log::Level::Debug))
    log::debug("connection established", {{"port", std::to_string(port_.spec().port)},
                                          {"client", peer_.toString()},
                                          {"backend", backend_->address.toString()}});
  armTimer();
  if (loop.ring()) {
    enterRing(clientMayHaveLeft);
  } else {
    pumpAll();
  }
}

// --- the io_uring data path --------------------------------------------------------------

void Connection::RingOp::onCompletion(int result, uint32_t flags) {
  inFlight = false;
  --conn->ringOps_;
  if (send) {
    conn->onRingWritten(*dir, result);
  } else {
    conn->onRingRead(*dir, result, flags);
  }
}

void Connection::ConnectOp::onCompletion(int result, uint32_t /*flags*/) {
  inFlight = false;
  --conn->ringOps_;
  conn->onRingConnected(result);
}

void Connection::onRingConnected(int result) {
  if (state_ == State::Closed) {
    finishClose();
    return;
  }
  if (result == 0) {
    established();
  } else if (result == -ECONNRESET) {
    // Connected, and reset since: as onUpstreamIo says.
    upstream_.resetUnseen = true;
    established();
  } else if (result == -ECANCELED) {
    // Only the timeout cancels a connect of a connection still open (close() is above).
    connectFailed("connect timeout", FailureReason::ConnectTimeout);
  } else {
    const int err = -result;
    connectFailed(std::strerror(err), err == ECONNREFUSED ? FailureReason::ConnectRefused : FailureReason::ConnectError);
  }
}

void Connection::enterRing(bool clientMayHaveLeft) {
  // The client's read has been in flight since start(); what it brought meanwhile goes on
  // now. The backend's read is made first, so that a full buffer held here, which leaves
  // the ring at once, cancels it like any other.
  Direction& d = toBackend_;
  if (clientMayHaveLeft && !d.read.inFlight && pendingError(client_.fd) != 0) {
    // Its read ended with its first bytes (or its FIN, or an empty pool), so nothing
    // watched the client while we connected. Gone since: what it sent must not reach
    // the backend now, where its client can no longer learn what became of it.
    close("client went away while connecting", true, FailureReason::ClientGone);
    return;
  }
  if (d.starved) {
    leaveRing();
    finishLeavingRing();
    return;
  }
  ringRead(toClient_);
  if (d.holdsBuffer) {
    ringForward(d);
  } else if (d.eof) {
    ringEof(d);
  }
}

void Connection::ringRead(Direction& d) {
  d.read.inFlight = true;
  ++ringOps_;
  proxy_.loop().ring()->recv(d.from->fd, &d.read);
}

void Connection::onRingRead(Direction& d, int result, uint32_t flags) {
  if (IoRing::hasBuffer(flags)) {
    d.buffer = IoRing::bufferId(flags);
    d.holdsBuffer = true;
    // Only a read that brought bytes keeps its buffer (the kernel gives none with an EOF
    // or an error today, but does not promise it).
    if (result <= 0 || state_ == State::Closed) releaseRingBuffer(d);
  }
  if (state_ == State::Closed) {
    finishClose();
    return;
  }
  if (state_ != State::Open) {
    // The client, before the backend answered (only its read is in flight then).
    if (result > 0) {
      d.sending = static_cast<size_t>(result);  // kept in its buffer until connected
      d.moreQueued = IoRing::moreQueued(flags);
    } else if (result == 0) {
      d.eof = true;  // a half-close: passed on once connected, like the bytes before it
    } else if (result == -ENOBUFS) {
      if (!retryStarvedRead(d)) d.starved = true;
    } else if (result != -ECANCELED) {
      close("client went away while connecting", true, FailureReason::ClientGone);
    }
    return;
  }
  if (d.refused) {
    // What the client sent after the backend's reset has nowhere to go (see writeFailed).
    releaseRingBuffer(d);
    if (leavingRing_) finishLeavingRing();
    return;
  }
  if (result > 0) {
    d.sending = static_cast<size_t>(result);
    d.moreQueued = IoRing::moreQueued(flags);
    ringForward(d);
    return;
  }
  if (result == 0) {
    ringEof(d);
  } else if (result == -ECANCELED) {
    finishLeavingRing();  // cancelled by leaveRing; nothing was read
  } else if (result == -ENOBUFS) {
    if (!retryStarvedRead(d)) {
      // Every buffer of a full-grown pool is lent out (many peers not reading): go on
      // with readiness and the pipes, which have their own bound.
      leaveRing();
      finishLeavingRing();
    }
  } else if (result == -EINTR || result == -EAGAIN) {
    if (leavingRing_) {
      finishLeavingRing();
    } else {
      ringRead(d);
    }
  } else {
    errno = -result;
    readFailed(d);
  }
}

bool Connection::retryStarvedRead(Direction& d) {
  // More reads brought bytes at once than the pool had buffers: a burst of busy
  // connections. Buffers given back since, or a grown pool, let the read stay in the ring;
  // the bytes wait in the socket meanwhile.
  if (!proxy_.loop().ring()->reserveBuffer()) return false;
  ringRead(d);
  return true;
}

void Connection::ringForward(Direction& d) {
  IoRing& ring = *proxy_.loop().ring();
  lastActivity_ = proxy_.loop().now();
  d.sent = 0;
  // A full buffer: more is likely queued behind it, which splice moves without copying.
  const bool full = d.sending >= IoRing::kBufferSize;
  if (full) d.bulk = true;
  if (full || leavingRing_) {
    // Leaving the ring: these bytes wait in their buffer and go first on the epoll path,
    // which has the pipe for what follows a full buffer.
    leaveRing();
    finishLeavingRing();
    return;
  }
  d.write.inFlight = true;
  ++ringOps_;
  // A short read with more queued behind it: most often the peer's FIN (a server that
  // answers and closes). The next read, made as soon as this send completes, finds it at
  // once, and the shutdown then sends these bytes and the FIN in one segment instead of
  // two, one segment and one ACK fewer for the other side to take in (HAProxy does the
  // same). Whatever that read finds instead, the next send or shutdown pushes these out.
  d.to->corked = d.moreQueued;
  ring.send(d.to->fd, ring.buffer(d.buffer), d.sending, &d.write, d.moreQueued);
}

void Connection::releaseRingBuffer(Direction& d) {
  if (!d.holdsBuffer) return;
  proxy_.loop().ring()->releaseBuffer(d.buffer);
  d.holdsBuffer = false;
}

void Connection::onRingWritten(Direction& d, int result) {
  if (state_ == State::Closed) {
    releaseRingBuffer(d);
    finishClose();
    return;
  }
  d.sent = result > 0 ? static_cast<size_t>(result) : 0;
  if (d.sent > 0) countBytes(d, d.sent);
  if (d.refused) {  // see resetClientAfterItsAnswer
    releaseRingBuffer(d);
    if (leavingRing_) finishLeavingRing();
    return;
  }
  if (d.sent < d.sending && (result >= 0 || result == -EAGAIN || (result == -ECANCELED && leavingRing_))) {
    // `to` took part or none of it: its buffers are full, it is not reading now. Sends do
    // not wait in the ring for room (nor does anything read `from` meanwhile, so a reset
    // there would go unseen until `to` read again): the connection leaves the ring, the
    // rest stays in its buffer and goes first, and readiness watches both sides. (Or
    // leaveRing cancelled it, which reports what it sent.)
    if (d.sent > 0) lastActivity_ = proxy_.loop().now();
    leaveRing();
    finishLeavingRing();
    return;
  }
  releaseRingBuffer(d);
  if (result < 0) {
    errno = -result;
    writeFailed(d);
    // Refused, not closed: this may have been the last operation the ring was leaving with.
    if (state_ == State::Open && leavingRing_) finishLeavingRing();
    return;
  }
  lastActivity_ = proxy_.loop().now();
  if (leavingRing_) {
    finishLeavingRing();
  } else {
    ringRead(d);
  }
}

void Connection::ringEof(Direction& d) {
  // A read is only made once the previous send completed, so everything before the EOF
  // has been handed to `to`.
  d.eof = true;
  if (passEof(d)) {
    close("done", false);
  } else if (leavingRing_) {
    finishLeavingRing();
  }
}

void Connection::leaveRing() {
  if (leavingRing_) return;
  leavingRing_ = true;
  // Sends end at once (they never wait for room), but are cancelled too, should one still
  // be queued: what a send leaves unsent stays in its buffer and goes first on the epoll
  // path.
  cancelRingOps();
}

void Connection::cancelRingOps() {
  IoRing& ring = *proxy_.loop().ring();
  if (connectOp_.inFlight) ring.cancel(&connectOp_);
  for (Direction* d : {&toBackend_, &toClient_})
    for (RingOp* op : {&d->read, &d->write})
      if (op->inFlight) ring.cancel(op);
}

void Connection::finishLeavingRing() {
  if (ringOps_ > 0 || state_ != State::Open) return;
  inRing_ = false;
  leavingRing_ = false;
  quietPumps_ = 0;
  ++proxy_.epollPath_.connections;
  ++proxy_.epollPath_.entered;
  auto& loop = proxy_.loop();
  for (Side* s : {&client_, &upstream_}) {
    // Neither was registered: the ring did the upstream's connect too.
    if (Status st = loop.add(s->fd, kSocketEvents, s); !st) {
      proxy_.warnShortage(port_.spec().port, "closing client connection: cannot watch its sockets", st);
      close("registering socket", true, FailureReason::Internal);
      return;
    }
    // Unknown until tried: the pump's first calls find out (EAGAIN clears them).
    s->readable = s->writable = true;
  }
  pumpAll();
}

void Connection::finishClose() {
  if (ringOps_ == 0) proxy_.connectionClosed(this);
}

void Connection::armTimer() {
  const ProxyOptions& options = proxy_.options();
  auto next = Clock::time_point::max();
  if (options.idleTimeout.count() > 0) next = lastActivity_ + options.idleTimeout;
  if (options.tcpKeepalive.count() > 0 && !keepaliveOn_) next = std::min(next, attemptStarted_ + options.tcpKeepalive);
  if (next == Clock::time_point::max()) return;
  timer_ = proxy_.loop().addTimerAt(next, [this] {
    timer_ = 0;
    onTimer();
  });
}

void Connection::onTimer() {
  const ProxyOptions& options = proxy_.options();
  const auto now = proxy_.loop().now();
  if (options.tcpKeepalive.count() > 0 && !keepaliveOn_ && now >= attemptStarted_ + options.tcpKeepalive) {
    turnOnKeepalive();
    keepaliveOn_ = true;
  }
  // Activity does not touch the timer (that would cost a map update per read); the timer
  // checks the last activity when it fires and sleeps again for what is left.
  if (options.idleTimeout.count() == 0 || lastActivity_ + options.idleTimeout > now) {
    armTimer();
    return;
  }
  log::debug("closing idle connection", {{"port", std::to_string(port_.spec().port)},
                                         {"client", peer_.toString()}});
  // Silent, or stalled with bytes on their way (a peer stopped reading): those are lost
  // with the connection, and a clean end would pass the truncated stream off as complete.
  close("idle timeout", bytesUndelivered(), FailureReason::IdleTimeout);
}

void Connection::turnOnKeepalive() {
  // Only now, on a connection that has lived this long, not at connect: four system calls
  // that most connections, short ones, never need. The kernel then probes a backend that
  // has been silent for the idle time, every third of it, and gives up after three
  // unanswered probes: the read waiting on the socket fails (ETIMEDOUT) and the client is
  // reset, as for any backend error. The probes also keep the flow alive in NATs and
  // firewalls that forget idle ones (AWS's NAT gateway after 350 s).
  const int idle = static_cast<int>(std::max<int64_t>(1, proxy_.options().tcpKeepalive.count() / 1000));
  const int interval = std::max(1, idle / 3);
  const int probes = 3;
  const int on = 1;
  const int fd = upstream_.fd;
  if (setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle) != 0 ||
      setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval) != 0 ||
      setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof probes) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on) != 0)
    log::debug("cannot turn on TCP keepalive", {{"port", std::to_string(port_.spec().port)},
                                                {"error", errnoStatus("setsockopt", errno).message()}});
}

bool Connection::bytesUndelivered() const {
  return toBackend_.holds() || toClient_.holds() || hasUnread(client_) || hasUnread(upstream_);
}

bool Connection::hasUnread(const Side& s) {
  int unread = 0;
  return s.fd >= 0 && ioctl(s.fd, FIONREAD, &unread) == 0 && unread > 0;
}

void Connection::onOpenClientIo(uint32_t events) {
  pumpAll();
  // A reset the pump did not meet: what the client sent waits for room at the backend, so
  // nothing reads from the client. Those bytes have nobody left to answer, as with a
  // client gone while we connected: the backend is told now, not once it reads again or
  // the connection idles out. (A backend's reset waits for the client to read what came
  // before it, which may complete an answer.)
  if (state_ == State::Open && (events & EPOLLERR) && pendingError(client_.fd) != 0)
    close("client reset", true, FailureReason::ClientError);
}

void Connection::pumpAll() {
  const uint64_t before = toBackend_.bytes + toClient_.bytes;
  if (!pump(toBackend_)) return;
  if (!pump(toClient_)) return;
  if (toBackend_.shutDown && toClient_.shutDown) {
    close("done", false);
    return;
  }
  if (proxy_.loop().ring()) returnToRingIfQuiet(toBackend_.bytes + toClient_.bytes - before);
}

void Connection::returnToRingIfQuiet(uint64_t moved) {
  bool quiet = state_ == State::Open && !inRing_ && moved < kCopyBuffer;
  for (const Direction* d : {&toBackend_, &toClient_})
    quiet = quiet && !d->eof && !d->refused && d->inPipe == 0 && !d->holdsBuffer && !d->from->readable && !d->from->urgent;
  if (!quiet) {
    quietPumps_ = 0;
    return;
  }
  if (++quietPumps_ < kQuietPumpsBeforeRing) return;
  // Nothing is held here and both sockets were read empty: the ring's reads take over
  // with the next bytes, in order. Events epoll already fetched for these sockets in this
  // batch are ignored (Side::onIo).
  quietPumps_ = 0;
  auto& loop = proxy_.loop();
  for (Side* s : {&client_, &upstream_}) loop.remove(s->fd);
  inRing_ = true;
  toBackend_.bulk = toClient_.bulk = false;
  --proxy_.epollPath_.connections;
  ++proxy_.epollPath_.returned;
  ringRead(toBackend_);
  ringRead(toClient_);
}

bool Connection::pump(Direction& d) {
  if (d.refused) return true;
  auto& pipes = proxy_.pipes();
  bool moved = false;
  for (;;) {
    bool progress = false;
    if (d.holdsBuffer) {
      // The rest of a ring send cancelled when the connection left the ring: first in line.
      if (!d.to->writable) break;
      ssize_t n = send(d.to->fd, proxy_.loop().ring()->buffer(d.buffer) + d.sent, d.sending - d.sent,
                       MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n > 0) {
        d.sent += static_cast<size_t>(n);
        countBytes(d, static_cast<uint64_t>(n));
        if (d.sent == d.sending) releaseRingBuffer(d);
        moved = true;
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        if (errno == EAGAIN) d.to->writable = false;
        continue;
      }
      writeFailed(d);
      return state_ == State::Open;  // or `d` was refused
    }
    if (d.inPipe > 0 && d.to->writable) {
      ssize_t n = splice(d.pipe.readFd, nullptr, d.to->fd, nullptr, d.inPipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        d.inPipe -= static_cast<size_t>(n);
        countBytes(d, static_cast<uint64_t>(n));
        progress = true;
      } else if (n < 0 && errno == EAGAIN) {
        d.to->writable = false;
      } else {
        writeFailed(d);
        return state_ == State::Open;  // or `d` was refused
      }
    }
    if (!d.eof && d.from->readable && (!d.pipe.valid() || d.inPipe < d.pipe.capacity)) {
      if (!d.pipe.valid()) d.pipe = pipes.take();
      if (!d.pipe.valid()) {
        // Out of fds for a pipe: copy through the stack instead, so the connection (and
        // its EOF) still moves while the process is at its fd limit.
        int r = copyWithoutPipe(d);
        if (r < 0) return state_ == State::Open;  // or `d` was refused
        if (r == 0) break;
        moved = true;
        continue;
      }
      if (d.inPipe == 0 && d.to->writable && (!d.bulk || d.from->urgent)) {
        int r = copyThroughStack(d);
        if (r < 0) return state_ == State::Open;  // or `d` was refused
        if (r > 0) progress = true;
      } else if (d.from->urgent) {
        // splice stops at an urgent mark (EAGAIN for ever): only recv passes it. Wait until
        // the pipe has drained into `to` and the copy above can run.
      } else {
        const size_t room = d.pipe.capacity - d.inPipe;
        ssize_t n = splice(d.from->fd, nullptr, d.pipe.writeFd, nullptr, room, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
          d.inPipe += static_cast<size_t>(n);
          // Still bulk while reads fill the buffer or all the room the pipe had.
          d.bulk = static_cast<size_t>(n) >= std::min(kCopyBuffer, room);
          progress = true;
        } else if (n == 0) {
          // splice also returns 0 at a TCP urgent mark once the peer's FIN is queued: only
          // a peek tells that from the real end (one call per bulk direction that ends).
          char c;
          ssize_t peeked = recv(d.from->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
          if (peeked > 0) {
            d.from->urgent = true;  // the copy path reads past the mark
            progress = true;
          } else if (peeked == 0) {
            d.eof = true;
            progress = true;
          } else if (errno == EAGAIN || errno == EINTR) {
            if (d.inPipe == 0) d.from->readable = false;  // nothing there after all
          } else if (resetBehindHeldBytes(d)) {
            progress = true;
          } else {
            readFailed(d);
            return false;
          }
        } else if (errno == EAGAIN) {
          // EAGAIN means "socket empty" only when the pipe is empty; with bytes in the pipe
          // it may mean "pipe full", and the socket must be tried again once it drains.
          if (d.inPipe == 0) d.from->readable = false;
        } else if (resetBehindHeldBytes(d)) {
          progress = true;
        } else {
          readFailed(d);
          return false;
        }
      }
    }
    if (!progress) break;
    moved = true;
  }
  if (moved) lastActivity_ = proxy_.loop().now();
  if (d.inPipe == 0 && d.pipe.valid()) {
    pipes.give(d.pipe);
    d.pipe = {};
  }
  if (d.eof && d.inPipe == 0 && !d.holdsBuffer && !d.shutDown) passEof(d);  // pumpAll closes when both have
  // passEof may have failed over, or passed a reset on.
  return state_ == State::Open;
}

bool Connection::passEof(Direction& d) {
  if (d.from->resetUnseen) {
    // This EOF stands for a reset, and all that came before it has been passed on: now the
    // reset. (Only the backend's side has resetUnseen.)
    errno = ECONNRESET;
    readFailed(d);
    return false;
  }
  Direction& other = &d == &toBackend_ ? toClient_ : toBackend_;
  if (&d == &toClient_ && hungUpWithoutAByte(/*reset=*/false)) {
    port_.counters().count(FailureReason::BackendHungUp);
    if (failOver()) return false;
  }
  // When the other direction has ended too, both sockets are closed next, and close sends
  // this FIN: the shutdown call would only add a syscall. (A plain call on the ring path
  // too: the ring would hand a shutdown to a kernel worker thread.)
  if (!other.shutDown) shutdown(d.to->fd, SHUT_WR);
  d.shutDown = true;
  return other.shutDown;
}

int Connection::copyThroughStack(Direction& d) {
  // REQUIRES: d.pipe is valid and empty, d.to is writable.
  char buf[kCopyBuffer];
  // Never more than the pipe holds: what `to` does not take must fit there whole.
  const size_t want = std::min(sizeof buf, d.pipe.capacity);
  ssize_t n = recv(d.from->fd, buf, want, MSG_DONTWAIT);
  if (n == 0) {
    d.eof = true;
    return 1;
  }
  if (n < 0) {
    if (errno == EINTR) return 1;
    if (errno == EAGAIN) {
      d.from->readable = false;
      d.from->urgent = false;  // past any urgent mark: short reads mean "empty" again
      return 0;
    }
    readFailed(d);
    return -1;
  }
  const size_t got = static_cast<size_t>(n);
  // A short read emptied the socket, and new bytes raise a new edge: no need to read again
  // for an EAGAIN. Once the peer has closed, though, only reading on shows its EOF. (Not
  // "short read + FIN queued = EOF": a read also stops short at a TCP urgent mark, and
  // taking that for the end would reset the connection on the bytes after it.)
  if (got < want && !d.from->peerClosed && !d.from->urgent) d.from->readable = false;
  d.bulk = got >= kCopyBuffer;
  // The peer has closed and this short read emptied the socket up to its FIN, most
  // likely: the pump reads on at once, and the shutdown that follows sends these bytes
  // and the FIN in one segment (as on the ring path). Anything else it reads, it sends
  // on, and that send pushes these out.
  const int more = got < want && d.from->peerClosed && !d.from->peerFailed ? MSG_MORE : 0;
  d.to->corked = more != 0;
  ssize_t sent = send(d.to->fd, buf, got, MSG_DONTWAIT | MSG_NOSIGNAL | more);
  if (sent < 0) {
    if (errno != EAGAIN && errno != EINTR) {
      writeFailed(d);
      return -1;
    }
    sent = 0;
  }
  if (static_cast<size_t>(sent) < got) {
    // `to` is full: the rest waits in the (empty) pipe, which holds `want` bytes.
    d.to->writable = false;
    const size_t rest = got - static_cast<size_t>(sent);
    if (write(d.pipe.writeFd, buf + sent, rest) != static_cast<ssize_t>(rest)) {
      close("pipe write failed", true, FailureReason::Internal);  // impossible while the pipe is empty
      return -1;
    }
    d.inPipe = rest;
  }
  if (sent > 0) countBytes(d, static_cast<uint64_t>(sent));
  return 1;
}

int Connection::copyWithoutPipe(Direction& d) {
  // Peek, send what the other side takes, then consume exactly that: nothing is held here.
  char buf[16384];
  ssize_t n = recv(d.from->fd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0) {
    d.eof = true;
    return 1;
  }
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) {
      d.from->readable = false;
      return 0;
    }
    readFailed(d);
    return -1;
  }
  if (!d.to->writable) return 0;
  ssize_t sent = send(d.to->fd, buf, static_cast<size_t>(n), MSG_DONTWAIT | MSG_NOSIGNAL);
  if (sent < 0) {
    if (errno == EAGAIN || errno == EINTR) {
      d.to->writable = false;
      return 0;
    }
    writeFailed(d);
    return -1;
  }
  ssize_t consumed = recv(d.from->fd, buf, static_cast<size_t>(sent), MSG_DONTWAIT);
  (void)consumed;  // the bytes were peeked, so exactly `sent` of them are there
  countBytes(d, static_cast<uint64_t>(sent));
  return 1;
}

void Connection::readFailed(const Direction& d) {
  const bool backend = d.from == &upstream_;
  if (backend && errno == ETIMEDOUT) {
    backendTimedOut();
    return;
  }
  if (!backend) {
    close("client read failed", true, FailureReason::ClientError);
    return;
  }
  const FailureReason failure = backendFailure();
  if (failure == FailureReason::BackendHungUp && failOver()) {
    port_.counters().count(failure);
    return;
  }
  if (toClient_.readAny() && (!toBackend_.eof || queuedToSend(client_) > 0)) {
    resetClientAfterItsAnswer(failure);
    return;
  }
  close("backend read failed", true, failure);
}

bool Connection::resetBehindHeldBytes(Direction& d) {
  if (d.from != &upstream_ || errno != ECONNRESET || !d.holds()) return false;
  upstream_.resetUnseen = true;  // passEof passes it on once they have gone
  d.eof = true;
  return true;
}

int Connection::queuedToSend(const Side& s) {
  int queued = 0;
  return s.fd >= 0 && ioctl(s.fd, SIOCOUTQ, &queued) == 0 ? queued : 0;
}

void Connection::resetClientAfterItsAnswer(FailureReason failure) {
  // A reset at once would lose the answer in two ways. The bytes the client's kernel has
  // not taken yet (a slow reader) are dropped with the socket. And a client still sending
  // finds the reset at its next send, and may give up there without reading the answer
  // waiting before it: curl says "Send failure" and drops the 413 of a server that refused
  // its upload (without a proxy its sends would have stopped when the server stopped
  // reading, and it would have read the answer first). So nothing more is read from
  // either side (the backend's is dead, and what the client sends can go nowhere), and the
  // client is reset once its kernel has taken the answer, and a moment later: by then it
  // has found it. (An error on the client's side ends it at once, as always.)
  toBackend_.refused = toClient_.refused = true;
  if (!toBackend_.write.inFlight) releaseRingBuffer(toBackend_);  // else at its completion
  resetFailure_ = failure;
  queuedToClient_ = queuedToSend(client_);
  lastActivity_ = proxy_.loop().now();
  watchAnswer();
}

void Connection::watchAnswer() {
  if (timer_) proxy_.loop().cancelTimer(timer_);
  timer_ = proxy_.loop().addTimer(kResetAfterAnswer, [this] {
    timer_ = 0;
    const auto now = proxy_.loop().now();
    // toClient_ refused: the backend's reset was reached (resetClientAfterItsAnswer), and
    // is what the client gets next; before, the answer was still on its way.
    const bool resetReached = toClient_.refused;
    if (resetReached) {
      const int queued = queuedToSend(client_);
      if (queued == 0) {
        close("backend reset", true, resetFailure_);
        return;
      }
      if (queued < queuedToClient_) lastActivity_ = now;
      queuedToClient_ = queued;
    }
    // (Bytes moved to the client before the reset was reached set lastActivity_ as always.)
    if (now - lastActivity_ >= kAnswerStall) {
      close("backend reset; the client takes no more of its answer", true,
            resetReached ? resetFailure_ : backendFailure());
      return;
    }
    watchAnswer();
  });
}

FailureReason Connection::backendFailure() {
  if (hungUpWithoutAByte(/*reset=*/true)) return FailureReason::BackendHungUp;
  // Its FIN was counted as the hang-up already; the reset of what the client sent since
  // is the same event.
  return hungUp_ ? FailureReason::kCount : FailureReason::BackendError;
}

bool Connection::hungUpWithoutAByte(bool reset) {
  // A forwarder with nothing behind it accepts every connect and hangs up at once:
  // docker-proxy for a container whose program does not listen, a load balancer with no
  // members. Passive health that counts connects alone keeps sending it every other client.
  // docker-proxy closes with what the client sent unread, so the client gets a reset; one
  // that sent nothing, a FIN. A FIN after the client spoke is a server's own way to end:
  // memcached's `quit`, a request it drops, a sink that read to the client's end.
  if (hungUp_ || toClient_.readAny()) return false;
  const Clock::time_point now = proxy_.loop().now();
  if (now - openedAt_ > kHangUpWindow) return false;
  if (!reset && (toBackend_.eof || toBackend_.readAny())) return false;
  // A reset that a write found may come after words not read yet (an HTTP server that
  // refuses an upload with a 413 and closes with the body unread): it spoke.
  if (reset && hasUnread(upstream_)) return false;
  hungUp_ = true;
  answerPending_ = false;
  lastError_ = "hung up without a byte";
  backendFailed(now);
  return true;
}

bool Connection::backendMaySayMore() const {
  return toClient_.holds() || toClient_.read.inFlight || hasUnread(upstream_);
}

bool Connection::failOver() {
  // On the ring path the client's read is still in flight then, as before the first
  // connect, and holds what it brings until the next backend answers.
  if (toBackend_.readAny() || toBackend_.eof || nextAttempt_ >= order_.size()) return false;
  if (proxy_.loop().ring() && (!inRing_ || leavingRing_)) return false;
  if (timer_) proxy_.loop().cancelTimer(timer_);
  timer_ = 0;
  if (log::enabled(log::Level::Debug))
    log::debug("backend hung up on a silent client; trying the next", {{"port", std::to_string(port_.spec().port)},
                                                                       {"client", peer_.toString()},
                                                                       {"backend", backend_->address.toString()}});
  // Undo what established() counted for this client (connections_total is counted once).
  --backend_->active;
  closeUpstreamSocket();  // nothing of the ring's works on it: its read brought the hang-up
  if (toClient_.pipe.valid()) {
    proxy_.pipes().give(toClient_.pipe);  // empty: nothing was read
    toClient_.pipe = {};
  }
  toClient_.eof = toClient_.shutDown = toClient_.bulk = toClient_.moreQueued = false;
  hungUp_ = answerPending_ = keepaliveOn_ = false;
  state_ = State::Connecting;
  // At the end of this turn: epoll may have fetched an event of the socket just closed,
  // which would find its successor (the same Side) connecting and take it for connected.
  proxy_.loop().defer([this] {
    if (state_ == State::Connecting) connectNext();
  });
  return true;
}

void Connection::writeFailed(Direction& d) {
  const bool backend = d.to == &upstream_;
  if (backend && errno == ETIMEDOUT) {
    backendTimedOut();
    return;
  }
  const bool reset = backend && (errno == ECONNRESET || errno == EPIPE);
  if (reset && backendMaySayMore()) {
    // An HTTP server that refuses an upload at its headers (413, 401, 417) answers and
    // closes with the body unread, and its kernel resets. Without a proxy the client still
    // reads that answer, then the reset; aborting here would throw the answer away. So the
    // client is no longer read (nothing it sends can go anywhere), what the backend said
    // goes on, and the EOF behind it stands for the reset, which this write consumed
    // (EPIPE: an earlier call did). A reset leaves the socket closed: that EOF comes at once.
    d.refused = true;
    upstream_.resetUnseen = true;
    releaseRingBuffer(d);
    // A client that sends its whole upload before it reads (Python's http.client does)
    // takes none of the answer once its send blocks, and only the reset would end that
    // send, as without a proxy: watchAnswer resets it, instead of the idle timeout an hour
    // later.
    lastActivity_ = proxy_.loop().now();
    watchAnswer();
    return;
  }
  if (reset && toClient_.readAny() && queuedToSend(client_) > 0) {
    // Nothing more to come from the backend, but its whole answer is in the client's
    // socket, not all taken yet (its FIN too, maybe): an abort now would drop the rest.
    resetClientAfterItsAnswer(backendFailure());
    return;
  }
  close(backend ? "backend write failed" : "client write failed", true,
        backend ? backendFailure() : FailureReason::ClientError);
}

void Connection::backendTimedOut() {
  // Not a reset: the backend's host stopped answering at all (it crashed, or the network
  // or a NAT on the way lost the connection), which an operator wants to tell apart. Its
  // pooled connections all find out within seconds.
  if (auto held = port_.timeoutLog_.pass(proxy_.loop().now())) {
    log::warn("backend stopped answering; client reset",
              {{"port", std::to_string(port_.spec().port)}, {"backend", backend_->address.toString()},
               {"why", keepaliveOn_ ? "TCP keepalive probes or retransmissions went unanswered"
                                    : "retransmissions went unanswered"},
               {"repeats_not_logged", std::to_string(*held)}});
    proxy_.noteError("port " + std::to_string(port_.spec().port) + ": backend " + backend_->address.toString() +
                     " stopped answering");
  }
  close("backend timed out", true, FailureReason::BackendTimeout);
}

void Connection::countBytes(Direction& d, uint64_t n) {
  d.bytes += n;
  if (d.to == &upstream_) {
    backend_->bytesToBackend += n;
    port_.counters().bytesToBackend += n;
  } else {
    backend_->bytesFromBackend += n;
    port_.counters().bytesFromBackend += n;
    if (answerPending_) {
      answerPending_ = false;
      port_.probes().answered(*backend_);
    }
  }
}

void Connection::close(const char* reason, bool abort, FailureReason failure) {
  if (state_ == State::Closed) return;
  if (failure != FailureReason::kCount) port_.counters().count(failure);
  const State was = state_;
  state_ = State::Closed;
  auto& loop = proxy_.loop();
  if (timer_) loop.cancelTimer(timer_);
  timer_ = 0;
  if (was == State::Waiting) leaveWaitingList();
  IoRing* ring = loop.ring();
  for (Side* s : {&client_, &upstream_}) {
    if (s->fd < 0) continue;
    // No EPOLL_CTL_DEL: the socket's only descriptor closes, which removes it from epoll,
    // and events already fetched for it find the connection closed (deletion is deferred).
    // With a ring, the close goes with its next submit, before any further epoll_wait.
    if (abort) {
      // Bytes held back for a FIN that a reset replaced go out before the reset: the peer
      // gets what the other side sent before it failed, as without a proxy. (TCP_NODELAY,
      // set already, pushes what is queued when set again.)
      if (s->corked) {
        const int one = 1;
        setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      }
      // SO_LINGER 0: the close sends RST, so an abort on one side is seen as an abort on the
      // other instead of a clean end that would pass a truncated transfer off as complete.
      struct linger lg {1, 0};
      setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    if (ring) {
      ring->close(s->fd);
    } else {
      ::close(s->fd);
    }
    s->fd = -1;
  }
  for (Direction* d : {&toBackend_, &toClient_}) {
    if (!d->pipe.valid()) continue;
    if (d->inPipe == 0) {
      proxy_.pipes().give(d->pipe);
    } else {
      PipePool::closePipe(d->pipe);  // never lend out a pipe with someone else's bytes
    }
    d->pipe = {};
  }
  // Operations still in the ring hold the sockets (closed above, released by the kernel
  // only when they end) and point at this object: cancel them, and leave the deletion to
  // the last completion.
  for (Direction* d : {&toBackend_, &toClient_})
    if (!d->write.inFlight) releaseRingBuffer(*d);  // held before connecting, or a rest
  if (ringOps_ > 0) cancelRingOps();
  if (ring && !inRing_) --proxy_.epollPath_.connections;  // it had left the ring
  --port_.counters().active;
  if (was == State::Open) {
    if (answerPending_ && !hungUp_) port_.probes().answered(*backend_);
    answerPending_ = false;
    --backend_->active;
    if (log::enabled(log::Level::Debug))
      log::debug("connection closed", {{"port", std::to_string(port_.spec().port)},
                                       {"client", peer_.toString()},
                                       {"backend", backend_->address.toString()},
                                       {"reason", reason},
                                       {"sent", std::to_string(toBackend_.bytes)},
                                       {"received", std::to_string(toClient_.bytes)}});
  }
  finishClose();
}

}  // namespace connectable
