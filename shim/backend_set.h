// BackendSet: the backends of one listening port, merged from all its targets. A literal
// target contributes one fixed backend; a DNS target contributes whatever its latest answer
// says. Backends keep their health and counters across answers, matched by address. A
// backend named by several targets takes the lowest priority they give it (the first
// target's, between equals). With --allow-upstream, an address outside it is never a
// backend: it is left out, logged when that changes, and shown as the target's problem.
// So is a DNS answer no connection should go to (unconnectableBecause: 0.0.0.0, a DNS
// sinkhole's answer, would reach the local host); a target left with nothing fails with why.
// Owned by the shim's event loop thread; not thread-safe.
#pragma once

#include <memory>
#include <vector>

#include "common/address_ranges.h"
#include "common/srv_resolver.h"
#include "common/target.h"
#include "shim/backend.h"

namespace connectable {

class BackendSet {
 public:
  using BackendList = std::vector<std::shared_ptr<Backend>>;

  explicit BackendSet(std::vector<Target> targets, AddressRanges allow = {});

  const std::vector<Target>& targets() const { return targets_; }
  const BackendList& backends() const { return backends_; }

  // Replaces what target `index` contributes, and why it has none if so (a DNS error).
  // Open connections keep their Backend alive. Addresses outside the allowed ranges are
  // left out, and named in the target's problem.
  void update(size_t index, const std::vector<ResolvedBackend>& resolved, const std::string& problem = "",
              bool stale = false);
  // Why targets have no backends, for the log line of a connection that found none.
  std::string problems() const;
  // Whether target `index` has had its first answer (literal targets always have).
  bool answered(size_t index) const { return answered_[index]; }
  // True while some lookup target has had no answer yet and no backend exists: a new
  // connection should wait (bounded) rather than fail.
  bool awaitingFirstAnswer() const;
  // Marks target `index` as answered without backends (lookup failed before any answer).
  void markAnswered(size_t index) { answered_[index] = true; rebuild(); }

  // For status: what target `index` contributes now, why it failed last, whether its
  // backends are a stale answer kept after a failed lookup.
  const std::vector<std::shared_ptr<Backend>>& backendsOf(size_t index) const { return perTarget_[index]; }
  const std::string& problem(size_t index) const { return problems_[index]; }
  bool stale(size_t index) const { return stale_[index]; }
  // The addresses target `index` names now that --allow-upstream leaves out ("a,b"; "" if none).
  const std::vector<SocketAddress>& refused(size_t index) const { return refused_[index]; }
  std::string refusedText(size_t index) const;  // "a,b"

 private:
  // What one target says of a backend it names; several targets may name one backend.
  struct Claim {
    uint16_t priority = 0;
    uint16_t weight = 1;
  };
  void rebuild();
  // Whether `address` may be a backend of target `index`; notes the ones that may not.
  bool allowed(const SocketAddress& address, std::vector<SocketAddress>* refused) const;
  void noteRefused(size_t index, std::vector<SocketAddress> refused);

  std::vector<Target> targets_;
  AddressRanges allowed_;
  std::vector<std::vector<SocketAddress>> refused_;  // per target: the addresses left out now
  std::vector<std::vector<SocketAddress>> unusable_;  // per target: answers no connection should go to
  std::vector<std::vector<std::shared_ptr<Backend>>> perTarget_;
  std::vector<std::vector<Claim>> claims_;  // parallel to perTarget_
  std::vector<bool> answered_;
  std::vector<std::string> problems_;
  std::vector<bool> stale_;
  BackendList backends_;
};

}  // namespace connectable
