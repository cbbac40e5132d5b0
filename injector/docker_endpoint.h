// DockerEndpoint: where the Docker Engine API listens (unix://PATH or tcp://HOST:PORT), and
// which one to use from --docker, DOCKER_HOST, the docker CLI's context or the default.
// Plain values and small file reads; no threads.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

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

// Parses "unix:///path", "tcp://host:port" ("tcp://[::1]:2375"). https:// and ssh:// are
// not supported and are reported as such.
Result<DockerEndpoint> parseDockerHost(std::string_view text);

// What the environment says of the daemon, read as the docker CLI reads it. Each is null
// or empty when unset.
struct DockerEnvironment {
  const char* host = nullptr;       // DOCKER_HOST
  const char* tlsVerify = nullptr;  // DOCKER_TLS_VERIFY: any value asks for verified TLS
  const char* tls = nullptr;        // DOCKER_TLS: any value asks for TLS
  const char* certPath = nullptr;   // DOCKER_CERT_PATH: the Docker SDKs take it for TLS too
  const char* context = nullptr;    // DOCKER_CONTEXT: a context of the docker CLI, by name
  // The docker CLI's configuration directory (DOCKER_CONFIG, else $HOME/.docker): its
  // config.json ("currentContext", set by `docker context use`) and its contexts. Empty: none.
  std::string configDir;

  static DockerEnvironment fromProcess();  // getenv of each
};

// As the docker CLI chooses: the --docker flag wins, then DOCKER_HOST, then the context
// DOCKER_CONTEXT names, then the one `docker context use` chose, then the default socket
// (also the context "default"). A context that is not there, or that the CLI would reach
// with TLS, is an error naming it. A tcp:// endpoint is refused while the environment asks
// for TLS: connectable speaks plain HTTP only, and the user expects that daemon to be
// reached with TLS (encrypted, its certificate verified). A unix socket is local: the TLS
// variables do not concern it.
// A config.json that cannot be read is passed over, as the CLI does, with a line in
// `warnings` (when given) saying so.
Result<DockerEndpoint> chooseDockerEndpoint(std::string_view flag, const DockerEnvironment& env,
                                            std::vector<std::string>* warnings = nullptr);

// The same with DOCKER_HOST given and the TLS variables read from the process environment.
Result<DockerEndpoint> chooseDockerEndpoint(std::string_view flag, const char* dockerHostEnv);

}  // namespace connectable
