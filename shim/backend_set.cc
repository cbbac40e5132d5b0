#include "shim/backend_set.h"

#include <algorithm>
#include <map>
#include <set>

#include "common/log.h"

namespace connectable {

namespace {

// "a,b,c", or the first three and how many more: an answer may list a thousand.
std::string addressList(const std::vector<SocketAddress>& addresses) {
  std::string out;
  for (size_t i = 0; i < addresses.size() && i < 3; ++i) out += (i ? "," : "") + addresses[i].toString();
  if (addresses.size() > 3) out += " and " + std::to_string(addresses.size() - 3) + " more";
  return out;
}

}  // namespace

BackendSet::BackendSet(std::vector<Target> targets, AddressRanges allow)
    : targets_(std::move(targets)),
      allowed_(std::move(allow)),
      refused_(targets_.size()),
      unusable_(targets_.size()),
      perTarget_(targets_.size()),
      claims_(targets_.size()),
      answered_(targets_.size(), false),
      problems_(targets_.size()),
      stale_(targets_.size(), false) {
  // One address given twice is one backend (not a double share, nor two series of the
  // same labels in the metrics).
  std::map<SocketAddress, std::shared_ptr<Backend>> literal;
  for (size_t i = 0; i < targets_.size(); ++i) {
    if (targets_[i].kind == Target::Kind::Literal) {
      answered_[i] = true;
      std::vector<SocketAddress> refused;
      if (!allowed(targets_[i].address, &refused)) {
        noteRefused(i, std::move(refused));
        continue;
      }
      auto& b = literal[targets_[i].address];
      if (!b) {
        b = std::make_shared<Backend>();
        b->address = targets_[i].address;
        b->target = targets_[i].text;
      }
      perTarget_[i].push_back(b);
      claims_[i].push_back({0, 1});
    }
  }
  rebuild();
}

std::string BackendSet::problems() const {
  std::string out;
  for (size_t i = 0; i < targets_.size(); ++i) {
    if (!perTarget_[i].empty()) continue;
    if (!problems_[i].empty()) {
      // The resolver's own messages often start with the name already ("x.consul: no such
      // name (NXDOMAIN)"): it is said once.
      const std::string& p = problems_[i];
      const bool named = p.rfind(targets_[i].text + ": ", 0) == 0 || p.rfind(targets_[i].host + ": ", 0) == 0;
      out += (out.empty() ? "" : "; ") + (named ? p : targets_[i].text + ": " + p);
    }
    if (!refused_[i].empty())
      out += (out.empty() ? "" : "; ") + targets_[i].text + ": " + refusedText(i) + " outside --allow-upstream";
  }
  return out;
}

bool BackendSet::allowed(const SocketAddress& address, std::vector<SocketAddress>* refused) const {
  if (allowed_.empty() || allowed_.contains(address)) return true;
  refused->push_back(address);
  return false;
}

void BackendSet::noteRefused(size_t index, std::vector<SocketAddress> refused) {
  if (refused == refused_[index]) return;  // an answer refreshed each second is logged once
  refused_[index] = std::move(refused);
  if (!refused_[index].empty())
    log::warn("leaving out backends outside --allow-upstream",
              {{"target", targets_[index].text}, {"addresses", refusedText(index)}, {"allowed", allowed_.text()}});
}

std::string BackendSet::refusedText(size_t index) const {
  std::string out;
  for (const SocketAddress& a : refused_[index]) out += (out.empty() ? "" : ",") + a.toString();
  return out;
}

void BackendSet::update(size_t index, const std::vector<ResolvedBackend>& resolved, const std::string& problem,
                        bool stale) {
  problems_[index] = problem;
  stale_[index] = stale;
  std::map<SocketAddress, std::shared_ptr<Backend>> known;
  for (auto& list : perTarget_)
    for (auto& b : list) known.emplace(b->address, b);
  std::vector<std::shared_ptr<Backend>> next;
  std::vector<Claim> claims;
  std::set<SocketAddress> taken;  // sets, not scans: an answer may list thousands
  std::vector<SocketAddress> refused;
  std::vector<SocketAddress> unusable;  // no connection should go there: bad answers
  std::string unusableWhy;              // the first one's reason
  for (const auto& r : resolved) {
    if (std::string why = unconnectableBecause(r.address); !why.empty()) {
      if (unusableWhy.empty()) unusableWhy = why;
      unusable.push_back(r.address);
      continue;
    }
    if (!allowed(r.address, &refused)) continue;
    if (!taken.insert(r.address).second) continue;  // the first record for an address wins
    auto it = known.find(r.address);
    auto b = it != known.end() ? it->second : std::make_shared<Backend>();
    b->address = r.address;
    next.push_back(std::move(b));
    claims.push_back({r.priority, r.weight});
  }
  noteRefused(index, std::move(refused));
  if (unusable != unusable_[index]) {  // an answer refreshed each second is logged once
    if (!unusable.empty())
      log::warn("leaving out DNS answers no connection should go to",
                {{"target", targets_[index].text}, {"addresses", addressList(unusable)}, {"why", unusableWhy}});
    unusable_[index] = std::move(unusable);
  }
  // Nothing else to connect to: the target fails, and says why.
  if (next.empty() && !unusable_[index].empty() && problem.empty())
    problems_[index] = "its answer " + addressList(unusable_[index]) + " was left out: " + unusableWhy;
  perTarget_[index] = std::move(next);
  claims_[index] = std::move(claims);
  answered_[index] = true;
  rebuild();
}

bool BackendSet::awaitingFirstAnswer() const {
  return backends_.empty() && std::find(answered_.begin(), answered_.end(), false) != answered_.end();
}

void BackendSet::rebuild() {
  backends_.clear();
  std::set<const Backend*> taken;
  for (size_t i = 0; i < perTarget_.size(); ++i) {
    for (size_t j = 0; j < perTarget_[i].size(); ++j) {
      Backend& b = *perTarget_[i][j];
      const Claim& claim = claims_[i][j];
      // Two targets naming one address make one backend, not a double share of traffic.
      // Its priority is recomputed from what names it now: the last answer to arrive must
      // not move it to another group, nor a target that let it go leave its mark.
      if (taken.insert(&b).second) {
        backends_.push_back(perTarget_[i][j]);
      } else if (claim.priority >= b.priority) {
        continue;
      }
      b.priority = claim.priority;
      b.weight = claim.weight;
      b.target = targets_[i].text;
    }
  }
}

}  // namespace connectable
