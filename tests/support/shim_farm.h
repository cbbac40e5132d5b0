// ShimFarm: stand-ins for shims' control sockets. Each is a UNIX socket that answers any
// request with an HTTP/1.0 200 and a body of the test's choosing, some time after it
// accepted the connection; one thread serves them all, sending the answers side by side,
// and counts the connections it got, how many were open at once, and how many answers
// their clients cut short.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace connectable::testing {

class ShimFarm {
 public:
  using Body = std::function<std::string(size_t shim)>;
  // `count` sockets in a new temporary directory.
  ShimFarm(size_t count, Body body, std::chrono::milliseconds delay = std::chrono::milliseconds(20));
  // One socket at each of `paths` (their directories must exist).
  ShimFarm(std::vector<std::string> paths, Body body, std::chrono::milliseconds delay);
  ~ShimFarm();
  ShimFarm(const ShimFarm&) = delete;
  ShimFarm& operator=(const ShimFarm&) = delete;

  const std::vector<std::string>& sockets() const { return paths_; }
  size_t mostOpenAtOnce() const { return mostOpen_; }
  size_t asked() const { return asked_; }
  // Answers whose client closed before the kernel took all of them.
  size_t cutShort() const { return cutShort_; }
  // Connections accepted from now on send through a buffer of about `bytes` (the kernel
  // keeps a few KiB at least) instead of a few hundred KiB: an answer leaves as its client
  // reads it, so an answer cut short shows as one, and answers go out evenly side by side.
  void limitSendBuffer(int bytes) { sendBuffer_ = bytes; }

 private:
  void listenAll();
  void serve();

  Body body_;
  std::chrono::milliseconds delay_;
  std::string dir_;  // ours to remove, if we made it
  std::vector<std::string> paths_;
  std::vector<int> listeners_;
  std::thread thread_;
  std::atomic<bool> done_{false};
  std::atomic<size_t> mostOpen_{0};
  std::atomic<size_t> asked_{0};
  std::atomic<size_t> cutShort_{0};
  std::atomic<int> sendBuffer_{0};  // 0: the kernel's default
};

}  // namespace connectable::testing
