#include "injector/label_parser.h"

#include <boost/test/unit_test.hpp>

using namespace connectable;

namespace {
bool anyContains(const std::vector<std::string>& list, const std::string& part) {
  for (const auto& s : list)
    if (s.find(part) != std::string::npos) return true;
  return false;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(ContainerLabels)

BOOST_AUTO_TEST_CASE(ConnectLabelsBecomePortsSortedByPort) {
  auto r = parseContainerLabels({{"connect.6000", "redis.service.consul"},
                                 {"connect.3306", "master.mysql.service.consul,198.18.0.9:3306"},
                                 {"maintainer", "someone"}});
  BOOST_TEST(r.wanted());
  BOOST_TEST(r.errors.empty());
  BOOST_REQUIRE(r.connects.size() == 2u);
  BOOST_TEST(r.connects[0].port == 3306);
  BOOST_TEST(r.connects[0].targets.size() == 2u);
  BOOST_TEST(r.connects[1].port == 6000);
}

BOOST_AUTO_TEST_CASE(KeysAreMatchedExactly) {
  auto r = parseContainerLabels({{"x.connect.80", "web.service.consul"},
                                 {"com.example.connect.81", "web.service.consul"},
                                 {"CONNECT.82", "web.service.consul"}});
  BOOST_TEST(!r.wanted());
  BOOST_TEST(r.errors.empty());
}

BOOST_AUTO_TEST_CASE(ABadLabelIsReportedAndTheOthersStillApply) {
  auto r = parseContainerLabels({{"connect.0", "redis.service.consul"},
                                 {"connect.6000", "redis.service.consul"},
                                 {"connect.7000", "bad target!"},
                                 {"connect.x", "a.b"}});
  BOOST_REQUIRE(r.connects.size() == 1u);
  BOOST_TEST(r.connects[0].port == 6000);
  BOOST_TEST(r.errors.size() == 3u);
  BOOST_TEST(anyContains(r.errors, "label 'connect.0=redis.service.consul': port '0' is out of range"));
  BOOST_TEST(anyContains(r.errors, "label 'connect.7000=bad target!'"));
  BOOST_TEST(anyContains(r.errors, "label 'connect.x=a.b': port 'x' is not a number"));
}

BOOST_AUTO_TEST_CASE(OptionLabelsAreCheckedByTheShimsOwnRules) {
  auto r = parseContainerLabels({{"connect.6000", "198.18.0.5:6379"},
                                 {"connectable.balance", "least-conn"},
                                 {"connectable.connect-timeout", "250ms"},
                                 {"connectable.idle-timeout", "forever"},
                                 {"connectable.dns", "198.18.0.53"},
                                 {"connectable.upstream-netns", "target"},
                                 {"connectable.tcp-keepalive", "5m"}});
  BOOST_TEST(r.connects.size() == 1u);
  std::vector<std::string> expected = {"--balance=least-conn", "--connect-timeout=250ms", "--tcp-keepalive=5m",
                                       "--upstream-netns=target"};
  BOOST_TEST(r.shimArgs == expected, boost::test_tools::per_element());
  BOOST_TEST(r.errors.size() == 2u);
  BOOST_TEST(anyContains(r.errors, "label 'connectable.idle-timeout=forever': --idle-timeout: duration 'forever'"));
  BOOST_TEST(anyContains(r.errors, "label 'connectable.dns=198.18.0.53': 'dns' is the host's choice (connectable --dns), "
                                   "which no label can change"));
}

BOOST_AUTO_TEST_CASE(AShimOptionNoLabelMaySetIsNamedAsSuchNotAsUnknown) {
  // "unknown option 'user'" reads as a typo to fix; it is a choice the host keeps.
  for (const char* name : {"dns", "user", "data-path", "allow-upstream"}) {
    auto r = parseContainerLabels({{"connect.6000", "198.18.0.5:6379"}, {std::string("connectable.") + name, "x"}});
    BOOST_TEST(r.shimArgs.empty());
    BOOST_REQUIRE_EQUAL(r.errors.size(), 1u);
    BOOST_TEST(r.errors[0].find(std::string("'") + name + "' is the host's choice (connectable --" + name +
                                "), which no label can change") != std::string::npos,
               r.errors[0]);
  }
}

BOOST_AUTO_TEST_CASE(AnUnknownOptionIsQuotedWithItsValueAndTheValidOnesAreNamed) {
  // Like every other label message (and --balance's list of policies): what to write instead.
  auto typo = parseContainerLabels({{"connect.6000", "198.18.0.5:6379"}, {"connectable.conect-timeout", "1s"}});
  BOOST_TEST(typo.shimArgs.empty());
  BOOST_REQUIRE_EQUAL(typo.errors.size(), 1u);
  BOOST_TEST(typo.errors[0] ==
             "label 'connectable.conect-timeout=1s': unknown option 'conect-timeout' (did you mean "
             "'connect-timeout'?); options are balance, connect-timeout, idle-timeout, max-conns, drain-timeout, "
             "upstream-netns, dns-min-ttl, dns-timeout, status-port, tcp-keepalive");
  // Only a near and unambiguous name is offered: none for a word far from all of them...
  auto far = parseContainerLabels({{"connect.6000", "198.18.0.5:6379"}, {"connectable.frobnicate", "1"}});
  BOOST_REQUIRE_EQUAL(far.errors.size(), 1u);
  BOOST_TEST(far.errors[0].find("unknown option 'frobnicate'; options are balance, ") != std::string::npos,
             far.errors[0]);
  // ...nor for one as near to two: "dnle-timeout" is two edits from dns- and from idle-timeout.
  auto two = parseContainerLabels({{"connect.6000", "198.18.0.5:6379"}, {"connectable.dnle-timeout", "1s"}});
  BOOST_REQUIRE_EQUAL(two.errors.size(), 1u);
  BOOST_TEST(two.errors[0].find("unknown option 'dnle-timeout'; options are ") != std::string::npos, two.errors[0]);
  auto near = parseContainerLabels({{"connect.6000", "198.18.0.5:6379"},
                                    {"connectable.Balance", "p2c"},
                                    {"connectable.idle_timeout", "1m"},
                                    {"connectable.max-con", "5"}});
  BOOST_TEST(anyContains(near.errors, "unknown option 'Balance' (did you mean 'balance'?)"));
  BOOST_TEST(anyContains(near.errors, "unknown option 'idle_timeout' (did you mean 'idle-timeout'?)"));
  BOOST_TEST(anyContains(near.errors, "unknown option 'max-con' (did you mean 'max-conns'?)"));
}

BOOST_AUTO_TEST_CASE(AContainerCannotWidenTheHostsAllowUpstream) {
  // The host's --allow-upstream is the operator's; a label may not add to it.
  auto r = parseContainerLabels({{"connect.6000", "198.18.0.5:6379"}, {"connectable.allow-upstream", "0.0.0.0/0"}});
  BOOST_TEST(r.connects.size() == 1u);
  BOOST_TEST(r.shimArgs.empty());
  BOOST_TEST(anyContains(r.errors, "label 'connectable.allow-upstream=0.0.0.0/0': 'allow-upstream' is the host's choice"));
}

BOOST_AUTO_TEST_CASE(TheOriginalsBracketedKeyIsTheSameLabel) {
  // gliderlabs/connectable's code read connect[<port>] (its README said connect.<port>):
  // containers labelled for it were silently left without their ports.
  const std::map<std::string, std::string> original = {{"connect[6000]", "redis.service.consul"}};
  BOOST_TEST(mentionsConnectable(original));
  auto r = parseContainerLabels(original);
  BOOST_TEST(r.errors.empty());
  BOOST_REQUIRE(r.connects.size() == 1u);
  BOOST_TEST(r.connects[0].port == 6000);
  BOOST_TEST(r.connects[0].targetsText() == "redis.service.consul");
  // Both forms for one port, neither with a leading zero: the first in key order takes it.
  auto both = parseContainerLabels({{"connect.6000", "198.18.0.5:6379"}, {"connect[6000]", "198.18.0.6:6379"}});
  BOOST_REQUIRE(both.connects.size() == 1u);
  BOOST_TEST(both.connects[0].targetsText() == "198.18.0.5:6379");
  BOOST_REQUIRE(both.errors.size() == 1u);
  BOOST_TEST(both.errors[0].find("already taken by label 'connect.6000'") != std::string::npos, both.errors[0]);
  // Still matched exactly, and a bad port is a bad label.
  BOOST_TEST(!mentionsConnectable({{"x.connect[80]", "a.b"}}));
  auto bad = parseContainerLabels({{"connect[0]", "a.b"}, {"connect[80", "a.b"}, {"connect[80]x", "a.b"}});
  BOOST_TEST(bad.connects.empty());
  BOOST_REQUIRE(bad.errors.size() == 3u);
  BOOST_TEST(anyContains(bad.errors, "label 'connect[0]=a.b': port '0' is out of range"));
  BOOST_TEST(anyContains(bad.errors, "label 'connect[80=a.b': expected connect.PORT or connect[PORT]"));
  BOOST_TEST(anyContains(bad.errors, "label 'connect[80]x=a.b': expected connect.PORT or connect[PORT]"));
}

BOOST_AUTO_TEST_CASE(PortsAreNumbersSoALeadingZeroNamesTheSamePort) {
  // As the shim's own --connect parser reads them: 080 is port 80.
  auto one = parseContainerLabels({{"connect.080", "198.18.0.5:80"}});
  BOOST_TEST(one.errors.empty());
  BOOST_REQUIRE(one.connects.size() == 1u);
  BOOST_TEST(one.connects[0].port == 80);
}

BOOST_AUTO_TEST_CASE(ASecondLabelForATakenPortIsABadLabelNamingBoth) {
  // Both would reach the shim as port 80, which it refuses: the whole container unserved.
  auto r = parseContainerLabels({{"connect.80", "198.18.0.5:80"},
                                 {"connect.080", "198.18.0.6:80"},
                                 {"connect.6000", "198.18.0.7:6379"}});
  BOOST_REQUIRE(r.connects.size() == 2u);
  BOOST_TEST(r.connects[0].port == 80);
  BOOST_TEST(r.connects[1].port == 6000);
  BOOST_REQUIRE(r.errors.size() == 1u);
  BOOST_TEST(r.errors[0] == "label 'connect.080=198.18.0.6:80': port 80 is already taken by label 'connect.80'");
}

BOOST_AUTO_TEST_CASE(ThePortWrittenWithoutLeadingZerosWinsWhateverTheKeyOrder) {
  // "connect.080" sorts before "connect.80"; a user who wrote both expects the plain one.
  auto r = parseContainerLabels({{"connect.80", "198.18.0.5:80"}, {"connect.080", "198.18.0.6:80"}});
  BOOST_REQUIRE(r.connects.size() == 1u);
  BOOST_TEST(r.connects[0].targetsText() == "198.18.0.5:80");
  BOOST_REQUIRE(r.errors.size() == 1u);
  BOOST_TEST(r.errors[0].find("label 'connect.080=") == 0u, r.errors[0]);
  // The bracketed form is as plain; of two with zeros, the one with fewer.
  auto bracket = parseContainerLabels({{"connect.0080", "198.18.0.6:80"}, {"connect[80]", "198.18.0.5:80"}});
  BOOST_REQUIRE(bracket.connects.size() == 1u);
  BOOST_TEST(bracket.connects[0].targetsText() == "198.18.0.5:80");
  auto zeros = parseContainerLabels({{"connect.0080", "198.18.0.6:80"}, {"connect.080", "198.18.0.5:80"}});
  BOOST_REQUIRE(zeros.connects.size() == 1u);
  BOOST_TEST(zeros.connects[0].targetsText() == "198.18.0.5:80");
  // A plain label that is bad takes no port from a valid one.
  auto bad = parseContainerLabels({{"connect.80", "bad target!"}, {"connect.080", "198.18.0.6:80"}});
  BOOST_REQUIRE(bad.connects.size() == 1u);
  BOOST_TEST(bad.connects[0].targetsText() == "198.18.0.6:80");
  BOOST_REQUIRE(bad.errors.size() == 1u);
  BOOST_TEST(bad.errors[0].find("label 'connect.80=bad target!'") == 0u, bad.errors[0]);
  // A status port on that port names the label that took it.
  auto status = parseContainerLabels(
      {{"connect.80", "198.18.0.5:80"}, {"connect.080", "198.18.0.6:80"}, {"connectable.status-port", "80"}});
  BOOST_TEST(anyContains(status.errors, "is also a connect port (label 'connect.80')"));
}

BOOST_AUTO_TEST_CASE(AValueLongerThan16KiBIsABadLabel) {
  // Valid, but a shim could not even be exec'd with it (one argument must stay under 128 KiB).
  std::string many;
  while (many.size() <= 16 * 1024) many += (many.empty() ? "" : ",") + std::string("198.18.0.5:6379");
  BOOST_REQUIRE(parseConnectSpec("6000", many));
  auto r = parseContainerLabels({{"connect.6000", many}, {"connect.7000", "198.18.0.6:80"}});
  BOOST_REQUIRE(r.connects.size() == 1u);
  BOOST_TEST(r.connects[0].port == 7000);
  BOOST_REQUIRE(r.errors.size() == 1u);
  BOOST_TEST(r.errors[0] == "label 'connect.6000': value of " + std::to_string(many.size()) +
                                " bytes is longer than 16384");
  auto option = parseContainerLabels({{"connect.7000", "198.18.0.6:80"}, {"connectable.balance", many}});
  BOOST_TEST(option.shimArgs.empty());
  BOOST_REQUIRE(option.errors.size() == 1u);
  BOOST_TEST(option.errors[0].find("longer than 16384") != std::string::npos);
  BOOST_TEST(option.errors[0].size() < 200u);
}

BOOST_AUTO_TEST_CASE(AKeyLongerThan256BytesIsABadLabelQuotedShort) {
  // A 100 KB key had no limit: its error quoted it (twice for an unknown option), 200 KB in
  // the log, the problem record and the status.
  const std::string option = "connectable." + std::string(100'000, 'x');
  const std::string port = "connect." + std::string(100'000, '1');
  auto r = parseContainerLabels({{"connect.7000", "198.18.0.6:80"}, {option, "1"}, {port, "a.b"}});
  BOOST_REQUIRE_EQUAL(r.connects.size(), 1u);
  BOOST_TEST(r.shimArgs.empty());
  BOOST_REQUIRE_EQUAL(r.errors.size(), 2u);
  for (const std::string& e : r.errors) {
    BOOST_TEST(e.size() < 200u, e.substr(0, 300));
    BOOST_TEST((e.find("key of 100012 bytes is longer than 256") != std::string::npos ||
                e.find("key of 100008 bytes is longer than 256") != std::string::npos),
               e.substr(0, 300));
  }
  BOOST_TEST(anyContains(r.errors, "label 'connectable.xxxx"));
  // 256 bytes is still a key, judged as any other.
  const std::string longest = "connectable." + std::string(256 - 12, 'x');
  auto at = parseContainerLabels({{"connect.7000", "198.18.0.6:80"}, {longest, "1"}});
  BOOST_REQUIRE_EQUAL(at.errors.size(), 1u);
  BOOST_TEST(at.errors[0].find("unknown option") != std::string::npos, at.errors[0]);
}

BOOST_AUTO_TEST_CASE(ALongValueIsQuotedByItsStartAndLength) {
  // Under the 16 KiB cap, a value was quoted whole, twice: in the label and in the reason.
  const std::string junk(10'000, 'y');
  auto r = parseContainerLabels({{"connect.7000", "198.18.0.6:80"}, {"connect.6000", junk + ":80"},
                                 {"connectable.balance", junk}});
  BOOST_REQUIRE_EQUAL(r.errors.size(), 2u);
  for (const std::string& e : r.errors) {
    BOOST_TEST(e.size() < 400u, e.substr(0, 500));
    BOOST_TEST(e.find("yyy...' (100") != std::string::npos, e.substr(0, 500));
  }
}

BOOST_AUTO_TEST_CASE(OnlyOptionsWithoutPortsWantNoShim) {
  auto r = parseContainerLabels({{"connectable.balance", "p2c"}});
  BOOST_TEST(!r.wanted());
  BOOST_TEST(mentionsConnectable({{"connectable.balance", "p2c"}}));
  BOOST_TEST(!mentionsConnectable({{"connector", "x"}}));
}

BOOST_AUTO_TEST_CASE(OptionsWithoutAConnectLabelSayTheyApplyToNothingAndNameAMistypedKey) {
  // `-l conect.6000=redis.service.consul -l connectable.balance=p2c`: no label is bad, and
  // none asks for a port; the user must be told, or the container passes unnoticed.
  auto typo = parseContainerLabels({{"conect.6000", "redis.service.consul"}, {"connectable.balance", "p2c"}});
  BOOST_TEST(!typo.wanted());
  BOOST_TEST(typo.errors.empty());
  BOOST_TEST(typo.noShimBecause ==
             "it has no connect.PORT label, so its connectable.* options apply to nothing "
             "(did you mean 'connect.6000', not 'conect.6000'?)");
  for (const char* key : {"Connect.6000", "CONNECT.6000", "connect_6000", "connect:6000", "connect-6000", "connect6000",
                          "connects.6000"}) {
    auto r = parseContainerLabels({{key, "a.b"}, {"connectable.balance", "p2c"}});
    BOOST_TEST(r.noShimBecause.find("(did you mean 'connect.6000', not '" + std::string(key) + "'?)") != std::string::npos,
               key << ": " << r.noShimBecause);
  }
  // Only before a port number, and only one slip away: other software's labels are no hint.
  for (const char* key : {"connection.6000", "connect-timeout", "com.example.connect", "reconnect.6000"}) {
    auto r = parseContainerLabels({{key, "a.b"}, {"connectable.balance", "p2c"}});
    BOOST_TEST(r.noShimBecause == "it has no connect.PORT label, so its connectable.* options apply to nothing", key);
  }
  // A bad connect label and a mistyped one: the bad one is reported, and the hint given too.
  auto bad = parseContainerLabels({{"connect.0", "a.b"}, {"conect.6000", "a.b"}});
  BOOST_TEST(bad.errors.size() == 1u);
  BOOST_TEST(bad.noShimBecause == "it has no usable connect.PORT label (did you mean 'connect.6000', not 'conect.6000'?)");
  // A mistyped key alone is looked at too, and said: silence would leave the user guessing.
  BOOST_TEST(mentionsConnectable({{"maintainer", "x"}, {"Connect.6000", "a.b"}}));
  BOOST_TEST(parseContainerLabels({{"maintainer", "x"}, {"conect.6000", "a.b"}}).noShimBecause ==
             "it has no connect.PORT label (did you mean 'connect.6000', not 'conect.6000'?)");
  // Nothing to say of a container that gets its shim, nor of one no label of which is ours.
  BOOST_TEST(parseContainerLabels({{"connect.6000", "a.b"}, {"Connect.7000", "a.b"}}).noShimBecause.empty());
  for (const char* key : {"connection.6000", "reconnect.6000", "com.example.port", "connect-timeout"}) {
    BOOST_TEST(!mentionsConnectable({{"maintainer", "x"}, {key, "a.b"}}), key);
    BOOST_TEST(parseContainerLabels({{key, "a.b"}}).noShimBecause.empty(), key);
  }
}

BOOST_AUTO_TEST_CASE(AContainerMayLowerTheHostsConnectionLimitButNotRaiseIt) {
  // Its connections hold descriptors and ports of the host's, shared by every container.
  const LabelLimits host{1000};
  auto lower = parseContainerLabels({{"connect.6000", "198.18.0.5:6379"}, {"connectable.max-conns", "200"}}, host);
  BOOST_TEST(lower.errors.empty());
  BOOST_TEST((lower.shimArgs == std::vector<std::string>{"--max-conns=200"}));
  for (const char* more : {"1001", "10000000", "0"}) {  // 0 is unlimited
    auto r = parseContainerLabels({{"connect.6000", "198.18.0.5:6379"}, {"connectable.max-conns", more}}, host);
    BOOST_TEST(r.shimArgs.empty(), more);
    BOOST_REQUIRE_EQUAL(r.errors.size(), 1u);
    BOOST_TEST(r.errors[0].find("more than the host's --max-conns 1000") != std::string::npos, r.errors[0]);
    BOOST_TEST(r.wanted());  // the connect label still works, under the host's limit
  }
  // A host with no limit sets none.
  auto unlimited = parseContainerLabels({{"connect.6000", "198.18.0.5:6379"}, {"connectable.max-conns", "0"}}, LabelLimits{0});
  BOOST_TEST(unlimited.errors.empty());
}

BOOST_AUTO_TEST_CASE(AContainerMayCacheDnsAnswersLongerThanTheHostSaysButNotShorter) {
  // Its queries go to the host's DNS server, shared by every container; with Consul's TTL
  // 0, 100ms would send ten times the host's queries per name.
  LabelLimits host;
  host.dnsMinTtl = std::chrono::seconds(1);
  auto longer = parseContainerLabels({{"connect.6000", "redis.service.consul"}, {"connectable.dns-min-ttl", "30s"}}, host);
  BOOST_TEST(longer.errors.empty());
  BOOST_TEST((longer.shimArgs == std::vector<std::string>{"--dns-min-ttl=30s"}));
  BOOST_TEST(parseContainerLabels({{"connect.6000", "a.b"}, {"connectable.dns-min-ttl", "1000ms"}}, host).errors.empty());
  auto shorter = parseContainerLabels({{"connect.6000", "redis.service.consul"}, {"connectable.dns-min-ttl", "100ms"}}, host);
  BOOST_TEST(shorter.shimArgs.empty());
  BOOST_REQUIRE_EQUAL(shorter.errors.size(), 1u);
  BOOST_TEST(shorter.errors[0] ==
             "label 'connectable.dns-min-ttl=100ms': shorter than the host's --dns-min-ttl 1s, which applies");
  BOOST_TEST(shorter.wanted());  // the connect label still works, with the host's floor
}

BOOST_AUTO_TEST_CASE(AContainerHasAtMost64DnsLookupsOverAllItsLabels) {
  // The floor spaces one lookup's queries; without a cap on lookups, a hundred labels of
  // thousands of names each would still flood the shared DNS server.
  std::string sixty;
  for (int i = 0; i < 60; ++i) sixty += (i ? "," : "") + ("n" + std::to_string(i) + ".service.consul");
  auto request = parseContainerLabels({
      {"connect.7000", sixty},
      // One lookup of connect.7000 again (case makes no other), literals and localhost (no
      // DNS server asked), and three new lookups: 63 in all.
      {"connect.7001", "N0.Service.Consul,198.18.0.5:80,localhost:80,a.consul:80,b.consul:80,c.consul:80"},
      {"connect.7002", "d.consul:80,e.consul:80"},  // 65: refused
      {"connect.7003", "f.consul:80"},              // 64: taken, as a later label that fits is
  });
  BOOST_REQUIRE_EQUAL(request.connects.size(), 3u);
  BOOST_TEST(request.connects[0].port == 7000);
  BOOST_TEST(request.connects[1].port == 7001);
  BOOST_TEST(request.connects[2].port == 7003);
  BOOST_REQUIRE_EQUAL(request.errors.size(), 1u);
  BOOST_TEST(request.errors[0] ==
             "label 'connect.7002=d.consul:80,e.consul:80': 2 more DNS lookups, after 63 in the labels before it, is "
             "over the 64 a container may have (an SRV name, or a host name with its port; each is refreshed in the "
             "background against the host's DNS server)");
}

BOOST_AUTO_TEST_CASE(OneHostNameOnManyPortsIsAsManyLookups) {
  // The shim looks a host name up, and caches it, once per port: one name on 2000 ports
  // would be 2000 lookups.
  std::string ports;
  for (int port = 1; port <= 65; ++port) ports += (port > 1 ? "," : "") + ("db.consul:" + std::to_string(port));
  auto request = parseContainerLabels({{"connect.7000", ports}});
  BOOST_TEST(!request.wanted());
  BOOST_REQUIRE_EQUAL(request.errors.size(), 1u);
  BOOST_TEST(request.errors[0].find(": 65 more DNS lookups, after 0 ") != std::string::npos, request.errors[0]);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(StatusPortLabel)

BOOST_AUTO_TEST_CASE(StatusPortBecomesAShimOption) {
  auto r = parseContainerLabels({{"connect.6000", "198.18.0.5:6379"}, {"connectable.status-port", "1"}});
  BOOST_TEST(r.errors.empty());
  BOOST_REQUIRE(r.shimArgs.size() == 1u);
  BOOST_TEST(r.shimArgs[0] == "--status-port=1");
}

BOOST_AUTO_TEST_CASE(AStatusPortThatIsAlsoAConnectPortIsRejected) {
  auto r = parseContainerLabels({{"connect.6000", "198.18.0.5:6379"}, {"connectable.status-port", "6000"}});
  BOOST_TEST(r.shimArgs.empty());
  BOOST_REQUIRE(r.errors.size() == 1u);
  BOOST_TEST(r.errors[0].find("also a connect port") != std::string::npos);
  auto bad = parseContainerLabels({{"connect.6000", "198.18.0.5:6379"}, {"connectable.status-port", "70000"}});
  BOOST_TEST(bad.shimArgs.empty());
  BOOST_TEST(bad.errors.size() == 1u);
}

BOOST_AUTO_TEST_CASE(AStatusPortIsComparedWithTheConnectPortsAsANumber) {
  auto r = parseContainerLabels({{"connect.6000", "198.18.0.5:6379"}, {"connectable.status-port", "06000"}});
  BOOST_TEST(r.shimArgs.empty());
  BOOST_REQUIRE(r.connects.size() == 1u);
  BOOST_REQUIRE(r.errors.size() == 1u);
  BOOST_TEST(r.errors[0].find("also a connect port") != std::string::npos, r.errors[0]);
  // Port 1 is no connect port here, however it is written.
  auto one = parseContainerLabels({{"connect.6000", "198.18.0.5:6379"}, {"connectable.status-port", "01"}});
  BOOST_TEST(one.errors.empty());
  BOOST_TEST(one.shimArgs.size() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()
