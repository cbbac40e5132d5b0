#include "injector/docker_endpoint.h"

#include <charconv>
#include <cstdlib>

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
  return env;
}

Result<DockerEndpoint> chooseDockerEndpoint(std::string_view flag, const DockerEnvironment& env) {
  auto set = [](const char* value) { return value != nullptr && *value != '\0'; };
  Result<DockerEndpoint> chosen = parseDockerHost(kDefaultDockerHost);
  if (!flag.empty()) {
    chosen = parseDockerHost(flag);
  } else if (set(env.host)) {
    chosen = parseDockerHost(env.host);
    if (!chosen) return chosen.status().withContext("DOCKER_HOST");
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
