// HealthProbes: the shim tests a penalized backend itself, so that clients do not. Without
// it, a backend was back in turn when its penalty ended, and the next client was the test:
// for a backend that drops SYNs (its host gone), that client waited the whole connect
// timeout before failing over, once at every penalty's end for as long as it stayed dead.
// Owned by a ListenPort; runs on the EventLoop's thread; not thread-safe.
//
// At a failed backend's penalty's end, a probe connects to it as a client would (from the
// same namespace, with --connect-timeout), watches the connection for a moment, and closes
// without a byte; a backend that hangs up on it meanwhile fails it. Until a probe
// or a connection reaches it, the backend stays penalized (Balancer: tried last). A probe
// that fails penalizes it again like a client's failure, for longer, and the next probe
// waits for that penalty's end. At most one probe per backend is scheduled or in flight;
// a backend that never failed is never probed.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>

#include "common/event_loop.h"
#include "shim/backend.h"
#include "shim/backend_set.h"
#include "shim/balancer.h"

namespace connectable {

class HealthProbes {
 public:
  // REQUIRES: loop, backends and balancer outlive this object.
  HealthProbes(EventLoop& loop, const BackendSet& backends, const Balancer& balancer, Millis connectTimeout,
               uint16_t port);
  // Cancels the timers and closes the sockets of every probe.
  ~HealthProbes();
  HealthProbes(const HealthProbes&) = delete;
  HealthProbes& operator=(const HealthProbes&) = delete;

  // `backend` has just been penalized (Balancer::recordFailure): it is probed when its
  // penalty ends. A probe already in flight goes on; one scheduled waits for the new end.
  void probeWhenPenaltyEnds(const std::shared_ptr<Backend>& backend);
  // A connect to `backend` succeeded: it is in turn again (Balancer::recordSuccess), its
  // return is logged if its failing was, and its probe is dropped. Called for every
  // connection: one that was not penalized has nothing to clear (nor a probe).
  void answered(Backend& backend) {
    if (backend.penalized()) answeredAgain(backend);
  }
  // Drops the probes of backends the set no longer has (a DNS answer left them out).
  void dropGone();

  // Backends with a probe scheduled or in flight.
  size_t watched() const { return probes_.size(); }

 private:
  class Probe;
  void answeredAgain(Backend& backend);
  void drop(const Backend& backend);

  EventLoop& loop_;
  const BackendSet& backends_;
  const Balancer& balancer_;
  Millis connectTimeout_;
  uint16_t port_;
  std::unordered_map<const Backend*, std::shared_ptr<Probe>> probes_;
};

}  // namespace connectable
