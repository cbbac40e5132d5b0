// DockerContainer: what the injector reads about containers from the Engine API
// (GET /containers/json and GET /containers/{id}/json), and their parsers. Plain values;
// pure functions; any thread.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace connectable {

using Labels = std::map<std::string, std::string>;

// One row of GET /containers/json.
struct ContainerSummary {
  std::string id;
  std::vector<std::string> names;  // as Docker gives them: "/app"
  Labels labels;
  std::string state;        // "running", "created", ... (empty if the daemon omitted it)
  std::string networkMode;  // HostConfig.NetworkMode: "default", "bridge", "none", "host",
                            // "container:<id>", or a network name

  // Its own name, without the '/': not a legacy link's alias ("/app/db"), which `names`
  // may hold too, and in any place.
  std::string name() const;
};

// GET /containers/{id}/json, the fields the injector needs.
struct ContainerInfo {
  std::string id;
  std::string name;  // without Docker's leading '/'
  Labels labels;     // Config.Labels
  bool running = false;    // State.Running, unless State.Restarting (waiting to run again)
  pid_t pid = 0;           // State.Pid: 0 unless running
  std::string startedAt;   // State.StartedAt, RFC 3339 with ns ("0001-01-01T00:00:00Z" if never)
  std::string networkMode;
  std::string sandboxKey;  // NetworkSettings.SandboxKey: "/var/run/docker/netns/<x>" or ""

  bool hostNetwork() const { return networkMode == "host"; }
};

// A row of GET /containers/json that did not parse: its Id when it has a readable one.
struct SkippedContainer {
  std::string id;
  Status why;
};

// GET /containers/json: the rows that parsed, and the ones that did not, so that one odd
// container does not hide the others. An error only when the reply is no JSON array.
struct ContainerList {
  std::vector<ContainerSummary> containers;
  std::vector<SkippedContainer> skipped;
};

Result<ContainerList> parseContainerList(std::string_view json);
Result<ContainerInfo> parseContainerInspect(std::string_view json);

// How every log line, status row and shim name shows a container: its id's first 12 hex
// digits, as `docker ps` does, and "name (short id)", "?" standing for an unknown name.
std::string shortContainerId(const std::string& id);
// A full id as Docker gives it: 64 lowercase hex digits (so, as a file name, it reaches
// nowhere outside its directory).
bool isContainerId(std::string_view text);
std::string containerDisplayName(const std::string& name, const std::string& id);

}  // namespace connectable
