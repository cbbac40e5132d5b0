#include "common/socket_address.h"

#include <arpa/inet.h>

#include <cstring>
#include <tuple>

namespace connectable {

SocketAddress SocketAddress::ipv4(const in_addr& addr, uint16_t port) {
  SocketAddress a;
  auto* sin = reinterpret_cast<sockaddr_in*>(&a.storage_);
  sin->sin_family = AF_INET;
  sin->sin_addr = addr;
  sin->sin_port = htons(port);
  return a;
}

SocketAddress SocketAddress::ipv6(const in6_addr& addr, uint16_t port) {
  SocketAddress a;
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&a.storage_);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_addr = addr;
  sin6->sin6_port = htons(port);
  return a;
}

SocketAddress SocketAddress::unmapped() const {
  if (family() != AF_INET6) return *this;
  const in6_addr& v6 = reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr;
  if (!IN6_IS_ADDR_V4MAPPED(&v6)) return *this;
  in_addr v4;
  std::memcpy(&v4, v6.s6_addr + 12, 4);
  return ipv4(v4, port());
}

bool SocketAddress::isUnspecified() const {
  if (family() == AF_INET6) return IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr);
  return family() == AF_INET && reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr.s_addr == htonl(INADDR_ANY);
}

bool SocketAddress::isLoopbackV4() const {
  return family() == AF_INET &&
         (ntohl(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr.s_addr) >> 24) == IN_LOOPBACKNET;
}

bool SocketAddress::isLoopbackV6() const {
  return family() == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr);
}

SocketAddress SocketAddress::fromSockaddr(const sockaddr* sa, socklen_t len) {
  SocketAddress a;
  if (sa->sa_family == AF_INET && len >= sizeof(sockaddr_in)) {
    std::memcpy(&a.storage_, sa, sizeof(sockaddr_in));
  } else if (sa->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    std::memcpy(&a.storage_, sa, sizeof(sockaddr_in6));
  }
  return a;
}

std::optional<SocketAddress> SocketAddress::parseIp(std::string_view ip, uint16_t port) {
  if (ip.empty() || ip.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  char buf[INET6_ADDRSTRLEN];
  std::memcpy(buf, ip.data(), ip.size());
  buf[ip.size()] = '\0';
  in_addr v4;
  if (inet_pton(AF_INET, buf, &v4) == 1) return ipv4(v4, port);
  in6_addr v6;
  if (inet_pton(AF_INET6, buf, &v6) == 1) return ipv6(v6, port);
  return std::nullopt;
}

SocketAddress SocketAddress::loopbackV4(uint16_t port) {
  in_addr a;
  a.s_addr = htonl(INADDR_LOOPBACK);
  return ipv4(a, port);
}

SocketAddress SocketAddress::loopbackV6(uint16_t port) { return ipv6(in6addr_loopback, port); }

uint16_t SocketAddress::port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  return 0;
}

void SocketAddress::setPort(uint16_t port) {
  if (family() == AF_INET) reinterpret_cast<sockaddr_in*>(&storage_)->sin_port = htons(port);
  if (family() == AF_INET6) reinterpret_cast<sockaddr_in6*>(&storage_)->sin6_port = htons(port);
}

socklen_t SocketAddress::length() const {
  if (family() == AF_INET) return sizeof(sockaddr_in);
  if (family() == AF_INET6) return sizeof(sockaddr_in6);
  return 0;
}

std::string SocketAddress::ipString() const {
  char buf[INET6_ADDRSTRLEN] = "";
  if (family() == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, buf, sizeof buf);
  } else if (family() == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, buf, sizeof buf);
  }
  return buf;
}

std::string SocketAddress::toString() const {
  if (family() == AF_INET6) return "[" + ipString() + "]:" + std::to_string(port());
  if (family() == AF_INET) return ipString() + ":" + std::to_string(port());
  return "<invalid>";
}

bool SocketAddress::operator==(const SocketAddress& other) const {
  if (family() != other.family()) return false;
  return std::memcmp(&storage_, &other.storage_, length()) == 0;
}

bool SocketAddress::operator<(const SocketAddress& other) const {
  if (family() != other.family()) return family() < other.family();
  return std::memcmp(&storage_, &other.storage_, length()) < 0;
}

}  // namespace connectable
