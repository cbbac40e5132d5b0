// The shim finding its backends through a real DNS server (dnsmasq with SRV, A and AAAA
// records) while its listeners live in a namespace made by the test.
#define BOOST_TEST_MODULE shim with DNS discovery
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <Poco/JSON/Parser.h>

#include <boost/test/unit_test.hpp>
#include <atomic>
#include <map>
#include <stdexcept>
#include <thread>
#include <vector>

#include "tests/support/dnsmasq.h"
#include "common/socket_address.h"
#include "tests/support/netns_fixture.h"
#include "tests/support/process.h"
#include "tests/support/shim_process.h"
#include "tests/support/tcp_peers.h"

using connectable::SocketAddress;
using namespace connectable::testing;
using namespace std::chrono_literals;

namespace {

struct NamedBackend {
  explicit NamedBackend(const std::string& name) : name(name), server(replyHandler(name)) {}
  std::string name;
  TcpServer server;
  uint16_t port() const { return server.port(); }
};

std::string srv(const std::string& name, uint16_t port, int priority, int weight) {
  return "srv-host=" + name + ",backend.node.consul," + std::to_string(port) + "," + std::to_string(priority) + "," +
         std::to_string(weight);
}

// Connects from inside the namespace and returns what the backend said ("" on failure).
std::string ask(const TestNetns& ns, uint16_t port = 6000) {
  int fd = -1;
  ns.inside([&] { fd = connectTcp("127.0.0.1", port); });
  if (fd < 0) return "";
  std::string got;
  readToEof(fd, &got, 3000);
  close(fd);
  return got;
}

std::map<std::string, int> spread(const TestNetns& ns, int n, uint16_t port = 6000) {
  std::map<std::string, int> seen;
  for (int i = 0; i < n; ++i) ++seen[ask(ns, port)];
  return seen;
}

// Stands between the shim and a DNS server over UDP, as a server busy when the shim starts
// (or a lost packet): the first question goes unanswered, and the answer to the next one
// is held for `hold`. Later ones pass both ways at once.
class SlowFirstAnswer {
 public:
  SlowFirstAnswer(uint16_t serverPort, std::chrono::milliseconds hold) : hold_(hold) {
    client_ = boundUdp();
    upstream_ = boundUdp();
    const SocketAddress to = SocketAddress::loopbackV4(serverPort);
    if (connect(upstream_, to.sockaddr_ptr(), to.length()) != 0) throw std::runtime_error("relay connect");
    thread_ = std::thread([this] { run(); });
  }
  ~SlowFirstAnswer() {
    stop_ = true;
    thread_.join();
    close(client_);
    close(upstream_);
  }
  std::string server() const {
    sockaddr_in sin{};
    socklen_t len = sizeof sin;
    getsockname(client_, reinterpret_cast<sockaddr*>(&sin), &len);
    return "127.0.0.1:" + std::to_string(ntohs(sin.sin_port));
  }
  int questions() const { return questions_.load(); }

 private:
  static int boundUdp() {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const SocketAddress any = SocketAddress::loopbackV4(0);
    if (fd < 0 || bind(fd, any.sockaddr_ptr(), any.length()) != 0) throw std::runtime_error("relay bind");
    return fd;
  }
  void run() {
    struct Out {
      std::vector<uint8_t> bytes;
      std::chrono::steady_clock::time_point at;
    };
    std::vector<Out> out;
    sockaddr_in asker{};
    while (!stop_) {
      pollfd fds[2] = {{client_, POLLIN, 0}, {upstream_, POLLIN, 0}};
      poll(fds, 2, 5);
      uint8_t buf[4096];
      sockaddr_in from{};
      socklen_t len = sizeof from;
      for (ssize_t n; (n = recvfrom(client_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len)) > 0;
           len = sizeof from) {
        asker = from;
        if (++questions_ == 1) continue;  // missed
        send(upstream_, buf, static_cast<size_t>(n), 0);
      }
      for (ssize_t n; (n = recv(upstream_, buf, sizeof buf, 0)) > 0;) {
        auto at = std::chrono::steady_clock::now() + (answers_++ == 0 ? hold_ : std::chrono::milliseconds(0));
        out.push_back({std::vector<uint8_t>(buf, buf + n), at});
      }
      for (auto it = out.begin(); it != out.end();) {
        if (it->at > std::chrono::steady_clock::now()) {
          ++it;
          continue;
        }
        sendto(client_, it->bytes.data(), it->bytes.size(), 0, reinterpret_cast<sockaddr*>(&asker), sizeof asker);
        it = out.erase(it);
      }
    }
  }

  std::chrono::milliseconds hold_;
  int client_ = -1, upstream_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<int> questions_{0};
  int answers_ = 0;
  std::thread thread_;
};

struct Fixture {
  Fixture() { signal(SIGPIPE, SIG_IGN); }
  TestNetns ns;
  NamedBackend a{"a"}, b{"b"}, c{"c"};
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(ShimDiscovery, Fixture)

BOOST_AUTO_TEST_CASE(SpreadFollowsSrvWeights) {
  Dnsmasq dns({"host-record=backend.node.consul,127.0.0.1", "local-ttl=60", srv("web.service.consul", a.port(), 1, 10),
               srv("web.service.consul", b.port(), 1, 30), srv("web.service.consul", c.port(), 1, 60)});
  dns.start();
  ShimProcess shim({"--netns", ns.path(), "--dns", dns.server(), "--connect", "6000=web.service.consul"});
  const int n = 1000;
  auto seen = spread(ns, n);
  BOOST_TEST(seen["a"] + seen["b"] + seen["c"] == n);
  // Chi-square against 10:30:60 with 2 degrees of freedom; 13.8 is the 0.1% critical value.
  double chi = 0;
  for (auto [name, weight] : std::map<std::string, double>{{"a", 0.1}, {"b", 0.3}, {"c", 0.6}}) {
    double expected = n * weight;
    chi += (seen[name] - expected) * (seen[name] - expected) / expected;
  }
  BOOST_TEST(chi < 13.8, "a=" << seen["a"] << " b=" << seen["b"] << " c=" << seen["c"] << " chi2=" << chi);
}

BOOST_AUTO_TEST_CASE(LowerPriorityGroupAloneUntilAllOfItIsDown) {
  Dnsmasq dns({"host-record=backend.node.consul,127.0.0.1", "local-ttl=60", srv("db.service.consul", a.port(), 1, 50),
               srv("db.service.consul", b.port(), 1, 50), srv("db.service.consul", c.port(), 2, 100)});
  dns.start();
  ShimProcess shim({"--netns", ns.path(), "--dns", dns.server(), "--connect", "6000=db.service.consul"});
  auto seen = spread(ns, 60);
  BOOST_TEST(seen["c"] == 0);
  BOOST_TEST(seen["a"] + seen["b"] == 60);
  a.server.stop();
  seen = spread(ns, 20);
  BOOST_TEST(seen["b"] == 20);
  b.server.stop();
  seen = spread(ns, 20);
  BOOST_TEST(seen["c"] == 20);  // the backup group, every connection still served
}

BOOST_AUTO_TEST_CASE(ABackendRemovedFromDnsGetsNoNewConnectionsAfterItsTtl) {
  Dnsmasq dns({"host-record=backend.node.consul,127.0.0.1", "local-ttl=1", srv("web.service.consul", a.port(), 1, 50),
               srv("web.service.consul", b.port(), 1, 50)});
  dns.start();
  ShimProcess shim({"--netns", ns.path(), "--dns", dns.server(), "--connect", "6000=web.service.consul"});
  auto seen = spread(ns, 40);
  BOOST_TEST(seen["a"] > 0);
  BOOST_TEST(seen["b"] > 0);
  // An open connection to a survives the change.
  int open = -1;
  ns.inside([&] { open = connectTcp("127.0.0.1", 6000); });
  dns.restart({"host-record=backend.node.consul,127.0.0.1", "local-ttl=1", srv("web.service.consul", b.port(), 1, 50)});
  std::this_thread::sleep_for(2500ms);
  seen = spread(ns, 30);
  BOOST_TEST(seen["b"] == 30);
  BOOST_TEST(seen["a"] == 0);
  std::string got;
  BOOST_TEST(readToEof(open, &got, 3000));
  BOOST_TEST((got == "a" || got == "b"));
  close(open);
}

BOOST_AUTO_TEST_CASE(CachedAnswerKeepsServingWhenTheDnsServerStops) {
  Dnsmasq dns({"host-record=backend.node.consul,127.0.0.1", "local-ttl=1", srv("web.service.consul", a.port(), 1, 50)});
  dns.start();
  ShimProcess shim({"--netns", ns.path(), "--dns", dns.server(), "--dns-timeout", "300ms", "--connect",
                    "6000=web.service.consul"});
  BOOST_TEST(ask(ns) == "a");
  dns.stop();
  std::this_thread::sleep_for(3s);
  for (int i = 0; i < 10; ++i) BOOST_TEST(ask(ns) == "a");
  BOOST_TEST(shim.log().find("DNS lookup failed; serving the last good answer") != std::string::npos, shim.log());
}

BOOST_AUTO_TEST_CASE(TtlZeroIsFlooredSoTheServerIsNotHammered) {
  Dnsmasq dns({"host-record=backend.node.consul,127.0.0.1", "local-ttl=0", srv("web.service.consul", a.port(), 1, 50)});
  dns.start();
  ShimProcess shim({"--netns", ns.path(), "--dns", dns.server(), "--dns-min-ttl", "1s", "--connect",
                    "6000=web.service.consul"});
  auto start = std::chrono::steady_clock::now();
  int answered = 0;
  while (std::chrono::steady_clock::now() - start < 3s) answered += ask(ns) == "a";
  int queries = dns.queryCount("SRV", "web.service.consul");
  // Hundreds of connections here (tens under the kernel check's emulated CPU, which
  // made 99 with the machine busy besides)...
  BOOST_TEST(answered >= 20);
  BOOST_TEST(queries >= 2);            // ...a refresh every second or so...
  BOOST_TEST(queries <= 6, queries);   // ...never one per connection
}

BOOST_AUTO_TEST_CASE(NoLookupOnTheConnectionPathWhileTheAnswerIsCached) {
  Dnsmasq dns({"host-record=backend.node.consul,127.0.0.1", "local-ttl=300", srv("web.service.consul", a.port(), 1, 50)});
  dns.start();
  ShimProcess shim({"--netns", ns.path(), "--dns", dns.server(), "--connect", "6000=web.service.consul"});
  BOOST_TEST(ask(ns) == "a");
  int before = dns.queryCount("SRV", "web.service.consul") + dns.queryCount("A", "backend.node.consul");
  auto seen = spread(ns, 300);
  BOOST_TEST(seen["a"] == 300);
  int after = dns.queryCount("SRV", "web.service.consul") + dns.queryCount("A", "backend.node.consul");
  BOOST_TEST(after == before);
}

BOOST_AUTO_TEST_CASE(StatusShowsEachNamesTtlAndWhenItIsLookedUpNext) {
  Dnsmasq dns({"host-record=backend.node.consul,127.0.0.1", "local-ttl=300", srv("web.service.consul", a.port(), 1, 50)});
  dns.start();
  std::string control = tempDir() + "/shim.sock";
  ShimProcess shim({"--netns", ns.path(), "--dns", dns.server(), "--control", control, "--connect",
                    "6000=web.service.consul", "--connect", "6001=127.0.0.1:" + std::to_string(b.port()),
                    "--connect", "6002=localhost:" + std::to_string(b.port())});
  BOOST_REQUIRE(ask(ns) == "a");  // a first connection waits for the first answer
  auto reply = run({"curl", "-sS", "-m", "5", "--unix-socket", control, "http://shim/status"});
  BOOST_REQUIRE(reply.exitCode == 0);
  Poco::JSON::Parser parser;
  auto ports = parser.parse(reply.out).extract<Poco::JSON::Object::Ptr>()->getArray("ports");
  auto name = ports->getObject(0)->getArray("targets")->getObject(0);
  auto literal = ports->getObject(1)->getArray("targets")->getObject(0);
  auto localhost = ports->getObject(2)->getArray("targets")->getObject(0);  // never asked about
  BOOST_TEST(name->getValue<std::string>("dns") == "ok");
  BOOST_TEST(name->getValue<double>("ttl_seconds") == 300.0);
  // Refreshed at a jittered 75-90 % of the TTL, so many shims do not ask together.
  double next = name->getValue<double>("next_lookup_in_seconds");
  BOOST_TEST(next > 0.75 * 300 - 10);
  BOOST_TEST(next <= 0.90 * 300);
  BOOST_TEST(literal->isNull("ttl_seconds"));
  BOOST_TEST(literal->isNull("next_lookup_in_seconds"));
  BOOST_TEST(localhost->isNull("ttl_seconds"));
  BOOST_TEST(localhost->isNull("next_lookup_in_seconds"));
  auto text = run({"curl", "-sS", "-m", "5", "--unix-socket", control, "http://shim/status?format=text"});
  BOOST_TEST(text.out.find("dns web.service.consul: ok, 1 backends, ttl 5m0s, next lookup in ") != std::string::npos,
             text.out);
}

BOOST_AUTO_TEST_CASE(AnAddressOutsideAllowUpstreamIsNeverABackendWhereverItComesFrom) {
  // The host's operator limits what labels can reach: neither a DNS answer nor a literal
  // target (nor an AAAA record carrying an IPv4 address) gets past it.
  Dnsmasq dns({"host-record=backend.node.consul,127.0.0.1", "host-record=metadata.node.consul,198.18.0.9,::ffff:198.18.0.9",
               "local-ttl=1", srv("web.service.consul", a.port(), 1, 50),
               "srv-host=web.service.consul,metadata.node.consul,80,1,50"});
  dns.start();
  std::string control = tempDir() + "/shim.sock";
  ShimProcess shim({"--netns", ns.path(), "--dns", dns.server(), "--control", control, "--allow-upstream", "127.0.0.0/8",
                    "--connect-timeout", "5s", "--connect", "6000=web.service.consul", "--connect",
                    "6001=198.18.0.9:80,127.0.0.1:" + std::to_string(b.port())});
  auto seen = spread(ns, 20);
  BOOST_TEST(seen["a"] == 20);
  seen = spread(ns, 20, 6001);
  BOOST_TEST(seen["b"] == 20);
  BOOST_TEST(shim.waitLog("leaving out backends outside --allow-upstream"));
  std::this_thread::sleep_for(1500ms);  // answers refreshed: the same addresses, not logged again
  size_t lines = 0;
  for (size_t at = shim.log().find("leaving out backends"); at != std::string::npos;
       at = shim.log().find("leaving out backends", at + 1))
    ++lines;
  BOOST_TEST(lines == 2u, shim.log());
  auto text = run({"curl", "-sS", "-m", "5", "--unix-socket", control, "http://shim/status?format=text"});
  BOOST_TEST(text.out.find("dns web.service.consul: ok, 1 backends") != std::string::npos, text.out);
  BOOST_TEST(text.out.find("left out (outside --allow-upstream): 198.18.0.9:80,[::ffff:198.18.0.9]:80") != std::string::npos,
             text.out);
  BOOST_TEST(text.out.find("target 198.18.0.9:80: left out (outside --allow-upstream)") != std::string::npos, text.out);
  auto reply = run({"curl", "-sS", "-m", "5", "--unix-socket", control, "http://shim/status"});
  Poco::JSON::Parser parser;
  auto ports = parser.parse(reply.out).extract<Poco::JSON::Object::Ptr>()->getArray("ports");
  auto refused = ports->getObject(0)->getArray("targets")->getObject(0)->getArray("outside_allow_upstream");
  BOOST_REQUIRE(refused);
  BOOST_TEST(refused->size() == 2u);
  BOOST_TEST(refused->getElement<std::string>(0) == "198.18.0.9:80");
}

BOOST_AUTO_TEST_CASE(HostAndPortTargetsResolveTheirAddress) {
  Dnsmasq dns({"host-record=web.example.org,127.0.0.1", "local-ttl=60"});
  dns.start();
  ShimProcess shim({"--netns", ns.path(), "--dns", dns.server(), "--connect",
                    "6000=web.example.org:" + std::to_string(b.port())});
  BOOST_TEST(ask(ns) == "b");
}

BOOST_AUTO_TEST_CASE(ASinkholedNameIsNotProxiedToTheLocalHost) {
  // A DNS sinkhole answers 0.0.0.0 for a name it blocks, and connect() takes 0.0.0.0 for the
  // local host: b, listening on the host's loopback, answered for the blocked name.
  Dnsmasq dns({"address=/blocked.example.org/0.0.0.0", "local-ttl=60"});
  dns.start();
  ShimProcess shim({"--netns", ns.path(), "--dns", dns.server(), "--connect",
                    "6000=blocked.example.org:" + std::to_string(b.port())});
  BOOST_TEST(ask(ns) == "");
  BOOST_TEST(shim.waitLog("no backend reachable"), shim.log());
  BOOST_TEST(shim.log().find("leaving out DNS answers no connection should go to") != std::string::npos, shim.log());
  BOOST_TEST(shim.log().find("0.0.0.0 is the unspecified address") != std::string::npos, shim.log());
}

BOOST_AUTO_TEST_CASE(UnknownNameClosesConnectionsPromptlyAndSaysWhy) {
  Dnsmasq dns({"host-record=backend.node.consul,127.0.0.1", "local-ttl=60"});
  dns.start();
  ShimProcess shim({"--netns", ns.path(), "--dns", dns.server(), "--connect", "6000=nothing.service.consul"});
  auto start = std::chrono::steady_clock::now();
  BOOST_TEST(ask(ns) == "");
  BOOST_TEST((std::chrono::steady_clock::now() - start < 1500ms));
  BOOST_TEST(shim.waitLog("no backend reachable"));
  BOOST_TEST(shim.log().find("nothing.service.consul") != std::string::npos, shim.log());
}

BOOST_AUTO_TEST_CASE(ALiteralTargetBesideAFailingNameStillServes) {
  Dnsmasq dns({"local-ttl=60"});
  dns.start();
  ShimProcess shim({"--netns", ns.path(), "--dns", dns.server(), "--connect",
                    "6000=nothing.service.consul,127.0.0.1:" + std::to_string(c.port())});
  for (int i = 0; i < 5; ++i) BOOST_TEST(ask(ns) == "c");
}

BOOST_AUTO_TEST_CASE(FirstConnectionWaitsForTheFirstAnswer) {
  Dnsmasq dns({"host-record=backend.node.consul,127.0.0.1", "local-ttl=60", srv("web.service.consul", a.port(), 1, 50)});
  dns.start();
  dns.pause();  // bound, but silent until resumed
  ShimProcess shim({"--netns", ns.path(), "--dns", dns.server(), "--dns-timeout", "3s", "--connect",
                    "6000=web.service.consul"});
  std::string got;
  std::thread client([&] { got = ask(ns); });
  std::this_thread::sleep_for(500ms);
  dns.resume();
  client.join();
  BOOST_TEST(got == "a");
}

BOOST_AUTO_TEST_CASE(AFirstConnectionWaitsForAnAnswerThatComesOnlyWhenTheResolverAsksAgain) {
  // The server misses the first question; c-ares asks again after --dns-timeout (1 s), and
  // the answer takes 700 ms more: the resolver has it long before it gives up (3 s), and
  // so must the client that connected meanwhile, not be refused at --dns-timeout.
  Dnsmasq dns({"host-record=backend.node.consul,127.0.0.1", "local-ttl=60", srv("web.service.consul", a.port(), 1, 50)});
  dns.start();
  SlowFirstAnswer relay(dns.port(), 700ms);
  ShimProcess shim({"--netns", ns.path(), "--dns", relay.server(), "--dns-timeout", "1s", "--connect",
                    "6000=web.service.consul"});
  const auto start = std::chrono::steady_clock::now();
  const std::string got = ask(ns);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  BOOST_TEST_MESSAGE("served after " << took.count() << " ms");
  BOOST_TEST(got == "a", "after " << took.count() << " ms; " << shim.log());
  BOOST_TEST(relay.questions() == 2);
  BOOST_TEST(shim.log().find("no backend reachable") == std::string::npos, shim.log());
}

BOOST_AUTO_TEST_CASE(AFirstConnectionWaitsUntilTheResolverGivesUpThenIsRefusedWithItsReason) {
  // Never for ever: a server that answers nothing fails the lookup after two rounds, 300 ms
  // then 600 ms, and the waiting client is refused then, with the lookup's error.
  Dnsmasq dns({"host-record=backend.node.consul,127.0.0.1", "local-ttl=60", srv("web.service.consul", a.port(), 1, 50)});
  dns.start();
  dns.pause();
  ShimProcess shim({"--netns", ns.path(), "--dns", dns.server(), "--dns-timeout", "300ms", "--connect",
                    "6000=web.service.consul"});
  const auto start = std::chrono::steady_clock::now();
  const std::string got = ask(ns);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  BOOST_TEST(got == "");
  BOOST_TEST(took.count() >= 750, took.count() << " ms");
  BOOST_TEST(took.count() < 2500, took.count() << " ms");
  BOOST_TEST(shim.waitLog("no backend reachable"));
  BOOST_TEST(shim.log().find("Timeout") != std::string::npos, shim.log());
}

BOOST_AUTO_TEST_CASE(AnUploadSentWhileTheFirstAnswerIsAwaitedArrivesWhole) {
  // The client sends a megabyte, then its FIN, while the shim still waits for DNS: what it
  // read meanwhile (a full buffer: bulk) is held, and must go on whole once connected,
  // followed by the rest and the end.
  TcpServer counter([](int fd) {
    char buf[65536];
    size_t total = 0;
    for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) total += static_cast<size_t>(n);
    std::string answer = std::to_string(total);
    writeAll(fd, answer.data(), answer.size());
  });
  Dnsmasq dns({"host-record=backend.node.consul,127.0.0.1", "local-ttl=60", srv("up.service.consul", counter.port(), 1, 50)});
  dns.start();
  dns.pause();
  ShimProcess shim({"--netns", ns.path(), "--dns", dns.server(), "--dns-timeout", "3s", "--connect",
                    "6000=up.service.consul"});
  int fd = -1;
  ns.inside([&] { fd = connectTcp("127.0.0.1", 6000); });
  BOOST_REQUIRE(fd >= 0);
  const std::string upload(1 << 20, 'u');
  std::thread sender([&] {
    writeAll(fd, upload.data(), upload.size());
    shutdown(fd, SHUT_WR);
  });
  std::this_thread::sleep_for(300ms);
  dns.resume();
  std::string got;
  BOOST_TEST(readToEof(fd, &got, 5000));
  sender.join();
  BOOST_TEST(got == std::to_string(upload.size()));
  close(fd);
}

BOOST_AUTO_TEST_CASE(SighupResolvesEveryNameAgainAtOnce) {
  Dnsmasq dns({"host-record=backend.node.consul,127.0.0.1", "local-ttl=3600", srv("web.service.consul", a.port(), 1, 50)});
  dns.start();
  ShimProcess shim({"--netns", ns.path(), "--dns", dns.server(), "--connect", "6000=web.service.consul"});
  BOOST_TEST(ask(ns) == "a");
  dns.restart({"host-record=backend.node.consul,127.0.0.1", "local-ttl=3600", srv("web.service.consul", b.port(), 1, 50)});
  BOOST_TEST(ask(ns) == "a");  // cached for an hour
  shim.child().signal(SIGHUP);
  BOOST_TEST(waitFor([&] { return ask(ns) == "b"; }, 3s));
}

BOOST_AUTO_TEST_CASE(ManySrvRecordsArriveOverTcpAndAllAreBackends) {
  std::vector<std::string> records = {"host-record=backend.node.consul,127.0.0.1", "local-ttl=60"};
  // 40 records overflow a 512-byte UDP answer; only one of them is a live backend. The
  // truncated UDP answer holds that one (dnsmasq puts it first), so its serving alone does
  // not show the TCP retry: the count of backends and of questions does.
  for (int i = 0; i < 39; ++i) records.push_back(srv("big.service.consul", static_cast<uint16_t>(20000 + i), 2, 10));
  records.push_back(srv("big.service.consul", a.port(), 1, 10));
  Dnsmasq dns(records);
  dns.start();
  std::string control = tempDir() + "/shim.sock";
  ShimProcess shim({"--netns", ns.path(), "--dns", dns.server(), "--control", control, "--connect",
                    "6000=big.service.consul"});
  for (int i = 0; i < 5; ++i) BOOST_TEST(ask(ns) == "a");
  auto text = run({"curl", "-sS", "-m", "5", "--unix-socket", control, "http://shim/status?format=text"});
  BOOST_TEST(text.out.find("dns big.service.consul: ok, 40 backends") != std::string::npos, text.out);
  BOOST_TEST(dns.queryCount("SRV", "big.service.consul") == 2);  // over UDP, then over TCP
}

BOOST_AUTO_TEST_SUITE_END()
