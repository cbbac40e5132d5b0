// What the Docker daemon says about itself, whatever its bytes: GET /version's reply and
// the API version chosen from it, GET /info's ID, an error reply's message, and the same
// bytes as an API version string ("1.41"). Nothing may crash, throw or overflow; a chosen
// version is one we support, no newer than the daemon's, and reads back as itself.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "injector/docker_api_version.h"
#include "injector/docker_client.h"
#include "injector/docker_connection.h"
#include "tests/fuzz/fuzz_check.h"

using namespace connectable;
using connectable::fuzz::check;

namespace {

void checkReadsBack(const DockerApiVersion& v) {
  auto again = parseDockerApiVersion(v.toString());
  check(again && *again == v);
  check(v.pathPrefix() == "/v" + v.toString());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto version = parseDockerVersion(text)) {
    check(!(version->api < kOldestSupportedDockerApi));
    check(version->server.size() <= size);
    checkReadsBack(version->api);
  }
  if (auto id = parseDockerInfoId(text)) check(!id->empty() && id->size() <= size);
  check(dockerErrorMessage(std::string(text)).size() <= size);

  auto max = parseDockerApiVersion(text);
  if (!max) return 0;
  check(max->major >= 0 && max->minor >= 0);
  checkReadsBack(*max);
  // The daemon's range as /version gives it: with no minimum, or with each one we know of.
  const DockerApiVersion* mins[] = {nullptr, &kOldestSupportedDockerApi, &kNewestKnownDockerApi, &*max};
  for (const DockerApiVersion* min : mins) {
    auto chosen = negotiateDockerApiVersion(*max, min);
    check(chosen.isOk() == !(*max < kOldestSupportedDockerApi));
    if (!chosen) continue;
    check(!(*chosen < kOldestSupportedDockerApi));
    check(!(*max < *chosen));
    if (min != nullptr && !(*max < *min)) check(!(*chosen < *min));
  }
  // And the bytes as the daemon's minimum, under the newest daemon we know.
  DockerApiVersion newest{1, 99};
  if (auto chosen = negotiateDockerApiVersion(newest, &*max)) {
    check(!(newest < *chosen) && !(*chosen < kOldestSupportedDockerApi));
  }
  return 0;
}
