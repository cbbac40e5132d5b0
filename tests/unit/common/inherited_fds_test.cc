#include "common/inherited_fds.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include <functional>
#include <string>

#include "tests/support/process.h"

using namespace connectable;

namespace {

bool isOpen(int fd) { return fcntl(fd, F_GETFD) != -1; }

// Runs `check` in a child process (closing or replacing the test runner's own descriptors
// would break it), handing it a descriptor (500 or above) that survives whatever it closes;
// returns what the child reported through it: "" when all was as expected.
std::string inChild(const std::function<std::string(int out)>& check) {
  connectable::testing::ForkedRun run = connectable::testing::runForked([&](int report) {
    const int out = fcntl(report, F_DUPFD_CLOEXEC, 500);
    std::string wrong = check(out);
    ssize_t unused = write(out, wrong.data(), wrong.size());
    (void)unused;
  });
  BOOST_TEST((WIFEXITED(run.status) && WEXITSTATUS(run.status) == 0));
  return run.report;
}

// Opens descriptors 100, 101, 102 and 200, not close-on-exec, beside whatever the runner
// left open, runs `closeAll` keeping 101 and 2, and says what stayed open: "" when only 0,
// 1, 2 and 101 did, else what is wrong.
std::string afterClosing(void (*closeAll)(std::vector<int>)) {
  return inChild([&](int out) {
    int p[2];
    if (pipe(p) != 0) _exit(1);
    for (int fd : {100, 101, 102, 200}) dup2(p[0], fd);
    close(p[0]);
    close(p[1]);
    closeAll({101, 2, 101, out});
    std::string wrong;
    for (int fd : {0, 1, 2, 101})
      if (!isOpen(fd)) wrong += "closed " + std::to_string(fd) + "; ";
    for (int fd = 3; fd < 4096; ++fd)
      if (fd != 101 && fd != out && isOpen(fd)) wrong += "open " + std::to_string(fd) + "; ";
    return wrong;
  });
}

}  // namespace

BOOST_AUTO_TEST_SUITE(InheritedFds)

BOOST_AUTO_TEST_CASE(ClosesEveryDescriptorAboveStderrButThoseItIsToldToKeep) {
  std::string wrong = afterClosing(closeInheritedFds);
  BOOST_TEST(wrong.empty(), wrong);
}

BOOST_AUTO_TEST_CASE(TheFallbackForKernelsWithoutCloseRangeClosesTheSame) {
  std::string wrong = afterClosing(closeInheritedFdsOneByOne);
  BOOST_TEST(wrong.empty(), wrong);
}

BOOST_AUTO_TEST_CASE(StandardDescriptorsAParentLeftClosedAreOpenedOnDevNull) {
  // Else the first descriptors the program opens take their numbers: its log lines go to a
  // socket, and the programs it starts inherit whatever sits there.
  std::string wrong = inChild([](int) {
    for (int fd : {0, 1, 2}) close(fd);
    openStandardFds();
    std::string wrong;
    for (int fd : {0, 1, 2}) {
      char target[64] = {};
      if (readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), target, sizeof target - 1) < 0 ||
          std::string(target) != "/dev/null")
        wrong += std::to_string(fd) + " is '" + target + "'; ";
    }
    return wrong;
  });
  BOOST_TEST(wrong.empty(), wrong);
}

BOOST_AUTO_TEST_SUITE_END()
