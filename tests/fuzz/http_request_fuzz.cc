// A client's request to an HttpServer: the shim's opt-in status port, which any process in
// the container may connect to, and the control sockets. The head as the server has read it
// (at most Options::maxRequest bytes). Nothing may crash; an error says something; a request
// that parses has a method, and a path that starts with '/' and holds no query, space or
// line end.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/http_server.h"
#include "tests/fuzz/fuzz_check.h"

using namespace connectable;
using connectable::fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string head(reinterpret_cast<const char*>(data), size);
  auto request = parseHttpRequestLine(head);
  if (!request) {
    check(!request.status().message().empty());
    return 0;
  }
  check(!request->method.empty());
  check(request->method.find_first_of(" \r\n") == std::string::npos);
  check(!request->path.empty() && request->path.front() == '/');
  check(request->path.find_first_of("? \r\n") == std::string::npos);
  check(request->query.find_first_of(" \r\n") == std::string::npos);
  check(request->method.size() + request->path.size() + request->query.size() < size);
  return 0;
}
