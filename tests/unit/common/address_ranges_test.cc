#include "common/address_ranges.h"

#include <boost/test/unit_test.hpp>

using namespace connectable;

namespace {

SocketAddress at(const char* ip) { return *SocketAddress::parseIp(ip, 6379); }

}  // namespace

BOOST_AUTO_TEST_SUITE(UpstreamAddressRanges)

BOOST_AUTO_TEST_CASE(HoldsTheAddressesUnderEachPrefixAndNoOthers) {
  auto r = AddressRanges::parse("198.18.0.0/15,10.1.2.3,fd00::/8");
  BOOST_REQUIRE_MESSAGE(r, r.status().message());
  BOOST_TEST(r->contains(at("198.18.0.1")));
  BOOST_TEST(r->contains(at("198.19.255.255")));
  BOOST_TEST(!r->contains(at("198.20.0.0")));
  BOOST_TEST(r->contains(at("10.1.2.3")));
  BOOST_TEST(!r->contains(at("10.1.2.4")));
  BOOST_TEST(r->contains(at("fd12::1")));
  BOOST_TEST(!r->contains(at("fe80::1")));
  BOOST_TEST(!r->contains(at("127.0.0.1")));
  BOOST_TEST(r->text() == "198.18.0.0/15,10.1.2.3/32,fd00::/8");
}

BOOST_AUTO_TEST_CASE(AnIpv4MappedIpv6AddressIsTheIpv4AddressItCarries) {
  // Else an AAAA record of ::ffff:169.254.169.254 reaches what no A record may.
  auto v4 = AddressRanges::parse("198.18.0.0/15");
  BOOST_REQUIRE(v4);
  BOOST_TEST(v4->contains(at("::ffff:198.18.0.9")));
  BOOST_TEST(!v4->contains(at("::ffff:169.254.169.254")));
  auto v6 = AddressRanges::parse("::/0");
  BOOST_REQUIRE(v6);
  BOOST_TEST(!v6->contains(at("::ffff:169.254.169.254")), "all of IPv6 is not all of IPv4");
  BOOST_TEST(v6->contains(at("::1")));
}

BOOST_AUTO_TEST_CASE(AnIpv4MappedRangeIsTheIpv4RangeItCarries) {
  // ::ffff:10.0.0.0/104 was refused as "a prefix longer than 32 bits" (its IPv6 prefix read
  // as IPv4 bits), and ::ffff:10.0.0.1 was shown as ::ffff:10.0.0.1/32, an IPv6 /32.
  auto r = AddressRanges::parse("::ffff:10.0.0.0/104,::ffff:198.18.0.5,[::ffff:0:0]/96");
  BOOST_REQUIRE_MESSAGE(r, r.status().message());
  BOOST_TEST(r->text() == "10.0.0.0/8,198.18.0.5/32,0.0.0.0/0");
  auto ten = AddressRanges::parse("::ffff:10.0.0.0/104");
  BOOST_REQUIRE(ten);
  BOOST_TEST(ten->contains(at("10.255.0.1")));
  BOOST_TEST(ten->contains(at("::ffff:10.1.2.3")));
  BOOST_TEST(!ten->contains(at("11.0.0.1")));
  // A prefix shorter than the mapped block's 96 bits holds more than IPv4 addresses, and a
  // host bit is set or not as the IPv6 prefix says.
  auto wide = AddressRanges::parse("::ffff:0:0/95");
  BOOST_REQUIRE(!wide);
  BOOST_TEST(wide.status().message().find("shorter than 96") != std::string::npos, wide.status().message());
  auto bits = AddressRanges::parse("::ffff:10.1.0.0/104");
  BOOST_REQUIRE(!bits);
  BOOST_TEST(bits.status().message().find("host bits are set under the /104 prefix") != std::string::npos,
             bits.status().message());
}

BOOST_AUTO_TEST_CASE(WholeFamiliesAndBracketedAddressesAreTaken) {
  auto r = AddressRanges::parse("0.0.0.0/0,[::1]");
  BOOST_REQUIRE_MESSAGE(r, r.status().message());
  BOOST_TEST(r->contains(at("203.0.113.7")));
  BOOST_TEST(r->contains(at("::1")));
  BOOST_TEST(!r->contains(at("::2")));
}

BOOST_AUTO_TEST_CASE(RefusesWhatIsNotARangeAndSaysWhy) {
  struct Case {
    const char* text;
    const char* why;
  };
  for (const Case& c : {Case{"", "empty"}, Case{"10.0.0.0/8,", "empty"}, Case{"10.0.0.0/33", "longer than 32"},
                        Case{"fd00::/129", "longer than 128"}, Case{"10.1.0.0/8", "host bits"},
                        Case{"10.0.0.0/", "not a number"}, Case{"10.0.0.0/-1", "not a number"},
                        Case{"consul.service", "names are not taken"}, Case{"10.0.0.0/8x", "not a number"}}) {
    auto r = AddressRanges::parse(c.text);
    BOOST_TEST(!r, "'" << c.text << "' was taken");
    if (!r) BOOST_TEST(r.status().message().find(c.why) != std::string::npos, c.text << ": " << r.status().message());
  }
}

BOOST_AUTO_TEST_SUITE_END()
