#include "injector/state_dir_lock.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <string>
#include <thread>

#include "tests/support/process.h"

using namespace connectable;
using connectable::testing::tempDir;

BOOST_AUTO_TEST_SUITE(InjectorStateDirLock)

BOOST_AUTO_TEST_CASE(ASecondInjectorOnTheSameStateDirIsRefusedAndToldWhoHasIt) {
  const std::string dir = tempDir();
  auto first = StateDirLock::acquire(dir);
  BOOST_REQUIRE(first);
  BOOST_TEST(first->held());
  auto second = StateDirLock::acquire(dir);
  BOOST_REQUIRE(!second);
  const std::string error = second.status().message();
  BOOST_TEST(error.find("(pid " + std::to_string(getpid()) + ")") != std::string::npos, error);
  BOOST_TEST(error.find("its own --state-dir") != std::string::npos, error);
}

BOOST_AUTO_TEST_CASE(TheLockIsFreeOnceItsHolderIsGoneHoweverItEnded) {
  const std::string dir = tempDir();
  {
    auto held = StateDirLock::acquire(dir);
    BOOST_REQUIRE(held);
  }
  BOOST_TEST(StateDirLock::acquire(dir).isOk());
  // A holder killed outright leaves its file, and no lock.
  int ready[2];
  BOOST_REQUIRE(pipe(ready) == 0);
  pid_t child = fork();
  if (child == 0) {
    auto lock = StateDirLock::acquire(dir);
    char held = lock ? 'y' : 'n';
    [[maybe_unused]] ssize_t n = write(ready[1], &held, 1);
    pause();
    _exit(0);
  }
  BOOST_REQUIRE(child > 0);
  close(ready[1]);
  char held = 0;
  BOOST_TEST(read(ready[0], &held, 1) == 1);
  close(ready[0]);
  BOOST_TEST(held == 'y');
  BOOST_TEST(!StateDirLock::acquire(dir).isOk());
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  BOOST_TEST(StateDirLock::acquire(dir).isOk());
}

BOOST_AUTO_TEST_CASE(InjectorsWithStateDirsOfTheirOwnBothRun) {
  auto a = StateDirLock::acquire(tempDir());
  auto b = StateDirLock::acquire(tempDir());
  BOOST_TEST(a.isOk());
  BOOST_TEST(b.isOk());
}

BOOST_AUTO_TEST_CASE(AProbeTellsWhetherAnInjectorHoldsTheStateDirAndLeavesItAsItWas) {
  const std::string dir = tempDir();
  auto none = StateDirLock::heldByAnInjector(dir);
  BOOST_REQUIRE(none);
  BOOST_TEST(!*none);
  BOOST_TEST(access((dir + "/injector.lock").c_str(), F_OK) != 0);  // a probe makes no lock file
  {
    auto held = StateDirLock::acquire(dir);
    BOOST_REQUIRE(held);
    auto probed = StateDirLock::heldByAnInjector(dir);
    BOOST_REQUIRE(probed);
    BOOST_TEST(*probed);
  }
  // The holder gone, its file stays: no injector holds it, and the probe held nothing after.
  auto after = StateDirLock::heldByAnInjector(dir);
  BOOST_REQUIRE(after);
  BOOST_TEST(!*after);
  BOOST_TEST(StateDirLock::acquire(dir).isOk());
}

BOOST_AUTO_TEST_CASE(AnInjectorStartingWhileAProbeHoldsTheLockForAMomentStillGetsIt) {
  // A probe holds the lock shared for a few microseconds: an injector starting then must
  // wait it out, not refuse to start as if another injector had it.
  const std::string dir = tempDir();
  { BOOST_REQUIRE(StateDirLock::acquire(dir)); }  // makes the file
  int probe = open((dir + "/injector.lock").c_str(), O_RDONLY | O_CLOEXEC);
  BOOST_REQUIRE(probe >= 0);
  BOOST_REQUIRE(flock(probe, LOCK_SH | LOCK_NB) == 0);
  std::thread release([probe] {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    close(probe);
  });
  auto lock = StateDirLock::acquire(dir);
  release.join();
  BOOST_TEST(lock.isOk(), (lock ? "" : lock.status().message()));
}

BOOST_AUTO_TEST_SUITE_END()
