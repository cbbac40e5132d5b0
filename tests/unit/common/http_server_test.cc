#include "common/http_fetch.h"
#include "common/http_server.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "tests/support/process.h"
#include "tests/support/tcp_peers.h"

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

BOOST_AUTO_TEST_SUITE(HttpFetchOnAUnixSocket)

BOOST_AUTO_TEST_CASE(AServerWhoseQueueIsFullIsWaitedForNotTakenForGone) {
  // A UNIX socket refuses a connect outright (EAGAIN) while its queue is full: a shim busy
  // with several status and scrape clients at once. Nothing is connected then; the fetch
  // tries again within its time, where it used to write to an unconnected socket.
  const std::string path = connectable::testing::tempDir() + "/control.sock";
  const int listener = connectable::testing::listenUnix(path, 0);
  BOOST_REQUIRE(listener >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  size_t queued = 0;
  for (int i = 0; i < 16; ++i) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const bool connected = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    close(fd);  // still queued until accepted, and read as ended then
    if (!connected) break;
    ++queued;
  }
  BOOST_REQUIRE_LT(queued, 16u);  // the queue is full now
  std::thread server([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (std::chrono::steady_clock::now() < until) {
      pollfd p{listener, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      int c = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      char buf[512];
      pollfd in{c, POLLIN, 0};
      const ssize_t n = poll(&in, 1, 1000) > 0 ? recv(c, buf, sizeof buf, 0) : -1;
      const bool asked = n > 0 && std::string(buf, static_cast<size_t>(n)).rfind("GET", 0) == 0;
      if (asked) {
        const std::string reply = "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n";
        [[maybe_unused]] ssize_t w = send(c, reply.data(), reply.size(), MSG_NOSIGNAL);
      }
      close(c);
      if (asked) return;
    }
  });
  auto reply = fetchHttpUnixBlocking(path, "/status", Millis(3000));
  server.join();
  close(listener);
  BOOST_REQUIRE_MESSAGE(reply.isOk(), reply.status().message());
  BOOST_TEST(reply->body == "ok\n");
}

BOOST_AUTO_TEST_SUITE_END()
