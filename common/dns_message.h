// DnsMessage: a strict parser of DNS responses and the readers of SRV and address answers.
// Pure functions over plain values; no thread-safety concerns.
//
// Malformed input yields a Status that says what is wrong and where; nothing is ever read
// outside the buffer. c-ares 1.18's own parsers drop TTLs and the additional section.
#pragma once

#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace connectable::dns {

// Record types and classes this module reads; every other type is skipped.
constexpr uint16_t kTypeA = 1;
constexpr uint16_t kTypeCname = 5;
constexpr uint16_t kTypeSoa = 6;
constexpr uint16_t kTypeAaaa = 28;
constexpr uint16_t kTypeSrv = 33;
constexpr uint16_t kTypeOpt = 41;  // EDNS (RFC 6891): noted (Message::ednsUdpSize), never kept
constexpr uint16_t kClassIn = 1;

constexpr uint8_t kRcodeNoError = 0;
constexpr uint8_t kRcodeNxDomain = 3;

// Wire limits (RFC 1035 2.3.4): 63 octets a label, 255 a name, so 253 characters as text.
constexpr size_t kMaxLabelLength = 63;
constexpr size_t kMaxNameWireLength = 255;
// A CNAME chain longer than this is treated as a loop.
constexpr int kMaxCnameChain = 8;

struct Header {
  uint16_t id = 0;
  bool response = false;
  uint8_t opcode = 0;
  bool authoritative = false;
  bool truncated = false;
  bool recursionDesired = false;
  bool recursionAvailable = false;
  uint8_t rcode = 0;
  uint16_t questionCount = 0;
  uint16_t answerCount = 0;
  uint16_t authorityCount = 0;
  uint16_t additionalCount = 0;
};

struct Question {
  std::string name;  // presentation form without the trailing dot; "" is the root
  uint16_t type = 0;
  uint16_t klass = 0;
};

struct SrvData {
  uint16_t priority = 0;
  uint16_t weight = 0;
  uint16_t port = 0;
  std::string target;  // "" when the target is "." (RFC 2782: service not available)
};

struct SoaData {
  uint32_t minimum = 0;  // the negative-caching TTL bound (RFC 2308)
};

// One record of a type this module reads; `type` says which data member is meaningful.
// Names of A, AAAA, CNAME and SRV records must be host names (printable ASCII, no dot or
// backslash inside a label) or the message is rejected; an SOA's are only read past, and
// may hold any octet (RFC 2181 11), as a mailbox with a dot in its first label does.
struct Record {
  std::string name;  // an SOA's comes out escaped as in a zone file where needed (\. \DDD)
  uint16_t type = 0;
  uint32_t ttl = 0;  // values with the top bit set read as 0 (RFC 2181 8)
  in_addr a{};       // kTypeA
  in6_addr aaaa{};   // kTypeAaaa
  SrvData srv;       // kTypeSrv
  std::string cname; // kTypeCname
  SoaData soa;       // kTypeSoa
};

struct Message {
  Header header;
  std::vector<Question> questions;
  std::vector<Record> answers;
  std::vector<Record> authority;
  std::vector<Record> additional;
  size_t skippedRecords = 0;  // records of other types or classes, passed over
  uint16_t ednsUdpSize = 0;   // an OPT record's: the UDP payload its sender takes; 0 without one
};

// Parses a whole response. Only class IN records of the types above are kept; the names of
// those skipped may hold any octet.
Result<Message> parseMessage(const uint8_t* data, size_t size);

// "NOERROR", "NXDOMAIN", ..., or "RCODE 11".
std::string rcodeName(uint8_t rcode);
// "A", "AAAA", "SRV", "CNAME", or "TYPE 99".
std::string typeName(uint16_t type);
// DNS names compare case-insensitively (RFC 4343); a trailing dot is ignored.
bool sameName(std::string_view a, std::string_view b);

// The end of the CNAME chain that starts at `name` among `records`, and the lowest TTL
// met on the way. An error when the chain loops or is longer than kMaxCnameChain.
struct CanonicalName {
  std::string name;
  uint32_t ttl = UINT32_MAX;  // UINT32_MAX: no CNAME was followed
};
Result<CanonicalName> followCnames(const std::vector<const Record*>& records, std::string_view name);

// The address records (A and AAAA) that answer `name` in `records`, after CNAMEs.
struct AddressSet {
  std::vector<in_addr> v4;
  std::vector<in6_addr> v6;
  uint32_t ttl = UINT32_MAX;  // lowest TTL among the records used; UINT32_MAX: none
  bool empty() const { return v4.empty() && v6.empty(); }
};
Result<AddressSet> addressesFor(const std::vector<const Record*>& records, std::string_view name);

// What an SRV answer says: each SRV record of the (CNAME-resolved) question name, with the
// addresses of its target taken from the answer and additional sections when present.
struct SrvTarget {
  SrvData srv;
  AddressSet addresses;  // empty: the message had no address for this target
};
struct SrvAnswer {
  std::vector<SrvTarget> targets;
  uint32_t ttl = UINT32_MAX;  // lowest TTL among SRV and CNAME records used
};
Result<SrvAnswer> readSrvAnswer(const Message& message, std::string_view name);

// The addresses answering an A or AAAA question (`type`) for `name`, after CNAMEs, from
// the answer section only; records of the other address type are ignored.
Result<AddressSet> readAddressAnswer(const Message& message, std::string_view name, uint16_t type);

// Whether the answer section says anything about `name`: it is empty (no data, NXDOMAIN),
// or holds a record of `type` for `name` or a CNAME on its way. One whose records are all
// of other names, classes or types answers some other question, however well formed.
bool answersAbout(const Message& message, std::string_view name, uint16_t type);

// The TTL a negative answer (NXDOMAIN or no data) may be cached for: min(SOA TTL,
// SOA minimum) of the authority section's SOA, or `fallback` without one.
uint32_t negativeTtl(const Message& message, uint32_t fallback);

}  // namespace connectable::dns
