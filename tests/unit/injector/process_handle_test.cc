#include "injector/process_handle.h"

#include <sys/stat.h>

#include <boost/test/unit_test.hpp>

#include <fstream>
#include <memory>
#include <string>

#include "tests/support/fake_container_init.h"

using namespace connectable;
using connectable::testing::FakeContainerInit;

namespace {

const std::string kId = "c0ffee" + std::string(58, '1');
const std::string kOtherId = "c0ffee" + std::string(58, '2');

unsigned long ourNetnsInode() {
  struct stat st {};
  stat("/proc/self/ns/net", &st);
  return st.st_ino;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(ContainerInit)

BOOST_AUTO_TEST_CASE(AProcessIsInTheContainerWhoseCgroupHoldsItAndInNoOther) {
  FakeContainerInit init(kId);
  auto process = ProcessHandle::open(init.pid());
  BOOST_REQUIRE(process);
  BOOST_TEST(process->inContainer(kId));
  BOOST_TEST(!process->inContainer(kOtherId));
  BOOST_TEST(!process->inContainer(""));
  auto self = ProcessHandle::open(getpid());
  BOOST_REQUIRE(self);
  BOOST_TEST(!self->inContainer(kId));
}

BOOST_AUTO_TEST_CASE(OnlyAFullContainerIdNamesAContainer) {
  // Ids come from the daemon's events: a part of one, or one with a '/' before it, is in
  // every cgroup path that holds it, and becomes a path of its own under /sys/fs/cgroup.
  FakeContainerInit init(kId);
  auto process = ProcessHandle::open(init.pid());
  BOOST_REQUIRE(process);
  for (const std::string& notAnId : {"/" + kId, kId.substr(0, 12), std::string("docker"), std::string("/"), kId + "/"}) {
    BOOST_TEST(!process->inContainer(notAnId), notAnId);
    BOOST_TEST(!findContainerInit(notAnId, ourNetnsInode()).has_value(), notAnId);
  }
}

BOOST_AUTO_TEST_CASE(AProcessThatHasExitedIsInNoContainer) {
  auto init = std::make_unique<FakeContainerInit>(kId);
  auto process = ProcessHandle::open(init->pid());
  BOOST_REQUIRE(process);
  init.reset();  // killed and reaped: its pid may name anyone from now on
  BOOST_TEST(!process->inContainer(kId));
}

BOOST_AUTO_TEST_CASE(TheEarlyPathFindsTheInitInTheContainersCgroupAndNamespace) {
  FakeContainerInit init(kId);
  auto found = findContainerInit(kId, ourNetnsInode());
  BOOST_REQUIRE(found.has_value());
  BOOST_TEST(found->process.pid() == init.pid());
  BOOST_TEST(found->netnsInode != ourNetnsInode());
  BOOST_TEST(!findContainerInit(kOtherId, ourNetnsInode()).has_value());
}

BOOST_AUTO_TEST_CASE(AProcessExecutedInAContainerIsNeverTakenForItsInit) {
  // A shim watching a `docker exec` process as the container's life would stop with it.
  FakeContainerInit init(kId, FakeContainerInit::NetAndPid);
  const pid_t execd = init.exec();
  auto found = findContainerInit(kId, ourNetnsInode());
  BOOST_TEST_REQUIRE(found.has_value());
  BOOST_TEST(found->process.pid() == init.pid());
  // Alone there (or listed first, as when the init's pid sorts after it), it is not taken.
  init.leaveCgroup(init.pid());
  found = findContainerInit(kId, ourNetnsInode());
  BOOST_TEST(!found.has_value(), "took pid " << (found ? found->process.pid() : 0) << ", executed in the container as "
                                             << execd);
}

BOOST_AUTO_TEST_SUITE_END()
