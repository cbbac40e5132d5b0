#include "common/dns_server_replies.h"

#include <cerrno>

#include <boost/test/unit_test.hpp>

using namespace connectable;

namespace {

const SocketAddress kFirst = *SocketAddress::parseIp("127.0.0.1", 53);
const SocketAddress kSecond = *SocketAddress::parseIp("::1", 8600);

// The first four bytes of a DNS message: id, then QR and the rcode.
std::vector<unsigned char> header(uint16_t id, bool answer, uint8_t rcode) {
  return {static_cast<unsigned char>(id >> 8), static_cast<unsigned char>(id & 0xff),
          static_cast<unsigned char>(answer ? 0x81 : 0x01), static_cast<unsigned char>(0x80 | rcode)};
}

// A question with DNS id `id` sent over UDP: its first four bytes are all that is read.
void ask(DnsServerReplies& r, uint16_t id) {
  auto question = header(id, false, 0);
  r.noteQuestionSent(question.data(), question.size());
}

// Two servers, and question 7 asked of them.
DnsServerReplies twoServers() {
  DnsServerReplies r;
  r.setServers({kFirst, kSecond});
  ask(r, 7);
  return r;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(DnsServerRepliesSpec)

BOOST_AUTO_TEST_CASE(EachServerGetsAClauseInTheOrderTheyAreAsked) {
  DnsServerReplies r = twoServers();
  const auto sent = Clock::now();
  auto refused = header(7, true, 5);
  r.noteDatagram(kSecond, refused.data(), refused.size());
  r.noteSocketError(kFirst, ECONNREFUSED, sent + std::chrono::milliseconds(1));
  BOOST_TEST(r.describe(7, sent) == "127.0.0.1:53 unreachable: Connection refused; [::1]:8600 answered REFUSED");
}

BOOST_AUTO_TEST_CASE(ServersThatSaidNothingAreNamedOnlyBesideOnesThatDid) {
  DnsServerReplies r = twoServers();
  const auto sent = Clock::now();
  BOOST_TEST(r.describe(7, sent).empty());
  auto servfail = header(7, true, 2);
  r.noteDatagram(kFirst, servfail.data(), servfail.size());
  BOOST_TEST(r.describe(7, sent) == "127.0.0.1:53 answered SERVFAIL; [::1]:8600 did not answer");
}

BOOST_AUTO_TEST_CASE(AnErrorAnswerCountsOnlyForItsOwnQuestion) {
  DnsServerReplies r = twoServers();
  ask(r, 8);
  auto servfail = header(7, true, 2);
  r.noteDatagram(kFirst, servfail.data(), servfail.size());
  BOOST_TEST(r.describe(8, Clock::now()).empty());
  r.forget(7);
  BOOST_TEST(r.describe(7, Clock::now()).empty(), "forgotten with its question");
}

// c-ares gave up on the first server and the second answered; the first's SERVFAIL comes
// after. Kept, it would stay for ever (forget() has run) and be blamed on the next question
// that draws the same id, though that server never saw it.
BOOST_AUTO_TEST_CASE(AnErrorAnswerArrivingAfterItsQuestionEndedIsNotKept) {
  DnsServerReplies r = twoServers();
  r.forget(7);
  auto servfail = header(7, true, 2);
  r.noteDatagram(kFirst, servfail.data(), servfail.size());
  ask(r, 7);
  BOOST_TEST(r.describe(7, Clock::now()).empty());
}

// Answers to ids never asked, forged or stray, are not kept: nothing would forget them.
BOOST_AUTO_TEST_CASE(AnErrorAnswerToNoQuestionAskedIsNotKept) {
  DnsServerReplies r = twoServers();
  auto servfail = header(9, true, 2);
  r.noteDatagram(kFirst, servfail.data(), servfail.size());
  ask(r, 9);
  BOOST_TEST(r.describe(9, Clock::now()).empty());
}

BOOST_AUTO_TEST_CASE(ASocketErrorFromBeforeTheQuestionWasSentIsNotBlamedOnIt) {
  DnsServerReplies r = twoServers();
  const auto earlier = Clock::now();
  r.noteSocketError(kFirst, ECONNREFUSED, earlier);
  BOOST_TEST(r.describe(7, earlier + std::chrono::seconds(1)).empty());
}

BOOST_AUTO_TEST_CASE(AnswersThatAreNotErrorsAndQuestionsAreNotNoted) {
  DnsServerReplies r = twoServers();
  for (const auto& m : {header(7, true, 0), header(7, true, 3) /* NXDOMAIN: an answer */, header(7, false, 2),
                        std::vector<unsigned char>{0, 7, 0x81}}) {
    r.noteDatagram(kFirst, m.data(), m.size());
  }
  BOOST_TEST(r.describe(7, Clock::now()).empty());
}

BOOST_AUTO_TEST_CASE(AFloodOfAnswersFromOneServerHidesNeitherItsLatestNorAnotherServers) {
  DnsServerReplies r = twoServers();
  auto servfail = header(7, true, 2), refused = header(7, true, 5), notimp = header(7, true, 4);
  for (int i = 0; i < 1000; ++i) r.noteDatagram(kFirst, servfail.data(), servfail.size());
  r.noteDatagram(kFirst, notimp.data(), notimp.size());
  r.noteDatagram(kSecond, refused.data(), refused.size());
  BOOST_TEST(r.describe(7, Clock::now()) == "127.0.0.1:53 answered NOTIMP; [::1]:8600 answered REFUSED");
}

BOOST_AUTO_TEST_SUITE_END()
