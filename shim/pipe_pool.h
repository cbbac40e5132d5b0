// PipePool: kernel pipes for splice(2), lent to a connection direction only while it has
// bytes in flight and returned when empty, so an idle connection holds two fds, not six.
//
// Pipes given back are kept a short while for the next bulk transfer, then closed. The
// kernel counts a pipe's whole capacity against its user's pipe-user-pages-soft (16,384
// pages by default), the same budget for every shim on the host, all running as one
// unprivileged user: past it, every new pipe of every shim is 8 KiB and bulk transfers
// crawl. Kept for ever, the idle pipes of eight shims that once moved 32 downloads at a
// time would hold that budget, and the others' bulk traffic would pay.
// Owned by the shim's event loop thread; not thread-safe.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <deque>

#include "common/event_loop.h"

namespace connectable {

struct Pipe {
  int readFd = -1;
  int writeFd = -1;
  size_t capacity = 0;  // bytes it holds: 256 KiB, less once the user is past pipe-user-pages-soft
  bool valid() const { return readFd >= 0; }
};

class PipePool {
 public:
  static constexpr int kPipeSize = 256 * 1024;
  // How long a pipe given back waits for another transfer before it is closed.
  static constexpr Millis kKeepIdle{2000};

  explicit PipePool(EventLoop& loop, size_t keep = 32) : loop_(loop), keep_(keep) {}
  ~PipePool() {
    if (timer_) loop_.cancelTimer(timer_);
    for (auto& idle : free_) closePipe(idle.pipe);
  }
  PipePool(const PipePool&) = delete;
  PipePool& operator=(const PipePool&) = delete;

  // Returns an invalid Pipe when the process is out of fds; the caller waits and retries.
  Pipe take() {
    if (!free_.empty()) {
      Pipe p = free_.back().pipe;  // the one given back last: the others are closed first
      free_.pop_back();
      return p;
    }
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return {};
    fcntl(fds[0], F_SETPIPE_SZ, kPipeSize);  // best effort: past the user's soft limit, less
    int size = fcntl(fds[0], F_GETPIPE_SZ);
    return {fds[0], fds[1], size > 0 ? static_cast<size_t>(size) : 4096};
  }
  // REQUIRES: the pipe is empty.
  void give(Pipe p) {
    if (free_.size() >= keep_) {
      closePipe(p);
      return;
    }
    free_.push_back({p, loop_.now()});
    if (!timer_) timer_ = loop_.addTimer(kKeepIdle, [this] { closeIdle(); });
  }
  size_t idle() const { return free_.size(); }
  static void closePipe(Pipe& p) {
    if (p.readFd >= 0) ::close(p.readFd);
    if (p.writeFd >= 0) ::close(p.writeFd);
    p = {};
  }

 private:
  struct Idle {
    Pipe pipe;
    Clock::time_point since;
  };

  void closeIdle() {
    timer_ = 0;
    const auto now = loop_.now();
    while (!free_.empty() && now - free_.front().since >= kKeepIdle) {
      closePipe(free_.front().pipe);
      free_.pop_front();
    }
    if (!free_.empty()) {
      const auto wait = std::chrono::duration_cast<Millis>(free_.front().since + kKeepIdle - now) + Millis(1);
      timer_ = loop_.addTimer(wait, [this] { closeIdle(); });
    }
  }

  EventLoop& loop_;
  size_t keep_;
  std::deque<Idle> free_;  // oldest first
  EventLoop::TimerId timer_ = 0;
};

}  // namespace connectable
