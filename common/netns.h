// Network namespaces: open one by path, and run code with sockets created inside it.
// A socket belongs to the namespace current when it was created, so the shim enters the
// target namespace only to create its listeners. setns changes the calling thread only:
// call these before any other thread exists.
#pragma once

#include <string>

#include "common/status.h"
#include "common/unique_fd.h"

namespace connectable {

// An owned fd of a network namespace (from /proc/PID/ns/net, /var/run/netns/NAME, or inherited).
class NetnsFd {
 public:
  NetnsFd() = default;
  explicit NetnsFd(int fd) : fd_(fd) {}

  static Result<NetnsFd> open(const std::string& path);
  static Result<NetnsFd> current();  // the calling thread's namespace
  // Adopts an inherited fd after checking that it really is a network namespace.
  static Result<NetnsFd> adopt(int fd);

  int fd() const { return fd_.get(); }
  bool valid() const { return fd_.valid(); }
  void reset() { fd_.reset(); }
  // Inode of the namespace: two fds name the same namespace iff their inodes are equal.
  Result<unsigned long> inode() const;

 private:
  UniqueFd fd_;
};

// Switches the calling thread into `target`.
Status enterNetns(const NetnsFd& target);

}  // namespace connectable
