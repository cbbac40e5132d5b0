// ShimProcess: the real connectable-shim binary run by a test, with its log in a temp
// file; started, waited for until it listens, and killed by pid when the test ends.
// Not thread-safe; one test thread uses it.
#pragma once

#include <string>
#include <vector>

#include "tests/support/process.h"

namespace connectable::testing {

std::string shimBinary();  // CONNECTABLE_BIN_DIR/connectable-shim

// The system call filters a running shim installs of its own: none in a sanitizer build,
// whose runtime makes calls no proxy does (shim/main.cc).
#if defined(__SANITIZE_ADDRESS__)
constexpr int kShimsOwnFilters = 0;
#else
constexpr int kShimsOwnFilters = 1;
#endif

// Fails the test if a shim's log says its system call filter refused a call. ShimProcess
// checks its own; a test running the shim some other way (under prlimit, setpriv) calls it.
void expectNoCallRefused(const std::string& log);

class ShimProcess {
 public:
  // Starts the shim with `args` and waits until every --connect port logs "listening".
  // With CONNECTABLE_TEST_SHIM_DATA_PATH set, adds --data-path with its value.
  // Throws (failing the test) if it exits or does not listen within 5 s. The shim inherits
  // `inherit` as fds 3, 4, ... (see Child::spawn).
  explicit ShimProcess(std::vector<std::string> args, const std::vector<int>& inherit = {});
  // Fails the test if the shim's system call filter refused anything: every test that runs
  // a shim also checks that the filter lets a shim do all it did there.
  ~ShimProcess();
  ShimProcess(ShimProcess&&) = default;
  ShimProcess& operator=(ShimProcess&&) = default;
  Child& child() { return child_; }
  pid_t pid() const { return child_.pid(); }
  std::string log() const { return child_.log(); }
  // Waits until the log contains `text`.
  bool waitLog(const std::string& text, std::chrono::milliseconds timeout = std::chrono::seconds(5));

 private:
  Child child_;
};

}  // namespace connectable::testing
