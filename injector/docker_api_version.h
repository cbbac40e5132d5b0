// DockerApiVersion: the Engine API version we speak, chosen from what the daemon offers.
// Plain values and pure functions; no threads.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace connectable {

struct DockerApiVersion {
  int major = 1;
  int minor = 0;

  std::string toString() const { return std::to_string(major) + "." + std::to_string(minor); }
  std::string pathPrefix() const { return "/v" + toString(); }  // "/v1.41"
  bool operator<(const DockerApiVersion& o) const {
    return major != o.major ? major < o.major : minor < o.minor;
  }
  bool operator==(const DockerApiVersion& o) const { return major == o.major && minor == o.minor; }
};

// The newest API whose replies we know (Docker 29); newer daemons are asked for this one.
// What we read (events' Type, Action and Actor; a container's Id, Names, Labels, Name,
// State, Config.Labels and HostConfig.NetworkMode) has not changed from 1.24 to 1.54.
inline constexpr DockerApiVersion kNewestKnownDockerApi{1, 52};
// The oldest we accept: event filters by type and Actor attributes need it (Docker 1.12).
inline constexpr DockerApiVersion kOldestSupportedDockerApi{1, 24};

// "1.41" -> {1, 41}. Anything else is an error.
Result<DockerApiVersion> parseDockerApiVersion(std::string_view text);

// min(server's ApiVersion, kNewestKnownDockerApi), raised to the server's MinAPIVersion
// when a daemon newer than us no longer speaks that one; an error when the server's
// ApiVersion is older than kOldestSupportedDockerApi.
Result<DockerApiVersion> negotiateDockerApiVersion(DockerApiVersion serverMax,
                                                   const DockerApiVersion* serverMin);

}  // namespace connectable
