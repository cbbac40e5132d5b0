#include "injector/docker_api_version.h"

#include <charconv>

namespace connectable {
namespace {

// Digits only: from_chars would also take a sign, and "1.-0" is no version.
bool parseNumber(std::string_view text, int* out) {
  if (text.empty() || text.size() > 4 || text[0] < '0' || text[0] > '9') return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

Result<DockerApiVersion> parseDockerApiVersion(std::string_view text) {
  auto dot = text.find('.');
  DockerApiVersion v;
  if (dot == std::string_view::npos || !parseNumber(text.substr(0, dot), &v.major) ||
      !parseNumber(text.substr(dot + 1), &v.minor)) {
    return Status::error("bad Docker API version '" + std::string(text) + "'");
  }
  return v;
}

Result<DockerApiVersion> negotiateDockerApiVersion(DockerApiVersion serverMax,
                                                   const DockerApiVersion* serverMin) {
  DockerApiVersion chosen = serverMax < kNewestKnownDockerApi ? serverMax : kNewestKnownDockerApi;
  if (chosen < kOldestSupportedDockerApi) {
    return Status::error("Docker API " + serverMax.toString() + " is too old (need " +
                         kOldestSupportedDockerApi.toString() + " or newer)");
  }
  // A daemon newer than us that dropped our newest (Docker 29 speaks 1.44 and later):
  // its oldest is the closest to what we know, and what we read has stayed the same.
  if (serverMin != nullptr && chosen < *serverMin && !(serverMax < *serverMin)) chosen = *serverMin;
  return chosen;
}

}  // namespace connectable
