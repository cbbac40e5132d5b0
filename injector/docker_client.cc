#include "injector/docker_client.h"

#include <cstdio>

#include "injector/docker_connection.h"
#include "injector/docker_json.h"

namespace connectable {

using docker_json::Need;

DockerClient::DockerClient(DockerEndpoint endpoint) : DockerClient(std::move(endpoint), Options()) {}

DockerClient::DockerClient(DockerEndpoint endpoint, Options options)
    : endpoint_(std::move(endpoint)), options_(options),
      connection_(std::make_unique<DockerConnection>(
          endpoint_, DockerConnection::Timeouts{options.connectTimeout, options.requestTimeout})) {}

DockerClient::~DockerClient() = default;

Result<std::string> DockerClient::getJson(const std::string& path, const std::string& what,
                                          bool* notFound) {
  if (notFound != nullptr) *notFound = false;
  auto reply = connection_->get(path);
  if (!reply) return reply.status().withContext(what);
  if (reply->status == 404 && notFound != nullptr) *notFound = true;
  if (reply->status != 200) {
    return Status::error(what + ": HTTP " + std::to_string(reply->status) + ": " +
                         dockerErrorMessage(reply->body));
  }
  return std::move(reply->body);
}

Status DockerClient::negotiate() {
  negotiated_ = false;
  auto body = getJson("/version", "docker version");
  if (!body) return body.status();
  auto version = parseDockerVersion(*body);
  if (!version) return version.status();
  apiVersion_ = version->api;
  serverVersion_ = version->server;
  negotiated_ = true;
  return Status::ok();
}

Result<ContainerList> DockerClient::listContainers(bool all) {
  auto body = getJson(apiVersion_.pathPrefix() + (all ? "/containers/json?all=1" : "/containers/json"),
                      all ? "listing all containers" : "listing containers");
  if (!body) return body.status();
  return parseContainerList(*body);
}

Result<std::string> DockerClient::daemonId() {
  auto body = getJson(apiVersion_.pathPrefix() + "/info", "docker info");
  if (!body) return body.status();
  return parseDockerInfoId(*body);
}

Result<ContainerInfo> DockerClient::inspectContainer(const std::string& id, bool* notFound) {
  if (notFound != nullptr) *notFound = false;
  if (!validContainerRef(id)) return Status::error("invalid container id '" + id + "'");
  bool missing = false;
  auto body = getJson(apiVersion_.pathPrefix() + "/containers/" + id + "/json",
                      "inspecting container " + id, &missing);
  if (missing) {
    if (notFound != nullptr) *notFound = true;
    return Status::error("no such container: " + id);
  }
  if (!body) return body.status();
  return parseContainerInspect(*body);
}

void DockerClient::interrupt() { connection_->interrupt(); }
void DockerClient::clearInterrupt() { connection_->clearInterrupt(); }

Result<DockerVersion> parseDockerVersion(std::string_view json) {
  auto obj = docker_json::parseObject(json);
  if (!obj) return obj.status().withContext("docker version");
  std::string maxText, minText, server;
  for (const Status& s : {docker_json::readString(*obj, "ApiVersion", &maxText, Need::Required),
                   docker_json::readString(*obj, "MinAPIVersion", &minText, Need::Optional),
                   docker_json::readString(*obj, "Version", &server, Need::Optional)}) {
    if (!s) return s.withContext("docker version");
  }
  auto max = parseDockerApiVersion(maxText);
  if (!max) return max.status().withContext("docker version");
  DockerApiVersion min;
  bool haveMin = false;
  if (!minText.empty()) {
    auto parsed = parseDockerApiVersion(minText);
    if (!parsed) return parsed.status().withContext("docker version: MinAPIVersion");
    min = *parsed;
    haveMin = true;
  }
  auto chosen = negotiateDockerApiVersion(*max, haveMin ? &min : nullptr);
  if (!chosen) return chosen.status();
  return DockerVersion{*chosen, server};
}

Result<std::string> parseDockerInfoId(std::string_view json) {
  auto obj = docker_json::parseObject(json);
  if (!obj) return obj.status().withContext("docker info");
  std::string id;
  if (Status s = docker_json::readString(*obj, "ID", &id, Need::Required); !s) return s.withContext("docker info");
  if (id.empty()) return Status::error("docker info: the daemon has no ID");
  return id;
}

std::string dockerEventsPath(DockerApiVersion version, int64_t sinceNanos) {
  // filters={"type":["container","network"]}, percent-encoded.
  std::string path = version.pathPrefix() +
                     "/events?filters=%7B%22type%22%3A%5B%22container%22%2C%22network%22%5D%7D";
  if (sinceNanos > 0) {
    char since[48];
    std::snprintf(since, sizeof since, "%lld.%09lld",
                  static_cast<long long>(sinceNanos / 1'000'000'000),
                  static_cast<long long>(sinceNanos % 1'000'000'000));
    path += "&since=";
    path += since;
  }
  return path;
}

bool validContainerRef(const std::string& ref) {
  if (ref.empty() || ref.size() > 128) return false;
  for (char c : ref) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace connectable
