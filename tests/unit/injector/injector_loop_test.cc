// The injector on its event loop: against a fake Docker daemon on a UNIX socket, and with a
// stand-in shim (a shell script) and a child `sleep` as a container's init.
#include "injector/injector.h"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/event_loop.h"
#include "injector/problem_records.h"
#include "injector/process_handle.h"
#include "tests/support/captured_output.h"
#include "tests/support/fake_container_init.h"
#include "tests/support/process.h"
#include "tests/support/loop_runner.h"
#include "tests/support/tcp_peers.h"

using namespace connectable;
using connectable::testing::CapturedOutput;
using namespace std::chrono_literals;
using connectable::testing::runUntil;
using connectable::testing::Child;
using connectable::testing::FakeContainerInit;
using connectable::testing::tempDir;

namespace {

const std::string kId = "8f3c11155b1b2f0e6a7d4c3b2a19080706050403020100ffeeddccbbaa998877";

void writeShim(const std::string& path, const std::string& body) {
  {
    std::ofstream out(path, std::ios::trunc);
    out << "#!/bin/sh\n" << body;
  }
  BOOST_REQUIRE(chmod(path.c_str(), 0755) == 0);
}

// `"time":...,"timeNano":...` of an event that happens after the injector asked for its
// stream, as a live one does: a minute past now, plus `nanos`. One stamped before the
// stream was asked for is a replay, whose create the injector does not time.
std::string liveTime(int64_t nanos = 0) {
  static const int64_t base =
      std::chrono::duration_cast<std::chrono::nanoseconds>((std::chrono::system_clock::now() + 60s).time_since_epoch()).count();
  const int64_t t = base + nanos;
  return R"("time":)" + std::to_string(t / 1'000'000'000) + R"(,"timeNano":)" + std::to_string(t);
}

std::string jsonReply(int status, const std::string& body) {
  return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: application/json\r\n" +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}
const std::string kStreamHeaders =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";

// The Engine API as the injector uses it: GET /version, the event stream (the first
// `streamsToEnd` ended at once, the others held open), and GET /containers/json answered
// by `list`, which is told how many lists came before. Keep-alive; a thread per connection.
class FakeDocker {
 public:
  using ListReply = std::function<std::string(int previous)>;
  FakeDocker(const std::string& dir, ListReply list) : path_(dir + "/docker.sock"), list_(std::move(list)) {
    fd_ = connectable::testing::listenUnix(path_);
    BOOST_REQUIRE(fd_ >= 0);
    acceptor_ = std::thread([this] { acceptAll(); });
  }
  ~FakeDocker() {
    done_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    acceptor_.join();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (int c : connections_) ::shutdown(c, SHUT_RDWR);
    }
    for (auto& t : threads_) t.join();
    for (int c : connections_) ::close(c);
    ::close(fd_);
  }
  DockerEndpoint endpoint() const { return *parseDockerHost("unix://" + path_); }
  int lists() const { return lists_; }
  int inspects() const { return inspects_; }
  int allLists() const { return allLists_; }
  // GET /containers/json?all=1 (stopped containers too), told how many came before. Set
  // before start; by default a daemon that knows no container.
  ListReply allListReply = [](int) { return jsonReply(200, "[]"); };
  // GET /containers/{id}/json, told how many inspects came before. Set before start.
  ListReply inspectReply = [](int) { return jsonReply(404, R"({"message":"no such container"})"); };
  // GET /info: the daemon's ID. Set before start; by default a daemon that has no /info.
  std::string infoReply = jsonReply(404, R"({"message":"not faked"})");
  std::chrono::milliseconds infoDelay{0};  // a daemon slow to say who it is
  std::string firstInfoReply;              // when set, the answer to the first /info only
  std::atomic<int> infos{0};
  std::vector<std::string> eventPaths() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return eventPaths_;
  }
  std::atomic<int> streamsToEnd{0};
  // When set, every GET /events is refused with it, as a proxy in front of the daemon may.
  std::string eventsRefusal;
  // The first lists are answered a byte every 50 ms, for ever: no read ever times out.
  std::atomic<int> listsToTrickle{0};
  // Sent on the open event stream when the next list is asked for, before it is answered.
  std::string eventsDuringList;
  std::string endedStreamEvents;  // sent (chunked, one per line) on a stream before it ends
  // Sends `lines` (events, one a line) on the event stream held open, once there is one.
  void sendEvents(const std::string& lines) { sendOnStream(lines); }

 private:
  void acceptAll() {
    while (!done_) {
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      std::lock_guard<std::mutex> lock(mutex_);
      connections_.push_back(c);
      threads_.emplace_back([this, c] { serve(c); });
    }
  }
  void serve(int c) {
    std::string pending;
    char buf[4096];
    while (!done_) {
      size_t end = pending.find("\r\n\r\n");
      if (end == std::string::npos) {
        ssize_t n = ::read(c, buf, sizeof buf);
        if (n <= 0) return;
        pending.append(buf, static_cast<size_t>(n));
        continue;
      }
      std::string line = pending.substr(0, pending.find("\r\n"));
      pending.erase(0, end + 4);
      std::string path = line.substr(4, line.rfind(' ') - 4);  // "GET <path> HTTP/1.1"
      if (path == "/version") {
        write(c, jsonReply(200, R"({"Version":"20.10.24","ApiVersion":"1.41","MinAPIVersion":"1.12"})"));
      } else if (path.find("/events?") != std::string::npos) {
        {
          std::lock_guard<std::mutex> lock(mutex_);
          eventPaths_.push_back(path);
        }
        if (!eventsRefusal.empty()) {
          write(c, eventsRefusal);
          continue;
        }
        const bool ends = streamsToEnd-- > 0;
        if (!ends) {  // before the headers: the injector lists once it has them
          std::lock_guard<std::mutex> lock(mutex_);
          openStream_ = c;
        }
        write(c, kStreamHeaders);
        if (ends) {
          if (!endedStreamEvents.empty()) {
            char size[24];
            std::snprintf(size, sizeof size, "%zx\r\n", endedStreamEvents.size());
            write(c, size + endedStreamEvents + "\r\n");
          }
          write(c, "0\r\n\r\n");
          continue;
        }
        while (!done_) {  // until the reader goes away
          pollfd p{c, POLLIN, 0};
          if (::poll(&p, 1, 20) > 0) return;
        }
      } else if (path.size() >= 5 && path.compare(path.size() - 5, 5, "/info") == 0) {
        std::this_thread::sleep_for(infoDelay);
        write(c, infos++ == 0 && !firstInfoReply.empty() ? firstInfoReply : infoReply);
      } else if (path.find("/containers/json?all=1") != std::string::npos) {
        write(c, allListReply(allLists_++));
      } else if (path.find("/containers/json") != std::string::npos) {
        if (!eventsDuringList.empty()) {
          sendOnStream(eventsDuringList);
          eventsDuringList.clear();
          std::this_thread::sleep_for(std::chrono::milliseconds(300));  // for the injector to read it
        }
        if (listsToTrickle-- > 0) {
          ++lists_;
          trickle(c);
          return;
        }
        write(c, list_(lists_++));
      } else if (path.find("/containers/") != std::string::npos) {
        write(c, inspectReply(inspects_++));
      } else {
        write(c, jsonReply(404, R"({"message":"not faked"})"));
      }
    }
  }
  void sendOnStream(const std::string& lines) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (openStream_ < 0) return;
    char size[24];
    std::snprintf(size, sizeof size, "%zx\r\n", lines.size());
    write(openStream_, size + lines + "\r\n");
  }
  void trickle(int c) {
    write(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n[");
    while (!done_) {
      pollfd p{c, POLLIN, 0};
      if (::poll(&p, 1, 50) > 0) return;  // the client cut it, or went away
      if (::send(c, " ", 1, MSG_NOSIGNAL) != 1) return;
    }
  }
  static void write(int c, const std::string& data) {
    [[maybe_unused]] ssize_t n = ::send(c, data.data(), data.size(), MSG_NOSIGNAL);
  }

  std::string path_;
  ListReply list_;
  int fd_ = -1;
  std::atomic<bool> done_{false};
  std::atomic<int> lists_{0};
  std::atomic<int> inspects_{0};
  std::atomic<int> allLists_{0};
  std::thread acceptor_;
  mutable std::mutex mutex_;
  std::vector<std::string> eventPaths_;
  std::vector<int> connections_;
  int openStream_ = -1;  // the event stream held open
  std::vector<std::thread> threads_;
};

std::string failingFirst(int previous) {
  return previous == 0 ? jsonReply(500, R"({"message":"daemon busy"})") : jsonReply(200, "[]");
}

// GET /containers/{id}/json of container `id`, running as `name` with `pid` as its init and
// `labels` (JSON members) on it.
std::string runningInspect(const std::string& id, const std::string& name, pid_t pid,
                           const std::string& labels = R"("connect.6000":"198.18.0.5:6379")") {
  return jsonReply(200, R"({"Id":")" + id + R"(","Name":"/)" + name + R"(","State":{"Running":true,"Pid":)" +
                            std::to_string(pid) + R"(},"Config":{"Labels":{)" + labels +
                            R"(}},"HostConfig":{"NetworkMode":"bridge"}})");
}

// One line of the event stream about a container; `attributes` as JSON members.
std::string containerEvent(const std::string& action, const std::string& id, const std::string& attributes) {
  return R"({"Type":"container","Action":")" + action + R"(","Actor":{"ID":")" + id + R"(","Attributes":{)" + attributes +
         R"(}},)" + liveTime() + R"(})" "\n";
}
const std::string kAppLabels = R"("name":"app","connect.6000":"198.18.0.5:6379")";

// What SIGTERM does: the injector stops, and says it is done within 5 s.
void shutDown(EventLoop& loop, Injector& injector) {
  int done = 0;
  injector.shutdown([&] { ++done; });
  BOOST_TEST(runUntil(loop, [&] { return done > 0; }, 5s));
}

// The record a previous injector left in `dir` for `shim` (a `sleep 30`), serving kId as
// "app" with `init` as its container's init: adopt() takes the shim over while both run.
void writeShimRecord(const std::string& dir, const Child& shim, const Child& init,
                     const std::vector<std::string>& args = {"30"}) {
  std::string argsJson;
  for (const auto& a : args) argsJson += (argsJson.empty() ? "\"" : ",\"") + a + "\"";
  struct stat netns {};
  BOOST_REQUIRE(stat(("/proc/" + std::to_string(init.pid()) + "/ns/net").c_str(), &netns) == 0);
  BOOST_REQUIRE(mkdir((dir + "/shims").c_str(), 0700) == 0);
  std::ofstream(dir + "/shims/" + kId + ".json")
      << R"({"container_id":")" << kId << R"(","container_name":"app","shim_pid":)" << shim.pid()
      << R"(,"shim_start_time":)" << *processStartTime(shim.pid()) << R"(,"init_pid":)" << init.pid()
      << R"(,"init_start_time":)" << *processStartTime(init.pid()) << R"(,"netns_inode":)" << netns.st_ino
      << R"(,"ports":"6000","restarts":0,"args":[)" << argsJson << "]}";
}

InjectorOptions optionsIn(const std::string& dir) {
  InjectorOptions options;
  options.supervisor.shimPath = "/bin/false";  // no container here asks for a shim
  options.supervisor.stateDir = dir;
  return options;
}

// An injector watching a fake daemon that runs no container yet, once it has listed them;
// shut down at the end of the case.
struct EmptyDaemon {
  std::string dir = tempDir();
  FakeDocker docker{dir, [](int) { return jsonReply(200, "[]"); }};
  EventLoop loop;
  std::unique_ptr<Injector> injector;

  EmptyDaemon() { BOOST_REQUIRE(loop.init()); }
  ~EmptyDaemon() {
    if (injector) shutDown(loop, *injector);
  }
  Injector& start(const std::function<void(InjectorOptions&)>& adjust = {}) {
    InjectorOptions options = optionsIn(dir);
    if (adjust) adjust(options);
    injector = std::make_unique<Injector>(loop, docker.endpoint(), options);
    BOOST_REQUIRE(injector->start());
    BOOST_REQUIRE(runUntil(loop, [&] { return docker.lists() >= 1; }, 5s));
    return *injector;
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(InjectorReconcile)

BOOST_AUTO_TEST_CASE(AFailedContainerListIsRetriedWhileTheEventStreamStaysUp) {
  // Containers running at start-up would otherwise get no shim until the stream drops.
  std::string dir = tempDir();
  FakeDocker docker(dir, failingFirst);
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  Injector injector(loop, docker.endpoint(), optionsIn(dir));
  BOOST_REQUIRE(injector.start());
  BOOST_TEST(runUntil(loop, [&] { return docker.lists() >= 2; }, 3s), "the list was never asked again");
  runUntil(loop, [] { return false; }, 400ms);
  BOOST_TEST(docker.lists() == 2, "retried after a list succeeded");
  BOOST_TEST(injector.counters().dockerReconnects == 0u);
}

BOOST_AUTO_TEST_CASE(RetriesBackOffAndEndAtShutdown) {
  std::string dir = tempDir();
  FakeDocker docker(dir, [](int) { return jsonReply(500, R"({"message":"daemon busy"})"); });
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  InjectorOptions options = optionsIn(dir);
  options.reconcileRetryMin = 20ms;
  options.reconcileRetryMax = 80ms;
  Injector injector(loop, docker.endpoint(), options);
  BOOST_REQUIRE(injector.start());
  // After 20, 40, 80, 80 ms...: about ten lists in the first 700 ms, not 35, nor 1.
  runUntil(loop, [] { return false; }, 700ms);
  int lists = docker.lists();
  BOOST_TEST(lists >= 3);   // retried (late timers on a busy machine make fewer)
  BOOST_TEST(lists <= 13);  // with back-off
  injector.shutdown([] {});
  int atShutdown = docker.lists();
  runUntil(loop, [] { return false; }, 300ms);
  // One list sent just before the shutdown may reach the fake daemon's thread after it,
  // however late (a slow VM); a retry timer left running would ask every 80 ms: 3 more.
  BOOST_TEST(docker.lists() <= atShutdown + 1, "lists were retried after the shutdown");
}

BOOST_AUTO_TEST_CASE(AReconcileOnReconnectCancelsThePendingRetry) {
  std::string dir = tempDir();
  FakeDocker docker(dir, failingFirst);
  docker.streamsToEnd = 1;  // the injector reconnects at once
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  InjectorOptions options = optionsIn(dir);
  options.reconcileRetryMin = 1500ms;  // far later than the reconnect, even on a busy machine
  options.reconnectMin = 10ms;
  Injector injector(loop, docker.endpoint(), options);
  BOOST_REQUIRE(injector.start());
  BOOST_REQUIRE(runUntil(loop, [&] { return injector.counters().dockerReconnects >= 1; }, 3s));
  runUntil(loop, [] { return false; }, 1800ms);  // past the retry the first failure armed
  BOOST_TEST(docker.lists() == 2);
}

BOOST_AUTO_TEST_CASE(AReconnectedStreamReplaysFromTheLastEventSeen) {
  // What happens while the stream is down (a destroy, a create not started yet) is not in
  // the list of running containers the reconnect reconciles with: the daemon replays it.
  std::string dir = tempDir();
  FakeDocker docker(dir, [](int) { return jsonReply(200, "[]"); });
  docker.streamsToEnd = 1;
  docker.endedStreamEvents =
      R"({"Type":"container","Action":"destroy","Actor":{"ID":"0123456789ab","Attributes":{}},"time":1796024645,"timeNano":1796024645000000042})"
      "\n";
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  InjectorOptions options = optionsIn(dir);
  options.reconnectMin = 10ms;
  Injector injector(loop, docker.endpoint(), options);
  BOOST_REQUIRE(injector.start());
  BOOST_REQUIRE(runUntil(loop, [&] { return docker.eventPaths().size() >= 2; }, 3s));
  auto paths = docker.eventPaths();
  BOOST_TEST(paths[1].find("&since=1796024645.000000042") != std::string::npos, paths[1]);
  injector.shutdown([] {});
}

BOOST_AUTO_TEST_CASE(TheFirstStreamReplaysTheSecondsBeforeItSoNoEventFallsBetweenItAndTheList) {
  // Docker sends the stream's headers before it subscribes it, and the injector lists once
  // it has them: an event in between (a labelled container's start) would be in neither.
  std::string dir = tempDir();
  FakeDocker docker(dir, [](int) { return jsonReply(200, "[]"); });
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  Injector injector(loop, docker.endpoint(), optionsIn(dir));
  auto wallSeconds = [] {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  };
  const long long before = wallSeconds();
  BOOST_REQUIRE(injector.start());
  BOOST_REQUIRE(runUntil(loop, [&] { return docker.lists() >= 1; }, 3s));
  const long long after = wallSeconds();
  const std::string path = docker.eventPaths().at(0);
  auto since = path.find("&since=");
  BOOST_REQUIRE_MESSAGE(since != std::string::npos, "no since: " << path);
  const long long seconds = std::stoll(path.substr(since + 7));
  // Two seconds before it was asked for (whole seconds, so a second's leeway either way).
  BOOST_TEST(seconds >= before - 3, path);
  BOOST_TEST(seconds <= after - 1, path);
  injector.shutdown([] {});
}

BOOST_AUTO_TEST_CASE(AStreamDroppedAtOnceEveryTimeIsAskedForAgainWithBackOff) {
  // A daemon, or a proxy in front of it, that accepts /events and ends it at once.
  std::string dir = tempDir();
  FakeDocker docker(dir, [](int) { return jsonReply(200, "[]"); });
  docker.streamsToEnd = 1000;
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  InjectorOptions options = optionsIn(dir);
  options.reconnectMin = 20ms;
  options.reconnectMax = 640ms;
  Injector injector(loop, docker.endpoint(), options);
  BOOST_REQUIRE(injector.start());
  runUntil(loop, [] { return false; }, 1500ms);
  // After 20, 40, 80 ... 640 ms: about seven connections (each reconciles), not seventy.
  BOOST_TEST(docker.lists() >= 3);
  BOOST_TEST(docker.lists() <= 12);
  injector.shutdown([] {});
}

BOOST_AUTO_TEST_CASE(AStreamRefusedEveryTimeIsAskedForAgainWithBackOff) {
  // docker-socket-proxy with EVENTS=0, or an authz plugin: /version answers, /events never
  // does. No stream ever connected, so none lasted: the back-off must grow as for one that
  // drops at once, not ask (and log two warnings) every reconnectMin for ever.
  std::string dir = tempDir();
  FakeDocker docker(dir, [](int) { return jsonReply(200, "[]"); });
  docker.eventsRefusal = jsonReply(403, R"({"message":"forbidden"})");
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  InjectorOptions options = optionsIn(dir);
  options.reconnectMin = 20ms;
  options.reconnectMax = 640ms;
  Injector injector(loop, docker.endpoint(), options);
  BOOST_REQUIRE(injector.start());
  runUntil(loop, [] { return false; }, 1500ms);
  // After 20, 40, 80 ... 640 ms: about seven requests, not one every 20 ms.
  BOOST_TEST(docker.eventPaths().size() >= 3u);
  BOOST_TEST(docker.eventPaths().size() <= 12u);
  BOOST_TEST(docker.lists() == 0, "listed with no event stream up");
  injector.shutdown([] {});
}

BOOST_AUTO_TEST_CASE(ADaemonThatTricklesItsAnswerHoldsNeitherTheLoopNorTheNextRequest) {
  // Signals, metrics, shim restarts and the early path all run on the loop: a request to
  // Docker must not stop them while it waits, and one that never ends must end.
  std::string dir = tempDir();
  FakeDocker docker(dir, [](int) { return jsonReply(200, "[]"); });
  docker.listsToTrickle = 1;
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  InjectorOptions options = optionsIn(dir);
  options.docker.deadline = 1000ms;
  options.reconcileRetryMin = 10ms;
  Injector injector(loop, docker.endpoint(), options);
  BOOST_REQUIRE(injector.start());
  BOOST_REQUIRE(runUntil(loop, [&] { return docker.lists() >= 1; }, 3s));
  auto asked = Clock::now();

  int ticks = 0;
  std::function<void()> tick = [&] {
    ++ticks;
    loop.addTimer(10ms, tick);
  };
  loop.addTimer(10ms, tick);
  runUntil(loop, [] { return false; }, 500ms);
  BOOST_TEST(docker.lists() == 1, "the trickled list is still being answered");
  BOOST_TEST(ticks >= 10, "the loop stood still while Docker answered: " << ticks << " ticks in 500 ms");

  BOOST_TEST(runUntil(loop, [&] { return docker.lists() >= 2; }, 5s), "the endless answer was never cut");
  auto cutAfter = std::chrono::duration_cast<Millis>(Clock::now() - asked);
  BOOST_TEST(cutAfter.count() >= 900, "cut before its deadline, after " << cutAfter.count() << " ms");
  injector.shutdown([] {});
}

BOOST_AUTO_TEST_CASE(EventsThatArriveWhileDockerListsApplyAfterTheList) {
  // The list is the daemon's state when it was taken; a destroy that came after it must not
  // be undone by it, as it would be if the list were applied last.
  std::string dir = tempDir();
  FakeDocker docker(dir, [](int) {
    return jsonReply(200, R"([{"Id":")" + kId + R"(","Names":["/app"],"Labels":{"connect.6000":"198.18.0.5:6379"},"State":"running"}])");
  });
  docker.eventsDuringList = R"({"Type":"container","Action":"destroy","Actor":{"ID":")" + kId +
                            R"(","Attributes":{"name":"app","connect.6000":"198.18.0.5:6379"}},"time":1796024645,"timeNano":1796024645000000042})"
                            "\n";
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  Injector injector(loop, docker.endpoint(), optionsIn(dir));
  BOOST_REQUIRE(injector.start());
  BOOST_REQUIRE(runUntil(loop, [&] { return docker.lists() >= 1; }, 3s));
  runUntil(loop, [] { return false; }, 600ms);  // the list, then what the inspect finds (404)
  BOOST_TEST(injector.counters().containersWatched == 0u, "a destroyed container is still watched");
  injector.shutdown([] {});
}

BOOST_AUTO_TEST_CASE(AContainerCreatedWhileDockerListsGetsItsShimBeforeTheListEnds) {
  // A list can take long (a reconnect to a daemon that is slow, or queued behind inspects
  // while it starts containers): the early watch must not wait for it, or an app that
  // connects at its first instruction is refused. The create still applies after the list,
  // as a duplicate: it neither starts a second shim nor counts a second injection.
  if (geteuid() != 0) {
    BOOST_TEST_MESSAGE("needs root for a container's cgroup and namespace; not checked");
    return;
  }
  std::string dir = tempDir();
  writeShim(dir + "/shim", "exec sleep 30\n");
  FakeDocker docker(dir, [](int) {
    return jsonReply(200, R"([{"Id":")" + kId + R"(","Names":["/app"],"Labels":{"connect.6000":"198.18.0.5:6379"},"State":"running"}])");
  });
  docker.listsToTrickle = 1;  // the first list is cut at its deadline, 1 s after it was asked
  docker.eventsDuringList = R"({"Type":"container","Action":"create","Actor":{"ID":")" + kId +
                            R"(","Attributes":{"name":"app","connect.6000":"198.18.0.5:6379"}},)" + liveTime() + R"(})"
                            "\n";
  FakeContainerInit init(kId);  // the early path finds it as soon as it looks
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  InjectorOptions options = optionsIn(dir);
  options.supervisor.shimPath = dir + "/shim";
  options.docker.deadline = 1000ms;
  options.stopShimsOnExit = true;
  Injector injector(loop, docker.endpoint(), options);
  BOOST_REQUIRE(injector.start());
  BOOST_REQUIRE(runUntil(loop, [&] { return injector.counters().injectedEarly >= 1; }, 5s));
  BOOST_TEST(docker.lists() <= 1, "injected only once the list had been cut and asked again");

  auto measured = [&] {
    uint64_t n = 0;
    for (uint64_t count : injector.counters().latencyCounts) n += count;
    return n;
  };
  BOOST_TEST(measured() == 1u);
  // From the create to the shim, not to the end of the list, cut 1 s after it was asked.
  BOOST_TEST(injector.counters().latencySum < 0.5, "create to shim: " << injector.counters().latencySum << " s");
  const pid_t shim = injector.supervisor().list().at(0).shimPid;

  // The list cut, asked again, and the held create applied after it.
  BOOST_REQUIRE(runUntil(loop, [&] { return docker.lists() >= 2; }, 5s));
  runUntil(loop, [] { return false; }, 300ms);
  BOOST_TEST(measured() == 1u, "the held create was timed again");
  BOOST_TEST(injector.counters().injectedEarly == 1u);
  BOOST_REQUIRE_EQUAL(injector.supervisor().list().size(), 1u);
  BOOST_TEST(injector.supervisor().list()[0].shimPid == shim);

  shutDown(loop, injector);
}

BOOST_AUTO_TEST_CASE(AContainerCreatedAndNotStartedIsLookedForLessAndLessOftenThenNoMore) {
  // Its cgroup appears only once it is started, which may be never: `docker create`, or a
  // compose project that creates all its containers before starting any.
  EmptyDaemon d;
  Injector& injector = d.start([](InjectorOptions& o) {
    o.earlyPollInterval = 2ms;
    o.earlyPollFastFor = 200ms;
    o.earlyPollSlowest = 50ms;
    o.earlyPollAfterCreate = 1000ms;
  });
  d.docker.sendEvents(containerEvent("create", kId, kAppLabels));
  BOOST_REQUIRE(runUntil(d.loop, [&] { return injector.counters().earlyPolls >= 1; }, 5s));
  runUntil(d.loop, [] { return false; }, 1300ms);
  const uint64_t polls = injector.counters().earlyPolls;
  // At most 100 in the fast 200 ms, then 4, 8, 16, 32, 50, 50 ... ms apart: about 25 more.
  // Every 2 ms for the whole second would be 500.
  BOOST_TEST(polls <= 140u, polls << " cgroup reads for a container that was never started");
  runUntil(d.loop, [] { return false; }, 500ms);
  BOOST_TEST(injector.counters().earlyPolls == polls, "still looking 1.8 s after the create event");
}

BOOST_AUTO_TEST_CASE(AnEventThatCannotBeReadIsFollowedByAList) {
  // It may have been a labelled container's start or die: the list says what runs now.
  EmptyDaemon d;
  d.start();
  runUntil(d.loop, [] { return false; }, 100ms);
  BOOST_REQUIRE_EQUAL(d.docker.lists(), 1);
  d.docker.sendEvents(R"({"Type":"container","Action":"start","Actor":{"ID":")" + kId + "\n");
  BOOST_TEST(runUntil(d.loop, [&] { return d.docker.lists() >= 2; }, 5s), "no list after an unreadable event");
}

// What Docker's list of all containers says of kId while runc starts it, or once it ended.
std::string kIdInState(const std::string& state) {
  return jsonReply(200, R"([{"Id":")" + kId + R"(","Names":["/app"],"Labels":{"connect.6000":"198.18.0.5:6379"},"State":")" +
                            state + R"("}])");
}

// Starts the injector on `d` with a stand-in shim, Docker's list of all containers saying
// `state` of kId, and has kId injected early: its create event, then its init (the
// caller's FakeContainerInit) found before its start event.
Injector& injectEarly(EmptyDaemon& d, const std::string& state) {
  writeShim(d.dir + "/shim", "exec sleep 30\n");
  d.docker.allListReply = [state](int) { return kIdInState(state); };
  Injector& injector = d.start([&](InjectorOptions& o) {
    o.supervisor.shimPath = d.dir + "/shim";
    o.stopShimsOnExit = true;
  });
  d.docker.sendEvents(containerEvent("create", kId, kAppLabels));
  BOOST_REQUIRE(runUntil(d.loop, [&] { return injector.counters().injectedEarly == 1u; }, 5s));
  return injector;
}

BOOST_AUTO_TEST_CASE(AListTakenWhileAContainerStartsKeepsTheShimInjectedBeforeItsStart) {
  // Docker says "created", not running, for about half a second after the early path found
  // the init: a list then (an event that cannot be read, a reconnect) must not stop the shim,
  // or the port refuses connections until the start event brings a new one.
  if (geteuid() != 0) {
    BOOST_TEST_MESSAGE("needs root for a container's cgroup and namespace; not checked");
    return;
  }
  EmptyDaemon d;
  FakeContainerInit init(kId);
  Injector& injector = injectEarly(d, "created");
  const pid_t shim = injector.supervisor().list()[0].shimPid;

  d.docker.sendEvents(R"({"Type":"container","Action":"start","Actor":{"ID":")" + kId + "\n");
  BOOST_REQUIRE(runUntil(d.loop, [&] { return d.docker.lists() >= 2 && d.docker.allLists() >= 1; }, 5s));
  runUntil(d.loop, [] { return false; }, 300ms);  // the answers, and a shim's exit after a stop
  BOOST_TEST(injector.supervisor().serves(kId), "the shim of a container being started was stopped");
  BOOST_REQUIRE_EQUAL(injector.supervisor().list().size(), 1u);
  BOOST_TEST(injector.supervisor().list()[0].shimPid == shim);
}

BOOST_AUTO_TEST_CASE(AListStopsTheShimOfAContainerWhoseInitEndedWithNoEventToSaySo) {
  // Its die event could not be read: the real shim would follow its init out, this stand-in
  // does not.
  if (geteuid() != 0) {
    BOOST_TEST_MESSAGE("needs root for a container's cgroup and namespace; not checked");
    return;
  }
  EmptyDaemon d;
  auto init = std::make_unique<FakeContainerInit>(kId);
  Injector& injector = injectEarly(d, "exited");  // not removed: stopped

  init.reset();
  d.docker.sendEvents(R"({"Type":"container","Action":"die","Actor":{"ID":")" + kId + "\n");
  BOOST_TEST(runUntil(d.loop, [&] { return injector.supervisor().list().empty(); }, 5s),
             "the shim of a container whose init ended was left running");
  BOOST_TEST(injector.counters().containersWatched == 1u, "a stopped container may start again");
}

// A shim of kId (a stand-in, and its container's init) left running by an injector that
// went away, and a new injector that adopted it from its record. No container runs.
struct AdoptedShim {
  std::string dir = tempDir();
  std::string runningContainers = jsonReply(200, "[]");
  FakeDocker docker{dir, [this](int) { return runningContainers; }};
  Child shim;
  Child init = Child::spawn({"sleep", "30"});
  EventLoop loop;
  std::unique_ptr<Injector> injector;

  // `allContainers`: what Docker's list of all containers says; `running`, its list of
  // running ones. `shimArgs`: the arguments the stand-in shim runs with (after argv[0]), as
  // its record has them.
  explicit AdoptedShim(std::string allContainers, std::string running = jsonReply(200, "[]"),
                       std::vector<std::string> shimArgs = {}) {
    runningContainers = std::move(running);
    docker.allListReply = [allContainers](int) { return allContainers; };
    // `sleep 30`, or a shell that stays one (so its arguments stay these) with the options given.
    if (shimArgs.empty()) shimArgs = {"30"};
    else shimArgs.insert(shimArgs.begin(), {"-c", "while :; do sleep 1; done", "shim"});
    std::vector<std::string> argv = shimArgs;
    argv.insert(argv.begin(), shimArgs[0] == "30" ? "sleep" : "sh");
    shim = Child::spawn(argv);
    BOOST_REQUIRE(connectable::testing::waitFor([&] { return processArguments(shim.pid()) == shimArgs; }, 2s));
    writeShimRecord(dir, shim, init, shimArgs);
    BOOST_REQUIRE(loop.init());
    injector = std::make_unique<Injector>(loop, docker.endpoint(), optionsIn(dir));
    BOOST_REQUIRE(injector->start());
    BOOST_REQUIRE_EQUAL(injector->supervisor().list().size(), 1u);
  }
  ~AdoptedShim() { injector->shutdown([] {}); }
};

BOOST_AUTO_TEST_CASE(AnAdoptedShimOfAContainerBeingStartedIsKeptByTheFirstList) {
  // The injector restarted between the early path's shim and the container's start event:
  // the list shows the container not running yet, the list of all containers shows it.
  AdoptedShim a(kIdInState("created"));
  BOOST_REQUIRE(runUntil(a.loop, [&] { return a.docker.lists() >= 1; }, 3s));
  runUntil(a.loop, [] { return false; }, 300ms);  // the answers, that of the list of all containers too
  BOOST_TEST(a.injector->supervisor().serves(kId), "the adopted shim of a container being started was stopped");
  BOOST_TEST(a.shim.running());
}

BOOST_AUTO_TEST_CASE(AnAdoptedShimStartedWithOtherOptionsKeepsServingAndItsStatusSaysHow) {
  // Its record's arguments are the stand-in's ("30"), none of what its label now gives:
  // kept, as a restart would cut its connections, and said.
  AdoptedShim a(kIdInState("running"), kIdInState("running"));
  const std::string note = "its shim runs with the options it was started with (would now also get "
                           "--connect=6000=198.18.0.5:6379): `docker restart app` applies them";
  BOOST_TEST(runUntil(a.loop, [&] {
               auto records = readProblemRecords(a.dir);
               return records.size() == 1 && records[0].problems == std::vector<std::string>{note};
             }, 5s),
             "no problem record says how the options differ");
  BOOST_TEST(a.injector->supervisor().serves(kId));
  BOOST_TEST(a.shim.running());
}

BOOST_AUTO_TEST_CASE(AnAdoptedShimOfALabelThisVersionRefusesServesOnAndItsStatusSaysSo) {
  // Started by an older injector for a target this one refuses: the container gets no new
  // shim, and the one serving it is shown for what it is until the container restarts.
  const std::string labelled = jsonReply(200, R"([{"Id":")" + kId +
                                                  R"(","Names":["/app"],"Labels":{"connect.6000":"0.0.0.0:80"},"State":"running"}])");
  AdoptedShim a(labelled, labelled, {"--connect=6000=0.0.0.0:80"});
  const std::string note = "its shim runs with the options it was started with (started with "
                           "--connect=6000=0.0.0.0:80, which it would no longer get): `docker restart app` applies them";
  BOOST_TEST(runUntil(a.loop, [&] {
               auto records = readProblemRecords(a.dir);
               return records.size() == 1 && !records[0].problems.empty() && records[0].problems.back() == note;
             }, 5s),
             "no problem record says the shim runs with a label now refused");
  auto records = readProblemRecords(a.dir);
  BOOST_REQUIRE_EQUAL(records.size(), 1u);
  BOOST_TEST(records[0].problems.front().find("ignored bad label: label 'connect.6000=0.0.0.0:80'") == 0,
             records[0].problems.front());
  BOOST_TEST(a.shim.running());
}

BOOST_AUTO_TEST_CASE(AnAdoptedShimOfAContainerRemovedWhileTheInjectorWasAwayIsStopped) {
  // Its init still runs, but no list shows the container: nothing would stop the shim.
  AdoptedShim a(jsonReply(200, "[]"));
  BOOST_TEST(runUntil(a.loop, [&] { return a.injector->supervisor().list().empty(); }, 5s), "the shim was left serving");
  BOOST_TEST(a.shim.wait(2000ms) == 128 + SIGTERM);
}

BOOST_AUTO_TEST_CASE(ABadLabelIsReportedOnceNotAtEachEventAndReconcile) {
  // A container whose only connect label is bad gets no shim; its create, its start and the
  // list after every reconnect all show it again, and its label is still one bad label.
  std::string dir = tempDir();
  FakeDocker docker(dir, [](int) {
    return jsonReply(200, R"([{"Id":")" + kId + R"(","Names":["/app"],"Labels":{"connect.0":"198.18.0.5:6379"},"State":"running"}])");
  });
  docker.streamsToEnd = 2;
  for (const char* action : {"create", "start"})
    docker.endedStreamEvents += R"({"Type":"container","Action":")" + std::string(action) + R"(","Actor":{"ID":")" + kId +
                                R"(","Attributes":{"name":"app","connect.0":"198.18.0.5:6379"}},)" + liveTime() + R"(})"
                                "\n";
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  InjectorOptions options = optionsIn(dir);
  options.reconnectMin = 10ms;
  Injector injector(loop, docker.endpoint(), options);
  BOOST_REQUIRE(injector.start());
  BOOST_REQUIRE(runUntil(loop, [&] { return docker.lists() >= 3; }, 5s));
  runUntil(loop, [] { return false; }, 300ms);  // the last list's answer
  BOOST_TEST(injector.counters().badLabels == 1u);
  // `connectable status` lists it (its problem record): so does the gauge count it.
  BOOST_TEST(injector.counters().containersWatched == 1u);
  injector.shutdown([] {});
}

// A daemon with one container, kId, whose only connect label is bad, and an injector that
// has listed it once. `listed` answers each list of running containers after the first,
// `allListed` each list of all containers; both are told how many came before.
struct OnlyBadLabels {
  static std::string kIdIn(const std::string& state) {
    return jsonReply(200, R"([{"Id":")" + kId + R"(","Names":["/app"],"Labels":{"connect.0":"198.18.0.5:6379"},"State":")" +
                              state + R"("}])");
  }
  OnlyBadLabels(FakeDocker::ListReply listed, FakeDocker::ListReply allListed, int streamsToEnd)
      : docker(dir, [listed](int previous) { return previous == 0 ? kIdIn("running") : listed(previous); }) {
    docker.allListReply = std::move(allListed);
    docker.streamsToEnd = streamsToEnd;  // each ended stream is a reconnect, and a list
    BOOST_REQUIRE(loop.init());
    InjectorOptions options = optionsIn(dir);
    options.reconnectMin = 500ms;
    injector = std::make_unique<Injector>(loop, docker.endpoint(), options);
    BOOST_REQUIRE(injector->start());
    BOOST_REQUIRE(runUntil(loop, [&] { return injector->counters().badLabels == 1u; }, 5s));
  }
  ~OnlyBadLabels() { injector->shutdown([] {}); }

  std::string dir = tempDir();
  FakeDocker docker;
  EventLoop loop;
  std::unique_ptr<Injector> injector;
};

BOOST_AUTO_TEST_CASE(AContainerWhoseEveryLabelIsBadIsWatchedWhileStatusListsItAndSaysWhyItHasNoShim) {
  // The gauge and `connectable status` are read side by side: a container listed in one
  // and left out of the other makes either look wrong. It is removed while no event could
  // say so: no list shows it any more.
  auto none = [](int) { return jsonReply(200, "[]"); };
  OnlyBadLabels d(none, none, 1);
  BOOST_TEST(d.injector->counters().containersWatched == 1u);
  auto records = readProblemRecords(d.dir);
  BOOST_REQUIRE_EQUAL(records.size(), 1u);
  BOOST_TEST(records[0].problems.back() == "no shim: it has no usable connect.PORT label");

  BOOST_REQUIRE(runUntil(d.loop, [&] { return d.docker.lists() >= 2; }, 5s));
  BOOST_TEST(runUntil(d.loop, [&] { return d.injector->counters().containersWatched == 0u; }, 5s),
             "a container no list shows any more is still counted");
  BOOST_TEST(readProblemRecords(d.dir).empty());
}

BOOST_AUTO_TEST_CASE(AStoppedContainerWithOnlyBadLabelsStillSaysWhyItHasNoShimUntilItIsRemoved) {
  // The app that could not reach its dependency exits; a list (a reconnect, an injector
  // restarted) must not take away the note that says why, while the container is there.
  OnlyBadLabels d([](int) { return jsonReply(200, "[]"); },  // stopped
                  [](int previous) {                          // there while stopped, then removed
                    return previous > 0 ? jsonReply(200, "[]") : OnlyBadLabels::kIdIn("exited");
                  },
                  2);
  BOOST_REQUIRE_EQUAL(readProblemRecords(d.dir).size(), 1u);

  BOOST_REQUIRE(runUntil(d.loop, [&] { return d.docker.allLists() >= 1; }, 5s));
  runUntil(d.loop, [] { return false; }, 100ms);  // its answer applied; the next list is 0.5 s away
  BOOST_TEST(readProblemRecords(d.dir).size() == 1u, "a stopped container lost the note saying why it has no shim");
  BOOST_TEST(d.injector->counters().containersWatched == 1u);

  BOOST_REQUIRE(runUntil(d.loop, [&] { return d.docker.allLists() >= 2; }, 5s));
  BOOST_TEST(runUntil(d.loop, [&] { return readProblemRecords(d.dir).empty(); }, 5s), "a removed container kept its record");
  BOOST_TEST(d.injector->counters().containersWatched == 0u);
}

BOOST_AUTO_TEST_CASE(OptionsWithNoConnectLabelAreLoggedOnceAndListedByStatusSayingTheyApplyToNothing) {
  // `-l conect.6000=... -l connectable.balance=p2c`: no label is bad, yet the container
  // plainly asked for a shim. Another container with none of our labels stays unmentioned.
  const std::string other = "1111111111111111111111111111111111111111111111111111111111111111";
  std::string dir = tempDir();
  FakeDocker docker(dir, [&](int) {
    return jsonReply(200, R"([{"Id":")" + kId +
                              R"(","Names":["/app"],"Labels":{"conect.6000":"198.18.0.5:6379","connectable.balance":"p2c"},"State":"running"},)"
                              R"({"Id":")" + other + R"(","Names":["/web"],"Labels":{"maintainer":"x"},"State":"running"}])");
  });
  docker.streamsToEnd = 1;  // a reconnect, and a second list
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  InjectorOptions options = optionsIn(dir);
  options.reconnectMin = 10ms;
  Injector injector(loop, docker.endpoint(), options);
  CapturedOutput log(STDERR_FILENO, dir + "/injector.log");
  BOOST_REQUIRE(injector.start());
  BOOST_REQUIRE(runUntil(loop, [&] { return docker.lists() >= 2; }, 5s));
  runUntil(loop, [] { return false; }, 300ms);  // the last list's answer
  log.restore();

  const std::string why =
      "it has no connect.PORT label, so its connectable.* options apply to nothing (did you mean 'connect.6000', not 'conect.6000'?)";
  auto records = readProblemRecords(dir);
  BOOST_REQUIRE_EQUAL(records.size(), 1u);
  BOOST_TEST(records[0].containerId == kId);
  BOOST_TEST(records[0].problems == std::vector<std::string>{"no shim: " + why}, log.text());
  BOOST_TEST(injector.counters().containersWatched == 1u);
  BOOST_TEST(injector.counters().badLabels == 0u);
  const std::string line = "container gets no shim container=\"app (8f3c11155b1b)\"";
  const size_t first = log.text().find(line);
  BOOST_TEST(first != std::string::npos, log.text());
  BOOST_TEST(log.text().find(line, first + 1) == std::string::npos, "said again at the next list: " << log.text());
  injector.shutdown([] {});
}

BOOST_AUTO_TEST_CASE(AMaxConnsLabelOverTheHostsIsABadLabel) {
  std::string dir = tempDir();
  FakeDocker docker(dir, [](int) {
    return jsonReply(200, R"([{"Id":")" + kId +
                              R"(","Names":["/app"],"Labels":{"connectable.max-conns":"500"},"State":"running"}])");
  });
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  InjectorOptions options = optionsIn(dir);
  options.supervisor.shimArgs.push_back("--max-conns=100");
  Injector injector(loop, docker.endpoint(), options);
  BOOST_REQUIRE(injector.start());
  BOOST_REQUIRE(runUntil(loop, [&] { return docker.lists() >= 1; }, 5s));
  runUntil(loop, [] { return false; }, 300ms);  // the list's answer
  BOOST_TEST(injector.counters().badLabels == 1u);
  injector.shutdown([] {});
}

BOOST_AUTO_TEST_CASE(ARenamedContainerIsKnownByItsNewName) {
  // `docker rename`, or Compose renaming a container it replaces: `connectable status web`
  // finds the shim by its record, and the log names the container as `docker ps` does.
  if (geteuid() != 0) {
    BOOST_TEST_MESSAGE("needs root for a container's cgroup and namespace; not checked");
    return;
  }
  std::string dir = tempDir();
  writeShim(dir + "/shim", "exec sleep 30\n");
  FakeDocker docker(dir, [](int) { return jsonReply(200, "[]"); });
  FakeContainerInit init(kId);
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  InjectorOptions options = optionsIn(dir);
  options.supervisor.shimPath = dir + "/shim";
  options.stopShimsOnExit = true;
  Injector injector(loop, docker.endpoint(), options);
  BOOST_REQUIRE(injector.start());
  BOOST_REQUIRE(runUntil(loop, [&] { return docker.lists() >= 1; }, 3s));
  docker.sendEvents(R"({"Type":"container","Action":"create","Actor":{"ID":")" + kId +
                    R"(","Attributes":{"name":"app","connect.6000":"198.18.0.5:6379"}},)" + liveTime() + R"(})"
                    "\n");
  BOOST_REQUIRE(runUntil(loop, [&] { return injector.counters().injectedEarly >= 1; }, 5s));
  docker.sendEvents(R"({"Type":"container","Action":"rename","Actor":{"ID":")" + kId +
                    R"(","Attributes":{"name":"web","oldName":"/app","connect.6000":"198.18.0.5:6379"}},)" + liveTime(1'000'000'000) + R"(})"
                    "\n");
  auto named = [&](const std::string& name) {
    auto shims = injector.supervisor().list();
    return shims.size() == 1 && shims[0].containerName == name;
  };
  BOOST_TEST(runUntil(loop, [&] { return named("web"); }, 3s), "the shim is still known by the old name");
  std::string record = connectable::testing::readFile(dir + "/shims/" + kId + ".json");
  BOOST_TEST(record.find(R"("container_name":"web")") != std::string::npos, record);

  shutDown(loop, injector);
}

BOOST_AUTO_TEST_CASE(ARenamedContainerWithOnlyBadLabelsIsShownByItsNewName) {
  // It has no shim, only a problem record: `connectable status web` must find that too.
  std::string dir = tempDir();
  FakeDocker docker(dir, [](int) { return jsonReply(200, "[]"); });
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  Injector injector(loop, docker.endpoint(), optionsIn(dir));
  BOOST_REQUIRE(injector.start());
  BOOST_REQUIRE(runUntil(loop, [&] { return docker.lists() >= 1; }, 3s));
  auto recordedName = [&] {
    auto records = readProblemRecords(dir);
    return records.size() == 1 ? records[0].containerName : std::string();
  };
  docker.sendEvents(R"({"Type":"container","Action":"create","Actor":{"ID":")" + kId +
                    R"(","Attributes":{"name":"app","connect.0":"198.18.0.5:6379"}},)" + liveTime() + R"(})"
                    "\n");
  BOOST_REQUIRE(runUntil(loop, [&] { return recordedName() == "app"; }, 3s));
  docker.sendEvents(R"({"Type":"container","Action":"rename","Actor":{"ID":")" + kId +
                    R"(","Attributes":{"name":"web","oldName":"/app","connect.0":"198.18.0.5:6379"}},)" + liveTime(1'000'000'000) + R"(})"
                    "\n");
  BOOST_TEST(runUntil(loop, [&] { return recordedName() == "web"; }, 3s), "recorded as " << recordedName());
  BOOST_TEST(injector.counters().badLabels == 1u);
  injector.shutdown([] {});
}

BOOST_AUTO_TEST_CASE(AContainerRenamedWhileTheInjectorWasAwayIsKnownByItsNewNameOnceListed) {
  // No rename event comes for what happened before the injector started: the adopted
  // shim's record names the container as it was, the list as it is.
  std::string dir = tempDir();
  FakeDocker docker(dir, [](int) {
    return jsonReply(200, R"([{"Id":")" + kId + R"(","Names":["/web"],"Labels":{"connect.6000":"198.18.0.5:6379"},"State":"running"}])");
  });
  Child shim = Child::spawn({"sleep", "30"});
  Child init = Child::spawn({"sleep", "30"});
  // Adopted by its arguments: those of `sleep`, once the child has exec'd it.
  BOOST_REQUIRE(connectable::testing::waitFor([&] { return processArguments(shim.pid()) == std::vector<std::string>{"30"}; }, 2s));
  writeShimRecord(dir, shim, init);
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  Injector injector(loop, docker.endpoint(), optionsIn(dir));
  BOOST_REQUIRE(injector.start());
  BOOST_REQUIRE_EQUAL(injector.supervisor().list().size(), 1u);
  BOOST_REQUIRE(runUntil(loop, [&] { return docker.lists() >= 1; }, 3s));
  runUntil(loop, [] { return false; }, 300ms);  // the list's answer
  BOOST_REQUIRE_EQUAL(injector.supervisor().list().size(), 1u);
  BOOST_TEST(injector.supervisor().list()[0].containerName == "web");
  std::string record = connectable::testing::readFile(dir + "/shims/" + kId + ".json");
  BOOST_TEST(record.find(R"("container_name":"web")") != std::string::npos, record);
  BOOST_TEST(docker.inspects() == 0, "a shim serving a live init needs no inspect");
  injector.shutdown([] {});
}

BOOST_AUTO_TEST_CASE(ALinkedContainerIsNamedByItsOwnNameNotALinksAlias) {
  // `docker run --link zdb:db app` gives zdb a second name, /app/db, and the list gives a
  // container's names in their sorted order: its own name is the one without a parent.
  if (geteuid() != 0) {
    BOOST_TEST_MESSAGE("needs root for a container's cgroup and namespace; not checked");
    return;
  }
  std::string dir = tempDir();
  writeShim(dir + "/shim", "exec sleep 30\n");
  FakeContainerInit init(kId);
  FakeDocker docker(dir, [](int) {
    return jsonReply(200, R"([{"Id":")" + kId + R"(","Names":["/app/db","/zdb"],"Labels":{"connect.6000":"198.18.0.5:6379"},"State":"running"}])");
  });
  docker.inspectReply = [&](int) {
    return runningInspect(kId, "zdb", init.pid());
  };
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  InjectorOptions options = optionsIn(dir);
  options.supervisor.shimPath = dir + "/shim";
  options.stopShimsOnExit = true;
  Injector injector(loop, docker.endpoint(), options);
  BOOST_REQUIRE(injector.start());
  BOOST_REQUIRE(runUntil(loop, [&] { return injector.counters().injectedOnStart >= 1; }, 5s));
  BOOST_REQUIRE_EQUAL(injector.supervisor().list().size(), 1u);
  BOOST_TEST(injector.supervisor().list()[0].containerName == "zdb");

  shutDown(loop, injector);
}

BOOST_AUTO_TEST_CASE(AContainerStartedBeforeTheInjectorIsInjectedAsRunningNotAsNotStartedYet) {
  // The first stream replays the last seconds: the create and start of a container that
  // ran before the injector did. Its init is there at once, but it is no early injection:
  // not "injected before start", not counted as one, and not timed from a create the
  // injector never watched (it was, at 0 ms, with the count of early ones).
  if (geteuid() != 0) {
    BOOST_TEST_MESSAGE("needs root for a container's cgroup and namespace; not checked");
    return;
  }
  std::string dir = tempDir();
  writeShim(dir + "/shim", "exec sleep 30\n");
  FakeContainerInit init(kId);
  FakeDocker docker(dir, [](int) {
    return jsonReply(200, R"([{"Id":")" + kId + R"(","Names":["/app"],"Labels":{"connect.6000":"198.18.0.5:6379"},"State":"running"}])");
  });
  docker.inspectReply = [&](int) {
    return runningInspect(kId, "app", init.pid());
  };
  const int64_t aSecondAgo =
      std::chrono::duration_cast<std::chrono::nanoseconds>((std::chrono::system_clock::now() - 1s).time_since_epoch()).count();
  const std::string then = R"("time":)" + std::to_string(aSecondAgo / 1'000'000'000) + R"(,"timeNano":)" + std::to_string(aSecondAgo);
  docker.eventsDuringList = R"({"Type":"container","Action":"create","Actor":{"ID":")" + kId +
                            R"(","Attributes":{"name":"app","connect.6000":"198.18.0.5:6379"}},)" + then + "}\n" +
                            R"({"Type":"network","Action":"connect","Actor":{"ID":"c9aa","Attributes":{"container":")" + kId +
                            R"("}},)" + then + "}\n" +
                            R"({"Type":"container","Action":"start","Actor":{"ID":")" + kId +
                            R"(","Attributes":{"name":"app","connect.6000":"198.18.0.5:6379"}},)" + then + "}\n";
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  InjectorOptions options = optionsIn(dir);
  options.supervisor.shimPath = dir + "/shim";
  options.stopShimsOnExit = true;
  CapturedOutput log(STDERR_FILENO, dir + "/injector.log");
  Injector injector(loop, docker.endpoint(), options);
  BOOST_REQUIRE(injector.start());
  const bool injected = runUntil(loop, [&] { return injector.counters().injectedOnStart + injector.counters().injectedEarly >= 1; }, 5s);
  runUntil(loop, [] { return false; }, 300ms);  // the held create and start, applied after the list
  log.restore();
  BOOST_REQUIRE(injected);
  BOOST_TEST(injector.counters().injectedOnStart == 1u);
  BOOST_TEST(injector.counters().injectedEarly == 0u);
  uint64_t measured = 0;
  for (uint64_t n : injector.counters().latencyCounts) measured += n;
  BOOST_TEST(measured == 0u, "timed from a create the injector did not watch");
  BOOST_TEST(log.text().find("injected before start") == std::string::npos, log.text());
  BOOST_REQUIRE_EQUAL(injector.supervisor().list().size(), 1u);

  shutDown(loop, injector);
}

BOOST_AUTO_TEST_CASE(OptionsNoShimTakesAreReportedOnceAtTheStartNotWaitedForBeforeIt) {
  // Labels the host's options cannot serve (lookups from the container's namespace, and no
  // --dns): no wait mends them, so the early watch neither looks for the init nor warns
  // that it waits for the start; the start says it, once, as an error.
  if (geteuid() != 0) {
    BOOST_TEST_MESSAGE("needs root for a container's cgroup and namespace; not checked");
    return;
  }
  std::string dir = tempDir();
  writeShim(dir + "/shim", "exec sleep 30\n");
  FakeContainerInit init(kId);
  FakeDocker docker(dir, [](int) { return jsonReply(200, "[]"); });
  const std::string labels = R"("connect.6000":"redis.service.consul","connectable.upstream-netns":"target")";
  docker.inspectReply = [&](int) {
    return runningInspect(kId, "app", init.pid(), labels);
  };
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  InjectorOptions options = optionsIn(dir);
  options.supervisor.shimPath = dir + "/shim";
  options.stopShimsOnExit = true;
  Injector injector(loop, docker.endpoint(), options);
  BOOST_REQUIRE(injector.start());
  BOOST_REQUIRE(runUntil(loop, [&] { return docker.lists() >= 1 && !docker.eventPaths().empty(); }, 5s));
  runUntil(loop, [] { return false; }, 200ms);
  CapturedOutput log(STDERR_FILENO, dir + "/injector.log");
  docker.sendEvents(containerEvent("create", kId, R"("name":"app",)" + labels));
  runUntil(loop, [] { return false; }, 300ms);
  BOOST_TEST(injector.counters().earlyPolls == 0u, "looked for an init no shim could be started for");
  docker.sendEvents(containerEvent("start", kId, R"("name":"app",)" + labels));
  const bool inspected = runUntil(loop, [&] { return docker.inspects() >= 1; }, 5s);
  runUntil(loop, [] { return false; }, 300ms);
  log.restore();
  BOOST_REQUIRE(inspected);
  BOOST_TEST(log.text().find("early injection failed") == std::string::npos, log.text());
  const std::string error = "cannot start shim container=\"app";
  const size_t first = log.text().find(error);
  BOOST_TEST(first != std::string::npos, log.text());
  BOOST_TEST(log.text().find(error, first + 1) == std::string::npos, "said twice: " << log.text());
  BOOST_TEST(log.text().find("--upstream-netns=target needs --dns") != std::string::npos, log.text());
  BOOST_TEST(injector.supervisor().list().empty());

  shutDown(loop, injector);
}

BOOST_AUTO_TEST_CASE(ACreateReplayedAfterAReconnectDoesNotTimeTheNextRestart) {
  // The daemon replays from the last event the injector acted on, that one included: a
  // create seen twice must not start the latency clock again for a container long served,
  // or its next restart counts as one injection taking all the time since.
  if (geteuid() != 0) {
    BOOST_TEST_MESSAGE("needs root for a container's cgroup and namespace; not checked");
    return;
  }
  std::string dir = tempDir();
  writeShim(dir + "/shim", "exec sleep 30\n");
  auto init = std::make_unique<FakeContainerInit>(kId);
  FakeDocker docker(dir, [](int) {
    return jsonReply(200, R"([{"Id":")" + kId + R"(","Names":["/app"],"Labels":{"connect.6000":"198.18.0.5:6379"},"State":"running"}])");
  });
  auto event = [](const std::string& type, const std::string& action, const std::string& actor, const std::string& attributes) {
    return R"({"Type":")" + type + R"(","Action":")" + action + R"(","Actor":{"ID":")" + actor + R"(","Attributes":{)" + attributes +
           R"(}},)" + liveTime() + R"(})" "\n";
  };
  const std::string labels = R"("name":"app","connect.6000":"198.18.0.5:6379")";
  docker.streamsToEnd = 2;  // the create, then its replay
  docker.endedStreamEvents = event("container", "create", kId, labels);
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  InjectorOptions options = optionsIn(dir);
  options.supervisor.shimPath = dir + "/shim";
  options.stopShimsOnExit = true;
  options.reconnectMin = 10ms;
  Injector injector(loop, docker.endpoint(), options);
  BOOST_REQUIRE(injector.start());
  BOOST_REQUIRE(runUntil(loop, [&] { return docker.eventPaths().size() >= 3 && docker.lists() >= 3; }, 5s));
  runUntil(loop, [] { return false; }, 300ms);  // the last list's answer, and the events held meanwhile
  BOOST_REQUIRE(injector.counters().injectedEarly == 1u);

  // docker restart: the init dies, a new one comes in a new namespace.
  init.reset();
  docker.sendEvents(event("container", "die", kId, labels));
  BOOST_REQUIRE(runUntil(loop, [&] { return !injector.supervisor().serves(kId); }, 3s));
  init = std::make_unique<FakeContainerInit>(kId);
  CapturedOutput log(STDERR_FILENO, dir + "/restart.log");
  docker.sendEvents(event("network", "connect", "c9aa", R"("container":")" + kId + R"(")"));
  BOOST_REQUIRE(runUntil(loop, [&] { return injector.counters().injectedEarly >= 2; }, 5s));
  log.restore();

  uint64_t measured = 0;
  for (uint64_t n : injector.counters().latencyCounts) measured += n;
  BOOST_TEST(measured == 1u, "a restart was timed from a replayed create");
  // Nor does its log line count from that create.
  BOOST_TEST(log.text().find("injected before start") != std::string::npos, log.text());
  BOOST_TEST(log.text().find("ms_after_create") == std::string::npos, log.text());

  shutDown(loop, injector);
}

BOOST_AUTO_TEST_CASE(AContainerRefusedForWantOfAUidGetsItsShimOnceAUidFrees) {
  // --shim-uids holds one uid: the second container waits for the first one's, not for an
  // event that may never come.
  if (geteuid() != 0) {
    BOOST_TEST_MESSAGE("needs root for a container's cgroup and namespace; not checked");
    return;
  }
  const std::string second = "9a" + kId.substr(2);
  std::string dir = tempDir();
  writeShim(dir + "/shim", "exec sleep 30\n");
  auto first = std::make_unique<FakeContainerInit>(kId);
  FakeContainerInit secondInit(second);
  FakeDocker docker(dir, [](int) { return jsonReply(200, "[]"); });
  docker.inspectReply = [&](int) {
    return runningInspect(second, "web", secondInit.pid());
  };
  auto event = [](const std::string& action, const std::string& id, const std::string& name) {
    return containerEvent(action, id, R"("name":")" + name + R"(","connect.6000":"198.18.0.5:6379")");
  };
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  InjectorOptions options = optionsIn(dir);
  options.supervisor.shimPath = dir + "/shim";
  options.supervisor.shimUidFirst = 2000000;
  options.supervisor.shimUidCount = 1;
  options.supervisor.stopGrace = 200ms;
  options.stopShimsOnExit = true;
  Injector injector(loop, docker.endpoint(), options);
  BOOST_REQUIRE(injector.start());
  BOOST_REQUIRE(runUntil(loop, [&] { return docker.lists() >= 1; }, 5s));
  CapturedOutput log(STDERR_FILENO, dir + "/log");
  docker.sendEvents(event("create", kId, "db"));
  BOOST_REQUIRE(runUntil(loop, [&] { return injector.supervisor().serves(kId); }, 5s));
  docker.sendEvents(event("create", second, "web") + event("start", second, "web"));
  BOOST_REQUIRE(runUntil(loop, [&] { return docker.inspects() >= 1; }, 5s));
  runUntil(loop, [] { return false; }, 200ms);
  BOOST_REQUIRE(!injector.supervisor().serves(second));

  first.reset();  // the first container stops: its shim goes, and with it its uid
  docker.sendEvents(event("die", kId, "db"));
  BOOST_TEST(runUntil(loop, [&] { return injector.supervisor().serves(second); }, 5s),
             "the second container never got the uid the first one freed");
  log.restore();
  shutDown(loop, injector);
}

BOOST_AUTO_TEST_CASE(AContainerRemovedWhileNoEventCouldSaySoIsForgottenAtTheNextList) {
  // Its destroy event was lost (the daemon's replay does not reach back that far): the list
  // does not show it, and an inspect says it is gone (the fake daemon knows no container).
  // Kept, it would be counted as watched, and its problem record shown, for as long as the
  // injector runs.
  EmptyDaemon d;
  d.docker.streamsToEnd = 1;
  d.docker.endedStreamEvents = containerEvent("create", kId, kAppLabels);
  Injector& injector = d.start([](InjectorOptions& o) { o.reconnectMin = 10ms; });
  BOOST_REQUIRE(runUntil(d.loop, [&] { return d.docker.eventPaths().size() >= 2 && d.docker.lists() >= 2; }, 5s));
  BOOST_TEST(runUntil(d.loop, [&] { return injector.counters().containersWatched == 0; }, 5s),
             "a container no list shows and no inspect finds is still watched");
}

BOOST_AUTO_TEST_CASE(StoppedContainersAtAListCostOneListOfAllContainersNotAnInspectEach) {
  // Requests to the daemon run one at a time: an inspect per stopped container would queue
  // as many round trips ahead of the inspect of a container starting now, which waits for
  // its shim meanwhile. A host keeps many stopped containers.
  EmptyDaemon d;
  d.docker.streamsToEnd = 1;
  for (int i = 0; i < 30; ++i) {
    std::string id = kId;
    id.replace(0, 2, (i < 16 ? "0" : "1") + std::string(1, "0123456789abcdef"[i % 16]));
    d.docker.endedStreamEvents += containerEvent("create", id, kAppLabels);
  }
  Injector& injector = d.start([](InjectorOptions& o) { o.reconnectMin = 10ms; });
  BOOST_REQUIRE(runUntil(d.loop, [&] { return d.docker.eventPaths().size() >= 2 && d.docker.lists() >= 2; }, 5s));
  BOOST_TEST(runUntil(d.loop, [&] { return injector.counters().containersWatched == 0; }, 5s),
             "containers no list of all containers shows are still watched");
  BOOST_TEST(d.docker.inspects() == 0);
  // One per reconcile, not one per container: the first stream's reconcile may still be
  // under way when the second begins (a slow machine: the kernel check's emulated VM).
  BOOST_TEST(d.docker.allLists() >= 1);
  BOOST_TEST(d.docker.allLists() <= 2);
}

BOOST_AUTO_TEST_CASE(AStoppedContainerStaysWatchedWhileTheListOfAllContainersShowsIt) {
  // It may start again: its labels are what its next start is served by.
  EmptyDaemon d;
  d.docker.streamsToEnd = 1;
  std::string removed = kId;
  removed.replace(0, 4, "dead");
  d.docker.endedStreamEvents = containerEvent("create", kId, kAppLabels) + containerEvent("create", removed, kAppLabels);
  d.docker.allListReply = [](int) {
    return jsonReply(200, R"([{"Id":")" + kId + R"(","Names":["/app"],"Labels":{"connect.6000":"198.18.0.5:6379"},"State":"exited"}])");
  };
  Injector& injector = d.start([](InjectorOptions& o) { o.reconnectMin = 10ms; });
  BOOST_REQUIRE(runUntil(d.loop, [&] { return d.docker.eventPaths().size() >= 2 && d.docker.lists() >= 2; }, 5s));
  BOOST_TEST(runUntil(d.loop, [&] { return injector.counters().containersWatched == 1; }, 5s));
  runUntil(d.loop, [] { return false; }, 200ms);
  BOOST_TEST(injector.counters().containersWatched == 1u, "the stopped container was forgotten");
}

BOOST_AUTO_TEST_CASE(NoStoppedContainerIsForgottenWhenTheListOfAllContainersFails) {
  EmptyDaemon d;
  d.docker.streamsToEnd = 1;
  d.docker.endedStreamEvents = containerEvent("create", kId, kAppLabels);
  d.docker.allListReply = [](int) { return jsonReply(500, R"({"message":"daemon busy"})"); };
  Injector& injector = d.start([](InjectorOptions& o) { o.reconnectMin = 10ms; });
  BOOST_REQUIRE(runUntil(d.loop, [&] { return d.docker.eventPaths().size() >= 2 && d.docker.lists() >= 2; }, 5s));
  runUntil(d.loop, [] { return false; }, 300ms);
  BOOST_TEST(injector.counters().containersWatched == 1u);
}

BOOST_AUTO_TEST_CASE(AFailedInspectIsTriedAgainWithBackOff) {
  // A running labelled container whose inspect failed has no other event coming that would
  // have it looked at again.
  std::string dir = tempDir();
  FakeDocker docker(dir, [](int) {
    return jsonReply(200, R"([{"Id":")" + kId + R"(","Names":["/app"],"Labels":{"connect.6000":"198.18.0.5:6379"},"State":"running"}])");
  });
  docker.inspectReply = [](int) { return jsonReply(500, R"({"message":"daemon busy"})"); };
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  InjectorOptions options = optionsIn(dir);
  options.reconcileRetryMin = 20ms;
  options.reconcileRetryMax = 160ms;
  Injector injector(loop, docker.endpoint(), options);
  BOOST_REQUIRE(injector.start());
  BOOST_REQUIRE(runUntil(loop, [&] { return docker.inspects() >= 1; }, 3s));
  // After 20, 40, 80, 160, 160 ... ms: about nine in 1.2 s, not sixty, nor one.
  runUntil(loop, [] { return false; }, 1200ms);
  BOOST_TEST(docker.inspects() >= 4);
  BOOST_TEST(docker.inspects() <= 14);
  BOOST_TEST(docker.lists() == 1, "the list that succeeded was asked again");
  injector.shutdown([] {});
  int atShutdown = docker.inspects();
  runUntil(loop, [] { return false; }, 500ms);
  // As with lists: one sent just before the shutdown may be counted after it; a retry
  // timer left running would ask every 160 ms: 3 more.
  BOOST_TEST(docker.inspects() <= atShutdown + 1, "inspects were retried after the shutdown");
}

BOOST_AUTO_TEST_CASE(AContainerWaitingToRestartIsLeftForItsStartEventNotInspectedAgainWithWarnings) {
  // A --restart container in Docker's back-off (a crash loop while its dependency is not up
  // yet) is in the list of running containers, and its inspect says Running and Restarting
  // with no Pid: nothing to inject into, and nothing wrong with Docker's reply.
  std::string dir = tempDir();
  writeShim(dir + "/shim", "exec sleep 30\n");
  std::unique_ptr<FakeContainerInit> init;
  FakeDocker docker(dir, [](int) {
    return jsonReply(200, R"([{"Id":")" + kId + R"(","Names":["/app"],"Labels":{"connect.6000":"198.18.0.5:6379"},"State":"restarting"}])");
  });
  docker.inspectReply = [&](int previous) {
    const std::string state = previous == 0 || !init ? R"("Running":true,"Restarting":true,"Pid":0)"
                                            : R"("Running":true,"Restarting":false,"Pid":)" + std::to_string(init->pid());
    return jsonReply(200, R"({"Id":")" + kId + R"(","Name":"/app","State":{)" + state +
                              R"(},"Config":{"Labels":{"connect.6000":"198.18.0.5:6379"}}})");
  };
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  InjectorOptions options = optionsIn(dir);
  options.supervisor.shimPath = dir + "/shim";
  options.stopShimsOnExit = true;
  options.reconcileRetryMin = 20ms;
  Injector injector(loop, docker.endpoint(), options);
  CapturedOutput log(STDERR_FILENO, dir + "/injector.log");
  BOOST_REQUIRE(injector.start());
  BOOST_REQUIRE(runUntil(loop, [&] { return docker.inspects() >= 1; }, 3s));
  runUntil(loop, [] { return false; }, 500ms);  // a retry would come after 20, 40, 80 ... ms
  log.restore();
  BOOST_TEST(docker.inspects() == 1, "inspected again while waiting to restart");
  BOOST_TEST(log.text().find("cannot inspect") == std::string::npos, log.text());
  BOOST_TEST(injector.counters().containersWatched == 1u);

  if (geteuid() != 0) {
    BOOST_TEST_MESSAGE("needs root for a container's cgroup and namespace; its injection at start not checked");
    shutDown(loop, injector);
    return;
  }
  init = std::make_unique<FakeContainerInit>(kId);
  docker.sendEvents(containerEvent("start", kId, kAppLabels));
  BOOST_TEST(runUntil(loop, [&] { return injector.counters().injectedOnStart == 1u; }, 5s), "not injected at its start");
  shutDown(loop, injector);
}

BOOST_AUTO_TEST_CASE(EventsDroppedWhileTheFirstListRunsAreReplayed) {
  // Review: more than 10000 events held during the first list (none acted on yet, so
  // lastEventNanos_ is 0): the new stream is asked for with no `since`, and all of them are lost.
  std::string dir = tempDir();
  FakeDocker docker(dir, [](int) { return jsonReply(200, "[]"); });
  docker.listsToTrickle = 1;  // the first list stays under way until its deadline
  for (int i = 0; i < 10001; ++i)
    docker.eventsDuringList += R"({"Type":"container","Action":"destroy","Actor":{"ID":"0123456789ab","Attributes":{}},"time":1796024645,"timeNano":)" +
                               std::to_string(1796024645000000000LL + i) + "}\n";
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  InjectorOptions options = optionsIn(dir);
  options.docker.deadline = 3000ms;
  options.reconnectMin = 10ms;
  Injector injector(loop, docker.endpoint(), options);
  BOOST_REQUIRE(injector.start());
  BOOST_REQUIRE(runUntil(loop, [&] { return docker.eventPaths().size() >= 2; }, 10s));
  auto paths = docker.eventPaths();
  BOOST_TEST(paths[1].find("&since=1796024644.999999999") != std::string::npos, "not replayed: " << paths[1]);
  injector.shutdown([] {});
}

BOOST_AUTO_TEST_CASE(EventsHeldWhileListingAreCappedByTheirSizeNotOnlyByTheirCount) {
  // Forty events of 900 KB (a container's labels ride on each) are fewer than 10000, but
  // 10000 such would be 9 GB of the root injector's memory: past 32 MiB held, they are
  // dropped and replayed from before the first, on a new stream.
  std::string dir = tempDir();
  FakeDocker docker(dir, [](int) { return jsonReply(200, "[]"); });
  docker.listsToTrickle = 1;  // the first list stays under way until its deadline
  const std::string label(900'000, 'x');
  for (int i = 0; i < 40; ++i)
    docker.eventsDuringList += R"({"Type":"container","Action":"destroy","Actor":{"ID":"0123456789ab","Attributes":{"big":")" +
                               label + R"("}},"time":1796024645,"timeNano":)" + std::to_string(1796024645000000000LL + i) +
                               "}\n";
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  InjectorOptions options = optionsIn(dir);
  options.docker.deadline = 3000ms;
  options.reconnectMin = 10ms;
  CapturedOutput err(STDERR_FILENO, dir + "/err.txt");
  Injector injector(loop, docker.endpoint(), options);
  BOOST_REQUIRE(injector.start());
  const bool reconnected = runUntil(loop, [&] { return docker.eventPaths().size() >= 2; }, 10s);
  injector.shutdown([] {});
  err.restore();
  const std::string log = err.text();
  BOOST_REQUIRE(reconnected);
  BOOST_TEST(docker.eventPaths()[1].find("&since=1796024644.999999999") != std::string::npos, docker.eventPaths()[1]);
  BOOST_TEST(log.find("too many Docker events while listing containers") != std::string::npos, log);
}

BOOST_AUTO_TEST_CASE(AnInjectorThatFindsTheDaemonWatchedAlreadyStopsBeforeActingOnAnyContainer) {
  std::string dir = tempDir();
  FakeDocker docker(dir, [](int) { return jsonReply(200, "[]"); });
  docker.infoReply = jsonReply(200, R"({"ID":"ABCD:EFGH","Containers":3})");
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  Injector injector(loop, docker.endpoint(), optionsIn(dir));
  std::string claimedId, failure;
  injector.claimDaemonWith(
      [&](const std::string& id) {
        claimedId = id;
        return Status::error("another connectable injector (pid 1) already watches it");
      },
      [&](const Status& why) { failure = why.message(); });
  BOOST_REQUIRE(injector.start());
  BOOST_REQUIRE(runUntil(loop, [&] { return !failure.empty(); }, 3s));
  BOOST_TEST(claimedId == "ABCD:EFGH");
  BOOST_TEST(failure.find("already watches it") != std::string::npos, failure);
  runUntil(loop, [] { return false; }, 300ms);
  BOOST_TEST(docker.eventPaths().empty());
  BOOST_TEST(docker.lists() == 0);
}

BOOST_AUTO_TEST_CASE(AnInjectorThatClaimsTheDaemonGoesOnToWatchIt) {
  std::string dir = tempDir();
  FakeDocker docker(dir, [](int) { return jsonReply(200, "[]"); });
  docker.infoReply = jsonReply(200, R"({"ID":"ABCD:EFGH"})");
  docker.streamsToEnd = 1;  // a reconnect does not claim again
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  InjectorOptions options = optionsIn(dir);
  options.reconnectMin = 10ms;
  Injector injector(loop, docker.endpoint(), options);
  int claims = 0;
  injector.claimDaemonWith([&](const std::string&) { return ++claims, Status::ok(); },
                           [](const Status& why) { BOOST_ERROR("claim failed: " + why.message()); });
  BOOST_REQUIRE(injector.start());
  BOOST_TEST(runUntil(loop, [&] { return docker.lists() >= 2; }, 3s));
  BOOST_TEST(claims == 1);
  injector.shutdown([] {});
}

BOOST_AUTO_TEST_CASE(ADaemonIdMissedOnceIsAskedForAgainBeforeAnyContainerIsWatched) {
  // A daemon busy for a moment: going on without its name would let another injector
  // take it meanwhile.
  std::string dir = tempDir();
  FakeDocker docker(dir, [](int) { return jsonReply(200, "[]"); });
  docker.firstInfoReply = jsonReply(500, R"({"message":"daemon busy"})");
  docker.infoReply = jsonReply(200, R"({"ID":"ABCD:EFGH"})");
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  InjectorOptions options = optionsIn(dir);
  options.reconnectMin = 10ms;
  Injector injector(loop, docker.endpoint(), options);
  std::vector<std::string> claimed;
  int listsAtClaim = -1;
  injector.claimDaemonWith(
      [&](const std::string& id) {
        claimed.push_back(id);
        listsAtClaim = docker.lists();
        return Status::ok();
      },
      [](const Status& why) { BOOST_ERROR("claim failed: " + why.message()); });
  BOOST_REQUIRE(injector.start());
  BOOST_TEST(runUntil(loop, [&] { return docker.lists() >= 1; }, 3s));
  BOOST_TEST(docker.infos == 2);
  BOOST_TEST(claimed == std::vector<std::string>{"ABCD:EFGH"});
  BOOST_TEST(listsAtClaim == 0);
  injector.shutdown([] {});
}

BOOST_AUTO_TEST_CASE(ADaemonThatGivesNoIdIsWatchedAnyway) {
  // Not every Engine API gives an ID: the socket's names are then all the lock has.
  std::string dir = tempDir();
  FakeDocker docker(dir, [](int) { return jsonReply(200, "[]"); });
  docker.infoReply = jsonReply(200, R"({"ID":""})");
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  Injector injector(loop, docker.endpoint(), optionsIn(dir));
  int claims = 0;
  injector.claimDaemonWith([&](const std::string&) { return ++claims, Status::ok(); }, [](const Status&) {});
  BOOST_REQUIRE(injector.start());
  BOOST_TEST(runUntil(loop, [&] { return docker.lists() >= 1; }, 3s));
  BOOST_TEST(claims == 0);
  injector.shutdown([] {});
}


BOOST_AUTO_TEST_CASE(AnInjectorRefusedByTheDaemonsNameNeverTookOverTheShimsOfTheOneHoldingIt) {
  // Both injectors keep their records in one state dir (the default /run/connectable). The
  // second must not adopt the first one's shims before it knows the daemon is its own: a
  // shim dying while it waits for /info would be started again by both injectors.
  std::string dir = tempDir();
  FakeDocker docker(dir, [](int) { return jsonReply(200, "[]"); });
  docker.infoReply = jsonReply(200, R"({"ID":"ABCD:EFGH"})");
  docker.infoDelay = 1000ms;
  Child shim = Child::spawn({"sleep", "30"});
  Child init = Child::spawn({"sleep", "30"});
  writeShimRecord(dir, shim, init);
  const std::string restarted = dir + "/restarted";
  writeShim(dir + "/shim", "echo $$ >> " + restarted + "\nexec sleep 30\n");
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  InjectorOptions options = optionsIn(dir);
  options.supervisor.shimPath = dir + "/shim";
  options.supervisor.restartMin = 10ms;
  Injector injector(loop, docker.endpoint(), options);
  std::string failure;
  injector.claimDaemonWith([](const std::string&) { return Status::error("another connectable injector holds it"); },
                           [&](const Status& why) { failure = why.message(); });
  BOOST_REQUIRE(injector.start());
  BOOST_TEST(injector.supervisor().list().empty(), "adopted before the daemon was known");
  shim.kill();  // dies while the daemon is asked who it is
  BOOST_REQUIRE(runUntil(loop, [&] { return !failure.empty(); }, 5s));
  std::ifstream started(restarted);
  std::string pid;
  bool restartedIt = false;
  while (started >> pid) {
    restartedIt = true;
    ::kill(std::stoi(pid), SIGKILL);
  }
  BOOST_TEST(!restartedIt, "the refused injector started the other one's shim again");
  BOOST_TEST(injector.supervisor().list().empty());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(InjectorShutdown)

BOOST_AUTO_TEST_CASE(ASignalWhileDockerTricklesAnAnswerEndsAtOnce) {
  std::string dir = tempDir();
  FakeDocker docker(dir, [](int) { return jsonReply(200, "[]"); });
  docker.listsToTrickle = 1;
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  Injector injector(loop, docker.endpoint(), optionsIn(dir));  // the default 60 s deadline
  BOOST_REQUIRE(injector.start());
  BOOST_REQUIRE(runUntil(loop, [&] { return docker.lists() >= 1; }, 3s));
  int done = 0;
  auto signalled = Clock::now();
  loop.addTimer(0ms, [&] { injector.shutdown([&] { ++done; }); });
  BOOST_TEST(runUntil(loop, [&] { return done > 0; }, 2s));
  BOOST_TEST(std::chrono::duration_cast<Millis>(Clock::now() - signalled).count() < 500);
}

BOOST_AUTO_TEST_CASE(ASecondSignalWhileTheShimsStopChangesNothing) {
  std::string dir = tempDir();
  writeShim(dir + "/shim", "exec sleep 30\n");
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  InjectorOptions options;
  options.stopShimsOnExit = true;
  options.supervisor.shimPath = dir + "/shim";
  options.supervisor.stateDir = dir;
  Injector injector(loop, *parseDockerHost("unix://" + dir + "/no-docker.sock"), options);
  BOOST_REQUIRE(injector.supervisor().init());
  Child init = Child::spawn({"sleep", "30"});
  auto process = ProcessHandle::open(init.pid());
  BOOST_REQUIRE(process);
  auto netns = process->openNetns();
  BOOST_REQUIRE(netns);
  ContainerRequest request = parseContainerLabels({{"connect.6000", "198.18.0.5:6379"}});
  BOOST_REQUIRE(injector.supervisor().ensure(kId, "app", request, std::move(*process), std::move(*netns)));
  BOOST_REQUIRE_EQUAL(injector.supervisor().list().size(), 1u);
  pid_t shim = injector.supervisor().list()[0].shimPid;

  int done = 0;
  injector.shutdown([&] { ++done; });
  injector.shutdown([&] { ++done; });  // SIGINT on the heels of SIGTERM
  BOOST_CHECK_NO_THROW(runUntil(loop, [&] { return done > 0; }, 2s));
  BOOST_CHECK_NO_THROW(runUntil(loop, [] { return false; }, 150ms));  // a second wait would end by now
  BOOST_TEST(done == 1);
  BOOST_TEST(injector.supervisor().allGone());
  if (!injector.supervisor().allGone()) {  // only ever our own child
    kill(shim, SIGKILL);
    waitpid(shim, nullptr, 0);
  }
}

BOOST_AUTO_TEST_CASE(AContainerStartingAfterTheShimsWereStoppedGetsNoShim) {
  // --stop-shims-on-exit: a shim started after stopAll() would never be stopped, and the
  // injector, waiting for every shim to be gone, would not exit before its container does.
  if (geteuid() != 0) {
    BOOST_TEST_MESSAGE("needs root for a container's cgroup and namespace; not checked");
    return;
  }
  EmptyDaemon d;
  writeShim(d.dir + "/shim", "exec sleep 30\n");
  Injector& injector = d.start([&](InjectorOptions& o) {
    o.supervisor.shimPath = d.dir + "/shim";
    o.stopShimsOnExit = true;
    o.earlyPollAfterCreate = 5000ms;  // still looking for its init long after the signal
  });
  d.docker.sendEvents(containerEvent("create", kId, kAppLabels));
  BOOST_REQUIRE(runUntil(d.loop, [&] { return injector.counters().earlyPolls >= 1; }, 5s));
  int done = 0;
  injector.shutdown([&] { ++done; });
  BOOST_REQUIRE(runUntil(d.loop, [&] { return done > 0; }, 2s));

  FakeContainerInit init(kId);  // runc starts it now
  runUntil(d.loop, [] { return false; }, 300ms);
  BOOST_TEST(injector.counters().injectedEarly == 0u);
  BOOST_TEST(injector.supervisor().list().empty(), "a shim was started after the shims were stopped");
  injector.supervisor().stopAll();  // whatever was started, so that nothing outlives the case
  BOOST_TEST(runUntil(d.loop, [&] { return injector.supervisor().allGone(); }, 5s));
  d.injector.reset();  // shut down already
}

BOOST_AUTO_TEST_SUITE_END()
