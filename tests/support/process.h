// Process: runs real programs for integration tests (ip, curl, redis-cli, the shim itself)
// and ends exactly the processes it started, by pid, also when a test fails.
// Not thread-safe; one test thread uses it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace connectable::testing {

struct RunResult {
  int exitCode = -1;   // -1: killed by a signal or not started
  std::string out;     // stdout
  std::string err;     // stderr
};

// Runs argv to completion (killed after `timeout`), capturing stdout and stderr.
RunResult run(const std::vector<std::string>& argv,
              std::chrono::milliseconds timeout = std::chrono::seconds(30),
              const std::string& input = "");
// Runs a shell command line with /bin/sh -c.
RunResult sh(const std::string& command, std::chrono::milliseconds timeout = std::chrono::seconds(30));

// A child process in the background. The destructor sends SIGKILL and reaps it if still
// running, so no test leaves a process behind; an interrupted test program kills it too
// (tests/support/interrupt_cleanup.h).
class Child {
 public:
  Child() = default;
  // stderr (and stdout) go to `logPath` when given, else are discarded. The child inherits
  // `inherit[i]` as fd 3+i (not close-on-exec there) and no other fd above 2. With
  // `ownGroup` the child leads a process group of its own, and signal() and kill() reach
  // the whole group while the child is not yet reaped: for programs that fork helpers
  // (dnsmasq).
  static Child spawn(const std::vector<std::string>& argv, const std::string& logPath = "",
                     const std::vector<int>& inherit = {}, bool ownGroup = false);
  Child(Child&& other) noexcept;
  Child& operator=(Child&& other) noexcept;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child();

  pid_t pid() const { return pid_; }
  bool running();
  void signal(int signo);
  // Waits up to `timeout` for exit; returns the exit code, 128+signal, or -1 on timeout.
  int wait(std::chrono::milliseconds timeout);
  void kill();  // SIGKILL and reap
  const std::string& logPath() const { return logPath_; }
  std::string log() const;  // contents of the log file so far

 private:
  pid_t target() const { return group_ ? -pid_ : pid_; }  // what kill(2) is given

  pid_t pid_ = -1;
  bool group_ = false;
  int status_ = -1;
  bool reaped_ = false;
  std::string logPath_;
};

// Polls `condition` every few milliseconds until it holds or `timeout` passes.
template <typename F>
bool waitFor(F condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    struct timespec ts {0, 5'000'000};
    nanosleep(&ts, nullptr);
  }
  return condition();
}

std::string readFile(const std::string& path);

// Runs `body` in a forked child, which exits 0 when it returns; `body` writes its report on
// the descriptor it is given. Returns that report and the child's wait status.
struct ForkedRun {
  std::string report;
  int status = 0;
};
ForkedRun runForked(const std::function<void(int report)>& body);

// A fresh directory under /tmp, removed with its contents when the test program ends, also
// when it is interrupted (kept when CONNECTABLE_KEEP_TEST_DIRS is set, to read the logs of
// a failing run).
std::string tempDir();

}  // namespace connectable::testing
