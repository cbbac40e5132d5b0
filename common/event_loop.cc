#include "common/event_loop.h"

#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>

#include "common/log.h"

namespace connectable {

class EventLoop::SignalHandler : public IoHandler {
 public:
  explicit SignalHandler(EventLoop& loop) : loop_(loop) { sigemptyset(&mask_); }
  ~SignalHandler() override {
    if (fd_ >= 0) {
      loop_.remove(fd_);
      ::close(fd_);
    }
  }

  Status add(int signo, Callback cb) {
    sigaddset(&mask_, signo);
    if (sigprocmask(SIG_BLOCK, &mask_, nullptr) != 0) return errnoStatus("sigprocmask", errno);
    int fd = signalfd(fd_, &mask_, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) return errnoStatus("signalfd", errno);
    if (fd_ < 0) {
      fd_ = fd;
      if (Status s = loop_.add(fd_, EPOLLIN, this); !s) return s;
    }
    callbacks_[signo] = std::move(cb);
    return Status::ok();
  }

  void onIo(uint32_t) override {
    struct signalfd_siginfo info;
    while (::read(fd_, &info, sizeof info) == sizeof info) {
      auto it = callbacks_.find(static_cast<int>(info.ssi_signo));
      if (it != callbacks_.end()) it->second();
    }
  }

 private:
  EventLoop& loop_;
  int fd_ = -1;
  sigset_t mask_;
  std::map<int, Callback> callbacks_;
};

// The epoll instance, seen from the ring: readable when a registered fd has an event.
// A one-shot poll, made again before every wait: it checks the epoll instance when it is
// made, so a level-triggered fd that is still ready (its handler read only part of what
// was there, as c-ares does) is seen at once. A multishot poll would fire only on new
// wake-ups and leave such an fd waiting for an unrelated event.
class EventLoop::EpollInRing : public CompletionHandler {
 public:
  explicit EpollInRing(EventLoop& loop) : loop_(loop) {}
  void arm() {
    if (armed_) return;
    loop_.ring_->pollIn(loop_.epfd_, this);
    armed_ = true;
  }
  void onCompletion(int result, uint32_t /*flags*/) override {
    armed_ = false;  // made again before the next wait
    if (result < 0 && result != -ECANCELED && result != -EINTR) {
      log::error("io_uring poll of the epoll instance failed", {{"error", errnoStatus("poll", -result).message()}});
      std::abort();  // an impossible state, as epoll_wait failing is: fail loudly, never spin
    }
    if (result >= 0) loop_.dispatchEpoll();
  }

 private:
  EventLoop& loop_;
  bool armed_ = false;
};

EventLoop::EventLoop() : now_(Clock::now()) {}

EventLoop::~EventLoop() {
  signals_.reset();
  ring_.reset();  // before epollInRing_, whose poll it cancels
  epollInRing_.reset();
  if (epfd_ >= 0) ::close(epfd_);
}

Status EventLoop::enableRing(unsigned entries, unsigned buffers, unsigned maxBuffers) {
  auto ring = IoRing::create(entries, buffers, maxBuffers);
  if (!ring) return ring.status();
  ring_ = std::move(*ring);
  epollInRing_ = std::make_unique<EpollInRing>(*this);
  return Status::ok();
}

Status EventLoop::init() {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) return errnoStatus("epoll_create1", errno);
  signals_ = std::make_unique<SignalHandler>(*this);
  now_ = Clock::now();
  return Status::ok();
}

Status EventLoop::add(int fd, uint32_t events, IoHandler* handler) {
  struct epoll_event ev {};
  ev.events = events;
  ev.data.ptr = handler;
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) return errnoStatus("epoll_ctl(ADD)", errno);
  return Status::ok();
}

Status EventLoop::modify(int fd, uint32_t events, IoHandler* handler) {
  struct epoll_event ev {};
  ev.events = events;
  ev.data.ptr = handler;
  if (epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) != 0) return errnoStatus("epoll_ctl(MOD)", errno);
  return Status::ok();
}

void EventLoop::remove(int fd) {
  // ENOENT/EBADF only mean it was never added or already gone; both are harmless here.
  epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
}

EventLoop::TimerId EventLoop::addTimer(Millis delay, Callback cb) {
  // From the clock, not the turn's start: a turn that forked shims may have lasted long.
  return addTimerAt(Clock::now() + delay, std::move(cb));
}

EventLoop::TimerId EventLoop::addTimerAt(Clock::time_point deadline, Callback cb) {
  TimerId id = nextTimerId_++;
  timers_.emplace(std::make_pair(deadline, id), std::move(cb));
  timerDeadlines_.emplace(id, deadline);
  return id;
}

void EventLoop::cancelTimer(TimerId id) {
  auto it = timerDeadlines_.find(id);
  if (it == timerDeadlines_.end()) return;
  timers_.erase(std::make_pair(it->second, id));
  timerDeadlines_.erase(it);
}

void EventLoop::defer(Callback cb) { deferred_.push_back(std::move(cb)); }

Status EventLoop::onSignal(int signo, Callback cb) { return signals_->add(signo, std::move(cb)); }

void EventLoop::stop() { stop_ = true; }

int EventLoop::nextTimeoutMs() const {
  if (!deferred_.empty()) return 0;
  if (timers_.empty()) return -1;
  auto wait = timers_.begin()->first.first - Clock::now();
  if (wait <= Clock::duration::zero()) return 0;
  // Round up, so a timer never fires early and the loop never spins on a 0 ms wait.
  auto ms = std::chrono::duration_cast<Millis>(wait + Millis(1) - std::chrono::nanoseconds(1));
  return static_cast<int>(std::min<long long>(ms.count(), 60'000));
}

void EventLoop::runTimers() {
  // Fire only what is due now; timers added by callbacks wait for the next iteration.
  const auto due = now_;
  while (!timers_.empty() && timers_.begin()->first.first <= due) {
    auto node = timers_.extract(timers_.begin());
    timerDeadlines_.erase(node.key().second);
    node.mapped()();
  }
}

void EventLoop::runDeferred() {
  while (!deferred_.empty()) {
    std::vector<Callback> batch;
    batch.swap(deferred_);
    for (auto& cb : batch) cb();
  }
}

namespace {

constexpr int kMaxEvents = 256;

void handEachToItsHandler(const struct epoll_event* events, int n) {
  for (int i = 0; i < n; ++i) static_cast<IoHandler*>(events[i].data.ptr)->onIo(events[i].events);
}

}  // namespace

void EventLoop::finishTurn() {
  runDeferred();
  now_ = Clock::now();
  runTimers();
  runDeferred();
}

void EventLoop::run() {
  stop_ = false;  // a loop may be run again after stop()
  if (ring_) {
    runRing();
  } else {
    runEpoll();
  }
}

void EventLoop::runEpoll() {
  struct epoll_event events[kMaxEvents];
  while (!stop_) {
    int n = epoll_wait(epfd_, events, kMaxEvents, nextTimeoutMs());
    if (n < 0) {
      if (errno == EINTR) continue;
      log::error("epoll_wait failed", {{"error", errnoStatus("epoll_wait", errno).message()}});
      std::abort();  // the loop cannot go on without epoll: fail loudly
    }
    now_ = Clock::now();
    handEachToItsHandler(events, n);
    finishTurn();
  }
}

void EventLoop::runRing() {
  while (!stop_) {
    epollInRing_->arm();
    if (Status s = ring_->wait(nextTimeoutMs()); !s) {
      log::error("io_uring wait failed", {{"error", s.message()}});
      std::abort();  // the loop cannot go on without its ring: fail loudly
    }
    now_ = Clock::now();
    ring_->dispatch();
    finishTurn();
  }
}

void EventLoop::dispatchEpoll() {
  struct epoll_event events[kMaxEvents];
  for (;;) {
    int n = epoll_wait(epfd_, events, kMaxEvents, 0);
    handEachToItsHandler(events, n);
    // The ring's poll fires on new events only: what a full batch left behind must be
    // fetched now, or it would wait for an unrelated event.
    if (n < kMaxEvents) return;
  }
}

}  // namespace connectable
