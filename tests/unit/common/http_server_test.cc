#include "common/http_fetch.h"
#include "common/http_server.h"

#include <boost/test/unit_test.hpp>

using namespace connectable;

BOOST_AUTO_TEST_SUITE(HttpRequestLine)

BOOST_AUTO_TEST_CASE(PathAndQueryAreSplit) {
  auto r = parseHttpRequestLine("GET /status?format=text HTTP/1.1\r\nHost: x\r\n\r\n");
  BOOST_REQUIRE(r.isOk());
  BOOST_TEST(r->method == "GET");
  BOOST_TEST(r->path == "/status");
  BOOST_TEST(r->query == "format=text");
}

BOOST_AUTO_TEST_CASE(MalformedLinesAreErrorsNotCrashes) {
  BOOST_TEST(!parseHttpRequestLine("").isOk());
  BOOST_TEST(!parseHttpRequestLine("GET").isOk());
  BOOST_TEST(!parseHttpRequestLine("GET status HTTP/1.0").isOk());
  BOOST_TEST(!parseHttpRequestLine("GET /status SMTP").isOk());
  BOOST_TEST(!parseHttpRequestLine(" /x HTTP/1.0").isOk());
}

BOOST_AUTO_TEST_CASE(RepliesAreSplitIntoCodeAndBody) {
  auto r = parseHttpReply("HTTP/1.0 403 Forbidden\r\nContent-Length: 3\r\n\r\nno\n");
  BOOST_REQUIRE(r.isOk());
  BOOST_TEST(r->code == 403);
  BOOST_TEST(r->body == "no\n");
  BOOST_TEST(!parseHttpReply("garbage").isOk());
  BOOST_TEST(!parseHttpReply("HTTP/1.0 2x\r\n\r\n").isOk());
}

BOOST_AUTO_TEST_CASE(TheBodyStartsAfterTheHeadsFirstEmptyLine) {
  // A head of bare LFs ends at its "\n\n", though a CRLF CRLF comes later in the body.
  auto r = parseHttpReply("HTTP/1.0 200 OK\nContent-Length: 10\n\na\r\n\r\nb\r\n\r\n");
  BOOST_REQUIRE(r.isOk());
  BOOST_TEST(r->body == "a\r\n\r\nb\r\n\r\n");
}

BOOST_AUTO_TEST_CASE(ABodyShorterThanItsContentLengthIsAReplyCutShortNotAnAnswer) {
  // A shim's server closes at its deadline as it closes after an answer: what came is no
  // answer (`..._total 12`, where the shim said 123456, reads as a counter reset).
  auto cut = parseHttpReply("HTTP/1.0 200 OK\r\ncontent-LENGTH: 40\r\n\r\nconnectable_connections_total 12");
  BOOST_REQUIRE(!cut.isOk());
  BOOST_TEST(cut.status().message() == "HTTP reply cut short: 32 of its 40 bytes");
  auto whole = parseHttpReply("HTTP/1.0 200 OK\r\nX-Other: 1\r\nContent-Length: 3\r\n\r\nok\n");
  BOOST_REQUIRE(whole.isOk());
  BOOST_TEST(whole->body == "ok\n");
  BOOST_TEST(parseHttpReply("HTTP/1.0 200 OK\r\n\r\nno length said").isOk());
}

BOOST_AUTO_TEST_CASE(TheCodeIsReadFromTheStatusLineOnly) {
  BOOST_TEST(!parseHttpReply("HTTP/1.0\r\nRetry-After: 200\r\n\r\n").isOk());
  BOOST_TEST(!parseHttpReply("HTTP/1.0\r\n\r\n 200").isOk());
}

BOOST_AUTO_TEST_SUITE_END()
