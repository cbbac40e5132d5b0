// Inspecting injected containers against a real Docker Engine: `connectable status` (table
// and JSON) after traffic the backend itself counted, the status port inside the container
// through `docker exec ... wget`, the injector's /metrics checked by promtool and scraped
// by a real Prometheus server, and control sockets closed to non-root users.
#define BOOST_TEST_MODULE inspecting injected containers
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <Poco/JSON/Parser.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "tests/support/docker_fixture.h"
#include "tests/support/process.h"
#include "tests/support/tcp_peers.h"

using namespace connectable::testing;
using namespace std::chrono_literals;

namespace {

using Json = Poco::JSON::Object::Ptr;

std::string binary(const std::string& name) { return std::string(CONNECTABLE_BIN_DIR) + "/" + name; }

const std::string kBody = "counted reply\n";
const std::string kReply = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                           std::to_string(kBody.size()) + "\r\n\r\n" + kBody;

// An HTTP backend that counts every byte it receives, as the ground truth for the shim's counters.
struct CountingBackend {
  std::atomic<uint64_t> received{0};
  std::atomic<int> served{0};
  TcpServer server{[this](int fd) {
    std::string request;
    char buf[4096];
    while (request.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      request.append(buf, static_cast<size_t>(n));
    }
    writeAll(fd, kReply.data(), kReply.size());
    shutdown(fd, SHUT_WR);
    std::string rest;
    readToEof(fd, &rest, 5000);
    received += request.size() + rest.size();
    ++served;
  }};
};

class InjectorProcess {
 public:
  InjectorProcess(const std::string& stateDir, uint16_t metricsPort) : stateDir_(stateDir) {
    child_ = Child::spawn({binary("connectable"), "--state-dir", stateDir, "--metrics-listen",
                           "127.0.0.1:" + std::to_string(metricsPort)}, stateDir + "/injector.log");
    if (!waitFor([&] { return child_.log().find("reconciled") != std::string::npos; }, 60s))
      throw std::runtime_error("injector did not start:\n" + child_.log());
  }
  bool waitShimReady(const std::string& id) {
    return waitFor([&] { return access((stateDir_ + "/shims/" + id + ".sock").c_str(), F_OK) == 0 &&
                                status({id}).exitCode == 0; }, 15s);
  }
  RunResult status(std::vector<std::string> args) {
    std::vector<std::string> argv = {binary("connectable"), "status", "--state-dir", stateDir_};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
  }
  std::string log() const { return child_.log(); }

 private:
  std::string stateDir_;
  Child child_;
};

Json parseObject(const std::string& text) {
  Poco::JSON::Parser parser;
  return parser.parse(text).extract<Json>();
}

struct Fixture {
  Fixture() : state(tempDir()), metricsPort(metricsReservation.port()) {
    signal(SIGPIPE, SIG_IGN);
    image = docker.busyboxImage();
  }
  ~Fixture() { run({"rm", "-rf", state}); }
  std::string name(const std::string& what) { return "connectable-test-" + std::to_string(getpid()) + "-" + what; }

  DockerResources docker;
  std::string image;
  std::string state;
  // Held for the whole test, so that nothing else is given the port before the injector
  // binds it (it binds with SO_REUSEADDR, as a ReservedPort allows).
  ReservedPort metricsReservation;
  uint16_t metricsPort;
  CountingBackend backend;
};

// A Prometheus server of the test's own, scraping the injector every second.
class PrometheusServer {
 public:
  PrometheusServer(const std::string& dir, uint16_t target) : dir_(dir), port_(reservation_.port()) {
    std::ofstream(dir + "/prometheus.yml") << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                                              "scrape_configs:\n  - job_name: connectable\n    static_configs:\n"
                                              "      - targets: ['127.0.0.1:" << target << "']\n";
    child_ = Child::spawn({"prometheus", "--config.file=" + dir + "/prometheus.yml", "--storage.tsdb.path=" + dir + "/data",
                           "--web.listen-address=127.0.0.1:" + std::to_string(port_)}, dir + "/prometheus.log");
  }
  ~PrometheusServer() {
    child_.signal(SIGTERM);
    if (child_.wait(10s) < 0) child_.kill();
  }
  // The value of the first series `query` returns, or "" when none (yet).
  std::string query(const std::string& q) {
    auto r = run({"curl", "-sS", "-m", "3", "http://127.0.0.1:" + std::to_string(port_) + "/api/v1/query",
                  "--data-urlencode", "query=" + q});
    if (r.exitCode != 0) return "";
    try {
      auto result = parseObject(r.out)->getObject("data")->getArray("result");
      if (result->size() == 0) return "";
      return result->getObject(0)->getArray("value")->getElement<std::string>(1);
    } catch (const std::exception&) {
      return "";
    }
  }
  std::string log() const { return child_.log(); }

 private:
  std::string dir_;
  ReservedPort reservation_;  // Go's listeners set SO_REUSEADDR too
  uint16_t port_;
  Child child_;
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(Inspecting, Fixture)

BOOST_AUTO_TEST_CASE(StatusTableAndJsonMatchTheTrafficTheBackendSaw) {
  InjectorProcess injector(state, metricsPort);
  std::string app = name("status");
  std::string id = docker.runDetached({"--name", app, "--network", "none", "-l",
                                       "connect.8080=" + backend.server.address(), image, "sleep", "120"});
  BOOST_REQUIRE(!id.empty());
  BOOST_REQUIRE_MESSAGE(injector.waitShimReady(id), injector.log());
  for (int i = 0; i < 3; ++i) {
    auto r = run({kDocker, "exec", app, "wget", "-qO-", "http://127.0.0.1:8080/"}, 20s);
    BOOST_REQUIRE_MESSAGE(r.out == kBody, r.err);
  }
  BOOST_REQUIRE(waitFor([&] { return backend.served == 3; }, 5s));
  const uint64_t sent = backend.received, replied = 3 * kReply.size();

  Json status;
  BOOST_REQUIRE(waitFor([&] {
    auto json = injector.status({"--json", app});
    if (json.exitCode != 0) return false;
    Poco::JSON::Parser parser;
    auto rows = parser.parse(json.out).extract<Poco::JSON::Array::Ptr>();
    if (rows->size() != 1 || rows->isNull(0)) return false;
    status = rows->getObject(0);
    auto port = status->getObject("shim")->getArray("ports")->getObject(0);
    return port->getObject("connections")->getValue<uint64_t>("active") == 0 &&
           port->getObject("bytes")->getValue<uint64_t>("to_backends") == sent;
  }, 5s));
  BOOST_TEST(status->getValue<std::string>("container_name") == app);
  BOOST_TEST(status->getValue<std::string>("container_id") == id);
  BOOST_TEST(status->getValue<int>("shim_pid") > 0);
  auto port = status->getObject("shim")->getArray("ports")->getObject(0);
  BOOST_TEST(port->getValue<int>("port") == 8080);
  BOOST_TEST(port->getValue<std::string>("target") == backend.server.address());
  BOOST_TEST(port->getObject("connections")->getValue<uint64_t>("total") == 3u);
  BOOST_TEST(port->getObject("bytes")->getValue<uint64_t>("to_backends") == sent);
  BOOST_TEST(port->getObject("bytes")->getValue<uint64_t>("from_backends") == replied);
  auto b = port->getArray("backends")->getObject(0);
  BOOST_TEST(b->getValue<std::string>("state") == "up");
  BOOST_TEST(b->getObject("connections")->getValue<uint64_t>("total") == 3u);

  auto table = injector.status({});
  BOOST_TEST(table.exitCode == 0, table.err);
  std::regex row(app + "\\s+" + id.substr(0, 12) + "\\s+8080\\s+" + backend.server.address() + "\\s+" +
                 backend.server.address() + " up\\s+0/3\\s+" + std::to_string(sent) + "/" + std::to_string(replied) +
                 "\\s+-\\s+" + std::to_string(status->getValue<int>("shim_pid")) + "\\s+0\\s+\\d+s");
  BOOST_TEST(std::regex_search(table.out, row), table.out);
  BOOST_TEST(table.out.find("CONTAINER") == 0u);
  BOOST_TEST(injector.status({"no-such-container"}).exitCode == 1);
}

BOOST_AUTO_TEST_CASE(TheStatusPortAnswersInsideTheContainer) {
  InjectorProcess injector(state, metricsPort);
  std::string app = name("statusport");
  std::string id = docker.runDetached({"--name", app, "--network", "none", "-l", "connect.8080=" + backend.server.address(),
                                       "-l", "connectable.status-port=8099", image, "sleep", "120"});
  BOOST_REQUIRE(injector.waitShimReady(id));
  auto r = run({kDocker, "exec", app, "wget", "-qO-", "127.0.0.1:8099"}, 20s);
  BOOST_TEST(r.exitCode == 0, r.err);
  BOOST_TEST(r.out.find("port 8080 -> " + backend.server.address()) != std::string::npos, r.out);
  BOOST_TEST(r.out.find(app + " (" + id.substr(0, 12) + ")") != std::string::npos, r.out);
  BOOST_TEST(backend.served == 0);  // nothing was forwarded
}

BOOST_AUTO_TEST_CASE(PrometheusScrapesTheInjectorAndFindsEveryShimsSeries) {
  InjectorProcess injector(state, metricsPort);
  std::string app = name("scraped");
  std::string id = docker.runDetached({"--name", app, "--network", "none", "-l", "connect.8080=" + backend.server.address(),
                                       image, "sleep", "120"});
  BOOST_REQUIRE(injector.waitShimReady(id));
  for (int i = 0; i < 2; ++i) BOOST_REQUIRE(run({kDocker, "exec", app, "wget", "-qO-", "http://127.0.0.1:8080/"}, 20s).out == kBody);
  BOOST_REQUIRE(waitFor([&] { return backend.served == 2; }, 5s));

  auto metrics = run({"curl", "-sS", "-m", "5", "http://127.0.0.1:" + std::to_string(metricsPort) + "/metrics"});
  BOOST_REQUIRE(metrics.exitCode == 0);
  auto checked = run({"promtool", "check", "metrics"}, 30s, metrics.out);
  BOOST_TEST(checked.exitCode == 0, checked.out << checked.err);
  BOOST_TEST(metrics.out.find("connectable_shim_up{container=\"" + app + "\",container_id=\"" + id + "\"} 1") !=
             std::string::npos, metrics.out);
  // At least ours: on a shared daemon, other labelled containers are injected too.
  BOOST_TEST(std::regex_search(metrics.out, std::regex("\nconnectable_injector_injection_latency_seconds_count [1-9]")));

  std::string promDir = tempDir();
  {
    PrometheusServer prometheus(promDir, metricsPort);
    std::string series = "connectable_connections_total{container=\"" + app + "\",port=\"8080\"}";
    bool found = waitFor([&] { return prometheus.query(series) == "2"; }, 30s);
    BOOST_TEST(found, "Prometheus did not return " << series << " = 2; its log:\n" << prometheus.log());
    // Each series as soon as a scrape has it: a scrape that failed (the injector's loop busy
    // with a slow Docker answer) marks series stale for a moment.
    auto eventually = [&](const std::string& q, const std::string& want) {
      std::string got;
      bool ok = waitFor([&] { got = prometheus.query(q); return want.empty() ? !got.empty() : got == want; }, 15s);
      BOOST_TEST(ok, q << " = '" << got << "', wanted '" << want << "'");
    };
    eventually("connectable_bytes_total{container=\"" + app + "\",direction=\"from_backends\"}", std::to_string(2 * kReply.size()));
    eventually("connectable_backend_up{container_id=\"" + id + "\"}", "1");
    eventually("connectable_injector_shims_running", "");
    eventually("connectable_injector_injection_latency_seconds_count >= 1", "");
    BOOST_TEST(prometheus.query("connectable_dns_queries_total{container=\"" + app + "\"}") == "");  // literal target: no resolver
  }
  run({"rm", "-rf", promDir});
}

BOOST_AUTO_TEST_CASE(ControlSocketsRefuseNonRootUsers) {
  InjectorProcess injector(state, metricsPort);
  std::string app = name("rootonly");
  std::string id = docker.runDetached({"--name", app, "--network", "none", "-l", "connect.8080=" + backend.server.address(),
                                       image, "sleep", "120"});
  BOOST_REQUIRE(injector.waitShimReady(id));
  std::string sock = state + "/shims/" + id + ".sock";
  auto asNobody = run({"setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", binary("connectable"), "status",
                       "--state-dir", state});
  BOOST_TEST(asNobody.exitCode == 1);
  BOOST_TEST(asNobody.err.find("Permission denied") != std::string::npos, asNobody.err);
  auto curl = run({"setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "curl", "-sS", "-m", "3",
                   "--unix-socket", sock, "http://shim/status"});
  BOOST_TEST(curl.exitCode != 0);
  BOOST_TEST(run({"curl", "-sS", "-m", "3", "--unix-socket", sock, "http://shim/status"}).exitCode == 0);
}

BOOST_AUTO_TEST_CASE(AContainerWhosePortIsTakenShowsItsShimAsNotRunningAndIsRetriedQuietly) {
  // As a user found it: the container's own httpd holds 127.0.0.1:8080, and the container
  // sharing its network asks for connect.8080. Until the port frees, no shim runs: status
  // and /metrics say so and why, and the log says it once, not at every 10 s try.
  InjectorProcess injector(state, metricsPort);
  std::string holder = name("holder"), app = name("taken");
  BOOST_REQUIRE(!docker.runDetached({"--name", holder, "--network", "none", image, "sh", "-c",
                                     "httpd -f -p 127.0.0.1:8080 & echo $! > /tmp/httpd.pid; exec sleep 120"})
                     .empty());
  BOOST_REQUIRE(waitFor([&] {
    return run({kDocker, "exec", holder, "sh", "-c", "netstat -tln | grep -q 127.0.0.1:8080"}).exitCode == 0;
  }, 10s));
  std::string id = docker.runDetached({"--name", app, "--network", "container:" + holder, "-l",
                                       "connect.8080=198.18.120.11:80", image, "sleep", "120"});
  BOOST_REQUIRE(!id.empty());
  BOOST_REQUIRE_MESSAGE(waitFor([&] { return injector.log().find("a port is already taken") != std::string::npos; }, 15s),
                        injector.log());
  std::this_thread::sleep_for(22s);  // two tries, 10 s apart

  auto table = injector.status({app});
  BOOST_TEST(table.exitCode == 0, table.err);
  BOOST_TEST(std::regex_search(table.out, std::regex(app + "\\s+" + id.substr(0, 12) + "(\\s+-){7}\\s+0\\s+-\\n")),
             table.out);
  BOOST_TEST(table.out.find("shim not running: a port of 8080 is already taken inside the container; next try in ") !=
                 std::string::npos, table.out);
  BOOST_TEST(table.out.find("No such file") == std::string::npos, table.out);
  auto json = injector.status({"--json", app});
  auto row = Poco::JSON::Parser().parse(json.out).extract<Poco::JSON::Array::Ptr>()->getObject(0);
  BOOST_TEST(row->getValue<int>("shim_pid") == 0);
  BOOST_TEST(row->getValue<std::string>("error").find("a port of 8080 is already taken") != std::string::npos, json.out);

  auto metrics = run({"curl", "-sS", "-m", "5", "http://127.0.0.1:" + std::to_string(metricsPort) + "/metrics"});
  BOOST_TEST(metrics.out.find("connectable_shim_up{container=\"" + app + "\",container_id=\"" + id + "\"} 0") !=
                 std::string::npos, metrics.out);
  BOOST_TEST(std::regex_search(metrics.out, std::regex("\nconnectable_injector_shims_waiting [1-9]")), metrics.out);

  std::string log = injector.log();
  size_t started = 0, inUse = 0;
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    if (line.find(app) == std::string::npos) continue;
    started += line.find("shim started") != std::string::npos;
    inUse += line.find("port 8080 is already in use") != std::string::npos;
  }
  BOOST_TEST(started == 1u, log);
  BOOST_TEST(inUse == 1u, log);

  // The port frees: the next try starts a shim that serves, said in one line.
  BOOST_REQUIRE(run({kDocker, "exec", holder, "sh", "-c", "kill $(cat /tmp/httpd.pid)"}).exitCode == 0);
  BOOST_TEST(waitFor([&] { return injector.log().find("the taken port is free now; the shim serves") != std::string::npos; },
                     15s), injector.log());
  BOOST_TEST(injector.waitShimReady(id));
  auto after = injector.status({"--json", app});
  auto served = Poco::JSON::Parser().parse(after.out).extract<Poco::JSON::Array::Ptr>()->getObject(0);
  BOOST_TEST(served->getValue<int>("shim_pid") > 0);
  BOOST_TEST(served->getValue<int>("restarts") == 0, "tries while the port was taken are no restarts");
}

BOOST_AUTO_TEST_SUITE_END()
