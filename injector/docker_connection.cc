#include "injector/docker_connection.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <Poco/Exception.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>

#include <chrono>
#include <exception>

#include "injector/docker_json.h"

namespace connectable {
namespace {

Poco::Timespan toTimespan(std::chrono::milliseconds ms) {
  return Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(ms.count()) * 1000);
}

// The request line names a host; dockerd ignores it, so say what it is.
constexpr const char* kHostHeader = "docker";

}  // namespace

// POCO 1.11 cannot dial a UNIX socket from an HTTPClientSession, so connect() is replaced
// for both kinds. It ignores POCO's address (always 127.0.0.1:80, so POCO never resolves a
// name) and skips HTTPSession::connect, whose TCP_NODELAY fails on AF_UNIX.
class DockerConnection::Session : public Poco::Net::HTTPClientSession {
 public:
  Session(DockerConnection& owner, DockerEndpoint endpoint, Timeouts timeouts)
      : HTTPClientSession("127.0.0.1", HTTP_PORT), owner_(owner), endpoint_(std::move(endpoint)),
        timeouts_(timeouts) {
    setKeepAlive(true);
  }

 protected:
  void connect(const Poco::Net::SocketAddress& /*ignored*/) override {
    Poco::Net::StreamSocket socket;
    if (endpoint_.kind == DockerEndpoint::Kind::Unix) {
      Poco::Net::SocketAddress address(Poco::Net::SocketAddress::UNIX_LOCAL, endpoint_.path);
      socket = Poco::Net::StreamSocket(Poco::Net::SocketAddress::UNIX_LOCAL);
      socket.connect(address, toTimespan(timeouts_.connect));
    } else {
      Poco::Net::SocketAddress address(endpoint_.host, endpoint_.port);
      socket.connect(address, toTimespan(timeouts_.connect));
      socket.setNoDelay(true);
      socket.setKeepAlive(true);  // the event stream is idle for long; notice a dead peer
      socket.setOption(IPPROTO_TCP, TCP_KEEPIDLE, static_cast<int>(timeouts_.keepAlive.idle.count()));
      socket.setOption(IPPROTO_TCP, TCP_KEEPINTVL, static_cast<int>(timeouts_.keepAlive.interval.count()));
      socket.setOption(IPPROTO_TCP, TCP_KEEPCNT, timeouts_.keepAlive.count);
    }
    // Zero means no SO_RCVTIMEO: the event stream may be silent for hours.
    socket.setReceiveTimeout(toTimespan(timeouts_.io));
    socket.setSendTimeout(toTimespan(timeouts_.io.count() > 0 ? timeouts_.io : timeouts_.connect));
    attachSocket(socket);
    // POCO also comes here on its own, to send again after a write to a kept-alive
    // connection failed: a socket made then must be cut by shutdown() and interrupt() too.
    owner_.rememberFd();
  }

 private:
  DockerConnection& owner_;
  DockerEndpoint endpoint_;
  Timeouts timeouts_;
};

DockerConnection::DockerConnection(DockerEndpoint endpoint, Timeouts timeouts)
    : endpoint_(std::move(endpoint)), timeouts_(timeouts) {}

DockerConnection::~DockerConnection() { close(); }

void DockerConnection::rememberFd() {
  std::lock_guard<std::mutex> lock(fdMutex_);
  fd_ = session_ && session_->connected() ? session_->socket().impl()->sockfd() : -1;
  if ((shutdown_ || interrupted_) && fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
}

void DockerConnection::interrupt() {
  std::lock_guard<std::mutex> lock(fdMutex_);
  interrupted_ = true;
  if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
}

void DockerConnection::clearInterrupt() {
  std::lock_guard<std::mutex> lock(fdMutex_);
  interrupted_ = false;
}

void DockerConnection::shutdown() {
  std::lock_guard<std::mutex> lock(fdMutex_);
  shutdown_ = true;
  if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
}

void DockerConnection::close() {
  {
    std::lock_guard<std::mutex> lock(fdMutex_);
    fd_ = -1;
  }
  session_.reset();
}

Result<int> DockerConnection::openStream(const std::string& pathAndQuery, std::istream** body) {
  auto where = [&] { return "GET " + pathAndQuery + " on " + endpoint_.toString(); };
  try {
    if (!session_) session_ = std::make_unique<Session>(*this, endpoint_, timeouts_);
    Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET, pathAndQuery,
                                   Poco::Net::HTTPMessage::HTTP_1_1);
    request.setHost(kHostHeader);
    request.setKeepAlive(true);
    session_->sendRequest(request);
    rememberFd();
    Poco::Net::HTTPResponse response;
    *body = &session_->receiveResponse(response);
    return static_cast<int>(response.getStatus());
  } catch (const Poco::Exception& e) {
    close();
    return Status::error(where() + ": " + e.displayText());
  } catch (const std::exception& e) {
    close();
    return Status::error(where() + ": " + e.what());
  }
}

Result<DockerConnection::Reply> DockerConnection::get(const std::string& pathAndQuery) {
  // A kept-alive connection the daemon closed in the meantime fails at once; retry on a
  // new one. Not after a failure that took a while (a timeout): that would only double it.
  const auto started = std::chrono::steady_clock::now();
  for (int attempt = 0;; ++attempt) {
    std::istream* body = nullptr;
    auto status = openStream(pathAndQuery, &body);
    if (!status) {
      if (attempt == 0 && std::chrono::steady_clock::now() - started < std::chrono::milliseconds(500)) continue;
      return status.status();
    }
    Reply reply;
    reply.status = *status;
    const size_t limit = reply.status >= 200 && reply.status < 300 ? kMaxReplyBytes : kMaxErrorBodyBytes;
    try {
      if (!readAtMost(*body, limit, &reply.body)) {
        close();
        if (limit == kMaxErrorBodyBytes) return reply;  // enough of it for its message
        return Status::error("GET " + pathAndQuery + ": reply longer than " + std::to_string(limit >> 20) + " MiB");
      }
      if (body->bad()) throw Poco::IOException("reading the reply body failed");
      std::lock_guard<std::mutex> lock(fdMutex_);
      // Cut short, the body just ends early: do not let it pass for a whole one.
      if (interrupted_) throw Poco::IOException("interrupted: the reply took too long");
    } catch (const Poco::Exception& e) {
      close();
      return Status::error("GET " + pathAndQuery + ": reading reply: " + e.displayText());
    }
    return reply;
  }
}

bool readAtMost(std::istream& in, size_t limit, std::string* out) {
  out->clear();
  char buf[16384];
  while (in.read(buf, sizeof buf), in.gcount() > 0) {
    const auto n = static_cast<size_t>(in.gcount());
    if (out->size() + n > limit) {
      out->append(buf, limit - out->size());
      return false;
    }
    out->append(buf, n);
  }
  return true;
}

std::string dockerErrorMessage(const std::string& body) {
  auto obj = docker_json::parseObject(body);
  std::string message;
  if (obj && docker_json::readString(*obj, "message", &message, docker_json::Need::Required)) {
    return message;
  }
  std::string text = body.substr(0, 200);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

}  // namespace connectable
