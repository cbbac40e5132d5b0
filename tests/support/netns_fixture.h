// TestNetns: a network namespace made for one test with `ip netns add` (loopback up),
// deleted in the destructor, also when the test fails, and when the test program is
// interrupted (tests/support/interrupt_cleanup.h). Needs root.
// Not thread-safe; one test thread uses it.
#pragma once

#include <functional>
#include <string>

namespace connectable::testing {

class TestNetns {
 public:
  TestNetns();   // a fresh namespace named connectable-test-<pid>-<n>
  ~TestNetns();
  TestNetns(const TestNetns&) = delete;
  TestNetns& operator=(const TestNetns&) = delete;

  const std::string& name() const { return name_; }
  std::string path() const { return "/var/run/netns/" + name_; }
  // argv prefix that runs a command inside: {"ip", "netns", "exec", name}
  std::vector<std::string> exec(std::vector<std::string> argv) const;
  // Runs fn with the calling thread inside the namespace (sockets made there stay there).
  void inside(const std::function<void()>& fn) const;

 private:
  void remove();

  std::string name_;
};

}  // namespace connectable::testing
