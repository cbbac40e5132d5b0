#include "tests/support/netns_fixture.h"

#include <unistd.h>

#include <stdexcept>

#include "common/netns.h"
#include "tests/support/interrupt_cleanup.h"
#include "tests/support/process.h"

namespace connectable::testing {

TestNetns::TestNetns() {
  static int counter = 0;
  name_ = "connectable-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
  auto r = run({"ip", "netns", "add", name_});
  if (r.exitCode != 0) throw std::runtime_error("ip netns add " + name_ + ": " + r.err);
  interrupt_cleanup::addNetns(path());
  r = run({"ip", "-n", name_, "link", "set", "lo", "up"});
  if (r.exitCode != 0) {
    remove();  // a constructor that throws gets no destructor
    throw std::runtime_error("ip link set lo up in " + name_ + ": " + r.err);
  }
}

TestNetns::~TestNetns() { remove(); }

void TestNetns::remove() {
  run({"ip", "netns", "del", name_});
  interrupt_cleanup::removeNetns(path());
}

std::vector<std::string> TestNetns::exec(std::vector<std::string> argv) const {
  std::vector<std::string> out = {"ip", "netns", "exec", name_};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

void TestNetns::inside(const std::function<void()>& fn) const {
  auto home = NetnsFd::current();
  auto target = NetnsFd::open(path());
  if (!home || !target) throw std::runtime_error("cannot open namespaces for " + name_);
  if (!enterNetns(*target)) throw std::runtime_error("cannot enter " + name_);
  try {
    fn();
  } catch (...) {
    (void)enterNetns(*home);
    throw;
  }
  if (!enterNetns(*home)) throw std::runtime_error("cannot return from " + name_);
}

}  // namespace connectable::testing
