// InjectorLock: one injector per Docker daemon endpoint on a host. Two injectors watching
// the same daemon would both inject every labelled container and fight over its ports.
//
// Held as an abstract UNIX socket named after the endpoint (for a UNIX socket: its device
// and inode, so a symlinked or bind-mounted path is still the same endpoint), which the
// kernel releases when the process ends, however it ends: no stale lock after a crash or a
// SIGKILL. Abstract names belong to the network namespace, so the lock covers injectors on
// the host and in containers run with --net=host (the documented way); an injector in a
// container with a network of its own is not seen.
//
// Abstract names carry no permissions: any local user could take the name first. The lock
// is a guard against a mistake, not a security boundary, so a name held by a process that
// is not root (or does not answer as an injector does) is reported and otherwise ignored:
// a squatter cannot keep the injector from running.
#pragma once

#include <memory>
#include <string>

#include "common/event_loop.h"
#include "common/status.h"
#include "common/unique_fd.h"
#include "injector/docker_endpoint.h"

namespace connectable {

class InjectorLock {
 public:
  InjectorLock();
  ~InjectorLock();
  InjectorLock(InjectorLock&&) noexcept;
  InjectorLock& operator=(InjectorLock&&) noexcept;

  // Takes the lock for `endpoint`. Fails, naming its pid, when another injector (a root
  // process listening on the name) has it.
  static Result<InjectorLock> acquire(const DockerEndpoint& endpoint);

  bool held() const { return fd_.valid(); }
  // From now on, accepts and closes the connections other injectors' probes leave queued
  // on the lock (each probe leaves one), so the backlog never fills and every later probe
  // still learns who holds it. The loop must not outlive the lock's last use.
  Status answerProbes(EventLoop& loop);
  // Why the lock is not held though acquire() succeeded (a non-root squatter); else empty.
  const std::string& warning() const { return warning_; }

  // The abstract socket name for `endpoint` (without the leading NUL). Exposed for tests.
  static std::string nameFor(const DockerEndpoint& endpoint);

 private:
  class ProbeAnswerer;
  UniqueFd fd_;
  std::string warning_;
  std::unique_ptr<ProbeAnswerer> answerer_;  // stays put when the lock moves
};

}  // namespace connectable
