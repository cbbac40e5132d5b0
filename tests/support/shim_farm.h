// ShimFarm: stand-ins for shims' control sockets. Each is a UNIX socket that answers any
// request with an HTTP/1.0 200 and a body of the test's choosing, some time after it
// accepted the connection; one thread serves them all and counts the connections it got
// and how many were open at once.
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
};

}  // namespace connectable::testing
