// A shim's HTTP answer on its control socket, whatever its bytes, as fetchHttpUnix splits
// it (the injector scrapes every shim's status and metrics so). Nothing may crash or read
// past the answer; a reply that parsed has a three-digit code from an "HTTP/" status line,
// and its body is the answer's tail.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/http_fetch.h"

using namespace connectable;

namespace {

void check(bool holds) {
  if (!holds) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string raw(reinterpret_cast<const char*>(data), size);
  auto reply = parseHttpReply(raw);
  if (!reply) return 0;
  check(raw.compare(0, 5, "HTTP/") == 0);
  check(reply->code >= 0 && reply->code <= 999);
  check(reply->body.size() < size);
  check(raw.compare(size - reply->body.size(), reply->body.size(), reply->body) == 0);
  return 0;
}
