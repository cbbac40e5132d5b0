// Whether a shim's loopback ports are free inside a network namespace, checked as the shim
// binds them (127.0.0.1 and ::1, SO_REUSEADDR, ::1 IPv6-only), without starting one: while a
// container's own program holds a port, the supervisor waits for it to free this way instead
// of starting a shim every 10 s that only fails and logs so.
// Thread-safe: the check runs on a thread of its own, the only one that enters the namespace.
#pragma once

#include <cstdint>
#include <vector>

#include "common/netns.h"
#include "common/status.h"

namespace connectable {

// The ports of `ports` that a listener of another socket holds in `netns` (bind refused with
// EADDRINUSE). Each is bound for a moment and closed again, never listened on. An error when
// the namespace cannot be entered or a socket made: then only starting the shim can tell.
Result<std::vector<uint16_t>> takenLoopbackPorts(const NetnsFd& netns, const std::vector<uint16_t>& ports);

}  // namespace connectable
