#include "common/http_server.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/listener_bind.h"
#include "common/log.h"

namespace connectable {

HttpResponse HttpResponse::text(int code, std::string body) {
  HttpResponse r;
  r.code = code;
  r.body = std::make_shared<const std::string>(std::move(body));
  return r;
}

HttpResponse HttpResponse::json(std::string body) {
  HttpResponse r;
  r.contentType = "application/json";
  r.body = std::make_shared<const std::string>(std::move(body));
  return r;
}

HttpResponse HttpResponse::metrics(std::string body) {
  HttpResponse r;
  r.contentType = "text/plain; version=0.0.4; charset=utf-8";
  r.body = std::make_shared<const std::string>(std::move(body));
  return r;
}

namespace {

const char* reasonPhrase(int code) {
  switch (code) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 503: return "Service Unavailable";
    default: return "Error";
  }
}

// The status line and headers; the body goes out from where it is.
std::string headOf(const HttpResponse& r) {
  return "HTTP/1.0 " + std::to_string(r.code) + " " + reasonPhrase(r.code) + "\r\nContent-Type: " + r.contentType +
         "\r\nContent-Length: " + std::to_string(r.body->size()) + "\r\nConnection: close\r\n\r\n";
}

}  // namespace

Result<HttpRequest> parseHttpRequestLine(const std::string& head) {
  size_t end = head.find_first_of("\r\n");
  std::string line = head.substr(0, end);
  size_t sp1 = line.find(' ');
  if (sp1 == std::string::npos || sp1 == 0) return Status::error("malformed request line");
  size_t sp2 = line.find(' ', sp1 + 1);
  HttpRequest r;
  r.method = line.substr(0, sp1);
  std::string target = line.substr(sp1 + 1, sp2 == std::string::npos ? std::string::npos : sp2 - sp1 - 1);
  if (sp2 != std::string::npos && line.compare(sp2 + 1, 5, "HTTP/") != 0) return Status::error("not HTTP");
  if (target.empty() || target[0] != '/') return Status::error("request target must start with '/'");
  size_t q = target.find('?');
  r.path = target.substr(0, q);
  if (q != std::string::npos) r.query = target.substr(q + 1);
  return r;
}

class HttpServer::Listener : public IoHandler {
 public:
  Listener(HttpServer& server, int fd, bool unixSocket) : server(server), fd(fd), unixSocket(unixSocket) {}
  ~Listener() override {
    if (fd >= 0) {
      server.loop_.remove(fd);
      ::close(fd);
    }
  }
  void onIo(uint32_t) override { server.accept(*this); }

  HttpServer& server;
  int fd;
  bool unixSocket;
};

class HttpServer::Client : public IoHandler {
 public:
  Client(HttpServer& server, int fd) : server_(server), fd_(fd) {}
  ~Client() override {
    *alive_ = false;
    if (timer_) server_.loop_.cancelTimer(timer_);
    if (requestTimer_) server_.loop_.cancelTimer(requestTimer_);
    if (fd_ >= 0) {
      server_.loop_.remove(fd_);
      ::close(fd_);
    }
  }

  Status start(Millis timeout, Millis requestTimeout) {
    timer_ = server_.loop_.addTimer(timeout, [this] {
      timer_ = 0;
      finish();
    });
    if (requestTimeout < timeout) {
      requestTimer_ = server_.loop_.addTimer(requestTimeout, [this] {
        requestTimer_ = 0;
        if (reading_) finish();
      });
    }
    return server_.loop_.add(fd_, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, this);
  }

  void answerNow(const HttpResponse& r) {
    out_ = headOf(r);
    if (!headOnly_) body_ = r.body;
    reading_ = false;
    answered_ = true;
    flush();
  }

  void onIo(uint32_t events) override {
    if (done_) return;
    if (reading_ && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) readRequest();
    if (!done_ && answered_) flush();
  }

 private:
  void readRequest() {
    char buf[1024];
    for (;;) {
      ssize_t n = recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        in_.append(buf, static_cast<size_t>(n));
        if (in_.size() > server_.options_.maxRequest) {
          answerNow(HttpResponse::text(400, "request too long\n"));
          return;
        }
        if (in_.find("\r\n\r\n") != std::string::npos || in_.find("\n\n") != std::string::npos) break;
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        if (errno == EINTR) continue;
        return;  // wait for more
      }
      // EOF or error before a whole request: a bare request line ending at EOF still counts.
      if (n == 0 && !in_.empty()) break;
      finish();
      return;
    }
    reading_ = false;
    if (requestTimer_) server_.loop_.cancelTimer(requestTimer_);
    requestTimer_ = 0;
    auto request = parseHttpRequestLine(in_);
    if (!request) {
      answerNow(HttpResponse::text(400, request.status().message() + "\n"));
      return;
    }
    if (request->method != "GET" && request->method != "HEAD") {
      answerNow(HttpResponse::text(405, "only GET\n"));
      return;
    }
    headOnly_ = request->method == "HEAD";
    std::weak_ptr<bool> alive = alive_;
    server_.handler_(*request, [this, alive](const HttpResponse& r) {
      auto a = alive.lock();
      if (!a || !*a || done_ || answered_) return;
      answerNow(r);
    });
  }

  void flush() {
    const size_t bodySize = body_ ? body_->size() : 0;
    while (sent_ < out_.size() + bodySize) {
      iovec parts[2];
      size_t count = 0;
      if (sent_ < out_.size()) parts[count++] = {out_.data() + sent_, out_.size() - sent_};
      const size_t bodySent = sent_ > out_.size() ? sent_ - out_.size() : 0;
      if (bodySent < bodySize) parts[count++] = {const_cast<char*>(body_->data()) + bodySent, bodySize - bodySent};
      msghdr message{};
      message.msg_iov = parts;
      message.msg_iovlen = count;
      ssize_t n = sendmsg(fd_, &message, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n > 0) {
        sent_ += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return;  // EPOLLOUT resumes us
      break;  // peer gone
    }
    finish();
  }

  void finish() {
    if (done_) return;
    done_ = true;
    if (timer_) server_.loop_.cancelTimer(timer_);
    if (requestTimer_) server_.loop_.cancelTimer(requestTimer_);
    timer_ = requestTimer_ = 0;
    if (fd_ >= 0) {
      server_.loop_.remove(fd_);
      shutdown(fd_, SHUT_WR);
      ::close(fd_);
      fd_ = -1;
    }
    server_.finished(this);
  }

  HttpServer& server_;
  int fd_;
  std::string in_;
  std::string out_;                          // the answer's head
  std::shared_ptr<const std::string> body_;  // and its body, none for HEAD
  size_t sent_ = 0;                          // of the two, in that order
  bool reading_ = true;
  bool headOnly_ = false;
  bool answered_ = false;
  bool done_ = false;
  EventLoop::TimerId timer_ = 0;
  EventLoop::TimerId requestTimer_ = 0;  // until the request is whole
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

HttpServer::HttpServer(EventLoop& loop, Handler handler, Options options)
    : loop_(loop), handler_(std::move(handler)), options_(std::move(options)) {}

HttpServer::~HttpServer() {
  if (retryTimer_) loop_.cancelTimer(retryTimer_);
  clients_.clear();
  listeners_.clear();
}

Status HttpServer::listenUnix(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path)
    return Status::error("control socket path '" + path + "' is empty or too long");
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return Status::error("control socket path '" + path + "' exists and is not a socket");
    ::unlink(path.c_str());  // left by a previous run
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return errnoStatus("socket(AF_UNIX)", errno);
  // The mode is set at bind through the umask: never a moment where others may connect.
  mode_t old = umask(0177);
  int rc = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  int err = errno;
  umask(old);
  if (rc != 0 || ::listen(fd, 16) != 0) {
    if (rc == 0) err = errno;
    ::close(fd);
    return errnoStatus("control socket " + path, err);
  }
  listeners_.push_back(std::make_unique<Listener>(*this, fd, true));
  return loop_.add(fd, EPOLLIN, listeners_.back().get());
}

Status HttpServer::listenTcp(const SocketAddress& address, int* errorCode) {
  int fd = socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    if (errorCode) *errorCode = errno;
    return errnoStatus("socket", errno);
  }
  // The shim's status port binds in a container just starting: see bindListener.
  if (bindListener(fd, address) != 0 || ::listen(fd, 16) != 0) {
    int err = errno;
    ::close(fd);
    if (errorCode) *errorCode = err;
    return errnoStatus("listening on " + address.toString(), err);
  }
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0)
    tcpPort_ = SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss), len).port();
  listeners_.push_back(std::make_unique<Listener>(*this, fd, false));
  return loop_.add(fd, EPOLLIN, listeners_.back().get());
}

void HttpServer::accept(Listener& listener) {
  while (clients_.size() < options_.maxClients) {
    int fd = accept4(listener.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // The client stays queued and the listener stays readable: try again shortly,
        // not at once (that would spin until an fd is freed). Connections being served
        // are untouched.
        if (!retryTimer_) {
          if (!shortageLogged_)
            log::warn("cannot accept a status client; retrying every 100 ms", {{"error", errnoStatus("accept", errno).message()}});
          shortageLogged_ = true;
          retryTimer_ = loop_.addTimer(Millis(100), [this] {
            retryTimer_ = 0;
            resumeAccepting();
          });
        }
        pauseAccepting();
      }
      return;  // EAGAIN: the level-triggered listener tells us when the next one comes
    }
    shortageLogged_ = false;
    auto client = std::make_unique<Client>(*this, fd);
    Client* raw = client.get();
    clients_.emplace(raw, std::move(client));
    if (Status s = raw->start(options_.timeout, options_.requestTimeout); !s) {
      finished(raw);
      continue;
    }
    if (listener.unixSocket && !options_.allowedUids.empty()) {
      ucred cred{};
      socklen_t len = sizeof cred;
      bool allowed = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
                     std::find(options_.allowedUids.begin(), options_.allowedUids.end(), cred.uid) !=
                         options_.allowedUids.end();
      if (!allowed) {
        log::warn("refused a control client", {{"uid", std::to_string(cred.uid)}, {"pid", std::to_string(cred.pid)}});
        raw->answerNow(HttpResponse::text(403, "forbidden\n"));
        continue;
      }
    }
  }
  pauseAccepting();  // full, until a client finishes
}

void HttpServer::pauseAccepting() {
  if (acceptPaused_) return;
  acceptPaused_ = true;
  for (auto& l : listeners_) loop_.remove(l->fd);
}

void HttpServer::resumeAccepting() {
  if (!acceptPaused_ || clients_.size() >= options_.maxClients || retryTimer_) return;
  acceptPaused_ = false;
  for (auto& l : listeners_) (void)loop_.add(l->fd, EPOLLIN, l.get());
}

void HttpServer::finished(Client* client) {
  auto it = clients_.find(client);
  if (it == clients_.end()) return;
  // Its onIo may be on the stack: delete after this batch.
  Client* raw = it->second.release();
  clients_.erase(it);
  loop_.defer([raw] { delete raw; });
  resumeAccepting();
}

}  // namespace connectable
