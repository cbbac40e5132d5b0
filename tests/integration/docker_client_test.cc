// DockerClient and DockerEventStream against the real dockerd on /var/run/docker.sock.
// Started by scripts/test-docker-client, which makes sure a daemon runs. Everything created
// here (image, containers, network in 198.18.0.0/15) is removed, also when a check fails.
#define BOOST_TEST_MODULE docker client integration
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "common/event_loop.h"
#include "injector/docker_client.h"
#include "injector/docker_event_stream.h"
#include "tests/support/interrupt_cleanup.h"
#include "tests/support/process.h"

using namespace connectable;
using namespace std::chrono_literals;
using connectable::testing::run;
using connectable::testing::sh;

namespace {

const std::string kDocker = "/usr/bin/docker";  // not the newer client first in PATH
const std::string kSocket = "/var/run/docker.sock";
const std::string kImage = "connectable-itest-busybox-" + std::to_string(getpid());
const std::string kNetwork = "connectable-itest-" + std::to_string(getpid());
const std::string kSubnet = "198.18.77.0/24";

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Removes what the tests created, the latest first (containers before the network they
// are on, before the image they run), whatever happened: also when the test program is
// interrupted (tests/support/interrupt_cleanup.h).
struct Created {
  std::vector<std::vector<std::string>> removals;
  void add(std::vector<std::string> removal) {
    connectable::testing::interrupt_cleanup::addCommand(removal);
    removals.push_back(std::move(removal));
  }
  ~Created() {
    for (auto it = removals.rbegin(); it != removals.rend(); ++it) {
      run(*it);
      connectable::testing::interrupt_cleanup::removeCommand(*it);
    }
  }
};
Created* created = nullptr;

struct DockerFixture {
  Created cleanup;
  DockerFixture() {
    created = &cleanup;
    struct stat st {};
    if (::stat(kSocket.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) {
      BOOST_FAIL("no Docker daemon socket at " + kSocket +
                 ": run this test through scripts/test-docker-client, which starts dockerd");
    }
    // Offline image from busybox-static: nothing can be pulled here.
    auto built = sh("set -e; d=$(mktemp -d); mkdir -p $d/bin; cp /bin/busybox $d/bin/; "
                    "for a in sh sleep cat; do ln -s busybox $d/bin/$a; done; "
                    "tar -C $d -c . | " + kDocker + " import --change 'CMD [\"/bin/sh\"]' - " +
                    kImage + " >/dev/null; rm -rf $d");
    if (built.exitCode != 0) BOOST_FAIL("building " + kImage + ": " + built.err);
    cleanup.add({kDocker, "image", "rm", "-f", kImage});
  }
  ~DockerFixture() { created = nullptr; }
};

// Starts a container and registers it for removal. Returns its full id.
std::string runContainer(const std::string& network) {
  auto r = run({kDocker, "run", "-d", "--label", "connect.6000=x.y", "--network", network,
                kImage, "sleep", "60"});
  BOOST_REQUIRE_MESSAGE(r.exitCode == 0, "docker run: " << r.err);
  std::string id = trim(r.out);
  created->add({kDocker, "rm", "-f", id});
  return id;
}

DockerEndpoint defaultEndpoint() { return *parseDockerHost("unix://" + kSocket); }

struct RecordingSink : DockerEventSink {
  int connected = 0;
  std::vector<DockerEvent> events;
  std::vector<Status> ended;
  void onDockerStreamConnected() override { ++connected; }
  void onDockerEvent(const DockerEvent& e) override { events.push_back(e); }
  void onDockerStreamEnded(const Status& why) override { ended.push_back(why); }

  // The actions seen for one container, container and network events alike, in order.
  std::vector<std::string> actionsFor(const std::string& id) const {
    std::vector<std::string> out;
    for (const auto& e : events) {
      if (e.containerId() == id) out.push_back(e.type + ":" + e.action);
    }
    return out;
  }
  bool saw(const std::string& id, const std::string& typeAction) const {
    auto a = actionsFor(id);
    return std::find(a.begin(), a.end(), typeAction) != a.end();
  }
};

// Runs `steps` one after the other on the loop: a step returns true when done; it is
// polled every 5 ms (blocking docker commands inside a step are fine: events queue up).
bool runSteps(EventLoop& loop, std::vector<std::function<bool()>> steps,
              std::chrono::milliseconds timeout, size_t* reached) {
  auto deadline = Clock::now() + timeout;
  size_t next = 0;
  std::function<void()> tick = [&] {
    while (next < steps.size() && steps[next]()) ++next;
    if (next == steps.size() || Clock::now() > deadline) {
      loop.stop();
      return;
    }
    loop.addTimer(5ms, tick);
  };
  loop.addTimer(0ms, tick);
  loop.run();
  *reached = next;
  return next == steps.size();
}

// A UNIX-socket relay to dockerd that the test can cut, to see the stream notice it.
class CuttableRelay {
 public:
  CuttableRelay() {
    path_ = "/tmp/connectable-itest-relay-" + std::to_string(getpid()) + ".sock";
    ::unlink(path_.c_str());
    listenFd_ = listenOn(path_);
    BOOST_REQUIRE(listenFd_ >= 0);
    BOOST_REQUIRE(::pipe(wake_) == 0);
    thread_ = std::thread([this] { relay(); });
  }
  ~CuttableRelay() {
    cut();
    thread_.join();
    ::close(listenFd_);
    ::close(wake_[0]);
    ::close(wake_[1]);
    ::unlink(path_.c_str());
  }
  std::string endpoint() const { return "unix://" + path_; }
  void cut() {
    if (!cut_.exchange(true)) {
      [[maybe_unused]] ssize_t n = ::write(wake_[1], "x", 1);
    }
  }

 private:
  static int listenOn(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path.copy(addr.sun_path, sizeof addr.sun_path - 1);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 4) != 0) {
      ::close(fd);
      return -1;
    }
    return fd;
  }
  void relay() {
    pollfd first[2] = {{listenFd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (::poll(first, 2, -1) <= 0 || (first[1].revents & POLLIN)) return;
    int client = ::accept4(listenFd_, nullptr, nullptr, SOCK_CLOEXEC);
    int daemon = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    kSocket.copy(addr.sun_path, sizeof addr.sun_path - 1);
    if (client >= 0 && ::connect(daemon, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      char buf[16384];
      for (;;) {
        pollfd fds[3] = {{client, POLLIN, 0}, {daemon, POLLIN, 0}, {wake_[0], POLLIN, 0}};
        if (::poll(fds, 3, -1) < 0 || fds[2].revents) break;
        bool closed = false;
        for (int i = 0; i < 2 && !closed; ++i) {
          if (!fds[i].revents) continue;
          ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
          closed = n <= 0 || ::write(fds[1 - i].fd, buf, static_cast<size_t>(n)) != n;
        }
        if (closed) break;
      }
    }
    if (client >= 0) ::close(client);
    ::close(daemon);
  }

  std::string path_;
  int listenFd_ = -1;
  int wake_[2] = {-1, -1};
  std::atomic<bool> cut_{false};
  std::thread thread_;
};

}  // namespace

BOOST_TEST_GLOBAL_FIXTURE(DockerFixture);

BOOST_AUTO_TEST_SUITE(DockerClientAgainstDockerd)

BOOST_AUTO_TEST_CASE(NegotiatesTheDaemonsApiVersion) {
  DockerClient client(defaultEndpoint());
  Status s = client.negotiate();
  BOOST_REQUIRE_MESSAGE(s, s.message());
  auto server = run({kDocker, "version", "--format", "{{.Server.APIVersion}}"});
  BOOST_REQUIRE_EQUAL(server.exitCode, 0);
  auto serverVersion = parseDockerApiVersion(trim(server.out));
  BOOST_REQUIRE(serverVersion);
  DockerApiVersion expected =
      *serverVersion < kNewestKnownDockerApi ? *serverVersion : kNewestKnownDockerApi;
  BOOST_TEST(client.apiVersion().toString() == expected.toString());
  BOOST_TEST(!client.serverVersion().empty());
}

BOOST_AUTO_TEST_CASE(ListsAndInspectsALabelledContainer) {
  std::string id = runContainer("none");
  DockerClient client(defaultEndpoint());
  BOOST_REQUIRE(client.negotiate());

  auto all = client.listContainers();
  BOOST_REQUIRE_MESSAGE(all, all.status().message());
  BOOST_TEST(all->skipped.empty());
  const auto* list = &all->containers;
  auto it = std::find_if(list->begin(), list->end(), [&](auto& c) { return c.id == id; });
  BOOST_REQUIRE_MESSAGE(it != list->end(), "container " << id << " not listed");
  BOOST_TEST(it->labels.at("connect.6000") == "x.y");
  BOOST_TEST(it->state == "running");
  BOOST_TEST(it->networkMode == "none");

  auto info = client.inspectContainer(id);
  BOOST_REQUIRE_MESSAGE(info, info.status().message());
  BOOST_TEST(info->id == id);
  BOOST_TEST(info->running);
  BOOST_TEST(info->pid > 0);
  BOOST_TEST(::access(("/proc/" + std::to_string(info->pid)).c_str(), F_OK) == 0);
  BOOST_TEST(info->labels.at("connect.6000") == "x.y");
  BOOST_TEST(info->networkMode == "none");
  BOOST_TEST(info->sandboxKey.rfind("/var/run/docker/netns/", 0) == 0u);
  BOOST_TEST(!info->startedAt.empty());

  bool notFound = false;
  auto gone = client.inspectContainer("connectable-itest-no-such-container", &notFound);
  BOOST_TEST(!gone);
  BOOST_TEST(notFound);
  BOOST_TEST(gone.status().message().find("no such container") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(AStoppedContainerIsListedOnlyInTheListOfAllContainers) {
  // The injector tells a stopped container (it may start again) from a removed one by it.
  auto r = run({kDocker, "create", "--label", "connect.6000=x.y", "--network", "none", kImage, "sleep", "60"});
  BOOST_REQUIRE_MESSAGE(r.exitCode == 0, "docker create: " << r.err);
  std::string id = trim(r.out);
  created->add({kDocker, "rm", "-f", id});
  DockerClient client(defaultEndpoint());
  BOOST_REQUIRE(client.negotiate());
  auto listed = [&](bool all) {
    auto list = client.listContainers(all);
    BOOST_REQUIRE_MESSAGE(list, list.status().message());
    for (const auto& c : list->containers)
      if (c.id == id) return c.state;
    return std::string("not listed");
  };
  BOOST_TEST(listed(false) == "not listed");
  BOOST_TEST(listed(true) == "created");
}

BOOST_AUTO_TEST_CASE(StreamDeliversTheLifecycleInOrderWithLabels) {
  auto net = run({kDocker, "network", "create", "--subnet", kSubnet, kNetwork});
  BOOST_REQUIRE_MESSAGE(net.exitCode == 0, "docker network create: " << net.err);
  created->add({kDocker, "network", "rm", kNetwork});

  DockerClient client(defaultEndpoint());
  BOOST_REQUIRE(client.negotiate());
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  RecordingSink sink;
  DockerEventStream stream(loop, client.endpoint(), client.apiVersion(), sink);
  BOOST_REQUIRE(stream.start());

  std::string onNet, onNone;
  size_t reached = 0;
  bool done = runSteps(
      loop,
      {[&] { return sink.connected == 1; },
       [&] {
         onNet = runContainer(kNetwork);
         onNone = runContainer("none");
         return true;
       },
       [&] { return sink.saw(onNet, "container:start") && sink.saw(onNone, "container:start"); },
       [&] {
         run({kDocker, "rm", "-f", onNet, onNone});
         return true;
       },
       [&] {
         return sink.saw(onNet, "container:destroy") && sink.saw(onNone, "container:destroy");
       }},
      30s, &reached);
  BOOST_REQUIRE_MESSAGE(done, "stopped waiting at step " << reached << "; ended: "
                                  << (sink.ended.empty() ? "no" : sink.ended[0].message()));

  for (const std::string& id : {onNet, onNone}) {
    auto actions = sink.actionsFor(id);
    std::vector<std::string> expected = {"container:create", "network:connect",
                                         "container:start", "container:die",
                                         "container:destroy"};
    // Only these, in this order (kill and network disconnect may come in between).
    std::vector<std::string> seen;
    for (const auto& a : actions) {
      if (std::find(expected.begin(), expected.end(), a) != expected.end()) seen.push_back(a);
    }
    BOOST_TEST(seen == expected, boost::test_tools::per_element());
    for (const auto& e : sink.events) {
      if (e.isContainer() && e.actorId == id) {
        BOOST_TEST(e.attributes.at("connect.6000") == "x.y");
        BOOST_TEST(!e.attributes.at("name").empty());
        BOOST_TEST(e.timeNano > 0);
      }
    }
  }
  BOOST_TEST(sink.ended.empty());
  BOOST_TEST(stream.malformedCount() == 0u);
}

BOOST_AUTO_TEST_CASE(StreamReportsAnEndWhenTheConnectionIsCut) {
  CuttableRelay relay;
  auto endpoint = parseDockerHost(relay.endpoint());
  BOOST_REQUIRE(endpoint);
  DockerClient client(defaultEndpoint());
  BOOST_REQUIRE(client.negotiate());
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  RecordingSink sink;
  DockerEventStream stream(loop, *endpoint, client.apiVersion(), sink);
  BOOST_REQUIRE(stream.start());
  size_t reached = 0;
  bool done = runSteps(loop,
                       {[&] { return sink.connected == 1; },
                        [&] {
                          relay.cut();
                          return true;
                        },
                        [&] { return !sink.ended.empty(); }},
                       10s, &reached);
  BOOST_REQUIRE_MESSAGE(done, "stopped waiting at step " << reached);
  BOOST_TEST(!sink.ended[0].isOk());
  BOOST_TEST(stream.ended());
}

BOOST_AUTO_TEST_SUITE_END()
