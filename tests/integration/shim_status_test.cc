// What a standalone shim says about itself: its control socket (status JSON, Prometheus
// metrics, root only), `connectable-shim status`, and the plain-text status port inside
// the namespace, checked against traffic the test sends and counts.
#define BOOST_TEST_MODULE shim status
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <Poco/JSON/Parser.h>

#include <boost/test/unit_test.hpp>
#include <algorithm>
#include <thread>

#include "tests/support/netns_fixture.h"
#include "tests/support/process.h"
#include "tests/support/shim_process.h"
#include "tests/support/tcp_peers.h"

using namespace connectable::testing;
using namespace std::chrono_literals;

namespace {

constexpr uint16_t kPort = 6000;
constexpr uint16_t kDeadPort = 6001;
constexpr uint16_t kStatusPort = 6099;

using Json = Poco::JSON::Object::Ptr;

Json parseJson(const std::string& text) {
  Poco::JSON::Parser parser;
  return parser.parse(text).extract<Json>();
}

Json portOf(const Json& status, uint16_t port) {
  auto ports = status->getArray("ports");
  for (size_t i = 0; i < ports->size(); ++i) {
    auto p = ports->getObject(static_cast<unsigned>(i));
    if (p->getValue<int>("port") == port) return p;
  }
  throw std::runtime_error("no port " + std::to_string(port) + " in status");
}

uint64_t at(const Json& obj, const std::string& a, const std::string& b) {
  return obj->getObject(a)->getValue<uint64_t>(b);
}

// A control socket at `path` that answers each request, `answers` of them, with `code` and
// `body`: a shim taken over by the code beside it could say anything there.
class ForgedControl {
 public:
  ForgedControl(const std::string& path, int code, std::string body, int answers) {
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path.copy(addr.sun_path, sizeof addr.sun_path - 1);
    BOOST_REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 && listen(fd_, 4) == 0);
    thread_ = std::thread([this, code, body = std::move(body), answers] {
      for (int i = 0; i < answers; ++i) {
        int c = accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        std::string request;
        char buf[4096];
        ssize_t n;
        while (request.find("\r\n\r\n") == std::string::npos && (n = read(c, buf, sizeof buf)) > 0) request.append(buf, n);
        const std::string reply = "HTTP/1.1 " + std::to_string(code) + " X\r\nContent-Length: " +
                                  std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
        (void)writeAll(c, reply.data(), reply.size());
        close(c);
      }
    });
  }
  ~ForgedControl() {
    // Wakes an accept() still waiting (fewer clients came than answers were offered), so
    // that a failed test ends rather than hangs.
    shutdown(fd_, SHUT_RDWR);
    thread_.join();
    close(fd_);
  }

 private:
  int fd_ = -1;
  std::thread thread_;
};

// Whether `text` holds a byte or a character that a terminal acts on: an ASCII control but
// the newline, DEL, a C1 control in UTF-8 (U+009B is CSI), or a bidi override.
bool actsOnATerminal(const std::string& text) {
  for (size_t i = 0; i < text.size(); ++i) {
    const auto u = static_cast<unsigned char>(text[i]);
    if ((u < 0x20 && u != '\n') || u == 0x7f) return true;
    if (u == 0xc2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) < 0xa0) return true;
    if (text.compare(i, 3, "\xe2\x80\xae") == 0) return true;
  }
  return false;
}

struct Fixture {
  Fixture() : dir(tempDir()), control(dir + "/shim.sock"), backend(echoHandler()) {
    signal(SIGPIPE, SIG_IGN);
    chmod(dir.c_str(), 0755);  // the socket's own mode must be what keeps others out
    shim = std::make_unique<ShimProcess>(std::vector<std::string>{
        "--netns", ns.path(), "--control", control, "--status-port", std::to_string(kStatusPort), "--name", "status-test",
        "--connect", std::to_string(kPort) + "=" + backend.address(), "--connect",
        std::to_string(kDeadPort) + "=" + deadBackend.address()});
  }
  ~Fixture() { run({"rm", "-rf", dir}); }

  RunResult curl(const std::string& path) {
    return run({"curl", "-sS", "-m", "5", "--unix-socket", control, "http://shim" + path});
  }
  Json status() { return parseJson(curl("/status").out); }

  // `n` connections each echoing `bytes` bytes, one after the other, all closed after.
  void echoTraffic(int n, size_t bytes) {
    for (int i = 0; i < n; ++i) {
      int fd = -1;
      ns.inside([&] { fd = connectTcp("127.0.0.1", kPort); });
      BOOST_REQUIRE(fd >= 0);
      std::string data(bytes, static_cast<char>('a' + i));
      BOOST_REQUIRE(writeAll(fd, data.data(), data.size()));
      shutdown(fd, SHUT_WR);
      std::string got;
      BOOST_REQUIRE(readToEof(fd, &got));
      BOOST_REQUIRE(got == data);
      close(fd);
    }
  }

  // One client of the port whose only backend refuses: reset, and the backend penalized.
  void connectToTheDeadPort() {
    int fd = -1;
    ns.inside([&] { fd = connectTcp("127.0.0.1", kDeadPort); });
    if (fd >= 0) {  // the reset may beat the client's own connect check
      BOOST_TEST(waitClosed(fd, 3000) >= 0);
      close(fd);
    }
  }

  bool settled(uint64_t connections) {
    return waitFor([&] {
      auto p = portOf(status(), kPort);
      return at(p, "connections", "active") == 0 && at(p, "connections", "total") == connections;
    }, 5s);
  }

  TestNetns ns;
  std::string dir;
  std::string control;
  TcpServer backend;
  ReservedPort deadBackend;  // refuses for as long as the test runs
  std::unique_ptr<ShimProcess> shim;
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(ShimStatus, Fixture)

BOOST_AUTO_TEST_CASE(StatusJsonCountsExactlyTheTrafficSent) {
  echoTraffic(5, 1000);
  echoTraffic(2, 70000);  // past the stack copy: spliced bytes are counted too
  BOOST_REQUIRE(settled(7));
  connectToTheDeadPort();
  // The dead backend's penalty lasts a second from its failure: what follows reads the one
  // status that first shows the failure, not a later one.
  Json s;
  BOOST_REQUIRE(waitFor([&] {
    s = status();
    return at(portOf(s, kDeadPort), "failures", "no_backend") == 1;
  }, 3s));
  BOOST_TEST(s->getValue<std::string>("name") == "status-test");
  BOOST_TEST(s->getValue<int>("pid") == shim->pid());
  BOOST_TEST(s->getValue<int>("status_port") == kStatusPort);
  BOOST_TEST(s->getValue<double>("uptime_seconds") >= 0.0);
  // Confined, and nothing refused (the shim installs no filter in a sanitizer build).
  BOOST_TEST(s->getObject("syscall_filter")->getValue<bool>("on") == (kShimsOwnFilters > 0));
  BOOST_TEST(s->getObject("syscall_filter")->getArray("refused")->size() == 0u);
  Json p = portOf(s, kPort);
  const uint64_t bytes = 5 * 1000 + 2 * 70000;
  BOOST_TEST(at(p, "connections", "total") == 7u);
  BOOST_TEST(at(p, "connections", "accepted") == 7u);
  BOOST_TEST(at(p, "connections", "active") == 0u);
  BOOST_TEST(at(p, "bytes", "to_backends") == bytes);
  BOOST_TEST(at(p, "bytes", "from_backends") == bytes);
  BOOST_TEST(p->getValue<std::string>("target") == backend.address());
  auto backends = p->getArray("backends");
  BOOST_REQUIRE(backends->size() == 1u);
  Json b = backends->getObject(0);
  BOOST_TEST(b->getValue<std::string>("address") == backend.address());
  BOOST_TEST(b->getValue<std::string>("state") == "up");
  BOOST_TEST(at(b, "connections", "total") == 7u);
  BOOST_TEST(at(b, "bytes", "to_backend") == bytes);
  BOOST_TEST(at(b, "bytes", "from_backend") == bytes);

  Json dead = portOf(s, kDeadPort);
  BOOST_TEST(at(dead, "connections", "total") == 0u);
  BOOST_TEST(at(dead, "failures", "connect_refused") == 1u);
  BOOST_TEST(at(dead, "failures", "no_backend") == 1u);
  Json deadBackend = dead->getArray("backends")->getObject(0);
  BOOST_TEST(deadBackend->getValue<std::string>("state") == "penalized");
  BOOST_TEST(deadBackend->getValue<int>("consecutive_failures") == 1);
  BOOST_TEST(deadBackend->getValue<double>("penalty_seconds_left") > 0.0);
  BOOST_TEST(!s->isNull("last_error"));
  BOOST_TEST(s->getObject("last_error")->getValue<std::string>("message").find("no backend reachable") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(MetricsPassPromtoolAndCarryTheSameCounts) {
  echoTraffic(3, 500);
  BOOST_REQUIRE(settled(3));
  auto m = curl("/metrics");
  BOOST_REQUIRE(m.exitCode == 0);
  auto checked = run({"promtool", "check", "metrics"}, 30s, m.out);
  BOOST_TEST(checked.exitCode == 0, checked.out << checked.err);
  BOOST_TEST(m.out.find("connectable_connections_total{port=\"6000\"} 3\n") != std::string::npos, m.out);
  BOOST_TEST(m.out.find("connectable_bytes_total{port=\"6000\",direction=\"to_backends\"} 1500\n") != std::string::npos);
  BOOST_TEST(m.out.find("connectable_backend_connections_total{port=\"6000\",target=\"" + backend.address() +
                        "\",backend=\"" + backend.address() + "\"} 3\n") != std::string::npos);
  BOOST_TEST(m.out.find("# TYPE connectable_failures_total counter") != std::string::npos);
  BOOST_TEST(m.out.find("connectable_syscalls_refused 0\n") != std::string::npos);
  // The io_uring data path's read buffers: every one back in the pool once the traffic ended.
  const bool ring = curl("/status").out.find("\"data_path\":\"io_uring\"") != std::string::npos;
  BOOST_TEST((m.out.find("connectable_read_buffers{state=\"lent\"} 0\n") != std::string::npos) == ring, m.out);
  BOOST_TEST((m.out.find("connectable_read_buffers{state=\"pool\"} 64\n") != std::string::npos) == ring, m.out);
}

BOOST_AUTO_TEST_CASE(ADeadBackendsHealthProbesAreCountedAndShownWhileItStaysDown) {
  connectToTheDeadPort();
  // A second after that failure its penalty ends, and the shim's probe is refused.
  Json b;
  BOOST_REQUIRE(waitFor([&] {
    b = portOf(status(), kDeadPort)->getArray("backends")->getObject(0);
    return b->getValue<int>("probe_failures") >= 1;
  }, 5s));
  BOOST_TEST(b->getValue<std::string>("state") == "penalized");
  BOOST_TEST(b->getValue<int>("connect_failures") == 1);  // the client's; probes count apart
  const std::string probes = std::to_string(b->getValue<int>("probes"));
  const std::string labels = "{port=\"" + std::to_string(kDeadPort) + "\",target=\"" + deadBackend.address() +
                             "\",backend=\"" + deadBackend.address() + "\"} ";
  auto m = curl("/metrics").out;
  BOOST_TEST(m.find("connectable_backend_up" + labels + "0\n") != std::string::npos, m);
  BOOST_TEST(m.find("connectable_backend_probes_total" + labels) != std::string::npos, m);
  BOOST_TEST(m.find("connectable_backend_probe_failures_total" + labels) != std::string::npos, m);
  BOOST_TEST(m.find("# TYPE connectable_backend_probing gauge") != std::string::npos, m);
  // The live backend was never probed.
  const std::string live = "{port=\"" + std::to_string(kPort) + "\",target=\"" + backend.address() + "\",backend=\"" +
                           backend.address() + "\"} ";
  BOOST_TEST(m.find("connectable_backend_probes_total" + live + "0\n") != std::string::npos, m);
  auto text = curl("/status?format=text").out;
  BOOST_TEST(text.find("backend " + deadBackend.address() + "  penalized") != std::string::npos, text);
  BOOST_TEST(text.find(", probes ") != std::string::npos, text);
  BOOST_TEST(backend.accepted() == 0);
}

BOOST_AUTO_TEST_CASE(ShimStatusCommandPrintsTheTableAndTheJson) {
  echoTraffic(2, 100);
  BOOST_REQUIRE(settled(2));
  auto table = run({shimBinary(), "status", "--control", control});
  BOOST_TEST(table.exitCode == 0, table.err);
  BOOST_TEST(table.out.find("port 6000 -> " + backend.address()) != std::string::npos, table.out);
  BOOST_TEST(table.out.find("0 active, 2 total") != std::string::npos, table.out);
  BOOST_TEST(table.out.find("bytes: 200 to backends, 200 from backends") != std::string::npos, table.out);
  auto json = run({shimBinary(), "status", "--control", control, "--json"});
  BOOST_TEST(json.exitCode == 0);
  BOOST_TEST(at(portOf(parseJson(json.out), kPort), "connections", "total") == 2u);
  auto missing = run({shimBinary(), "status", "--control", dir + "/nothing.sock"});
  BOOST_TEST(missing.exitCode == 1);
  BOOST_TEST(missing.err.find("nothing.sock") != std::string::npos);
  // A flag without its value is named as that, not as an argument it does not know.
  auto bare = run({shimBinary(), "status", "--control"});
  BOOST_TEST(bare.exitCode == 2);
  BOOST_TEST(bare.err.find("--control needs a socket path") != std::string::npos, bare.err);
}

BOOST_AUTO_TEST_CASE(ShimStatusCommandPrintsNoEscapeSequenceAShimSends) {
  // connectable-shim status is root's way to read one shim; the shim runs beside untrusted
  // code, and what it answers must not set root's title, clipboard or rewrite its screen.
  const std::string evil = "port 6000 \x1b]0;owned\x07\x1b[2J\x1b]52;c;cm0K\x07 \xc2\x9b" "31m \xe2\x80\xae" "txt.exe\n";
  const std::string forged = dir + "/forged.sock";
  {
    ForgedControl control(forged, 200, evil, 2);
    for (const char* format : {"", "--json"}) {
      std::vector<std::string> args{shimBinary(), "status", "--control", forged};
      if (*format) args.push_back(format);
      auto r = run(args);
      BOOST_TEST(r.exitCode == 0, r.err);
      BOOST_TEST(r.out.find("owned") != std::string::npos, r.out);  // shown, made harmless
      BOOST_TEST(r.out.find("txt.exe\n") != std::string::npos, r.out);
      BOOST_TEST(!actsOnATerminal(r.out), r.out);
    }
  }
  ForgedControl refusing(dir + "/refusing.sock", 500, evil, 1);
  auto r = run({shimBinary(), "status", "--control", dir + "/refusing.sock"});
  BOOST_TEST(r.exitCode == 1);
  BOOST_TEST(r.err.find("answered 500: port 6000 ?]0;owned") != std::string::npos, r.err);
  BOOST_TEST(!actsOnATerminal(r.err), r.err);
}

BOOST_AUTO_TEST_CASE(StatusPortAnswersPlainTextInsideAndForwardsNothing) {
  echoTraffic(1, 10);
  auto r = run(ns.exec({"wget", "-qO-", "http://127.0.0.1:" + std::to_string(kStatusPort) + "/"}));
  BOOST_TEST(r.exitCode == 0, r.err);
  BOOST_TEST(r.out.find("connectable-shim") != std::string::npos, r.out);
  BOOST_TEST(r.out.find("port 6000 -> " + backend.address()) != std::string::npos, r.out);
  auto v6 = run(ns.exec({"wget", "-qO-", "http://[::1]:" + std::to_string(kStatusPort) + "/"}));
  BOOST_TEST(v6.exitCode == 0, v6.err);
  BOOST_TEST(v6.out.find("port 6000 -> " + backend.address()) != std::string::npos, v6.out);
  BOOST_TEST(backend.accepted() == 1);  // the status requests reached no backend
  // It exists only inside the namespace.
  int fd = connectTcp("127.0.0.1", kStatusPort, 500);
  BOOST_TEST(fd < 0);
  if (fd >= 0) close(fd);
}

BOOST_AUTO_TEST_CASE(TheControlSocketIsRootOnly) {
  struct stat st {};
  BOOST_REQUIRE(stat(control.c_str(), &st) == 0);
  BOOST_TEST((st.st_mode & 0777) == 0600u);
  BOOST_TEST(st.st_uid == 0u);
  auto asNobody = run({"setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "curl", "-sS", "-m", "3",
                       "--unix-socket", control, "http://shim/status"});
  BOOST_TEST(asNobody.exitCode != 0);
  BOOST_TEST(asNobody.out.empty());
  auto cli = run({"setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", shimBinary(), "status", "--control", control});
  BOOST_TEST(cli.exitCode == 1);
  BOOST_TEST(cli.err.find("Permission denied") != std::string::npos, cli.err);
  BOOST_TEST(curl("/status").exitCode == 0);  // root still gets in, though the shim runs as nobody
}

BOOST_AUTO_TEST_CASE(BadClientsNeverHurtTheShim) {
  // Garbage, an endless header, a client that says nothing, a half request: none may
  // crash the shim or hold up the data path.
  auto ask = [&](const std::string& request) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", control.c_str());
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      close(fd);
      return std::string("connect failed");
    }
    writeAll(fd, request.data(), request.size());
    std::string reply;
    readToEof(fd, &reply, 5000);
    close(fd);
    return reply.substr(0, reply.find("\r\n"));
  };
  BOOST_TEST(ask("NONSENSE\r\n\r\n") == "HTTP/1.0 400 Bad Request");
  BOOST_TEST(ask("GET /status HTTP/1.0\r\nX: " + std::string(10000, 'a')) == "HTTP/1.0 400 Bad Request");
  BOOST_TEST(ask("POST /status HTTP/1.0\r\n\r\n") == "HTTP/1.0 405 Method Not Allowed");
  BOOST_TEST(ask("GET /nowhere HTTP/1.0\r\n\r\n") == "HTTP/1.0 404 Not Found");
  // A client that connects and says nothing holds up no one.
  int idle = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", control.c_str());
  BOOST_REQUIRE(connect(idle, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  BOOST_TEST(ask("GET /status HTTP/1.0\r\n\r\n") == "HTTP/1.0 200 OK");
  BOOST_TEST(waitClosed(idle, 5000) >= 0);  // and is closed after the timeout
  close(idle);
  echoTraffic(1, 100);
  BOOST_TEST(shim->child().running());
}

BOOST_AUTO_TEST_SUITE_END()

namespace {

// A server on `ip`:`port` inside `ns`, as the container's own program would hold the port.
std::unique_ptr<TcpServer> holdPortInside(const TestNetns& ns, const std::string& ip, uint16_t port) {
  std::unique_ptr<TcpServer> server;
  ns.inside([&] { server = std::make_unique<TcpServer>(holdHandler(), ip, port); });
  return server;
}

}  // namespace

BOOST_AUTO_TEST_CASE(AStatusPortTakenInsideTheNamespaceLeavesTheDataPortsServing) {
  // The container's own program holds the port a connectable.status-port label asked for:
  // looking in is lost, the container's dependencies are not.
  signal(SIGPIPE, SIG_IGN);
  TestNetns ns;
  std::string dir = tempDir();
  std::string control = dir + "/shim.sock";
  TcpServer backend(echoHandler());
  auto taken = holdPortInside(ns, "127.0.0.1", kStatusPort);
  ShimProcess shim({"--netns", ns.path(), "--control", control, "--status-port", std::to_string(kStatusPort), "--connect",
                    std::to_string(kPort) + "=" + backend.address()});
  BOOST_TEST(shim.waitLog("status port not served"), shim.log());
  BOOST_TEST(shim.log().find("status port ready") == std::string::npos, shim.log());
  int fd = -1;
  ns.inside([&] { fd = connectTcp("127.0.0.1", kPort); });
  BOOST_REQUIRE(fd >= 0);
  BOOST_REQUIRE(writeAll(fd, "ping", 4));
  shutdown(fd, SHUT_WR);
  std::string got;
  BOOST_TEST(readToEof(fd, &got));
  BOOST_TEST(got == "ping");
  close(fd);
  auto status = parseJson(run({"curl", "-sS", "-m", "5", "--unix-socket", control, "http://shim/status"}).out);
  BOOST_TEST(status->isNull("status_port"));
  auto lastError = status->getObject("last_error");
  BOOST_REQUIRE(lastError);
  BOOST_TEST(lastError->getValue<std::string>("message").find("--status-port") != std::string::npos);
  BOOST_TEST(shim.child().running());
  run({"rm", "-rf", dir});
}

BOOST_AUTO_TEST_CASE(AStatusPortTakenOnlyOnIpv6IsServedOnIpv4AndSaysSo) {
  TestNetns ns;
  TcpServer backend(echoHandler());
  std::unique_ptr<TcpServer> taken;
  try {
    taken = holdPortInside(ns, "::1", kStatusPort);
  } catch (const std::runtime_error&) {
    return;  // no IPv6 loopback in this namespace: nothing to take
  }
  ShimProcess shim({"--netns", ns.path(), "--status-port", std::to_string(kStatusPort), "--connect",
                    std::to_string(kPort) + "=" + backend.address()});
  BOOST_TEST(shim.waitLog("status port served on 127.0.0.1 only"), shim.log());
  auto r = run(ns.exec({"wget", "-qO-", "http://127.0.0.1:" + std::to_string(kStatusPort) + "/"}));
  BOOST_TEST(r.out.find("connectable-shim") != std::string::npos, r.out + r.err);
}
