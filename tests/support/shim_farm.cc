#include "tests/support/shim_farm.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cerrno>
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
    std::string reply;  // from answerAt on
    size_t sent = 0;
  };
  std::map<int, Open> open;
  while (!done_) {
    std::vector<pollfd> fds;
    for (int fd : listeners_) fds.push_back({fd, POLLIN, 0});
    for (const auto& [fd, o] : open)
      if (!o.reply.empty()) fds.push_back({fd, POLLOUT, 0});
    ::poll(fds.data(), fds.size(), 2);
    for (size_t i = 0; i < listeners_.size(); ++i) {
      if (!(fds[i].revents & POLLIN)) continue;
      int c = ::accept4(listeners_[i], nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (c < 0) continue;
      if (int bytes = sendBuffer_; bytes > 0) ::setsockopt(c, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
      open[c] = Open{i, std::chrono::steady_clock::now() + delay_, {}, 0};
      ++asked_;
      mostOpen_ = std::max(mostOpen_.load(), open.size());
    }
    auto now = std::chrono::steady_clock::now();
    for (auto it = open.begin(); it != open.end();) {
      Open& o = it->second;
      if (now < o.answerAt) {
        ++it;
        continue;
      }
      if (o.reply.empty()) {
        // Read the request first: a UNIX socket closed with unread data resets its peer. It
        // may come later than the answer is due (a busy machine, a sanitizer build).
        char request[4096];
        ssize_t r = ::recv(it->first, request, sizeof request, 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
          ++it;
          continue;
        }
        o.reply = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + body_(o.shim);
      }
      // As much as the socket takes now: answers to several clients go out side by side.
      ssize_t n = 0;
      while (o.sent < o.reply.size() &&
             (n = ::send(it->first, o.reply.data() + o.sent, o.reply.size() - o.sent, MSG_NOSIGNAL)) > 0)
        o.sent += static_cast<size_t>(n);
      if (o.sent < o.reply.size() && n < 0 && (errno == EAGAIN || errno == EINTR)) {
        ++it;
        continue;
      }
      if (o.sent < o.reply.size()) ++cutShort_;
      ::close(it->first);
      it = open.erase(it);
    }
  }
  for (auto& [fd, o] : open) ::close(fd);
}

}  // namespace connectable::testing
