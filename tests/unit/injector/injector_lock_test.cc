#include "injector/injector_lock.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstddef>
#include <cstdlib>
#include <string>

using namespace connectable;

namespace {

// A UNIX socket file (any will do: only its identity matters) in a fresh directory.
struct SocketFile {
  SocketFile() {
    char tmpl[] = "/tmp/connectable-lock-test.XXXXXX";
    dir = mkdtemp(tmpl);
    path = dir + "/docker.sock";
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path.copy(addr.sun_path, sizeof addr.sun_path - 1);
    BOOST_REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  ~SocketFile() {
    close(fd);
    unlink(path.c_str());
    unlink((dir + "/link.sock").c_str());
    rmdir(dir.c_str());
  }
  DockerEndpoint endpoint(const std::string& p) const {
    DockerEndpoint e;
    e.path = p;
    return e;
  }
  std::string dir, path;
  int fd = -1;
};

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
  const std::string name = InjectorLock::nameFor(sock.endpoint(sock.path));
  int ready[2], release[2];
  BOOST_REQUIRE(pipe(ready) == 0 && pipe(release) == 0);
  pid_t squatter = fork();
  BOOST_REQUIRE(squatter >= 0);
  if (squatter == 0) {
    close(release[1]);  // or the read below never sees the parent's end of it
    if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) _exit(1);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    name.copy(addr.sun_path + 1, sizeof addr.sun_path - 2);
    auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || listen(fd, 1) != 0) _exit(1);
    char c = 'r';
    if (write(ready[1], &c, 1) != 1) _exit(1);
    if (read(release[0], &c, 1) < 0) _exit(1);  // hold the name until told
    _exit(0);
  }
  close(release[0]);
  close(ready[1]);
  char c;
  BOOST_REQUIRE(read(ready[0], &c, 1) == 1);
  auto lock = InjectorLock::acquire(sock.endpoint(sock.path));
  BOOST_TEST(static_cast<bool>(lock));
  if (lock) {
    BOOST_TEST(!lock->held());
    BOOST_TEST(lock->warning().find("pid " + std::to_string(squatter)) != std::string::npos, lock->warning());
    BOOST_TEST(lock->warning().find("running without it") != std::string::npos, lock->warning());
  }
  close(release[1]);
  waitpid(squatter, nullptr, 0);
  close(ready[0]);
}

BOOST_AUTO_TEST_CASE(TheSameSocketThroughAnotherPathIsTheSameEndpoint) {
  SocketFile sock;
  std::string link = sock.dir + "/link.sock";
  BOOST_REQUIRE(symlink(sock.path.c_str(), link.c_str()) == 0);
  BOOST_TEST(InjectorLock::nameFor(sock.endpoint(sock.path)) == InjectorLock::nameFor(sock.endpoint(link)));
  auto first = InjectorLock::acquire(sock.endpoint(link));
  BOOST_REQUIRE(first);
  auto second = InjectorLock::acquire(sock.endpoint(sock.path));
  BOOST_TEST((!second || !second->held()));  // refused (root), or not held (others)
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

BOOST_AUTO_TEST_SUITE_END()
