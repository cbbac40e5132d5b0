// InjectorLock: one injector per Docker daemon endpoint on a host. Two injectors watching
// the same daemon would both inject every labelled container and fight over its ports.
//
// Held as abstract UNIX sockets named after the endpoint, which the kernel releases when
// the process ends, however it ends: no stale lock after a crash or a SIGKILL. A UNIX
// socket endpoint has two names, and another injector holding either one is refused:
//  * where the socket lives: the device and inode of its directory (symlinks resolved) and
//    its file name. Unchanged when dockerd re-creates the socket as it restarts, the same
//    for /var/run/docker.sock and /run/docker.sock, and known before the socket exists.
//  * the socket file's own device and inode, while it exists: the same for a socket file
//    bind-mounted into the injector's container, whose directory is the container's own.
// Both are taken before the daemon is reached. Once it answers, a third name is taken: the
// daemon's own ID (claimDaemon), kept in its data root. It is the same whatever the socket
// file's inode or path, and whether the daemon is reached through a socket or over TCP, so
// it also catches an injector in a container given the socket file alone, started after a
// dockerd restart, beside one started before it (the first holds the old inode).
// Abstract names belong to the network namespace, so the lock covers injectors on the host
// and in containers run with --net=host (the documented way); an injector in a container
// with a network of its own is not seen.
//
// Abstract names carry no permissions: any local user could take the name first. The lock
// is a guard against a mistake, not a security boundary, so a name held by a process that
// is not root with CAP_SYS_ADMIN in our user namespace (as every injector is), or does not
// answer as an injector does, is reported and otherwise ignored: neither a local user nor
// root in a --net=host container run with Docker's default capabilities can keep the
// injector from running.
#pragma once

#include <memory>
#include <string>
#include <vector>

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
  // process with CAP_SYS_ADMIN listening on one of its names) has it.
  static Result<InjectorLock> acquire(const DockerEndpoint& endpoint);
  // Takes the name of the daemon `endpoint` reaches, whose ID is `daemonId`; fails as
  // acquire() does. After answerProbes, its loop answers this name's probes too.
  Status claimDaemon(const std::string& daemonId, const DockerEndpoint& endpoint);

  // Every name of the endpoint is ours.
  bool held() const { return !fds_.empty() && warning_.empty(); }
  // From now on, accepts and closes the connections other injectors' probes leave queued
  // on the lock (each probe leaves one), so the backlog never fills and every later probe
  // still learns who holds it. The loop must not outlive the lock's last use.
  Status answerProbes(EventLoop& loop);
  // Why the lock is not held though acquire() succeeded (a non-root squatter); else empty.
  const std::string& warning() const { return warning_; }

  // The abstract socket names for `endpoint` (without the leading NUL), as described
  // above; one for a tcp:// endpoint. Exposed for tests.
  static std::vector<std::string> namesFor(const DockerEndpoint& endpoint);
  static std::string nameForDaemon(const std::string& daemonId);

 private:
  class ProbeAnswerer;
  // Binds `name`: an error when an injector holds it, a warning when someone else does.
  Status take(const std::string& name, const std::string& what);
  Status answerProbesOn(int fd, EventLoop& loop);
  std::vector<UniqueFd> fds_;  // one per name taken
  std::string warning_;
  std::vector<std::unique_ptr<ProbeAnswerer>> answerers_;  // stay put when the lock moves
  EventLoop* loop_ = nullptr;                              // answering probes, once answerProbes ran
};

}  // namespace connectable
