// PipePool: kernel pipes for splice(2), lent to a connection direction only while it has
// bytes in flight and returned when empty, so an idle connection holds two fds, not six.
// Owned by the shim's event loop thread; not thread-safe.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <vector>

namespace connectable {

struct Pipe {
  int readFd = -1;
  int writeFd = -1;
  size_t capacity = 0;  // bytes it holds: 64 KiB, less once the user is past pipe-user-pages-soft
  bool valid() const { return readFd >= 0; }
};

class PipePool {
 public:
  static constexpr int kPipeSize = 256 * 1024;

  explicit PipePool(size_t keep = 32) : keep_(keep) {}
  ~PipePool() {
    for (auto& p : free_) closePipe(p);
  }
  PipePool(const PipePool&) = delete;
  PipePool& operator=(const PipePool&) = delete;

  // Returns an invalid Pipe when the process is out of fds; the caller waits and retries.
  Pipe take() {
    if (!free_.empty()) {
      Pipe p = free_.back();
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
    if (free_.size() < keep_) {
      free_.push_back(p);
    } else {
      closePipe(p);
    }
  }
  static void closePipe(Pipe& p) {
    if (p.readFd >= 0) ::close(p.readFd);
    if (p.writeFd >= 0) ::close(p.writeFd);
    p = {};
  }

 private:
  size_t keep_;
  std::vector<Pipe> free_;
};

}  // namespace connectable
