#include "tests/support/tcp_peers.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>

#include "common/socket_address.h"

namespace connectable::testing {
namespace {

using SteadyClock = std::chrono::steady_clock;

// The port a bound socket has (the kernel's choice, after a bind to port 0).
uint16_t localPort(int fd) {
  sockaddr_storage ss;
  socklen_t len = sizeof ss;
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  return SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss), len).port();
}

int msLeft(SteadyClock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

bool waitFd(int fd, short events, SteadyClock::time_point deadline) {
  struct pollfd p {fd, events, 0};
  for (;;) {
    int r = poll(&p, 1, msLeft(deadline));
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) return false;
  }
}

// xorshift: a deterministic byte stream that any test can regenerate.
struct Stream {
  uint64_t state;
  explicit Stream(uint32_t seed) : state(0x9E3779B97F4A7C15ull ^ seed) {}
  void fill(char* buf, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      state ^= state << 13;
      state ^= state >> 7;
      state ^= state << 17;
      buf[i] = static_cast<char>(state);
    }
  }
};

struct Fnv {
  uint64_t h = 1469598103934665603ull;
  void add(const char* p, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      h ^= static_cast<unsigned char>(p[i]);
      h *= 1099511628211ull;
    }
  }
};

}  // namespace

TcpServer::TcpServer(Handler handler, const std::string& ip, uint16_t port) : handler_(std::move(handler)), ip_(ip) {
  auto addr = SocketAddress::parseIp(ip, port);
  if (!addr) throw std::runtime_error("bad server address " + ip);
  listenFd_ = socket(addr->family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listenFd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(listenFd_, addr->sockaddr_ptr(), addr->length()) != 0 || ::listen(listenFd_, 1024) != 0)
    throw std::runtime_error("test server cannot listen on " + addr->toString() + ": " + strerror(errno));
  port_ = localPort(listenFd_);
  acceptThread_ = std::thread([this] { acceptLoop(); });
}

TcpServer::TcpServer(int listeningFd, Handler handler)
    : handler_(std::move(handler)), listenFd_(listeningFd), ip_("127.0.0.1") {
  port_ = localPort(listenFd_);
  acceptThread_ = std::thread([this] { acceptLoop(); });
}

TcpServer::~TcpServer() {
  stop();
  std::vector<std::thread> workers;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    workers.swap(workers_);
  }
  for (auto& t : workers) t.join();
}

std::string TcpServer::address() const {
  return (ip_.find(':') != std::string::npos ? "[" + ip_ + "]" : ip_) + ":" + std::to_string(port_);
}

void TcpServer::stop() {
  if (stopping_.exchange(true)) return;
  shutdown(listenFd_, SHUT_RDWR);  // wakes accept()
  if (acceptThread_.joinable()) acceptThread_.join();
  ::close(listenFd_);
}

void TcpServer::acceptLoop() {
  while (!stopping_) {
    int fd = accept4(listenFd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (stopping_) return;
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;
    }
    ++accepted_;
    ++open_;
    std::lock_guard<std::mutex> lock(mutex_);
    workers_.emplace_back([this, fd] {
      handler_(fd);
      ::close(fd);
      --open_;
    });
  }
}

ReservedPort::ReservedPort() {
  auto addr = SocketAddress::loopbackV4(0);
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd_, addr.sockaddr_ptr(), addr.length()) != 0) {
    int err = errno;
    ::close(fd_);
    throw std::runtime_error("reserved port: " + std::string(strerror(err)));
  }
  port_ = localPort(fd_);
}

ReservedPort::~ReservedPort() { ::close(fd_); }

SilentListener::SilentListener() {
  auto addr = SocketAddress::loopbackV4(0);
  listenFd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (bind(listenFd_, addr.sockaddr_ptr(), addr.length()) != 0 || ::listen(listenFd_, 0) != 0)
    throw std::runtime_error("silent listener: " + std::string(strerror(errno)));
  port_ = localPort(listenFd_);
  // Backlog 0 still queues one connection; fill it (and one more for good measure).
  for (int i = 0; i < 2; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    auto to = SocketAddress::loopbackV4(port_);
    connect(fd, to.sockaddr_ptr(), to.length());
    fillers_.push_back(fd);
  }
  struct timespec ts {0, 50'000'000};
  nanosleep(&ts, nullptr);
}

SilentListener::~SilentListener() {
  for (int fd : fillers_) ::close(fd);
  if (!server_) ::close(listenFd_);
}

void SilentListener::open(TcpServer::Handler handler) {
  if (server_) return;
  if (::listen(listenFd_, 1024) != 0) throw std::runtime_error("silent listener: " + std::string(strerror(errno)));
  server_ = std::make_unique<TcpServer>(listenFd_, std::move(handler));
}

TcpServer::Handler echoHandler() { return echoThenSayHandler(""); }

TcpServer::Handler echoThenSayHandler(std::string tail) {
  return [tail](int fd) {
    char buf[65536];
    for (;;) {
      ssize_t n = read(fd, buf, sizeof buf);
      if (n <= 0) break;
      if (!writeAll(fd, buf, static_cast<size_t>(n), 30000)) return;
    }
    if (!tail.empty()) writeAll(fd, tail.data(), tail.size());
  };
}

TcpServer::Handler replyHandler(std::string reply) {
  return [reply](int fd) {
    writeAll(fd, reply.data(), reply.size());
    shutdown(fd, SHUT_WR);
    char buf[4096];
    struct pollfd p {fd, POLLIN, 0};
    // Drain what the client sent so close() does not turn into a reset.
    while (poll(&p, 1, 2000) > 0 && read(fd, buf, sizeof buf) > 0) {}
  };
}

TcpServer::Handler holdHandler() {
  return [](int fd) {
    char buf[65536];
    while (read(fd, buf, sizeof buf) > 0) {}
  };
}

void closeWithReset(int fd) {
  struct linger abortive {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &abortive, sizeof abortive);
  close(fd);
}

int connectTcp(const std::string& ip, uint16_t port, int timeoutMs) {
  auto addr = SocketAddress::parseIp(ip, port);
  if (!addr) return -1;
  int fd = socket(addr->family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  auto deadline = SteadyClock::now() + std::chrono::milliseconds(timeoutMs);
  if (connect(fd, addr->sockaddr_ptr(), addr->length()) != 0) {
    if (errno != EINPROGRESS || !waitFd(fd, POLLOUT, deadline)) {
      ::close(fd);
      return -1;
    }
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      ::close(fd);
      return -1;
    }
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

bool writeAll(int fd, const void* data, size_t len, int timeoutMs) {
  auto deadline = SteadyClock::now() + std::chrono::milliseconds(timeoutMs);
  const char* p = static_cast<const char*>(data);
  while (len > 0) {
    if (!waitFd(fd, POLLOUT, deadline)) return false;
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return false;
    }
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

bool readToEof(int fd, std::string* out, int timeoutMs) {
  auto deadline = SteadyClock::now() + std::chrono::milliseconds(timeoutMs);
  char buf[65536];
  for (;;) {
    if (!waitFd(fd, POLLIN, deadline)) return false;
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0) return true;
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return false;
    }
    out->append(buf, static_cast<size_t>(n));
  }
}

int waitClosed(int fd, int timeoutMs) {
  auto start = SteadyClock::now();
  auto deadline = start + std::chrono::milliseconds(timeoutMs);
  char buf[4096];
  for (;;) {
    if (!waitFd(fd, POLLIN, deadline)) return -1;
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
      return static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start).count());
  }
}

EchoCheck echoRoundTrip(int fd, uint64_t len, uint32_t seed, int timeoutMs) {
  EchoCheck result;
  auto deadline = SteadyClock::now() + std::chrono::milliseconds(timeoutMs);
  Stream stream(seed);
  Fnv sent, received;
  uint64_t toSend = len;
  char out[65536];
  size_t outLen = 0, outOff = 0;
  char in[65536];
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  bool shut = false;
  while (true) {
    if (toSend == 0 && outOff == outLen && !shut) {
      shutdown(fd, SHUT_WR);
      shut = true;
    }
    struct pollfd p {fd, static_cast<short>(POLLIN | (shut ? 0 : POLLOUT)), 0};
    int r = poll(&p, 1, msLeft(deadline));
    if (r <= 0) {
      result.error = "timeout after receiving " + std::to_string(result.received) + " bytes";
      return result;
    }
    if (p.revents & POLLOUT) {
      if (outOff == outLen && toSend > 0) {
        outLen = static_cast<size_t>(std::min<uint64_t>(sizeof out, toSend));
        stream.fill(out, outLen);
        sent.add(out, outLen);
        toSend -= outLen;
        outOff = 0;
      }
      if (outOff < outLen) {
        ssize_t n = send(fd, out + outOff, outLen - outOff, MSG_NOSIGNAL);
        if (n > 0) outOff += static_cast<size_t>(n);
        else if (n < 0 && errno != EAGAIN) {
          result.error = std::string("send: ") + strerror(errno);
          return result;
        }
      }
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = recv(fd, in, sizeof in, 0);
      if (n == 0) break;
      if (n < 0) {
        if (errno == EAGAIN) continue;
        result.error = std::string("recv: ") + strerror(errno);
        return result;
      }
      received.add(in, static_cast<size_t>(n));
      result.received += static_cast<uint64_t>(n);
    }
  }
  result.sentHash = sent.h;
  result.receivedHash = received.h;
  result.ok = result.received == len && sent.h == received.h && toSend == 0;
  if (!result.ok && result.error.empty())
    result.error = "received " + std::to_string(result.received) + " of " + std::to_string(len) + " bytes";
  return result;
}

int listenUnix(const std::string& path, int backlog) {
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) return -1;
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, sizeof addr.sun_path - 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, backlog) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace connectable::testing
