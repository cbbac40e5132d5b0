// How the shim opens a socket to a backend and reads how its connect went: one way for a
// client's connection (Connection) and a health probe (HealthProbes), so that a probe
// tests what a client's connect would meet. Both are made in the namespace the shim runs
// in once set up, with no source address of their own.
// Plain functions over fds; thread-safe.
#pragma once

#include <sys/socket.h>

#include <cerrno>

#include "common/socket_address.h"

namespace connectable {

// A non-blocking TCP socket for `to`'s family; -1 and errno set on failure.
inline int upstreamSocket(const SocketAddress& to) {
  return socket(to.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

// socket() failed for want of fds or kernel memory: not the backend's fault, and no other
// backend would fare better. Tried again shortly.
inline bool outOfDescriptors(int err) { return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM; }

// The error pending on a socket (SO_ERROR), 0 when none: a failed connect, a reset.
inline int pendingError(int fd) {
  int err = 0;
  socklen_t length = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &length) != 0) return 0;
  return err;
}

// Why a connect that epoll reported with EPOLLERR or EPOLLHUP failed: its pending error,
// or a refusal when the socket has none left to say (a reset already read).
inline int failedConnectError(int fd) {
  const int err = pendingError(fd);
  return err != 0 ? err : ECONNREFUSED;
}

}  // namespace connectable
