#include "shim/balancer.h"

#include <algorithm>

#include "common/natural_log.h"

namespace connectable {

bool parseBalancePolicy(std::string_view text, BalancePolicy* out) {
  for (BalancePolicy p : {BalancePolicy::Random, BalancePolicy::RoundRobin, BalancePolicy::LeastConn,
                          BalancePolicy::PowerOfTwo}) {
    if (text == balancePolicyName(p)) {
      *out = p;
      return true;
    }
  }
  return false;
}

const char* balancePolicyName(BalancePolicy policy) {
  switch (policy) {
    case BalancePolicy::Random: return "random";
    case BalancePolicy::RoundRobin: return "round-robin";
    case BalancePolicy::LeastConn: return "least-conn";
    case BalancePolicy::PowerOfTwo: return "p2c";
  }
  return "?";
}

Balancer::Balancer(BalancePolicy policy, PenaltyPolicy penalty, uint64_t seed)
    : policy_(policy), penalty_(penalty), rng_(seed) {}

Millis Balancer::penaltyFor(uint32_t consecutiveFailures) const {
  if (consecutiveFailures == 0) return Millis(0);
  Millis p = penalty_.base;
  for (uint32_t i = 1; i < consecutiveFailures && p < penalty_.max; ++i) p *= 2;
  return std::min(p, penalty_.max);
}

void Balancer::recordFailure(Backend& backend, Clock::time_point attemptStarted, Clock::time_point now) const {
  ++backend.connectFailures;
  penalize(backend, attemptStarted, now);
}

void Balancer::penalize(Backend& backend, Clock::time_point attemptStarted, Clock::time_point now) const {
  // Twenty connects refused at one restart of the backend are one failure, not twenty: as
  // many doublings would shun it for the longest penalty after a blip of a second.
  if (backend.consecutiveFailures == 0 || attemptStarted > backend.lastFailure) ++backend.consecutiveFailures;
  backend.lastFailure = now;
  backend.penalizedUntil = now + penaltyFor(backend.consecutiveFailures);
}

void Balancer::recordSuccess(Backend& backend) const {
  backend.consecutiveFailures = 0;
  backend.penalizedUntil = {};
}

void Balancer::weightedShuffle(BackendList::iterator first, BackendList::iterator last) {
  // RFC 2782: pick each next one with probability weight / (sum of remaining weights).
  // Drawn all at once (Efraimidis and Spirakis): each backend gets the key log(u) / weight
  // for a uniform u in (0, 1], and the keys in decreasing order are exactly such a
  // sequence of picks. O(n log n), where picking one at a time is O(n²): an answer may
  // list thousands of instances, and this runs for every new connection.
  // Weight 0 gets a tiny chance only, as the RFC asks, by counting as 1/1000 of weight 1.
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  keys_.clear();
  for (auto it = first; it != last; ++it) {
    const double weight = (*it)->weight == 0 ? 0.001 : static_cast<double>((*it)->weight);
    keys_.emplace_back(naturalLog(1.0 - uniform(rng_)) / weight, std::move(*it));
  }
  std::sort(keys_.begin(), keys_.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  for (auto& [key, backend] : keys_) *first++ = std::move(backend);
}

namespace {

// Fewer active connections per unit of weight; compared without division:
// a.active * b.weight < b.active * a.weight.
bool lessLoaded(const std::shared_ptr<Backend>& a, const std::shared_ptr<Backend>& b) {
  uint64_t wa = std::max<uint16_t>(a->weight, 1), wb = std::max<uint16_t>(b->weight, 1);
  return static_cast<uint64_t>(a->active) * wb < static_cast<uint64_t>(b->active) * wa;
}

}  // namespace

void Balancer::orderGroup(BackendList::iterator first, BackendList::iterator last) {
  const auto n = static_cast<size_t>(last - first);
  if (n <= 1) return;
  switch (policy_) {
    case BalancePolicy::Random:
      weightedShuffle(first, last);
      return;
    case BalancePolicy::RoundRobin:
      // The group arrives in a stable order (by address), so rotating it is round-robin.
      std::rotate(first, first + static_cast<long>(rotation_ % n), last);
      return;
    case BalancePolicy::LeastConn:
      // Ties go to a random one drawn by weight: with short requests every backend is at 0
      // active most of the time, and then the weights alone must decide.
      weightedShuffle(first, last);
      std::stable_sort(first, last, lessLoaded);
      return;
    case BalancePolicy::PowerOfTwo: {
      // Drawn by weight, as random draws (RFC 2782): first and first+1 are now the two
      // choices, and the less loaded goes first.
      weightedShuffle(first, last);
      if (lessLoaded(first[1], first[0])) std::iter_swap(first, first + 1);
      return;
    }
  }
}

void Balancer::order(const BackendList& backends, BackendList* out) {
  out->clear();
  scratch_.clear();
  for (const auto& b : backends) (b->penalized() ? scratch_ : *out).push_back(b);

  // Stable base order first, so round-robin rotates a list that means the same each time.
  std::sort(out->begin(), out->end(), [](const auto& a, const auto& b) {
    if (a->priority != b->priority) return a->priority < b->priority;
    return a->address < b->address;
  });
  for (auto first = out->begin(); first != out->end();) {
    auto last = std::find_if(first, out->end(), [&](const auto& b) { return b->priority != (*first)->priority; });
    orderGroup(first, last);
    first = last;
  }
  ++rotation_;

  std::sort(scratch_.begin(), scratch_.end(),
            [](const auto& a, const auto& b) { return a->penalizedUntil < b->penalizedUntil; });
  out->insert(out->end(), scratch_.begin(), scratch_.end());
}

}  // namespace connectable
