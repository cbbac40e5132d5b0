// The injector's /metrics: shims stand in as a `sleep` (supervised as usual) whose control
// socket the test serves itself, answering some time after each request.
#include "injector/metrics_endpoint.h"

#include <malloc.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/event_loop.h"
#include "tests/support/loop_runner.h"
#include "tests/support/process.h"
#include "tests/support/shim_farm.h"
#include "tests/support/tcp_peers.h"

using namespace connectable;
using namespace std::chrono_literals;
using connectable::testing::Child;
using connectable::testing::runUntil;
using connectable::testing::ShimFarm;
using connectable::testing::tempDir;

namespace {

const std::string kId = "5d0c2b3a41e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2";

// An HTTP/1.0 GET on 127.0.0.1:port; the whole answer, or what came before a failure.
std::string get(uint16_t port, const std::string& path) {
  std::string answer;
  int fd = connectable::testing::connectTcp("127.0.0.1", port);
  if (fd < 0) return answer;
  const std::string request = "GET " + path + " HTTP/1.0\r\n\r\n";
  if (connectable::testing::writeAll(fd, request.data(), request.size()))
    connectable::testing::readToEof(fd, &answer, 15000);  // a gather answers within 8 s
  close(fd);
  return answer;
}

// What the allocator has handed out and not been given back, in all threads. (Under ASan,
// whose allocator this does not see, 0.)
size_t heapInUse() {
  struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

// An injector whose shims are stand-ins (`sleep`, supervised as usual) for one container
// init, `app0`, `app1`...; the test serves their control sockets itself. Stops them at the end.
struct StandInShims {
  explicit StandInShims(int count) {
    {
      std::ofstream shim(dir + "/shim", std::ios::trunc);
      shim << "#!/bin/sh\nexec sleep 30\n";
    }
    BOOST_REQUIRE(chmod((dir + "/shim").c_str(), 0755) == 0);
    BOOST_REQUIRE(loop.init());
    InjectorOptions options;
    options.supervisor.shimPath = dir + "/shim";
    options.supervisor.stateDir = dir;
    injector = std::make_unique<Injector>(loop, *parseDockerHost("unix://" + dir + "/no-docker.sock"), options);
    BOOST_REQUIRE(injector->supervisor().init());
    ContainerRequest request = parseContainerLabels({{"connect.6000", "198.18.0.5:6379"}});
    for (int i = 0; i < count; ++i) {
      auto process = ProcessHandle::open(init.pid());
      BOOST_REQUIRE(process);
      auto netns = process->openNetns();
      BOOST_REQUIRE(netns);
      BOOST_REQUIRE(injector->supervisor().ensure(idOf(i), "app" + std::to_string(i), request, std::move(*process),
                                                  std::move(*netns)));
    }
    for (const auto& shim : injector->supervisor().list()) controls.push_back(shim.control);
    BOOST_REQUIRE_EQUAL(controls.size(), static_cast<size_t>(count));
  }
  ~StandInShims() {
    injector->supervisor().stopAll();
    BOOST_TEST(runUntil(loop, [&] { return injector->supervisor().allGone(); }, 5s));
  }
  static std::string idOf(int i) {
    std::string id = kId;
    id.replace(0, 2, (i < 10 ? "0" : "") + std::to_string(i));
    return id;
  }
  // GET /metrics from another thread while the loop runs; "" on failure.
  std::string scrape(uint16_t port) {
    std::string answer;
    std::atomic<bool> finished{false};
    std::thread client([&] {
      answer = get(port, "/metrics");
      finished = true;
    });
    runUntil(loop, [&] { return finished.load(); }, 15s);
    client.join();
    return answer;
  }

  std::string dir = tempDir();
  EventLoop loop;
  Child init = Child::spawn({"sleep", "30"});
  std::unique_ptr<Injector> injector;
  std::vector<std::string> controls;  // sorted like list(): by container id
};

}  // namespace

BOOST_AUTO_TEST_SUITE(InjectorMetrics)

BOOST_AUTO_TEST_CASE(ScrapesThatArriveTogetherAskEachShimOnce) {
  StandInShims f(1);
  const std::string app = "container=\"app0\",container_id=\"" + StandInShims::idOf(0) + "\"";
  // Answers 1.5 s after each connect: time enough for all the scrapes to arrive, even on a
  // loaded machine, while the first one is being gathered.
  ShimFarm control(f.controls, [](size_t) { return "connectable_uptime_seconds 7\n"; }, 1500ms);
  MetricsEndpoint metrics(f.loop, *f.injector, 2000ms);
  BOOST_REQUIRE(metrics.listen(*SocketAddress::parseIp("127.0.0.1", 0)));
  const uint16_t port = metrics.port();

  constexpr int kClients = 4;
  std::vector<std::string> answers(kClients);
  std::atomic<int> finished{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i)
    clients.emplace_back([&, i] {
      answers[i] = get(port, "/metrics");
      ++finished;
    });
  BOOST_TEST(runUntil(f.loop, [&] { return finished == kClients; }, 10s));
  for (auto& c : clients) c.join();

  BOOST_TEST(control.asked() == 1u, "the shim was asked " << control.asked() << " times for " << kClients << " scrapes");
  for (const auto& a : answers) {
    BOOST_TEST(a.find("connectable_uptime_seconds{" + app + "} 7") != std::string::npos, a);
    BOOST_TEST(a.find("connectable_shim_up{" + app + "} 1") != std::string::npos, a);
  }

  // A scrape after those is a new gather.
  BOOST_TEST(!f.scrape(port).empty());
  BOOST_TEST(control.asked() == 2u);
}

BOOST_AUTO_TEST_CASE(ScrapesThatArriveTogetherShareOneCopyOfTheAnswer) {
  // A host's answer can be tens of MiB; eight scrapers at once must not make it eight times that.
  StandInShims f(2);
  const std::string pad(2 << 20, 'x');
  ShimFarm control(f.controls, [&](size_t) { return "connectable_uptime_seconds{pad=\"" + pad + "\"} 7\n"; }, 1500ms);
  // The answers come 1.5 s after they are asked for, and 2 MiB each: a loaded machine may
  // take more than half a second to read them, and a shim cut off is not what this is about.
  MetricsEndpoint metrics(f.loop, *f.injector, 5000ms);
  BOOST_REQUIRE(metrics.listen(*SocketAddress::parseIp("127.0.0.1", 0)));
  const uint16_t port = metrics.port();

  // Scrapers that ask and do not read: what they are sent waits in the injector.
  const std::string request = "GET /metrics HTTP/1.0\r\n\r\n";
  std::vector<int> unread;
  for (int i = 0; i < 8; ++i) {
    int fd = connectable::testing::connectTcp("127.0.0.1", port);
    BOOST_REQUIRE(fd >= 0);
    BOOST_REQUIRE(connectable::testing::writeAll(fd, request.data(), request.size()));
    unread.push_back(fd);
  }
  const size_t before = heapInUse();
  // One more that reads: once it has its answer, the others have been given theirs.
  const size_t answer = f.scrape(port).size();
  const size_t held = heapInUse() - before;
  BOOST_TEST(answer > size_t{4} << 20);
  // The answer once, and room for the slack of a string grown piece by piece.
  BOOST_TEST(held < 3 * answer, "the injector holds " << (held >> 20) << " MiB for 9 scrapers of a "
                                                      << (answer >> 20) << " MiB answer");
  for (int fd : unread) close(fd);
}

BOOST_AUTO_TEST_CASE(ShimsThatDoNotAnswerShowAsDownEvenWhenTheyTakeSeveralRounds) {
  // 33 silent shims at 1100 ms each are two rounds of 32 (2.2 s): longer than HttpServer's
  // default 2 s, which used to close the scrape's connection before the gather answered
  // (in production: from 97 silent shims on, 4 rounds of 500 ms).
  StandInShims f(33);
  ShimFarm silent(f.controls, [](size_t) { return "connectable_uptime_seconds 7\n"; }, 10s);
  MetricsEndpoint metrics(f.loop, *f.injector, 1100ms);
  BOOST_REQUIRE(metrics.listen(*SocketAddress::parseIp("127.0.0.1", 0)));
  std::string answer = f.scrape(metrics.port());
  BOOST_TEST(answer.find("connectable_shim_up{container=\"app0\",container_id=\"" + StandInShims::idOf(0) + "\"} 0") !=
                 std::string::npos,
             "no answer at all: '" << answer << "'");
}

BOOST_AUTO_TEST_CASE(ClientsThatHoldEverySlotWithoutAskingAreClosedSoonAndTheScrapeGoesThrough) {
  // A scrape may take up to 10 s to answer, but a client that sends no request has 2 s:
  // 32 idle connections from anyone who reaches --metrics-listen, renewed as they close,
  // would otherwise keep every scrape waiting past Prometheus's own timeout.
  StandInShims f(1);
  ShimFarm shims(f.controls, [](size_t) { return "connectable_uptime_seconds 7\n"; }, 20ms);
  MetricsEndpoint metrics(f.loop, *f.injector);
  BOOST_REQUIRE(metrics.listen(*SocketAddress::parseIp("127.0.0.1", 0)));
  std::vector<int> idle;
  std::atomic<bool> connected{false};
  std::thread idler([&] {  // while the loop accepts them: the backlog takes only 16
    for (int i = 0; i < 32; ++i) idle.push_back(connectable::testing::connectTcp("127.0.0.1", metrics.port()));
    connected = true;
  });
  BOOST_TEST(runUntil(f.loop, [&] { return connected.load(); }, 5s));
  idler.join();
  runUntil(f.loop, [] { return false; }, 100ms);  // every one of them accepted
  const auto asked = std::chrono::steady_clock::now();
  std::string answer = f.scrape(metrics.port());
  const auto took = std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - asked).count();
  BOOST_TEST(answer.find("connectable_shim_up{container=\"app0\"") != std::string::npos, "no answer: '" << answer << "'");
  BOOST_TEST(took < 5000, "the scrape waited " << took << " ms behind clients that asked nothing");
  for (int fd : idle) close(fd);
}

BOOST_AUTO_TEST_CASE(AShimAnsweringWhatPrometheusWouldRefuseSpoilsNoOtherContainersMetrics) {
  // A shim runs beside untrusted code and may be that code's: one line Prometheus cannot
  // read makes it refuse the whole scrape, every container's.
  StandInShims f(2);
  ShimFarm control(f.controls, [](size_t i) -> std::string {
    if (i == 0) return "connectable_uptime_seconds 7\n";
    return "connectable_uptime_seconds{container=\"app0\"} 9\nbroken{ 1\n"
           "# TYPE connectable_shim_up counter\nconnectable_shim_up 1\n";
  }, 0ms);
  MetricsEndpoint metrics(f.loop, *f.injector, 2000ms);
  BOOST_REQUIRE(metrics.listen(*SocketAddress::parseIp("127.0.0.1", 0)));
  const std::string answer = f.scrape(metrics.port());
  const std::string app0 = "container=\"app0\",container_id=\"" + StandInShims::idOf(0) + "\"";
  const std::string app1 = "container=\"app1\",container_id=\"" + StandInShims::idOf(1) + "\"";
  BOOST_TEST(answer.find("connectable_uptime_seconds{" + app0 + "} 7\n") != std::string::npos, answer);
  BOOST_TEST(answer.find("connectable_uptime_seconds{" + app1 + ",exported_container=\"app0\"} 9\n") != std::string::npos,
             answer);
  BOOST_TEST(answer.find("broken") == std::string::npos, answer);
  BOOST_TEST(answer.find("# TYPE connectable_shim_up gauge\n") != std::string::npos, answer);
  BOOST_TEST(answer.find("counter\nconnectable_shim_up") == std::string::npos, answer);
  // Once, the injector's own: the shim's copy of it would be the same series twice.
  const std::string up1 = "connectable_shim_up{" + app1 + "} 1\n";
  const size_t first = answer.find(up1);
  BOOST_TEST((first != std::string::npos && answer.find(up1, first + 1) == std::string::npos), answer);
}

BOOST_AUTO_TEST_CASE(AShimWaitingForItsNextTryIsNotCountedAsRunning) {
  // The second shim dies, and its next try finds a port taken inside its container (exit 3):
  // it waits 10 s for the next one. Meanwhile nothing runs for that container.
  StandInShims f(2);
  ShimFarm control(f.controls, [](size_t) { return "connectable_uptime_seconds 7\n"; }, 0ms);
  MetricsEndpoint metrics(f.loop, *f.injector, 500ms);
  BOOST_REQUIRE(metrics.listen(*SocketAddress::parseIp("127.0.0.1", 0)));
  // Both stand-ins past their script: a shell that had yet to read it when it is replaced
  // below would run the new one and exit 3 too (seen on a busy machine).
  BOOST_REQUIRE(runUntil(f.loop, [&] {
    for (const auto& shim : f.injector->supervisor().list()) {
      std::string comm;
      std::getline(std::ifstream("/proc/" + std::to_string(shim.shimPid) + "/comm"), comm);
      if (comm != "sleep") return false;
    }
    return true;
  }, 5s));
  {
    std::ofstream shim(f.dir + "/shim.new", std::ios::trunc);
    shim << "#!/bin/sh\nexit 3\n";
  }
  BOOST_REQUIRE(chmod((f.dir + "/shim.new").c_str(), 0755) == 0);
  BOOST_REQUIRE(std::rename((f.dir + "/shim.new").c_str(), (f.dir + "/shim").c_str()) == 0);
  const pid_t second = f.injector->supervisor().list()[1].shimPid;
  BOOST_REQUIRE(kill(second, SIGKILL) == 0);
  BOOST_REQUIRE(runUntil(f.loop, [&] {
    auto shims = f.injector->supervisor().list();
    return shims[1].shimPid == 0 && shims[1].notRunning.find("already taken") != std::string::npos;
  }, 5s));

  std::string answer = f.scrape(metrics.port());
  BOOST_TEST(answer.find("\nconnectable_injector_shims_running 1\n") != std::string::npos, answer);
  BOOST_TEST(answer.find("\nconnectable_injector_shims_waiting 1\n") != std::string::npos, answer);
  BOOST_TEST(answer.find("connectable_shim_up{container=\"app1\",container_id=\"" + StandInShims::idOf(1) + "\"} 0") !=
                 std::string::npos, answer);
  BOOST_TEST(answer.find("connectable_shim_up{container=\"app0\",container_id=\"" + StandInShims::idOf(0) + "\"} 1") !=
                 std::string::npos, answer);
}

BOOST_AUTO_TEST_SUITE_END()
