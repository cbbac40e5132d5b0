// DnsPacket: builds DNS response messages byte by byte for tests, well-formed or broken
// on purpose (counts, pointers and lengths can all be set by hand).
// Not thread-safe; one test uses one builder.
#pragma once

#include <arpa/inet.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace connectable::testing {

class DnsPacket {
 public:
  enum Section { Answer = 0, Authority = 1, Additional = 2 };
  static constexpr uint16_t kResponseFlags = 0x8180;  // QR, RD, RA, NOERROR

  explicit DnsPacket(uint16_t flags = kResponseFlags, uint16_t id = 0x4242) {
    u16(id);
    u16(flags);
    for (int i = 0; i < 4; ++i) u16(0);
  }

  // Raw pieces.
  DnsPacket& u8(uint8_t v) { bytes_.push_back(v); return *this; }
  DnsPacket& u16(uint16_t v) { u8(static_cast<uint8_t>(v >> 8)); return u8(static_cast<uint8_t>(v)); }
  DnsPacket& u32(uint32_t v) { u16(static_cast<uint16_t>(v >> 16)); return u16(static_cast<uint16_t>(v)); }
  DnsPacket& raw(const std::vector<uint8_t>& b) { bytes_.insert(bytes_.end(), b.begin(), b.end()); return *this; }
  // Labels of `name` without the terminating zero, so a pointer may follow.
  DnsPacket& labels(std::string_view name) {
    while (!name.empty()) {
      size_t dot = name.find('.');
      std::string_view label = name.substr(0, dot);
      u8(static_cast<uint8_t>(label.size()));
      bytes_.insert(bytes_.end(), label.begin(), label.end());
      name = dot == std::string_view::npos ? std::string_view() : name.substr(dot + 1);
    }
    return *this;
  }
  DnsPacket& name(std::string_view n) { labels(n); return u8(0); }
  DnsPacket& pointer(size_t offset) {
    u8(static_cast<uint8_t>(0xC0 | (offset >> 8)));
    return u8(static_cast<uint8_t>(offset));
  }
  size_t size() const { return bytes_.size(); }

  // Whole entries; each bumps the count of its section.
  DnsPacket& question(std::string_view n, uint16_t type) {
    name(n).u16(type).u16(1);
    return count(4, 1);
  }
  // Starts a record whose owner name the caller has already written: type, class, ttl.
  DnsPacket& recordHeader(uint16_t type, uint32_t ttl, uint16_t klass = 1) {
    return u16(type).u16(klass).u32(ttl);
  }
  DnsPacket& record(Section s, std::string_view owner, uint16_t type, uint32_t ttl,
                    const std::vector<uint8_t>& rdata) {
    name(owner).recordHeader(type, ttl).u16(static_cast<uint16_t>(rdata.size())).raw(rdata);
    return count(6 + 2 * s, 1);
  }
  DnsPacket& a(Section s, std::string_view owner, const char* ip, uint32_t ttl = 30) {
    std::vector<uint8_t> rd(4);
    inet_pton(AF_INET, ip, rd.data());
    return record(s, owner, 1, ttl, rd);
  }
  DnsPacket& aaaa(Section s, std::string_view owner, const char* ip, uint32_t ttl = 30) {
    std::vector<uint8_t> rd(16);
    inet_pton(AF_INET6, ip, rd.data());
    return record(s, owner, 28, ttl, rd);
  }
  DnsPacket& cname(Section s, std::string_view owner, std::string_view target, uint32_t ttl = 30) {
    return record(s, owner, 5, ttl, encodeName(target));
  }
  DnsPacket& srv(Section s, std::string_view owner, uint16_t priority, uint16_t weight, uint16_t port,
                 std::string_view target, uint32_t ttl = 30) {
    std::vector<uint8_t> rd = {static_cast<uint8_t>(priority >> 8), static_cast<uint8_t>(priority),
                               static_cast<uint8_t>(weight >> 8), static_cast<uint8_t>(weight),
                               static_cast<uint8_t>(port >> 8), static_cast<uint8_t>(port)};
    std::vector<uint8_t> n = encodeName(target);
    rd.insert(rd.end(), n.begin(), n.end());
    return record(s, owner, 33, ttl, rd);
  }
  DnsPacket& txt(Section s, std::string_view owner, std::string_view text, uint32_t ttl = 30) {
    std::vector<uint8_t> rd = {static_cast<uint8_t>(text.size())};
    rd.insert(rd.end(), text.begin(), text.end());
    return record(s, owner, 16, ttl, rd);
  }
  DnsPacket& soa(Section s, std::string_view owner, uint32_t ttl, uint32_t minimum) {
    std::vector<uint8_t> rd = encodeName("ns." + std::string(owner));
    std::vector<uint8_t> r = encodeName("hostmaster." + std::string(owner));
    rd.insert(rd.end(), r.begin(), r.end());
    for (uint32_t v : {1u, 3600u, 600u, 86400u, minimum}) {
      for (int shift = 24; shift >= 0; shift -= 8) rd.push_back(static_cast<uint8_t>(v >> shift));
    }
    return record(s, owner, 6, ttl, rd);
  }

  // Header fields by hand, for broken packets.
  DnsPacket& setCount(Section s, uint16_t n) { return put16(6 + 2 * s, n); }
  DnsPacket& setQuestionCount(uint16_t n) { return put16(4, n); }
  DnsPacket& bumpCount(Section s) { return count(6 + 2 * s, 1); }

  std::vector<uint8_t> bytes() const { return bytes_; }
  // The message cut to its first `n` bytes.
  std::vector<uint8_t> prefix(size_t n) const {
    return std::vector<uint8_t>(bytes_.begin(), bytes_.begin() + static_cast<long>(std::min(n, bytes_.size())));
  }

  static std::vector<uint8_t> encodeName(std::string_view n) {
    DnsPacket p;
    p.bytes_.clear();
    p.name(n);
    return p.bytes_;
  }

 private:
  DnsPacket& put16(size_t offset, uint16_t v) {
    bytes_[offset] = static_cast<uint8_t>(v >> 8);
    bytes_[offset + 1] = static_cast<uint8_t>(v);
    return *this;
  }
  DnsPacket& count(size_t offset, uint16_t add) {
    return put16(offset, static_cast<uint16_t>(((bytes_[offset] << 8) | bytes_[offset + 1]) + add));
  }

  std::vector<uint8_t> bytes_;
};

}  // namespace connectable::testing
