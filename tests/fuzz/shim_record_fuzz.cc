// A shim's record in the state dir (<state-dir>/shims/<id>.json), whatever its text: the
// injector adopts the shims its records name when it restarts, and `connectable status`
// lists them. Nothing may crash; a record that parses is UTF-8, and is written back as one
// that parses to the same values (the records' writer and reader agree).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/utf8.h"
#include "injector/shim_supervisor.h"
#include "tests/fuzz/fuzz_check.h"

using namespace connectable;
using connectable::fuzz::check;

namespace {

bool same(const ShimRecord& a, const ShimRecord& b) {
  return a.info.containerId == b.info.containerId && a.info.containerName == b.info.containerName &&
         a.info.shimPid == b.info.shimPid && a.info.initPid == b.info.initPid && a.info.netnsInode == b.info.netnsInode &&
         a.info.ports == b.info.ports && a.info.restarts == b.info.restarts && a.shimStartTime == b.shimStartTime &&
         a.initStartTime == b.initStartTime && a.args == b.args;
}

bool allUtf8(const ShimRecord& r) {
  if (!isUtf8(r.info.containerId) || !isUtf8(r.info.containerName) || !isUtf8(r.info.ports)) return false;
  for (const auto& a : r.args)
    if (!isUtf8(a)) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto record = parseShimRecord(std::string(reinterpret_cast<const char*>(data), size));
  if (!record) {
    check(!record.status().message().empty());
    return 0;
  }
  check(allUtf8(*record));
  const std::string text = shimRecordText(*record);
  check(isUtf8(text));
  auto again = parseShimRecord(text);
  check(again.isOk());
  check(same(*again, *record));
  return 0;
}
