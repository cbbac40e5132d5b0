#include "common/dns_server_replies.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/dns_message.h"

namespace connectable {
namespace {

constexpr uint8_t kRcodeServFail = 2;
constexpr uint8_t kRcodeNotImp = 4;
constexpr uint8_t kRcodeRefused = 5;

bool transient(int error) { return error == EAGAIN || error == EWOULDBLOCK || error == EINTR; }

}  // namespace

void DnsServerReplies::install(ares_channel channel) {
  static const ares_socket_functions functions = {&openSocket, &closeSocket, &connectSocket, &receive, &sendVector};
  ares_set_socket_functions(channel, &functions, this);
}

// c-ares leaves sockets it did not make itself as they come: they must be non-blocking
// and close-on-exec from the start, and TCP ones without Nagle (a question is one write).
ares_socket_t DnsServerReplies::openSocket(int family, int type, int protocol, void* self) {
  const int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  if (fd < 0) return ARES_SOCKET_BAD;
  if (type == SOCK_STREAM) {
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  static_cast<DnsServerReplies*>(self)->sockets_[fd].udp = type == SOCK_DGRAM;
  return fd;
}

int DnsServerReplies::closeSocket(ares_socket_t fd, void* self) {
  static_cast<DnsServerReplies*>(self)->sockets_.erase(fd);
  return close(fd);
}

int DnsServerReplies::connectSocket(ares_socket_t fd, const sockaddr* address, ares_socklen_t length, void* self) {
  auto* replies = static_cast<DnsServerReplies*>(self);
  replies->sockets_[fd].server = SocketAddress::fromSockaddr(address, length);
  const int rc = connect(fd, address, length);
  if (rc != 0 && errno != EINPROGRESS) {
    const int error = errno;
    replies->noteCallFailed(fd, error);
    errno = error;  // c-ares reads it next
  }
  return rc;
}

ares_ssize_t DnsServerReplies::receive(ares_socket_t fd, void* buffer, size_t length, int flags, sockaddr* from,
                                       ares_socklen_t* fromLength, void* self) {
  auto* replies = static_cast<DnsServerReplies*>(self);
  const ssize_t n = recvfrom(fd, buffer, length, flags, from, fromLength);
  const int error = errno;
  if (n < 0 && !transient(error)) {
    // A UDP socket's "Connection refused" is the ICMP port unreachable of a server with
    // nothing listening; on TCP, a refused or reset connection.
    replies->noteCallFailed(fd, error);
  } else if (n > 0) {
    // TCP answers arrive in pieces (length, then body); they are rare (truncated UDP
    // answers) and are left out. A connected UDP socket hears only its server.
    auto it = replies->sockets_.find(fd);
    if (it != replies->sockets_.end() && it->second.udp)
      replies->noteDatagram(it->second.server, static_cast<const unsigned char*>(buffer), static_cast<size_t>(n));
  }
  errno = error;
  return n;
}

ares_ssize_t DnsServerReplies::sendVector(ares_socket_t fd, const iovec* parts, int count, void* self) {
  auto* replies = static_cast<DnsServerReplies*>(self);
  // c-ares 1.18 sends a UDP question whole, in one part (ares_process.c, socket_write).
  auto it = replies->sockets_.find(fd);
  if (it != replies->sockets_.end() && it->second.udp && count > 0)
    replies->noteQuestionSent(static_cast<const unsigned char*>(parts[0].iov_base), parts[0].iov_len);
  const ssize_t n = writev(fd, parts, count);
  if (n < 0 && !transient(errno)) {
    const int error = errno;
    replies->noteCallFailed(fd, error);
    errno = error;
  }
  return n;
}

void DnsServerReplies::noteCallFailed(int fd, int error) {
  auto it = sockets_.find(fd);
  if (it == sockets_.end()) return;
  noteSocketError(it->second.server, error, Clock::now());
}

void DnsServerReplies::forget(uint16_t id) {
  asked_.erase(id);
  errorAnswers_.erase(id);
}

void DnsServerReplies::noteQuestionSent(const unsigned char* data, size_t length) {
  if (length < 2) return;
  asked_.insert(static_cast<uint16_t>((data[0] << 8) | data[1]));
}

void DnsServerReplies::noteDatagram(const SocketAddress& server, const unsigned char* data, size_t length) {
  if (length < 4) return;
  const bool isAnswer = (data[2] & 0x80) != 0;
  const auto rcode = static_cast<uint8_t>(data[3] & 0x0f);
  if (!isAnswer || (rcode != kRcodeServFail && rcode != kRcodeNotImp && rcode != kRcodeRefused)) return;
  const auto id = static_cast<uint16_t>((data[0] << 8) | data[1]);
  if (asked_.count(id) == 0) return;
  // One per server, its latest: a question goes to each server once per round, and a
  // flood of answers, forged or repeated, must neither grow this nor hide another server's.
  auto& answers = errorAnswers_[id];
  for (ErrorAnswer& a : answers) {
    if (a.server == server) {
      a.rcode = rcode;
      return;
    }
  }
  answers.push_back({server, rcode});
}

void DnsServerReplies::noteSocketError(const SocketAddress& server, int error, Clock::time_point when) {
  socketErrors_[server] = {error, when};
}

std::string DnsServerReplies::describe(uint16_t id, Clock::time_point sentAt) const {
  const auto answered = errorAnswers_.find(id);
  std::string out;
  bool heard = false;
  for (const SocketAddress& server : servers_) {
    std::string clause;
    if (answered != errorAnswers_.end()) {
      for (const ErrorAnswer& a : answered->second)
        if (a.server == server) clause = server.toString() + " answered " + dns::rcodeName(a.rcode);
    }
    if (clause.empty()) {
      auto e = socketErrors_.find(server);
      if (e != socketErrors_.end() && e->second.when >= sentAt)
        clause = server.toString() + " unreachable: " + std::strerror(e->second.error);
    }
    if (clause.empty()) {
      clause = server.toString() + " did not answer";
    } else {
      heard = true;
    }
    if (!out.empty()) out += "; ";
    out += clause;
  }
  return heard ? out : std::string();
}

}  // namespace connectable
