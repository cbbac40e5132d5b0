#include "injector/docker_endpoint.h"

#include <Poco/DigestEngine.h>
#include <Poco/SHA2Engine.h>
#include <sys/stat.h>

#include <charconv>
#include <cstdlib>
#include <fstream>

#include "injector/docker_json.h"

namespace connectable {
namespace {

constexpr std::string_view kUnixScheme = "unix://";
constexpr std::string_view kTcpScheme = "tcp://";

bool startsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

Result<uint16_t> parseTcpPort(std::string_view text) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value == 0 ||
      value > 65535) {
    return Status::error("bad port '" + std::string(text) + "'");
  }
  return static_cast<uint16_t>(value);
}

using docker_json::Need;

// A file of the CLI's configuration, at most 1 MiB; nullopt-like empty Result when absent.
Result<std::string> readConfigFile(const std::string& path, bool* missing) {
  *missing = false;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *missing = true;
    return std::string();
  }
  std::string text(size_t{1} << 20, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.gcount() == static_cast<std::streamsize>(text.size())) return Status::error(path + ": larger than 1 MiB");
  text.resize(static_cast<size_t>(in.gcount()));
  return text;
}

// The context `docker context use` chose, from config.json; empty when none.
Result<std::string> currentContext(const std::string& configDir) {
  const std::string path = configDir + "/config.json";
  bool missing = false;
  auto text = readConfigFile(path, &missing);
  if (!text) return text.status();
  if (missing) return std::string();
  auto obj = docker_json::parseObject(*text);
  if (!obj) return obj.status().withContext(path);
  std::string name;
  if (Status s = docker_json::readString(*obj, "currentContext", &name, Need::Optional); !s) return s.withContext(path);
  return name;
}

// A context of the docker CLI: <configDir>/contexts/meta/<SHA-256 of its name>/meta.json,
// its endpoint in Endpoints.docker.Host, its TLS files (if any) in contexts/tls/<same>/docker.
Result<DockerEndpoint> contextEndpoint(const std::string& configDir, const std::string& name, const std::string& source) {
  const std::string what = "Docker context '" + name + "' (" + source + ")";
  Poco::SHA2Engine sha(Poco::SHA2Engine::SHA_256);
  sha.update(name);
  const std::string id = Poco::DigestEngine::digestToHex(sha.digest());
  const std::string path = configDir + "/contexts/meta/" + id + "/meta.json";
  bool missing = false;
  auto text = readConfigFile(path, &missing);
  if (!text) return text.status().withContext(what);
  if (missing) return Status::error(what + " not found: no " + path + " (see docker context ls)");
  auto meta = docker_json::parseObject(*text);
  if (!meta) return meta.status().withContext(what + ": " + path);
  docker_json::ObjectPtr endpoints, docker;
  std::string host;
  bool skipTlsVerify = false;
  for (const Status& s : {docker_json::readObject(*meta, "Endpoints", &endpoints, Need::Required),
                   endpoints ? docker_json::readObject(endpoints, "docker", &docker, Need::Required) : Status::ok(),
                   docker ? docker_json::readString(docker, "Host", &host, Need::Required) : Status::ok(),
                   docker ? docker_json::readBool(docker, "SkipTLSVerify", &skipTlsVerify, Need::Optional) : Status::ok()}) {
    if (!s) return s.withContext(what + ": " + path);
  }
  auto endpoint = parseDockerHost(host);
  if (!endpoint) return endpoint.status().withContext(what);
  struct stat st {};
  const bool tlsFiles = stat((configDir + "/contexts/tls/" + id + "/docker").c_str(), &st) == 0;
  if (endpoint->kind == DockerEndpoint::Kind::Tcp && (tlsFiles || skipTlsVerify)) {
    return Status::error(what + " reaches " + endpoint->toString() +
                         " with TLS, which connectable does not speak; use a unix socket or a TLS-terminating proxy");
  }
  return endpoint;
}

}  // namespace

std::string DockerEndpoint::toString() const {
  if (kind == Kind::Unix) return std::string(kUnixScheme) + path;
  bool v6 = host.find(':') != std::string::npos;
  return std::string(kTcpScheme) + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Result<DockerEndpoint> parseDockerHost(std::string_view text) {
  auto fail = [&](const std::string& why) {
    return Status::error("docker host '" + std::string(text) + "': " + why);
  };
  DockerEndpoint ep;
  if (startsWith(text, kUnixScheme)) {
    std::string_view path = text.substr(kUnixScheme.size());
    if (path.empty() || path.front() != '/') return fail("expected an absolute socket path");
    if (path.size() >= 108) return fail("socket path too long for AF_UNIX");  // sun_path
    ep.kind = DockerEndpoint::Kind::Unix;
    ep.path = std::string(path);
    return ep;
  }
  if (startsWith(text, kTcpScheme)) {
    std::string_view rest = text.substr(kTcpScheme.size());
    if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
    std::string_view host, port;
    if (!rest.empty() && rest.front() == '[') {
      auto close = rest.find(']');
      if (close == std::string_view::npos) return fail("unclosed '[' in IPv6 address");
      host = rest.substr(1, close - 1);
      if (close + 1 >= rest.size() || rest[close + 1] != ':') return fail("expected [ADDR]:PORT");
      port = rest.substr(close + 2);
    } else {
      auto colon = rest.rfind(':');
      if (colon == std::string_view::npos) return fail("expected tcp://HOST:PORT");
      host = rest.substr(0, colon);
      port = rest.substr(colon + 1);
      if (host.find(':') != std::string_view::npos) return fail("write IPv6 hosts as [ADDR]:PORT");
    }
    if (host.empty()) return fail("empty host");
    if (host.find('/') != std::string_view::npos) return fail("paths are not supported");
    auto p = parseTcpPort(port);
    if (!p) return fail(p.status().message());
    ep.kind = DockerEndpoint::Kind::Tcp;
    ep.path.clear();
    ep.host = std::string(host);
    ep.port = *p;
    return ep;
  }
  if (startsWith(text, "ssh://") || startsWith(text, "https://") || startsWith(text, "npipe://")) {
    return fail("scheme not supported (use unix:// or tcp://)");
  }
  return fail("expected unix:///PATH or tcp://HOST:PORT");
}

DockerEnvironment DockerEnvironment::fromProcess() {
  DockerEnvironment env;
  env.host = std::getenv("DOCKER_HOST");
  env.tlsVerify = std::getenv("DOCKER_TLS_VERIFY");
  env.tls = std::getenv("DOCKER_TLS");
  env.certPath = std::getenv("DOCKER_CERT_PATH");
  env.context = std::getenv("DOCKER_CONTEXT");
  if (const char* dir = std::getenv("DOCKER_CONFIG"); dir != nullptr && *dir != '\0') {
    env.configDir = dir;
  } else if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    env.configDir = std::string(home) + "/.docker";
  }
  return env;
}

Result<DockerEndpoint> chooseDockerEndpoint(std::string_view flag, const DockerEnvironment& env,
                                            std::vector<std::string>* warnings) {
  auto set = [](const char* value) { return value != nullptr && *value != '\0'; };
  Result<DockerEndpoint> chosen = parseDockerHost(kDefaultDockerHost);
  if (!flag.empty()) {
    chosen = parseDockerHost(flag);
  } else if (set(env.host)) {
    chosen = parseDockerHost(env.host);
    if (!chosen) return chosen.status().withContext("DOCKER_HOST");
  } else {
    std::string context = set(env.context) ? env.context : "";
    std::string source = "DOCKER_CONTEXT";
    if (context.empty() && !env.configDir.empty()) {
      auto current = currentContext(env.configDir);
      if (current) {
        context = *current;
      } else if (warnings != nullptr) {
        warnings->push_back("ignoring the docker CLI's configuration: " + current.status().message());
      }
      source = "the current context in " + env.configDir + "/config.json";
    }
    if (!context.empty() && context != "default") {
      if (env.configDir.empty()) return Status::error("DOCKER_CONTEXT is set but neither DOCKER_CONFIG nor HOME is");
      chosen = contextEndpoint(env.configDir, context, source);
      if (!chosen) return chosen.status();
    }
  }
  if (!chosen || chosen->kind != DockerEndpoint::Kind::Tcp) return chosen;
  const char* asksForTls = set(env.tlsVerify)  ? "DOCKER_TLS_VERIFY"
                           : set(env.tls)      ? "DOCKER_TLS"
                           : set(env.certPath) ? "DOCKER_CERT_PATH"
                                               : nullptr;
  if (asksForTls == nullptr) return chosen;
  return Status::error(std::string(asksForTls) + " is set but connectable does not speak TLS to the Docker daemon (" +
                       chosen->toString() + "); use a unix socket or a TLS-terminating proxy, or unset " + asksForTls +
                       " if that daemon really takes plain HTTP");
}

Result<DockerEndpoint> chooseDockerEndpoint(std::string_view flag, const char* dockerHostEnv) {
  DockerEnvironment env = DockerEnvironment::fromProcess();
  env.host = dockerHostEnv;
  return chooseDockerEndpoint(flag, env);
}

}  // namespace connectable
