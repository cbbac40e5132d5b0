// The client and the event stream against a scripted fake daemon on a UNIX socket: parsing
// survives bad lines, the end of the stream is reported, version negotiation and 404s.
#include "injector/docker_event_stream.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/event_loop.h"
#include "injector/docker_client.h"
#include "tests/support/loop_runner.h"
#include "tests/support/netns_fixture.h"
#include "tests/support/process.h"
#include "tests/support/tcp_peers.h"

using namespace connectable;
using namespace std::chrono_literals;
using connectable::testing::runUntil;

namespace {

// One scripted reply per accepted connection, in order. Each is a list of writes with a
// short pause between them (to split events across reads), then either close or hold the
// connection open until the server is destroyed.
struct Reply {
  std::vector<std::string> writes;
  bool holdOpen = false;
};

class FakeDaemon {
 public:
  explicit FakeDaemon(std::vector<Reply> replies) : replies_(std::move(replies)) {
    path_ = "/tmp/connectable-fake-docker-" + std::to_string(getpid()) + "-" +
            std::to_string(counter_++) + ".sock";
    ::unlink(path_.c_str());
    fd_ = connectable::testing::listenUnix(path_);
    BOOST_REQUIRE(fd_ >= 0);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeDaemon() {
    done_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  DockerEndpoint endpoint() const { return *parseDockerHost("unix://" + path_); }
  std::vector<std::string> requests() {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_;
  }

 private:
  void serve() {
    for (Reply& reply : replies_) {
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      std::string request;
      char buf[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::read(c, buf, sizeof buf);
        if (n <= 0) break;
        request.append(buf, static_cast<size_t>(n));
      }
      {
        std::lock_guard<std::mutex> lock(mutex_);
        requests_.push_back(request.substr(0, request.find("\r\n")));
      }
      for (const std::string& w : reply.writes) {
        [[maybe_unused]] ssize_t n = ::write(c, w.data(), w.size());
        std::this_thread::sleep_for(5ms);
      }
      while (reply.holdOpen && !done_) std::this_thread::sleep_for(5ms);
      ::close(c);
    }
  }

  static inline int counter_ = 0;
  std::vector<Reply> replies_;
  std::string path_;
  int fd_ = -1;
  std::atomic<bool> done_{false};
  std::thread thread_;
  std::mutex mutex_;
  std::vector<std::string> requests_;
};

std::string chunk(const std::string& data) {
  char size[16];
  std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  return size + data + "\r\n";
}
const std::string kStreamHeaders =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
std::string jsonReply(int status, const std::string& body) {
  return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: application/json\r\n" +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}
std::string event(const std::string& action, const std::string& id) {
  return R"({"Type":"container","Action":")" + action + R"(","Actor":{"ID":")" + id +
         R"(","Attributes":{"connect.6000":"x.y"}},"time":1,"timeNano":)" +
         std::to_string(1000 + id.size()) + "}\n";
}

// An HTTP error whose body never ends: 128 chunks of 8 KiB, then the connection held.
Reply endlessError() {
  Reply r{{"HTTP/1.1 500 X\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"}, true};
  for (int i = 0; i < 128; ++i) r.writes.push_back(chunk(std::string(8192, 'e')));
  return r;
}

struct RecordingSink : DockerEventSink {
  int connected = 0;
  std::vector<DockerEvent> events;
  std::vector<Status> malformed;
  std::vector<Status> ended;
  void onDockerStreamConnected() override { ++connected; }
  void onDockerEvent(const DockerEvent& e) override { events.push_back(e); }
  void onDockerEventMalformed(const Status& why) override { malformed.push_back(why); }
  void onDockerStreamEnded(const Status& why) override { ended.push_back(why); }
};

// A stream (API 1.41) subscribed to `endpoint`, on a loop of its own, telling `sink`.
struct Watching {
  explicit Watching(const DockerEndpoint& endpoint, DockerEventStream::Options options = {}) {
    BOOST_REQUIRE(loop.init());
    stream = std::make_unique<DockerEventStream>(loop, endpoint, DockerApiVersion{1, 41}, sink, options);
    BOOST_REQUIRE(stream->start());
  }
  // Runs the loop until the stream has ended; false if it did not within 5 s.
  bool untilEnded() { return runUntil(loop, [&] { return !sink.ended.empty(); }, 5s); }

  EventLoop loop;
  RecordingSink sink;
  std::unique_ptr<DockerEventStream> stream;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(DockerEventStreamWithFakeDaemon)

BOOST_AUTO_TEST_CASE(SkipsMalformedLinesAndReportsTheEnd) {
  std::string split = event("start", "cc");
  FakeDaemon daemon({Reply{{kStreamHeaders,
                            chunk(event("create", "aa")),
                            chunk("this is not json\n"),
                            chunk(event("create", "bb") + "\n" + split.substr(0, 20)),
                            chunk(split.substr(20)),
                            chunk(R"({"Type":"container"})" "\n"),
                            "0\r\n\r\n"}}});
  Watching w(daemon.endpoint());
  BOOST_REQUIRE(w.untilEnded());
  BOOST_TEST(w.sink.connected == 1);
  BOOST_REQUIRE_EQUAL(w.sink.events.size(), 3u);
  BOOST_TEST(w.sink.events[0].actorId == "aa");
  BOOST_TEST(w.sink.events[1].actorId == "bb");
  BOOST_TEST(w.sink.events[2].actorId == "cc");
  BOOST_TEST(w.sink.events[2].action == "start");
  BOOST_TEST(w.sink.events[2].attributes.at("connect.6000") == "x.y");
  BOOST_REQUIRE_EQUAL(w.sink.malformed.size(), 2u);
  BOOST_TEST(w.stream->malformedCount() == 2u);
  BOOST_TEST(w.sink.malformed[0].message().find("not json") != std::string::npos);
  BOOST_TEST(w.sink.ended.size() == 1u);
  BOOST_TEST(w.stream->ended());
  BOOST_TEST(w.stream->lastEventNanos() == 1002);
  auto requests = daemon.requests();
  BOOST_REQUIRE_EQUAL(requests.size(), 1u);
  BOOST_TEST(requests[0].find("GET /v1.41/events?filters=") == 0u);
}

BOOST_AUTO_TEST_CASE(DaemonClosingMidStreamIsAnEnd) {
  FakeDaemon daemon({Reply{{kStreamHeaders, chunk(event("create", "aa"))}}});
  Watching w(daemon.endpoint());
  BOOST_REQUIRE(w.untilEnded());
  BOOST_TEST(w.sink.events.size() == 1u);
  BOOST_TEST(!w.sink.ended[0].isOk());
}

BOOST_AUTO_TEST_CASE(AnOverlongLineIsMalformedAndTheEventsAroundItArrive) {
  DockerEventStream::Options options;
  options.maxLineBytes = 300;
  const std::string overlong = R"({"Type":"container","Action":"create","Actor":{"ID":"xx"},"pad":")" +
                               std::string(400, 'p') + "\"}\n";
  FakeDaemon daemon({Reply{{kStreamHeaders, chunk(event("create", "aa") + overlong.substr(0, 250)),
                            chunk(overlong.substr(250) + event("start", "bb")), "0\r\n\r\n"}}});
  Watching w(daemon.endpoint(), options);
  BOOST_REQUIRE(w.untilEnded());
  BOOST_REQUIRE_EQUAL(w.sink.events.size(), 2u);
  BOOST_TEST(w.sink.events[0].actorId == "aa");
  BOOST_TEST(w.sink.events[1].actorId == "bb");
  BOOST_REQUIRE_EQUAL(w.sink.malformed.size(), 1u);
  BOOST_TEST(w.sink.malformed[0].message().find("longer than 300 bytes") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(BlankLinesAreSkippedAndCrlfEndedLinesRead) {
  std::string crlf = event("create", "aa");
  crlf.insert(crlf.size() - 1, "\r");
  FakeDaemon daemon({Reply{{kStreamHeaders, chunk("\n \r\n\r\n"), chunk(crlf), chunk("\n"), "0\r\n\r\n"}}});
  Watching w(daemon.endpoint());
  BOOST_REQUIRE(w.untilEnded());
  BOOST_REQUIRE_EQUAL(w.sink.events.size(), 1u);
  BOOST_TEST(w.sink.events[0].actorId == "aa");
  BOOST_TEST(w.sink.malformed.empty());
}

BOOST_AUTO_TEST_CASE(ALineCutOffByTheDaemonClosingIsNoEventAndTheEndSaysSo) {
  const std::string cut = event("start", "bb");
  FakeDaemon daemon({Reply{{kStreamHeaders, chunk(event("create", "aa") + cut.substr(0, 30))}}});
  Watching w(daemon.endpoint());
  BOOST_REQUIRE(w.untilEnded());
  BOOST_REQUIRE_EQUAL(w.sink.events.size(), 1u);
  BOOST_TEST(w.sink.malformed.empty());
  BOOST_TEST(w.sink.ended[0].message().find("within a line") != std::string::npos, w.sink.ended[0].message());
}

BOOST_AUTO_TEST_CASE(HttpErrorIsAnEndWithTheDaemonsMessage) {
  FakeDaemon daemon({Reply{{jsonReply(400, R"({"message":"invalid filter 'typo'"})")}}});
  Watching w(daemon.endpoint());
  BOOST_REQUIRE(w.untilEnded());
  BOOST_TEST(w.sink.connected == 0);
  BOOST_TEST(w.sink.ended[0].message().find("HTTP 400") != std::string::npos);
  BOOST_TEST(w.sink.ended[0].message().find("invalid filter") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(AnErrorWithAnEndlessBodyIsAnEndNotAMemoryLeak) {
  FakeDaemon daemon({endlessError()});
  Watching w(daemon.endpoint());
  BOOST_REQUIRE(w.untilEnded());
  BOOST_TEST(w.sink.ended[0].message().find("HTTP 500") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(BigEventsPilingUpWhileTheLoopIsBusyEndTheStreamNotTheMemory) {
  // Forty events of 100 KB each arrive while the loop does not run: past the queue's byte
  // budget the stream ends (and is opened again by its owner) instead of growing.
  Reply flood{{kStreamHeaders}, true};
  for (int i = 0; i < 40; ++i) {
    flood.writes.push_back(chunk(R"({"Type":"container","Action":"create","Actor":{"ID":"c)" + std::to_string(i) +
                                 R"(","Attributes":{"big":")" + std::string(100'000, 'b') +
                                 R"("}},"time":1,"timeNano":1})" + "\n"));
  }
  FakeDaemon daemon({flood});
  DockerEventStream::Options options;
  options.maxQueuedBytes = 1 << 20;
  Watching w(daemon.endpoint(), options);
  std::this_thread::sleep_for(1500ms);  // the loop is busy elsewhere
  BOOST_REQUIRE(w.untilEnded());
  BOOST_TEST(w.sink.events.size() <= 11u);
  BOOST_TEST(w.sink.ended[0].message().find("MiB queued") != std::string::npos, w.sink.ended[0].message());
}

BOOST_AUTO_TEST_CASE(NoDaemonIsAnEnd) {
  Watching w(*parseDockerHost("unix:///tmp/connectable-no-such.sock"));
  BOOST_REQUIRE(w.untilEnded());
  BOOST_TEST(w.sink.ended[0].message().find("connectable-no-such.sock") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(StopWakesAQuietStreamPromptly) {
  FakeDaemon daemon({Reply{{kStreamHeaders}, /*holdOpen=*/true}});
  Watching w(daemon.endpoint());
  BOOST_REQUIRE(runUntil(w.loop, [&] { return w.sink.connected == 1; }, 5s));
  auto before = Clock::now();
  w.stream->stop();
  BOOST_TEST((Clock::now() - before < 1s));
  BOOST_TEST(w.sink.ended.empty());  // no callbacks after stop
}

BOOST_AUTO_TEST_CASE(ReplaysFromSince) {
  FakeDaemon daemon({Reply{{kStreamHeaders}}});
  DockerEventStream::Options options;
  options.sinceNanos = 5'000'000'123LL;
  Watching w(daemon.endpoint(), options);
  BOOST_REQUIRE(w.untilEnded());
  BOOST_TEST(daemon.requests().at(0).find("&since=5.000000123 ") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(ADaemonOverTcpThatVanishesWithoutAWordEndsTheStream) {
  // A tcp:// daemon whose host went away, or whose path was cut: no reset, no FIN, and the
  // stream is silent for as long as Docker is. Keepalive probes find it (here after
  // 1 s + 2 x 1 s; 60 s by default, where the kernel's own timings take over two hours).
  // Daemon and stream share a namespace of their own, whose loopback is then taken down:
  // every packet is lost, and nothing says so.
  connectable::testing::TestNetns ns;
  std::atomic<bool> done{false};
  std::unique_ptr<connectable::testing::TcpServer> daemon;
  struct Release {  // before the daemon's destructor waits for its handler, also on failure
    std::atomic<bool>& done;
    ~Release() { done = true; }
  } release{done};
  std::unique_ptr<Watching> w;
  DockerEventStream::Options options;
  options.keepAlive = {1s, 1s, 2};
  ns.inside([&] {  // the stream's reader thread starts there, and makes its socket there
    daemon = std::make_unique<connectable::testing::TcpServer>([&](int fd) {
      char buf[4096];
      std::string request;
      while (request.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) return;
        request.append(buf, static_cast<size_t>(n));
      }
      [[maybe_unused]] ssize_t n = ::write(fd, kStreamHeaders.data(), kStreamHeaders.size());
      while (!done) {  // then nothing, ever
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 50) > 0 && ::read(fd, buf, sizeof buf) <= 0) return;
      }
    });
    w = std::make_unique<Watching>(*parseDockerHost("tcp://127.0.0.1:" + std::to_string(daemon->port())), options);
  });
  BOOST_REQUIRE(runUntil(w->loop, [&] { return w->sink.connected == 1; }, 5s));
  auto down = connectable::testing::sh("ip -n " + ns.name() + " link set lo down");
  BOOST_REQUIRE_MESSAGE(down.exitCode == 0, down.err);

  BOOST_REQUIRE_MESSAGE(runUntil(w->loop, [&] { return !w->sink.ended.empty(); }, 10s),
                        "the stream still waits for a daemon that is gone");
  BOOST_TEST(w->sink.ended[0].message().find("dockerd stopped answering (keepalive probes unanswered") !=
                 std::string::npos,
             w->sink.ended[0].message());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(DockerClientWithFakeDaemon)

BOOST_AUTO_TEST_CASE(AReplyWithAnEndlessErrorBodyFailsPromptly) {
  FakeDaemon daemon({endlessError()});
  DockerClient client(daemon.endpoint());
  const auto started = std::chrono::steady_clock::now();
  auto negotiated = client.negotiate();
  BOOST_TEST(!negotiated);
  BOOST_TEST((std::chrono::steady_clock::now() - started < 5s), "it read on until the I/O timeout");
}

BOOST_AUTO_TEST_CASE(NegotiatesDownToTheNewestVersionWeKnow) {
  FakeDaemon daemon({Reply{{jsonReply(200, R"({"Version":"31.0.0","ApiVersion":"1.56","MinAPIVersion":"1.24"})")}},
                     Reply{{jsonReply(200, "[]")}}});
  DockerClient client(daemon.endpoint());
  BOOST_REQUIRE(client.negotiate());
  BOOST_TEST((client.apiVersion() == kNewestKnownDockerApi));
  BOOST_TEST(client.serverVersion() == "31.0.0");
  auto list = client.listContainers();
  BOOST_REQUIRE_MESSAGE(list, list.status().message());
  auto requests = daemon.requests();
  BOOST_TEST(requests.at(0) == "GET /version HTTP/1.1");
  BOOST_TEST(requests.at(1) == "GET /v1.52/containers/json HTTP/1.1");
}

BOOST_AUTO_TEST_CASE(UnknownContainerIsNoSuchContainer) {
  // Keep-alive: both replies may come over one connection, or two.
  FakeDaemon daemon({Reply{{jsonReply(200, R"({"ApiVersion":"1.41"})") +
                            jsonReply(404, R"({"message":"No such container: nope"})")}}});
  DockerClient client(daemon.endpoint());
  BOOST_REQUIRE(client.negotiate());
  bool notFound = false;
  auto info = client.inspectContainer("nope", &notFound);
  BOOST_REQUIRE(!info);
  BOOST_TEST(notFound);
  BOOST_TEST(info.status().message() == "no such container: nope");
}

BOOST_AUTO_TEST_CASE(BadVersionReplyIsAnError) {
  FakeDaemon daemon({Reply{{jsonReply(200, R"({"ApiVersion":41})")}},
                     Reply{{jsonReply(200, "<html>")}},
                     Reply{{"garbage\r\n\r\n"}}});
  DockerClient client(daemon.endpoint());
  auto first = client.negotiate();
  BOOST_TEST(!first);
  BOOST_TEST(first.message().find("ApiVersion") != std::string::npos);
  BOOST_TEST(!client.negotiate());
  BOOST_TEST(!client.negotiate());
  BOOST_TEST(!client.negotiated());
}

BOOST_AUTO_TEST_SUITE_END()
