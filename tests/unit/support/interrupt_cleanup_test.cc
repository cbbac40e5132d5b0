#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "tests/support/interrupt_cleanup.h"
#include "tests/support/netns_fixture.h"
#include "tests/support/process.h"

using namespace connectable::testing;
using namespace std::chrono_literals;

namespace {

// Alive: neither gone nor a zombie waiting for whoever adopted it.
bool alive(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

// The live processes of process group `group`.
std::vector<pid_t> liveMembersOf(pid_t group) {
  std::vector<pid_t> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = std::stoi(name);
    std::string stat = readFile("/proc/" + name + "/stat");
    auto close = stat.rfind(')');
    if (close == std::string::npos || !alive(pid)) continue;
    int parent = 0, pgrp = 0;
    char state = 0;
    if (std::sscanf(stat.c_str() + close + 2, "%c %d %d", &state, &parent, &pgrp) == 3 && pgrp == group)
      out.push_back(pid);
  }
  return out;
}

// Runs `body` as a test program of its own (a forked child) that `body` ends with a signal;
// returns what it wrote to the pipe it is given, once it died of `signo`.
std::string programKilledBy(int signo, const std::function<void(int report)>& body) {
  ForkedRun run = runForked(body);  // body raises the signal before it returns
  BOOST_TEST((WIFSIGNALED(run.status) && WTERMSIG(run.status) == signo), "the program did not die of signal " << signo);
  return run.report;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(InterruptCleanup)

BOOST_AUTO_TEST_CASE(ATestProgramStoppedBySigintOrSigtermTakesItsChildrenAndTheirGroupsWithIt) {
  for (int signo : {SIGINT, SIGTERM}) {
    struct sigaction now {};
    sigaction(signo, nullptr, &now);
    if (now.sa_handler == SIG_IGN) continue;  // run in the background by a shell: it would not end the program
    BOOST_TEST_CONTEXT("signal " << signo) {
      std::string said = programKilledBy(signo, [&](int report) {
        Child lone = Child::spawn({"sleep", "60"});
        // A group leader with a helper of its own, as dnsmasq forks its TCP helpers.
        Child leader = Child::spawn({"/bin/sh", "-c", "sleep 60 & wait"}, "", {}, /*ownGroup=*/true);
        waitFor([&] { return liveMembersOf(leader.pid()).size() == 2; }, 5s);
        dprintf(report, "%d %d", lone.pid(), leader.pid());
        raise(signo);
      });
      pid_t lone = 0, group = 0;
      BOOST_REQUIRE(std::sscanf(said.c_str(), "%d %d", &lone, &group) == 2);
      BOOST_TEST(waitFor([&] { return !alive(lone); }, 2s), "a child outlived its test program");
      BOOST_TEST(waitFor([&] { return liveMembersOf(group).empty(); }, 2s), "a process group outlived its test program");
      // What a failure left behind is ours to end, by pid.
      if (alive(lone)) kill(lone, SIGKILL);
      for (pid_t p : liveMembersOf(group)) kill(p, SIGKILL);
    }
  }
}

BOOST_AUTO_TEST_CASE(ATestProgramStoppedBySigtermRemovesItsNamespacesAndDirectories) {
  if (geteuid() != 0) {
    BOOST_TEST_MESSAGE("not root: no namespace to make; scripts/test runs this as root");
    return;
  }
  std::string said = programKilledBy(SIGTERM, [&](int report) {
    TestNetns ns;
    std::string dir = tempDir();
    std::ofstream(dir + "/log") << "a log line\n";
    dprintf(report, "%s %s", ns.path().c_str(), dir.c_str());
    raise(SIGTERM);
  });
  char netns[256] = {}, dir[256] = {};
  BOOST_REQUIRE(std::sscanf(said.c_str(), "%255s %255s", netns, dir) == 2);
  struct stat st;
  const bool netnsLeft = stat(netns, &st) == 0, dirLeft = stat(dir, &st) == 0;
  BOOST_TEST(!netnsLeft, netns << " outlived its test program");
  BOOST_TEST(!dirLeft, dir << " outlived its test program");
  if (netnsLeft) run({"ip", "netns", "del", std::filesystem::path(netns).filename().string()});
  if (dirLeft) run({"rm", "-rf", dir});
}

BOOST_AUTO_TEST_CASE(ATestProgramStoppedBySigtermRunsTheCommandsLeftToEndWhatItMadeLatestFirst) {
  // As `docker rm -f` a container, then `docker network rm` the network it was on.
  const std::string log = tempDir() + "/commands";
  auto appending = [&](const std::string& word) {
    return std::vector<std::string>{"/bin/sh", "-c", "echo " + word + " >> " + log};
  };
  programKilledBy(SIGTERM, [&](int) {
    interrupt_cleanup::addCommand(appending("network"));
    interrupt_cleanup::addCommand(appending("done-already"));
    interrupt_cleanup::addCommand(appending("container"));
    interrupt_cleanup::removeCommand(appending("done-already"));  // its owner ran it
    raise(SIGTERM);
  });
  BOOST_TEST(readFile(log) == "container\nnetwork\n");
}

BOOST_AUTO_TEST_SUITE_END()
