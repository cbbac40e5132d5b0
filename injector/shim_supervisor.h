// ShimSupervisor: one connectable-shim process per container. Spawns it with the
// container's network namespace and init pidfd as inherited fds, restarts it with back-off
// when it dies on its own, stops it when the container dies, and records it in the state
// dir so a restarted injector adopts it instead of starting a second one. Each shim answers
// status and metrics on <state-dir>/shims/<container-id>.sock (root only).
// Runs on the injector's event loop thread; not thread-safe.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/event_loop.h"
#include "common/netns.h"
#include "injector/label_parser.h"
#include "injector/process_handle.h"
#include "injector/state_dir_lock.h"
#include "shim/shim_options.h"

namespace connectable {

// <state-dir>/shims/<64 hex>.sock must fit a UNIX socket address.
inline constexpr size_t kMaxStateDir = kMaxControlPath - 76;

struct SupervisorOptions {
  std::string shimPath;                 // the connectable-shim binary
  std::string stateDir = "/run/connectable";
  std::vector<std::string> shimArgs;    // for every shim (--dns, --balance, log options)
  Millis stopGrace{5000};               // SIGTERM, then SIGKILL after this (and the shim's
                                        // drain timeout, while its container runs)
  Millis restartMin{100};
  Millis restartMax{10000};
  // A shim started again after a port was taken in its container serves once it has run
  // this long (it exits at once when the port is still taken).
  Millis portFreeAfter{1000};
  // With a count, each container's shim runs as a uid of its own from [shimUidFirst,
  // shimUidFirst + shimUidCount) (--shim-uids), so that no shim can signal, renice or limit
  // another; without, every shim runs as shimArgs' --user.
  uint32_t shimUidFirst = 0;
  uint32_t shimUidCount = 0;
};

struct ShimInfo {
  std::string containerId;
  std::string containerName;
  pid_t shimPid = 0;  // 0 while none runs: between its death and the next start
  std::string notRunning;  // then: why none runs (it crashed, a port is taken...)
  int64_t nextStart = 0;   // and when the next try is due, in Unix time
  // Tries in a row that found a port of it still taken inside the container: not restarts.
  uint32_t portRetries = 0;
  pid_t initPid = 0;
  unsigned long netnsInode = 0;
  std::string ports;       // "6000,7000"
  std::string control;     // the shim's control socket
  uint32_t restarts = 0;   // started again after it died (not counting port retries)
  bool adopted = false;
  Clock::time_point since;
};

// One record of the state dir, <state-dir>/shims/<container id>.json: what writeState
// writes, adopt() re-adopts from and `connectable status` lists.
struct ShimRecord {
  ShimInfo info;  // all but control, adopted and since, which are the supervisor's
  unsigned long long shimStartTime = 0;
  unsigned long long initStartTime = 0;
  std::vector<std::string> args;
};

// Replaces the file at `path` with `text`, whole: a reader, or a crash, sees the old file or
// the new one, never half of one.
Status replaceStateFile(const std::string& path, const std::string& text);

// The state dir and each directory in it must be a real one (no symlink), ours, and
// writable by nobody else: as root, adopt() runs what its records say.
Status checkPrivateDir(const std::string& path);

// A record's text, as writeState writes it, and the record that text says. Pure functions.
std::string shimRecordText(const ShimRecord& record);
Result<ShimRecord> parseShimRecord(const std::string& text);
// Reads and parses the record at `path`; an error for a missing or malformed one.
Result<ShimRecord> readShimRecord(const std::string& path);
// The record files (*.json) in <stateDir>/shims; an error when it cannot be read.
Result<std::vector<std::string>> shimRecordFiles(const std::string& stateDir);

// The shim the record names still runs: the same pid, start time and arguments as when it
// was started (whatever the shim program is called: --shim may name any file). What
// adopt() requires of a shim before it adopts it; false for a record of no shim (pid 0).
bool recordedShimRuns(const ShimRecord& record);

class ShimSupervisor {
 public:
  ShimSupervisor(EventLoop& loop, SupervisorOptions options);
  // Leaves the shims serving (a restarted injector re-adopts them), but kills the replaced
  // ones still exiting: nothing would reap or find them after us.
  ~ShimSupervisor();
  ShimSupervisor(const ShimSupervisor&) = delete;
  ShimSupervisor& operator=(const ShimSupervisor&) = delete;

  // Creates <state-dir>/shims, and takes the state dir for this injector alone (StateDirLock).
  Status init();

  // Runs a shim for the container unless one already serves the same namespace and init.
  // A shim for an older namespace of the container (it restarted) is replaced. An error when
  // it gave up on starting one; a failed fork is retried later, and no error.
  Status ensure(const std::string& containerId, const std::string& containerName,
                const ContainerRequest& request, ProcessHandle init, NetnsFd netns);
  void stop(const std::string& containerId, const std::string& reason);
  // Whether a shim for `request` would take its command line, as ensure() checks it: the
  // host's options and the container's labels are each fine alone, but not every pair is.
  // A container refused here is refused however long one waits.
  Status checkArguments(const std::string& containerId, const std::string& containerName,
                        const ContainerRequest& request) const;
  // Compares the options the container's running shim was started with to those it would
  // be started with now, for optionsDrift; leaves the shim as it is (a restart would cut
  // its connections). Only a shim adopted from an injector started with other options
  // differs: a container's labels never change. ensure() compares too.
  void checkOptions(const std::string& containerId, const std::string& containerName, const ContainerRequest& request);
  // How they differed at the last comparison, as the shim reads its options (the last value
  // of an option given twice applies; log options left out, and with --shim-uids a uid in
  // its range): "started with
  // --dns-min-ttl=100ms, would now get --dns-min-ttl=1s". Empty when they did not, or no
  // shim serves.
  std::string optionsDrift(const std::string& containerId) const;
  // The container's new name (docker rename): in the list and the record now, in the shim's
  // own log lines from its next start (the running one's arguments are how it is adopted).
  void rename(const std::string& containerId, const std::string& containerName);
  void stopAll();

  // Re-adopts the shims recorded in the state dir that still run (same pid and start time,
  // same container init); forgets the others, and stops the shims of this state dir that
  // run with no readable record. Returns the ids of adopted containers.
  std::vector<std::string> adopt();

  bool serves(const std::string& containerId) const;
  // Serves it, and the container's init (pinned by pidfd, checked by start time) still runs.
  bool servesLiveInit(const std::string& containerId) const;
  // The init pid the container's shim watches, 0 if none.
  pid_t initPidOf(const std::string& containerId) const;
  // The container's name as its shim's record has it, empty if none.
  std::string containerNameOf(const std::string& containerId) const;
  std::vector<ShimInfo> list() const;
  // No shim left at all, counting the replaced ones still exiting: what to wait for after
  // stopAll.
  bool allGone() const { return shims_.empty() && retired_.empty(); }
  // Told why a container is left without a shim after its shim died and was given up for
  // good (the program cannot run, it refused its arguments, a restart cannot be made). One
  // retried (after a crash, or slowly while a port is taken inside the container) is not
  // given up: its record says why it is not running meanwhile.
  void onNotServing(std::function<void(const std::string& containerId, const std::string& why)> cb) {
    onNotServing_ = std::move(cb);
  }
  uint64_t restartsTotal() const { return restartsTotal_; }
  // With --shim-uids: whether a new shim for the container would get a uid now.
  bool hasUidFor(const std::string& containerId) const;
  // Told each time a shim is gone for good, and its uid with it. Must not call back into
  // the supervisor: it may be in the middle of ensure() or stop().
  void onShimGone(std::function<void()> cb) { onShimGone_ = std::move(cb); }

 private:
  struct Managed;
  // An error when it gave up on the shim for good (and forgot it); ok when the shim runs or
  // a restart is scheduled.
  Status spawn(Managed& m);
  void onShimExit(Managed& m);
  // Records that none runs, and why, until the next try.
  void scheduleRestart(Managed& m, const std::string& why);
  // Whether every port of the shim is still taken inside its container (with one free, it
  // serves that one), checked without starting it; false when that cannot be checked.
  bool stillTaken(Managed& m);
  // SIGTERM to every running shim of this state dir that is not one of shims_: its record
  // was unreadable or removed, and it would hold its container's ports unwatched.
  void stopUnrecordedShims();
  void writeState(const Managed& m);
  void removeState(const std::string& containerId);
  void forget(const std::string& containerId);
  void retire(const std::string& containerId);
  void dropRetired(Managed& m);
  // Out of every list already: stops watching it and deletes it after this loop turn.
  void dispose(std::unique_ptr<Managed> m);
  void unwatch(Managed& m);
  // The uid for a new shim of the container: the one its predecessor had, else the lowest
  // that no shim (running, exiting or adopted) has.
  Result<uint32_t> uidFor(const std::string& containerId) const;
  std::string statePath(const std::string& containerId) const;
  std::string controlPath(const std::string& containerId) const;
  // ShimSupervisor::optionsDrift of a shim started with `running`, where `wanted` is what
  // argumentsFor gives now.
  std::string driftOf(const std::vector<std::string>& running, const std::vector<std::string>& wanted) const;
  // A shim's arguments for the container but --user (which ensure() adds), after argv[0].
  std::vector<std::string> argumentsFor(const std::string& containerId, const std::string& containerName,
                                        const ContainerRequest& request) const;

  EventLoop& loop_;
  SupervisorOptions options_;
  StateDirLock stateDirLock_;  // held from init() on
  std::map<std::string, std::unique_ptr<Managed>> shims_;
  // Replaced shims still exiting: watched, reaped and killed after stopGrace like any other,
  // but apart, since their successor owns the container id, its record and control socket.
  std::vector<std::unique_ptr<Managed>> retired_;
  uint64_t restartsTotal_ = 0;
  std::function<void()> onShimGone_;
  std::function<void(const std::string&, const std::string&)> onNotServing_;
  void notServing(const std::string& containerId, const std::string& why) {
    if (onNotServing_) onNotServing_(containerId, why);
  }
};

}  // namespace connectable
