// FakeContainerInit: a process in a network namespace of its own, placed in the cgroup
// Docker would make for a container with the given (made-up) id: what the injector finds
// while runc starts one. Needs root (unshare, cgroup directories). One test thread.
// Header-only: it uses the injector's own cgroup paths, and only injector tests link those.
#pragma once

#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include "injector/process_handle.h"

namespace connectable::testing {

class FakeContainerInit {
 public:
  explicit FakeContainerInit(const std::string& id) {
    int ready[2];
    BOOST_REQUIRE(pipe(ready) == 0);
    pid_ = fork();
    BOOST_REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      close(ready[0]);
      char ok = unshare(CLONE_NEWNET) == 0 ? 1 : 0;
      (void)!write(ready[1], &ok, 1);
      for (;;) pause();
    }
    close(ready[1]);
    char ok = 0;
    (void)!read(ready[0], &ok, 1);
    close(ready[0]);
    BOOST_REQUIRE_MESSAGE(ok == 1, "unshare(CLONE_NEWNET) failed");
    // The first of Docker's cgroup layouts this host has: v1 or v2, cgroupfs driver.
    for (const auto& procs : containerCgroupProcsPaths(id)) {
      const std::string dir = procs.substr(0, procs.rfind('/'));
      const std::string parent = dir.substr(0, dir.rfind('/'));
      mkdir(parent.c_str(), 0755);
      if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) continue;
      std::ofstream out(procs);
      out << pid_ << std::flush;
      if (out) {
        cgroup_ = dir;
        break;
      }
      rmdir(dir.c_str());
    }
    BOOST_REQUIRE_MESSAGE(!cgroup_.empty(), "no cgroup could be made for a fake container");
  }
  ~FakeContainerInit() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    // The kernel empties the cgroup a moment after its last process is reaped.
    for (int i = 0; i < 100 && rmdir(cgroup_.c_str()) != 0 && errno == EBUSY; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  FakeContainerInit(const FakeContainerInit&) = delete;
  FakeContainerInit& operator=(const FakeContainerInit&) = delete;

  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  std::string cgroup_;
};

}  // namespace connectable::testing
