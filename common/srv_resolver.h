// ServiceResolver: keeps connect targets resolved to backends with c-ares on the caller's loop.
// Not thread-safe: every call and every callback happens on the loop's thread.
//
// Answers are cached for their TTL (floored), refreshed in the background before they
// expire, and kept when the DNS server fails (stale-if-error): a lookup that fails in part
// uses what did come, each failed address question standing on its own last answer; one
// that brings no backends keeps the last good answer whole. Truncated UDP answers are
// retried over TCP by c-ares.
#pragma once

#include <ares.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/dns_server_replies.h"
#include "common/event_loop.h"
#include "common/socket_address.h"
#include "common/status.h"
#include "common/target.h"

namespace connectable {

// One address a target resolved to. SRV answers carry priority and weight; host:port and
// literal targets have priority 0 and weight 1. Ordering per RFC 2782 is the balancer's job.
struct ResolvedBackend {
  SocketAddress address;  // with the port: distinct ports on one IP are distinct backends
  uint16_t priority = 0;
  uint16_t weight = 1;
  std::string host;  // the SRV target or host name it came from, for status and logs

  bool operator==(const ResolvedBackend& o) const;
  bool operator!=(const ResolvedBackend& o) const { return !(*this == o); }
};

struct Resolution {
  std::vector<ResolvedBackend> backends;  // sorted by address, no duplicates
  // The last lookup: OK with backends; otherwise why it failed, or why there are none
  // ("no such name (NXDOMAIN)", "no SRV records", a timeout...).
  Status status;
  bool pending = true;   // no lookup finished yet: "no answer yet", not "no backends"
  bool stale = false;    // the latest lookup failed; backends are (partly) from earlier answers
  Clock::time_point expires{};  // end of the answer's (floored) TTL
  Millis ttl{0};                // that TTL, after the floor and ceiling
  Clock::time_point nextLookup{};  // when the next lookup starts (refresh or retry); max() for literals
};

struct ResolverOptions {
  std::vector<SocketAddress> servers;  // empty: the nameservers of /etc/resolv.conf
  Millis queryTimeout{2000};  // first try; c-ares doubles it for each later round of servers
  int tries = 2;              // rounds over the server list before a query fails
  Millis minTtl{1000};        // floor: Consul answers with TTL 0
  Millis maxTtl{3600 * 1000};
  Millis negativeTtl{5000};   // NXDOMAIN or no data: at most this long (an SOA may say less)
  Millis retryMin{1000};      // back-off after a failed lookup, doubling up to retryMax
  Millis retryMax{30000};
  // A name's backends changing is logged at once, then at most once in this long, with the
  // set it ended in and how many changes were not logged: a server that answers a different
  // part of the instances each time (Consul's udp_answer_limit, round robin) changes them
  // at every refresh. A change that ends failed lookups is always logged at once, and so
  // are the first two changes to or from none in each interval: an outage and its end. A
  // name that keeps flipping between none and some (one instance whose health check flaps)
  // is then held like any other change, where it would log two lines at every refresh.
  Millis changeLogInterval{60000};
};

// `--dns` syntax: "HOST[:PORT][,...]", HOST an IPv4 literal or [IPv6] (a bare IPv6 literal
// takes no port); port 53 when absent.
Result<std::vector<SocketAddress>> parseDnsServers(std::string_view text);

// The most backends one target's lookup yields (SRV records times their addresses): an
// answer of 1,600 SRV records naming one host with 2,000 addresses would otherwise make
// 3.2 million, for every connection to order and every refresh to rebuild.
inline constexpr size_t kMaxBackends = 1024;

class ServiceResolver {
 public:
  using WatchId = uint64_t;
  using Callback = std::function<void(const Resolution&)>;

  struct Counters {
    uint64_t lookups = 0;             // lookups started (one per target per refresh)
    uint64_t queriesSent = 0;         // DNS questions handed to c-ares
    uint64_t queryFailures = 0;       // questions that timed out, were refused or malformed
    uint64_t malformedAnswers = 0;    // answers our parser rejected
    uint64_t lookupFailures = 0;      // lookups that ended without a usable answer
    uint64_t staleAnswersServed = 0;  // failed lookups that kept (part of) the last good answer
  };

  // REQUIRES: loop outlives the resolver.
  ServiceResolver(EventLoop& loop, ResolverOptions options);
  ~ServiceResolver();  // REQUIRES: not called from inside one of its callbacks
  ServiceResolver(const ServiceResolver&) = delete;
  ServiceResolver& operator=(const ServiceResolver&) = delete;

  // Creates the c-ares channel and sets the servers. Call once, before watch().
  Status init();

  // Resolves `target` and keeps it resolved until unwatch(). `cb` runs when the first
  // lookup finishes (answer or failure) and whenever the backends or the stale flag change;
  // never from within watch(). Watches of the same target share one cache entry, so a
  // second watch of a cached target sends no query. Literal targets need no DNS.
  WatchId watch(const Target& target, Callback cb);
  void unwatch(WatchId id);  // safe from inside a callback

  // The current state of a watch's target; nullptr for an unknown id.
  const Resolution* resolution(WatchId id) const;
  // The current state of a watched target; nullptr when nobody watches it.
  const Resolution* resolutionOf(const Target& target) const;

  // The longest a lookup takes before c-ares gives up on it: every round over the servers
  // (each round's timeout twice the last's), twice over for an SRV answer whose targets
  // are asked for their addresses after it. REQUIRES: init() succeeded.
  Millis longestLookup() const;

  // Re-resolves every target now (SIGHUP), without waiting for the TTLs.
  void refreshAll();

  const Counters& counters() const { return counters_; }
  size_t cachedTargets() const { return entries_.size(); }

 private:
  class Socket;
  struct Entry;
  struct Lookup;
  struct Query;

  static void onSocketState(void* data, ares_socket_t fd, int readable, int writable);
  static void onAnswer(void* arg, int status, int timeouts, unsigned char* abuf, int alen);
  void socketState(int fd, bool readable, bool writable);
  void socketReady(int fd, uint32_t events);
  void rearmTimer();

  void startLookup(Entry& entry);
  void sendQuery(Entry& entry, const std::string& name, uint16_t type, int purpose);
  uint16_t newQueryId();
  void handleAnswer(Query& query, int status, const unsigned char* abuf, int alen);
  void finishLookup(Entry& entry);
  // The TTL of what a lookup brought, floored and capped; and when to refresh within it.
  Millis answerTtl(const Lookup& lookup) const;
  Millis refreshPoint(Millis ttl);
  void scheduleRefresh(Entry& entry, Millis delay);
  // Logs a change of the entry's backends (to none as a warning): `atOnce`, or when no
  // change was logged for changeLogInterval; else counts it and logs the set at the end.
  // `recovered`: the change came with the answer that ended failed lookups, and says so.
  void logChange(Entry& entry, bool atOnce, bool recovered = false);
  // Whether a problem with an answer, said by `text`, is logged now: the first time, and
  // once a minute after; then how many were not logged since, else none.
  std::optional<std::string> takeProblemLine(Entry& entry, const std::string& text);
  // Whether a change to or from none may still be logged at once in this interval.
  bool takeNoneChangeLine(Entry& entry);
  void notify(uint64_t entryId, const std::vector<WatchId>& only = {});
  Entry* findEntry(uint64_t entryId);
  // The channel's servers, in the order c-ares asks them.
  std::vector<SocketAddress> channelServers() const;

  EventLoop& loop_;
  ResolverOptions options_;
  DnsServerReplies serverReplies_;  // before channel_: the channel's sockets are made through it
  ares_channel channel_ = nullptr;
  bool libraryInit_ = false;
  std::map<int, std::unique_ptr<Socket>> sockets_;
  EventLoop::TimerId aresTimer_ = 0;
  std::map<uint64_t, std::unique_ptr<Entry>> entries_;  // by entry id
  std::map<std::string, uint64_t> entryByKey_;
  std::map<WatchId, uint64_t> entryByWatch_;
  uint64_t nextEntryId_ = 1;
  WatchId nextWatchId_ = 1;
  uint64_t nextLookupSerial_ = 1;
  std::set<uint16_t> idsInFlight_;  // DNS ids of the questions c-ares holds
  Counters counters_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // deferred work checks it
  uint64_t rng_ = 0x9e3779b97f4a7c15ull;  // refresh jitter; no need for a good generator
};

}  // namespace connectable
