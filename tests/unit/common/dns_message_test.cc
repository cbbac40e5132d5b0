#include "common/dns_message.h"

#include <arpa/inet.h>

#include <cctype>

#include <boost/test/unit_test.hpp>

#include "tests/support/dns_packet.h"

using connectable::testing::DnsPacket;
namespace dns = connectable::dns;

namespace {

connectable::Result<dns::Message> parse(const std::vector<uint8_t>& b) {
  return dns::parseMessage(b.data(), b.size());
}

std::string ip(const in_addr& a) {
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}
std::string ip(const in6_addr& a) {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(AF_INET6, &a, buf, sizeof buf);
  return buf;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// A question for `name` followed by `type`, the usual start of every answer below.
DnsPacket answerTo(const char* name, uint16_t type, uint16_t flags = DnsPacket::kResponseFlags) {
  DnsPacket p(flags);
  p.question(name, type);
  return p;
}

// An SOA's rdata: `mname` and `rname` as wire names (so a label may hold any octet), then
// serial, refresh, retry, expire and `minimum`.
std::vector<uint8_t> soaData(std::vector<uint8_t> mname, const std::vector<uint8_t>& rname, uint32_t minimum) {
  std::vector<uint8_t> rd = std::move(mname);
  rd.insert(rd.end(), rname.begin(), rname.end());
  for (uint32_t v : {1u, 3600u, 600u, 86400u, minimum}) {
    for (int shift = 24; shift >= 0; shift -= 8) rd.push_back(static_cast<uint8_t>(v >> shift));
  }
  return rd;
}

// The mailbox john.doe@example.org as an SOA writes it: john\.doe.example.org, whose first
// label holds a dot (RFC 1035 8; RFC 2181 11: a label may hold any octet).
std::vector<uint8_t> mailboxWithADot() {
  std::vector<uint8_t> name = {8, 'j', 'o', 'h', 'n', '.', 'd', 'o', 'e'};
  std::vector<uint8_t> rest = DnsPacket::encodeName("example.org");
  name.insert(name.end(), rest.begin(), rest.end());
  return name;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(DnsMessage)

BOOST_AUTO_TEST_CASE(ReadsHeaderFlagsAndRcode) {
  auto m = parse(answerTo("nx.example.test", dns::kTypeSrv, 0x8583).bytes());
  BOOST_REQUIRE(m);
  BOOST_TEST(m->header.id == 0x4242);
  BOOST_TEST(m->header.response);
  BOOST_TEST(m->header.authoritative);
  BOOST_TEST(!m->header.truncated);
  BOOST_TEST(m->header.rcode == dns::kRcodeNxDomain);
  BOOST_REQUIRE(m->questions.size() == 1u);
  BOOST_TEST(m->questions[0].name == "nx.example.test");
  BOOST_TEST(m->questions[0].type == dns::kTypeSrv);
  BOOST_TEST(dns::rcodeName(m->header.rcode) == "NXDOMAIN");
}

BOOST_AUTO_TEST_CASE(ReadsSrvRecordsWithTheirAdditionalAddressesAndTtls) {
  DnsPacket p = answerTo("redis.service.consul", dns::kTypeSrv);
  p.srv(DnsPacket::Answer, "redis.service.consul", 1, 10, 6379, "a.node.consul", 0)
      .srv(DnsPacket::Answer, "redis.service.consul", 2, 5, 6380, "b.node.consul", 0)
      .a(DnsPacket::Additional, "a.node.consul", "198.18.0.1", 0)
      .aaaa(DnsPacket::Additional, "a.node.consul", "::1", 0);
  auto m = parse(p.bytes());
  BOOST_REQUIRE_MESSAGE(m, m.status().message());
  BOOST_TEST(m->answers.size() == 2u);
  BOOST_TEST(m->additional.size() == 2u);
  auto srv = dns::readSrvAnswer(*m, "redis.service.consul");
  BOOST_REQUIRE(srv);
  BOOST_REQUIRE(srv->targets.size() == 2u);
  BOOST_TEST(srv->ttl == 0u);
  const auto& a = srv->targets[0];
  BOOST_TEST(a.srv.priority == 1);
  BOOST_TEST(a.srv.weight == 10);
  BOOST_TEST(a.srv.port == 6379);
  BOOST_TEST(a.srv.target == "a.node.consul");
  BOOST_REQUIRE(a.addresses.v4.size() == 1u);
  BOOST_TEST(ip(a.addresses.v4[0]) == "198.18.0.1");
  BOOST_REQUIRE(a.addresses.v6.size() == 1u);
  BOOST_TEST(ip(a.addresses.v6[0]) == "::1");
  // No additional record for b: the caller must look it up.
  BOOST_TEST(srv->targets[1].addresses.empty());
}

BOOST_AUTO_TEST_CASE(ReadsAnSrvAnswerOfSixHundredTargetsEachWithItsOwnAddresses) {
  // The size of a big service's answer over TCP. Each target finds its own addresses
  // (written in another case, once more as a duplicate), and only its own.
  constexpr int kTargets = 600;
  auto target = [](int i) { return "n" + std::to_string(i) + ".node.consul"; };
  auto address = [](int i) { return "198.18." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1); };
  DnsPacket p = answerTo("big.service.consul", dns::kTypeSrv);
  for (int i = 0; i < kTargets; ++i) p.srv(DnsPacket::Answer, "big.service.consul", 1, 1, 8000, target(i).c_str(), 30);
  for (int i = kTargets - 1; i >= 0; --i) {
    std::string shouted = target(i);
    for (char& c : shouted) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    p.a(DnsPacket::Additional, shouted.c_str(), address(i).c_str(), 30);
    p.a(DnsPacket::Additional, (target(i) + ".").c_str(), address(i).c_str(), 30);
  }
  auto m = parse(p.bytes());
  BOOST_REQUIRE_MESSAGE(m, m.status().message());
  auto srv = dns::readSrvAnswer(*m, "big.service.consul");
  BOOST_REQUIRE_MESSAGE(srv, srv.status().message());
  BOOST_REQUIRE(srv->targets.size() == static_cast<size_t>(kTargets));
  int right = 0;
  for (int i = 0; i < kTargets; ++i) {
    const auto& v4 = srv->targets[i].addresses.v4;
    right += v4.size() == 1u && ip(v4[0]) == address(i) && srv->targets[i].srv.target == target(i);
  }
  BOOST_TEST(right == kTargets);
}

BOOST_AUTO_TEST_CASE(SrvTtlIsTheLowestOfTheRecordsUsed) {
  DnsPacket p = answerTo("_x._tcp.example.test", dns::kTypeSrv);
  p.srv(DnsPacket::Answer, "_x._tcp.example.test", 0, 0, 80, "h.example.test", 60)
      .srv(DnsPacket::Answer, "_x._tcp.example.test", 0, 0, 81, "h.example.test", 20)
      .a(DnsPacket::Additional, "h.example.test", "198.18.0.2", 5);
  auto m = parse(p.bytes());
  BOOST_REQUIRE(m);
  auto srv = dns::readSrvAnswer(*m, "_x._tcp.example.test");
  BOOST_REQUIRE(srv);
  BOOST_TEST(srv->ttl == 20u);
  BOOST_TEST(srv->targets[0].addresses.ttl == 5u);
}

BOOST_AUTO_TEST_CASE(DecompressesNamesThatPointBackwards) {
  DnsPacket p = answerTo("svc.example.test", dns::kTypeSrv);  // question name at offset 12
  // Owner: pointer to the question name; target "node" + pointer to "example.test" (offset 16).
  p.pointer(12).recordHeader(dns::kTypeSrv, 30);
  std::vector<uint8_t> rd = {0, 1, 0, 2, 0x18, 0xEB};
  p.u16(static_cast<uint16_t>(rd.size() + 5 + 2)).raw(rd).labels("node").pointer(16);
  p.bumpCount(DnsPacket::Answer);
  auto m = parse(p.bytes());
  BOOST_REQUIRE_MESSAGE(m, m.status().message());
  BOOST_REQUIRE(m->answers.size() == 1u);
  BOOST_TEST(m->answers[0].name == "svc.example.test");
  BOOST_TEST(m->answers[0].srv.target == "node.example.test");
  BOOST_TEST(m->answers[0].srv.port == 6379);
}

BOOST_AUTO_TEST_CASE(RejectsACompressionLoop) {
  DnsPacket p = answerTo("a.example.test", dns::kTypeA);
  size_t self = p.size();
  p.pointer(self).recordHeader(dns::kTypeA, 30).u16(4).u32(0xC6120001);  // owner points to itself
  p.bumpCount(DnsPacket::Answer);
  auto m = parse(p.bytes());
  BOOST_REQUIRE(!m);
  BOOST_TEST(contains(m.status().message(), "does not point backwards"), m.status().message());
}

BOOST_AUTO_TEST_CASE(RejectsATwoStepCompressionLoop) {
  DnsPacket p = answerTo("a.example.test", dns::kTypeA);
  size_t first = p.size();
  // "x" then a pointer forward to the second name, which points back to the first.
  p.labels("x").pointer(first + 4).pointer(first);
  p.bumpCount(DnsPacket::Answer);
  auto m = parse(p.bytes());
  BOOST_REQUIRE(!m);
  BOOST_TEST(contains(m.status().message(), "compression pointer"), m.status().message());
}

BOOST_AUTO_TEST_CASE(RejectsAPointerOutsideTheMessage) {
  DnsPacket p = answerTo("a.example.test", dns::kTypeA);
  p.pointer(0x3FFF).recordHeader(dns::kTypeA, 30).u16(4).u32(0xC6120001);
  p.bumpCount(DnsPacket::Answer);
  BOOST_TEST(!parse(p.bytes()));
}

BOOST_AUTO_TEST_CASE(RejectsRdlengthRunningPastTheEnd) {
  DnsPacket p = answerTo("a.example.test", dns::kTypeA);
  p.name("a.example.test").recordHeader(dns::kTypeA, 30).u16(400).u32(0xC6120001);
  p.bumpCount(DnsPacket::Answer);
  auto m = parse(p.bytes());
  BOOST_REQUIRE(!m);
  BOOST_TEST(contains(m.status().message(), "runs past the end"), m.status().message());
}

BOOST_AUTO_TEST_CASE(RejectsAnAddressRecordOfTheWrongLength) {
  DnsPacket p = answerTo("a.example.test", dns::kTypeA);
  p.record(DnsPacket::Answer, "a.example.test", dns::kTypeA, 30, {198, 18, 0});
  BOOST_TEST(!parse(p.bytes()));
  DnsPacket q = answerTo("a.example.test", dns::kTypeAaaa);
  q.record(DnsPacket::Answer, "a.example.test", dns::kTypeAaaa, 30, {0, 0, 0, 1});
  BOOST_TEST(!parse(q.bytes()));
}

BOOST_AUTO_TEST_CASE(RejectsAnSrvTargetThatSpillsOutOfItsRdata) {
  DnsPacket p = answerTo("s.example.test", dns::kTypeSrv);
  // rdlength says 9 but the target name needs more: it must not be read from the next bytes.
  p.name("s.example.test").recordHeader(dns::kTypeSrv, 30).u16(9).u16(0).u16(0).u16(80).labels("host").u8(0);
  p.bumpCount(DnsPacket::Answer);
  BOOST_TEST(!parse(p.bytes()));
}

BOOST_AUTO_TEST_CASE(RejectsNamesLongerThan253Characters) {
  std::string longName;
  for (int i = 0; i < 5; ++i) longName += std::string(50, 'a' + i) + ".";
  longName += "test";  // 5*51 + 4 = 259 characters
  DnsPacket p = answerTo("s.example.test", dns::kTypeSrv);
  p.srv(DnsPacket::Answer, "s.example.test", 0, 0, 80, longName);
  auto m = parse(p.bytes());
  BOOST_REQUIRE(!m);
  BOOST_TEST(contains(m.status().message(), "longer than 255"), m.status().message());
}

BOOST_AUTO_TEST_CASE(AcceptsANameOfExactly253Characters) {
  std::string name;
  for (int i = 0; i < 3; ++i) name += std::string(63, 'a' + i) + ".";
  name += std::string(61, 'z');  // 3*64 + 61 = 253 characters, 255 octets on the wire
  BOOST_REQUIRE(name.size() == 253u);
  DnsPacket p = answerTo(name.c_str(), dns::kTypeA);
  p.a(DnsPacket::Answer, name, "198.18.0.9");
  auto m = parse(p.bytes());
  BOOST_REQUIRE_MESSAGE(m, m.status().message());
  BOOST_TEST(m->answers[0].name == name);
}

BOOST_AUTO_TEST_CASE(RejectsLabelsLongerThan63Octets) {
  DnsPacket p(DnsPacket::kResponseFlags);
  p.u8(64).raw(std::vector<uint8_t>(64, 'a')).u8(0).u16(1).u16(1);
  p.setQuestionCount(1);
  BOOST_TEST(!parse(p.bytes()));  // 0x40 is a reserved label type, not a length
}

BOOST_AUTO_TEST_CASE(RejectsEveryTruncationOfAValidMessage) {
  DnsPacket p = answerTo("redis.service.consul", dns::kTypeSrv);
  p.srv(DnsPacket::Answer, "redis.service.consul", 1, 1, 6379, "a.node.consul")
      .a(DnsPacket::Additional, "a.node.consul", "198.18.0.1");
  BOOST_REQUIRE(parse(p.bytes()));
  for (size_t n = 0; n < p.size(); ++n) {
    BOOST_TEST(!parse(p.prefix(n)), "prefix of " << n << " bytes was accepted");
  }
}

BOOST_AUTO_TEST_CASE(TruncatedFlagKeepsTheCompleteRecords) {
  DnsPacket p = answerTo("s.example.test", dns::kTypeSrv, DnsPacket::kResponseFlags | 0x0200);
  p.srv(DnsPacket::Answer, "s.example.test", 0, 0, 80, "h.example.test");
  p.setCount(DnsPacket::Answer, 5);  // the server said 5 but only had room for 1
  auto m = parse(p.bytes());
  BOOST_REQUIRE_MESSAGE(m, m.status().message());
  BOOST_TEST(m->header.truncated);
  BOOST_TEST(m->answers.size() == 1u);
}

BOOST_AUTO_TEST_CASE(RejectsAQuery) {
  DnsPacket p(0x0100);
  p.question("a.example.test", dns::kTypeA);
  BOOST_TEST(!parse(p.bytes()));
}

BOOST_AUTO_TEST_CASE(RejectsUnprintableCharactersInNames) {
  DnsPacket p = answerTo("a.example.test", dns::kTypeA);
  p.u8(3).u8('a').u8(0).u8('b').u8(0).recordHeader(dns::kTypeA, 30).u16(4).u32(0xC6120001);
  p.bumpCount(DnsPacket::Answer);
  BOOST_TEST(!parse(p.bytes()));
}

BOOST_AUTO_TEST_CASE(RejectsADotInsideALabelOfANameItUses) {
  // "a.b" as one label would read as two and could match a name it is not.
  std::vector<uint8_t> dotted = {3, 'a', '.', 'b', 0};
  DnsPacket srv = answerTo("s.example.test", dns::kTypeSrv);
  std::vector<uint8_t> rd = {0, 0, 0, 0, 0, 80};
  rd.insert(rd.end(), dotted.begin(), dotted.end());
  srv.record(DnsPacket::Answer, "s.example.test", dns::kTypeSrv, 30, rd);
  auto m = parse(srv.bytes());
  BOOST_REQUIRE(!m);
  BOOST_TEST(contains(m.status().message(), "unsupported character"), m.status().message());

  DnsPacket a = answerTo("a.b", dns::kTypeA);
  a.raw(dotted).recordHeader(dns::kTypeA, 30).u16(4).u32(0xC6120001);
  a.bumpCount(DnsPacket::Answer);
  BOOST_TEST(!parse(a.bytes()));
}

// The shim reads an SOA for its minimum only; its names are never compared or used, so
// whatever octets they hold must not cost the answer (a no-data AAAA answer for a host with
// only an A record read as malformed, again at every refresh).
BOOST_AUTO_TEST_CASE(AcceptsAnyOctetInNamesItDoesNotUse) {
  DnsPacket p = answerTo("db.example.org", dns::kTypeAaaa, 0x8580);
  p.record(DnsPacket::Authority, "example.org", dns::kTypeSoa, 300,
           soaData(DnsPacket::encodeName("ns.example.org"), mailboxWithADot(), 7));
  auto m = parse(p.bytes());
  BOOST_REQUIRE_MESSAGE(m, m.status().message());
  BOOST_TEST(dns::negativeTtl(*m, 99) == 7u);
  auto addresses = dns::readAddressAnswer(*m, "db.example.org", dns::kTypeAaaa);
  BOOST_REQUIRE(addresses);
  BOOST_TEST(addresses->empty());

  // Nor in the owner names of an SOA and of records it skips.
  DnsPacket q = answerTo("s.example.test", dns::kTypeSrv);
  q.srv(DnsPacket::Answer, "s.example.test", 0, 0, 80, "h.example.test");
  q.raw({5, 'o', 'd', 'd', ' ', 0xE9}).u8(0).recordHeader(16 /* TXT */, 30).u16(1).u8(0);
  q.bumpCount(DnsPacket::Additional);
  q.raw(mailboxWithADot()).recordHeader(dns::kTypeSoa, 30);
  std::vector<uint8_t> rd = soaData(DnsPacket::encodeName("ns.example.org"), mailboxWithADot(), 5);
  q.u16(static_cast<uint16_t>(rd.size())).raw(rd);
  q.bumpCount(DnsPacket::Additional);
  m = parse(q.bytes());
  BOOST_REQUIRE_MESSAGE(m, m.status().message());
  BOOST_TEST(m->skippedRecords == 1u);
  BOOST_REQUIRE(m->additional.size() == 1u);
  BOOST_TEST(m->additional[0].name == "john\\.doe.example.org", "written as a zone file would");
  BOOST_TEST(m->additional[0].soa.minimum == 5u);
}

BOOST_AUTO_TEST_CASE(ChecksTheStructureOfNamesItDoesNotUse) {
  DnsPacket p = answerTo("db.example.org", dns::kTypeAaaa, 0x8580);
  size_t rname = p.size() + DnsPacket::encodeName("example.org").size() + 10 +
                 DnsPacket::encodeName("ns.example.org").size();
  std::vector<uint8_t> loop = {static_cast<uint8_t>(0xC0 | (rname >> 8)), static_cast<uint8_t>(rname)};
  p.record(DnsPacket::Authority, "example.org", dns::kTypeSoa, 300,
           soaData(DnsPacket::encodeName("ns.example.org"), loop, 7));  // rname points to itself
  auto m = parse(p.bytes());
  BOOST_REQUIRE(!m);
  BOOST_TEST(contains(m.status().message(), "does not point backwards"), m.status().message());

  DnsPacket q = answerTo("db.example.org", dns::kTypeAaaa, 0x8580);
  q.name("other.example.org").recordHeader(99, 30).u16(40).u32(0);  // rdata runs past the end
  q.bumpCount(DnsPacket::Answer);
  BOOST_TEST(!parse(q.bytes()));
}

BOOST_AUTO_TEST_CASE(SkipsUnknownTypesAndOtherClasses) {
  DnsPacket p = answerTo("s.example.test", dns::kTypeSrv);
  p.srv(DnsPacket::Answer, "s.example.test", 0, 0, 80, "h.example.test")
      .txt(DnsPacket::Additional, "h.example.test", "v=spf1 -all")
      .a(DnsPacket::Additional, "h.example.test", "198.18.0.3");
  p.name("h.example.test").recordHeader(dns::kTypeA, 30, 3 /* CH */).u16(4).u32(0xC6120004);
  p.bumpCount(DnsPacket::Additional);
  auto m = parse(p.bytes());
  BOOST_REQUIRE_MESSAGE(m, m.status().message());
  BOOST_TEST(m->skippedRecords == 2u);
  auto srv = dns::readSrvAnswer(*m, "s.example.test");
  BOOST_REQUIRE(srv);
  BOOST_REQUIRE(srv->targets[0].addresses.v4.size() == 1u);
  BOOST_TEST(ip(srv->targets[0].addresses.v4[0]) == "198.18.0.3");
}

BOOST_AUTO_TEST_CASE(FollowsCnameChainsInTheAnswer) {
  DnsPacket p = answerTo("db.example.test", dns::kTypeA);
  p.cname(DnsPacket::Answer, "db.example.test", "db1.example.test", 50)
      .cname(DnsPacket::Answer, "DB1.example.test", "real.example.test", 40)
      .a(DnsPacket::Answer, "real.example.test", "198.18.0.7", 300)
      .a(DnsPacket::Answer, "unrelated.example.test", "198.18.0.8", 300);
  auto m = parse(p.bytes());
  BOOST_REQUIRE(m);
  auto addresses = dns::readAddressAnswer(*m, "db.example.test", dns::kTypeA);
  BOOST_REQUIRE(addresses);
  BOOST_REQUIRE(addresses->v4.size() == 1u);
  BOOST_TEST(ip(addresses->v4[0]) == "198.18.0.7");
  BOOST_TEST(addresses->ttl == 40u);
}

BOOST_AUTO_TEST_CASE(FollowsACnameFromTheSrvNameAndFromItsTargets) {
  DnsPacket p = answerTo("svc.example.test", dns::kTypeSrv);
  p.cname(DnsPacket::Answer, "svc.example.test", "_svc._tcp.example.test")
      .srv(DnsPacket::Answer, "_svc._tcp.example.test", 0, 0, 80, "alias.example.test")
      .cname(DnsPacket::Additional, "alias.example.test", "host.example.test")
      .aaaa(DnsPacket::Additional, "host.example.test", "::1");
  auto m = parse(p.bytes());
  BOOST_REQUIRE(m);
  auto srv = dns::readSrvAnswer(*m, "svc.example.test");
  BOOST_REQUIRE(srv);
  BOOST_REQUIRE(srv->targets.size() == 1u);
  BOOST_REQUIRE(srv->targets[0].addresses.v6.size() == 1u);
}

BOOST_AUTO_TEST_CASE(RejectsALoopingCnameChain) {
  DnsPacket p = answerTo("a.example.test", dns::kTypeA);
  p.cname(DnsPacket::Answer, "a.example.test", "b.example.test")
      .cname(DnsPacket::Answer, "b.example.test", "a.example.test");
  auto m = parse(p.bytes());
  BOOST_REQUIRE(m);
  auto addresses = dns::readAddressAnswer(*m, "a.example.test", dns::kTypeA);
  BOOST_REQUIRE(!addresses);
  BOOST_TEST(contains(addresses.status().message(), "CNAME chain"), addresses.status().message());
}

BOOST_AUTO_TEST_CASE(AddressAnswerKeepsOnlyTheAskedType) {
  DnsPacket p = answerTo("h.example.test", dns::kTypeA);
  p.a(DnsPacket::Answer, "h.example.test", "198.18.0.1")
      .aaaa(DnsPacket::Answer, "h.example.test", "::1")
      .a(DnsPacket::Answer, "h.example.test", "198.18.0.1");
  auto m = parse(p.bytes());
  BOOST_REQUIRE(m);
  auto addresses = dns::readAddressAnswer(*m, "h.example.test", dns::kTypeA);
  BOOST_REQUIRE(addresses);
  BOOST_TEST(addresses->v4.size() == 1u);  // duplicates collapse
  BOOST_TEST(addresses->v6.empty());
}

BOOST_AUTO_TEST_CASE(SrvRecordsOfOtherNamesAreIgnored) {
  DnsPacket p = answerTo("s.example.test", dns::kTypeSrv);
  p.srv(DnsPacket::Answer, "other.example.test", 0, 0, 80, "h.example.test");
  auto m = parse(p.bytes());
  BOOST_REQUIRE(m);
  auto srv = dns::readSrvAnswer(*m, "s.example.test");
  BOOST_REQUIRE(srv);
  BOOST_TEST(srv->targets.empty());
}

BOOST_AUTO_TEST_CASE(AnAnswerOfOtherNamesClassesOrTypesOnlyIsNotAboutTheQuestion) {
  auto about = [](DnsPacket p, uint16_t type) { return dns::answersAbout(*parse(p.bytes()), "s.example.test", type); };
  BOOST_TEST(about(answerTo("s.example.test", dns::kTypeSrv), dns::kTypeSrv));  // no data
  BOOST_TEST(about(answerTo("s.example.test", dns::kTypeSrv).srv(DnsPacket::Answer, "S.Example.Test.", 0, 0, 80, "h"),
                   dns::kTypeSrv));
  BOOST_TEST(about(answerTo("s.example.test", dns::kTypeA).cname(DnsPacket::Answer, "s.example.test", "t.example.test"),
                   dns::kTypeA));  // a chain whose end was left out
  BOOST_TEST(!about(answerTo("s.example.test", dns::kTypeSrv).srv(DnsPacket::Answer, "other.example.test", 0, 0, 80, "h"),
                    dns::kTypeSrv));
  BOOST_TEST(!about(answerTo("s.example.test", dns::kTypeA).aaaa(DnsPacket::Answer, "s.example.test", "::1"), dns::kTypeA));
  DnsPacket chaos = answerTo("s.example.test", dns::kTypeA);
  chaos.name("s.example.test").recordHeader(dns::kTypeA, 30, 3 /* CH */).u16(4).u32(0xC6120004);
  chaos.bumpCount(DnsPacket::Answer);
  BOOST_TEST(!about(chaos, dns::kTypeA));
}

BOOST_AUTO_TEST_CASE(NegativeTtlComesFromTheSoa) {
  DnsPacket p = answerTo("nx.example.test", dns::kTypeSrv, 0x8183);
  p.soa(DnsPacket::Authority, "example.test", 300, 7);
  auto m = parse(p.bytes());
  BOOST_REQUIRE_MESSAGE(m, m.status().message());
  BOOST_TEST(dns::negativeTtl(*m, 99) == 7u);
  BOOST_TEST(dns::negativeTtl(*parse(answerTo("nx.example.test", dns::kTypeSrv, 0x8183).bytes()), 99) == 99u);
}

BOOST_AUTO_TEST_CASE(TtlWithTheTopBitSetReadsAsZero) {
  DnsPacket p = answerTo("a.example.test", dns::kTypeA);
  p.a(DnsPacket::Answer, "a.example.test", "198.18.0.1", 0x80000001u);
  auto m = parse(p.bytes());
  BOOST_REQUIRE(m);
  BOOST_TEST(m->answers[0].ttl == 0u);
}

BOOST_AUTO_TEST_CASE(NamesCompareCaseInsensitivelyIgnoringTheTrailingDot) {
  BOOST_TEST(dns::sameName("Redis.Service.Consul.", "redis.service.consul"));
  BOOST_TEST(!dns::sameName("redis.service.consul", "redis.service.consu"));
}

BOOST_AUTO_TEST_CASE(SurvivesRandomBytes) {
  // Every mutation of a valid message must parse or fail cleanly (ASan checks the reads).
  DnsPacket p = answerTo("redis.service.consul", dns::kTypeSrv);
  p.srv(DnsPacket::Answer, "redis.service.consul", 1, 1, 6379, "a.node.consul")
      .cname(DnsPacket::Answer, "x.node.consul", "a.node.consul")
      .a(DnsPacket::Additional, "a.node.consul", "198.18.0.1");
  std::vector<uint8_t> base = p.bytes();
  uint32_t seed = 12345;
  for (int i = 0; i < 20000; ++i) {
    std::vector<uint8_t> b = base;
    for (int k = 0; k < 3; ++k) {
      seed = seed * 1103515245u + 12345u;
      b[(seed >> 8) % b.size()] = static_cast<uint8_t>(seed >> 20);
    }
    auto m = parse(b);
    if (m) (void)dns::readSrvAnswer(*m, "redis.service.consul");
  }
}

BOOST_AUTO_TEST_SUITE_END()
