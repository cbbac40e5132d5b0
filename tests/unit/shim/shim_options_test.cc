#include "shim/shim_options.h"

#include <boost/test/unit_test.hpp>

using namespace connectable;

namespace {
std::string errorOf(std::vector<std::string> args) {
  auto r = parseShimOptions(args);
  BOOST_REQUIRE_MESSAGE(!r, "expected rejection");
  return r.status().message();
}
bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
}  // namespace

BOOST_AUTO_TEST_SUITE(ShimCommandLine)

BOOST_AUTO_TEST_CASE(AcceptsEveryOptionInBothSpellings) {
  auto r = parseShimOptions({"--netns", "/var/run/netns/blue", "--connect", "6000=198.18.0.5:6379,[fd00::5]:6379",
                             "--connect=7000=redis.service.consul", "--balance=p2c", "--connect-timeout", "500ms",
                             "--idle-timeout=0", "--max-conns", "64", "--drain-timeout=3s", "--upstream-netns=target",
                             "--dns", "127.0.0.1:8600", "--dns-min-ttl", "2s", "--user", "daemon",
                             "--log-level=debug", "--log-format", "json", "--tcp-keepalive=2m"});
  BOOST_REQUIRE_MESSAGE(r, r.status().message());
  BOOST_TEST(r->netnsPath == "/var/run/netns/blue");
  BOOST_TEST(r->proxy.tcpKeepalive.count() == 120 * 1000);
  BOOST_TEST(r->connects.size() == 2u);
  BOOST_TEST(r->connects[0].targets.size() == 2u);
  BOOST_TEST((r->proxy.balance == BalancePolicy::PowerOfTwo));
  BOOST_TEST(r->proxy.connectTimeout.count() == 500);
  BOOST_TEST(r->proxy.idleTimeout.count() == 0);
  BOOST_TEST(r->proxy.maxConns == 64u);
  BOOST_TEST(r->proxy.drainTimeout.count() == 3000);
  BOOST_TEST(r->upstreamInTarget);
  BOOST_TEST(r->dnsServers == "127.0.0.1:8600");
  BOOST_TEST(r->dnsMinTtl.count() == 2000);
  BOOST_TEST(r->user == "daemon");
  BOOST_TEST((r->logFormat == log::Format::Json));
}

BOOST_AUTO_TEST_CASE(ReadShimOptionReadsAnOptionAsTheParserTakesIt) {
  // The injector compares a kept shim's command line with today's through readShimOption:
  // which options add up must be those the parser adds up, and a duration reads the same
  // however it is spelt.
  auto r = parseShimOptions({"--connect=1=198.18.0.5:1", "--connect=2=198.18.0.5:2", "--dns=127.0.0.1",
                             "--dns=127.0.0.2", "--allow-upstream=198.18.0.0/16", "--allow-upstream=198.19.0.0/16",
                             "--connect-timeout=1s", "--connect-timeout=3s", "--balance=p2c", "--balance=least-conn"});
  BOOST_REQUIRE_MESSAGE(r, r.status().message());
  BOOST_TEST(r->connects.size() == 2u);
  BOOST_TEST(r->dnsServers == "127.0.0.1,127.0.0.2");
  BOOST_TEST(r->proxy.allowUpstream.text() == "198.18.0.0/16,198.19.0.0/16");
  BOOST_TEST(r->proxy.connectTimeout.count() == 3000, "the last --connect-timeout wins");
  BOOST_TEST((r->proxy.balance == BalancePolicy::LeastConn), "the last --balance wins");
  for (const char* name : {"--connect", "--dns", "--allow-upstream"}) BOOST_TEST(readShimOption(name, "x").repeats, name);
  for (const char* name : {"--connect-timeout", "--balance", "--user", "--dns-min-ttl", "--max-conns"})
    BOOST_TEST(!readShimOption(name, "x").repeats, name);

  BOOST_TEST(readShimOption("--connect-timeout", "2s").value == readShimOption("--connect-timeout", "2000ms").value);
  BOOST_TEST(readShimOption("--idle-timeout", "1h").value == readShimOption("--idle-timeout", "60m").value);
  BOOST_TEST(readShimOption("--dns-min-ttl", "1s").value != readShimOption("--dns-min-ttl", "100ms").value);
  BOOST_TEST(readShimOption("--tcp-keepalive", "30").value == readShimOption("--tcp-keepalive", "30s").value);
  BOOST_TEST(readShimOption("--name", "2s").value == "2s", "only durations are read as durations");
  BOOST_TEST(readShimOption("--connect-timeout", "soon").value == "soon", "a bad value reads as written");
}

BOOST_AUTO_TEST_CASE(AllowUpstreamAddsUpItsRangesAndRefusesWhatIsNoRange) {
  auto r = parseShimOptions({"--connect=6000=198.18.0.5:6379", "--allow-upstream", "198.18.0.0/15",
                             "--allow-upstream=fd00::/8,127.0.0.1"});
  BOOST_REQUIRE_MESSAGE(r, r.status().message());
  BOOST_TEST(r->proxy.allowUpstream.text() == "198.18.0.0/15,fd00::/8,127.0.0.1/32");
  BOOST_TEST(parseShimOptions({"--connect=6000=198.18.0.5:6379"})->proxy.allowUpstream.empty(), "any address by default");
  BOOST_TEST(contains(errorOf({"--connect=6000=198.18.0.5:6379", "--allow-upstream=consul.service"}),
                      "--allow-upstream: 'consul.service': not an IPv4 or IPv6 address"));
  BOOST_TEST(contains(errorOf({"--connect=6000=198.18.0.5:6379", "--allow-upstream=10.1.0.0/8"}), "host bits"));
}

BOOST_AUTO_TEST_CASE(DashHIsHelpToo) {
  auto r = parseShimOptions({"-h"});
  BOOST_REQUIRE_MESSAGE(r, r.status().message());
  BOOST_TEST(r->help);
}

BOOST_AUTO_TEST_CASE(DefaultsAreTheDocumentedOnes) {
  auto r = parseShimOptions({"--connect", "6000=198.18.0.5:6379"});
  BOOST_REQUIRE(r);
  BOOST_TEST((r->proxy.balance == BalancePolicy::Random));
  BOOST_TEST(r->proxy.connectTimeout.count() == 2000);
  BOOST_TEST(r->proxy.idleTimeout.count() == 3600 * 1000);
  BOOST_TEST(r->proxy.tcpKeepalive.count() == 30 * 1000);
  BOOST_TEST(r->proxy.drainTimeout.count() == 10000);
  BOOST_TEST(r->proxy.maxConns == 10000u);
  BOOST_TEST(r->user == "nobody");
  BOOST_TEST(!r->upstreamInTarget);
}

BOOST_AUTO_TEST_CASE(MalformedConnectNamesTheArgumentAndTheProblem) {
  BOOST_TEST(contains(errorOf({"--connect", "0=198.18.0.5:1"}), "--connect: '0=198.18.0.5:1': port '0' is out of range"));
  BOOST_TEST(contains(errorOf({"--connect", "70000=198.18.0.5:1"}), "'70000' is out of range"));
  BOOST_TEST(contains(errorOf({"--connect", "6000"}), "'6000' has no '='"));
  BOOST_TEST(contains(errorOf({"--connect", "6000="}), "no target given"));
  BOOST_TEST(contains(errorOf({"--connect", "6000=a!b"}), "invalid character '!'"));
  BOOST_TEST(contains(errorOf({"--connect", "6000=198.18.0.5:1", "--connect", "6000=198.18.0.6:1"}),
                      "port 6000 is given twice"));
  BOOST_TEST(contains(errorOf({"--connect"}), "--connect needs a value"));
}

BOOST_AUTO_TEST_CASE(AMistypedOptionIsNamedWithTheOneItWasLikelyMeantAs) {
  BOOST_TEST(errorOf({"--conect", "1=198.18.0.5:1"}) == "unknown option '--conect' (did you mean '--connect'?)");
  BOOST_TEST(errorOf({"--connect=1=198.18.0.5:1", "--idle_timeout=1s"}) ==
             "unknown option '--idle_timeout' (did you mean '--idle-timeout'?)");
  BOOST_TEST(errorOf({"--connect=1=198.18.0.5:1", "--hepl"}) == "unknown option '--hepl' (did you mean '--help'?)");
  // As near to --exit-with-pid as to --exit-with-pidfd: no guess rather than a wrong one.
  BOOST_TEST(errorOf({"--connect=1=198.18.0.5:1", "--exit-with-pidf=3"}) == "unknown option '--exit-with-pidf'");
}

BOOST_AUTO_TEST_CASE(OtherBadArgumentsAreNamed) {
  BOOST_TEST(contains(errorOf({}), "no --connect given"));
  BOOST_TEST(contains(errorOf({"--connect=1=198.18.0.5:1", "--balance", "fastest"}), "--balance: 'fastest'"));
  BOOST_TEST(contains(errorOf({"--connect=1=198.18.0.5:1", "--idle-timeout", "soon"}), "must start with a number"));
  BOOST_TEST(contains(errorOf({"--connect=1=198.18.0.5:1", "--idle-timeout", "5 parsecs"}), "unknown unit"));
  BOOST_TEST(contains(errorOf({"--connect=1=198.18.0.5:1", "--max-conns", "-1"}), "'-1' is not a number"));
  BOOST_TEST(contains(errorOf({"--connect=1=198.18.0.5:1", "--connect-timeout", "0"}), "must be longer than 0"));
  BOOST_TEST(errorOf({"--connect=1=198.18.0.5:1", "--frobnicate"}) == "unknown option '--frobnicate'");
  BOOST_TEST(contains(errorOf({"--connect=1=198.18.0.5:1", "stray"}), "unexpected argument 'stray'"));
  BOOST_TEST(contains(errorOf({"--connect=1=198.18.0.5:1", "--upstream-netns=target"}), "needs --netns"));
  BOOST_TEST(contains(errorOf({"--connect=1=198.18.0.5:1", "--netns=/x", "--netns-fd=3"}), "exclude each other"));
  BOOST_TEST(contains(errorOf({"--connect=1=198.18.0.5:1", "--log-level=loud"}), "--log-level: 'loud'"));
}

BOOST_AUTO_TEST_CASE(ANumberTooLargeIsSaidToBeTooLargeHoweverManyDigitsItHas) {
  const std::string c = "--connect=1=198.18.0.5:1";
  BOOST_TEST(contains(errorOf({c, "--max-conns", "10000001"}), "--max-conns: 10000001 is larger than 10000000"));
  BOOST_TEST(contains(errorOf({c, "--max-conns", "99999999999"}), "--max-conns: 99999999999 is larger than 10000000"));
  BOOST_TEST(contains(errorOf({c, "--max-conns", "99999999999x"}), "'99999999999x' is not a number"));
}

BOOST_AUTO_TEST_CASE(LookupsFromTheTargetNamespaceNeedDnsServersNamedForIt) {
  // Without --dns the servers come from the shim's /etc/resolv.conf, the host's, while the
  // questions would leave from the target namespace, where those addresses (127.0.0.53,
  // a host-only network) may reach nothing, and every lookup would just time out.
  const std::string ns = "--netns=/var/run/netns/blue", upstream = "--upstream-netns=target";
  BOOST_TEST(contains(errorOf({ns, upstream, "--connect=1=redis.service.consul"}),
                      "--upstream-netns=target needs --dns"));
  BOOST_TEST(contains(errorOf({ns, upstream, "--connect=1=198.18.0.5:1", "--connect=2=db.example.org:5432"}),
                      "'2=db.example.org:5432'"));
  // Servers named for that namespace, or targets that ask no server, are fine.
  BOOST_TEST(static_cast<bool>(parseShimOptions({ns, upstream, "--dns=127.0.0.11", "--connect=1=redis.service.consul"})));
  BOOST_TEST(static_cast<bool>(parseShimOptions({ns, upstream, "--connect=1=198.18.0.5:1,[fd00::5]:1"})));
  BOOST_TEST(static_cast<bool>(parseShimOptions({ns, upstream, "--connect=1=localhost:6379"})));
  // From the shim's own namespace, its own resolv.conf is the right one.
  BOOST_TEST(static_cast<bool>(parseShimOptions({ns, "--connect=1=redis.service.consul"})));
}

BOOST_AUTO_TEST_CASE(DnsServersAreCheckedByTheParserTheInjectorUsesToo) {
  const std::string c = "--connect=1=198.18.0.5:1";
  BOOST_TEST(contains(errorOf({c, "--dns", "bogus"}), "--dns"));
  BOOST_TEST(contains(errorOf({c, "--dns", "198.18.0.53:99999"}), "--dns"));
  BOOST_TEST(static_cast<bool>(parseShimOptions({c, "--dns", "198.18.0.53:8600,[fd00::53]:53,198.18.0.54"})));
}

BOOST_AUTO_TEST_CASE(DnsGivenTwiceAddsUpLikeAllowUpstream) {
  // --dns 10.0.0.1 --dns 10.0.0.2 asked only 10.0.0.2, with no word about the first.
  auto r = parseShimOptions({"--connect=1=198.18.0.5:1", "--dns", "198.18.0.53:8600", "--dns=[fd00::53]:53,198.18.0.54"});
  BOOST_REQUIRE_MESSAGE(r, r.status().message());
  BOOST_TEST(r->dnsServers == "198.18.0.53:8600,[fd00::53]:53,198.18.0.54");
  BOOST_TEST(contains(errorOf({"--connect=1=198.18.0.5:1", "--dns", "198.18.0.53", "--dns="}), "--dns needs at least one server"));
}

BOOST_AUTO_TEST_CASE(DurationsHaveBoundsThatTimersCanHold) {
  // 2^31 ms wrapped into a negative c-ares timeout (a spinning shim deaf to SIGTERM); 10^9
  // minutes overflowed the clock and fired every timer at once; a 0 ms cache flooded DNS.
  const std::string c = "--connect=1=198.18.0.5:1";
  BOOST_TEST(contains(errorOf({c, "--dns-timeout", "2147484s"}), "--dns-timeout: '2147484s' is longer than 5m"));
  BOOST_TEST(contains(errorOf({c, "--idle-timeout", "250000000m"}), "is longer than 720h"));
  BOOST_TEST(contains(errorOf({c, "--dns-min-ttl", "250000000m"}), "is longer than 24h"));
  BOOST_TEST(contains(errorOf({c, "--connect-timeout", "2h"}), "is longer than 1h"));
  BOOST_TEST(contains(errorOf({c, "--drain-timeout", "25h"}), "is longer than 24h"));
  BOOST_TEST(contains(errorOf({c, "--dns-min-ttl", "0"}), "is shorter than 100ms"));
  BOOST_TEST(contains(errorOf({c, "--tcp-keepalive", "3h"}), "is longer than 2h"));
  // The kernel takes keepalive times in whole seconds.
  BOOST_TEST(contains(errorOf({c, "--tcp-keepalive", "1500ms"}), "'1500ms' is not whole seconds (0 turns it off)"));
  BOOST_TEST(static_cast<bool>(parseShimOptions({c, "--tcp-keepalive", "0"})));
  BOOST_TEST(static_cast<bool>(parseShimOptions({c, "--idle-timeout", "0", "--dns-min-ttl", "100ms", "--dns-timeout", "5m"})));
}

BOOST_AUTO_TEST_CASE(DurationsTakeUnits) {
  BOOST_TEST(parseDuration("250ms")->count() == 250);
  BOOST_TEST(parseDuration("3")->count() == 3000);
  BOOST_TEST(parseDuration("2m")->count() == 120000);
  BOOST_TEST(parseDuration("1h")->count() == 3600000);
  BOOST_TEST(!parseDuration(""));
  BOOST_TEST(!parseDuration("ms"));
}

BOOST_AUTO_TEST_CASE(AFractionIsRefusedAsOneNotAsAnUnknownUnit) {
  auto half = parseDuration("1.5s");
  BOOST_REQUIRE(!half);
  BOOST_TEST(half.status().message() == "duration '1.5s' is not a whole number of ms, s, m or h (as 1500ms for 1.5s)");
  BOOST_TEST(parseDuration("0.5m").status().message().find("is not a whole number") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
