// The injector on its event loop, with a stand-in shim (a shell script) and a child `sleep`
// as a container's init.
#include "injector/injector.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <fstream>
#include <functional>
#include <string>

#include "common/event_loop.h"
#include "tests/support/process.h"

using namespace connectable;
using namespace std::chrono_literals;
using connectable::testing::Child;
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

// Runs the loop until `done` holds or `timeout` passes (EventLoop runs once per instance).
bool runUntil(EventLoop& loop, const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  std::function<void()> check = [&] {
    if (done() || Clock::now() > deadline) {
      loop.stop();
      return;
    }
    loop.addTimer(5ms, check);
  };
  loop.addTimer(0ms, check);
  loop.run();
  return done();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(InjectorShutdown)

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

BOOST_AUTO_TEST_SUITE_END()
