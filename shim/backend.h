// Backend: one address a listening port proxies to, with the live state that balancing
// and health read (active connections, consecutive failures, penalty, health probes).
// Owned by the shim's event loop thread; not thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "common/event_loop.h"
#include "common/socket_address.h"

namespace connectable {

// A backend that accepts a connection and hangs up on it without a byte this soon fails a
// client's connection (Connection::hungUpWithoutAByte) and a health probe alike. A
// forwarder with nothing behind it hangs up within a millisecond or two.
constexpr Millis kHangUpWindow{200};

struct Backend {
  SocketAddress address;
  uint16_t priority = 0;  // SRV priority: the lowest group is used first
  uint16_t weight = 1;    // SRV weight within a priority group
  std::string target;     // the target text this backend came from, for status and logs

  uint32_t active = 0;            // connections open through it now
  uint64_t total = 0;             // connections ever established
  uint64_t connectFailures = 0;   // refused, timed out or errored connects of clients, and hang-ups without a byte
  uint64_t probes = 0;            // health probes made (shim/health_probes.h)
  uint64_t probeFailures = 0;     // of which failed
  uint64_t bytesToBackend = 0;
  uint64_t bytesFromBackend = 0;
  uint32_t consecutiveFailures = 0;
  Clock::time_point lastFailure{};     // when the last failed connect was seen
  Clock::time_point penalizedUntil{};  // not probed before then
  bool probing = false;                // a health probe's connect is under way
  // "backend failing" was logged for the failures in a row now; when it was last logged.
  bool failingLogged = false;
  Clock::time_point failingLoggedAt{};

  // Tried last: it failed, and since then neither a probe nor a connection reached it.
  bool penalized() const { return consecutiveFailures > 0; }
  // Its penalty still runs: the health probe waits for its end.
  bool penaltyRunning(Clock::time_point now) const { return now < penalizedUntil; }
};

}  // namespace connectable
