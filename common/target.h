// Target grammar: what a `connect.<port>=<target>[,<target>...]` label or a shim's
// `--connect PORT=TARGET[,...]` names as the backends of one listening port.
//
//   <target> := <name>            DNS SRV lookup: redis.service.consul, _redis._tcp.example.org
//             | <host>:<port>     A/AAAA lookup of host with a fixed port: db.example.org:5432
//             | <ipv4>:<port>     literal, no lookup: 198.18.0.5:6379
//             | [<ipv6>]:<port>   literal, no lookup: [fd00::5]:6379
//
// Pure functions over plain values; no thread-safety concerns. Every error message names
// the offending text and says what is wrong with it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/socket_address.h"
#include "common/status.h"

namespace connectable {

struct Target {
  enum class Kind { Literal, HostPort, Srv };
  Kind kind = Kind::Literal;
  std::string text;        // as written, for logs and status
  std::string host;        // Srv: the SRV name; HostPort: the host name; Literal: the IP text
  uint16_t port = 0;       // HostPort and Literal
  SocketAddress address;   // Literal only

  bool needsLookup() const { return kind != Kind::Literal; }
  // What a shim's resolver looks up, and caches, as one: the kind, the name (case makes no
  // other lookup; a trailing dot does, as search domains may apply without it) and the port.
  std::string lookupKey() const;
  // Whether its lookup asks a DNS server: not for "localhost", loopback by definition
  // (RFC 6761).
  bool asksDnsServer() const;
};

struct ConnectSpec {
  uint16_t port = 0;            // the listening port
  std::vector<Target> targets;  // in the order written
  std::string text() const;         // "6000=redis.service.consul,198.18.0.5:6379"
  std::string targetsText() const;  // "redis.service.consul,198.18.0.5:6379"
};

// "6379", "1".."65535"; what a port is in every place of the grammar.
Result<uint16_t> parsePort(std::string_view text);

// A DNS name as RFC 1035 allows it, plus '_' (SRV owner names): labels of 1-63 characters
// from [A-Za-z0-9_-], not starting or ending with '-', at most 253 characters, one
// optional trailing dot.
Status validateDnsName(std::string_view name);

// Why no connection should go to this address, or nothing: the unspecified address (0.0.0.0,
// ::), which connect() takes for the local host, link-local IPv6 (it needs a zone), multicast
// and broadcast. Literal targets with one are refused; DNS answers with one are left out.
std::string unconnectableBecause(const SocketAddress& address);

Result<Target> parseTarget(std::string_view text);
Result<std::vector<Target>> parseTargetList(std::string_view text);
// "PORT=TARGET[,TARGET...]"
Result<ConnectSpec> parseConnectSpec(std::string_view text);
// Builds a spec from a label's pieces: the key's port text and the value.
Result<ConnectSpec> parseConnectSpec(std::string_view portText, std::string_view targets);

}  // namespace connectable
