#include "common/dns_message.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <unordered_map>

namespace connectable::dns {
namespace {

constexpr size_t kHeaderSize = 12;
// Far more than any sane name needs; backward-only pointers already rule out loops.
constexpr int kMaxPointerHops = 64;

std::string at(size_t offset) { return " at offset " + std::to_string(offset); }

uint16_t read16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
uint32_t read32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// A label may hold any octet (RFC 2181 11), as an SOA's mailbox john\.doe.example.org does.
// Names the shim compares or connects to must be host names: a dot or a space inside a
// label would make their text ambiguous. The others are only read past.
enum class Octets { kHostName, kAny };

// Whether a name the shim uses may hold this octet in a label.
bool hostNameOctet(uint8_t c) { return c > ' ' && c <= '~' && c != '.' && c != '\\'; }

// Reads a possibly compressed name starting at *pos; on success *pos is just past the
// name's bytes at that place (the pointer, if it ended with one). With Octets::kAny the
// structure is checked all the same, and other octets come out escaped as in a zone file
// (RFC 1035 5.1: \. and \DDD), so that no two names read the same.
Result<std::string> readName(const uint8_t* data, size_t size, size_t* pos, Octets octets = Octets::kHostName) {
  std::string out;
  size_t offset = *pos;
  size_t runStart = offset;  // a pointer must go strictly before this: no loops possible
  size_t wireLength = 0;
  bool jumped = false;
  int hops = 0;
  for (;;) {
    if (offset >= size) return Status::error("name runs past the end of the message" + at(offset));
    uint8_t len = data[offset];
    if ((len & 0xC0) == 0xC0) {
      if (offset + 1 >= size) return Status::error("compression pointer cut short" + at(offset));
      size_t target = (size_t{len & 0x3Fu} << 8) | data[offset + 1];
      if (target >= runStart) {
        return Status::error("compression pointer to " + std::to_string(target) +
                             " does not point backwards" + at(offset));
      }
      if (++hops > kMaxPointerHops) return Status::error("too many compression pointers" + at(offset));
      if (!jumped) *pos = offset + 2;
      jumped = true;
      offset = runStart = target;
      continue;
    }
    if ((len & 0xC0) != 0) return Status::error("unsupported label type" + at(offset));
    wireLength += 1u + len;
    if (wireLength > kMaxNameWireLength) {
      return Status::error("name longer than 255 octets (253 characters)" + at(*pos));
    }
    if (len == 0) {
      if (!jumped) *pos = offset + 1;
      return out;
    }
    if (offset + 1 + len > size) return Status::error("label runs past the end of the message" + at(offset));
    if (!out.empty()) out += '.';
    for (size_t i = 0; i < len; ++i) {
      uint8_t c = data[offset + 1 + i];
      if (hostNameOctet(c)) {
        out += static_cast<char>(c);
      } else if (octets == Octets::kHostName) {
        return Status::error("name has an unsupported character" + at(offset + 1 + i));
      } else if (c == '.' || c == '\\') {
        out += '\\';
        out += static_cast<char>(c);
      } else {
        char escaped[5];
        std::snprintf(escaped, sizeof escaped, "\\%03u", c);
        out += escaped;
      }
    }
    offset += 1u + len;
  }
}

Status expectEnd(size_t pos, size_t end, const std::string& what, size_t start) {
  if (pos != end) return Status::error(what + " data does not fill its rdlength" + at(start));
  return Status::ok();
}

// Reads one record; *keep is false for types and classes this module does not use.
Status readRecord(const uint8_t* data, size_t size, size_t* pos, Record* rec, bool* keep, uint16_t* klassOut) {
  size_t start = *pos;
  // Any owner name will do until the type says whether the shim uses it.
  Result<std::string> name = readName(data, size, pos, Octets::kAny);
  if (!name) return name.status();
  if (size - *pos < 10) return Status::error("record header cut short" + at(start));
  const uint8_t* p = data + *pos;
  rec->name = std::move(*name);
  rec->type = read16(p);
  uint16_t klass = read16(p + 2);
  *klassOut = klass;
  uint32_t ttl = read32(p + 4);
  rec->ttl = (ttl & 0x80000000u) ? 0 : ttl;
  size_t rdlength = read16(p + 8);
  size_t rd = *pos + 10;
  if (rdlength > size - rd) {
    return Status::error(typeName(rec->type) + " record data (" + std::to_string(rdlength) +
                         " bytes) runs past the end of the message" + at(start));
  }
  size_t end = rd + rdlength;
  *pos = end;
  *keep = klass == kClassIn;
  if (!*keep) return Status::ok();
  const bool used = rec->type == kTypeA || rec->type == kTypeAaaa || rec->type == kTypeCname || rec->type == kTypeSrv;
  if (used && rec->name.find('\\') != std::string::npos) {
    // Only a name that is not a host name comes out with an escape; read strictly again to
    // say which octet and where.
    size_t again = start;
    return readName(data, size, &again).status();
  }
  switch (rec->type) {
    case kTypeA:
      if (rdlength != sizeof(in_addr)) return Status::error("A record with rdlength " + std::to_string(rdlength) + at(start));
      std::memcpy(&rec->a, data + rd, sizeof(in_addr));
      return Status::ok();
    case kTypeAaaa:
      if (rdlength != sizeof(in6_addr)) return Status::error("AAAA record with rdlength " + std::to_string(rdlength) + at(start));
      std::memcpy(&rec->aaaa, data + rd, sizeof(in6_addr));
      return Status::ok();
    case kTypeCname: {
      // Names inside rdata are read against `end`, so they can never spill into the next record.
      size_t q = rd;
      Result<std::string> target = readName(data, end, &q);
      if (!target) return target.status().withContext("CNAME record");
      rec->cname = std::move(*target);
      return expectEnd(q, end, "CNAME", start);
    }
    case kTypeSrv: {
      if (rdlength < 7) return Status::error("SRV record with rdlength " + std::to_string(rdlength) + at(start));
      rec->srv.priority = read16(data + rd);
      rec->srv.weight = read16(data + rd + 2);
      rec->srv.port = read16(data + rd + 4);
      size_t q = rd + 6;
      Result<std::string> target = readName(data, end, &q);
      if (!target) return target.status().withContext("SRV record");
      rec->srv.target = std::move(*target);
      return expectEnd(q, end, "SRV", start);
    }
    case kTypeSoa: {
      size_t q = rd;
      // Only the minimum is used: mname and rname (a mailbox, often with a dot in a label)
      // are read past.
      for (int i = 0; i < 2; ++i) {
        Result<std::string> n = readName(data, end, &q, Octets::kAny);
        if (!n) return n.status().withContext("SOA record");
      }
      if (end - q != 20) return expectEnd(q + 20, end, "SOA", start);
      rec->soa.minimum = read32(data + q + 16);
      return Status::ok();
    }
    default:
      *keep = false;
      return Status::ok();
  }
}

// `ednsUdpSize`, when given, gets the payload size of an OPT record met (RFC 6891 6.1.2).
Status readSection(const uint8_t* data, size_t size, size_t* pos, uint16_t count, bool truncated,
                   const char* section, std::vector<Record>* out, size_t* skipped, uint16_t* ednsUdpSize = nullptr) {
  for (uint16_t i = 0; i < count; ++i) {
    // A truncated message may end at any record boundary; what came before is still valid.
    if (truncated && *pos >= size) return Status::ok();
    Record rec;
    bool keep = false;
    uint16_t klass = 0;
    if (Status s = readRecord(data, size, pos, &rec, &keep, &klass); !s) {
      return s.withContext(std::string(section) + " record " + std::to_string(i + 1));
    }
    if (rec.type == kTypeOpt && ednsUdpSize != nullptr) *ednsUdpSize = klass;
    if (keep) {
      out->push_back(std::move(rec));
    } else {
      ++*skipped;
    }
  }
  return Status::ok();
}

std::vector<const Record*> pointersTo(std::initializer_list<const std::vector<Record>*> sections) {
  std::vector<const Record*> out;
  for (const auto* section : sections)
    for (const auto& r : *section) out.push_back(&r);
  return out;
}

Result<AddressSet> addressesOfTypes(const std::vector<const Record*>& records, std::string_view name,
                                    bool wantV4, bool wantV6) {
  Result<CanonicalName> canonical = followCnames(records, name);
  if (!canonical) return canonical.status();
  AddressSet out;
  // Duplicates dropped through sets, not scans: a TCP answer may carry thousands.
  std::set<uint32_t> seenV4;
  std::set<std::string> seenV6;
  for (const Record* r : records) {
    if (!sameName(r->name, canonical->name)) continue;
    if (r->type == kTypeA && wantV4) {
      if (seenV4.insert(r->a.s_addr).second) out.v4.push_back(r->a);
      out.ttl = std::min(out.ttl, r->ttl);
    } else if (r->type == kTypeAaaa && wantV6) {
      if (seenV6.insert(std::string(reinterpret_cast<const char*>(&r->aaaa), sizeof r->aaaa)).second)
        out.v6.push_back(r->aaaa);
      out.ttl = std::min(out.ttl, r->ttl);
    }
  }
  if (!out.empty()) out.ttl = std::min(out.ttl, canonical->ttl);
  return out;
}

}  // namespace

Result<Message> parseMessage(const uint8_t* data, size_t size) {
  if (data == nullptr || size < kHeaderSize) {
    return Status::error("DNS message of " + std::to_string(size) + " bytes is shorter than its header");
  }
  Message m;
  Header& h = m.header;
  h.id = read16(data);
  uint16_t flags = read16(data + 2);
  h.response = flags & 0x8000;
  h.opcode = static_cast<uint8_t>((flags >> 11) & 0xF);
  h.authoritative = flags & 0x0400;
  h.truncated = flags & 0x0200;
  h.recursionDesired = flags & 0x0100;
  h.recursionAvailable = flags & 0x0080;
  h.rcode = static_cast<uint8_t>(flags & 0xF);
  h.questionCount = read16(data + 4);
  h.answerCount = read16(data + 6);
  h.authorityCount = read16(data + 8);
  h.additionalCount = read16(data + 10);
  if (!h.response) return Status::error("DNS message is a query, not a response");

  size_t pos = kHeaderSize;
  for (uint16_t i = 0; i < h.questionCount; ++i) {
    size_t start = pos;
    Result<std::string> name = readName(data, size, &pos);
    if (!name) return name.status().withContext("question " + std::to_string(i + 1));
    if (size - pos < 4) return Status::error("question cut short" + at(start));
    m.questions.push_back({std::move(*name), read16(data + pos), read16(data + pos + 2)});
    pos += 4;
  }
  if (Status s = readSection(data, size, &pos, h.answerCount, h.truncated, "answer", &m.answers, &m.skippedRecords); !s) return s;
  if (Status s = readSection(data, size, &pos, h.authorityCount, h.truncated, "authority", &m.authority, &m.skippedRecords); !s) return s;
  if (Status s = readSection(data, size, &pos, h.additionalCount, h.truncated, "additional", &m.additional, &m.skippedRecords,
                             &m.ednsUdpSize);
      !s)
    return s;
  return m;
}

std::string rcodeName(uint8_t rcode) {
  static const char* const kNames[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"};
  if (rcode < sizeof kNames / sizeof kNames[0]) return kNames[rcode];
  return "RCODE " + std::to_string(rcode);
}

std::string typeName(uint16_t type) {
  switch (type) {
    case kTypeA: return "A";
    case kTypeAaaa: return "AAAA";
    case kTypeSrv: return "SRV";
    case kTypeCname: return "CNAME";
    case kTypeSoa: return "SOA";
    default: return "TYPE " + std::to_string(type);
  }
}

bool sameName(std::string_view a, std::string_view b) {
  if (!a.empty() && a.back() == '.') a.remove_suffix(1);
  if (!b.empty() && b.back() == '.') b.remove_suffix(1);
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

Result<CanonicalName> followCnames(const std::vector<const Record*>& records, std::string_view name) {
  CanonicalName out{std::string(name), UINT32_MAX};
  for (int hop = 0; hop <= kMaxCnameChain; ++hop) {
    auto it = std::find_if(records.begin(), records.end(), [&](const Record* r) {
      return r->type == kTypeCname && sameName(r->name, out.name);
    });
    if (it == records.end()) return out;
    if (hop == kMaxCnameChain) break;
    out.name = (*it)->cname;
    out.ttl = std::min(out.ttl, (*it)->ttl);
  }
  return Status::error("CNAME chain from " + std::string(name) + " loops or is longer than " +
                       std::to_string(kMaxCnameChain));
}

namespace {

// A name as sameName compares it: lower case, without the final dot.
std::string nameKey(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  std::string key(name);
  for (char& c : key)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return key;
}

// The records named `name`, and those of the names its CNAMEs lead to (as far as
// followCnames would go): all that addressesFor needs to answer for `name`.
std::vector<const Record*> recordsAlongCnames(
    const std::unordered_map<std::string, std::vector<const Record*>>& byName, std::string_view name) {
  std::vector<const Record*> out;
  std::string key = nameKey(name);
  for (int hop = 0; hop <= kMaxCnameChain; ++hop) {
    auto it = byName.find(key);
    if (it == byName.end()) break;
    out.insert(out.end(), it->second.begin(), it->second.end());
    auto cname = std::find_if(it->second.begin(), it->second.end(), [](const Record* r) { return r->type == kTypeCname; });
    if (cname == it->second.end()) break;
    key = nameKey((*cname)->cname);
  }
  return out;
}

}  // namespace

Result<AddressSet> addressesFor(const std::vector<const Record*>& records, std::string_view name) {
  return addressesOfTypes(records, name, true, true);
}

Result<SrvAnswer> readSrvAnswer(const Message& message, std::string_view name) {
  std::vector<const Record*> answers = pointersTo({&message.answers});
  Result<CanonicalName> canonical = followCnames(answers, name);
  if (!canonical) return canonical.status();
  SrvAnswer out;
  // Targets may be answered in either section (and may be CNAMEs themselves). Indexed by
  // name once: an answer may list thousands of targets, each looked up here.
  std::unordered_map<std::string, std::vector<const Record*>> byName;
  for (const Record* r : pointersTo({&message.answers, &message.additional})) byName[nameKey(r->name)].push_back(r);
  std::unordered_map<std::string, AddressSet> addressesOf;
  for (const Record* r : answers) {
    if (r->type != kTypeSrv || !sameName(r->name, canonical->name)) continue;
    SrvTarget t;
    t.srv = r->srv;
    if (!t.srv.target.empty()) {
      // Many SRV records may name one target: its addresses are looked up once.
      const std::string key = nameKey(t.srv.target);
      auto known = addressesOf.find(key);
      if (known == addressesOf.end()) {
        Result<AddressSet> addresses = addressesFor(recordsAlongCnames(byName, t.srv.target), t.srv.target);
        if (!addresses) return addresses.status();
        known = addressesOf.emplace(key, std::move(*addresses)).first;
      }
      t.addresses = known->second;
    }
    out.ttl = std::min(out.ttl, r->ttl);
    out.targets.push_back(std::move(t));
  }
  if (!out.targets.empty()) out.ttl = std::min(out.ttl, canonical->ttl);
  return out;
}

Result<AddressSet> readAddressAnswer(const Message& message, std::string_view name, uint16_t type) {
  return addressesOfTypes(pointersTo({&message.answers}), name, type == kTypeA, type == kTypeAaaa);
}

bool answersAbout(const Message& message, std::string_view name, uint16_t type) {
  if (message.header.answerCount == 0) return true;
  std::vector<const Record*> answers = pointersTo({&message.answers});
  Result<CanonicalName> canonical = followCnames(answers, name);
  // A looping chain is about the name; the readers say what is wrong with it.
  if (!canonical || canonical->ttl != UINT32_MAX) return true;
  return std::any_of(answers.begin(), answers.end(),
                     [&](const Record* r) { return r->type == type && sameName(r->name, name); });
}

uint32_t negativeTtl(const Message& message, uint32_t fallback) {
  for (const Record& r : message.authority) {
    if (r.type == kTypeSoa) return std::min(r.ttl, r.soa.minimum);
  }
  return fallback;
}

}  // namespace connectable::dns
