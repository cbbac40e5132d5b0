// Binding a listener to 127.0.0.1 of a namespace whose loopback may be coming up as it
// happens. Plain function over an fd; thread-safe.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include "common/socket_address.h"

namespace connectable {

// Lets `fd` bind an address of 127.0.0.0/8 whatever state the namespace's `lo` is in at
// that moment. Linux takes that bind while `lo` is down and once it is up, but refuses it
// (EADDRNOTAVAIL) for a moment while `lo` is being brought up: a thread binding in a loop
// met that in 113-157 of 200 fresh namespaces while `ip link set lo up` ran. runc brings
// `lo` up as a container starts, which is when the injector's early path starts the
// container's shim: one shim in about 900 died of it in bench/inject, and was restarted.
// IP_FREEBIND takes the address in any state, and connections reach the socket once `lo`
// is up, as they would have. Other addresses are left alone: a mistyped one must fail.
inline void bindAsLoopbackComesUp(int fd, const SocketAddress& address) {
  if (!address.isLoopbackV4()) return;
  int one = 1;
  setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof one);
}

}  // namespace connectable
