// A DNS server's answer, whatever its bytes: parsed, then read as the shim's discovery reads
// it (SRV with the addresses of its targets, A and AAAA, negative TTLs). Nothing may crash,
// read outside the buffer or loop; names that come out are within the wire's limits.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "common/dns_message.h"
#include "tests/fuzz/fuzz_check.h"

using namespace connectable::dns;
using connectable::fuzz::check;

namespace {

void checkName(const std::string& name) { check(name.size() <= kMaxNameWireLength); }

// A name the shim uses is a host name (checked above); an SOA's, only read past, may hold
// any octet and comes out escaped: up to four characters an octet (\DDD).
void checkRecordName(const Record& r) {
  if (r.type != kTypeSoa) return checkName(r.name);
  check(r.name.size() <= 4 * kMaxNameWireLength);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto message = parseMessage(data, size);
  if (!message) return 0;
  for (const auto& q : message->questions) checkName(q.name);
  for (const auto* section : {&message->answers, &message->authority, &message->additional}) {
    for (const auto& r : *section) {
      checkRecordName(r);
      checkName(r.cname);
      checkName(r.srv.target);
      check(r.ttl <= 0x7fffffffu);
    }
  }
  // The question the shim asked, and a name the answer may not be about at all.
  std::string asked = message->questions.empty() ? "redis.service.consul" : message->questions[0].name;
  for (const std::string& name : {asked, std::string("redis.service.consul")}) {
    if (auto srv = readSrvAnswer(*message, name)) {
      for (const auto& t : srv->targets) checkName(t.srv.target);
    }
    (void)readAddressAnswer(*message, name, kTypeA);
    (void)readAddressAnswer(*message, name, kTypeAaaa);
    (void)answersAbout(*message, name, kTypeSrv);
  }
  (void)negativeTtl(*message, 5);
  (void)rcodeName(message->header.rcode);
  return 0;
}
