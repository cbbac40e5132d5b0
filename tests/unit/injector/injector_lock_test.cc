#include "injector/injector_lock.h"

#include <linux/capability.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstddef>
#include <cstdlib>
#include <chrono>
#include <string>
#include <vector>

#include "common/event_loop.h"
#include "tests/support/loop_runner.h"

using namespace connectable;

namespace {

// A UNIX socket file (any will do: only its identity matters) in a fresh directory; made
// at once unless told otherwise. Removes what it and the test made there.
struct SocketFile {
  explicit SocketFile(bool made = true) {
    char tmpl[] = "/tmp/connectable-lock-test.XXXXXX";
    dir = mkdtemp(tmpl);
    path = dir + "/docker.sock";
    if (made) make();
  }
  ~SocketFile() {
    close(fd);
    for (auto p = made_.rbegin(); p != made_.rend(); ++p)
      if (unlink(p->c_str()) != 0) rmdir(p->c_str());
    rmdir(dir.c_str());
  }
  // Binds a socket at `at` (default: path), as a daemon does when it starts.
  void make(const std::string& at = "") {
    const std::string where = at.empty() ? path : at;
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    where.copy(addr.sun_path, sizeof addr.sun_path - 1);
    BOOST_REQUIRE(bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    if (at.empty()) {
      close(fd);
      fd = s;
    } else {
      close(s);
    }
    made_.push_back(where);
  }
  // What dockerd does when it restarts: the old socket file goes, a new one (a new inode)
  // comes in its place.
  void remake() {
    BOOST_REQUIRE(unlink(path.c_str()) == 0);
    make();
  }
  // A name in the directory the test makes something at, removed with it.
  std::string entry(const std::string& name) {
    made_.push_back(dir + "/" + name);
    return made_.back();
  }
  DockerEndpoint endpoint(const std::string& p) const {
    DockerEndpoint e;
    e.path = p;
    return e;
  }
  std::string dir, path;
  int fd = -1;

 private:
  std::vector<std::string> made_;
};

// A second acquire() for the same endpoint is refused (when we are root) or, as a
// non-root holder is taken for a squatter, succeeds without holding the lock.
bool seenAsTaken(const Result<InjectorLock>& second) { return !second || !second->held(); }

// Who squats: user nobody (when we are root), or root without CAP_SYS_ADMIN, as root in a
// container run with Docker's default capabilities is.
enum class As { Nobody, RootWithoutSysAdmin, RootInAnotherUserNamespace };

// Cases about root holders: as any other user, this suite's own holders are squatters.
boost::test_tools::assertion_result runsAsRoot(boost::unit_test::test_unit_id) {
  boost::test_tools::assertion_result root(geteuid() == 0);
  root.message() << "it needs root, as a holder that is not root is a squatter";
  return root;
}

// Clears CAP_SYS_ADMIN from this process's effective set; uid 0 stays.
bool dropSysAdmin() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (syscall(SYS_capget, &header, data) != 0) return false;
  data[0].effective &= ~(1u << CAP_SYS_ADMIN);
  return syscall(SYS_capset, &header, data) == 0;
}

// A process listening on the abstract `name` with `backlog`, never accepting, after
// `selfConnects` connections of its own; gone with it.
class Squatter {
 public:
  Squatter(const std::string& name, int backlog, int selfConnects, As as = As::Nobody) {
    int ready[2];
    BOOST_REQUIRE(pipe(ready) == 0 && pipe(release_) == 0);
    pid_ = fork();
    BOOST_REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      close(release_[1]);  // or the read below never sees the parent's end of it
      if (as == As::RootWithoutSysAdmin && !dropSysAdmin()) _exit(1);
      // uid 0 to SO_PEERCRED still, and every capability, but over a namespace of its own.
      if (as == As::RootInAnotherUserNamespace && unshare(CLONE_NEWUSER) != 0) _exit(1);
      if (as == As::Nobody && geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) _exit(1);
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      name.copy(addr.sun_path + 1, sizeof addr.sun_path - 2);
      auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
      int fd = socket(AF_UNIX, SOCK_STREAM, 0);
      if (bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || listen(fd, backlog) != 0) _exit(1);
      for (int i = 0; i < selfConnects; ++i) {
        int self = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
        (void)connect(self, reinterpret_cast<sockaddr*>(&addr), len);
      }
      char c = 'r';
      if (write(ready[1], &c, 1) != 1) _exit(1);
      if (read(release_[0], &c, 1) < 0) _exit(1);  // hold the name until told
      _exit(0);
    }
    close(release_[0]);
    close(ready[1]);
    char c;
    BOOST_REQUIRE(read(ready[0], &c, 1) == 1);
    close(ready[0]);
  }
  ~Squatter() {
    close(release_[1]);
    waitpid(pid_, nullptr, 0);
  }
  Squatter(const Squatter&) = delete;
  Squatter& operator=(const Squatter&) = delete;
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int release_[2] = {-1, -1};
};

// A daemon ID no other test run or real daemon has.
std::string uniqueDaemonId() {
  static int made = 0;
  return "TEST:" + std::to_string(getpid()) + ":" + std::to_string(++made) + ":" +
         std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(InjectorLockTest)

BOOST_AUTO_TEST_CASE(ASecondInjectorOnTheSameEndpointIsRefusedAndToldWho) {
  SocketFile sock;
  auto first = InjectorLock::acquire(sock.endpoint(sock.path));
  BOOST_REQUIRE_MESSAGE(first, first.status().message());
  BOOST_TEST(first->held());
  auto second = InjectorLock::acquire(sock.endpoint(sock.path));
  if (geteuid() == 0) {
    BOOST_REQUIRE(!second);
    BOOST_TEST(second.status().message().find("another connectable injector (pid " + std::to_string(getpid()) + ")") !=
                   std::string::npos,
               second.status().message());
  } else {
    // Injectors run as root: a holder that is not root is taken for a squatter.
    BOOST_REQUIRE(second);
    BOOST_TEST(!second->held());
  }
}

BOOST_AUTO_TEST_CASE(ANameSquattedByANonRootProcessDoesNotStopTheInjector) {
  // Abstract names carry no permissions: any user could take the name first.
  SocketFile sock;
  Squatter squatter(InjectorLock::namesFor(sock.endpoint(sock.path)).front(), 1, 0);
  auto lock = InjectorLock::acquire(sock.endpoint(sock.path));
  BOOST_TEST(static_cast<bool>(lock));
  if (lock) {
    BOOST_TEST(!lock->held());
    BOOST_TEST(lock->warning().find("pid " + std::to_string(squatter.pid())) != std::string::npos, lock->warning());
    BOOST_TEST(lock->warning().find("running without it") != std::string::npos, lock->warning());
  }
}

// What an injector says when root of kind `as` holds its name: it starts without the
// lock, and names the holder (pid) and why that is no injector.
struct RootSquatterSeen {
  pid_t squatter = 0;
  std::string warning;
};
RootSquatterSeen injectorBesideRootSquatter(As as) {
  SocketFile sock;
  Squatter squatter(InjectorLock::namesFor(sock.endpoint(sock.path)).front(), 1, 0, as);
  auto lock = InjectorLock::acquire(sock.endpoint(sock.path));
  BOOST_REQUIRE_MESSAGE(lock, lock.status().message());
  BOOST_TEST(!lock->held());
  BOOST_TEST(lock->warning().find("running without it") != std::string::npos, lock->warning());
  return {squatter.pid(), lock->warning()};
}

BOOST_AUTO_TEST_CASE(ANameSquattedByRootWithoutSysAdminDoesNotStopTheInjector, *boost::unit_test::precondition(runsAsRoot)) {
  // Root in a --net=host container, with Docker's default capabilities, shares our abstract
  // names and is uid 0 to SO_PEERCRED, but lacks the CAP_SYS_ADMIN every injector has. It
  // could take the name while an injector restarts; the next one must start anyway.
  auto seen = injectorBesideRootSquatter(As::RootWithoutSysAdmin);
  BOOST_TEST(seen.warning.find("pid " + std::to_string(seen.squatter) + " (uid 0, without CAP_SYS_ADMIN") !=
                 std::string::npos,
             seen.warning);
}

// Root that may make a user namespace (a seccomp profile or user.max_user_namespaces=0
// may refuse it), tried in a child of ours.
boost::test_tools::assertion_result makesUserNamespaces(boost::unit_test::test_unit_id id) {
  if (auto root = runsAsRoot(id); !root) return root;
  const pid_t child = fork();
  if (child == 0) _exit(unshare(CLONE_NEWUSER) == 0 ? 0 : 1);
  int status = -1;
  boost::test_tools::assertion_result made(child > 0 && waitpid(child, &status, 0) == child && WIFEXITED(status) &&
                                           WEXITSTATUS(status) == 0);
  made.message() << "unshare(CLONE_NEWUSER) is refused here";
  return made;
}

BOOST_AUTO_TEST_CASE(ANameSquattedByRootInAnotherUserNamespaceDoesNotStopTheInjector,
                     *boost::unit_test::precondition(makesUserNamespaces)) {
  // Root of a user namespace of its own has every capability, but over that namespace only:
  // not the ones an injector needs over the host's.
  auto seen = injectorBesideRootSquatter(As::RootInAnotherUserNamespace);
  BOOST_TEST(seen.warning.find("pid " + std::to_string(seen.squatter) + " (uid 0, in another user namespace") !=
                 std::string::npos,
             seen.warning);
}

BOOST_AUTO_TEST_CASE(ASquatterWhoseBacklogIsFullCannotHoldTheInjectorInConnect) {
  // A listener that never accepts, its backlog filled by its own connections: a blocking
  // connect to it would wait for ever. The injector starts anyway, and says why.
  SocketFile sock;
  Squatter squatter(InjectorLock::namesFor(sock.endpoint(sock.path)).front(), 0, 4);
  // acquire() in a child of ours: if it blocks, the test fails instead of hanging.
  pid_t injector = fork();
  BOOST_REQUIRE(injector >= 0);
  if (injector == 0) {
    auto lock = InjectorLock::acquire(sock.endpoint(sock.path));
    _exit(lock && !lock->held() && lock->warning().find("does not answer") != std::string::npos ? 0 : 1);
  }
  int status = -1;
  bool ended = false;
  for (int i = 0; i < 100 && !ended; ++i) {
    ended = waitpid(injector, &status, WNOHANG) == injector;
    if (!ended) usleep(50'000);
  }
  if (!ended) {
    kill(injector, SIGKILL);
    waitpid(injector, nullptr, 0);
  }
  BOOST_TEST(ended, "acquire() still blocked after 5 s");
  BOOST_TEST((ended && WIFEXITED(status) && WEXITSTATUS(status) == 0));
}

BOOST_AUTO_TEST_CASE(EverySecondInjectorIsToldWhoHoldsTheLockHoweverManyCame, *boost::unit_test::precondition(runsAsRoot)) {
  // Each refused injector's probe leaves a connection queued on the lock; the holder's
  // loop accepts and closes them, so the hundredth is told as clearly as the first.
  SocketFile sock;
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  auto first = InjectorLock::acquire(sock.endpoint(sock.path));
  BOOST_REQUIRE_MESSAGE(first, first.status().message());
  BOOST_REQUIRE(first->answerProbes(loop));
  int told = 0;
  for (int i = 0; i < 100; ++i) {
    auto second = InjectorLock::acquire(sock.endpoint(sock.path));
    told += !second && second.status().message().find("(pid " + std::to_string(getpid()) + ")") != std::string::npos;
    connectable::testing::runUntil(loop, [] { return false; }, std::chrono::milliseconds(1));
  }
  BOOST_TEST(told == 100);
}

BOOST_AUTO_TEST_CASE(TheSameSocketThroughAnotherPathIsTheSameEndpoint) {
  SocketFile sock;
  std::string link = sock.entry("link.sock");
  BOOST_REQUIRE(symlink(sock.path.c_str(), link.c_str()) == 0);
  BOOST_TEST(InjectorLock::namesFor(sock.endpoint(sock.path)) == InjectorLock::namesFor(sock.endpoint(link)));
  auto first = InjectorLock::acquire(sock.endpoint(link));
  BOOST_REQUIRE(first);
  auto second = InjectorLock::acquire(sock.endpoint(sock.path));
  BOOST_TEST((!second || !second->held()));  // refused (root), or not held (others)
}

BOOST_AUTO_TEST_CASE(AnInjectorStartedAfterTheDaemonRemadeItsSocketStillSeesTheFirst) {
  // dockerd removes and re-creates its socket when it restarts: a new inode, the same daemon.
  SocketFile sock;
  auto first = InjectorLock::acquire(sock.endpoint(sock.path));
  BOOST_REQUIRE_MESSAGE(first, first.status().message());
  BOOST_REQUIRE(first->held());
  sock.remake();
  BOOST_TEST(seenAsTaken(InjectorLock::acquire(sock.endpoint(sock.path))));
}

BOOST_AUTO_TEST_CASE(AnInjectorStartedBeforeTheDaemonMadeItsSocketIsSeenByOneStartedAfter) {
  SocketFile sock(false);
  auto first = InjectorLock::acquire(sock.endpoint(sock.path));
  BOOST_REQUIRE_MESSAGE(first, first.status().message());
  BOOST_REQUIRE(first->held());
  sock.make();
  BOOST_TEST(seenAsTaken(InjectorLock::acquire(sock.endpoint(sock.path))));
}

BOOST_AUTO_TEST_CASE(ASymlinkedDirectoryIsTheSameEndpointEvenBeforeTheSocketExists) {
  // /var/run/docker.sock and /run/docker.sock, /var/run being a symlink to /run.
  SocketFile sock(false);
  std::string run = sock.entry("run");
  std::string varRun = sock.entry("var-run");
  BOOST_REQUIRE(mkdir(run.c_str(), 0700) == 0);
  BOOST_REQUIRE(symlink(run.c_str(), varRun.c_str()) == 0);
  auto first = InjectorLock::acquire(sock.endpoint(varRun + "/docker.sock"));
  BOOST_REQUIRE_MESSAGE(first, first.status().message());
  BOOST_REQUIRE(first->held());
  BOOST_TEST(seenAsTaken(InjectorLock::acquire(sock.endpoint(run + "/docker.sock"))));
}

BOOST_AUTO_TEST_CASE(TheSameSocketLinkedIntoAnotherDirectoryIsTheSameEndpoint) {
  // As a socket file bind-mounted into the injector's container (docs/running.md) is: the
  // same inode under a path, and in a directory, of the container's own.
  SocketFile sock, elsewhere(false);
  std::string linked = elsewhere.entry("docker.sock");
  BOOST_REQUIRE(link(sock.path.c_str(), linked.c_str()) == 0);
  auto first = InjectorLock::acquire(sock.endpoint(sock.path));
  BOOST_REQUIRE_MESSAGE(first, first.status().message());
  BOOST_REQUIRE(first->held());
  BOOST_TEST(seenAsTaken(InjectorLock::acquire(sock.endpoint(linked))));
}

BOOST_AUTO_TEST_CASE(OtherSocketsInTheSameDirectoryAreOtherEndpoints) {
  SocketFile sock;
  std::string other = sock.entry("other.sock");
  sock.make(other);
  auto first = InjectorLock::acquire(sock.endpoint(sock.path));
  BOOST_REQUIRE(first);
  auto second = InjectorLock::acquire(sock.endpoint(other));
  BOOST_TEST((second && second->held()));
}

BOOST_AUTO_TEST_CASE(OtherDaemonsAreOtherEndpoints) {
  SocketFile a, b;
  auto first = InjectorLock::acquire(a.endpoint(a.path));
  BOOST_REQUIRE(first);
  auto other = InjectorLock::acquire(b.endpoint(b.path));
  BOOST_TEST((other && other->held()));
}

BOOST_AUTO_TEST_CASE(TheLockIsFreeAgainOnceItsHolderIsGone) {
  SocketFile sock;
  { auto held = InjectorLock::acquire(sock.endpoint(sock.path)); BOOST_REQUIRE(held); }
  auto again = InjectorLock::acquire(sock.endpoint(sock.path));
  BOOST_TEST((again && again->held()));
}

BOOST_AUTO_TEST_CASE(AnInjectorGivenTheSocketFileAloneAfterADaemonRestartIsRefusedOnceItKnowsTheDaemon) {
  // The first injector runs on the host; the daemon restarts (a new socket inode); the
  // second runs in a container given that new socket file alone: no name of the socket in
  // common, but the daemon's ID.
  SocketFile sock, container(false);
  const std::string daemon = uniqueDaemonId();
  auto first = InjectorLock::acquire(sock.endpoint(sock.path));
  BOOST_REQUIRE_MESSAGE(first, first.status().message());
  BOOST_REQUIRE(first->claimDaemon(daemon, sock.endpoint(sock.path)));
  BOOST_REQUIRE(first->held());
  sock.remake();
  std::string mounted = container.entry("docker.sock");
  BOOST_REQUIRE(link(sock.path.c_str(), mounted.c_str()) == 0);
  auto second = InjectorLock::acquire(sock.endpoint(mounted));
  BOOST_REQUIRE_MESSAGE(second, second.status().message());
  BOOST_REQUIRE(second->held());  // the gap the daemon's name closes
  Status claimed = second->claimDaemon(daemon, sock.endpoint(mounted));
  if (geteuid() == 0) {
    BOOST_REQUIRE(!claimed);
    BOOST_TEST(claimed.message().find("another connectable injector (pid " + std::to_string(getpid()) +
                                      ") already watches the Docker daemon") != std::string::npos,
               claimed.message());
    BOOST_TEST(claimed.message().find(daemon) != std::string::npos, claimed.message());
  } else {
    BOOST_REQUIRE(claimed);
    BOOST_TEST(!second->held());
  }
}

BOOST_AUTO_TEST_CASE(AnotherDaemonIdIsAnotherDaemon) {
  SocketFile a, b;
  auto first = InjectorLock::acquire(a.endpoint(a.path));
  BOOST_REQUIRE(first);
  BOOST_REQUIRE(first->claimDaemon(uniqueDaemonId(), a.endpoint(a.path)));
  auto other = InjectorLock::acquire(b.endpoint(b.path));
  BOOST_REQUIRE(other);
  BOOST_TEST(bool(other->claimDaemon(uniqueDaemonId(), b.endpoint(b.path))));
  BOOST_TEST(other->held());
}

BOOST_AUTO_TEST_CASE(EveryInjectorRefusedByTheDaemonsNameIsToldWhoHoldsIt, *boost::unit_test::precondition(runsAsRoot)) {
  // The daemon's name is taken after the loop answers probes: it must answer this one's too.
  SocketFile sock;
  const std::string daemon = uniqueDaemonId();
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  auto first = InjectorLock::acquire(sock.endpoint(sock.path));
  BOOST_REQUIRE_MESSAGE(first, first.status().message());
  BOOST_REQUIRE(first->answerProbes(loop));
  BOOST_REQUIRE(first->claimDaemon(daemon, sock.endpoint(sock.path)));
  int told = 0;
  for (int i = 0; i < 100; ++i) {
    InjectorLock other;
    Status s = other.claimDaemon(daemon, sock.endpoint(sock.path));
    told += !s && s.message().find("(pid " + std::to_string(getpid()) + ")") != std::string::npos;
    connectable::testing::runUntil(loop, [] { return false; }, std::chrono::milliseconds(1));
  }
  BOOST_TEST(told == 100);
}

BOOST_AUTO_TEST_SUITE_END()
