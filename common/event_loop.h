// EventLoop: one epoll instance, timers and signals for a single-threaded program.
// Not thread-safe: every call comes from the thread that runs the loop.
//
// Handlers register fds edge-triggered or level-triggered; EPOLLHUP/EPOLLERR are passed on
// as they are, so a handler reading until EAGAIN sees the EOF or the error itself.
// Timers fire in deadline order; the nearest one bounds epoll_wait.
//
// With enableRing, the loop waits in an io_uring instead (common/io_ring.h): the epoll
// instance is then one of the ring's polls, and handlers may also queue ring operations,
// which go to the kernel together when the loop next waits.
#pragma once

#include <sys/epoll.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "common/io_ring.h"
#include "common/status.h"

namespace connectable {

using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

// Implemented by whatever owns an fd registered with the loop.
class IoHandler {
 public:
  virtual ~IoHandler() = default;
  virtual void onIo(uint32_t events) = 0;
};

class EventLoop {
 public:
  using TimerId = uint64_t;
  using Callback = std::function<void()>;

  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  Status init();
  // Waits in an io_uring from now on (see IoRing::create). On an error the loop stays as it
  // was, on epoll alone, and ring() stays null.
  Status enableRing(unsigned entries, unsigned buffers, unsigned maxBuffers = 0);
  IoRing* ring() { return ring_.get(); }

  // fd registration. `events` is an EPOLL* mask (add EPOLLET for edge-triggered).
  // REQUIRES: handler outlives the registration; remove() before closing the fd.
  Status add(int fd, uint32_t events, IoHandler* handler);
  Status modify(int fd, uint32_t events, IoHandler* handler);
  void remove(int fd);

  // One-shot timer; returns an id for cancelTimer. Cancelling a fired or unknown id is a no-op.
  // `delay` counts from the call, however long the current turn has run.
  TimerId addTimer(Millis delay, Callback cb);
  TimerId addTimerAt(Clock::time_point deadline, Callback cb);
  void cancelTimer(TimerId id);

  // Runs cb after the current batch of events: the safe place to destroy objects whose
  // fds may still have events pending in this batch.
  void defer(Callback cb);

  // Signals are blocked and delivered through a signalfd, on the loop's thread.
  Status onSignal(int signo, Callback cb);

  void run();   // until stop()
  void stop();
  bool stopping() const { return stop_; }

  // The time taken once per iteration: cheap, and the same for every handler in a batch.
  Clock::time_point now() const { return now_; }

 private:
  class SignalHandler;
  class EpollInRing;
  void runEpoll();
  void runRing();
  void dispatchEpoll();
  void finishTurn();  // after a batch of events: deferred work, then due timers
  int nextTimeoutMs() const;
  void runTimers();
  void runDeferred();

  int epfd_ = -1;
  bool stop_ = false;
  Clock::time_point now_;
  TimerId nextTimerId_ = 1;
  std::map<std::pair<Clock::time_point, TimerId>, Callback> timers_;
  std::map<TimerId, Clock::time_point> timerDeadlines_;
  std::vector<Callback> deferred_;
  std::unique_ptr<SignalHandler> signals_;
  std::unique_ptr<IoRing> ring_;
  std::unique_ptr<EpollInRing> epollInRing_;
};

}  // namespace connectable
