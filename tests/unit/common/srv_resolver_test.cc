#include "common/srv_resolver.h"

#include <boost/test/unit_test.hpp>

using connectable::parseDnsServers;

BOOST_AUTO_TEST_SUITE(DnsServerList)

BOOST_AUTO_TEST_CASE(AcceptsIpv4AndBracketedIpv6WithOrWithoutPorts) {
  auto servers = parseDnsServers("127.0.0.1:8600,10.0.0.2,[::1]:5353,[fd00::2],fd00::3");
  BOOST_REQUIRE_MESSAGE(servers, servers.status().message());
  BOOST_REQUIRE(servers->size() == 5u);
  BOOST_TEST((*servers)[0].toString() == "127.0.0.1:8600");
  BOOST_TEST((*servers)[1].toString() == "10.0.0.2:53");
  BOOST_TEST((*servers)[2].toString() == "[::1]:5353");
  BOOST_TEST((*servers)[3].toString() == "[fd00::2]:53");
  BOOST_TEST((*servers)[4].toString() == "[fd00::3]:53");
}

BOOST_AUTO_TEST_CASE(RejectsNamesBadPortsAndEmptyEntries) {
  for (const char* bad : {"", "dns.example.org", "127.0.0.1:0", "127.0.0.1:99999", "[::1", "[::1]x", "127.0.0.1,,",
                          "127.0.0.1:"}) {
    auto servers = parseDnsServers(bad);
    BOOST_TEST(!servers, "'" << bad << "' was accepted");
  }
}

BOOST_AUTO_TEST_SUITE_END()
