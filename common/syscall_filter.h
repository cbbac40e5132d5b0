// SyscallFilter: the system calls a running shim may make, enforced by the kernel (seccomp).
//
// Why: a shim parses whatever its clients, its backends and DNS servers send, and one runs
// beside every labelled container. Once it listens it has already dropped every privilege;
// what remains is what any process of its user may ask of the kernel. A proxy needs little
// of that: TCP and UDP sockets, epoll, its io_uring, memory, the clock. With the filter, a
// shim taken over through a bug cannot run a program, open or stat a file, make any other socket
// (raw, packet, netlink, crypto, SCTP, MPTCP, ...), map executable memory, start a thread
// or process, trace or signal another process, or reach the kernel's rarer interfaces
// (bpf, keyrings, ...), which is where local privilege escalations tend to be found.
//
// A call outside the list does not kill the shim: every connection it carries would go with
// it, for what may be a new C library needing a call we did not foresee. The call fails
// with ENOSYS (which is what makes a C library fall back to an older call), and each call
// number refused is reported once, through the event loop, to the log and the status.
// Only a call made with another architecture's convention (int 0x80, x32), which no code
// of ours makes, ends the process at once; so does a refused call made while SIGSYS is
// blocked, which the kernel then delivers as fatal: glibc blocks every signal around the
// clone of pthread_create and posix_spawn, so starting a thread or a process ends a shim.
//
// Operations queued in an io_uring are not system calls and never meet the filter: the
// ring is restricted to the proxy's own operations instead (IoRing::create).
#pragma once

#include <functional>
#include <memory>

#include "common/event_loop.h"
#include "common/status.h"

namespace connectable {

class SyscallFilter : public IoHandler {
 public:
  // Called once per call number refused, on the loop's thread, after the call failed.
  using OnRefused = std::function<void(long number)>;

  // Confines the calling thread, and any process it would start, for good. An error where
  // the kernel has no seccomp filters or the architecture is not one we know the calls of
  // (x86-64, arm64): the caller decides whether to go on unconfined.
  // REQUIRES: the process is single-threaded; called once; `loop` outlives the filter.
  static Result<std::unique_ptr<SyscallFilter>> install(EventLoop& loop, OnRefused onRefused);

  ~SyscallFilter() override;
  void onIo(uint32_t events) override;

 private:
  void reportNew();  // calls onRefused_ for each number refused and not reported yet
  SyscallFilter(EventLoop& loop, int eventFd, OnRefused onRefused);
  EventLoop& loop_;
  int eventFd_;
  OnRefused onRefused_;
};

}  // namespace connectable
