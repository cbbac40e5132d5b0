// DockerEvent: one line of GET /events, parsed. Container events carry the container's
// labels and name in `attributes`; network events its id as attributes["container"].
// Plain values and a pure parser; any thread.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "common/status.h"

namespace connectable {

struct DockerEvent {
  std::string type;     // "container", "network", ...
  std::string action;   // "create", "connect", "start", "die", "destroy", "exec_start: sh", ...
  std::string actorId;  // container id for container events, network id for network events
  std::map<std::string, std::string> attributes;
  int64_t time = 0;      // seconds since the epoch (0 when the daemon did not say)
  int64_t timeNano = 0;  // nanoseconds since the epoch (0 when the daemon did not say)

  bool isContainer() const { return type == "container"; }
  bool isNetwork() const { return type == "network"; }
  // The container this event is about: Actor.ID or, for network events, attributes["container"].
  std::string containerId() const;
  // attributes["name"]: the container's name, for container events; empty if absent.
  std::string containerName() const;
  // About the memory the event takes: its text, and a map node's overhead per attribute.
  // An event may carry a container's every label (up to a line of the stream each).
  size_t footprint() const;
  // Docker's own sort key: timeNano when present, else time in ns.
  int64_t nanos() const { return timeNano != 0 ? timeNano : time * 1'000'000'000; }
};

// Requires Type, Action and Actor.ID as strings; tolerates the legacy status/id/from fields
// and a missing Attributes, time or timeNano. A malformed line is an error, never a throw;
// so is a time before the epoch or past int64 nanoseconds (the year 2262).
Result<DockerEvent> parseDockerEvent(std::string_view line);

}  // namespace connectable
