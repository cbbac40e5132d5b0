// ProcessHandle: a process pinned by a pidfd, so later checks and signals reach that very
// process even if its pid is reused. Also finds a container's init early, through its
// cgroup, before Docker reports the container started.
// Plain owning values; use from one thread.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "common/netns.h"
#include "common/status.h"
#include "common/unique_fd.h"

namespace connectable {

class ProcessHandle {
 public:
  ProcessHandle() = default;

  static Result<ProcessHandle> open(pid_t pid);

  pid_t pid() const { return pid_; }
  int fd() const { return fd_.get(); }
  bool valid() const { return fd_.valid(); }
  bool alive() const;  // false once the process has exited
  Status signal(int signo) const;
  // The process's network namespace, opened through /proc and checked against the pidfd
  // afterwards: if the process died meanwhile, the pid could name someone else.
  Result<NetnsFd> openNetns() const;
  // Its /proc/PID/cgroup names the container (by its full id: false for anything else), and
  // it is still this process after reading it: a pid read from Docker or from a cgroup,
  // then pinned, may have been reused by then.
  bool inContainer(const std::string& containerId) const;
  void reset() { fd_.reset(); }

 private:
  pid_t pid_ = 0;
  UniqueFd fd_;
};

// Start time of a process in clock ticks since boot (/proc/PID/stat field 22): with the
// pid, it identifies one process across restarts of the injector.
Result<unsigned long long> processStartTime(pid_t pid);
// `pid` is still the process that started at `startTime`, not one given its pid since.
bool sameProcess(pid_t pid, unsigned long long startTime);
std::string processComm(pid_t pid);
// Its arguments after argv[0], from /proc/PID/cmdline; empty when it cannot be read.
std::vector<std::string> processArguments(pid_t pid);

// Its pid in each pid namespace it is in, outermost first (NSpid of /proc/PID/status):
// one entry when it shares ours. Empty when it cannot be read.
std::vector<pid_t> namespacePids(pid_t pid);

// Where Docker puts a container's cgroup, for the cgroupfs and systemd drivers, v1 and v2.
std::vector<std::string> containerCgroupProcsPaths(const std::string& containerId);

// The container's init process once it is in its own network namespace: runc's
// "runc:[2:INIT]" (or the app it became), never the transient "runc:[1:CHILD]", nor a
// process started in the container later (docker exec), which is not pid 1 in its pid
// namespace.
// Returns nothing (not an error) while it is not there yet, or for what is not a full id.
struct EarlyInit {
  ProcessHandle process;
  NetnsFd netns;
  unsigned long netnsInode = 0;
};
std::optional<EarlyInit> findContainerInit(const std::string& containerId, unsigned long hostNetnsInode);

}  // namespace connectable
