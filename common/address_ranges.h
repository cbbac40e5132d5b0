// AddressRanges: a set of IP networks (CIDR), for --allow-upstream: the addresses a shim
// may connect to. A plain value; no thread-safety concerns.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/socket_address.h"
#include "common/status.h"

namespace connectable {

class AddressRanges {
 public:
  // "10.0.0.0/8,198.18.0.0/15,fd00::/8,127.0.0.1": a bare address is that address alone.
  // Host bits set under the prefix are an error (10.1.0.0/8 is a typo more often than not).
  static Result<AddressRanges> parse(std::string_view text);

  bool empty() const { return ranges_.empty(); }
  // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the IPv4 address it carries: an AAAA
  // record must not reach what an A record could not.
  bool contains(const SocketAddress& address) const;
  // The ranges joined, another parse() may be given: "10.0.0.0/8,fd00::/8".
  std::string text() const;
  // Adds other's ranges to these.
  void add(const AddressRanges& other);

 private:
  struct Range {
    int family = 0;        // AF_INET or AF_INET6
    uint8_t bytes[16]{};   // the network, host bits zero
    int prefix = 0;        // bits
    std::string text;
  };
  std::vector<Range> ranges_;
};

}  // namespace connectable
