#include "injector/injector_lock.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
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
  auto second = InjectorLock::acquire(sock.endpoint(sock.path));
  BOOST_REQUIRE(!second);
  BOOST_TEST(second.status().message().find("another connectable injector (pid " + std::to_string(getpid()) + ")") !=
                 std::string::npos,
             second.status().message());
}

BOOST_AUTO_TEST_CASE(TheSameSocketThroughAnotherPathIsTheSameEndpoint) {
  SocketFile sock;
  std::string link = sock.dir + "/link.sock";
  BOOST_REQUIRE(symlink(sock.path.c_str(), link.c_str()) == 0);
  BOOST_TEST(InjectorLock::nameFor(sock.endpoint(sock.path)) == InjectorLock::nameFor(sock.endpoint(link)));
  auto first = InjectorLock::acquire(sock.endpoint(link));
  BOOST_REQUIRE(first);
  BOOST_TEST(!InjectorLock::acquire(sock.endpoint(sock.path)));
}

BOOST_AUTO_TEST_CASE(OtherDaemonsAreOtherEndpoints) {
  SocketFile a, b;
  auto first = InjectorLock::acquire(a.endpoint(a.path));
  BOOST_REQUIRE(first);
  BOOST_TEST(static_cast<bool>(InjectorLock::acquire(b.endpoint(b.path))));
}

BOOST_AUTO_TEST_CASE(TheLockIsFreeAgainOnceItsHolderIsGone) {
  SocketFile sock;
  { auto held = InjectorLock::acquire(sock.endpoint(sock.path)); BOOST_REQUIRE(held); }
  BOOST_TEST(static_cast<bool>(InjectorLock::acquire(sock.endpoint(sock.path))));
}

BOOST_AUTO_TEST_SUITE_END()
