#include "common/http_fetch.h"

#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace connectable {

Result<HttpReply> parseHttpReply(std::string raw) {
  // The head ends at its first empty line, whether its lines end in CRLF or a bare LF.
  const size_t crlf = raw.find("\r\n\r\n"), lf = raw.find("\n\n");
  const size_t headEnd = std::min(crlf, lf);
  if (headEnd == std::string::npos || raw.compare(0, 5, "HTTP/") != 0) return Status::error("malformed HTTP reply");
  const size_t bodyStart = headEnd + (headEnd == crlf ? 4 : 2);
  // The code is the status line's, never digits further on.
  size_t sp = raw.find(' ');
  if (sp == std::string::npos || sp + 4 > raw.find('\n')) return Status::error("malformed HTTP status line");
  HttpReply r;
  for (size_t i = sp + 1; i < sp + 4; ++i) {
    if (raw[i] < '0' || raw[i] > '9') return Status::error("malformed HTTP status code");
    r.code = r.code * 10 + (raw[i] - '0');
  }
  // The server closes after its answer, and closes at its deadline too: a body shorter
  // than its Content-Length was cut there, and its last number may be a prefix of the true
  // one (a counter read as reset).
  static constexpr char kLength[] = "content-length:";
  for (size_t line = raw.find('\n'); line != std::string::npos && line < headEnd; line = raw.find('\n', line + 1)) {
    const char* header = raw.c_str() + line + 1;
    if (strncasecmp(header, kLength, sizeof kLength - 1) != 0) continue;
    const size_t expected = std::strtoull(header + sizeof kLength - 1, nullptr, 10);
    const size_t got = raw.size() - bodyStart;
    if (got < expected)
      return Status::error("HTTP reply cut short: " + std::to_string(got) + " of its " + std::to_string(expected) + " bytes");
    break;
  }
  raw.erase(0, bodyStart);
  r.body = std::move(raw);
  return r;
}

namespace {

class Fetch : public IoHandler {
 public:
  Fetch(EventLoop& loop, std::string socketPath, size_t maxReply, HttpFetchDone done, HttpFetchMayGrow mayGrow)
      : loop_(loop),
        socketPath_(std::move(socketPath)),
        maxReply_(maxReply),
        done_(std::move(done)),
        mayGrow_(std::move(mayGrow)) {}
  ~Fetch() override {
    if (fd_ >= 0) {
      loop_.remove(fd_);
      ::close(fd_);
    }
    if (timer_) loop_.cancelTimer(timer_);
    if (connectTimer_) loop_.cancelTimer(connectTimer_);
  }

  void start(const std::string& path, Millis timeout) {
    out_ = "GET " + path + " HTTP/1.0\r\nHost: connectable\r\n\r\n";
    timer_ = loop_.addTimer(timeout, [this, timeout] {
      timer_ = 0;
      finish(Status::error("no answer from " + socketPath_ + " within " + std::to_string(timeout.count()) + " ms"));
    });
    addr_.sun_family = AF_UNIX;
    if (socketPath_.size() >= sizeof addr_.sun_path) {
      failLater(Status::error("socket path too long: " + socketPath_));
      return;
    }
    std::memcpy(addr_.sun_path, socketPath_.c_str(), socketPath_.size() + 1);
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
      failLater(errnoStatus("socket(AF_UNIX)", errno));
      return;
    }
    connectNow();
  }

  void onIo(uint32_t events) override {
    if (finished_) return;
    if (!out_.empty() && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
      while (!out_.empty()) {
        ssize_t n = send(fd_, out_.data(), out_.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
          out_.erase(0, static_cast<size_t>(n));
        } else if (n < 0 && errno == EINTR) {
          continue;
        } else if (n < 0 && errno == EAGAIN) {
          break;
        } else {
          finish(errnoStatus("writing to " + socketPath_, n < 0 ? errno : EPIPE));
          return;
        }
      }
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
      char buf[16384];
      for (;;) {
        ssize_t n = recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) {
          if (in_.size() + static_cast<size_t>(n) > maxReply_) {
            finish(Status::error("answer from " + socketPath_ + " is too large"));
            return;
          }
          if (mayGrow_ && !mayGrow_(static_cast<size_t>(n))) {
            finish(Status::error("answer from " + socketPath_ + " cut: no room left for it"));
            return;
          }
          in_.append(buf, static_cast<size_t>(n));
        } else if (n == 0) {
          finish(parseHttpReply(std::move(in_)));
          return;
        } else if (errno == EINTR) {
          continue;
        } else if (errno == EAGAIN) {
          return;
        } else {
          finish(errnoStatus("reading from " + socketPath_, errno));
          return;
        }
      }
    }
  }

 private:
  void connectNow() {
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr_), sizeof addr_) == 0 || errno == EINPROGRESS) {
      if (Status s = loop_.add(fd_, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, this); !s) failLater(s);
      return;
    }
    if (errno == EAGAIN) {
      // A UNIX socket's queue is full: its server is busy, not gone, and nothing is
      // connected yet. Again shortly, within the fetch's time.
      connectTimer_ = loop_.addTimer(Millis(20), [this] {
        connectTimer_ = 0;
        connectNow();
      });
      return;
    }
    failLater(errnoStatus("connecting to " + socketPath_, errno));
  }

  void failLater(const Status& s) {
    loop_.defer([this, s] { finish(s); });
  }

  void finish(Result<HttpReply> result) {
    if (finished_) return;
    finished_ = true;
    if (timer_) loop_.cancelTimer(timer_);
    if (connectTimer_) loop_.cancelTimer(connectTimer_);
    timer_ = connectTimer_ = 0;
    if (fd_ >= 0) {
      loop_.remove(fd_);
      ::close(fd_);
      fd_ = -1;
    }
    std::string().swap(in_);  // moved into the reply, or of no more use
    mayGrow_ = nullptr;
    auto done = std::move(done_);
    loop_.defer([this] { delete this; });
    done(std::move(result));
  }

  EventLoop& loop_;
  std::string socketPath_;
  size_t maxReply_;
  HttpFetchDone done_;
  HttpFetchMayGrow mayGrow_;
  int fd_ = -1;
  std::string out_;
  std::string in_;
  bool finished_ = false;
  EventLoop::TimerId timer_ = 0;
  sockaddr_un addr_{};
  EventLoop::TimerId connectTimer_ = 0;  // a connect tried again (the server's queue was full)
};

}  // namespace

void fetchHttpUnix(EventLoop& loop, const std::string& socketPath, const std::string& path, Millis timeout,
                   HttpFetchDone done, size_t maxReply, HttpFetchMayGrow mayGrow) {
  auto* fetch = new Fetch(loop, socketPath, maxReply, std::move(done), std::move(mayGrow));
  fetch->start(path, timeout);
}

Result<HttpReply> fetchHttpUnixBlocking(const std::string& socketPath, const std::string& path, Millis timeout) {
  EventLoop loop;
  if (Status s = loop.init(); !s) return s;
  Result<HttpReply> out = Status::error("no answer");
  fetchHttpUnix(loop, socketPath, path, timeout, [&](Result<HttpReply> r) {
    out = std::move(r);
    loop.stop();
  });
  loop.run();
  return out;
}

}  // namespace connectable
