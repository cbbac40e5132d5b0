// Balancer: decides in which order one connection tries the backends of a port, and keeps
// the passive-health penalties that push a failing backend to the end of that order.
// Owned by the shim's event loop thread; not thread-safe.
//
// Order = healthy backends by SRV priority group (lowest first), each group ordered by the
// policy; then penalized backends, the one whose penalty ends soonest first. Every backend
// appears exactly once, so a connection fails only when all were tried. A penalized
// backend is back in turn once something reaches it: a health probe at its penalty's end
// (shim/health_probes.h), or a connection that tried it last.
#pragma once

#include <memory>
#include <random>
#include <string_view>
#include <utility>
#include <vector>

#include "shim/backend.h"

namespace connectable {

enum class BalancePolicy {
  Random,      // a fresh weighted shuffle per connection (RFC 2782 within a priority group)
  RoundRobin,  // rotate the start of each group, one step per connection
  LeastConn,   // fewest active connections (per unit of weight) first; ties by weighted shuffle
  PowerOfTwo,  // two choices drawn by weight, the less loaded per unit of weight first
};

bool parseBalancePolicy(std::string_view text, BalancePolicy* out);
const char* balancePolicyName(BalancePolicy policy);

struct PenaltyPolicy {
  Millis base{1000};   // after the first failure in a row
  Millis max{30000};   // doubling stops here
};

class Balancer {
 public:
  using BackendList = std::vector<std::shared_ptr<Backend>>;

  explicit Balancer(BalancePolicy policy, PenaltyPolicy penalty = {},
                    uint64_t seed = std::random_device{}());

  // Fills `out` with every backend of `backends`, in the order to try them.
  void order(const BackendList& backends, BackendList* out);

  // Passive health: a failed connect penalizes, growing with each failure in a row;
  // an established connection (or a health probe's) clears it. A connect that was already
  // under way when the last failure was seen (attemptStarted <= backend.lastFailure) fails
  // for the same reason and starts the penalty again without lengthening it.
  // recordFailure counts a client's connect in connectFailures; penalize alone is a probe's.
  void recordFailure(Backend& backend, Clock::time_point attemptStarted, Clock::time_point now) const;
  void penalize(Backend& backend, Clock::time_point attemptStarted, Clock::time_point now) const;
  void recordSuccess(Backend& backend) const;
  Millis penaltyFor(uint32_t consecutiveFailures) const;

  BalancePolicy policy() const { return policy_; }

 private:
  void orderGroup(BackendList::iterator first, BackendList::iterator last);
  void weightedShuffle(BackendList::iterator first, BackendList::iterator last);

  BalancePolicy policy_;
  PenaltyPolicy penalty_;
  std::mt19937_64 rng_;
  uint64_t rotation_ = 0;
  BackendList scratch_;
  std::vector<std::pair<double, std::shared_ptr<Backend>>> keys_;  // weightedShuffle's
};

}  // namespace connectable
