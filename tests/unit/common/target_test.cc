#include "common/target.h"

#include <boost/test/unit_test.hpp>

using connectable::parseConnectSpec;
using connectable::parsePort;
using connectable::parseTarget;
using connectable::Target;
using connectable::validateDnsName;

namespace {
std::string errorOf(std::string_view spec) {
  auto r = parseConnectSpec(spec);
  BOOST_REQUIRE_MESSAGE(!r, "expected '" << spec << "' to be rejected");
  return r.status().message();
}
bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(TargetGrammar)

BOOST_AUTO_TEST_CASE(BareNameIsAnSrvLookup) {
  auto t = parseTarget("redis.service.consul");
  BOOST_REQUIRE(t);
  BOOST_TEST((t->kind == Target::Kind::Srv));
  BOOST_TEST(t->host == "redis.service.consul");
  BOOST_TEST(t->needsLookup());
}

BOOST_AUTO_TEST_CASE(UnderscoreSrvOwnerNamesAndTrailingDotAreNames) {
  BOOST_TEST(parseTarget("_redis._tcp.example.org").isOk());
  BOOST_TEST(parseTarget("redis.service.consul.").isOk());
  BOOST_TEST(parseTarget("localhost").isOk());
}

BOOST_AUTO_TEST_CASE(HostWithPortIsAnAddressLookupWithThatPort) {
  auto t = parseTarget("db.example.org:5432");
  BOOST_REQUIRE(t);
  BOOST_TEST((t->kind == Target::Kind::HostPort));
  BOOST_TEST(t->host == "db.example.org");
  BOOST_TEST(t->port == 5432);
}

BOOST_AUTO_TEST_CASE(Ipv4LiteralNeedsNoLookup) {
  auto t = parseTarget("198.18.0.5:6379");
  BOOST_REQUIRE(t);
  BOOST_TEST((t->kind == Target::Kind::Literal));
  BOOST_TEST(!t->needsLookup());
  BOOST_TEST(t->address.toString() == "198.18.0.5:6379");
}

BOOST_AUTO_TEST_CASE(BracketedIpv6LiteralNeedsNoLookup) {
  auto t = parseTarget("[fd00::5]:6379");
  BOOST_REQUIRE(t);
  BOOST_TEST((t->kind == Target::Kind::Literal));
  BOOST_TEST(t->address.family() == AF_INET6);
  BOOST_TEST(t->address.toString() == "[fd00::5]:6379");
}

BOOST_AUTO_TEST_CASE(AnIpv4MappedLiteralIsItsIpv4Address) {
  // Connecting to it is connecting to the IPv4 address; as an IPv6 one it was a backend of
  // its own beside the same address written as IPv4.
  auto t = parseTarget("[::ffff:198.18.0.5]:6379");
  BOOST_REQUIRE(t);
  BOOST_TEST(t->address.family() == AF_INET);
  BOOST_TEST(t->address.toString() == "198.18.0.5:6379");
  BOOST_TEST(t->text == "[::ffff:198.18.0.5]:6379");  // as written, for logs and status
  // Checked as the IPv4 address it is.
  BOOST_TEST(contains(errorOf("6000=[::ffff:224.0.0.1]:80"), "224.0.0.1 is a multicast address"));
}

BOOST_AUTO_TEST_CASE(ListKeepsOrderAndMixesKinds) {
  auto spec = parseConnectSpec("6000=198.18.0.5:6379,[fd00::5]:6379,redis.service.consul");
  BOOST_REQUIRE(spec);
  BOOST_TEST(spec->port == 6000);
  BOOST_REQUIRE(spec->targets.size() == 3u);
  BOOST_TEST((spec->targets[0].kind == Target::Kind::Literal));
  BOOST_TEST((spec->targets[2].kind == Target::Kind::Srv));
  BOOST_TEST(spec->text() == "6000=198.18.0.5:6379,[fd00::5]:6379,redis.service.consul");
  BOOST_TEST(spec->targetsText() == "198.18.0.5:6379,[fd00::5]:6379,redis.service.consul");
}

BOOST_AUTO_TEST_CASE(PortsOutsideOneTo65535AreRejectedByValue) {
  BOOST_TEST(contains(errorOf("0=a.b"), "'0' is out of range (1-65535)"));
  BOOST_TEST(contains(errorOf("70000=a.b"), "'70000' is out of range"));
  BOOST_TEST(contains(errorOf("65536=a.b"), "out of range"));
  BOOST_TEST(contains(errorOf("-1=a.b"), "'-1' is not a number"));
  BOOST_TEST(contains(errorOf("x=a.b"), "'x' is not a number"));
  BOOST_TEST(contains(errorOf("123456=a.b"), "'123456' is out of range"));
  BOOST_TEST(contains(errorOf("000=a.b"), "'000' is out of range"));
  BOOST_TEST(contains(errorOf("=a.b"), "port is empty"));
  BOOST_TEST(parsePort("65535").isOk());
  BOOST_TEST(parsePort("1").isOk());
}

BOOST_AUTO_TEST_CASE(LeadingZerosChangeNoPortHoweverManyThereAre) {
  // The README says ports are numbers and leading zeros are fine: 0080 was taken, 006003
  // refused as "not a number from 1 to 65535" for its six characters.
  auto six = parsePort("006003");
  BOOST_REQUIRE(six);
  BOOST_TEST(*six == 6003);
  auto many = parsePort("0000000000080");
  BOOST_REQUIRE(many);
  BOOST_TEST(*many == 80);
  BOOST_TEST(contains(errorOf("0065536=a.b"), "'0065536' is out of range"));
}

BOOST_AUTO_TEST_CASE(MissingEqualsOrTargetIsNamed) {
  BOOST_TEST(contains(errorOf("6000"), "'6000' has no '='"));
  BOOST_TEST(contains(errorOf("6000="), "no target given"));
  BOOST_TEST(contains(errorOf("6000=a.b,,c.d"), "empty target in list"));
  BOOST_TEST(contains(errorOf("6000=a.b,"), "empty target in list"));
}

BOOST_AUTO_TEST_CASE(TargetPortErrorsNameTheTarget) {
  BOOST_TEST(contains(errorOf("6000=198.18.0.5:0"), "target '198.18.0.5:0': port '0' is out of range"));
  BOOST_TEST(contains(errorOf("6000=db:"), "target 'db:': port is empty"));
  BOOST_TEST(contains(errorOf("6000=:80"), "has no host before ':'"));
  BOOST_TEST(contains(errorOf("6000=[fd00::5]"), "needs a port after ']'"));
  BOOST_TEST(contains(errorOf("6000=[fd00::5:80"), "has '[' without ']'"));
}

BOOST_AUTO_TEST_CASE(AddressesWithoutPortsOrBracketsAreExplained) {
  BOOST_TEST(contains(errorOf("6000=198.18.0.5"), "an address without a port"));
  BOOST_TEST(contains(errorOf("6000=fd00::5:6379"), "write it as [addr]:port"));
  BOOST_TEST(contains(errorOf("6000=999.1.1.1:80"), "'999.1.1.1' is not an IPv4 address"));
  BOOST_TEST(contains(errorOf("6000=[1.2.3.4]:80"), "is not an IPv6 address"));
  BOOST_TEST(contains(errorOf("6000=[zz::1]:80"), "is not an IPv6 address"));
}

BOOST_AUTO_TEST_CASE(CommonMistakesAreToldHowToWriteTheTarget) {
  // Each was told to write something refused again: tcp:// as an IPv6 address to bracket,
  // a bare port or '.' as an address to give a port ("6379:<port>", ".:<port>").
  std::string url = errorOf("6000=tcp://db.example.org:5432");
  BOOST_TEST(contains(url, "has a scheme ('tcp://'): write HOST:PORT, as db.example.org:5432"), url);
  BOOST_TEST(!contains(url, "IPv6"), url);
  BOOST_TEST(contains(errorOf("6000=http://db.example.org:8080/path"), "as db.example.org:8080"));
  std::string port = errorOf("6001=6379");
  BOOST_TEST(contains(port, "'6379' is a number, not a name: write HOST:PORT"), port);
  BOOST_TEST(!contains(port, "6379:<port>"), port);
  std::string dot = errorOf("6002=.");
  BOOST_TEST(contains(dot, "'.' is neither an IPv4 address nor a name"), dot);
  BOOST_TEST(!contains(dot, ".:<port>"), dot);
  BOOST_TEST(contains(errorOf("6002=1.2"), "neither an IPv4 address nor a name"));
  // A real IPv4 address without a port keeps its advice, which is right for it.
  BOOST_TEST(contains(errorOf("6000=198.18.0.5"), "write it as 198.18.0.5:<port>"));
}

BOOST_AUTO_TEST_CASE(AnIpv6ZoneIsRefusedAsUnsupportedNotAsNoAddress) {
  std::string error = errorOf("6000=[fe80::1%eth0]:80");
  BOOST_TEST(contains(error, "target '[fe80::1%eth0]:80': IPv6 zones ('%eth0') are not supported"), error);
}

BOOST_AUTO_TEST_CASE(AddressesNoConnectionCanReachAreRefused) {
  // [fe80::1]:80 was taken, and every connection to it then failed with a bare "Invalid
  // argument" (a link-local address needs the zone we do not take).
  std::string linkLocal = errorOf("6000=[fe80::1]:80");
  BOOST_TEST(contains(linkLocal, "target '[fe80::1]:80': fe80::1 is link-local, which needs a zone"), linkLocal);
  BOOST_TEST(contains(linkLocal, "use a global or unique local address"), linkLocal);
  BOOST_TEST(contains(errorOf("6000=[febf::1]:80"), "is link-local"));
  BOOST_TEST(contains(errorOf("6000=[ff02::1]:80"), "ff02::1 is a multicast address, which TCP cannot connect to"));
  BOOST_TEST(contains(errorOf("6000=224.0.0.1:80"), "224.0.0.1 is a multicast address"));
  BOOST_TEST(contains(errorOf("6000=239.255.255.255:80"), "is a multicast address"));
  BOOST_TEST(contains(errorOf("6000=255.255.255.255:80"), "255.255.255.255 is the broadcast address"));
  // connect() takes the unspecified address for the local host: written, it is a mistake for
  // a real backend, or for 127.0.0.1, which says what it means.
  BOOST_TEST(contains(errorOf("6000=0.0.0.0:80"), "0.0.0.0 is the unspecified address, which Linux connects to the "
                                                  "local host"));
  BOOST_TEST(contains(errorOf("6000=0.0.0.0:80"), "local host; write 127.0.0.1 if it is meant"));
  BOOST_TEST(contains(errorOf("6000=[::]:80"), "local host; write [::1] if it is meant"));
  BOOST_TEST(contains(errorOf("6000=[::]:80"), ":: is the unspecified address"));
  BOOST_TEST(contains(errorOf("6000=[::ffff:0.0.0.0]:80"), "0.0.0.0 is the unspecified address"));
  BOOST_TEST(parseTarget("0.0.0.1:80").isOk());
  // Their neighbours are ordinary addresses.
  BOOST_TEST(parseTarget("[fec0::1]:80").isOk());
  BOOST_TEST(parseTarget("[fd00::1]:80").isOk());
  BOOST_TEST(parseTarget("223.255.255.255:80").isOk());
  BOOST_TEST(parseTarget("240.0.0.1:80").isOk());
}

BOOST_AUTO_TEST_CASE(JunkNamesAreRejectedWithTheReason) {
  BOOST_TEST(contains(errorOf("6000=red is"), "white space"));
  BOOST_TEST(contains(errorOf("6000=redis/1"), "invalid character '/'"));
  BOOST_TEST(contains(errorOf("6000=a..b"), "empty label"));
  BOOST_TEST(contains(errorOf("6000=-a.b"), "starting or ending with '-'"));
  BOOST_TEST(contains(errorOf("6000=" + std::string(64, 'a') + ".b"), "longer than 63"));
  std::string longName;
  for (int i = 0; i < 51; ++i) longName += "abcd.";  // 257 characters
  longName += "ef";
  BOOST_TEST(contains(errorOf("6000=" + longName), "longer than 253"));
  BOOST_TEST(contains(errorOf(std::string("6000=a\x01")), "control character"));
}

BOOST_AUTO_TEST_CASE(ANonAsciiCharacterIsNamedWholeNeverAsALoneByte) {
  // The error goes into JSON (problem records, --log-format json): one byte of a UTF-8
  // sequence made it invalid, and `connectable status` could not read the record at all.
  std::string error = errorOf("6000=r\xc3\xa9" "dis.service.consul");
  BOOST_TEST(contains(error, "invalid character '\xc3\xa9'"), error);
  BOOST_TEST(!contains(error, "'\xc3'"), error);
  // Bytes that are no UTF-8 character are shown as numbers.
  BOOST_TEST(contains(errorOf("6000=r\xc3" "dis.service.consul"), "invalid byte 0xc3"));
  BOOST_TEST(contains(errorOf("6000=a\x7f.b"), "invalid byte 0x7f"));
  BOOST_TEST(contains(errorOf("6000=a\xed\xa0\x80.b"), "invalid byte 0xed"));  // a UTF-16 surrogate
}

BOOST_AUTO_TEST_CASE(DnsNameLimitsAreInclusive) {
  BOOST_TEST(validateDnsName(std::string(63, 'a')).isOk());
  std::string name;
  while (name.size() < 253) name += (name.size() % 2 == 0 && name.size() < 252) ? "a" : ".";
  if (name.back() == '.') name.back() = 'b';
  BOOST_TEST(name.size() == 253u);
  BOOST_TEST(validateDnsName(name).isOk());
  BOOST_TEST(validateDnsName(name + ".").isOk());
}

BOOST_AUTO_TEST_SUITE_END()
