#include "common/listener_bind.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include <boost/test/unit_test.hpp>

using namespace connectable;

namespace {

SocketAddress at(const char* ip) {
  return *SocketAddress::parseIp(ip, 0);
}

// The value of a socket option that is an int (-1 if it cannot be read).
int option(int fd, int level, int name) {
  int value = -1;
  socklen_t length = sizeof value;
  return getsockopt(fd, level, name, &value, &length) == 0 ? value : -1;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(ListenerBind)

BOOST_AUTO_TEST_CASE(TheIpv4LoopbackIsAllOf127Slash8AndNothingElse) {
  BOOST_TEST(at("127.0.0.1").isLoopbackV4());
  BOOST_TEST(at("127.255.255.254").isLoopbackV4());
  BOOST_TEST(!at("128.0.0.1").isLoopbackV4());
  BOOST_TEST(!at("126.255.255.255").isLoopbackV4());
  BOOST_TEST(!at("0.0.0.0").isLoopbackV4());
  BOOST_TEST(!at("198.18.0.1").isLoopbackV4());
  BOOST_TEST(!at("::1").isLoopbackV4());
  BOOST_TEST(!at("::ffff:127.0.0.1").isLoopbackV4());  // as written; unmapped() says what it carries
}

BOOST_AUTO_TEST_CASE(TheIpv6LoopbackIsColonColon1Only) {
  BOOST_TEST(at("::1").isLoopbackV6());
  BOOST_TEST(!at("::").isLoopbackV6());
  BOOST_TEST(!at("::2").isLoopbackV6());
  BOOST_TEST(!at("127.0.0.1").isLoopbackV6());
}

BOOST_AUTO_TEST_CASE(OnlyASocketFor127IsLetBindWhateverStateLoIsIn) {
  // A mistyped address elsewhere must still fail at bind, so only 127/8 gets IP_FREEBIND.
  for (const char* ip : {"127.0.0.1", "198.18.0.1"}) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    BOOST_REQUIRE(fd >= 0);
    bindAsLoopbackComesUp(fd, at(ip));
    BOOST_TEST(option(fd, IPPROTO_IP, IP_FREEBIND) == (std::string(ip) == "127.0.0.1" ? 1 : 0), ip);
    close(fd);
  }
}

BOOST_AUTO_TEST_CASE(ASocketForColonColon1IsLeftAloneWhereLoIsUp) {
  // This namespace's `lo` is up: no ::1 here means no IPv6, and the bind must say so.
  int probe = socket(AF_INET, SOCK_STREAM, 0);
  BOOST_REQUIRE(probe >= 0);
  const bool down = loopbackIsDown(probe);
  close(probe);
  if (down) {
    BOOST_TEST_MESSAGE("lo is down where this runs: nothing to check");
    return;
  }
  int fd = socket(AF_INET6, SOCK_STREAM, 0);
  if (fd < 0) return;  // no IPv6 in this kernel
  bindAsLoopbackComesUp(fd, at("::1"));
  BOOST_TEST(option(fd, IPPROTO_IPV6, IPV6_FREEBIND) == 0);
  close(fd);
}

BOOST_AUTO_TEST_CASE(AListenerReusesItsPortAndAnIpv6OneTakesIpv6Only) {
  // 127.0.0.1 and ::1 are two listeners of one port: the IPv6 one must not take IPv4 too.
  for (const char* ip : {"127.0.0.1", "::1"}) {
    const SocketAddress address = at(ip);
    int fd = socket(address.family(), SOCK_STREAM, 0);
    if (fd < 0) continue;  // no IPv6 in this kernel
    const int bound = bindListener(fd, address) == 0 ? 0 : errno;
    if (bound == EADDRNOTAVAIL && address.family() == AF_INET6) {  // IPv6 off on this host's lo
      close(fd);
      continue;
    }
    BOOST_TEST(bound == 0, ip);
    BOOST_TEST(option(fd, SOL_SOCKET, SO_REUSEADDR) == 1, ip);
    if (address.family() == AF_INET6) BOOST_TEST(option(fd, IPPROTO_IPV6, IPV6_V6ONLY) == 1);
    close(fd);
  }
}

BOOST_AUTO_TEST_SUITE_END()
