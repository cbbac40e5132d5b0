#include "tests/support/shim_farm.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <map>

#include "tests/support/process.h"
#include "tests/support/tcp_peers.h"

namespace connectable::testing {

ShimFarm::ShimFarm(size_t count, Body body, std::chrono::milliseconds delay) : body_(std::move(body)), delay_(delay) {
  dir_ = tempDir();
  for (size_t i = 0; i < count; ++i) paths_.push_back(dir_ + "/shim" + std::to_string(i) + ".sock");
  listenAll();
}

ShimFarm::ShimFarm(std::vector<std::string> paths, Body body, std::chrono::milliseconds delay)
    : body_(std::move(body)), delay_(delay), paths_(std::move(paths)) {
  listenAll();
}

void ShimFarm::listenAll() {
  for (const auto& path : paths_) {
    int fd = listenUnix(path, 64);
    BOOST_REQUIRE(fd >= 0);
    listeners_.push_back(fd);
  }
  thread_ = std::thread([this] { serve(); });
}

ShimFarm::~ShimFarm() {
  done_ = true;
  thread_.join();
  for (int fd : listeners_) ::close(fd);
  for (const auto& p : paths_) ::unlink(p.c_str());
  if (!dir_.empty()) ::rmdir(dir_.c_str());
}

void ShimFarm::serve() {
  struct Open {
    size_t shim;
    std::chrono::steady_clock::time_point answerAt;
  };
  std::map<int, Open> open;
  while (!done_) {
    std::vector<pollfd> fds;
    for (int fd : listeners_) fds.push_back({fd, POLLIN, 0});
    ::poll(fds.data(), fds.size(), 2);
    for (size_t i = 0; i < listeners_.size(); ++i) {
      if (!(fds[i].revents & POLLIN)) continue;
      int c = ::accept4(listeners_[i], nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      open[c] = Open{i, std::chrono::steady_clock::now() + delay_};
      ++asked_;
      mostOpen_ = std::max(mostOpen_.load(), open.size());
    }
    auto now = std::chrono::steady_clock::now();
    for (auto it = open.begin(); it != open.end();) {
      if (now < it->second.answerAt) {
        ++it;
        continue;
      }
      // Read the request first: a UNIX socket closed with unread data resets its peer.
      char request[4096];
      [[maybe_unused]] ssize_t r = ::recv(it->first, request, sizeof request, MSG_DONTWAIT);
      std::string reply = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + body_(it->second.shim);
      [[maybe_unused]] ssize_t n = ::send(it->first, reply.data(), reply.size(), MSG_NOSIGNAL);
      ::close(it->first);
      it = open.erase(it);
    }
  }
  for (auto& [fd, o] : open) ::close(fd);
}

}  // namespace connectable::testing
