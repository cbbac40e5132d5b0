// Discovery: feeds each port's DNS targets from the resolver into its backend set, so new
// connections see answers as they change (open connections are untouched).
// Runs on the shim's event loop thread; not thread-safe.
#pragma once

#include "common/srv_resolver.h"
#include "shim/proxy.h"

namespace connectable {

// Watches every target of every port that needs a lookup. REQUIRES: resolver initialised;
// both outlive the watches.
void attachDiscovery(ServiceResolver& resolver, Proxy& proxy);

// Whether any port names a target that needs DNS.
bool needsDiscovery(const Proxy& proxy);

}  // namespace connectable
