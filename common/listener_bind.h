// How a listener of ours binds: the shim's data and status ports, the injector's metrics,
// and the injector's check of whether a shim's ports are free, which must bind as the shim
// does. Plain functions over an fd; thread-safe.
#pragma once

#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cstring>

#include "common/socket_address.h"

namespace connectable {

// Whether the `lo` of the namespace `fd` was made in is down (a fresh namespace's is).
inline bool loopbackIsDown(int fd) {
  ifreq request{};
  std::strncpy(request.ifr_name, "lo", IFNAMSIZ - 1);
  return ioctl(fd, SIOCGIFFLAGS, &request) == 0 && !(request.ifr_flags & IFF_UP);
}

// Lets `fd` bind its loopback address whatever state the namespace's `lo` is in at that
// moment. runc brings `lo` up as a container starts, which is when the injector's early
// path starts the container's shim.
// - 127.0.0.0/8: Linux takes the bind while `lo` is down and once it is up, but refuses it
//   (EADDRNOTAVAIL) for a moment while `lo` is being brought up: a thread binding in a loop
//   met that in 113-157 of 200 fresh namespaces while `ip link set lo up` ran, and 2 of
//   about 1,900 shims in bench/inject died of it (restarted 100 ms later).
// - ::1 exists only once `lo` is up, so a shim that bound before had no IPv6 listener in a
//   container that has IPv6, and a client that takes "localhost" for ::1 alone was refused.
//   With `lo` down, nothing tells yet whether the namespace will have IPv6: the listener is
//   made anyway, and is never reached where it will not. With `lo` up and no ::1, there is
//   no IPv6 there: the bind fails, as it must.
// IP_FREEBIND and IPV6_FREEBIND take the address in any state, and connections reach the
// socket once `lo` has it. Other addresses are left alone: a mistyped one must fail.
inline void bindAsLoopbackComesUp(int fd, const SocketAddress& address) {
  int one = 1;
  if (address.isLoopbackV4()) {
    setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof one);
  } else if (address.isLoopbackV6() && loopbackIsDown(fd)) {
    setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof one);
  }
}

// Binds `fd` as every listener of ours: SO_REUSEADDR (a port held only by connections in
// TIME_WAIT is free), IPv6 only for an IPv6 address (127.0.0.1 and ::1 are two listeners),
// and a loopback address whatever state `lo` is in. bind()'s result, errno set on failure.
inline int bindListener(int fd, const SocketAddress& address) {
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (address.family() == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  bindAsLoopbackComesUp(fd, address);
  return bind(fd, address.sockaddr_ptr(), address.length());
}

}  // namespace connectable
