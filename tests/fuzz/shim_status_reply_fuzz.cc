// A shim's answer to `connectable status`'s GET /status, as it comes off the control
// socket: the shim runs as nobody beside the container's code, which may own it by now, and
// root reads the answer. Read as runStatusCommand reads it, then shown as the table and as
// --json. Nothing may crash; the table holds no control character (it goes to a terminal);
// the JSON is an array of the one row, the container's, whatever the shim said.
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Parser.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/http_fetch.h"
#include "injector/status_command.h"
#include "tests/fuzz/fuzz_check.h"

using namespace connectable;
using connectable::fuzz::check;

namespace {

const char* const kId = "3f2a9c0d1e4b5a6f7081928374655647382910abcdef0123456789abcdef0123";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto reply = parseHttpReply(std::string(reinterpret_cast<const char*>(data), size));
  StatusRow row;
  row.containerName = "app";
  row.containerId = kId;
  row.shimPid = 4242;
  if (!reply) {
    check(!reply.status().message().empty());
    row.error = reply.status().message();
  } else {
    check(reply->code >= 0 && reply->code <= 999 && reply->body.size() < size);
    if (reply->code != 200) row.error = "shim answered " + std::to_string(reply->code) + ": " + reply->body;
    else row.shimJson = std::move(reply->body);
  }

  std::string table = formatStatusTable({row});
  for (char c : table) check(c == '\n' || (c >= 0x20 && c < 0x7f));
  check(table.find("app") != std::string::npos);

  std::string json = formatStatusJson({row});
  Poco::JSON::Array::Ptr rows;
  try {
    rows = Poco::JSON::Parser().parse(json).extract<Poco::JSON::Array::Ptr>();
  } catch (const Poco::Exception&) {
    std::abort();
  }
  check(rows && rows->size() == 1);
  auto object = rows->getObject(0);
  check(object && object->getValue<std::string>("container_name") == "app" &&
        object->getValue<std::string>("container_id") == kId);
  return 0;
}
