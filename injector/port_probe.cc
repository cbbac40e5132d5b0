#include "injector/port_probe.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include "common/listener_bind.h"
#include "common/socket_address.h"

namespace connectable {
namespace {

// As the shim's listener would: EADDRINUSE means taken; any other failure of ::1 means the
// namespace has no IPv6 loopback, which the shim serves without.
Result<bool> taken(const SocketAddress& address) {
  int fd = socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errnoStatus("socket", errno);
  const int err = bindListener(fd, address) == 0 ? 0 : errno;
  ::close(fd);
  if (err == EADDRINUSE) return true;
  if (err != 0 && address.family() == AF_INET) return errnoStatus("binding " + address.toString(), err);
  return false;
}

}  // namespace

Result<std::vector<uint16_t>> takenLoopbackPorts(const NetnsFd& netns, const std::vector<uint16_t>& ports) {
  Result<std::vector<uint16_t>> result = Status::error("not checked");
  // A thread of its own: setns changes the calling thread only, and this one ends with the
  // check, so no other socket of the injector is ever made inside a container.
  std::thread check([&] {
    auto here = NetnsFd::current();
    auto hereInode = here ? here->inode() : Result<unsigned long>(here.status());
    auto thereInode = netns.inode();
    if (!thereInode) {
      result = thereInode.status();
      return;
    }
    if (!hereInode || *hereInode != *thereInode) {
      if (Status s = enterNetns(netns); !s) {
        result = s;
        return;
      }
    }
    std::vector<uint16_t> held;
    for (uint16_t port : ports) {
      for (const SocketAddress& address : {SocketAddress::loopbackV4(port), SocketAddress::loopbackV6(port)}) {
        auto t = taken(address);
        if (!t) {
          result = t.status();
          return;
        }
        if (*t) {
          held.push_back(port);
          break;
        }
      }
    }
    result = std::move(held);
  });
  check.join();
  return result;
}

}  // namespace connectable
