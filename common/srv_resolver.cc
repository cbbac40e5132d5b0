#include "common/srv_resolver.h"

#include <arpa/inet.h>
#include <sys/random.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <tuple>

#include "common/dns_message.h"
#include "common/log.h"

namespace connectable {
namespace {

enum Purpose { kSrvQuestion, kHostAddress, kTargetAddress };

// A UDP answer without EDNS is at most this long (RFC 1035 4.2.1).
constexpr size_t kUdpAnswerLimit = 512;
// The UDP payload our questions offer (EDNS, RFC 6891), as DNS Flag Day 2020 advises. Not
// for the size alone: Consul cuts an answer to a question without EDNS to 3 records
// (udp_answer_limit), picked at random and without TC, so a service would never show more
// than 3 of its instances, a different 3 at every refresh.
constexpr int kEdnsUdpSize = 1232;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  if (!out.empty() && out.back() == '.') out.pop_back();
  return out;
}

std::string describe(const std::vector<ResolvedBackend>& backends) {
  std::string out;
  for (const auto& b : backends) {
    if (!out.empty()) out += ',';
    out += b.address.toString();
  }
  return out.empty() ? "none" : out;
}

bool backendLess(const ResolvedBackend& a, const ResolvedBackend& b) {
  if (a.address != b.address) return a.address < b.address;
  return std::tie(a.priority, a.weight, a.host) < std::tie(b.priority, b.weight, b.host);
}

// Sorted by address; for one address the lowest priority wins.
void normalize(std::vector<ResolvedBackend>* backends) {
  std::sort(backends->begin(), backends->end(), backendLess);
  backends->erase(std::unique(backends->begin(), backends->end(),
                              [](const ResolvedBackend& a, const ResolvedBackend& b) { return a.address == b.address; }),
                  backends->end());
}

// An address question: lowercased name and type.
using QuestionKey = std::pair<std::string, uint16_t>;

}  // namespace

bool ResolvedBackend::operator==(const ResolvedBackend& o) const {
  return address == o.address && priority == o.priority && weight == o.weight && host == o.host;
}

Result<std::vector<SocketAddress>> parseDnsServers(std::string_view text) {
  std::vector<SocketAddress> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string_view item = text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    start = comma == std::string_view::npos ? text.size() + 1 : comma + 1;
    if (item.empty()) return Status::error("DNS server list '" + std::string(text) + "' has an empty entry");
    std::string_view host = item;
    uint16_t port = 53;
    if (item.front() == '[') {
      size_t close = item.find(']');
      if (close == std::string_view::npos) return Status::error("DNS server '" + std::string(item) + "': missing ']'");
      host = item.substr(1, close - 1);
      std::string_view rest = item.substr(close + 1);
      if (!rest.empty()) {
        if (rest.front() != ':') return Status::error("DNS server '" + std::string(item) + "': expected ':PORT' after ']'");
        Result<uint16_t> p = parsePort(rest.substr(1));
        if (!p) return p.status().withContext("DNS server '" + std::string(item) + "'");
        port = *p;
      }
    } else if (std::count(item.begin(), item.end(), ':') == 1) {
      size_t colon = item.find(':');
      host = item.substr(0, colon);
      Result<uint16_t> p = parsePort(item.substr(colon + 1));
      if (!p) return p.status().withContext("DNS server '" + std::string(item) + "'");
      port = *p;
    }
    std::optional<SocketAddress> address = SocketAddress::parseIp(host, port);
    if (!address) {
      return Status::error("DNS server '" + std::string(item) + "' is not an IPv4 address or [IPv6] address");
    }
    out.push_back(*address);
  }
  return out;
}

// One fd c-ares asked us to watch. Detached (owner_ = nullptr) when c-ares lets go of the
// fd, and freed only after the current batch of events, which may still name it.
class ServiceResolver::Socket : public IoHandler {
 public:
  Socket(ServiceResolver* owner, int fd) : owner_(owner), fd_(fd) {}
  void onIo(uint32_t events) override {
    if (owner_ != nullptr) owner_->socketReady(fd_, events);
  }
  ServiceResolver* owner_;
  int fd_;
};

struct ServiceResolver::Lookup {
  uint64_t serial = 0;
  int outstanding = 0;
  std::vector<ResolvedBackend> backends;
  uint32_t ttl = UINT32_MAX;  // seconds; lowest of every record used
  Status failure;             // the first query that failed, if any
  std::string emptyReason;    // why an answer has no backends
  int addressNxdomains = 0;   // host:port: A and AAAA both NXDOMAIN means no such name
  // SRV records whose targets need their own A/AAAA lookups, by lowercased target.
  std::map<std::string, std::vector<dns::SrvData>> pendingTargets;
  bool capped = false;  // the answers listed more than kMaxBackends; the rest were left out
  int answered = 0;     // questions answered, with records or without
  // Address answers by question: this lookup's, and for a question that failed, its last
  // good answer, kept (`kept` names those). What the next lookup falls back on.
  std::map<QuestionKey, dns::AddressSet> addresses;
  std::vector<std::string> kept;

  // Takes a backend unless the lookup has kMaxBackends already.
  void add(ResolvedBackend b) {
    if (backends.size() >= kMaxBackends) {
      capped = true;
      return;
    }
    backends.push_back(std::move(b));
  }
};

struct ServiceResolver::Entry {
  uint64_t id = 0;
  std::string key;
  Target target;
  Resolution resolution;
  bool hasGood = false;  // some lookup found backends or succeeded: failures serve it stale
  std::map<QuestionKey, dns::AddressSet> lastAddresses;  // the address answers behind `resolution`
  std::map<WatchId, Callback> watchers;
  EventLoop::TimerId refreshTimer = 0;
  uint32_t failuresInRow = 0;
  // A question that keeps failing is logged when it starts, when its error changes, and
  // once a minute, not at every retry (with a TTL of 1 s, once a second).
  std::string failureLogged;
  Clock::time_point failureLoggedAt;
  uint32_t failuresNotLogged = 0;
  // Changed backends: when a change was last logged, how many since were not, and the
  // timer that logs the set they ended in (options_.changeLogInterval).
  bool changeLogged = false;
  Clock::time_point changeLoggedAt;
  uint32_t changesNotLogged = 0;
  EventLoop::TimerId changeLogTimer = 0;
  // Changes to or from none logged at once since noneChangesSince (options_.changeLogInterval).
  Clock::time_point noneChangesSince;
  uint32_t noneChangesLogged = 0;
  // Problems with answers (malformed, bad, still truncated, too many backends), by their
  // text: logged once a minute each, not at every refresh (with a TTL of 1 s, every second).
  struct ProblemLine {
    Clock::time_point loggedAt;
    uint32_t notLogged = 0;
  };
  std::map<std::string, ProblemLine> problemLines;
  std::unique_ptr<Lookup> lookup;
};

// Owned by c-ares between ares_send and its callback, which runs exactly once.
struct ServiceResolver::Query {
  ServiceResolver* self;
  uint64_t entryId;
  uint64_t serial;
  std::string name;
  uint16_t type;
  int purpose;
  uint16_t id;  // the DNS id it went out with
  Clock::time_point sentAt;
};

ServiceResolver::ServiceResolver(EventLoop& loop, ResolverOptions options)
    : loop_(loop), options_(std::move(options)) {}

ServiceResolver::~ServiceResolver() {
  alive_.reset();
  for (auto& [id, entry] : entries_) {
    loop_.cancelTimer(entry->refreshTimer);
    loop_.cancelTimer(entry->changeLogTimer);
  }
  loop_.cancelTimer(aresTimer_);
  // Fails every pending query with ARES_EDESTRUCTION and closes the sockets through
  // socketState, so the loop forgets them before the fds are closed.
  if (channel_ != nullptr) ares_destroy(channel_);
  for (auto& [fd, socket] : sockets_) {  // normally none left: c-ares reported each closed
    loop_.remove(fd);
    socket->owner_ = nullptr;
    loop_.defer([detached = std::shared_ptr<Socket>(std::move(socket))] {});
  }
  if (libraryInit_) ares_library_cleanup();
}

Status ServiceResolver::init() {
  if (int rc = ares_library_init(ARES_LIB_INIT_ALL); rc != ARES_SUCCESS) {
    return Status::error(std::string("c-ares library init: ") + ares_strerror(rc));
  }
  libraryInit_ = true;
  ares_options opts{};
  opts.sock_state_cb = &ServiceResolver::onSocketState;
  opts.sock_state_cb_data = this;
  opts.timeout = static_cast<int>(options_.queryTimeout.count());
  opts.tries = std::max(1, options_.tries);
  // We send fully qualified questions ourselves: no search list, no HOSTALIASES.
  // EDNS: c-ares takes UDP answers up to kEdnsUdpSize (past 512 it would ask again over
  // TCP). A server that refuses EDNS (FORMERR) has the question asked again without it,
  // the first time only: such servers are gone since DNS Flag Day 2019.
  opts.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | ARES_FLAG_EDNS;
  opts.ednspsz = kEdnsUdpSize;
  int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS | ARES_OPT_EDNSPSZ;
  if (int rc = ares_init_options(&channel_, &opts, mask); rc != ARES_SUCCESS) {
    channel_ = nullptr;
    return Status::error(std::string("c-ares init: ") + ares_strerror(rc));
  }
  serverReplies_.install(channel_);
  if (!options_.servers.empty()) {
    std::vector<ares_addr_port_node> nodes(options_.servers.size());
    for (size_t i = 0; i < nodes.size(); ++i) {
      const SocketAddress& s = options_.servers[i];
      ares_addr_port_node& n = nodes[i];
      n.next = i + 1 < nodes.size() ? &nodes[i + 1] : nullptr;
      n.family = s.family();
      if (s.family() == AF_INET) {
        n.addr.addr4 = reinterpret_cast<const sockaddr_in*>(s.sockaddr_ptr())->sin_addr;
      } else {
        std::memcpy(&n.addr.addr6, &reinterpret_cast<const sockaddr_in6*>(s.sockaddr_ptr())->sin6_addr, 16);
      }
      n.udp_port = n.tcp_port = s.port();
    }
    if (int rc = ares_set_servers_ports(channel_, nodes.data()); rc != ARES_SUCCESS) {
      return Status::error(std::string("setting DNS servers: ") + ares_strerror(rc));
    }
  }
  serverReplies_.setServers(channelServers());
  return Status::ok();
}

std::vector<SocketAddress> ServiceResolver::channelServers() const {
  std::vector<SocketAddress> servers;
  ares_addr_port_node* list = nullptr;
  if (ares_get_servers_ports(channel_, &list) != ARES_SUCCESS) return servers;
  for (const ares_addr_port_node* n = list; n != nullptr; n = n->next) {
    const auto port = static_cast<uint16_t>(n->udp_port != 0 ? n->udp_port : 53);
    if (n->family == AF_INET) {
      servers.push_back(SocketAddress::ipv4(n->addr.addr4, port));
    } else if (n->family == AF_INET6) {
      in6_addr a;
      std::memcpy(&a, &n->addr.addr6, sizeof a);
      servers.push_back(SocketAddress::ipv6(a, port));
    }
  }
  ares_free_data(list);
  return servers;
}

Millis ServiceResolver::longestLookup() const {
  const size_t servers = channelServers().size();
  // c-ares (1.18) tries each server in turn, and doubles the timeout after each round.
  const Millis round = options_.queryTimeout * static_cast<int64_t>(std::max<size_t>(servers, 1));
  Millis question{0};
  for (int i = 0; i < std::max(1, options_.tries); ++i) question += round * (int64_t{1} << i);
  return 2 * question;
}

// Watches of the same name, port and kind share one cache entry, by Target::lookupKey.
const Resolution* ServiceResolver::resolutionOf(const Target& target) const {
  auto found = entryByKey_.find(target.lookupKey());
  if (found == entryByKey_.end()) return nullptr;
  auto entry = entries_.find(found->second);
  return entry == entries_.end() ? nullptr : &entry->second->resolution;
}

ServiceResolver::WatchId ServiceResolver::watch(const Target& target, Callback cb) {
  WatchId wid = nextWatchId_++;
  std::string key = target.lookupKey();
  auto found = entryByKey_.find(key);
  if (found != entryByKey_.end()) {
    Entry& entry = *entries_[found->second];
    entry.watchers.emplace(wid, std::move(cb));
    entryByWatch_[wid] = entry.id;
    if (!entry.resolution.pending) {
      loop_.defer([this, alive = std::weak_ptr<int>(alive_), eid = entry.id, wid] {
        if (alive.lock()) notify(eid, {wid});
      });
    }
    return wid;
  }

  auto owned = std::make_unique<Entry>();
  Entry& entry = *owned;
  entry.id = nextEntryId_++;
  entry.key = key;
  entry.target = target;
  entry.watchers.emplace(wid, std::move(cb));
  entries_.emplace(entry.id, std::move(owned));
  entryByKey_[key] = entry.id;
  entryByWatch_[wid] = entry.id;

  // "localhost" is loopback by definition (RFC 6761); never ask a server about it.
  bool localhost = target.kind == Target::Kind::HostPort && !target.asksDnsServer();
  if (target.kind == Target::Kind::Literal || localhost) {
    Resolution& r = entry.resolution;
    if (localhost) {
      r.backends = {{SocketAddress::loopbackV4(target.port), 0, 1, target.host},
                    {SocketAddress::loopbackV6(target.port), 0, 1, target.host}};
    } else {
      r.backends = {{target.address, 0, 1, target.host}};
    }
    normalize(&r.backends);
    r.pending = false;
    r.expires = r.nextLookup = Clock::time_point::max();
    entry.hasGood = true;
    loop_.defer([this, alive = std::weak_ptr<int>(alive_), eid = entry.id, wid] {
      if (alive.lock()) notify(eid, {wid});
    });
    return wid;
  }
  // Started after the caller's batch, so no callback can run inside watch().
  loop_.defer([this, alive = std::weak_ptr<int>(alive_), eid = entry.id] {
    if (!alive.lock()) return;
    if (Entry* e = findEntry(eid); e != nullptr && !e->lookup) startLookup(*e);
  });
  return wid;
}

void ServiceResolver::unwatch(WatchId id) {
  auto it = entryByWatch_.find(id);
  if (it == entryByWatch_.end()) return;
  uint64_t eid = it->second;
  entryByWatch_.erase(it);
  Entry* entry = findEntry(eid);
  if (entry == nullptr) return;
  entry->watchers.erase(id);
  if (!entry->watchers.empty()) return;
  // Queries still in flight find no entry when they end and are dropped.
  loop_.cancelTimer(entry->refreshTimer);
  loop_.cancelTimer(entry->changeLogTimer);
  entryByKey_.erase(entry->key);
  entries_.erase(eid);
}

const Resolution* ServiceResolver::resolution(WatchId id) const {
  auto it = entryByWatch_.find(id);
  if (it == entryByWatch_.end()) return nullptr;
  auto e = entries_.find(it->second);
  return e == entries_.end() ? nullptr : &e->second->resolution;
}

void ServiceResolver::refreshAll() {
  size_t started = 0;
  std::vector<uint64_t> ids;
  for (auto& [id, entry] : entries_) ids.push_back(id);
  for (uint64_t id : ids) {
    Entry* entry = findEntry(id);
    // Literals and localhost never expire; a lookup already on its way will do.
    if (entry == nullptr || entry->resolution.expires == Clock::time_point::max() || entry->lookup) continue;
    loop_.cancelTimer(entry->refreshTimer);
    entry->refreshTimer = 0;
    entry->failuresInRow = 0;
    startLookup(*entry);
    ++started;
  }
  log::info("re-resolving all targets", {{"targets", std::to_string(started)}});
}

ServiceResolver::Entry* ServiceResolver::findEntry(uint64_t entryId) {
  auto it = entries_.find(entryId);
  return it == entries_.end() ? nullptr : it->second.get();
}

// --- lookups -------------------------------------------------------------------------

void ServiceResolver::startLookup(Entry& entry) {
  entry.refreshTimer = 0;
  entry.lookup = std::make_unique<Lookup>();
  entry.lookup->serial = nextLookupSerial_++;
  ++counters_.lookups;
  uint64_t eid = entry.id;
  // Held while sending: ares_send may fail a query synchronously, and the lookup must
  // not finish before all its queries are out.
  entry.lookup->outstanding++;
  if (entry.target.kind == Target::Kind::Srv) {
    sendQuery(entry, entry.target.host, dns::kTypeSrv, kSrvQuestion);
  } else {
    sendQuery(entry, entry.target.host, dns::kTypeA, kHostAddress);
    sendQuery(entry, entry.target.host, dns::kTypeAaaa, kHostAddress);
  }
  if (Entry* e = findEntry(eid); e != nullptr && e->lookup) {
    if (--e->lookup->outstanding == 0) finishLookup(*e);
  }
  rearmTimer();
}

void ServiceResolver::sendQuery(Entry& entry, const std::string& name, uint16_t type, int purpose) {
  Lookup& lookup = *entry.lookup;
  unsigned char* buf = nullptr;
  int len = 0;
  const uint16_t id = newQueryId();
  int rc = ares_create_query(name.c_str(), dns::kClassIn, type, id, 1, &buf, &len, kEdnsUdpSize);
  if (rc != ARES_SUCCESS) {
    if (lookup.failure.isOk()) {
      lookup.failure = Status::error(dns::typeName(type) + " query for " + name + ": " + ares_strerror(rc));
    }
    return;
  }
  lookup.outstanding++;
  ++counters_.queriesSent;
  log::debug("DNS query", {{"name", name}, {"type", dns::typeName(type)}});
  idsInFlight_.insert(id);
  auto* query = new Query{this, entry.id, lookup.serial, name, type, purpose, id, loop_.now()};
  ares_send(channel_, buf, len, &ServiceResolver::onAnswer, query);
  ares_free_string(buf);
}

// ares_send (c-ares 1.18) sends the id the question was built with, and matches answers
// to questions by it: every question needs its own, and an unguessable one (RFC 5452).
uint16_t ServiceResolver::newQueryId() {
  for (;;) {
    uint16_t id = 0;
    // Never wait for the entropy pool (early boot): the fallback still gives distinct ids.
    if (getrandom(&id, sizeof id, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof id)) {
      rng_ = rng_ * 6364136223846793005ull + 1442695040888963407ull;  // no entropy: still distinct
      id = static_cast<uint16_t>(rng_ >> 48);
    }
    // With every id taken (65,536 questions in flight), share one: c-ares also matches an
    // answer by its question.
    if (!idsInFlight_.count(id) || idsInFlight_.size() > 0xffff) return id;
  }
}

void ServiceResolver::onAnswer(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) {
  std::unique_ptr<Query> query(static_cast<Query*>(arg));
  query->self->idsInFlight_.erase(query->id);
  if (status == ARES_EDESTRUCTION) return;  // the resolver is being destroyed
  query->self->handleAnswer(*query, status, abuf, alen);
  query->self->serverReplies_.forget(query->id);
}

void ServiceResolver::handleAnswer(Query& query, int status, const unsigned char* abuf, int alen) {
  Entry* entry = findEntry(query.entryId);
  if (entry == nullptr || !entry->lookup || entry->lookup->serial != query.serial) return;
  Lookup& lookup = *entry->lookup;
  const std::string what = dns::typeName(query.type) + " lookup of " + query.name;
  bool failed = false;
  auto fail = [&](Status s) {
    failed = true;
    ++counters_.queryFailures;
    if (lookup.failure.isOk()) lookup.failure = std::move(s);
  };
  // Backends from the addresses of this question's name, for the host or the SRV records
  // naming it.
  auto useAddresses = [&](const dns::AddressSet& addresses) {
    std::vector<dns::SrvData> owners;
    if (query.purpose == kHostAddress) {
      owners.push_back({0, 1, entry->target.port, query.name});
    } else {
      owners = lookup.pendingTargets[lower(query.name)];
    }
    for (const dns::SrvData& o : owners) {
      for (const in_addr& a : addresses.v4) lookup.add({SocketAddress::ipv4(a, o.port), o.priority, o.weight, o.target});
      for (const in6_addr& a : addresses.v6) lookup.add({SocketAddress::ipv6(a, o.port), o.priority, o.weight, o.target});
    }
  };
  const QuestionKey key{lower(query.name), query.type};

  if (status != ARES_SUCCESS) {
    // c-ares moves on to the next server after a SERVFAIL, REFUSED or NOTIMP, and when none
    // is left says "Could not contact DNS servers", which reads as a network problem: each
    // server's part is named when we saw it.
    const std::string heard = serverReplies_.describe(query.id, query.sentAt);
    std::string why;
    if (status == ARES_ECONNREFUSED) {
      why = heard.empty() ? "every DNS server failed it (SERVFAIL, REFUSED, or unreachable)"
                          : "every DNS server failed it: " + heard;
    } else {
      why = ares_strerror(status);
      if (!heard.empty()) why += ": " + heard;
    }
    fail(Status::error(what + " failed: " + why));
  } else if (Result<dns::Message> m = dns::parseMessage(abuf, static_cast<size_t>(std::max(alen, 0))); !m) {
    ++counters_.malformedAnswers;
    if (auto held = takeProblemLine(*entry, "malformed " + what + m.status().message()))
      log::error("malformed DNS answer", {{"name", query.name},
                                          {"type", dns::typeName(query.type)},
                                          {"error", m.status().message()},
                                          {"repeats_not_logged", *held}});
    fail(m.status().withContext(what + ": malformed answer"));
  } else if (m->header.rcode != dns::kRcodeNoError && m->header.rcode != dns::kRcodeNxDomain) {
    fail(Status::error(what + ": server answered " + dns::rcodeName(m->header.rcode)));
  } else if (!dns::answersAbout(*m, query.name, query.type)) {
    // Taken for "no records", it would leave the port without backends.
    ++counters_.malformedAnswers;
    if (auto held = takeProblemLine(*entry, "about something else " + what))
      log::error("bad DNS answer", {{"name", query.name},
                                    {"error", "its records are all for other names, classes or types"},
                                    {"repeats_not_logged", *held}});
    fail(Status::error(what + ": bad answer: its records are all for other names, classes or types"));
  } else {
    if (m->header.truncated) {
      if (auto held = takeProblemLine(*entry, "truncated " + what))
        log::warn("DNS answer still truncated after the TCP retry; using what it holds",
                  {{"name", query.name}, {"repeats_not_logged", *held}});
    }
    const bool nxdomain = m->header.rcode == dns::kRcodeNxDomain;
    // A zone's SOA may keep a name's absence for a day, for the sake of shared caches; a
    // service missing now may be registered any moment, and is asked for again soon.
    auto negative = [&] {
      uint32_t most = static_cast<uint32_t>(options_.negativeTtl.count() / 1000);
      lookup.ttl = std::min({lookup.ttl, dns::negativeTtl(*m, most), most});
    };
    if (query.purpose == kSrvQuestion) {
      Result<dns::SrvAnswer> srv = dns::readSrvAnswer(*m, query.name);
      if (!srv) {
        ++counters_.malformedAnswers;
        if (auto held = takeProblemLine(*entry, "bad " + what + srv.status().message()))
          log::error("bad DNS answer", {{"name", query.name}, {"error", srv.status().message()}, {"repeats_not_logged", *held}});
        fail(srv.status().withContext(what + ": bad answer"));
      } else if (nxdomain || srv->targets.empty()) {
        lookup.answered++;
        lookup.emptyReason = query.name + (nxdomain ? ": no such name (NXDOMAIN)" : ": no SRV records");
        // The name is there, but not as a service: most often a host's, written without the
        // port its address needs (web1.node.consul for web1.node.consul:8080). A name in
        // SRV's own form (_redis._tcp.example.org) was meant as one.
        if (!nxdomain && query.name.rfind('_', 0) != 0)
          lookup.emptyReason += " (a name without a port is an SRV lookup: for a host's address, write " +
                                query.name + ":PORT)";
        negative();
      } else {
        lookup.answered++;
        lookup.ttl = std::min(lookup.ttl, srv->ttl);
        // A server short of room leaves additional records out without setting TC, and
        // may send part of an address set (dnsmasq does: it fills the message in order and
        // stops mid-set). In a UDP answer with no room left for one more record, the target
        // whose addresses end the message may have lost some: it is asked itself. Those
        // before it came whole; those left out have none and are asked anyway.
        size_t longestTarget = 0;
        for (const dns::SrvTarget& t : srv->targets) longestTarget = std::max(longestTarget, t.srv.target.size());
        const size_t oneMoreRecord = longestTarget + 2 + 10 + 16;  // an AAAA record, its owner uncompressed
        // The room a UDP answer had: what both sides take, said by the answer's OPT record;
        // without one (a server may leave it out once the message is full), a longer
        // answer than 512 bytes had our offer, and a shorter one may have had 512 only.
        const size_t room = m->ednsUdpSize != 0 ? std::clamp<size_t>(m->ednsUdpSize, kUdpAnswerLimit, kEdnsUdpSize)
                            : static_cast<size_t>(alen) > kUdpAnswerLimit ? kEdnsUdpSize
                                                                          : kUdpAnswerLimit;
        const bool mayBeCut = static_cast<size_t>(alen) <= room && static_cast<size_t>(alen) + oneMoreRecord > room;
        std::string cutOwner;
        for (auto r = m->additional.rbegin(); mayBeCut && r != m->additional.rend(); ++r) {
          if (r->type == dns::kTypeA || r->type == dns::kTypeAaaa) {
            cutOwner = lower(r->name);
            break;
          }
        }
        // An owner that is no target's (reached through a CNAME): trust none of them.
        const bool cutOwnerIsATarget = std::any_of(srv->targets.begin(), srv->targets.end(), [&](const dns::SrvTarget& t) {
          return lower(t.srv.target) == cutOwner;
        });
        for (dns::SrvTarget t : srv->targets) {
          if (t.srv.target.empty() || t.srv.port == 0) continue;  // "." means no service here
          if (!cutOwner.empty() && (!cutOwnerIsATarget || lower(t.srv.target) == cutOwner)) t.addresses = {};
          for (const in_addr& a : t.addresses.v4)
            lookup.add({SocketAddress::ipv4(a, t.srv.port), t.srv.priority, t.srv.weight, t.srv.target});
          for (const in6_addr& a : t.addresses.v6)
            lookup.add({SocketAddress::ipv6(a, t.srv.port), t.srv.priority, t.srv.weight, t.srv.target});
          if (t.addresses.empty()) {
            // Each gets two questions of its own: as many as there may be backends.
            const std::string key = lower(t.srv.target);
            if (lookup.pendingTargets.size() >= kMaxBackends && !lookup.pendingTargets.count(key)) {
              lookup.capped = true;
              continue;
            }
            lookup.pendingTargets[key].push_back(t.srv);
          } else {
            lookup.ttl = std::min(lookup.ttl, t.addresses.ttl);
            // What a later lookup that asks this target falls back on, family by family.
            const std::string key = lower(t.srv.target);
            if (!t.addresses.v4.empty()) lookup.addresses[{key, dns::kTypeA}].v4 = t.addresses.v4;
            if (!t.addresses.v6.empty()) lookup.addresses[{key, dns::kTypeAaaa}].v6 = t.addresses.v6;
          }
        }
        if (lookup.backends.empty() && lookup.pendingTargets.empty()) {
          lookup.emptyReason = query.name + ": SRV records name no usable target";
          // As good as no records: a placeholder ("0 0 0 .", or port 0) is replaced when the
          // service registers, and its TTL, however long, must not keep the port without
          // backends until then.
          negative();
        }
        // Targets the server sent no addresses for get their own A and AAAA questions.
        for (const auto& [target, records] : lookup.pendingTargets) {
          sendQuery(*entry, records.front().target, dns::kTypeA, kTargetAddress);
          sendQuery(*entry, records.front().target, dns::kTypeAaaa, kTargetAddress);
        }
      }
    } else {
      Result<dns::AddressSet> addresses = dns::readAddressAnswer(*m, query.name, query.type);
      if (!addresses) {
        ++counters_.malformedAnswers;
        if (auto held = takeProblemLine(*entry, "bad " + what + addresses.status().message()))
          log::error("bad DNS answer",
                     {{"name", query.name}, {"error", addresses.status().message()}, {"repeats_not_logged", *held}});
        fail(addresses.status().withContext(what + ": bad answer"));
      } else {
        lookup.answered++;
        lookup.addresses[key] = *addresses;
        if (addresses->empty()) {
          if (nxdomain) lookup.addressNxdomains++;
          negative();
        } else {
          lookup.ttl = std::min(lookup.ttl, addresses->ttl);
          useAddresses(*addresses);
        }
      }
    }
  }
  // A failed address question stands on its own last answer, so that the other family's
  // answer (or the other targets') is still used as it is now.
  if (failed && query.purpose != kSrvQuestion) {
    if (auto last = entry->lastAddresses.find(key); last != entry->lastAddresses.end()) {
      lookup.addresses[key] = last->second;
      lookup.kept.push_back(dns::typeName(query.type) + " " + query.name);
      useAddresses(last->second);
    }
  }
  if (--lookup.outstanding == 0) finishLookup(*entry);
}

Millis ServiceResolver::answerTtl(const Lookup& lookup) const {
  Millis ttl = lookup.ttl == UINT32_MAX ? options_.negativeTtl : Millis(uint64_t{lookup.ttl} * 1000);
  return std::clamp(ttl, options_.minTtl, std::max(options_.minTtl, options_.maxTtl));
}

Millis ServiceResolver::refreshPoint(Millis ttl) {
  // Well before expiry, at a jittered point so many shims do not ask together.
  rng_ = rng_ * 6364136223846793005ull + 1442695040888963407ull;
  double fraction = 0.75 + 0.15 * static_cast<double>(rng_ >> 11) / static_cast<double>(1ull << 53);
  return Millis(static_cast<int64_t>(static_cast<double>(ttl.count()) * fraction));
}

std::optional<std::string> ServiceResolver::takeProblemLine(Entry& entry, const std::string& text) {
  constexpr size_t kMostTexts = 16;  // texts that vary (say, with an offset) must not pile up
  const Clock::time_point now = loop_.now();
  auto held = entry.problemLines.find(text);
  if (held != entry.problemLines.end()) {
    if (now - held->second.loggedAt < std::chrono::minutes(1)) {
      ++held->second.notLogged;
      return std::nullopt;
    }
    const std::string notLogged = std::to_string(held->second.notLogged);
    held->second = {now, 0};
    return notLogged;
  }
  for (auto it = entry.problemLines.begin(); entry.problemLines.size() >= kMostTexts && it != entry.problemLines.end();)
    it = now - it->second.loggedAt >= std::chrono::minutes(1) ? entry.problemLines.erase(it) : std::next(it);
  if (entry.problemLines.size() < kMostTexts) entry.problemLines[text] = {now, 0};
  return "0";
}

void ServiceResolver::finishLookup(Entry& entry) {
  std::unique_ptr<Lookup> lookup = std::move(entry.lookup);
  Resolution& r = entry.resolution;
  const Resolution before = r;
  normalize(&lookup->backends);
  const std::string& name = entry.target.text;
  if (lookup->capped) {
    if (auto held = takeProblemLine(entry, "capped"))
      log::warn("DNS answers list more backends than a port takes; using the first ones",
                {{"target", name}, {"max", std::to_string(kMaxBackends)}, {"repeats_not_logged", *held}});
  }

  if (!lookup->failure.isOk()) {
    entry.failuresInRow++;
    counters_.lookupFailures++;
    Millis retry = options_.retryMin;
    for (uint32_t i = 1; i < entry.failuresInRow && retry < options_.retryMax; ++i) retry *= 2;
    retry = std::min(retry, options_.retryMax);
    r.status = lookup->failure;
    const bool logIt = entry.failuresInRow == 1 || lookup->failure.message() != entry.failureLogged ||
                       loop_.now() - entry.failureLoggedAt >= std::chrono::minutes(1);
    const std::string repeated = std::to_string(entry.failuresNotLogged);
    if (logIt) {
      entry.failureLogged = lookup->failure.message();
      entry.failureLoggedAt = loop_.now();
      entry.failuresNotLogged = 0;
    } else {
      ++entry.failuresNotLogged;
    }
    if (lookup->backends.empty() && entry.hasGood) {
      // Stale but working beats empty: nothing usable came, or too little to trust.
      r.stale = true;
      counters_.staleAnswersServed++;
      if (logIt)
        log::warn("DNS lookup failed; serving the last good answer",
                  {{"name", name}, {"error", lookup->failure.message()}, {"backends", describe(r.backends)},
                   {"retry_in_ms", std::to_string(retry.count())}, {"repeats_not_logged", repeated}});
    } else {
      // What did arrive is used; each failed question kept its own last answer, if any.
      r.backends = std::move(lookup->backends);
      r.stale = !lookup->kept.empty();
      if (r.stale) counters_.staleAnswersServed++;
      if (!r.backends.empty()) entry.hasGood = true;
      entry.lastAddresses = std::move(lookup->addresses);
      std::string kept;
      for (const std::string& q : lookup->kept) kept += (kept.empty() ? "" : ",") + q;
      if (lookup->answered > 0 && !r.backends.empty()) {
        // What did come has its own TTL: a changed A record is not held back for as long
        // as the AAAA question keeps failing (the retry's back-off reaches 30 s).
        const Millis ttl = answerTtl(*lookup);
        r.expires = loop_.now() + ttl;
        r.ttl = ttl;
        retry = std::min(retry, refreshPoint(ttl));
      }
      if (logIt)
        log::warn(lookup->answered > 0 ? "DNS lookup failed in part; serving what it found" : "DNS lookup failed",
                  {{"name", name}, {"error", lookup->failure.message()}, {"backends", describe(r.backends)},
                   {"kept_last_answer_of", kept.empty() ? "none" : kept}, {"retry_in_ms", std::to_string(retry.count())},
                   {"repeats_not_logged", repeated}});
    }
    scheduleRefresh(entry, retry);
  } else {
    const bool wasFailing = entry.failuresInRow > 0;
    entry.failuresInRow = 0;
    entry.failureLogged.clear();
    entry.failuresNotLogged = 0;
    entry.hasGood = true;
    entry.lastAddresses = std::move(lookup->addresses);
    r.backends = std::move(lookup->backends);
    r.stale = false;
    if (!r.backends.empty()) {
      r.status = Status::ok();
    } else if (!lookup->emptyReason.empty()) {
      r.status = Status::error(lookup->emptyReason);
    } else if (entry.target.kind == Target::Kind::HostPort && lookup->addressNxdomains == 2) {
      r.status = Status::error(entry.target.host + ": no such name (NXDOMAIN)");
    } else if (entry.target.kind == Target::Kind::HostPort) {
      r.status = Status::error(entry.target.host + ": no A or AAAA records");
    } else {
      r.status = Status::error(entry.target.host + ": SRV targets have no addresses");
    }
    const Millis ttl = answerTtl(*lookup);
    r.expires = loop_.now() + ttl;
    r.ttl = ttl;
    scheduleRefresh(entry, refreshPoint(ttl));
    log::debug("DNS answer", {{"name", name}, {"backends", describe(r.backends)}, {"ttl_ms", std::to_string(ttl.count())},
                              {"status", r.status.message()}});
    // The answer that ends failed lookups says so, with what it brought, at once; and when
    // it brings none (the name is gone, or never was), that is what it says.
    const bool recovering = before.stale || wasFailing;
    if (before.pending && !r.backends.empty()) {
      log::info("backends found", {{"name", name}, {"backends", describe(r.backends)}});
    } else if (before.pending || before.backends != r.backends || (recovering && r.backends.empty())) {
      // The first answer too: a name that has none (mistyped, or not registered yet) says so
      // now, not only when a client is refused.
      const bool toOrFromNone = before.backends.empty() != r.backends.empty();
      logChange(entry, before.pending || recovering || (toOrFromNone && takeNoneChangeLine(entry)), recovering);
    } else if (recovering) {
      log::info("DNS lookups recovered", {{"name", name}, {"backends", describe(r.backends)}});
    }
  }
  r.pending = false;
  // The status too: a lookup that failed part-way serves what it got with an error, and
  // the next one may bring the same backends with none.
  bool changed = before.pending || before.backends != r.backends || before.stale != r.stale ||
                 before.status.isOk() != r.status.isOk() ||
                 (r.backends.empty() && before.status.message() != r.status.message());
  if (changed) notify(entry.id);
}

bool ServiceResolver::takeNoneChangeLine(Entry& entry) {
  constexpr uint32_t kAtOnce = 2;  // the outage and its end
  const Clock::time_point now = loop_.now();
  if (entry.noneChangesLogged == 0 || now - entry.noneChangesSince >= options_.changeLogInterval) {
    entry.noneChangesSince = now;
    entry.noneChangesLogged = 0;
  }
  if (entry.noneChangesLogged >= kAtOnce) return false;
  ++entry.noneChangesLogged;
  return true;
}

void ServiceResolver::logChange(Entry& entry, bool atOnce, bool recovered) {
  const Clock::time_point now = loop_.now();
  if (!atOnce && entry.changeLogged && now - entry.changeLoggedAt < options_.changeLogInterval) {
    ++entry.changesNotLogged;
    if (entry.changeLogTimer == 0) {
      // The set the name ends in is told when the interval is over, not at its next change.
      const Millis left = std::chrono::duration_cast<Millis>(entry.changeLoggedAt + options_.changeLogInterval - now);
      entry.changeLogTimer = loop_.addTimer(std::max(left, Millis(1)), [this, eid = entry.id] {
        Entry* e = findEntry(eid);
        if (e == nullptr) return;
        e->changeLogTimer = 0;
        logChange(*e, true);
      });
    }
    return;
  }
  loop_.cancelTimer(entry.changeLogTimer);
  entry.changeLogTimer = 0;
  const uint64_t notLogged = entry.changesNotLogged;
  entry.changeLogged = true;
  entry.changeLoggedAt = now;
  entry.changesNotLogged = 0;
  const Resolution& r = entry.resolution;
  const std::string& name = entry.target.text;
  std::vector<log::Field> fields = {{"name", name}};
  if (!r.backends.empty()) fields.push_back({"backends", describe(r.backends)});
  fields.push_back({"status", r.status.message()});
  // Only when some were held: "=0" on a name's first line read as if changes had been dropped.
  if (notLogged != 0) fields.push_back({"changes_not_logged", std::to_string(notLogged)});
  if (r.backends.empty())
    log::write(log::Level::Warn, "no backends", fields);
  else
    log::write(log::Level::Info, recovered ? "DNS lookups recovered" : "backends changed", fields);
}

void ServiceResolver::scheduleRefresh(Entry& entry, Millis delay) {
  loop_.cancelTimer(entry.refreshTimer);
  entry.resolution.nextLookup = loop_.now() + delay;
  entry.refreshTimer = loop_.addTimer(delay, [this, eid = entry.id] {
    Entry* e = findEntry(eid);
    if (e == nullptr) return;
    e->refreshTimer = 0;
    if (!e->lookup) startLookup(*e);
  });
}

void ServiceResolver::notify(uint64_t entryId, const std::vector<WatchId>& only) {
  Entry* entry = findEntry(entryId);
  if (entry == nullptr) return;
  // Callbacks may unwatch (even this entry): work from copies and look up again each time.
  const Resolution snapshot = entry->resolution;
  std::vector<WatchId> ids = only;
  if (ids.empty()) {
    for (const auto& [wid, cb] : entry->watchers) ids.push_back(wid);
  }
  for (WatchId wid : ids) {
    Entry* e = findEntry(entryId);
    if (e == nullptr) return;
    auto it = e->watchers.find(wid);
    if (it == e->watchers.end()) continue;
    Callback cb = it->second;
    cb(snapshot);
  }
}

// --- c-ares plumbing ------------------------------------------------------------------

void ServiceResolver::onSocketState(void* data, ares_socket_t fd, int readable, int writable) {
  static_cast<ServiceResolver*>(data)->socketState(fd, readable != 0, writable != 0);
}

void ServiceResolver::socketState(int fd, bool readable, bool writable) {
  auto it = sockets_.find(fd);
  if (!readable && !writable) {
    if (it == sockets_.end()) return;
    loop_.remove(fd);
    it->second->owner_ = nullptr;
    // Events for this handler may still be queued in the current batch.
    std::shared_ptr<Socket> detached(std::move(it->second));
    loop_.defer([detached] {});
    sockets_.erase(it);
    return;
  }
  uint32_t events = (readable ? EPOLLIN : 0u) | (writable ? EPOLLOUT : 0u);
  Status s;
  if (it == sockets_.end()) {
    auto socket = std::make_unique<Socket>(this, fd);
    s = loop_.add(fd, events, socket.get());
    sockets_.emplace(fd, std::move(socket));
  } else {
    s = loop_.modify(fd, events, it->second.get());
  }
  // c-ares will time the query out; nothing better to do here.
  if (!s) log::error("cannot watch DNS socket", {{"error", s.message()}});
}

void ServiceResolver::socketReady(int fd, uint32_t events) {
  ares_socket_t readFd = (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) ? fd : ARES_SOCKET_BAD;
  ares_socket_t writeFd = (events & EPOLLOUT) ? fd : ARES_SOCKET_BAD;
  ares_process_fd(channel_, readFd, writeFd);
  rearmTimer();
}

void ServiceResolver::rearmTimer() {
  loop_.cancelTimer(aresTimer_);
  aresTimer_ = 0;
  timeval tv{};
  if (ares_timeout(channel_, nullptr, &tv) == nullptr) return;  // no query pending
  // At least 1 ms: c-ares counts in whole ms and may say 0 for a deadline not yet due,
  // and a 0 ms timer runs again in the same pass of the loop, which would then spin.
  Millis delay(std::max<int64_t>(1, int64_t{tv.tv_sec} * 1000 + (tv.tv_usec + 999) / 1000));
  aresTimer_ = loop_.addTimer(delay, [this] {
    aresTimer_ = 0;
    ares_process_fd(channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // expires timed-out queries
    rearmTimer();
  });
}

}  // namespace connectable
