// StateDirLock: one injector per --state-dir. The state dir holds the records of the shims
// an injector runs, which a restarted injector adopts, and which it stops when their
// containers are not in its daemon's list. Two injectors sharing one (two dockerds on a
// host, the second injector's unit copied with only --docker changed) would each adopt the
// other's shims and stop them as "container not running": the daemon lock (InjectorLock)
// cannot see that, since the daemons differ.
//
// An flock on <state-dir>/injector.lock, which the kernel drops when the process ends,
// however it ends: no stale lock after a crash. The file holds the holder's pid, for the
// error the next one gets. `connectable status` probes it (heldByAnInjector) to tell whether
// anyone keeps the records up to date; the probe holds a shared lock for a moment, which
// acquire() waits out.
#pragma once

#include <string>

#include "common/status.h"
#include "common/unique_fd.h"

namespace connectable {

class StateDirLock {
 public:
  StateDirLock() = default;

  // Takes the lock of `stateDir`, an existing directory. Fails, naming the holder's pid,
  // when another injector holds it.
  static Result<StateDirLock> acquire(const std::string& stateDir);

  bool held() const { return fd_.valid(); }

  // Whether an injector holds the lock of `stateDir` now, without talking to it: false when
  // none does (or none ever ran with it since boot), an error when we cannot tell (the
  // lock file is not ours to open).
  static Result<bool> heldByAnInjector(const std::string& stateDir);

 private:
  explicit StateDirLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace connectable
