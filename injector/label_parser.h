// Label parser: what a container's labels ask of connectable. `connect.<port>=<targets>`
// declares a port (keys matched exactly; `connect[<port>]`, which gliderlabs/connectable's
// code read, is the same label), `connectable.<option>=<value>` tunes its shim.
// Each bad label becomes an error naming it and is skipped; the others still apply.
// Pure functions over plain values; no thread-safety concerns.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "common/target.h"

namespace connectable {

struct ContainerRequest {
  std::vector<ConnectSpec> connects;     // valid connect labels, sorted by port
  std::vector<std::string> shimArgs;     // shim options from connectable.* labels
  std::vector<std::string> errors;       // one per bad label: "label 'connect.0': port '0' is ..."
  // When some label is connectable's but none a usable connect.PORT, why it gets no shim,
  // naming a key that looks like a mistyped one: "it has no connect.PORT label, so its
  // connectable.* options apply to nothing (did you mean 'connect.6000', not 'conect.6000'?)".
  std::string noShimBecause;
  bool wanted() const { return !connects.empty(); }
};

// A longer label value is a bad label. Far more than any real target list, and far below
// what one exec argument may be (128 KiB), so the shim can always be started.
inline constexpr size_t kMaxLabelValue = 16 * 1024;
// A longer connect or connectable.* key is a bad label: every real one is short, and each
// message about a label names its key.
inline constexpr size_t kMaxLabelKey = 256;

// At most this many distinct DNS lookups, over all of a container's connect labels, taken
// in key order: a label whose new lookups would pass it is a bad label. A lookup is what
// the shim's resolver asks and caches as one: an SRV name, or a host name with its port
// (db:5432 and db:5433 are two). The shim refreshes each in the background, at most once
// per --dns-min-ttl, and the host's DNS server is shared by every container: the floor
// spaces one lookup's queries, this bounds how many a label can make. An SRV answer's
// targets are looked up too, as many as the registry answers with: that is the
// registry's to bound, not a label's. Far more than the services one program depends on.
inline constexpr size_t kMaxDnsLookupsPerContainer = 64;

// Options a label may set, as connectable.<name>; each maps to the shim's --<name>.
const std::vector<std::string>& labelOptionNames();

// What the host lets a label ask for: a container may lower the injector's --max-conns,
// never raise it, since its connections hold the host's descriptors and ports; and may
// raise its --dns-min-ttl, never lower it, since its queries go to the host's DNS server,
// shared by every container (Consul answers with TTL 0: the floor is all that spaces them).
struct LabelLimits {
  size_t maxConns = 0;                             // 0: no ceiling (the host's --max-conns is unlimited)
  std::chrono::milliseconds dnsMinTtl{0};          // 0: no floor
};

ContainerRequest parseContainerLabels(const std::map<std::string, std::string>& labels, const LabelLimits& limits = {});

// True when some label starts with "connect.", "connect[" or "connectable.", or is one
// slip from a connect.PORT key ("conect.6000", "Connect.6000"): worth a closer look.
bool mentionsConnectable(const std::map<std::string, std::string>& labels);

}  // namespace connectable
