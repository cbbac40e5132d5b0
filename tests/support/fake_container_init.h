// FakeContainerInit: a process in a network namespace of its own (and, if asked, a pid
// namespace whose pid 1 it is), placed in the cgroup Docker would make for a container with
// the given (made-up) id: what the injector finds while runc starts one. Needs root
// (unshare, cgroup directories). One test thread.
// Header-only: it uses the injector's own cgroup paths, and only injector tests link those.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
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
#include <vector>

#include "injector/process_handle.h"

namespace connectable::testing {

class FakeContainerInit {
 public:
  enum Namespaces { NetOnly, NetAndPid };

  explicit FakeContainerInit(const std::string& id, Namespaces namespaces = NetOnly) {
    int ready[2];
    BOOST_REQUIRE(pipe(ready) == 0);
    // clone() without a stack is fork() that can also make the child pid 1 of a new namespace.
    const long flags = SIGCHLD | (namespaces == NetAndPid ? CLONE_NEWPID : 0);
    pid_ = static_cast<pid_t>(syscall(SYS_clone, flags, nullptr, nullptr, nullptr, 0));
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
    if (ok != 1) end();  // the constructor fails: no destructor will
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
    if (cgroup_.empty()) end();
    BOOST_REQUIRE_MESSAGE(!cgroup_.empty(), "no cgroup could be made for a fake container");
  }

  // A process started in the container as `docker exec` does: it joins the init's
  // namespaces (pid ones included: not pid 1 there) and the container's cgroup.
  // Killed with the init, as the kernel ends a pid namespace's processes with its pid 1.
  pid_t exec() {
    int report[2];
    BOOST_REQUIRE(pipe(report) == 0);
    pid_t joiner = fork();
    BOOST_REQUIRE(joiner >= 0);
    if (joiner == 0) {
      close(report[0]);
      for (const char* ns : {"net", "pid"}) {
        int fd = open(("/proc/" + std::to_string(pid_) + "/ns/" + ns).c_str(), O_RDONLY);
        if (fd < 0 || setns(fd, 0) != 0) _exit(1);
        close(fd);
      }
      pid_t inside = fork();  // setns into a pid namespace places the children there
      if (inside == 0) {
        for (;;) pause();
      }
      (void)!write(report[1], &inside, sizeof inside);
      waitpid(inside, nullptr, 0);
      _exit(0);
    }
    close(report[1]);
    pid_t inside = -1;
    (void)!read(report[0], &inside, sizeof inside);
    close(report[0]);
    joiners_.push_back(joiner);
    BOOST_REQUIRE_MESSAGE(inside > 0, "could not start a process in the fake container's namespaces");
    std::ofstream(cgroup_ + "/cgroup.procs") << inside << std::flush;
    return inside;
  }
  ~FakeContainerInit() { end(); }
  FakeContainerInit(const FakeContainerInit&) = delete;
  FakeContainerInit& operator=(const FakeContainerInit&) = delete;

  pid_t pid() const { return pid_; }

  // Moves a process of the container out of its cgroup, to the root of the hierarchy.
  void leaveCgroup(pid_t pid) {
    std::string root = "/sys/fs/cgroup";
    for (const char* v1 : {"/sys/fs/cgroup/pids/", "/sys/fs/cgroup/memory/"})
      if (cgroup_.rfind(v1, 0) == 0) root = std::string(v1, std::char_traits<char>::length(v1) - 1);
    std::ofstream out(root + "/cgroup.procs");
    out << pid << std::flush;
    BOOST_REQUIRE_MESSAGE(out, "could not move pid " << pid << " to " << root);
  }

 private:
  void end() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    for (pid_t joiner : joiners_) {
      kill(joiner, SIGKILL);
      waitpid(joiner, nullptr, 0);
    }
    if (cgroup_.empty()) return;
    // The kernel empties the cgroup a moment after its last process is reaped.
    for (int i = 0; i < 100 && rmdir(cgroup_.c_str()) != 0 && errno == EBUSY; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }

  pid_t pid_ = -1;
  std::string cgroup_;
  std::vector<pid_t> joiners_;
};

}  // namespace connectable::testing
