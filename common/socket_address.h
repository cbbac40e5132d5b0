// SocketAddress: an IPv4 or IPv6 address with a port, as the kernel takes it.
// A plain value: copy freely; no thread-safety concerns.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace connectable {

class SocketAddress {
 public:
  SocketAddress() = default;
  static SocketAddress ipv4(const in_addr& addr, uint16_t port);
  static SocketAddress ipv6(const in6_addr& addr, uint16_t port);
  static SocketAddress fromSockaddr(const sockaddr* sa, socklen_t len);
  // A literal address only ("198.18.0.5", "fd00::5"): never a lookup.
  static std::optional<SocketAddress> parseIp(std::string_view ip, uint16_t port);
  static SocketAddress loopbackV4(uint16_t port);
  static SocketAddress loopbackV6(uint16_t port);

  // The IPv4 address an IPv4-mapped IPv6 one (::ffff:198.18.0.5) carries, with the same
  // port: the same destination, written as the kernel and a reader take it. Any other as is.
  SocketAddress unmapped() const;

  // 0.0.0.0 or ::, which connect() takes for the local host.
  bool isUnspecified() const;
  // 127.0.0.0/8.
  bool isLoopbackV4() const;
  // ::1.
  bool isLoopbackV6() const;

  int family() const { return storage_.ss_family; }
  bool valid() const { return family() == AF_INET || family() == AF_INET6; }
  uint16_t port() const;
  void setPort(uint16_t port);
  const sockaddr* sockaddr_ptr() const { return reinterpret_cast<const sockaddr*>(&storage_); }
  socklen_t length() const;

  std::string ipString() const;  // "198.18.0.5", "fd00::5"
  std::string toString() const;  // "198.18.0.5:6379", "[fd00::5]:6379"

  bool operator==(const SocketAddress& other) const;
  bool operator!=(const SocketAddress& other) const { return !(*this == other); }
  bool operator<(const SocketAddress& other) const;

 private:
  sockaddr_storage storage_{};
};

}  // namespace connectable
