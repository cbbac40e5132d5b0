// A shim's HTTP answer on its control socket, whatever its bytes, as fetchHttpUnix splits
// it (the injector scrapes every shim's status and metrics so). Nothing may crash or read
// past the answer; a reply that parsed has a three-digit code from its "HTTP/" status line,
// and its body is what follows the head's first empty line.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/http_fetch.h"
#include "tests/fuzz/fuzz_check.h"

using namespace connectable;
using connectable::fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string raw(reinterpret_cast<const char*>(data), size);
  auto reply = parseHttpReply(raw);
  if (!reply) return 0;
  check(raw.compare(0, 5, "HTTP/") == 0);
  check(reply->code >= 0 && reply->code <= 999);
  check(reply->body.size() < size);
  check(raw.compare(size - reply->body.size(), reply->body.size(), reply->body) == 0);
  const size_t crlf = raw.find("\r\n\r\n"), lf = raw.find("\n\n");
  const size_t bodyStart = std::min(crlf == std::string::npos ? crlf : crlf + 4, lf == std::string::npos ? lf : lf + 2);
  check(reply->body.size() == size - bodyStart);
  const size_t code = raw.find(' ') + 1;
  check(code + 3 <= raw.find('\n'));
  check(reply->code == std::stoi(raw.substr(code, 3)));
  return 0;
}
