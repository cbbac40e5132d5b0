#include "injector/docker_container.h"

#include <limits>

#include "injector/docker_json.h"

namespace connectable {

using docker_json::Need;
using docker_json::ObjectPtr;

namespace {

Status firstError(std::initializer_list<Status> statuses) {
  for (const Status& s : statuses) {
    if (!s) return s;
  }
  return Status::ok();
}

Result<ContainerSummary> parseSummary(const ObjectPtr& obj) {
  ContainerSummary c;
  ObjectPtr hostConfig;
  Status s = firstError({
      docker_json::readString(obj, "Id", &c.id, Need::Required),
      docker_json::readStringArray(obj, "Names", &c.names, Need::Optional),
      docker_json::readStringMap(obj, "Labels", &c.labels, Need::Optional),
      docker_json::readString(obj, "State", &c.state, Need::Optional),
      docker_json::readObject(obj, "HostConfig", &hostConfig, Need::Optional),
  });
  if (s && !hostConfig.isNull()) {
    s = docker_json::readString(hostConfig, "NetworkMode", &c.networkMode, Need::Optional)
            .withContext("HostConfig");
  }
  if (!s) return s;
  if (c.id.empty()) return Status::error("empty Id");
  return c;
}

}  // namespace

Result<ContainerList> parseContainerList(std::string_view json) {
  auto array = docker_json::parseArray(json);
  if (!array) return array.status().withContext("container list");
  ContainerList out;
  for (unsigned i = 0; i < (*array)->size(); ++i) {
    const std::string entry = "container list: entry " + std::to_string(i);
    ObjectPtr obj = (*array)->getObject(i);
    if (obj.isNull()) {
      out.skipped.push_back({"", Status::error(entry + " is not an object")});
      continue;
    }
    auto c = parseSummary(obj);
    if (!c) {
      SkippedContainer bad{"", c.status().withContext(entry)};
      (void)docker_json::readString(obj, "Id", &bad.id, Need::Optional);  // to name it, if it can
      out.skipped.push_back(std::move(bad));
      continue;
    }
    out.containers.push_back(std::move(*c));
  }
  return out;
}

Result<ContainerInfo> parseContainerInspect(std::string_view json) {
  auto fail = [](const Status& s) { return s.withContext("container inspect"); };
  auto obj = docker_json::parseObject(json);
  if (!obj) return fail(obj.status());
  ContainerInfo c;
  ObjectPtr config, state, hostConfig, networkSettings;
  Status s = firstError({
      docker_json::readString(*obj, "Id", &c.id, Need::Required),
      docker_json::readString(*obj, "Name", &c.name, Need::Optional),
      docker_json::readObject(*obj, "Config", &config, Need::Optional),
      docker_json::readObject(*obj, "State", &state, Need::Required),
      docker_json::readObject(*obj, "HostConfig", &hostConfig, Need::Optional),
      docker_json::readObject(*obj, "NetworkSettings", &networkSettings, Need::Optional),
  });
  if (!s) return fail(s);
  int64_t pid = 0;
  bool restarting = false;
  s = firstError({
      docker_json::readBool(state, "Running", &c.running, Need::Required).withContext("State"),
      docker_json::readBool(state, "Restarting", &restarting, Need::Optional).withContext("State"),
      docker_json::readInt(state, "Pid", &pid, Need::Required).withContext("State"),
      docker_json::readString(state, "StartedAt", &c.startedAt, Need::Optional)
          .withContext("State"),
      docker_json::readStringMap(config, "Labels", &c.labels, Need::Optional)
          .withContext("Config"),
      docker_json::readString(hostConfig, "NetworkMode", &c.networkMode, Need::Optional)
          .withContext("HostConfig"),
      docker_json::readString(networkSettings, "SandboxKey", &c.sandboxKey, Need::Optional)
          .withContext("NetworkSettings"),
  });
  if (!s) return fail(s);
  if (c.id.empty()) return fail(Status::error("empty Id"));
  if (pid < 0 || pid > std::numeric_limits<pid_t>::max()) {
    return fail(Status::error("State.Pid out of range: " + std::to_string(pid)));
  }
  // Between two runs of a --restart container Docker says Running and Restarting, with no
  // Pid: nothing runs now, and its next start event says when something does.
  if (restarting) c.running = false;
  if (c.running && pid == 0) return fail(Status::error("State.Running without a State.Pid"));
  c.pid = static_cast<pid_t>(pid);
  if (!c.name.empty() && c.name.front() == '/') c.name.erase(0, 1);
  return c;
}

std::string ContainerSummary::name() const {
  for (const auto& n : names) {
    std::string_view own = n;
    if (!own.empty() && own.front() == '/') own.remove_prefix(1);
    if (!own.empty() && own.find('/') == std::string_view::npos) return std::string(own);
  }
  return "";
}

std::string shortContainerId(const std::string& id) { return id.substr(0, 12); }

bool isContainerId(std::string_view text) {
  return text.size() == 64 && text.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

std::string containerDisplayName(const std::string& name, const std::string& id) {
  return (name.empty() ? "?" : name) + " (" + shortContainerId(id) + ")";
}

}  // namespace connectable
