// Backend: one address a listening port proxies to, with the live state that balancing
// and passive health read (active connections, consecutive failures, penalty).
// Owned by the shim's event loop thread; not thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "common/event_loop.h"
#include "common/socket_address.h"

namespace connectable {

struct Backend {
  SocketAddress address;
  uint16_t priority = 0;  // SRV priority: the lowest group is used first
  uint16_t weight = 1;    // SRV weight within a priority group
  std::string target;     // the target text this backend came from, for status and logs

  uint32_t active = 0;            // connections open through it now
  uint64_t total = 0;             // connections ever established
  uint64_t connectFailures = 0;   // refused, timed out or errored connects
  uint64_t bytesToBackend = 0;
  uint64_t bytesFromBackend = 0;
  uint32_t consecutiveFailures = 0;
  Clock::time_point lastFailure{};     // when the last failed connect was seen
  Clock::time_point penalizedUntil{};  // tried last until then
  // "backend failing" was logged for the failures in a row now; when it was last logged.
  bool failingLogged = false;
  Clock::time_point failingLoggedAt{};

  bool penalized(Clock::time_point now) const { return now < penalizedUntil; }
};

}  // namespace connectable
