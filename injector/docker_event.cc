#include "injector/docker_event.h"

#include <limits>

#include "injector/docker_json.h"

namespace connectable {

using docker_json::Need;

std::string DockerEvent::containerId() const {
  if (isNetwork()) {
    auto it = attributes.find("container");
    return it == attributes.end() ? std::string() : it->second;
  }
  return isContainer() ? actorId : std::string();
}

std::string DockerEvent::containerName() const {
  auto it = attributes.find("name");
  return it == attributes.end() ? std::string() : it->second;
}

size_t DockerEvent::footprint() const {
  constexpr size_t kNodeOverhead = 96;  // a std::map node of two strings, as malloc rounds it
  size_t bytes = sizeof *this + type.size() + action.size() + actorId.size();
  for (const auto& [key, value] : attributes) bytes += kNodeOverhead + key.size() + value.size();
  return bytes;
}

Result<DockerEvent> parseDockerEvent(std::string_view line) {
  auto fail = [](const Status& s) { return s.withContext("docker event"); };
  auto obj = docker_json::parseObject(line);
  if (!obj) return fail(obj.status());
  DockerEvent ev;
  docker_json::ObjectPtr actor;
  for (const Status& s : {docker_json::readString(*obj, "Type", &ev.type, Need::Required),
                   docker_json::readString(*obj, "Action", &ev.action, Need::Required),
                   docker_json::readObject(*obj, "Actor", &actor, Need::Required),
                   docker_json::readInt(*obj, "time", &ev.time, Need::Optional),
                   docker_json::readInt(*obj, "timeNano", &ev.timeNano, Need::Optional)}) {
    if (!s) return fail(s);
  }
  if (Status s = docker_json::readString(actor, "ID", &ev.actorId, Need::Required); !s) {
    return fail(s.withContext("Actor"));
  }
  if (Status s = docker_json::readStringMap(actor, "Attributes", &ev.attributes, Need::Optional);
      !s) {
    return fail(s.withContext("Actor"));
  }
  if (ev.type.empty() || ev.action.empty()) return fail(Status::error("empty Type or Action"));
  // Instants since the epoch that nanos() and a reconnect's `since` can hold in int64 ns.
  if (ev.time < 0 || ev.time > std::numeric_limits<int64_t>::max() / 1'000'000'000) {
    return fail(Status::error("field 'time' out of range: " + std::to_string(ev.time)));
  }
  if (ev.timeNano < 0) return fail(Status::error("field 'timeNano' out of range: " + std::to_string(ev.timeNano)));
  return ev;
}

}  // namespace connectable
