#include "shim/balancer.h"

#include <algorithm>

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

void Balancer::recordFailure(Backend& backend, Clock::time_point now) const {
  ++backend.connectFailures;
  ++backend.consecutiveFailures;
  backend.penalizedUntil = now + penaltyFor(backend.consecutiveFailures);
}

void Balancer::recordSuccess(Backend& backend) const {
  backend.consecutiveFailures = 0;
  backend.penalizedUntil = {};
}

void Balancer::weightedShuffle(BackendList::iterator first, BackendList::iterator last) {
  // RFC 2782: pick each next one with probability weight / (sum of remaining weights).
  // Weight 0 gets a tiny chance only, as the RFC asks, by counting as 1/1000 of weight 1.
  auto scaled = [](const std::shared_ptr<Backend>& b) -> uint64_t {
    return b->weight == 0 ? 1 : static_cast<uint64_t>(b->weight) * 1000;
  };
  for (auto it = first; it != last; ++it) {
    uint64_t sum = 0;
    for (auto j = it; j != last; ++j) sum += scaled(*j);
    uint64_t pick = std::uniform_int_distribution<uint64_t>(0, sum - 1)(rng_);
    auto chosen = it;
    for (auto j = it; j != last; ++j) {
      uint64_t w = scaled(*j);
      if (pick < w) {
        chosen = j;
        break;
      }
      pick -= w;
    }
    std::iter_swap(it, chosen);
  }
}

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
      std::shuffle(first, last, rng_);  // ties go to a random one, not always the first
      std::stable_sort(first, last, [](const auto& a, const auto& b) {
        // active/weight compared without division: a.active * b.weight < b.active * a.weight
        uint64_t wa = std::max<uint16_t>(a->weight, 1), wb = std::max<uint16_t>(b->weight, 1);
        return static_cast<uint64_t>(a->active) * wb < static_cast<uint64_t>(b->active) * wa;
      });
      return;
    case BalancePolicy::PowerOfTwo: {
      std::shuffle(first, last, rng_);
      // first and first+1 are now two random choices; the less loaded goes first.
      if (first[1]->active < first[0]->active) std::iter_swap(first, first + 1);
      return;
    }
  }
}

void Balancer::order(const BackendList& backends, Clock::time_point now, BackendList* out) {
  out->clear();
  scratch_.clear();
  for (const auto& b : backends) (b->penalized(now) ? scratch_ : *out).push_back(b);

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
