// DockerEndpoint: where the Docker Engine API listens (unix://PATH or tcp://HOST:PORT), and
// which one to use from --docker, DOCKER_HOST or the default. Plain values; no threads.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace connectable {

struct DockerEndpoint {
  enum class Kind { Unix, Tcp };
  Kind kind = Kind::Unix;
  std::string path = "/var/run/docker.sock";  // Kind::Unix
  std::string host;                           // Kind::Tcp: name or literal, no brackets
  uint16_t port = 0;                          // Kind::Tcp

  std::string toString() const;  // "unix:///var/run/docker.sock", "tcp://[::1]:2375"
};

inline constexpr std::string_view kDefaultDockerHost = "unix:///var/run/docker.sock";

// Parses "unix:///path", "tcp://host:port" ("tcp://[::1]:2375"). TLS (https, port 2376
// with DOCKER_TLS_VERIFY) and ssh:// are not supported and are reported as such.
Result<DockerEndpoint> parseDockerHost(std::string_view text);

// The --docker flag wins, then DOCKER_HOST (null or empty: unset), then the default socket.
Result<DockerEndpoint> chooseDockerEndpoint(std::string_view flag, const char* dockerHostEnv);

}  // namespace connectable
