#include "common/address_ranges.h"

#include <arpa/inet.h>

#include <cstring>

namespace connectable {
namespace {

// The address's bytes, IPv4-mapped IPv6 folded to IPv4; returns the family.
int addressBytes(const SocketAddress& address, uint8_t out[16]) {
  const SocketAddress a = address.unmapped();
  if (a.family() == AF_INET) {
    std::memcpy(out, &reinterpret_cast<const sockaddr_in*>(a.sockaddr_ptr())->sin_addr, 4);
    return AF_INET;
  }
  std::memcpy(out, reinterpret_cast<const sockaddr_in6*>(a.sockaddr_ptr())->sin6_addr.s6_addr, 16);
  return AF_INET6;
}

bool samePrefix(const uint8_t* a, const uint8_t* b, int bits) {
  const int whole = bits / 8, rest = bits % 8;
  if (std::memcmp(a, b, static_cast<size_t>(whole)) != 0) return false;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}

}  // namespace

Result<AddressRanges> AddressRanges::parse(std::string_view text) {
  AddressRanges out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    std::string item(text.substr(start, comma - start));
    start = comma + 1;
    if (item.empty()) return Status::error("'" + std::string(text) + "': an empty range");
    std::string ip = item;
    int prefix = -1;
    if (size_t slash = item.find('/'); slash != std::string::npos) {
      ip = item.substr(0, slash);
      const std::string bits = item.substr(slash + 1);
      if (bits.empty() || bits.size() > 3 || bits.find_first_not_of("0123456789") != std::string::npos)
        return Status::error("'" + item + "': the prefix length is not a number");
      prefix = std::stoi(bits);
    }
    if (ip.size() > 2 && ip.front() == '[' && ip.back() == ']') ip = ip.substr(1, ip.size() - 2);
    auto address = SocketAddress::parseIp(ip, 0);
    if (!address) return Status::error("'" + item + "': not an IPv4 or IPv6 address (names are not taken here)");
    Range r;
    r.family = addressBytes(*address, r.bytes);
    const int maxBits = r.family == AF_INET ? 32 : 128;
    const int written = prefix;
    // ::ffff:10.0.0.0/104 is 10.0.0.0/8: its prefix counts IPv6 bits, of which the mapped
    // block takes the first 96.
    const bool mapped = address->family() == AF_INET6 && r.family == AF_INET;
    if (mapped && prefix >= 0) {
      if (prefix > 128) return Status::error("'" + item + "': a prefix longer than 128 bits");
      if (prefix < 96)
        return Status::error("'" + item + "': a prefix shorter than 96 bits holds more than the IPv4-mapped "
                             "addresses (::ffff:0:0/96); write an IPv4 range or another IPv6 one");
      prefix -= 96;
    }
    if (prefix < 0) prefix = maxBits;
    if (prefix > maxBits) return Status::error("'" + item + "': a prefix longer than " + std::to_string(maxBits) + " bits");
    uint8_t network[16]{};
    std::memcpy(network, r.bytes, static_cast<size_t>(prefix / 8));
    if (prefix % 8) network[prefix / 8] = static_cast<uint8_t>(r.bytes[prefix / 8] & (0xff << (8 - prefix % 8)));
    if (std::memcmp(network, r.bytes, static_cast<size_t>(maxBits / 8)) != 0)
      return Status::error("'" + item + "': host bits are set under the /" + std::to_string(written < 0 ? prefix : written) + " prefix");
    r.prefix = prefix;
    // Shown as the IPv4 range it is: ::ffff:10.0.0.1/32 read as an IPv6 /32.
    r.text = address->unmapped().ipString() + "/" + std::to_string(prefix);
    out.ranges_.push_back(r);
  }
  return out;
}

bool AddressRanges::contains(const SocketAddress& address) const {
  if (!address.valid()) return false;
  uint8_t bytes[16]{};
  const int family = addressBytes(address, bytes);
  for (const Range& r : ranges_)
    if (r.family == family && samePrefix(bytes, r.bytes, r.prefix)) return true;
  return false;
}

std::string AddressRanges::text() const {
  std::string out;
  for (const Range& r : ranges_) out += (out.empty() ? "" : ",") + r.text;
  return out;
}

void AddressRanges::add(const AddressRanges& other) {
  ranges_.insert(ranges_.end(), other.ranges_.begin(), other.ranges_.end());
}

}  // namespace connectable
