#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include <cerrno>
#include <string>

#include "common/socket_address.h"
#include "tests/support/tcp_peers.h"

using namespace connectable;
using namespace connectable::testing;

namespace {

// The port the kernel picks for a bind to port 0 on 127.0.0.1, as a TcpServer's
// (SO_REUSEADDR) or a plain socket's; 0 when the bind fails.
uint16_t portPickedByTheKernel(bool reuseAddress) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  if (reuseAddress) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  auto any = SocketAddress::loopbackV4(0);
  uint16_t port = 0;
  sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (bind(fd, any.sockaddr_ptr(), any.length()) == 0 && getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0)
    port = SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss), len).port();
  ::close(fd);
  return port;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(ReservedPortOnLoopback)

BOOST_AUTO_TEST_CASE(ConnectsToItAreRefused) {
  ReservedPort reserved;
  BOOST_TEST(connectTcp("127.0.0.1", reserved.port(), 1000) == -1);
}

BOOST_AUTO_TEST_CASE(NoBindToPortZeroIsGivenItWhileItIsHeld) {
  // The kernel picks among some 7,000 ports for a TcpServer: a port released would come
  // back within a few thousand binds, in this process or any other.
  ReservedPort reserved;
  int given = 0;
  for (int i = 0; i < 20000; ++i) {
    given += portPickedByTheKernel(true) == reserved.port();
    given += portPickedByTheKernel(false) == reserved.port();
  }
  BOOST_TEST(given == 0);
}

BOOST_AUTO_TEST_CASE(AServerBindingWithReuseAddressListensOnIt) {
  ReservedPort reserved;
  TcpServer server(replyHandler("here"), "127.0.0.1", reserved.port());
  int fd = connectTcp("127.0.0.1", reserved.port());
  BOOST_REQUIRE(fd >= 0);
  std::string got;
  BOOST_TEST(readToEof(fd, &got));
  BOOST_TEST(got == "here");
  ::close(fd);
}

BOOST_AUTO_TEST_SUITE_END()
