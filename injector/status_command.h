// `connectable status [--json] [--state-dir DIR] [CONTAINER]`: what every shim the injector
// runs is doing, read from the state dir's records and asked on each shim's control
// socket (all at once, at most `--timeout` each, default 1s). A separate invocation of the
// injector's binary; it never talks to the running injector nor to Docker (whether one
// runs, it learns from the state dir's lock).
// Single-threaded; no shared state.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace connectable {

struct ShimInfo;  // injector/shim_supervisor.h

struct StatusRow {
  std::string containerName, containerId;
  int shimPid = 0;        // 0 when none runs
  uint32_t restarts = 0;  // times the injector started this container's shim again after it died
  std::string shimJson;  // the shim's /status answer; empty when it did not answer
  std::string error;     // why it did not
  // What the injector could not do for the container: labels it ignored, why it has no shim.
  std::vector<std::string> problems;
  // No shim, only problems, and no injector runs to remove them once the container goes.
  bool lastRecorded = false;
};

// Exit code: 0, 1 (no such container, or state dir unreadable), 2 (bad arguments), 3 (the
// table is shown, but a record names a shim that no longer runs: no injector keeps the
// records, or it has not got to that one yet; a shim the injector knows to be down, waiting
// for its next try, is 0).
int runStatusCommand(const std::vector<std::string>& args);

// What a record of a shim that is not running says: why, and when the next try is (`now`
// and ShimInfo::nextStart in Unix time). Pure function; the second form reads the clock.
std::string notRunningText(const ShimInfo& info, int64_t now);
std::string notRunningText(const ShimInfo& info);

// The table, one line per container and port. Pure function.
std::string formatStatusTable(const std::vector<StatusRow>& rows);
// A JSON array: the records with each shim's status inside. Pure function.
std::string formatStatusJson(const std::vector<StatusRow>& rows);

}  // namespace connectable
