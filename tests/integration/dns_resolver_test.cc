// ServiceResolver against a real dnsmasq, and against an in-process server that sends
// broken answers on purpose. Record data stays within 127.0.0.1, ::1 and 198.18.0.0/15;
// every query goes to loopback.
#define BOOST_TEST_MODULE dns resolver integration
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <algorithm>
#include <functional>
#include <map>
#include <utility>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "common/dns_message.h"
#include "common/event_loop.h"
#include "common/srv_resolver.h"
#include "common/target.h"
#include "tests/support/captured_output.h"
#include "tests/support/dns_packet.h"
#include "tests/support/dnsmasq.h"

using namespace connectable;
using connectable::testing::DnsPacket;
using connectable::testing::Dnsmasq;

namespace {

using namespace std::chrono_literals;

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Short timeouts so failures show within a second; the TTL floor stays at its default.
ResolverOptions fastOptions(uint16_t port) {
  ResolverOptions o;
  o.servers = {*SocketAddress::parseIp("127.0.0.1", port)};
  o.queryTimeout = 300ms;
  o.tries = 1;
  o.retryMin = 200ms;
  o.retryMax = 1000ms;
  return o;
}

// One step of a scenario: after `hold`, wait up to `timeout` for `until`, then run `then`.
struct Step {
  std::string name;
  std::function<bool()> until;
  Millis timeout{5000};
  std::function<void()> then = nullptr;
  Millis hold{0};
};

Step pauseFor(Millis d, std::function<void()> then = nullptr) {
  return {"wait " + std::to_string(d.count()) + " ms", [] { return true; }, 0ms, std::move(then), d};
}

// Runs the loop through the steps in order. Returns "" when all passed, else the name of
// the step that timed out. EventLoop::run() cannot run again after stop(): one call per test.
std::string runSteps(EventLoop& loop, std::vector<Step> steps) {
  size_t i = 0;
  auto stepStart = Clock::now();
  std::string failed;
  std::function<void()> poll = [&] {
    while (i < steps.size()) {
      Step& s = steps[i];
      auto elapsed = Clock::now() - stepStart;
      if (elapsed >= s.hold && s.until()) {
        if (s.then) s.then();
        ++i;
        stepStart = Clock::now();
        continue;
      }
      if (elapsed > s.hold + s.timeout) {
        failed = s.name;
        break;
      }
      loop.addTimer(10ms, poll);
      return;
    }
    loop.stop();
  };
  loop.defer(poll);
  loop.run();
  return failed;
}

// A loop and a resolver, recording every callback of the watches it makes.
struct Harness {
  EventLoop loop;
  std::unique_ptr<ServiceResolver> resolver;
  std::vector<Resolution> updates;
  ServiceResolver::WatchId id = 0;

  Harness() { BOOST_REQUIRE(loop.init().isOk()); }
  explicit Harness(ResolverOptions options) : Harness() { start(std::move(options)); }
  // For a harness made without options: once what the resolver talks to is up.
  void start(ResolverOptions options) {
    resolver = std::make_unique<ServiceResolver>(loop, std::move(options));
    Status s = resolver->init();
    BOOST_REQUIRE_MESSAGE(s.isOk(), s.message());
  }
  ~Harness() { resolver.reset(); }

  ServiceResolver::WatchId watch(const std::string& text, std::vector<Resolution>* sink = nullptr) {
    Result<Target> t = parseTarget(text);
    BOOST_REQUIRE_MESSAGE(t.isOk(), t.status().message());
    if (sink == nullptr) sink = &updates;
    id = resolver->watch(*t, [sink](const Resolution& r) { sink->push_back(r); });
    return id;
  }
  const Resolution& current() const { return *resolver->resolution(id); }
  bool answered() const { return !updates.empty(); }
};

const ResolvedBackend* find(const Resolution& r, const std::string& address) {
  for (const auto& b : r.backends)
    if (b.address.toString() == address) return &b;
  return nullptr;
}

std::string addresses(const Resolution& r) {
  std::string out;
  for (const auto& b : r.backends) out += b.address.toString() + " ";
  return out;
}

// The name and type asked in a DNS message of our resolver (one uncompressed name after
// the header); an empty name when the message is too short to hold one.
std::pair<std::string, uint16_t> questionOf(const uint8_t* buf, size_t n) {
  size_t pos = 12;
  std::string name;
  while (pos < n && buf[pos] != 0) {
    if (!name.empty()) name += '.';
    name.append(reinterpret_cast<const char*>(buf + pos + 1), std::min<size_t>(buf[pos], n - pos - 1));
    pos += 1u + buf[pos];
  }
  if (pos + 2 >= n) return {"", 0};
  return {name, static_cast<uint16_t>((buf[pos + 1] << 8) | buf[pos + 2])};
}

// Stands between the resolver and a real dnsmasq, over UDP, and upsets the questions of
// one type on demand: answers them SERVFAIL, not at all, or after the next other answer
// (out of order). Everything else passes through unchanged, both ways.
class FaultyRelay {
 public:
  enum class Fault { None, ServerFailure, NoAnswer, AnswerLate };

  FaultyRelay(EventLoop& loop, uint16_t dnsmasqPort) : loop_(loop) {
    client_.fd = boundUdpSocket();
    upstream_.fd = boundUdpSocket();
    const SocketAddress to = SocketAddress::loopbackV4(dnsmasqPort);
    BOOST_REQUIRE(connect(upstream_.fd, to.sockaddr_ptr(), to.length()) == 0);
    client_.ready = [this] { fromResolver(); };
    upstream_.ready = [this] { fromDnsmasq(); };
    BOOST_REQUIRE(loop_.add(client_.fd, EPOLLIN, &client_).isOk());
    BOOST_REQUIRE(loop_.add(upstream_.fd, EPOLLIN, &upstream_).isOk());
  }
  ~FaultyRelay() {
    for (Side* side : {&client_, &upstream_}) {
      loop_.remove(side->fd);
      close(side->fd);
    }
  }

  uint16_t port() const {
    sockaddr_in sin{};
    socklen_t len = sizeof sin;
    getsockname(client_.fd, reinterpret_cast<sockaddr*>(&sin), &len);
    return ntohs(sin.sin_port);
  }
  void upset(uint16_t type, Fault fault) {
    upsetType_ = type;
    fault_ = fault;
  }
  void heal() { fault_ = Fault::None; }
  int upsets() const { return upsets_; }  // questions or answers upset so far
  // The DNS ids of the questions relayed, in order.
  const std::vector<uint16_t>& ids() const { return ids_; }

 private:
  struct Side : IoHandler {
    int fd = -1;
    std::function<void()> ready;
    void onIo(uint32_t) override { ready(); }
  };
  using Key = std::pair<uint16_t, uint16_t>;  // DNS id and type: both, as ids may repeat

  static int boundUdpSocket() {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    BOOST_REQUIRE(fd >= 0);
    const SocketAddress any = SocketAddress::loopbackV4(0);
    BOOST_REQUIRE(bind(fd, any.sockaddr_ptr(), any.length()) == 0);
    return fd;
  }
  static uint16_t idOf(const uint8_t* buf) { return static_cast<uint16_t>((buf[0] << 8) | buf[1]); }

  void fromResolver() {
    uint8_t buf[1500];
    sockaddr_in from{};
    socklen_t fromLen = sizeof from;
    ssize_t n;
    while ((n = recvfrom(client_.fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fromLen)) > 12) {
      fromLen = sizeof from;
      auto [name, type] = questionOf(buf, static_cast<size_t>(n));
      if (name.empty()) continue;
      ids_.push_back(idOf(buf));
      if (type == upsetType_ && (fault_ == Fault::ServerFailure || fault_ == Fault::NoAnswer)) {
        ++upsets_;
        if (fault_ == Fault::ServerFailure) {
          DnsPacket p(DnsPacket::kResponseFlags | 2 /* SERVFAIL */, idOf(buf));
          p.question(name, type);
          std::vector<uint8_t> reply = p.bytes();
          sendto(client_.fd, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), sizeof from);
        }
        continue;
      }
      askedBy_[{idOf(buf), type}] = from;
      send(upstream_.fd, buf, static_cast<size_t>(n), 0);
    }
  }

  void fromDnsmasq() {
    uint8_t buf[1500];
    ssize_t n;
    while ((n = recv(upstream_.fd, buf, sizeof buf, 0)) > 12) {
      uint16_t type = questionOf(buf, static_cast<size_t>(n)).second;
      auto asker = askedBy_.find({idOf(buf), type});
      if (asker == askedBy_.end()) continue;
      std::vector<uint8_t> answer(buf, buf + n);
      sockaddr_in to = asker->second;
      askedBy_.erase(asker);
      if (fault_ != Fault::AnswerLate) {
        sendto(client_.fd, answer.data(), answer.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
        continue;
      }
      // Held until an answer of the upset type and one of another type are both in: then
      // the others go first, whichever order dnsmasq answered in.
      held_.push_back({std::move(answer), to, type == upsetType_});
      bool late = false, other = false;
      for (const Held& h : held_) (h.late ? late : other) = true;
      if (!late || !other) continue;
      ++upsets_;
      std::stable_partition(held_.begin(), held_.end(), [](const Held& h) { return !h.late; });
      for (const Held& h : held_)
        sendto(client_.fd, h.answer.data(), h.answer.size(), 0, reinterpret_cast<const sockaddr*>(&h.to), sizeof h.to);
      held_.clear();
    }
  }
  struct Held {
    std::vector<uint8_t> answer;
    sockaddr_in to;
    bool late;
  };

  EventLoop& loop_;
  Side client_, upstream_;
  std::map<Key, sockaddr_in> askedBy_;
  std::vector<Held> held_;  // answers waiting to go out of order
  std::vector<uint16_t> ids_;
  uint16_t upsetType_ = 0;
  Fault fault_ = Fault::None;
  int upsets_ = 0;
};

const std::string kSrvName = "redis.service.connectable.test";

std::vector<std::string> withBase(std::vector<std::string> records, const std::string& ttl) {
  // Local only: a name not configured is NXDOMAIN, never forwarded anywhere.
  records.push_back("local=/connectable.test/");
  records.push_back("local-ttl=" + ttl);
  return records;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(SrvResolver)

BOOST_AUTO_TEST_CASE(ResolvesSrvToBackendsWithPriorityWeightAndPortFromAdditionalRecords) {
  Dnsmasq dns(withBase({"srv-host=" + kSrvName + ",a.connectable.test,6379,1,10",
                        "srv-host=" + kSrvName + ",a.connectable.test,6380,1,20",
                        "srv-host=" + kSrvName + ",b.connectable.test,6379,2,5",
                        "host-record=a.connectable.test,198.18.0.1,::1", "host-record=b.connectable.test,198.18.0.2"},
                       "30"));
  dns.start();
  Harness h(fastOptions(dns.port()));
  h.watch(kSrvName);
  BOOST_TEST(h.current().pending);  // nothing yet, and no callback from inside watch()
  BOOST_TEST(h.updates.empty());
  BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"first answer", [&] { return h.answered(); }}}), "");

  const Resolution& r = h.current();
  BOOST_TEST(!r.pending);
  BOOST_TEST(!r.stale);
  BOOST_TEST(r.status.isOk(), r.status.message());
  BOOST_TEST_REQUIRE(r.backends.size() == 5u, addresses(r));
  const ResolvedBackend* a = find(r, "198.18.0.1:6379");
  BOOST_REQUIRE(a);
  BOOST_TEST(a->priority == 1);
  BOOST_TEST(a->weight == 10);
  BOOST_TEST(a->host == "a.connectable.test");
  const ResolvedBackend* a6 = find(r, "[::1]:6380");  // same host, other port: its own backend
  BOOST_REQUIRE(a6);
  BOOST_TEST(a6->weight == 20);
  BOOST_REQUIRE(find(r, "198.18.0.1:6380"));
  BOOST_REQUIRE(find(r, "[::1]:6379"));
  const ResolvedBackend* b = find(r, "198.18.0.2:6379");
  BOOST_REQUIRE(b);
  BOOST_TEST(b->priority == 2);
  BOOST_TEST(b->weight == 5);
  // The additional section was enough: no address questions.
  BOOST_TEST(dns.queryCount("SRV", kSrvName) == 1);
  BOOST_TEST(dns.queryCount("A", "a.connectable.test") == 0);
  BOOST_TEST(dns.queryCount("AAAA", "a.connectable.test") == 0);
  BOOST_TEST(h.updates.size() == 1u);
}

BOOST_AUTO_TEST_CASE(LooksUpSrvTargetsThatCameWithoutAddresses) {
  Dnsmasq dns(withBase({"srv-host=web.connectable.test,c.connectable.test,8080,0,1",
                        "srv-host=web.connectable.test,alias.connectable.test,8081,0,1",
                        "address=/c.connectable.test/198.18.0.3", "cname=alias.connectable.test,a.connectable.test",
                        "host-record=a.connectable.test,198.18.0.1"},
                       "30"));
  dns.start();
  Harness h(fastOptions(dns.port()));
  h.watch("web.connectable.test");
  BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"first answer", [&] { return h.answered(); }}}), "");
  const Resolution& r = h.current();
  BOOST_TEST(r.status.isOk(), r.status.message());
  BOOST_TEST(r.backends.size() == 2u, addresses(r));
  BOOST_TEST(find(r, "198.18.0.3:8080"));
  BOOST_TEST(find(r, "198.18.0.1:8081"));  // through the CNAME
  BOOST_TEST(dns.queryCount("A", "c.connectable.test") == 1);
  BOOST_TEST(dns.queryCount("AAAA", "c.connectable.test") == 1);
}

BOOST_AUTO_TEST_CASE(AnAnswerListingMoreBackendsThanAPortTakesIsCutToTheFirstOnes) {
  // 1,100 SRV records (1,100 ports of one host): a port takes kMaxBackends of them, and
  // the rest are left out. Never millions made, whatever an answer lists.
  std::vector<std::string> config = {"host-record=h.connectable.test,198.18.1.1"};
  for (int i = 0; i < 1100; ++i)
    config.push_back("srv-host=big.connectable.test,h.connectable.test," + std::to_string(9000 + i) + ",0,1");
  Dnsmasq dns(withBase(config, "30"));
  dns.start();
  ResolverOptions options = fastOptions(dns.port());
  options.queryTimeout = 3000ms;  // the answers are big: over TCP after a truncated one
  Harness h(options);
  h.watch("big.connectable.test");
  BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"first answer", [&] { return h.answered(); }}}), "");
  const Resolution& r = h.current();
  BOOST_TEST(r.status.isOk(), r.status.message());
  BOOST_TEST(r.backends.size() == kMaxBackends);
}

BOOST_AUTO_TEST_CASE(ResolvesHostPortToBothAddressFamiliesWithTheFixedPort) {
  Dnsmasq dns(withBase({"host-record=db.connectable.test,198.18.0.10,::1"}, "30"));
  dns.start();
  Harness h(fastOptions(dns.port()));
  h.watch("db.connectable.test:5432");
  BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"first answer", [&] { return h.answered(); }}}), "");
  const Resolution& r = h.current();
  BOOST_TEST(r.status.isOk(), r.status.message());
  BOOST_TEST_REQUIRE(r.backends.size() == 2u, addresses(r));
  BOOST_TEST(find(r, "198.18.0.10:5432"));
  BOOST_TEST(find(r, "[::1]:5432"));
  BOOST_TEST(r.backends[0].priority == 0);
  BOOST_TEST(r.backends[0].weight == 1);
  BOOST_TEST(dns.queryCount("A", "db.connectable.test") == 1);
  BOOST_TEST(dns.queryCount("AAAA", "db.connectable.test") == 1);
}

BOOST_AUTO_TEST_CASE(HonoursTheTtlFloorWhenTheServerSaysZero) {
  Dnsmasq dns(withBase({"srv-host=" + kSrvName + ",a.connectable.test,6379", "host-record=a.connectable.test,198.18.0.1"},
                       "0"));
  dns.start();
  Harness h(fastOptions(dns.port()));  // minTtl: the default 1 s
  h.watch(kSrvName);
  int afterThreeSeconds = 0;
  BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"first answer", [&] { return h.answered(); }},
                                        pauseFor(3000ms, [&] { afterThreeSeconds = dns.queryCount("SRV", kSrvName); })}),
                      "");
  // Refreshes at 75-90% of the 1 s floor: the first query and 3 or 4 more, not hundreds.
  BOOST_TEST_MESSAGE("SRV queries in 3 s with TTL 0 and a 1 s floor: " << afterThreeSeconds);
  BOOST_TEST(afterThreeSeconds >= 3);
  BOOST_TEST(afterThreeSeconds <= 5);
  BOOST_TEST(h.current().status.isOk());
  BOOST_TEST(h.updates.size() == 1u);  // refreshes with the same answer notify nobody
}

BOOST_AUTO_TEST_CASE(SendsNoQueryWhileTheCacheIsFresh) {
  Dnsmasq dns(withBase({"srv-host=" + kSrvName + ",a.connectable.test,6379", "host-record=a.connectable.test,198.18.0.1"},
                       "30"));
  dns.start();
  Harness h(fastOptions(dns.port()));
  h.watch(kSrvName);
  std::vector<Resolution> second;
  BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"first answer", [&] { return h.answered(); }},
                                        pauseFor(2000ms, [&] { h.watch(kSrvName, &second); }),
                                        {"second watch served from the cache", [&] { return !second.empty(); }}}),
                      "");
  BOOST_TEST(dns.queryCount("SRV", kSrvName) == 1);
  BOOST_TEST(h.resolver->counters().queriesSent == 1u);
  BOOST_TEST(h.resolver->cachedTargets() == 1u);
  BOOST_REQUIRE(second.size() == 1u);
  BOOST_TEST(find(second[0], "198.18.0.1:6379"));
}

BOOST_AUTO_TEST_CASE(RefreshAllReResolvesAtOnce) {
  Dnsmasq dns(withBase({"srv-host=" + kSrvName + ",a.connectable.test,6379", "host-record=a.connectable.test,198.18.0.1"},
                       "30"));
  dns.start();
  Harness h(fastOptions(dns.port()));
  h.watch(kSrvName);
  BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"first answer", [&] { return h.answered(); }, 5000ms, [&] { h.resolver->refreshAll(); }},
                                        {"second query", [&] { return dns.queryCount("SRV", kSrvName) == 2; }, 1000ms}}),
                      "");
}

BOOST_AUTO_TEST_CASE(BackgroundRefreshPicksUpAChangedRecord) {
  auto records = [](const char* ip) {
    return withBase({"srv-host=" + kSrvName + ",a.connectable.test,6379", std::string("host-record=a.connectable.test,") + ip},
                    "1");
  };
  Dnsmasq dns(records("198.18.0.1"));
  dns.start();
  Harness h(fastOptions(dns.port()));
  h.watch(kSrvName);
  BOOST_REQUIRE_EQUAL(
      runSteps(h.loop, {{"first answer", [&] { return h.answered(); }, 5000ms, [&] { dns.restart(records("198.18.0.5")); }},
                        {"new address", [&] { return find(h.current(), "198.18.0.5:6379") != nullptr; }, 5000ms}}),
      "");
  BOOST_TEST(h.current().backends.size() == 1u, addresses(h.current()));
  BOOST_TEST(!h.current().stale);
  BOOST_REQUIRE(!h.updates.empty());
  BOOST_TEST(find(h.updates.back(), "198.18.0.5:6379"));  // watchers were told
}

BOOST_AUTO_TEST_CASE(KeepsLastAnswerWhenServerStopsResponding) {
  Dnsmasq dns(withBase({"srv-host=" + kSrvName + ",a.connectable.test,6379", "host-record=a.connectable.test,198.18.0.1"},
                       "1"));
  dns.start();
  Harness h(fastOptions(dns.port()));
  h.watch(kSrvName);
  Resolution whileStale;
  BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"first answer", [&] { return h.answered(); }, 5000ms, [&] { dns.pause(); }},
                                        {"marked stale", [&] { return h.current().stale; }, 5000ms,
                                         [&] {
                                           whileStale = h.current();
                                           dns.resume();
                                         }},
                                        {"fresh again", [&] { return !h.current().stale; }, 5000ms}}),
                      "");
  BOOST_TEST(find(whileStale, "198.18.0.1:6379"));
  BOOST_TEST(whileStale.backends.size() == 1u);
  BOOST_TEST(!whileStale.status.isOk());
  BOOST_TEST(contains(whileStale.status.message(), "Timeout"), whileStale.status.message());
  BOOST_TEST(h.resolver->counters().staleAnswersServed >= 1u);
  BOOST_TEST(h.current().status.isOk());
  BOOST_TEST(find(h.current(), "198.18.0.1:6379"));
  // Told when it went stale and when it recovered; the addresses never changed.
  BOOST_TEST(h.updates.size() == 3u);
}

BOOST_AUTO_TEST_CASE(KeepsLastAnswerWhenServerIsGone) {
  Dnsmasq dns(withBase({"host-record=db.connectable.test,198.18.0.10"}, "1"));
  dns.start();
  Harness h(fastOptions(dns.port()));
  h.watch("db.connectable.test:5432");
  BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"first answer", [&] { return h.answered(); }, 5000ms, [&] { dns.stop(); }},
                                        {"marked stale", [&] { return h.current().stale; }, 5000ms}}),
                      "");
  BOOST_TEST(find(h.current(), "198.18.0.10:5432"));
  BOOST_TEST(!h.current().status.isOk());
  BOOST_TEST_MESSAGE("status while the server is gone: " << h.current().status.message());
}

BOOST_AUTO_TEST_CASE(NxdomainMeansNoBackendsWithAClearStatus) {
  Dnsmasq dns(withBase({"host-record=db.connectable.test,198.18.0.10"}, "30"));
  dns.start();
  Harness h(fastOptions(dns.port()));
  std::vector<Resolution> srv, host;
  auto srvId = h.watch("nope.connectable.test", &srv);
  auto hostId = h.watch("nohost.connectable.test:80", &host);
  BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"both answered", [&] { return !srv.empty() && !host.empty(); }}}), "");
  for (const Resolution* r : {h.resolver->resolution(srvId), h.resolver->resolution(hostId)}) {
    BOOST_TEST(!r->pending);  // answered, and empty: not "no answer yet"
    BOOST_TEST(r->backends.empty());
    BOOST_TEST(!r->stale);
    BOOST_TEST(contains(r->status.message(), "NXDOMAIN"), r->status.message());
  }
  BOOST_TEST(h.resolver->counters().lookupFailures == 0u);
}

BOOST_AUTO_TEST_CASE(AHostNameWithoutItsPortHasNoSrvRecordsAndItsStatusSaysToWriteHostPort) {
  // connect.6000=db.connectable.test, meant as db.connectable.test:5432: the name is there,
  // with an address and no SRV records. "no SRV records" alone left the user to guess.
  Dnsmasq dns(withBase({"host-record=db.connectable.test,198.18.0.10", "txt-record=_db._tcp.connectable.test,x"}, "30"));
  dns.start();
  Harness h(fastOptions(dns.port()));
  std::vector<Resolution> host, service, missing;
  auto hostId = h.watch("db.connectable.test", &host);
  auto serviceId = h.watch("_db._tcp.connectable.test", &service);
  auto missingId = h.watch("nope.connectable.test", &missing);
  BOOST_REQUIRE_EQUAL(
      runSteps(h.loop, {{"all answered", [&] { return !host.empty() && !service.empty() && !missing.empty(); }}}), "");
  BOOST_TEST(h.resolver->resolution(hostId)->backends.empty());
  BOOST_TEST(h.resolver->resolution(hostId)->status.message() ==
                 "db.connectable.test: no SRV records (a name without a port is an SRV lookup: for a host's "
                 "address, write db.connectable.test:PORT)",
             h.resolver->resolution(hostId)->status.message());
  // A name in SRV's own form was meant as one; a name that is not there is not a host's.
  BOOST_TEST(h.resolver->resolution(serviceId)->status.message() == "_db._tcp.connectable.test: no SRV records",
             h.resolver->resolution(serviceId)->status.message());
  BOOST_TEST(h.resolver->resolution(missingId)->status.message() == "nope.connectable.test: no such name (NXDOMAIN)",
             h.resolver->resolution(missingId)->status.message());
}

BOOST_AUTO_TEST_CASE(TheFirstAnswerIsLoggedAndANameWithoutBackendsAsAWarningNotOnlyWhenAClientComes) {
  // A mistyped name: its shim starts, listens and says nothing until a client is refused.
  Dnsmasq dns(withBase({"host-record=db.connectable.test,198.18.0.10"}, "30"));
  dns.start();
  Harness h(fastOptions(dns.port()));
  const std::string log = connectable::testing::tempDir() + "/log";
  connectable::testing::CapturedOutput captured(STDERR_FILENO, log);
  std::vector<Resolution> missing, found;
  auto missingId = h.watch("nohost.connectable.test:80", &missing);
  h.watch("db.connectable.test:5432", &found);
  BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"both answered", [&] { return !missing.empty() && !found.empty(); }}}), "");
  // Asked again, the same answer is not news.
  h.resolver->refreshAll();
  BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"asked again", [&] { return dns.queryCount("A", "nohost.connectable.test") >= 2; }},
                                        pauseFor(300ms)}),
                      "");
  captured.restore();
  BOOST_TEST(h.resolver->resolution(missingId)->backends.empty());
  const std::string text = connectable::testing::readFile(log);
  auto lines = [&](std::vector<std::string> parts) {  // lines holding every part
    size_t n = 0;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
      if (std::all_of(parts.begin(), parts.end(), [&](auto& p) { return line.find(p) != std::string::npos; })) ++n;
    return n;
  };
  BOOST_TEST(lines({" warn ", ": no backends ", "nohost.connectable.test: no such name (NXDOMAIN)"}) == 1u, text);
  BOOST_TEST(lines({" info ", ": backends found ", "db.connectable.test", "198.18.0.10"}) == 1u, text);
}

BOOST_AUTO_TEST_CASE(RetriesOverTcpWhenTheUdpAnswerIsTruncated) {
  std::vector<std::string> records = {"host-record=a.connectable.test,198.18.0.1"};
  for (int i = 1; i <= 40; ++i) records.push_back("srv-host=big.connectable.test,a.connectable.test," + std::to_string(7000 + i) + ",1,1");
  Dnsmasq dns(withBase(records, "30"));
  dns.start();
  Harness h(fastOptions(dns.port()));
  h.watch("big.connectable.test");
  BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"first answer", [&] { return h.answered(); }}}), "");
  // 40 SRV records do not fit a UDP answer (1,232 bytes with EDNS): all of them means the
  // TCP retry worked.
  BOOST_TEST(h.current().status.isOk(), h.current().status.message());
  BOOST_TEST(h.current().backends.size() == 40u);
  BOOST_TEST(find(h.current(), "198.18.0.1:7001"));
  BOOST_TEST(find(h.current(), "198.18.0.1:7040"));
  // dnsmasq saw the question twice: over UDP, then over TCP.
  BOOST_TEST(dns.queryCount("SRV", "big.connectable.test") == 2);
  BOOST_TEST(h.resolver->counters().queriesSent == 1u);
}

BOOST_AUTO_TEST_CASE(EachQuestionHasItsOwnIdAndAnswersMayComeInAnyOrder) {
  // A and AAAA are asked together; a server may answer either first (a forwarder with one
  // of them cached). Ids are what answers are matched by, and guessing them is what a
  // spoofed answer needs (RFC 5452): never the same twice in flight, never a constant.
  for (uint16_t late : {dns::kTypeA, dns::kTypeAaaa}) {
    BOOST_TEST_CONTEXT("the " << dns::typeName(late) << " answer last") {
      Dnsmasq dns(withBase({"host-record=db.connectable.test,198.18.0.10,::1"}, "30"));
      dns.start();
      Harness h;
      FaultyRelay relay(h.loop, dns.port());
      relay.upset(late, FaultyRelay::Fault::AnswerLate);
      h.start(fastOptions(relay.port()));
      h.watch("db.connectable.test:5432");
      BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"first answer", [&] { return h.answered(); }}}), "");
      BOOST_TEST(h.current().status.isOk(), h.current().status.message());
      BOOST_TEST(h.current().backends.size() == 2u, addresses(h.current()));
      BOOST_TEST(relay.upsets() == 1);
      BOOST_TEST_REQUIRE(relay.ids().size() == 2u);
      BOOST_TEST(relay.ids()[0] != relay.ids()[1]);
      BOOST_TEST((relay.ids()[0] | relay.ids()[1]) != 0);  // random: both 0 once in 2^32
    }
  }
}

BOOST_AUTO_TEST_CASE(AFailingAaaaDoesNotFreezeTheAddressesOfAnA) {
  // The A records change while every AAAA question fails: the new A answer is used, the
  // AAAA part of the last good answer is kept, and the status says what failed.
  for (auto fault : {FaultyRelay::Fault::ServerFailure, FaultyRelay::Fault::NoAnswer}) {
    BOOST_TEST_CONTEXT((fault == FaultyRelay::Fault::ServerFailure ? "AAAA answered SERVFAIL" : "AAAA unanswered")) {
      auto records = [](const std::string& v4) { return withBase({"host-record=db.connectable.test," + v4 + ",::1"}, "1"); };
      Dnsmasq dns(records("198.18.0.10"));
      dns.start();
      Harness h;
      FaultyRelay relay(h.loop, dns.port());
      h.start(fastOptions(relay.port()));
      h.watch("db.connectable.test:5432");
      Resolution whileBroken;
      BOOST_REQUIRE_EQUAL(
          runSteps(h.loop, {{"first answer", [&] { return h.answered(); }, 5000ms,
                             [&] {
                               relay.upset(dns::kTypeAaaa, fault);
                               dns.restart(records("198.18.0.11"));
                             }},
                            {"the new A address", [&] { return find(h.current(), "198.18.0.11:5432") != nullptr; }, 5000ms,
                             [&] {
                               whileBroken = h.current();
                               relay.heal();
                             }},
                            {"AAAA answered again", [&] { return h.current().status.isOk(); }, 5000ms}}),
          "");
      BOOST_TEST(whileBroken.backends.size() == 2u, addresses(whileBroken));
      BOOST_TEST(find(whileBroken, "[::1]:5432"));  // kept from the last AAAA answer
      BOOST_TEST(whileBroken.stale);
      BOOST_TEST(contains(whileBroken.status.message(), "AAAA lookup of db.connectable.test"), whileBroken.status.message());
      BOOST_TEST_MESSAGE("status while AAAA fails: " << whileBroken.status.message());
      BOOST_TEST(relay.upsets() >= 1);
      BOOST_TEST(!h.current().stale);
      BOOST_TEST(h.current().backends.size() == 2u, addresses(h.current()));
      BOOST_TEST(find(h.updates.back(), "198.18.0.11:5432"));
    }
  }
}

BOOST_AUTO_TEST_CASE(WhileTheAaaaQuestionKeepsFailingTheARecordsAreRefreshedByTheirTtl) {
  // The retries of a failing question back off (here up to 20 s); what the other question
  // brings has a TTL of 1 s, and a change there must not wait for the back-off.
  auto records = [](const std::string& v4) { return withBase({"host-record=db.connectable.test," + v4 + ",::1"}, "1"); };
  Dnsmasq dns(records("198.18.0.10"));
  dns.start();
  Harness h;
  FaultyRelay relay(h.loop, dns.port());
  ResolverOptions options = fastOptions(relay.port());
  options.retryMax = 20000ms;
  h.start(options);
  h.watch("db.connectable.test:5432");
  Clock::time_point changed;
  BOOST_REQUIRE_EQUAL(
      runSteps(h.loop, {{"first answer", [&] { return h.answered(); }, 5000ms,
                         [&] { relay.upset(dns::kTypeAaaa, FaultyRelay::Fault::NoAnswer); }},
                        // 200, 400, 800, 1600 ms: the next retry would be 3.2 s away, after the 300 ms timeout
                        {"five failed AAAA questions", [&] { return relay.upsets() >= 5; }, 15000ms,
                         [&] {
                           dns.restart(records("198.18.0.11"));
                           changed = Clock::now();
                         }},
                        {"the new A address", [&] { return find(h.current(), "198.18.0.11:5432") != nullptr; }, 10000ms}}),
      "");
  auto after = std::chrono::duration_cast<Millis>(Clock::now() - changed);
  BOOST_TEST(after.count() < 3000, "the new A record came " << after.count() << " ms after the change");
  BOOST_TEST(find(h.current(), "[::1]:5432"));
  BOOST_TEST(h.current().stale);
}

BOOST_AUTO_TEST_CASE(AQuestionThatKeepsFailingIsLoggedWhenItStartsAndWhenItEndsNotAtEveryRetry) {
  // With a TTL of 1 s the A question is asked every second; an AAAA question that never
  // gets an answer fails each time. One line says so, one says when it is over.
  Dnsmasq dns(withBase({"host-record=db.connectable.test,198.18.0.10,::1"}, "1"));
  dns.start();
  Harness h;
  FaultyRelay relay(h.loop, dns.port());
  h.start(fastOptions(relay.port()));
  const std::string log = connectable::testing::tempDir() + "/log";
  auto count = [&](const std::string& what) {
    std::string text = connectable::testing::readFile(log);
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  };
  connectable::testing::CapturedOutput captured(STDERR_FILENO, log);
  h.watch("db.connectable.test:5432");
  BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"first answer", [&] { return h.answered(); }, 5000ms,
                                         [&] { relay.upset(dns::kTypeAaaa, FaultyRelay::Fault::NoAnswer); }},
                                        {"six failed AAAA questions", [&] { return relay.upsets() >= 6; }, 20000ms,
                                         [&] { relay.heal(); }},
                                        {"a lookup whole again", [&] { return !h.current().stale && h.current().status.isOk(); },
                                         10000ms}}),
                      "");
  (void)runSteps(h.loop, {{"the recovery's line", [&] { return count("DNS lookups recovered") > 0; }, 3000ms}});
  captured.restore();
  BOOST_TEST(count("DNS lookup failed in part") == 1u, connectable::testing::readFile(log));
  BOOST_TEST(count("DNS lookups recovered") == 1u, connectable::testing::readFile(log));
}

BOOST_AUTO_TEST_CASE(AnAAnswerTooBigForUdpArrivesWholeOverTcp) {
  // 80 addresses make an A answer of about 1,330 bytes: truncated over UDP (1,232 bytes with
  // EDNS), whole over TCP.
  // dnsmasq writes them two ways, answering AAAA differently (NXDOMAIN under `local=` for
  // `address=`, NODATA for `host-record=`); both must give all 80.
  for (const std::string kind : {"address", "host-record"}) {
    BOOST_TEST_CONTEXT("dnsmasq " << kind << "= lines") {
      std::vector<std::string> records;
      for (int i = 1; i <= 80; ++i) {
        const std::string ip = "198.18.2." + std::to_string(i);
        records.push_back(kind == "address" ? "address=/many.connectable.test/" + ip : "host-record=many.connectable.test," + ip);
      }
      Dnsmasq dns(withBase(records, "30"));
      dns.start();
      Harness h(fastOptions(dns.port()));
      h.watch("many.connectable.test:5432");
      BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"first answer", [&] { return h.answered(); }}}), "");
      BOOST_TEST(h.current().status.isOk(), h.current().status.message());
      BOOST_TEST(h.current().backends.size() == 80u, addresses(h.current()));
      BOOST_TEST(find(h.current(), "198.18.2.1:5432"));
      BOOST_TEST(find(h.current(), "198.18.2.80:5432"));
      BOOST_TEST(dns.queryCount("A", "many.connectable.test") == 2);  // over UDP, then over TCP
      BOOST_TEST(h.resolver->counters().queriesSent == 2u);           // one A, one AAAA
    }
  }
}

BOOST_AUTO_TEST_CASE(AnSrvLookupWhoseTargetsHaveManyAddressesGetsThemAllOverTcp) {
  // Every answer here is too big for UDP. The 30 SRV records come over TCP, with the 10
  // addresses of `listed` in the additional section; `asked` (an `address=` name) comes
  // without, so its A and AAAA questions go out while c-ares still holds that TCP
  // connection, and its A answer is truncated and asked again over TCP.
  std::vector<std::string> records;
  for (int i = 0; i < 20; ++i)
    records.push_back("srv-host=wide.connectable.test,listed.connectable.test," + std::to_string(7000 + i) + ",1,1");
  for (int i = 0; i < 10; ++i)
    records.push_back("srv-host=wide.connectable.test,asked.connectable.test," + std::to_string(7100 + i) + ",1,1");
  for (int i = 1; i <= 10; ++i) records.push_back("host-record=listed.connectable.test,198.18.4." + std::to_string(i));
  for (int i = 1; i <= 80; ++i) records.push_back("address=/asked.connectable.test/198.18.5." + std::to_string(i));
  Dnsmasq dns(withBase(records, "30"));
  dns.start();
  Harness h(fastOptions(dns.port()));
  h.watch("wide.connectable.test");
  BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"first answer", [&] { return h.answered(); }}}), "");
  BOOST_TEST(h.current().status.isOk(), h.current().status.message());
  BOOST_TEST(h.current().backends.size() == 1000u);  // 20 ports of 10 addresses, 10 of 80
  BOOST_TEST(find(h.current(), "198.18.4.10:7019"));
  BOOST_TEST(find(h.current(), "198.18.5.80:7109"));
  BOOST_TEST(dns.queryCount("SRV", "wide.connectable.test") == 2);  // over UDP, then over TCP
  BOOST_TEST(dns.queryCount("A", "listed.connectable.test") == 0);  // came whole with the SRV answer
  BOOST_TEST(dns.queryCount("A", "asked.connectable.test") == 2);   // over UDP, then over TCP
}

BOOST_AUTO_TEST_CASE(AnSrvAnswerWithPartOfATargetsAddressesIsNotTakenForAllOfThem) {
  // The SRV answer fits UDP, but the 80 addresses of `listed` in its additional section do
  // not: dnsmasq sends 70 of them without setting TC (additional records may be left
  // out), and without its OPT record (no room left). The target is asked itself, and its
  // A answer comes over TCP.
  std::vector<std::string> records = {"srv-host=wide.connectable.test,listed.connectable.test,7000,1,1"};
  for (int i = 1; i <= 80; ++i) records.push_back("host-record=listed.connectable.test,198.18.4." + std::to_string(i));
  Dnsmasq dns(withBase(records, "30"));
  dns.start();
  Harness h(fastOptions(dns.port()));
  h.watch("wide.connectable.test");
  BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"first answer", [&] { return h.answered(); }}}), "");
  BOOST_TEST(h.current().status.isOk(), h.current().status.message());
  BOOST_TEST(h.current().backends.size() == 80u, addresses(h.current()));
  BOOST_TEST(dns.queryCount("SRV", "wide.connectable.test") == 1);
  BOOST_TEST(dns.queryCount("A", "listed.connectable.test") == 2);  // over UDP, then over TCP
}

BOOST_AUTO_TEST_CASE(AnSrvAnswerNearTheUdpLimitHasOnlyItsLastTargetAskedAgain) {
  // 19 targets, one A each: a 1,203-byte UDP answer carrying all 19 A records (TC=0) and
  // the OPT record that says the room was 1,232 bytes, with no room for an AAAA record
  // more. Only the target whose records end the message may have lost some; the others
  // came whole. Two questions more per refresh, not thirty-eight.
  std::vector<std::string> records;
  for (int i = 1; i <= 19; ++i) {
    records.push_back("srv-host=biggest.connectable.test,target" + std::to_string(i) + ".connectable.test,7000,1,1");
    records.push_back("host-record=target" + std::to_string(i) + ".connectable.test,198.18.9." + std::to_string(i));
  }
  Dnsmasq dns(withBase(records, "30"));
  dns.start();
  Harness h(fastOptions(dns.port()));
  h.watch("biggest.connectable.test");
  BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"first answer", [&] { return h.answered(); }}}), "");
  BOOST_TEST(h.current().backends.size() == 19u, addresses(h.current()));
  BOOST_TEST(h.resolver->counters().queriesSent == 3u);  // the SRV question, then A and AAAA of one target
  int asked = 0;
  for (int i = 1; i <= 19; ++i) asked += dns.queryCount("A", "target" + std::to_string(i) + ".connectable.test") > 0;
  BOOST_TEST(asked == 1);
}

BOOST_AUTO_TEST_CASE(ATargetWhoseAddressesCameInTheSrvAnswerKeepsThemWhenItsOwnQuestionFails) {
  // Lookup 1: x's A and AAAA come in the SRV answer's additional section. Then y joins
  // with 70 addresses: the UDP answer is cut (1,232 bytes), so x and y are asked, and every
  // AAAA question fails. x's AAAA should stand on its last answer, [::1]; it is dropped.
  auto records = [](bool withY) {
    std::vector<std::string> r = {"srv-host=mixed.connectable.test,x.connectable.test,7000,1,1",
                                  "host-record=x.connectable.test,198.18.0.1,::1"};
    if (withY) {
      r.push_back("srv-host=mixed.connectable.test,y.connectable.test,7001,1,1");
      for (int i = 1; i <= 70; ++i) r.push_back("host-record=y.connectable.test,198.18.1." + std::to_string(i));
    }
    return withBase(r, "1");
  };
  Dnsmasq dns(records(false));
  dns.start();
  Harness h;
  FaultyRelay relay(h.loop, dns.port());
  h.start(fastOptions(relay.port()));
  h.watch("mixed.connectable.test");
  Resolution whileBroken;
  BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"first answer", [&] { return h.answered(); }, 5000ms,
                                         [&] {
                                           relay.upset(dns::kTypeAaaa, FaultyRelay::Fault::ServerFailure);
                                           dns.restart(records(true));
                                         }},
                                        {"y's addresses", [&] { return find(h.current(), "198.18.1.1:7001") != nullptr; },
                                         5000ms, [&] { whileBroken = h.current(); }}}),
                      "");
  BOOST_TEST(find(h.updates.front(), "[::1]:7000"));
  BOOST_TEST(relay.upsets() >= 1);
  BOOST_TEST_MESSAGE("while AAAA fails: " << addresses(whileBroken) << " status " << whileBroken.status.message()
                                           << " stale " << whileBroken.stale);
  BOOST_TEST(find(whileBroken, "[::1]:7000"), addresses(whileBroken));  // x's last AAAA answer
}

BOOST_AUTO_TEST_CASE(UnwatchStopsTheRefreshes) {
  Dnsmasq dns(withBase({"host-record=db.connectable.test,198.18.0.10"}, "1"));
  dns.start();
  Harness h(fastOptions(dns.port()));
  h.watch("db.connectable.test:5432");
  BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"first answer", [&] { return h.answered(); }, 5000ms, [&] { h.resolver->unwatch(h.id); }},
                                        pauseFor(2500ms)}),
                      "");
  BOOST_TEST(dns.queryCount("A", "db.connectable.test") == 1);
  BOOST_TEST(h.resolver->cachedTargets() == 0u);
  BOOST_TEST(h.resolver->resolution(h.id) == nullptr);
}

BOOST_AUTO_TEST_CASE(LiteralTargetsNeedNoDns) {
  Harness h(fastOptions(9));  // nothing listens there; nothing must be asked
  h.watch("198.18.0.5:6379");
  BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"answer", [&] { return h.answered(); }, 1000ms}}), "");
  BOOST_TEST(h.current().backends.size() == 1u);
  BOOST_TEST(find(h.current(), "198.18.0.5:6379"));
  BOOST_TEST(h.resolver->counters().queriesSent == 0u);
}

BOOST_AUTO_TEST_CASE(LocalhostIsLoopbackWithoutAQuery) {
  Harness h(fastOptions(9));
  h.watch("localhost:6379");
  BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"answer", [&] { return h.answered(); }, 1000ms}}), "");
  BOOST_TEST(h.current().backends.size() == 2u);
  BOOST_TEST(find(h.current(), "127.0.0.1:6379"));
  BOOST_TEST(find(h.current(), "[::1]:6379"));
  BOOST_TEST(h.resolver->counters().queriesSent == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

namespace {

// A UDP DNS server on loopback in the test's own loop, answering with whatever the test
// builds, broken or not.
class FakeDnsServer : public IoHandler {
 public:
  // Returns the response bytes; an empty vector means "do not answer".
  using Responder = std::function<std::vector<uint8_t>(uint16_t id, const std::string& name, uint16_t type, int nth)>;

  FakeDnsServer(EventLoop& loop, Responder responder) : loop_(loop), responder_(std::move(responder)) {
    fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    BOOST_REQUIRE(fd_ >= 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    BOOST_REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&sin), sizeof sin) == 0);
    socklen_t len = sizeof sin;
    BOOST_REQUIRE(getsockname(fd_, reinterpret_cast<sockaddr*>(&sin), &len) == 0);
    port_ = ntohs(sin.sin_port);
    BOOST_REQUIRE(loop_.add(fd_, EPOLLIN, this).isOk());
  }
  ~FakeDnsServer() override {
    loop_.remove(fd_);
    close(fd_);
  }

  uint16_t port() const { return port_; }
  int queries() const { return queries_; }
  // The UDP payload size the question being answered offers (its EDNS OPT record); 0
  // without one.
  uint16_t ednsSize() const { return ednsSize_; }

  void onIo(uint32_t) override {
    uint8_t buf[1500];
    sockaddr_storage from{};
    socklen_t fromLen = sizeof from;
    ssize_t n;
    while ((n = recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fromLen)) > 0) {
      // Our own resolver's questions: one uncompressed name after the header.
      size_t pos = 12;
      std::string name;
      while (pos < static_cast<size_t>(n) && buf[pos] != 0) {
        if (!name.empty()) name += '.';
        name.append(reinterpret_cast<char*>(buf + pos + 1), buf[pos]);
        pos += 1u + buf[pos];
      }
      uint16_t id = static_cast<uint16_t>((buf[0] << 8) | buf[1]);
      uint16_t type = static_cast<uint16_t>((buf[pos + 1] << 8) | buf[pos + 2]);
      // An OPT record right after the question: root name, type 41, the size as its class.
      const size_t opt = pos + 5;
      const bool hasOpt = (buf[10] | buf[11]) != 0 && opt + 5 <= static_cast<size_t>(n) && buf[opt] == 0 && buf[opt + 1] == 0 &&
                          buf[opt + 2] == 41;
      ednsSize_ = hasOpt ? static_cast<uint16_t>((buf[opt + 3] << 8) | buf[opt + 4]) : 0;
      std::vector<uint8_t> reply = responder_(id, name, type, ++queries_);
      if (!reply.empty()) sendto(fd_, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), fromLen);
      fromLen = sizeof from;
    }
  }

 private:
  EventLoop& loop_;
  Responder responder_;
  int fd_ = -1;
  uint16_t port_ = 0;
  int queries_ = 0;
  uint16_t ednsSize_ = 0;
};

DnsPacket goodSrv(uint16_t id, const std::string& name) {
  DnsPacket p(DnsPacket::kResponseFlags, id);
  p.question(name, dns::kTypeSrv);
  p.srv(DnsPacket::Answer, name, 1, 1, 6379, "a.connectable.test", 1)
      .a(DnsPacket::Additional, "a.connectable.test", "198.18.0.1", 1);
  return p;
}

// An SRV answer whose record's data runs far past the end of the message.
std::vector<uint8_t> malformedSrv(uint16_t id, const std::string& name) {
  DnsPacket p(DnsPacket::kResponseFlags, id);
  p.question(name, dns::kTypeSrv);
  p.name(name).recordHeader(dns::kTypeSrv, 1).u16(300).u16(0);  // rdlength 300
  p.bumpCount(DnsPacket::Answer);
  return p.bytes();
}

// The server failed the SRV question (SERVFAIL).
std::vector<uint8_t> serverFailure(uint16_t id, const std::string& name) {
  DnsPacket p(DnsPacket::kResponseFlags | 2 /* SERVFAIL */, id);
  p.question(name, dns::kTypeSrv);
  return p.bytes();
}

// An SRV answer naming 198.18.0.1 at each of `ports`, TTL 0; no ports: no records.
DnsPacket srvAt(uint16_t id, const std::string& name, const std::vector<uint16_t>& ports) {
  DnsPacket p(DnsPacket::kResponseFlags, id);
  p.question(name, dns::kTypeSrv);
  for (uint16_t port : ports) p.srv(DnsPacket::Answer, name, 1, 1, port, "a.connectable.test", 0);
  if (!ports.empty()) p.a(DnsPacket::Additional, "a.connectable.test", "198.18.0.1", 0);
  return p;
}

// A harness whose resolver talks to a FakeDnsServer in its own loop.
struct FakeHarness {
  explicit FakeHarness(FakeDnsServer::Responder responder, std::function<void(ResolverOptions&)> tune = nullptr) {
    BOOST_REQUIRE(loop.init().isOk());
    server = std::make_unique<FakeDnsServer>(loop, std::move(responder));
    ResolverOptions options = fastOptions(server->port());
    if (tune) tune(options);
    resolver = std::make_unique<ServiceResolver>(loop, options);
    BOOST_REQUIRE(resolver->init().isOk());
    Result<Target> t = parseTarget(kSrvName);
    BOOST_REQUIRE(t.isOk());
    id = resolver->watch(*t, [this](const Resolution& r) { updates.push_back(r); });
  }
  ~FakeHarness() {
    resolver.reset();
    server.reset();
  }
  const Resolution& current() const { return *resolver->resolution(id); }

  EventLoop loop;
  std::unique_ptr<FakeDnsServer> server;
  std::unique_ptr<ServiceResolver> resolver;
  std::vector<Resolution> updates;
  ServiceResolver::WatchId id = 0;
};

// Good first, then `bad` for every later question.
FakeDnsServer::Responder goodThen(std::function<std::vector<uint8_t>(uint16_t, const std::string&)> bad) {
  return [bad](uint16_t id, const std::string& name, uint16_t, int nth) {
    return nth == 1 ? goodSrv(id, name).bytes() : bad(id, name);
  };
}

}  // namespace

BOOST_AUTO_TEST_SUITE(SrvResolverBadAnswers)

BOOST_AUTO_TEST_CASE(KeepsLastAnswerWhenAnAnswerIsMalformed) {
  FakeHarness h(goodThen(malformedSrv));
  BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"stale", [&] { return h.current().stale; }}}), "");
  BOOST_TEST(find(h.current(), "198.18.0.1:6379"));
  BOOST_TEST(contains(h.current().status.message(), "malformed"), h.current().status.message());
  BOOST_TEST(h.resolver->counters().malformedAnswers >= 1u);
}

BOOST_AUTO_TEST_CASE(AnAnswerThatStaysMalformedIsLoggedOnceAMinuteNotAtEveryRetry) {
  // Retried at 0.2, 0.4, 0.8, 1 s ... (and a short TTL refreshes as often): the line that
  // says what was wrong with the answer comes once, and then once a minute with how many
  // were not logged, as the lookup's failure line does.
  FakeHarness h(goodThen(malformedSrv));
  const std::string log = connectable::testing::tempDir() + "/log";
  connectable::testing::CapturedOutput captured(STDERR_FILENO, log);
  BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"five malformed answers", [&] { return h.server->queries() >= 6; }, 8000ms}}), "");
  captured.restore();
  const std::string text = connectable::testing::readFile(log);
  size_t lines = 0;
  for (size_t at = text.find("malformed DNS answer"); at != std::string::npos; at = text.find("malformed DNS answer", at + 1))
    ++lines;
  BOOST_TEST(lines == 1u, text);
  BOOST_TEST(h.resolver->counters().malformedAnswers >= 5u);  // each one still counted
}

BOOST_AUTO_TEST_CASE(KeepsLastAnswerWhenANameIsLongerThan253Characters) {
  FakeHarness h(goodThen([](uint16_t id, const std::string& name) {
    std::string longName;
    for (int i = 0; i < 5; ++i) longName += std::string(60, 'a') + ".";
    DnsPacket p(DnsPacket::kResponseFlags, id);
    p.question(name, dns::kTypeSrv);
    p.srv(DnsPacket::Answer, name, 1, 1, 6379, longName + "test", 1);
    return p.bytes();
  }));
  BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"stale", [&] { return h.current().stale; }}}), "");
  BOOST_TEST(find(h.current(), "198.18.0.1:6379"));
  BOOST_TEST(contains(h.current().status.message(), "longer than 255"), h.current().status.message());
}

BOOST_AUTO_TEST_CASE(KeepsLastAnswerWhenCnamesLoop) {
  FakeHarness h(goodThen([](uint16_t id, const std::string& name) {
    DnsPacket p(DnsPacket::kResponseFlags, id);
    p.question(name, dns::kTypeSrv);
    p.cname(DnsPacket::Answer, name, "x.connectable.test", 1).cname(DnsPacket::Answer, "x.connectable.test", name, 1);
    return p.bytes();
  }));
  BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"stale", [&] { return h.current().stale; }}}), "");
  BOOST_TEST(find(h.current(), "198.18.0.1:6379"));
  BOOST_TEST(contains(h.current().status.message(), "CNAME"), h.current().status.message());
}

BOOST_AUTO_TEST_CASE(KeepsLastAnswerWhenTheAnswerIsAboutSomethingElse) {
  // The question matches, but every answer record is for another name or another class:
  // the server answered some other question. That is no "no SRV records", which would
  // leave the port without backends.
  std::vector<std::pair<std::string, std::function<void(DnsPacket&, const std::string&)>>> answers = {
      {"another name",
       [](DnsPacket& p, const std::string&) {
         p.srv(DnsPacket::Answer, "other.connectable.test", 1, 1, 6379, "b.connectable.test", 1)
             .a(DnsPacket::Additional, "b.connectable.test", "198.18.0.2", 1);
       }},
      {"another class",
       [](DnsPacket& p, const std::string& name) {
         std::vector<uint8_t> rd = {0, 1, 0, 1, 0x18, 0xEB};  // priority 1, weight 1, port 6379
         std::vector<uint8_t> target = DnsPacket::encodeName("b.connectable.test");
         rd.insert(rd.end(), target.begin(), target.end());
         p.name(name).recordHeader(dns::kTypeSrv, 1, 3 /* CH */).u16(static_cast<uint16_t>(rd.size())).raw(rd);
         p.bumpCount(DnsPacket::Answer);
       }},
  };
  for (const auto& [what, fill] : answers) {
    BOOST_TEST_CONTEXT("records for " << what) {
      FakeHarness h(goodThen([fill = fill](uint16_t id, const std::string& name) {
        DnsPacket p(DnsPacket::kResponseFlags, id);
        p.question(name, dns::kTypeSrv);
        fill(p, name);
        return p.bytes();
      }));
      BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"first answer", [&] { return !h.updates.empty(); }},
                                            {"the second answer", [&] { return h.server->queries() >= 2 && h.updates.size() >= 2; }}}),
                          "");
      BOOST_TEST(h.current().stale);
      BOOST_TEST(find(h.current(), "198.18.0.1:6379"), addresses(h.current()));
      BOOST_TEST(!find(h.current(), "198.18.0.2:6379"));
      BOOST_TEST(contains(h.current().status.message(), "bad answer"), h.current().status.message());
    }
  }
}

BOOST_AUTO_TEST_CASE(IgnoresUnrelatedAdditionalRecords) {
  FakeHarness h([](uint16_t id, const std::string& name, uint16_t, int) {
    DnsPacket p(DnsPacket::kResponseFlags, id);
    p.question(name, dns::kTypeSrv);
    p.srv(DnsPacket::Answer, name, 1, 1, 6379, "a.connectable.test", 30)
        .txt(DnsPacket::Additional, "a.connectable.test", "not an address")
        .aaaa(DnsPacket::Additional, "a.connectable.test", "::1")
        .a(DnsPacket::Additional, "a.connectable.test", "198.18.0.1")
        .a(DnsPacket::Additional, "elsewhere.connectable.test", "198.18.0.99");
    return p.bytes();
  });
  BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"answer", [&] { return !h.updates.empty(); }}}), "");
  BOOST_TEST(h.current().status.isOk(), h.current().status.message());
  BOOST_TEST(h.current().backends.size() == 2u, addresses(h.current()));
  BOOST_TEST(find(h.current(), "198.18.0.1:6379"));
  BOOST_TEST(find(h.current(), "[::1]:6379"));
}

BOOST_AUTO_TEST_CASE(EveryInstanceComesFromAServerThatCutsAnswersWithoutEdnsToThreeAsConsulDoes) {
  // Consul answers a UDP question without EDNS with at most udp_answer_limit (3) records,
  // picked at random, and without TC: so nothing says more exist. A question that offers
  // a bigger payload (EDNS) gets them all, as many as fit.
  FakeDnsServer* server = nullptr;
  FakeHarness h([&server](uint16_t id, const std::string& name, uint16_t, int) {
    const int instances = server->ednsSize() > 512 ? 10 : 3;
    DnsPacket p(DnsPacket::kResponseFlags, id);
    p.question(name, dns::kTypeSrv);
    for (int i = 0; i < instances; ++i)
      p.srv(DnsPacket::Answer, name, 1, 1, 6379, "i" + std::to_string(i) + ".connectable.test", 0);
    for (int i = 0; i < instances; ++i) {
      const std::string address = "198.18.0." + std::to_string(i + 1);
      p.a(DnsPacket::Additional, "i" + std::to_string(i) + ".connectable.test", address.c_str(), 0);
    }
    return p.bytes();
  });
  server = h.server.get();
  BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"answer", [&] { return !h.updates.empty(); }}}), "");
  BOOST_TEST(h.current().status.isOk(), h.current().status.message());
  BOOST_TEST(h.current().backends.size() == 10u, addresses(h.current()));
}

BOOST_AUTO_TEST_CASE(AServiceMissingAtFirstIsFoundSecondsAfterItAppearsWhateverItsZonesNegativeTtl) {
  // A container often starts before the service it needs is registered: its name is
  // NXDOMAIN, with the zone's SOA saying to cache that for an hour (Route 53's default SOA
  // says 15 minutes, many zones a day). The shim asks again within the negative TTL of its
  // own (5 s), as Envoy and HAProxy do, not an hour later.
  FakeHarness h([](uint16_t id, const std::string& name, uint16_t, int nth) {
    if (nth > 1) return goodSrv(id, name).bytes();
    DnsPacket p(DnsPacket::kResponseFlags | 3 /* NXDOMAIN */, id);
    p.question(name, dns::kTypeSrv);
    p.soa(DnsPacket::Authority, "connectable.test", 3600, 3600);
    return p.bytes();
  });
  BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"NXDOMAIN", [&] { return !h.updates.empty(); }},
                                        {"the service, once there", [&] { return !h.current().backends.empty(); }, 7000ms}}),
                      "");
  BOOST_TEST(contains(h.updates.front().status.message(), "NXDOMAIN"), h.updates.front().status.message());
  BOOST_TEST(find(h.current(), "198.18.0.1:6379"));
}

BOOST_AUTO_TEST_CASE(AServiceWhoseSrvRecordsNameNoUsableTargetIsAskedAgainWithinSecondsWhateverTheirTtl) {
  // "0 0 0 ." (RFC 2782: no such service here), or records with port 0, stand for a
  // service not registered yet, often with a TTL of an hour: like NXDOMAIN, the name is
  // asked again within the shim's own negative TTL (5 s).
  FakeHarness h([](uint16_t id, const std::string& name, uint16_t, int nth) {
    if (nth > 1) return goodSrv(id, name).bytes();
    DnsPacket p(DnsPacket::kResponseFlags, id);
    p.question(name, dns::kTypeSrv);
    p.srv(DnsPacket::Answer, name, 0, 0, 0, "", 3600).srv(DnsPacket::Answer, name, 1, 1, 0, "a.connectable.test", 3600);
    return p.bytes();
  });
  BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"the placeholder", [&] { return !h.updates.empty(); }},
                                        {"the service, once there", [&] { return !h.current().backends.empty(); }, 7000ms}}),
                      "");
  BOOST_TEST(contains(h.updates.front().status.message(), "no usable target"), h.updates.front().status.message());
  BOOST_TEST(find(h.current(), "198.18.0.1:6379"));
}

BOOST_AUTO_TEST_CASE(AFirstLookupThatTimesOutIsAnAnswerWithNoBackends) {
  FakeHarness h([](uint16_t, const std::string&, uint16_t, int) { return std::vector<uint8_t>(); });
  BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"failure reported", [&] { return !h.updates.empty(); }}}), "");
  const Resolution& r = h.current();
  BOOST_TEST(!r.pending);
  BOOST_TEST(!r.stale);  // nothing to be stale about
  BOOST_TEST(r.backends.empty());
  BOOST_TEST(contains(r.status.message(), "Timeout"), r.status.message());
  BOOST_TEST(h.resolver->counters().lookupFailures >= 1u);
}

BOOST_AUTO_TEST_CASE(ALookupNoServerAnswersEndsWithinTheLongestLookupAfterEveryRoundOverEveryServer) {
  // The bound of a first connection's wait: c-ares asks each server in turn, 300 ms each,
  // then again at twice that; an SRV lookup may need its targets' addresses after that.
  Harness h;
  auto silent = [](uint16_t, const std::string&, uint16_t, int) { return std::vector<uint8_t>(); };
  FakeDnsServer one(h.loop, silent), two(h.loop, silent);
  ResolverOptions options = fastOptions(one.port());
  options.servers.push_back(*SocketAddress::parseIp("127.0.0.1", two.port()));
  options.tries = 2;
  h.start(options);
  BOOST_TEST(h.resolver->longestLookup().count() == 2 * (2 * 300 + 2 * 600));
  const auto start = Clock::now();
  h.watch(kSrvName);
  BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"failure reported", [&] { return h.answered(); }, 10000ms}}), "");
  const auto took = std::chrono::duration_cast<Millis>(Clock::now() - start);
  BOOST_TEST_MESSAGE("an unanswered lookup over 2 servers, 2 tries of 300 ms: " << took.count() << " ms");
  BOOST_TEST(one.queries() == 2);
  BOOST_TEST(two.queries() == 2);
  BOOST_TEST(took.count() >= 1750);  // the second round at twice the timeout
  BOOST_TEST(took.count() <= h.resolver->longestLookup().count() / 2 + 200);
}

BOOST_AUTO_TEST_CASE(WatchersHearThatLookupsRecoveredEvenWhenTheBackendsStayTheSame) {
  // The first lookup half fails (the target's AAAA question goes unanswered), so it serves
  // what the A answer gave, with an error; the next one succeeds with the same backends.
  // The shim's status must stop saying "failed".
  int aaaaQuestions = 0;
  FakeHarness h([&](uint16_t id, const std::string& name, uint16_t type, int) {
    DnsPacket p(DnsPacket::kResponseFlags, id);
    p.question(name, type);
    if (type == dns::kTypeSrv) p.srv(DnsPacket::Answer, name, 1, 1, 6379, "a.connectable.test", 1);
    if (type == dns::kTypeA) p.a(DnsPacket::Answer, name, "198.18.0.1", 1);
    if (type == dns::kTypeAaaa && ++aaaaQuestions == 1) return std::vector<uint8_t>();  // no answer
    return p.bytes();
  });
  BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"a failed first lookup", [&] { return !h.updates.empty(); }},
                                        {"told it recovered", [&] { return h.updates.back().status.isOk(); }}}),
                      "");
  BOOST_TEST(find(h.updates.back(), "198.18.0.1:6379"));
  BOOST_TEST(!h.updates.front().status.isOk(), "the first lookup did not fail part-way as meant");
}

BOOST_AUTO_TEST_CASE(ServerFailureKeepsTheLastAnswer) {
  FakeHarness h(goodThen(serverFailure));
  BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"stale", [&] { return h.current().stale; }}}), "");
  BOOST_TEST(find(h.current(), "198.18.0.1:6379"));
  // Not "Could not contact DNS servers": this one did answer.
  BOOST_TEST(contains(h.current().status.message(), "SERVFAIL"), h.current().status.message());
}

BOOST_AUTO_TEST_SUITE_END()

// What each DNS server did with a question that failed is in the error, server by server:
// c-ares alone says the same for a server that is down, one that refuses us and one that
// fails upstream, and those need different fixes.
BOOST_AUTO_TEST_SUITE(SrvResolverNamesWhatEachServerDid)

namespace {

// A loopback UDP port with nothing listening: a question sent there draws ICMP port
// unreachable, which the socket reports as "Connection refused".
uint16_t deadUdpPort() {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  BOOST_REQUIRE(fd >= 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sin;
  BOOST_REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) == 0);
  BOOST_REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len) == 0);
  close(fd);
  return ntohs(sin.sin_port);
}

std::string server(uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

}  // namespace

BOOST_AUTO_TEST_CASE(AServerThatRefusesTheQuestionIsNamedWithItsAnswer) {
  // A real dnsmasq that serves connectable.test only and forwards nowhere refuses a name
  // outside it, as a server that does not recurse for us would.
  Dnsmasq dns(withBase({"host-record=a.connectable.test,198.18.0.1"}, "30"));
  dns.start();
  Harness h(fastOptions(dns.port()));
  h.watch("_redis._tcp.elsewhere.test");
  BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"first answer", [&] { return h.answered(); }}}), "");
  const std::string why = h.current().status.message();
  BOOST_TEST(contains(why, "every DNS server failed it: " + server(dns.port()) + " answered REFUSED"), why);
  BOOST_TEST(!contains(why, "SERVFAIL"), why);
}

BOOST_AUTO_TEST_CASE(AServerWithNothingListeningIsNamedAsUnreachable) {
  const uint16_t dead = deadUdpPort();
  Harness h(fastOptions(dead));
  h.watch(kSrvName);
  BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"first answer", [&] { return h.answered(); }}}), "");
  const std::string why = h.current().status.message();
  BOOST_TEST(contains(why, "every DNS server failed it: " + server(dead) + " unreachable: Connection refused"), why);
  BOOST_TEST(!contains(why, "answered"), why);
}

BOOST_AUTO_TEST_CASE(EachServerIsNamedWithWhatItDidInTheOrderTheyAreAsked) {
  const uint16_t dead = deadUdpPort();
  FakeHarness h([](uint16_t id, const std::string& name, uint16_t, int) { return serverFailure(id, name); },
                [dead](ResolverOptions& o) { o.servers.push_back(*SocketAddress::parseIp("127.0.0.1", dead)); });
  BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"first answer", [&] { return !h.updates.empty(); }}}), "");
  const std::string why = h.current().status.message();
  BOOST_TEST(contains(why, "every DNS server failed it: " + server(h.server->port()) + " answered SERVFAIL; " +
                               server(dead) + " unreachable: Connection refused"),
             why);
}

BOOST_AUTO_TEST_CASE(ATimeoutNamesTheServersThatFailedAndThoseThatSaidNothing) {
  // One server fails the question, the other never answers: c-ares reports a timeout.
  Harness h;
  FakeDnsServer silent(h.loop, [](uint16_t, const std::string&, uint16_t, int) { return std::vector<uint8_t>{}; });
  FakeDnsServer failing(h.loop, [](uint16_t id, const std::string& name, uint16_t, int) { return serverFailure(id, name); });
  ResolverOptions options = fastOptions(silent.port());
  options.servers.push_back(*SocketAddress::parseIp("127.0.0.1", failing.port()));
  h.start(options);
  h.watch(kSrvName);
  BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"first answer", [&] { return h.answered(); }}}), "");
  const std::string why = h.current().status.message();
  BOOST_TEST(contains(why, "Timeout while contacting DNS servers: " + server(silent.port()) + " did not answer; " +
                               server(failing.port()) + " answered SERVFAIL"),
             why);
}

BOOST_AUTO_TEST_CASE(ATimeoutFromServersThatAllSaidNothingKeepsItsPlainWords) {
  FakeHarness h([](uint16_t, const std::string&, uint16_t, int) { return std::vector<uint8_t>{}; });
  BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"first answer", [&] { return !h.updates.empty(); }}}), "");
  const std::string why = h.current().status.message();
  BOOST_TEST(contains(why, "Timeout while contacting DNS servers"), why);
  BOOST_TEST(!contains(why, "did not answer"), why);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(SrvResolverChangeLog)

namespace {

// Answers refreshed every 150-180 ms, negative ones too.
void refreshFast(ResolverOptions& o) { o.minTtl = o.negativeTtl = 200ms; }

// Lines of `text` holding every one of `parts`.
std::vector<std::string> linesWith(const std::string& text, const std::vector<std::string>& parts) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (std::all_of(parts.begin(), parts.end(), [&](auto& p) { return line.find(p) != std::string::npos; })) out.push_back(line);
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(ABackendSetThatChangesAtEveryRefreshIsLoggedAtItsFirstChangeNotAtEveryRefresh) {
  // Consul with udp_answer_limit, or a round-robin server, answers a different part of a
  // service's instances each time: the set changes at every refresh, each second with
  // Consul's TTL 0, for every name of every shim on every host.
  FakeHarness h(
      [](uint16_t id, const std::string& name, uint16_t, int nth) {
        return srvAt(id, name, nth % 2 ? std::vector<uint16_t>{6379, 6380} : std::vector<uint16_t>{6379, 6381}).bytes();
      },
      refreshFast);
  const std::string log = connectable::testing::tempDir() + "/log";
  connectable::testing::CapturedOutput captured(STDERR_FILENO, log);
  size_t atFirstChange = 0;
  BOOST_REQUIRE_EQUAL(
      runSteps(h.loop, {{"the first change", [&] { return h.updates.size() >= 2; }, 5000ms,
                         [&] { atFirstChange = linesWith(captured.text(), {"backends changed"}).size(); }},
                        {"ten changes", [&] { return h.updates.size() >= 11; }, 10000ms}}),
      "");
  captured.restore();
  const std::string text = connectable::testing::readFile(log);
  BOOST_TEST(atFirstChange == 1u, text);  // seen at once
  BOOST_TEST(linesWith(text, {" info ", "backends changed"}).size() == 1u, text);
}

BOOST_AUTO_TEST_CASE(HeldChangesAreSummedUpInTheSetTheNameSettledInAndAChangeToOrFromNoneIsLoggedAtOnce) {
  const std::vector<std::vector<uint16_t>> script = {{6379},       {6379, 6380}, {6379, 6381}, {6379, 6380},
                                                     {},           {6379},       {6379, 6380}, {6379, 6380, 6381}};
  FakeHarness h(
      [&](uint16_t id, const std::string& name, uint16_t, int nth) {
        return srvAt(id, name, script[std::min<size_t>(static_cast<size_t>(nth), script.size()) - 1]).bytes();
      },
      [](ResolverOptions& o) {
        refreshFast(o);
        o.changeLogInterval = 2000ms;
      });
  const std::string log = connectable::testing::tempDir() + "/log";
  connectable::testing::CapturedOutput captured(STDERR_FILENO, log);
  // Each answer of the script is a change; then the last one stays, past the interval.
  BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"the whole script", [&] { return h.updates.size() >= script.size(); }, 10000ms},
                                        pauseFor(3000ms)}),
                      "");
  captured.restore();
  const std::string text = connectable::testing::readFile(log);
  BOOST_TEST(h.updates.size() == script.size(), text);
  const auto changed = linesWith(text, {" info ", "backends changed"});
  BOOST_TEST_REQUIRE(changed.size() == 3u, text);
  // The first change at once; the set after none at once; then, once the interval is over,
  // the set it settled in, with the two changes before it that were not logged.
  BOOST_TEST(contains(changed[0], "backends=198.18.0.1:6379,198.18.0.1:6380 "), changed[0]);
  BOOST_TEST(contains(changed[1], "backends=198.18.0.1:6379 "), changed[1]);
  BOOST_TEST(contains(changed[2], "backends=198.18.0.1:6379,198.18.0.1:6380,198.18.0.1:6381 "), changed[2]);
  BOOST_TEST(contains(changed[2], "changes_not_logged=2"), changed[2]);
  // A change to none is a warning, never held: with the count of the changes it cut short.
  const auto none = linesWith(text, {" warn ", ": no backends "});
  BOOST_TEST_REQUIRE(none.size() == 1u, text);
  BOOST_TEST(contains(none[0], "changes_not_logged=2"), none[0]);
}

BOOST_AUTO_TEST_CASE(ANameFlippingBetweenNoneAndSomeLogsTheOutageAndItsEndAtOnceAndHoldsTheRest) {
  // One instance whose health check flaps: Consul's answer loses it and has it back at
  // every refresh, each second with Consul's TTL 0, in every shim that uses the name.
  std::vector<std::vector<uint16_t>> script;
  for (int i = 0; i < 11; ++i) script.push_back(i % 2 ? std::vector<uint16_t>{} : std::vector<uint16_t>{6379});
  FakeHarness h(
      [&](uint16_t id, const std::string& name, uint16_t, int nth) {
        return srvAt(id, name, script[std::min<size_t>(static_cast<size_t>(nth), script.size()) - 1]).bytes();
      },
      [](ResolverOptions& o) {
        o.minTtl = o.negativeTtl = 100ms;
        o.changeLogInterval = 3000ms;
      });
  const std::string log = connectable::testing::tempDir() + "/log";
  connectable::testing::CapturedOutput captured(STDERR_FILENO, log);
  const auto start = std::chrono::steady_clock::now();
  std::string duringFlaps;
  Millis flapping{0};
  // Ten changes, then the last set stays past the interval.
  BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"the whole script", [&] { return h.updates.size() >= script.size(); }, 10000ms,
                                         [&] {
                                           duringFlaps = captured.text();
                                           flapping = std::chrono::duration_cast<Millis>(
                                               std::chrono::steady_clock::now() - start);
                                         }},
                                        pauseFor(3500ms)}),
                      "");
  captured.restore();
  const std::string text = connectable::testing::readFile(log);
  // The counts below hold for flaps within one interval.
  BOOST_TEST_REQUIRE(flapping.count() < 2500, flapping.count());
  // The outage and its end, at once; none of the eight flips after them.
  BOOST_TEST(linesWith(duringFlaps, {" warn ", ": no backends "}).size() == 1u, duringFlaps);
  BOOST_TEST(linesWith(duringFlaps, {" info ", "backends changed"}).size() == 1u, duringFlaps);
  // At the end of the interval, the set the name settled in and how many were held.
  const auto changed = linesWith(text, {" info ", "backends changed"});
  BOOST_TEST_REQUIRE(changed.size() == 2u, text);
  BOOST_TEST(contains(changed[1], "backends=198.18.0.1:6379 "), changed[1]);
  BOOST_TEST(contains(changed[1], "changes_not_logged=8"), changed[1]);
  BOOST_TEST(linesWith(text, {" warn ", ": no backends "}).size() == 1u, text);
}

BOOST_AUTO_TEST_CASE(AChangedSetThatEndsAFailedLookupIsLoggedAtOnceNotHeldBack) {
  // After "DNS lookup failed; serving the last good answer", the next answer tells the
  // operator that lookups work again. When it also changes the set, it must not wait for
  // the end of the change interval (a minute) like a routine change would.
  FakeHarness h([](uint16_t id, const std::string& name, uint16_t, int nth) {
    if (nth == 3) {
      DnsPacket p(DnsPacket::kResponseFlags, id);
      p.question(name, dns::kTypeSrv);
      p.name(name).recordHeader(dns::kTypeSrv, 1).u16(300).u16(0);  // rdlength far past the end
      p.bumpCount(DnsPacket::Answer);
      return p.bytes();
    }
    return srvAt(id, name, nth == 1 ? std::vector<uint16_t>{6379} : nth == 2 ? std::vector<uint16_t>{6379, 6380}
                                                                             : std::vector<uint16_t>{6379, 6381})
        .bytes();
  }, refreshFast);
  const std::string log = connectable::testing::tempDir() + "/log";
  connectable::testing::CapturedOutput captured(STDERR_FILENO, log);
  BOOST_REQUIRE_EQUAL(runSteps(h.loop, {{"the failed lookup", [&] { return h.current().stale; }, 5000ms},
                                        {"the answer after it", [&] { return find(h.current(), "198.18.0.1:6381"); }, 5000ms}}),
                      "");
  captured.restore();
  const std::string text = connectable::testing::readFile(log);
  BOOST_TEST(linesWith(text, {"DNS lookup failed"}).size() == 1u, text);
  // The line the operator greps for after "DNS lookup failed", with the set it ended in.
  BOOST_TEST(linesWith(text, {" info ", "DNS lookups recovered", "backends=198.18.0.1:6379,198.18.0.1:6381 "}).size() ==
                 1u,
             text);
}

BOOST_AUTO_TEST_CASE(ANameWhoseLookupsFailedThenAnsweredNxdomainSaysSoNotThatLookupsRecovered) {
  // The DNS server was down when the container started, then comes back without the name
  // (mistyped, or never registered): the line after "DNS lookup failed" must say "no
  // backends ... NXDOMAIN", which the operator needs, not "recovered" with none.
  FakeHarness h(
      [](uint16_t id, const std::string& name, uint16_t, int nth) {
        DnsPacket p(DnsPacket::kResponseFlags | (nth == 1 ? 2 /* SERVFAIL */ : 3 /* NXDOMAIN */), id);
        p.question(name, dns::kTypeSrv);
        return p.bytes();
      },
      refreshFast);
  const std::string log = connectable::testing::tempDir() + "/log";
  connectable::testing::CapturedOutput captured(STDERR_FILENO, log);
  BOOST_REQUIRE_EQUAL(
      runSteps(h.loop, {{"NXDOMAIN after the failure",
                         [&] { return h.updates.size() >= 2 && contains(h.current().status.message(), "NXDOMAIN"); },
                         5000ms}}),
      "");
  captured.restore();
  const std::string text = connectable::testing::readFile(log);
  BOOST_TEST(linesWith(text, {"DNS lookup failed"}).size() == 1u, text);
  BOOST_TEST(linesWith(text, {" warn ", ": no backends ", "no such name (NXDOMAIN)"}).size() == 1u, text);
  BOOST_TEST(linesWith(text, {"recovered"}).empty(), text);
}

BOOST_AUTO_TEST_SUITE_END()
