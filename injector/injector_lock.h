// InjectorLock: one injector per Docker daemon endpoint on a host. Two injectors watching
// the same daemon would both inject every labelled container and fight over its ports.
//
// Held as an abstract UNIX socket named after the endpoint (for a UNIX socket: its device
// and inode, so a symlinked or bind-mounted path is still the same endpoint), which the
// kernel releases when the process ends, however it ends: no stale lock after a crash or a
// SIGKILL. Abstract names belong to the network namespace, so the lock covers injectors on
// the host and in containers run with --net=host (the documented way); an injector in a
// container with a network of its own is not seen.
#pragma once

#include <string>

#include "common/status.h"
#include "common/unique_fd.h"
#include "injector/docker_endpoint.h"

namespace connectable {

class InjectorLock {
 public:
  InjectorLock() = default;

  // Takes the lock for `endpoint`. Fails, naming the holder's pid where it can, when
  // another injector has it.
  static Result<InjectorLock> acquire(const DockerEndpoint& endpoint);

  // The abstract socket name for `endpoint` (without the leading NUL). Exposed for tests.
  static std::string nameFor(const DockerEndpoint& endpoint);

 private:
  UniqueFd fd_;
};

}  // namespace connectable
