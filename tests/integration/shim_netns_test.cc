// The standalone shim against real processes: a namespace made by the test, the shim's
// listeners inside it, backends outside it, real clients (curl, redis-cli) run inside it.
#define BOOST_TEST_MODULE shim in a network namespace
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/seccomp.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cstdio>
#include <cstdlib>

#include <Poco/JSON/Parser.h>

#include <boost/test/unit_test.hpp>
#include <atomic>
#include <fstream>
#include <cstring>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <iterator>
#include <sstream>
#include <thread>

#include "common/socket_address.h"
#include "tests/support/netns_fixture.h"
#include "tests/support/process.h"
#include "tests/support/shim_process.h"
#include "tests/support/tcp_peers.h"

using connectable::SocketAddress;
using namespace connectable::testing;
using namespace std::chrono_literals;

namespace {

// Ports inside the test namespace are private to it, so fixed numbers cannot collide.
constexpr uint16_t kPort = 6000;

int connectInside(const TestNetns& ns, uint16_t port = kPort, const std::string& ip = "127.0.0.1") {
  int fd = -1;
  ns.inside([&] { fd = connectTcp(ip, port); });
  return fd;
}

// A client whose receive buffer (so its window) is small from the start: a shim sending
// to it soon has to wait while it does not read.
int connectInsideWithASmallWindow(const TestNetns& ns) {
  int fd = -1;
  ns.inside([&] {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(kPort);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
      ::close(fd);
      fd = -1;
    }
  });
  return fd;
}

// Reads until `expected.size()` bytes came, the peer closed or `timeout` passed; true when
// exactly `expected` came.
// Waits (up to 20 s) until the peer's kernel has acknowledged every byte sent on `fd`: a
// reset, or a close with bytes unread (which resets), drops those it has not.
void waitUntilTaken(int fd) {
  waitFor(
      [&] {
        int queued = 0;
        return ioctl(fd, SIOCOUTQ, &queued) == 0 && queued == 0;
      },
      20s);
}

bool receivesExactly(int fd, const std::string& expected, int timeoutSeconds) {
  timeval timeout{timeoutSeconds, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::string got(expected.size(), '\0');
  size_t have = 0;
  while (have < got.size()) {
    ssize_t n = recv(fd, got.data() + have, got.size() - have, 0);
    if (n <= 0) break;
    have += static_cast<size_t>(n);
  }
  return have == got.size() && got == expected;
}

// A flat object of a shim's status, as it reads there ("null" when it has none).
std::string statusObjectOf(const std::string& controlSocket, const std::string& field) {
  auto status = run({"curl", "-sS", "--unix-socket", controlSocket, "http://shim/status"}).out;
  const std::string key = "\"" + field + "\":";
  auto at = status.find(key);
  if (at == std::string::npos) return "missing in " + status;
  at += key.size();
  return status.compare(at, 4, "null") == 0 ? std::string("null") : status.substr(at, status.find('}', at) + 1 - at);
}

// What a shim's status says of its read buffers: "null" (the epoll data path) or
// {"pool":N,"lent":M}.
std::string readBuffersOf(const std::string& controlSocket) { return statusObjectOf(controlSocket, "read_buffers"); }

// Connections of the io_uring data path on epoll: "null" (no ring) or
// {"connections":N,"entered":M,"returned":R}.
std::string epollPathOf(const std::string& controlSocket) { return statusObjectOf(controlSocket, "epoll_path"); }

// The CPU time `pid` has used so far, in clock ticks (utime + stime).
long cpuTicks(pid_t pid) {
  auto stat = readFile("/proc/" + std::to_string(pid) + "/stat");
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::vector<std::string> f((std::istream_iterator<std::string>(fields)), std::istream_iterator<std::string>());
  return std::stol(f[11]) + std::stol(f[12]);
}

std::string statusField(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      auto v = line.substr(field.size() + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      return v;
    }
  }
  return "";
}

// The process's own memory (anonymous pages: heap, stacks), in KiB. Socket and pipe
// buffers are kernel memory and do not count.
long anonKiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/smaps_rollup");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("Anonymous:", 0) == 0) return std::stol(line.substr(10));
  return -1;
}

// Byte i of the test stream: a pattern whose misplaced or lost bytes show.
char patternByte(uint64_t i) { return static_cast<char>('a' + (i * 7 + i / 4096) % 26); }

// A backend that answers each request byte with the test stream's next bytes: "s", 100
// of them; "b", 3 MiB.
uint64_t answerLength(char request) { return request == 'b' ? 3u << 20 : 100; }

TcpServer::Handler patternAnswers() {
  return [](int fd) {
    // Answers go out as they are written, as a server's would, not held back behind the
    // one before until it is acknowledged (Nagle).
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char request[64];
    uint64_t offset = 0;
    for (;;) {
      ssize_t n = recv(fd, request, sizeof request, 0);
      if (n <= 0) return;
      for (ssize_t i = 0; i < n; ++i) {
        std::string answer(answerLength(request[i]), '\0');
        for (uint64_t k = 0; k < answer.size(); ++k) answer[k] = patternByte(offset + k);
        offset += answer.size();
        if (!writeAll(fd, answer.data(), answer.size())) return;
      }
    }
  };
}

// Sends each request of `requests` to a patternAnswers backend in turn, and checks that
// its answer comes whole and continues the stream at *offset.
void askAndCheck(int fd, const std::string& requests, uint64_t* offset) {
  for (char kind : requests) {
    BOOST_REQUIRE(writeAll(fd, &kind, 1));
    std::string got(answerLength(kind), '\0');
    size_t have = 0;
    while (have < got.size()) {
      ssize_t n = recv(fd, got.data() + have, got.size() - have, 0);
      BOOST_REQUIRE_MESSAGE(n > 0, "connection ended after " << *offset + have << " bytes");
      have += static_cast<size_t>(n);
    }
    for (uint64_t k = 0; k < got.size(); ++k)
      BOOST_REQUIRE_MESSAGE(got[k] == patternByte(*offset + k), "byte " << *offset + k << " of the stream is wrong");
    *offset += got.size();
  }
}

// A TCP segment seen on a namespace's loopback.
struct Segment {
  uint16_t sourcePort = 0;
  uint16_t destinationPort = 0;
  size_t payload = 0;
  bool fin = false;
};

// Captures the IPv4 TCP segments on the loopback of a namespace (a packet socket made
// inside it), from construction until segments() is called.
class LoopbackCapture {
 public:
  explicit LoopbackCapture(const TestNetns& ns) {
    ns.inside([&] {
      fd_ = socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK, htons(ETH_P_IP));
      sockaddr_ll at{};
      at.sll_family = AF_PACKET;
      at.sll_protocol = htons(ETH_P_IP);
      at.sll_ifindex = static_cast<int>(if_nametoindex("lo"));
      if (fd_ >= 0 && bind(fd_, reinterpret_cast<sockaddr*>(&at), sizeof at) != 0) {
        ::close(fd_);
        fd_ = -1;
      }
    });
    BOOST_REQUIRE_MESSAGE(fd_ >= 0, "packet socket: " << std::strerror(errno));
  }
  ~LoopbackCapture() { ::close(fd_); }
  LoopbackCapture(const LoopbackCapture&) = delete;
  LoopbackCapture& operator=(const LoopbackCapture&) = delete;

  std::vector<Segment> segments() {
    std::vector<Segment> out;
    unsigned char frame[65536];
    for (;;) {
      sockaddr_ll from{};
      socklen_t fromLength = sizeof from;
      ssize_t n = recvfrom(fd_, frame, sizeof frame, 0, reinterpret_cast<sockaddr*>(&from), &fromLength);
      if (n <= 0) break;
      // Loopback shows each packet twice, going out and coming in: keep one.
      if (from.sll_pkttype == PACKET_OUTGOING) continue;
      if (static_cast<size_t>(n) < sizeof(iphdr)) continue;
      iphdr ip;
      std::memcpy(&ip, frame, sizeof ip);
      const size_t ipLength = ip.ihl * 4u;
      if (ip.protocol != IPPROTO_TCP || static_cast<size_t>(n) < ipLength + sizeof(tcphdr)) continue;
      tcphdr tcp;
      std::memcpy(&tcp, frame + ipLength, sizeof tcp);
      Segment s;
      s.sourcePort = ntohs(tcp.source);
      s.destinationPort = ntohs(tcp.dest);
      s.payload = ntohs(ip.tot_len) - ipLength - tcp.doff * 4u;
      s.fin = tcp.fin;
      out.push_back(s);
    }
    return out;
  }

 private:
  int fd_ = -1;
};

// True when the read end of a pipe sees EOF within a second: no process holds its write
// end any more.
bool writeEndClosedEverywhere(int readEnd) {
  pollfd p{readEnd, POLLIN, 0};
  char c;
  return poll(&p, 1, 1000) == 1 && read(readEnd, &c, 1) == 0;
}

// The shim, with socket(AF_INET6, ...) failing as on a kernel booted with ipv6.disable=1
// (a seccomp filter); killed and reaped when it goes out of scope.
class ShimWithoutIpv6 {
 public:
  ShimWithoutIpv6(const std::vector<std::string>& args, const std::string& logPath) : logPath_(logPath) {
    std::vector<std::string> argv = {shimBinary()};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      int out = open(logPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      dup2(out, 1);
      dup2(out, 2);
      sock_filter filter[] = {
          BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
          BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 0, 3),
          BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[0])),
          BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_INET6, 0, 1),
          BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EAFNOSUPPORT),
          BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      };
      sock_fprog program{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
      if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) != 0)
        _exit(126);
      execv(cargv[0], cargv.data());
      _exit(127);
    }
  }
  ~ShimWithoutIpv6() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  ShimWithoutIpv6(const ShimWithoutIpv6&) = delete;
  ShimWithoutIpv6& operator=(const ShimWithoutIpv6&) = delete;
  std::string log() const { return readFile(logPath_); }

 private:
  std::string logPath_;
  pid_t pid_ = -1;
};

// A shim run some other way than ShimProcess (under prlimit, setpriv, ...) by `argv`, with
// its log at `logPath`; returned once it listens.
Child spawnListening(const std::vector<std::string>& argv, const std::string& logPath) {
  Child shim = Child::spawn(argv, logPath);
  BOOST_REQUIRE_MESSAGE(waitFor([&] { return shim.log().find(" listening ") != std::string::npos; }, 5s), shim.log());
  return shim;
}

// The shim run by `argv` under `prlimit --nofile`, with `spare` fds beyond those it holds
// once listening (the ring has one of its own), counted on a first run of the same argv;
// returned once it listens.
Child shimWithSpareFds(const std::vector<std::string>& argv, long spare) {
  long held = 0;
  {
    Child first = spawnListening(argv, tempDir() + "/first.log");
    held = std::distance(std::filesystem::directory_iterator("/proc/" + std::to_string(first.pid()) + "/fd"),
                         std::filesystem::directory_iterator());
  }
  std::vector<std::string> limited = {"prlimit", "--nofile=" + std::to_string(held + spare), "--"};
  limited.insert(limited.end(), argv.begin(), argv.end());
  return spawnListening(limited, tempDir() + "/log");
}

struct Fixture {
  Fixture() { signal(SIGPIPE, SIG_IGN); }
  TestNetns ns;
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(ShimInNamespace, Fixture)

BOOST_AUTO_TEST_CASE(CurlInsideReachesBothBackendsOutside) {
  std::string dir = tempDir();
  sh("mkdir -p " + dir + "/a " + dir + "/b && echo backend-a > " + dir + "/a/index.html && echo backend-b > " + dir + "/b/index.html");
  ReservedPort reservedA, reservedB;  // held until the test ends: httpd binds them with SO_REUSEADDR
  uint16_t portA = reservedA.port(), portB = reservedB.port();
  Child httpdA = Child::spawn({"busybox", "httpd", "-f", "-p", "127.0.0.1:" + std::to_string(portA), "-h", dir + "/a"});
  Child httpdB = Child::spawn({"busybox", "httpd", "-f", "-p", "127.0.0.1:" + std::to_string(portB), "-h", dir + "/b"});
  BOOST_REQUIRE(waitFor([&] { int fd = connectTcp("127.0.0.1", portA); if (fd >= 0) close(fd); return fd >= 0; }, 3s));
  BOOST_REQUIRE(waitFor([&] { int fd = connectTcp("127.0.0.1", portB); if (fd >= 0) close(fd); return fd >= 0; }, 3s));

  ShimProcess shim({"--netns", ns.path(), "--connect",
                    "6000=127.0.0.1:" + std::to_string(portA) + ",127.0.0.1:" + std::to_string(portB)});
  std::map<std::string, int> seen;
  for (int i = 0; i < 40; ++i) {
    auto r = run(ns.exec({"curl", "-sS", "-m", "5", "http://127.0.0.1:6000/"}));
    BOOST_REQUIRE_MESSAGE(r.exitCode == 0, "curl failed: " << r.err);
    ++seen[r.out];
  }
  BOOST_TEST(seen["backend-a\n"] > 5);
  BOOST_TEST(seen["backend-b\n"] > 5);
  BOOST_TEST(seen["backend-a\n"] + seen["backend-b\n"] == 40);
  // The backends are outside: from inside the namespace they are unreachable directly.
  auto direct = run(ns.exec({"curl", "-sS", "-m", "2", "http://127.0.0.1:" + std::to_string(portA) + "/"}));
  BOOST_TEST(direct.exitCode != 0);
}

BOOST_AUTO_TEST_CASE(RedisCliInsideTalksToRedisServerOutside) {
  std::string dir = tempDir();
  ReservedPort reserved;  // held until the test ends: redis-server binds it with SO_REUSEADDR
  uint16_t port = reserved.port();
  Child redis = Child::spawn({"redis-server", "--port", std::to_string(port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", dir}, dir + "/redis.log");
  BOOST_REQUIRE(waitFor([&] { return run({"redis-cli", "-p", std::to_string(port), "ping"}).out == "PONG\n"; }, 5s));
  ShimProcess shim({"--netns", ns.path(), "--connect", "6000=127.0.0.1:" + std::to_string(port)});
  auto set = run(ns.exec({"redis-cli", "-p", "6000", "set", "greeting", "hello from the namespace"}));
  BOOST_TEST(set.out == "OK\n");
  auto get = run({"redis-cli", "-p", std::to_string(port), "get", "greeting"});
  BOOST_TEST(get.out == "hello from the namespace\n");
  auto pipelined = run(ns.exec({"redis-benchmark", "-p", "6000", "-n", "2000", "-c", "10", "-t", "set,get", "-q"}), 60s);
  BOOST_TEST(pipelined.exitCode == 0);
  BOOST_TEST(pipelined.out.find("GET") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(ListensOnIpv6LoopbackInsideToo) {
  TcpServer backend(replyHandler("six\n"));
  ShimProcess shim({"--netns", ns.path(), "--connect", "6000=" + backend.address()});
  int fd = connectInside(ns, kPort, "::1");
  BOOST_REQUIRE(fd >= 0);
  std::string got;
  BOOST_TEST(readToEof(fd, &got));
  BOOST_TEST(got == "six\n");
  close(fd);
}

BOOST_AUTO_TEST_CASE(ListensAndServesOn127001EvenWhileTheNamespaceHasItNotYet) {
  // While runc brings a starting container's `lo` up, Linux refuses a bind to 127.0.0.1
  // for a moment (EADDRNOTAVAIL), and the injector's early path starts the shim right
  // then: it exited, and was restarted 100 ms later. The same refusal, made to last: `lo`
  // up without its 127.0.0.1. The shim listens anyway, data port and status port, and
  // serves both once the address is there.
  sh("ip -n " + ns.name() + " addr del 127.0.0.1/8 dev lo");
  int refused = -1;
  ns.inside([&] {
    int probe = socket(AF_INET, SOCK_STREAM, 0);
    const SocketAddress loopback = SocketAddress::loopbackV4(kPort);
    refused = bind(probe, loopback.sockaddr_ptr(), loopback.length()) == 0 ? 0 : errno;
    close(probe);
  });
  BOOST_REQUIRE_MESSAGE(refused == EADDRNOTAVAIL, "a bind to 127.0.0.1 there failed with " << refused);
  TcpServer backend(replyHandler("early\n"));
  constexpr uint16_t kStatusPort = 7000;
  ShimProcess shim(
      {"--netns", ns.path(), "--status-port", std::to_string(kStatusPort), "--connect", "6000=" + backend.address()});
  BOOST_TEST(shim.waitLog("status port ready listen=127.0.0.1:7000"), shim.log());
  sh("ip -n " + ns.name() + " addr add 127.0.0.1/8 dev lo");
  int fd = connectInside(ns);
  BOOST_REQUIRE(fd >= 0);
  std::string got;
  BOOST_TEST(readToEof(fd, &got));
  BOOST_TEST(got == "early\n");
  close(fd);
  auto status = run(ns.exec({"curl", "-sS", "-m", "5", "http://127.0.0.1:" + std::to_string(kStatusPort) + "/status"}));
  BOOST_TEST(status.exitCode == 0, status.err);
  BOOST_TEST(status.out.find("listening on 127.0.0.1:6000") != std::string::npos, status.out);
}

BOOST_AUTO_TEST_CASE(ListensOnIpv6LoopbackEvenWhenStartedBeforeLoIsUp) {
  // The early path starts a container's shim before runc brings `lo` up, when ::1 does not
  // exist yet. Without a listener there, a client that takes "localhost" for ::1 alone is
  // refused once the container runs, in a container that has IPv6.
  sh("ip -n " + ns.name() + " link set lo down");
  TcpServer backend(replyHandler("six, early\n"));
  ShimProcess shim({"--netns", ns.path(), "--connect", "6000=" + backend.address()});
  BOOST_TEST(shim.log().find("listen=127.0.0.1:6000,[::1]:6000") != std::string::npos, shim.log());
  sh("ip -n " + ns.name() + " link set lo up");
  for (const char* ip : {"::1", "127.0.0.1"}) {
    int fd = -1;
    BOOST_REQUIRE(waitFor([&] { return (fd = connectInside(ns, kPort, ip)) >= 0; }, 3s));
    std::string got;
    BOOST_TEST(readToEof(fd, &got));
    BOOST_TEST(got == "six, early\n", ip);
    close(fd);
  }
}

BOOST_AUTO_TEST_CASE(Carries64MiBEachWayIntact) {
  TcpServer backend(echoHandler());
  ShimProcess shim({"--netns", ns.path(), "--connect", "6000=" + backend.address()});
  int fd = connectInside(ns);
  BOOST_REQUIRE(fd >= 0);
  auto check = echoRoundTrip(fd, 64ull << 20, 1234);
  close(fd);
  BOOST_TEST(check.ok, check.error);
  BOOST_TEST(check.received == 64ull << 20);
  BOOST_TEST(check.sentHash == check.receivedHash);
}

BOOST_AUTO_TEST_CASE(PipesOfFinishedBulkTransfersAreClosedSoonAfter) {
  // Every shim on a host runs as the same user, and the kernel counts each pipe's whole
  // capacity against that user's pipe budget: a shim that kept the pipes of its last burst
  // of downloads for ever would shrink every other shim's pipes to 8 KiB.
  TcpServer backend(echoHandler());
  ShimProcess shim({"--netns", ns.path(), "--connect", "6000=" + backend.address()});
  auto pipes = [&] {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(shim.pid()) + "/fd")) {
      std::error_code ec;
      n += std::filesystem::read_symlink(e.path(), ec).string().rfind("pipe:", 0) == 0;
    }
    return n;
  };
  std::vector<std::thread> transfers;
  std::atomic<int> intact{0};
  for (int i = 0; i < 6; ++i) {
    transfers.emplace_back([&, i] {
      int fd = connectInside(ns);
      if (fd < 0) return;
      intact += echoRoundTrip(fd, 16ull << 20, 40 + i).ok;
      close(fd);
    });
  }
  for (auto& t : transfers) t.join();
  BOOST_REQUIRE(intact == 6);
  BOOST_TEST(pipes() > 0);  // kept for the next transfer, for now
  BOOST_TEST(waitFor([&] { return pipes() == 0; }, 5s), pipes() << " pipes still held 5 s after the last transfer");
}

BOOST_AUTO_TEST_CASE(AClientThatStopsReadingThrottlesTheStreamInsteadOfGrowingTheShim) {
  // The client writes to an echo backend through the shim and reads nothing back: once the
  // kernel's buffers are full along the whole path, its writes must stall, and the shim
  // must hold no more than one pipe per direction (kernel memory), nothing in its heap.
  TcpServer backend(echoHandler());
  ShimProcess shim({"--netns", ns.path(), "--connect", "6000=" + backend.address()});
  int fd = connectInside(ns);
  BOOST_REQUIRE(fd >= 0);
  BOOST_REQUIRE(fcntl(fd, F_SETFL, O_NONBLOCK) == 0);
  const long before = anonKiB(shim.pid());
  uint64_t sent = 0;
  std::vector<char> chunk(64 * 1024);
  auto lastProgress = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - lastProgress < 500ms) {
    for (size_t i = 0; i < chunk.size(); ++i) chunk[i] = patternByte(sent + i);
    ssize_t n = send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<uint64_t>(n);
      lastProgress = std::chrono::steady_clock::now();
    } else {
      BOOST_REQUIRE(errno == EAGAIN);
      std::this_thread::sleep_for(5ms);
    }
    BOOST_REQUIRE_MESSAGE(sent < (1ull << 30), "1 GiB accepted without a stall: nothing throttles");
  }
  const long during = anonKiB(shim.pid());
  BOOST_TEST_MESSAGE("stalled after " << (sent >> 10) << " KiB in flight; shim anonymous memory " << before << " -> "
                                      << during << " KiB");
  BOOST_TEST(sent > (1u << 20));  // a real stream was stuck in the path, not a few bytes
  BOOST_TEST(during - before < 512);
  // Reading again releases the stream, every byte in order.
  BOOST_REQUIRE(fcntl(fd, F_SETFL, 0) == 0);
  shutdown(fd, SHUT_WR);
  std::string got;
  BOOST_TEST(readToEof(fd, &got, 20000));
  BOOST_REQUIRE(got.size() == sent);
  uint64_t firstBad = sent;
  for (uint64_t i = 0; i < sent && firstBad == sent; ++i)
    if (got[i] != patternByte(i)) firstBad = i;
  BOOST_TEST(firstBad == sent, "first wrong byte at " << firstBad);
  close(fd);
}

BOOST_AUTO_TEST_CASE(AResetIsPassedOnAsAResetNeverAsACleanEnd) {
  // A peer that aborts (RST) in the middle of a message must not look, on the other side,
  // like one that finished it (FIN): a truncated request or response would pass as whole.
  std::promise<std::string> backendSaw;
  TcpServer backend([&](int fd) {
    char buf[4096];
    std::string ending = "nothing";
    for (;;) {
      ssize_t n = read(fd, buf, sizeof buf);
      if (n > 0) continue;
      ending = n == 0 ? "clean end" : (errno == ECONNRESET ? "reset" : std::strerror(errno));
      break;
    }
    backendSaw.set_value(ending);
  });
  ShimProcess shim({"--netns", ns.path(), "--connect", "6000=" + backend.address()});
  int fd = connectInside(ns);
  BOOST_REQUIRE(fd >= 0);
  BOOST_REQUIRE(writeAll(fd, "half a requ", 11));
  std::this_thread::sleep_for(100ms);
  closeWithReset(fd);
  auto saw = backendSaw.get_future();
  BOOST_REQUIRE(saw.wait_for(5s) == std::future_status::ready);
  BOOST_TEST(saw.get() == "reset");

  // And the other way: a backend that aborts mid-response.
  TcpServer aborting([](int fd) {
    writeAll(fd, "half a resp", 11);
    std::this_thread::sleep_for(100ms);
    struct linger lg {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  });  // the server closes the socket after the handler: with linger 0, an RST
  ShimProcess shim2({"--netns", ns.path(), "--connect", "6001=" + aborting.address()});
  int fd2 = connectInside(ns, 6001);
  BOOST_REQUIRE(fd2 >= 0);
  struct timeval fiveSeconds {5, 0};
  setsockopt(fd2, SOL_SOCKET, SO_RCVTIMEO, &fiveSeconds, sizeof fiveSeconds);
  std::string got;
  char buf[64];
  ssize_t n;
  while ((n = read(fd2, buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
  BOOST_TEST(got == "half a resp");
  BOOST_TEST(n < 0);  // not 0: the client sees the abort
  BOOST_TEST(errno == ECONNRESET);
  close(fd2);
}

BOOST_AUTO_TEST_CASE(AClientThatResetsWhileItsUploadWaitsForTheBackendIsPassedOnAtOnce) {
  // The backend stops reading, so the client's upload fills every buffer on the way and
  // stalls; then the client gives up with a reset. Nothing is read from the client any
  // more (there is no room), yet its reset must reach the backend now, not once the
  // backend reads again or the connection idles out an hour later: until then the
  // backend keeps a connection, and what it holds for it, for a client long gone.
  std::promise<std::string> backendSaw;
  TcpServer backend([&](int fd) {
    pollfd p{fd, POLLRDHUP, 0};  // never reads
    const int n = poll(&p, 1, 10000);
    backendSaw.set_value(n == 0 ? "nothing" : (p.revents & POLLERR) ? "reset" : "a clean end");
  });
  ShimProcess shim({"--netns", ns.path(), "--connect", "6000=" + backend.address()});
  int fd = connectInside(ns);
  BOOST_REQUIRE(fd >= 0);
  BOOST_REQUIRE(fcntl(fd, F_SETFL, O_NONBLOCK) == 0);
  const std::string chunk(64 * 1024, 'u');
  auto lastProgress = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - lastProgress < 500ms) {
    if (send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL) > 0) {
      lastProgress = std::chrono::steady_clock::now();
    } else {
      BOOST_REQUIRE(errno == EAGAIN);
      std::this_thread::sleep_for(5ms);
    }
  }
  closeWithReset(fd);
  auto saw = backendSaw.get_future();
  BOOST_REQUIRE(saw.wait_for(3s) == std::future_status::ready);
  BOOST_TEST(saw.get() == "reset");
}

namespace {

// Gives the namespace's loopback an Ethernet-sized MTU: on the usual 64 KiB one, the
// kernel sizes a socket's send buffer for 64 KiB segments (megabytes), and small messages
// would take minutes to fill the buffers on the way.
void setEthernetMtu(const TestNetns& ns) {
  BOOST_REQUIRE(run({"ip", "-n", ns.name(), "link", "set", "lo", "mtu", "1500"}).exitCode == 0);
}

// A server inside `ns` whose connections have a small receive buffer (so window) from the
// start: a shim sending to it soon has to wait while it does not read.
std::unique_ptr<TcpServer> serverInsideWithASmallWindow(const TestNetns& ns, TcpServer::Handler handler) {
  std::unique_ptr<TcpServer> server;
  ns.inside([&] {
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int small = 4096;
    setsockopt(listener, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    const SocketAddress any = SocketAddress::loopbackV4(0);
    BOOST_REQUIRE(bind(listener, any.sockaddr_ptr(), any.length()) == 0 && listen(listener, 8) == 0);
    server = std::make_unique<TcpServer>(listener, std::move(handler));
  });
  return server;
}

// A numbered message: bytes lost, repeated or swapped between messages show in the stream.
std::string numberedMessage(size_t i, size_t size) {
  std::string m;
  while (m.size() < size) m += "<" + std::to_string(i) + ">";
  m.resize(size);
  return m;
}

// The byte counter of `direction` ("to_backends", "from_backends") in the shim's metrics.
std::string bytesCounted(const std::string& controlSocket, const std::string& direction) {
  auto metrics = run({"curl", "-sS", "--unix-socket", controlSocket, "http://shim/metrics"}).out;
  const std::string key = "connectable_bytes_total{port=\"6000\",direction=\"" + direction + "\"} ";
  auto at = metrics.find(key);
  if (at == std::string::npos) return "missing in " + metrics;
  at += key.size();
  return metrics.substr(at, metrics.find('\n', at) - at);
}

// Bytes not yet read from the established socket of `ns` whose local (`local`) or remote
// port is `port`: the shim leaves them there only while it cannot send them on.
long unreadIn(const TestNetns& ns, uint16_t port, bool local) {
  char hex[8];
  std::snprintf(hex, sizeof hex, "%04X", port);
  long queued = 0;
  ns.inside([&] {
    std::ifstream tcp("/proc/thread-self/net/tcp");
    std::string line;
    std::getline(tcp, line);
    while (std::getline(tcp, line)) {
      std::istringstream f(line);
      std::string slot, localAddress, remoteAddress, state, queues;
      f >> slot >> localAddress >> remoteAddress >> state >> queues;
      const std::string& address = local ? localAddress : remoteAddress;
      if (state == "01" && address.substr(address.find(':') + 1) == hex)
        queued = std::stol(queues.substr(queues.find(':') + 1), nullptr, 16);
    }
  });
  return queued;
}

// Sends numbered `size`-byte messages on `fd`, each once `unread()` says the one before
// was read, until the reader has left one unread for a second (20 s at most). Returns
// what was sent; nothing when the reader never stopped.
std::string sendUntilNotRead(int fd, const std::function<long()>& unread, size_t size = 1000) {
  std::string sent;
  const auto never = std::chrono::steady_clock::time_point::max();
  auto stuckSince = never;
  for (auto start = std::chrono::steady_clock::now();
       std::chrono::steady_clock::now() - start < 20s && std::chrono::steady_clock::now() - stuckSince < 1s;) {
    if (unread() > 0) {
      if (stuckSince == never) stuckSince = std::chrono::steady_clock::now();
    } else {
      stuckSince = never;
      const std::string message = numberedMessage(sent.size() / size, size);
      if (!writeAll(fd, message.data(), message.size())) return "";
      sent += message;
    }
    std::this_thread::sleep_for(1ms);
  }
  return stuckSince == never ? "" : sent;
}

}  // namespace

BOOST_AUTO_TEST_CASE(AClientThatResetsWhileItsLastMessageWaitsForTheBackendIsPassedOnAtOnce) {
  // As AClientThatResetsWhileItsUploadWaits..., with an interactive client: small messages
  // (requests, commands), each read on its own, until the backend stops taking them; the
  // client then waits for an answer, gives up and resets. The reset must reach the backend
  // as promptly as after an upload.
  TestNetns quiet;
  setEthernetMtu(quiet);
  std::promise<std::string> backendSaw;
  auto backend = serverInsideWithASmallWindow(quiet, [&](int fd) {
    pollfd p{fd, POLLRDHUP, 0};  // never reads
    const int n = poll(&p, 1, 15000);
    backendSaw.set_value(n == 0 ? "nothing" : (p.revents & POLLERR) ? "reset" : "a clean end");
  });
  ShimProcess shim({"--netns", quiet.path(), "--upstream-netns", "target", "--connect", "6000=" + backend->address()});
  int fd = connectInside(quiet);
  BOOST_REQUIRE(fd >= 0);
  BOOST_REQUIRE(!sendUntilNotRead(fd, [&] { return unreadIn(quiet, kPort, true); }).empty());
  closeWithReset(fd);
  auto saw = backendSaw.get_future();
  BOOST_REQUIRE(saw.wait_for(3s) == std::future_status::ready);
  BOOST_TEST(saw.get() == "reset");
}

BOOST_AUTO_TEST_CASE(MessagesABackendTakesOnlyInPartReachItWholeInOrderBeforeTheClientsFinAndAreCountedOnce) {
  // Small messages until the backend stops taking them: the shim's last sends are taken in
  // part or not at all, and it holds the rest. The client then half-closes, and only then
  // does the backend read: every byte once, in order, then the FIN; its answer comes back.
  TestNetns quiet;
  setEthernetMtu(quiet);
  std::promise<void> go;
  std::shared_future<void> goSeen = go.get_future().share();
  std::promise<std::string> backendGot;
  auto backend = serverInsideWithASmallWindow(quiet, [&, goSeen](int fd) {
    goSeen.wait();
    std::string got;
    const bool ended = readToEof(fd, &got, 10000);
    backendGot.set_value(ended ? got : "no FIN after " + std::to_string(got.size()) + " bytes");
    writeAll(fd, "bye", 3);
  });
  const std::string control = tempDir() + "/shim.sock";
  ShimProcess shim({"--netns", quiet.path(), "--upstream-netns", "target", "--control", control, "--connect",
                    "6000=" + backend->address()});
  int fd = connectInside(quiet);
  BOOST_REQUIRE(fd >= 0);
  const std::string sent = sendUntilNotRead(fd, [&] { return unreadIn(quiet, kPort, true); });
  BOOST_REQUIRE(!sent.empty());
  BOOST_REQUIRE(shutdown(fd, SHUT_WR) == 0);
  std::this_thread::sleep_for(200ms);
  go.set_value();
  auto got = backendGot.get_future();
  BOOST_REQUIRE(got.wait_for(15s) == std::future_status::ready);
  const std::string received = got.get();
  BOOST_TEST(received.size() == sent.size());
  BOOST_TEST((received == sent));
  std::string answer;
  BOOST_TEST(readToEof(fd, &answer, 5000));
  BOOST_TEST(answer == "bye");
  close(fd);
  BOOST_TEST(waitFor([&] { return bytesCounted(control, "to_backends") == std::to_string(sent.size()); }, 2s),
             bytesCounted(control, "to_backends") << " counted, " << sent.size() << " sent");
  BOOST_TEST(bytesCounted(control, "from_backends") == "3");
}

BOOST_AUTO_TEST_CASE(MessagesAClientTakesOnlyInPartReachItWholeInOrderBeforeTheBackendsFinAndAreCountedOnce) {
  // The other way: a client with a small window that does not read while the backend
  // sends small messages, then ends; the client reads everything afterwards.
  TestNetns quiet;
  setEthernetMtu(quiet);
  std::promise<std::string> backendSent;
  std::unique_ptr<TcpServer> backend;
  quiet.inside([&] {
    backend = std::make_unique<TcpServer>([&](int fd) {
      const std::string sent = sendUntilNotRead(fd, [&] { return unreadIn(quiet, backend->port(), false); });
      backendSent.set_value(sent.empty() ? "never stuck" : sent);
    });
  });
  const std::string control = tempDir() + "/shim.sock";
  ShimProcess shim({"--netns", quiet.path(), "--upstream-netns", "target", "--control", control, "--connect",
                    "6000=" + backend->address()});
  int fd = connectInsideWithASmallWindow(quiet);
  BOOST_REQUIRE(fd >= 0);
  auto sentFuture = backendSent.get_future();
  BOOST_REQUIRE(sentFuture.wait_for(25s) == std::future_status::ready);
  const std::string sent = sentFuture.get();
  BOOST_REQUIRE(sent != "never stuck");
  std::string received;
  BOOST_TEST(readToEof(fd, &received, 10000));
  BOOST_TEST(received.size() == sent.size());
  BOOST_TEST((received == sent));
  close(fd);
  BOOST_TEST(waitFor([&] { return bytesCounted(control, "from_backends") == std::to_string(sent.size()); }, 2s),
             bytesCounted(control, "from_backends") << " counted, " << sent.size() << " sent");
}

BOOST_AUTO_TEST_CASE(AResetWhileBothDirectionsHoldWhatTheirPeersDidNotTakeGivesBackEveryReadBuffer) {
  // Neither peer reads while each sends small messages: the shim is left with bytes it
  // could not send each way. The client then resets: the backend is told, and whatever
  // pool buffers held those bytes go back to the pool, each once.
  TestNetns quiet;
  setEthernetMtu(quiet);
  std::promise<bool> backendStuck;
  std::promise<std::string> backendSaw;
  std::unique_ptr<TcpServer> backend;
  backend = serverInsideWithASmallWindow(quiet, [&](int fd) {
    const std::string sent = sendUntilNotRead(fd, [&] { return unreadIn(quiet, backend->port(), false); });
    backendStuck.set_value(!sent.empty());
    pollfd p{fd, POLLRDHUP, 0};  // never reads
    const int n = poll(&p, 1, 20000);
    backendSaw.set_value(n == 0 ? "nothing" : (p.revents & POLLERR) ? "reset" : "a clean end");
  });
  const std::string control = tempDir() + "/shim.sock";
  ShimProcess shim({"--netns", quiet.path(), "--upstream-netns", "target", "--control", control, "--connect",
                    "6000=" + backend->address()});
  int fd = connectInsideWithASmallWindow(quiet);
  BOOST_REQUIRE(fd >= 0);
  BOOST_REQUIRE(!sendUntilNotRead(fd, [&] { return unreadIn(quiet, kPort, true); }).empty());
  auto stuck = backendStuck.get_future();
  BOOST_REQUIRE(stuck.wait_for(25s) == std::future_status::ready);
  BOOST_REQUIRE(stuck.get());
  const std::string held = readBuffersOf(control);
  BOOST_TEST_MESSAGE("read buffers while both directions are stuck: " << held);
  closeWithReset(fd);
  auto saw = backendSaw.get_future();
  BOOST_REQUIRE(saw.wait_for(5s) == std::future_status::ready);
  BOOST_TEST(saw.get() == "reset");
  if (held == "null") return;  // the epoll data path has no pool
  BOOST_TEST(held.find("\"lent\":0}") == std::string::npos, held);
  BOOST_TEST(waitFor([&] { return readBuffersOf(control).find("\"lent\":0}") != std::string::npos; }, 2s),
             readBuffersOf(control));
}

BOOST_AUTO_TEST_CASE(HalfCloseIsCarriedBothWays) {
  // The backend echoes until the client's FIN arrives through the shim, then answers
  // "bye" on the still-open other direction.
  TcpServer backend(echoThenSayHandler("bye"));
  ShimProcess shim({"--netns", ns.path(), "--connect", "6000=" + backend.address()});
  int fd = connectInside(ns);
  BOOST_REQUIRE(fd >= 0);
  BOOST_REQUIRE(writeAll(fd, "ping", 4));
  shutdown(fd, SHUT_WR);
  std::string got;
  BOOST_TEST(readToEof(fd, &got, 5000));
  BOOST_TEST(got == "pingbye");
  close(fd);
}

BOOST_AUTO_TEST_CASE(AnAnswerAndTheFinBehindItReachTheClientInOneSegment) {
  // A server that answers and closes (HTTP/1.0, nginx with tcp_nopush) sends its answer
  // and its FIN in one segment. The shim passes them on the same way: one segment and one
  // ACK fewer for the client's side to take in, per connection.
  TcpServer backend([](int fd) {
    char request[64];
    if (recv(fd, request, sizeof request, 0) <= 0) return;
    send(fd, "answer", 6, MSG_MORE);  // held, and sent with the FIN
    shutdown(fd, SHUT_WR);
    std::string rest;
    readToEof(fd, &rest, 5000);
  });
  ShimProcess shim({"--netns", ns.path(), "--connect", "6000=" + backend.address()});
  for (int i = 0; i < 3; ++i) {
    LoopbackCapture capture(ns);
    int fd = connectInside(ns);
    BOOST_REQUIRE(fd >= 0);
    BOOST_REQUIRE(writeAll(fd, "question", 8));
    std::string got;
    BOOST_TEST(readToEof(fd, &got, 5000));
    BOOST_TEST(got == "answer");
    close(fd);
    std::this_thread::sleep_for(50ms);  // the last ACKs
    int withPayload = 0, finAlone = 0, finWithPayload = 0;
    for (const Segment& s : capture.segments()) {
      if (s.sourcePort != kPort) continue;  // only what the shim sent the client
      withPayload += s.payload > 0;
      finAlone += s.fin && s.payload == 0;
      finWithPayload += s.fin && s.payload > 0;
    }
    BOOST_TEST(withPayload == 1);
    BOOST_TEST(finWithPayload == 1);
    BOOST_TEST(finAlone == 0);
  }
}

BOOST_AUTO_TEST_CASE(ABackendsLastWordsBeforeItsResetReachTheClientBeforeTheReset) {
  // A server that gives up sends why, then resets (redis: "-ERR max number of clients
  // reached"). Without a proxy the client reads the words, then the reset. Arriving
  // together, the shim's short read of them is sent on held back for a FIN (MSG_MORE),
  // and the reset it reads next must not throw them away. First a large answer, which
  // takes the default data path's connection off the ring, where this happens, then a
  // small one, which takes the direction off splice.
  std::promise<void> go;
  std::shared_future<void> goSignal = go.get_future().share();
  const std::string large(2 << 20, 'L');
  TcpServer backend([&](int fd) {
    writeAll(fd, large.data(), large.size());
    char ack;
    if (recv(fd, &ack, 1, 0) != 1 || send(fd, "ack", 3, 0) != 3) return;  // small again: no splice
    if (goSignal.wait_for(10s) != std::future_status::ready) return;
    // Not held for the ACK of "ack" (Nagle), which the reset would throw away here.
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    send(fd, "-ERR last words\r\n", 17, 0);
    closeWithReset(fd);
  });
  ShimProcess shim({"--netns", ns.path(), "--connect", "6000=" + backend.address()});
  int fd = connectInside(ns);
  BOOST_REQUIRE(fd >= 0);
  std::string got;
  char buf[65536];
  while (got.size() < large.size()) {
    pollfd p{fd, POLLIN, 0};
    BOOST_REQUIRE(poll(&p, 1, 5000) == 1);
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    BOOST_REQUIRE(n > 0);
    got.append(buf, static_cast<size_t>(n));
  }
  BOOST_REQUIRE(writeAll(fd, "k", 1));
  char ack[3];
  pollfd p{fd, POLLIN, 0};
  BOOST_REQUIRE(poll(&p, 1, 5000) == 1);
  BOOST_REQUIRE(recv(fd, ack, sizeof ack, MSG_WAITALL) == 3);
  std::this_thread::sleep_for(300ms);  // the shim back to waiting
  // Stopped, so the words and the reset are both queued when the shim reads.
  kill(shim.pid(), SIGSTOP);
  go.set_value();
  std::this_thread::sleep_for(200ms);
  kill(shim.pid(), SIGCONT);
  std::string last;
  BOOST_TEST(!readToEof(fd, &last, 5000), "a clean end where the backend reset");
  const int err = errno;
  BOOST_TEST(last == "-ERR last words\r\n");
  BOOST_TEST(err == ECONNRESET, std::strerror(err));
  close(fd);
}

BOOST_AUTO_TEST_CASE(ABackendThatAnswersAndResetsBeforeTheShimLooksWasConnectedToNotAFailedConnect) {
  // A server that refuses a client in words (redis past maxclients) accepts, answers and
  // resets, sometimes before the shim has looked at its connect. Connected it was: the
  // client gets the words, then the reset, as without a proxy, and no failed connect is
  // counted. Made certain here: the backend's queue is full, so the shim's SYN is dropped
  // and sent again a second later, while the shim is stopped, and the backend accepts,
  // answers and resets before the shim runs again.
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof at;
  BOOST_REQUIRE(bind(listener, reinterpret_cast<sockaddr*>(&at), sizeof at) == 0);
  BOOST_REQUIRE(listen(listener, 0) == 0);  // one connection waiting fills it
  BOOST_REQUIRE(getsockname(listener, reinterpret_cast<sockaddr*>(&at), &len) == 0);
  const std::string backend = "127.0.0.1:" + std::to_string(ntohs(at.sin_port));
  int filler = connectTcp("127.0.0.1", ntohs(at.sin_port));
  BOOST_REQUIRE(filler >= 0);
  const std::string control = tempDir() + "/shim.sock";
  ShimProcess shim({"--netns", ns.path(), "--control", control, "--connect-timeout", "10s", "--connect", "6000=" + backend});
  int fd = connectInside(ns);
  BOOST_REQUIRE(fd >= 0);
  std::this_thread::sleep_for(300ms);  // the shim's SYN sent, and dropped
  kill(shim.pid(), SIGSTOP);
  std::thread server([&] {
    pollfd p{listener, POLLIN, 0};
    int first = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);  // the filler
    if (first >= 0) close(first);
    if (poll(&p, 1, 5000) != 1) return;  // the shim's SYN again, answered by the kernel
    int c = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return;
    send(c, "-ERR max number of clients reached\r\n", 36, 0);
    closeWithReset(c);
  });
  server.join();
  std::this_thread::sleep_for(100ms);
  kill(shim.pid(), SIGCONT);
  std::string got;
  BOOST_TEST(!readToEof(fd, &got, 5000), "a clean end where the backend reset");
  const int err = errno;
  BOOST_TEST(got == "-ERR max number of clients reached\r\n");
  BOOST_TEST(err == ECONNRESET, std::strerror(err));
  close(fd);
  close(filler);
  close(listener);
  const std::string status = run({"curl", "-sS", "--unix-socket", control, "http://shim/status"}).out;
  BOOST_TEST(status.find("\"connect_error\":0") != std::string::npos, status);
  BOOST_TEST(status.find("\"no_backend\":0") != std::string::npos, status);
}

BOOST_AUTO_TEST_CASE(UrgentDataIsCarriedInlineAndNothingStallsBehindIt) {
  // A TCP urgent byte (send with MSG_OOB) stops a read short at its mark, and splice does
  // not pass the mark at all. The shim carries it on as an ordinary byte, and the bytes
  // behind it follow at once, on the small-message path and on the bulk (splice) path.
  TcpServer backend(echoHandler());
  ShimProcess shim({"--netns", ns.path(), "--connect", "6000=" + backend.address()});
  auto roundTrip = [&](size_t before, size_t after) {
    int fd = connectInside(ns);
    BOOST_REQUIRE(fd >= 0);
    const std::string head(before, 'a'), tail(after, 'b');
    // Stopped, so all of it is queued at once and the shim's first read meets the mark.
    kill(shim.pid(), SIGSTOP);
    std::thread sender([&] {
      writeAll(fd, head.data(), head.size());
      send(fd, "X", 1, MSG_OOB);
      writeAll(fd, tail.data(), tail.size());
      shutdown(fd, SHUT_WR);
    });
    std::this_thread::sleep_for(100ms);
    kill(shim.pid(), SIGCONT);
    std::string got;
    BOOST_TEST(readToEof(fd, &got, 5000), "echo ended after " << got.size() << " bytes");
    sender.join();
    BOOST_TEST(got.size() == before + 1 + after);
    BOOST_TEST((got == head + "X" + tail), "urgent byte or what follows it lost");
    close(fd);
  };
  roundTrip(3, 3);
  roundTrip(256 * 1024, 256 * 1024);
}

BOOST_AUTO_TEST_CASE(AConversationThatTurnsBulkAndBackKeepsEveryByteInOrder) {
  // Small requests and answers, then an answer of megabytes, then small ones again, on one
  // connection: the bulk answer moves the connection from the small-message path (io_uring
  // reads into pool buffers) to splice in the middle of the conversation, while a read of
  // the other direction is pending. Every answer must arrive whole and in order.
  TcpServer backend(patternAnswers());
  ShimProcess shim({"--netns", ns.path(), "--connect", "6000=" + backend.address()});
  int fd = connectInside(ns);
  BOOST_REQUIRE(fd >= 0);
  uint64_t offset = 0;
  askAndCheck(fd, "sssbsssbbsss", &offset);
  shutdown(fd, SHUT_WR);
  BOOST_TEST(waitClosed(fd, 5000) >= 0);
  close(fd);
}

BOOST_AUTO_TEST_CASE(AConnectionGoesBackToTheRingOnceItsTrafficIsSmallAgain) {
  // A pooled connection that carried one large answer (a report, a big key) and small ones
  // after it: the large one moves it to epoll and splice, and once a few small exchanges
  // have gone by it is back on the ring, where small messages cost fewer system calls. One
  // whose answers are large every other time stays on epoll instead of going back and
  // forth. Every byte arrives in order throughout.
  std::string dir = tempDir();
  TcpServer backend(patternAnswers());
  ShimProcess shim({"--netns", ns.path(), "--connect", "6000=" + backend.address(), "--control", dir + "/c.sock"});
  const std::string control = dir + "/c.sock";
  const bool ring = epollPathOf(control) != "null";
  auto epollPathIs = [&](const std::string& expected) { return !ring || epollPathOf(control) == expected; };
  int fd = connectInside(ns);
  BOOST_REQUIRE(fd >= 0);
  uint64_t offset = 0;
  askAndCheck(fd, "ssb", &offset);
  BOOST_TEST(epollPathIs("{\"connections\":1,\"entered\":1,\"returned\":0}"), epollPathOf(control));
  askAndCheck(fd, "ssssssssss", &offset);
  BOOST_TEST(epollPathIs("{\"connections\":0,\"entered\":1,\"returned\":1}"), epollPathOf(control));
  askAndCheck(fd, "bsbsbsbsbsbs", &offset);
  BOOST_TEST(epollPathIs("{\"connections\":1,\"entered\":2,\"returned\":1}"), epollPathOf(control));
  askAndCheck(fd, "ssssssssss", &offset);
  BOOST_TEST(epollPathIs("{\"connections\":0,\"entered\":2,\"returned\":2}"), epollPathOf(control));
  shutdown(fd, SHUT_WR);
  BOOST_TEST(waitClosed(fd, 5000) >= 0);
  close(fd);
  BOOST_TEST(waitFor([&] { return epollPathIs("{\"connections\":0,\"entered\":2,\"returned\":2}"); }, 2s));
}

BOOST_AUTO_TEST_CASE(PipelinedRequestsWithNowAndThenALargeAnswerArriveInOrderAcrossEveryMoveBetweenThePaths) {
  // Requests written in bursts (pipelined, as redis clients do), the answers, one in 40 of
  // megabytes, read at the client's own pace, the next burst mostly once they are in: on
  // the io_uring path the connection leaves for epoll and comes back many times, at
  // moments the test does not choose, and every byte must come in order.
  std::string dir = tempDir();
  TcpServer backend(patternAnswers());
  ShimProcess shim({"--netns", ns.path(), "--connect", "6000=" + backend.address(), "--control", dir + "/c.sock"});
  const std::string control = dir + "/c.sock";
  int fd = connectInside(ns);
  BOOST_REQUIRE(fd >= 0);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  unsigned seed = 7;
  std::string requests;
  for (int i = 0; i < 2000; ++i) requests += rand_r(&seed) % 40 == 0 ? 'b' : 's';
  uint64_t total = 0;
  for (char c : requests) total += answerLength(c);
  std::string wrong;  // what the reader found amiss, before it stopped
  std::atomic<bool> stopped{false};
  std::atomic<uint64_t> read{0};
  std::thread reader([&] {
    std::vector<char> buf(1 << 16);
    uint64_t offset = 0;
    unsigned pace = 99;
    while (offset < total) {
      ssize_t n = recv(fd, buf.data(), buf.size(), 0);
      if (n <= 0) {
        wrong = "the stream ended after " + std::to_string(offset) + " of " + std::to_string(total) + " bytes";
        stopped = true;
        return;
      }
      for (ssize_t k = 0; k < n; ++k) {
        if (buf[k] != patternByte(offset + k)) {
          wrong = "byte " + std::to_string(offset + k) + " of the stream is wrong";
          stopped = true;
          return;
        }
      }
      offset += static_cast<uint64_t>(n);
      read = offset;
      if (rand_r(&pace) % 50 == 0) std::this_thread::sleep_for(2ms);
    }
  });
  uint64_t asked = 0;
  for (size_t i = 0; i < requests.size() && !stopped;) {
    const size_t burst = std::min<size_t>(1 + rand_r(&seed) % 8, requests.size() - i);
    if (!writeAll(fd, requests.data() + i, burst)) break;
    for (size_t k = i; k < i + burst; ++k) asked += answerLength(requests[k]);
    i += burst;
    if (rand_r(&seed) % 4 == 0) continue;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (read != asked && !stopped && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(50us);
  }
  reader.join();
  BOOST_TEST(wrong.empty(), wrong);
  shutdown(fd, SHUT_WR);
  BOOST_TEST(waitClosed(fd, 5000) >= 0);
  close(fd);
  const std::string moves = epollPathOf(control);
  BOOST_TEST_MESSAGE("moves between the paths: " << moves);
  if (moves != "null") {
    BOOST_TEST(moves.find("\"returned\":0}") == std::string::npos, "it never went back to the ring: " << moves);
    BOOST_TEST(waitFor([&] { return epollPathOf(control).find("\"connections\":0,") != std::string::npos; }, 2s),
               epollPathOf(control));
  }
}

BOOST_AUTO_TEST_CASE(AnUploadFlowsWhileTheClientIsNotReadingTheStreamComingBack) {
  // The backend streams small messages to the client and, at the same time, reads an
  // upload; the client reads nothing until its upload is done. The stream soon fills the
  // client's window, so the shim's send to the client waits; then the upload's first full
  // buffer moves the connection from the ring to splice. That move must not wait for the
  // stalled send (it would wait for ever: the upload stops, the client never reads).
  constexpr size_t kUpload = 8u << 20;
  std::atomic<size_t> uploaded{0};
  std::atomic<bool> done{false};
  TcpServer backend([&](int fd) {
    std::thread streamer([&] {
      const std::string message(2000, 'm');
      while (!done && writeAll(fd, message.data(), message.size(), 1000))
        std::this_thread::sleep_for(2ms);
    });
    char buf[65536];
    while (uploaded < kUpload) {
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      uploaded += static_cast<size_t>(n);
    }
    done = true;
    streamer.join();
  });
  ShimProcess shim({"--netns", ns.path(), "--connect", "6000=" + backend.address()});
  int fd = connectInsideWithASmallWindow(ns);
  BOOST_REQUIRE(fd >= 0);
  std::this_thread::sleep_for(1500ms);  // the stream fills the client's window meanwhile
  const std::string chunk(1 << 20, 'u');
  bool sent = true;
  for (size_t i = 0; i < kUpload / chunk.size() && sent; ++i) sent = writeAll(fd, chunk.data(), chunk.size(), 10000);
  BOOST_TEST(sent, "the upload stalled");
  BOOST_TEST(waitFor([&] { return uploaded.load() >= kUpload; }, 10s), "the backend got " << uploaded.load() << " bytes");
  done = true;
  close(fd);
}

BOOST_AUTO_TEST_CASE(AnUploadFlowsWhileABurstFromTheBackendWaitsForTheClient) {
  // The mirror of the test above: the backend answers at once with a burst and reads an
  // upload meanwhile; the client reads nothing until its upload is done. The burst's first
  // full buffer moves the connection from the ring to splice, and its bytes cannot all go
  // to the client yet (a small window, a small send buffer). Sending them must not hold up
  // the move: the client's upload has to flow in the meantime, as it would without a proxy.
  // A small send buffer for the shim's socket to the client, made in this namespace.
  BOOST_REQUIRE(run(ns.exec({"sysctl", "-q", "-w", "net.ipv4.tcp_wmem=4096 4096 4096"})).exitCode == 0);
  constexpr size_t kBurst = 256u << 10;
  constexpr size_t kUpload = 4u << 20;
  std::string burst(kBurst, '\0');
  for (size_t i = 0; i < kBurst; ++i) burst[i] = patternByte(i);
  std::atomic<size_t> uploaded{0};
  TcpServer backend([&](int fd) {
    std::thread sender([&] { writeAll(fd, burst.data(), burst.size(), 20000); });
    char buf[65536];
    while (uploaded < kUpload) {
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      uploaded += static_cast<size_t>(n);
    }
    sender.join();
  });
  ShimProcess shim({"--netns", ns.path(), "--connect", "6000=" + backend.address()});
  int fd = connectInsideWithASmallWindow(ns);
  BOOST_REQUIRE(fd >= 0);
  std::this_thread::sleep_for(500ms);  // the burst reaches the shim and fills the client's window
  const std::string chunk(1 << 20, 'u');
  bool sent = true;
  for (size_t i = 0; i < kUpload / chunk.size() && sent; ++i) sent = writeAll(fd, chunk.data(), chunk.size(), 5000);
  BOOST_TEST(sent, "the upload stalled");
  BOOST_TEST(waitFor([&] { return uploaded.load() >= kUpload; }, 10s), "the backend got " << uploaded.load() << " bytes");
  BOOST_TEST(receivesExactly(fd, burst, 10), "the burst did not reach the client whole");
  close(fd);
}

BOOST_AUTO_TEST_CASE(AnAnswerThatEndsInAResetReachesASlowClientWholeThenTheReset) {
  // The backend's last bytes wait in the shim's pipe for a client that reads slowly when
  // its reset is read: they go first, then the reset, as without a proxy. (They were thrown
  // away with the pipe.)
  constexpr size_t kAnswer = 1u << 20;
  std::string answer(kAnswer, '\0');
  for (size_t i = 0; i < kAnswer; ++i) answer[i] = patternByte(i);
  TcpServer backend([&](int fd) {
    writeAll(fd, answer.data(), answer.size(), 20000);
    waitUntilTaken(fd);  // then a reset
    linger hard{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
  });
  ShimProcess shim({"--netns", ns.path(), "--connect", "6000=" + backend.address()});
  int fd = connectInsideWithASmallWindow(ns);
  BOOST_REQUIRE(fd >= 0);
  std::string got;
  char buf[8192];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof buf, 0)) > 0) {
    got.append(buf, static_cast<size_t>(n));
    std::this_thread::sleep_for(1ms);
  }
  const int err = n < 0 ? errno : 0;
  close(fd);
  BOOST_TEST(got.size() == kAnswer);
  BOOST_TEST((got == answer), "the answer's bytes differ");
  BOOST_TEST(err == ECONNRESET, "the answer ended with " << (err ? std::strerror(err) : "a FIN"));
}

BOOST_AUTO_TEST_CASE(ThreeHundredConnectionsTalkingAtOnceAreAllAnsweredWhole) {
  // More connections with bytes in flight at the same moment than the ring starts with
  // read buffers (64): reads that find the pool empty wait for a buffer or grow the pool,
  // and every connection still gets exactly its own bytes back.
  constexpr int kConnections = 300;
  constexpr size_t kMessage = 8000;
  TcpServer backend(echoHandler());
  ShimProcess shim({"--netns", ns.path(), "--connect", "6000=" + backend.address()});
  std::vector<int> fds;
  for (int i = 0; i < kConnections; ++i) {
    int fd = connectInside(ns);
    BOOST_REQUIRE_MESSAGE(fd >= 0, "connection " << i);
    fds.push_back(fd);
  }
  BOOST_REQUIRE(waitFor([&] { return backend.open() == kConnections; }, 10s));
  auto message = [&](int i) {
    std::string m(kMessage, '\0');
    for (size_t k = 0; k < kMessage; ++k) m[k] = static_cast<char>('a' + (i + k) % 26);
    return m;
  };
  for (int i = 0; i < kConnections; ++i) BOOST_REQUIRE(writeAll(fds[i], message(i).data(), kMessage));
  int whole = 0;
  for (int i = 0; i < kConnections; ++i) {
    whole += receivesExactly(fds[i], message(i), 5);  // a lost byte fails the test instead of hanging it
    close(fds[i]);
  }
  BOOST_TEST(whole == kConnections);
}

// Clients that speak first, to a shim whose backend does not accept yet: each client's
// read holds its buffer until the backend connects.
struct ClientsSpeakingFirst {
  static std::string message(int i) { return "message " + std::to_string(i) + "\n"; }

  ClientsSpeakingFirst(const TestNetns& ns, int count)
      : control(tempDir() + "/c.sock"),
        shim({"--netns", ns.path(), "--connect", "6000=" + backend.address(), "--connect-timeout", "20s", "--control",
              control}) {
    for (int i = 0; i < count; ++i) {
      int fd = connectInside(ns);
      BOOST_REQUIRE_MESSAGE(fd >= 0, "connection " << i);
      fds.push_back(fd);
      BOOST_REQUIRE(writeAll(fd, message(i).data(), message(i).size()));
    }
  }
  ~ClientsSpeakingFirst() {
    for (int fd : fds) close(fd);
  }
  bool poolReaches(const std::string& expected) const {
    return waitFor([&] { return readBuffersOf(control) == expected; }, 5s);
  }

  SilentListener backend;
  std::string control;
  ShimProcess shim;
  std::vector<int> fds;
};

BOOST_AUTO_TEST_CASE(ClientsSpeakingFirstOnMoreConnectionsThanReadBuffersGrowThePool) {
  // 200 reads hold their buffers against a pool of 64: the starved ones grow the pool by
  // 64 at a time and stay in the ring.
  ClientsSpeakingFirst clients(ns, 200);
  if (readBuffersOf(clients.control) == "null") return;  // the epoll data path has no pool
  BOOST_TEST(clients.poolReaches("{\"pool\":256,\"lent\":200}"), readBuffersOf(clients.control));
}

BOOST_AUTO_TEST_CASE(ClientsBeyondAFullGrownPoolGoOnOutsideTheRingAndAreAnsweredWhole) {
  // 300 clients: 256 reads hold every buffer of a pool grown to its limit, and 44 find it
  // empty. Once the backend accepts, those 44 go on with epoll and splice, their bytes
  // still waiting in their sockets, and every client gets its own message back.
  constexpr int kConnections = 300;
  ClientsSpeakingFirst clients(ns, kConnections);
  if (readBuffersOf(clients.control) != "null")
    BOOST_TEST(clients.poolReaches("{\"pool\":256,\"lent\":256}"), readBuffersOf(clients.control));
  clients.backend.open(echoHandler());
  int whole = 0;
  for (int i = 0; i < kConnections; ++i)  // the shim's connects wait for a SYN retry (1 s, then 3 s)
    whole += receivesExactly(clients.fds[i], ClientsSpeakingFirst::message(i), 10);
  BOOST_TEST(whole == kConnections);
}

BOOST_AUTO_TEST_CASE(ItSaysWhichDataPathItUses) {
  // io_uring where the kernel allows it (ctest runs this suite once more with
  // --data-path epoll); the status says which one is in use.
  std::string dir = tempDir();
  TcpServer backend(echoHandler());
  ShimProcess shim({"--netns", ns.path(), "--connect", "6000=" + backend.address(), "--control", dir + "/c.sock"});
  std::ifstream disabled("/proc/sys/kernel/io_uring_disabled");
  int ioUringDisabled = 0;
  disabled >> ioUringDisabled;
  const char* forced = std::getenv("CONNECTABLE_TEST_SHIM_DATA_PATH");
  const std::string expected = forced ? forced : ioUringDisabled ? "epoll" : "io_uring";
  BOOST_TEST(shim.log().find("data_path=" + expected) != std::string::npos, shim.log());
  auto status = run({"curl", "-sS", "--unix-socket", dir + "/c.sock", "http://shim/status"});
  BOOST_TEST(status.out.find("\"data_path\":\"" + expected + "\"") != std::string::npos, status.out);
}

BOOST_AUTO_TEST_CASE(WhereIoUringIsDeniedItSaysWhyAndServesOnEpoll) {
  // As under Docker 25's default seccomp profile, which the shims of an injector in such a
  // container inherit: io_uring_setup fails with EPERM. Nothing else may change.
  std::string dir = tempDir();
  TcpServer backend(replyHandler("ok"));
  Child shim = spawnListening({std::string(CONNECTABLE_BIN_DIR) + "/without-io-uring", shimBinary(), "--netns",
                               ns.path(), "--connect", "6000=" + backend.address(), "--control", dir + "/c.sock"},
                              dir + "/log");
  const std::string log = shim.log();
  BOOST_TEST(log.find("io_uring not available, the data path uses epoll") != std::string::npos, log);
  BOOST_TEST(log.find("io_uring_setup: Operation not permitted") != std::string::npos, log);
  BOOST_TEST(log.find("data_path=epoll") != std::string::npos, log);
  auto status = run({"curl", "-sS", "--unix-socket", dir + "/c.sock", "http://shim/status"});
  BOOST_TEST(status.out.find("\"data_path\":\"epoll\"") != std::string::npos, status.out);
  // Confined all the same, its own filter stacked on the one that denies io_uring.
  const int expected = std::stoi(statusField(getpid(), "Seccomp_filters")) + 1 + kShimsOwnFilters;
  BOOST_TEST(waitFor([&] { return statusField(shim.pid(), "Seccomp_filters") == std::to_string(expected); }, 2s));
  int fd = connectInside(ns);
  std::string got;
  BOOST_TEST(readToEof(fd, &got));
  BOOST_TEST(got == "ok");
  close(fd);
  shim.signal(SIGTERM);
  BOOST_TEST(shim.wait(5s) == 0);
  expectNoCallRefused(shim.log());
}

BOOST_AUTO_TEST_CASE(FailsOverWhenOneBackendIsDown) {
  TcpServer alive(replyHandler("alive"));
  ReservedPort dead;  // refuses
  std::string deadAddress = dead.address();
  ShimProcess shim({"--netns", ns.path(), "--connect", "6000=" + deadAddress + "," + alive.address()});
  for (int i = 0; i < 50; ++i) {
    int fd = connectInside(ns);
    BOOST_REQUIRE(fd >= 0);
    std::string got;
    BOOST_TEST(readToEof(fd, &got, 3000));
    BOOST_TEST(got == "alive", "connection " << i << " got '" << got << "'");
    close(fd);
  }
  BOOST_TEST(alive.accepted() == 50);
}

BOOST_AUTO_TEST_CASE(FailsOverPastABackendThatDoesNotAnswer) {
  // A listener whose accept queue is full drops SYNs: connecting to it hangs, like a
  // backend host that vanished. Only the connect timeout gets past it.
  SilentListener silent;
  TcpServer alive(replyHandler("alive"));
  ShimProcess shim({"--netns", ns.path(), "--balance", "round-robin", "--connect-timeout", "300ms",
                    "--connect", "6000=" + silent.address() + "," + alive.address()});
  auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < 6; ++i) {
    int fd = connectInside(ns);
    BOOST_REQUIRE(fd >= 0);
    std::string got;
    BOOST_TEST(readToEof(fd, &got, 3000));
    BOOST_TEST(got == "alive");
    close(fd);
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
  // One timeout paid at most once or twice: after it the silent backend is penalized.
  BOOST_TEST(ms >= 300);
  BOOST_TEST(ms < 1500);
  // Each attempt is a debug-only detail; that the backend started failing is said once.
  const std::string log = shim.log();
  const auto first = log.find("connect timeout");
  BOOST_TEST(first != std::string::npos, log);
  BOOST_TEST(log.find("connect timeout", first + 1) == std::string::npos, log);
  BOOST_TEST(log.find("backend failing; the others are tried first port=6000 backend=" + silent.address() +
                      " error=\"connect timeout\"") != std::string::npos,
             log);
}

// One backend of a shim's status (curl on its control socket): null when it has none there.
Poco::JSON::Object::Ptr backendStatus(const std::string& controlSocket, const std::string& address) {
  auto status = run({"curl", "-sS", "-m", "5", "--unix-socket", controlSocket, "http://shim/status"}).out;
  auto ports = Poco::JSON::Parser().parse(status).extract<Poco::JSON::Object::Ptr>()->getArray("ports");
  for (size_t i = 0; i < ports->size(); ++i) {
    auto backends = ports->getObject(static_cast<unsigned>(i))->getArray("backends");
    for (size_t k = 0; k < backends->size(); ++k) {
      auto b = backends->getObject(static_cast<unsigned>(k));
      if (b->getValue<std::string>("address") == address) return b;
    }
  }
  return nullptr;
}

BOOST_AUTO_TEST_CASE(ABackendThatDoesNotAnswerIsProbedByTheShimAndNoClientWaitsForItAgain) {
  // Its penalty ending put it back in turn, and the next client was the test: it waited
  // the whole connect timeout, at every penalty's end, for as long as the backend was
  // dead. The shim probes it instead, and it stays penalized until it answers.
  SilentListener silent;
  TcpServer alive(replyHandler("alive"));
  const std::string control = tempDir() + "/shim.sock";
  const long timeoutMs = 500;
  ShimProcess shim({"--netns", ns.path(), "--balance", "round-robin", "--connect-timeout", std::to_string(timeoutMs) + "ms",
                    "--control", control, "--connect", "6000=" + silent.address() + "," + alive.address()});
  auto ask = [&](long* ms) {
    const auto before = std::chrono::steady_clock::now();
    int fd = connectInside(ns);
    std::string got;
    if (fd >= 0) {
      readToEof(fd, &got, 5000);
      close(fd);
    }
    *ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - before).count();
    return got;
  };
  // Round-robin: one of the first two tries it first, and pays the timeout once.
  long ms = 0;
  for (int i = 0; i < 2; ++i) BOOST_TEST(ask(&ms) == "alive");
  BOOST_REQUIRE(shim.waitLog("backend failing; the others are tried first port=6000 backend=" + silent.address()));
  // 4.5 s: past the first penalty's end (1 s: a probe fails 0.5 s later) and the second's
  // (2 s more). No client waits for it, and it is not "up" meanwhile. On a slow or loaded
  // CPU (the kernel check's emulated one) a round takes longer: on until enough clients
  // came and one round saw a probe under way, within 20 s (the third penalty's end).
  const auto started = std::chrono::steady_clock::now();
  int asked = 0;
  bool sawProbing = false;
  auto more = [&] {
    const auto now = std::chrono::steady_clock::now();
    return now < started + 20s && (now < started + 4500ms || asked < 6 || !sawProbing);
  };
  while (more()) {
    BOOST_TEST(ask(&ms) == "alive");
    BOOST_TEST(ms < timeoutMs, "connection " << asked << " took " << ms << " ms");
    ++asked;
    auto b = backendStatus(control, silent.address());
    BOOST_REQUIRE(b);
    BOOST_TEST(b->getValue<std::string>("state") == "penalized");
    if (b->getValue<bool>("probing")) {
      sawProbing = true;
      BOOST_TEST(b->getValue<double>("penalty_seconds_left") == 0.0);
    }
  }
  // Some came after each penalty's end, when the old shim put the backend back in turn
  // and, round-robin, gave it to every other client (this machine makes a hundred in 4.5 s,
  // the kernel check's qemu 11).
  BOOST_TEST(asked >= 6);
  BOOST_TEST(sawProbing);
  auto b = backendStatus(control, silent.address());
  BOOST_TEST(b->getValue<int>("probes") >= 2);
  BOOST_TEST(b->getValue<int>("probe_failures") == b->getValue<int>("probes"));
  BOOST_TEST(b->getValue<int>("connect_failures") == 1);  // the first client's: no other tried it
  const int failedProbes = b->getValue<int>("probe_failures");

  // It answers again: a probe finds out, and clients get it in turn.
  silent.open(replyHandler("back"));
  bool back = false;
  for (int i = 0; i < 200 && !back; ++i) {
    back = ask(&ms) == "back";
    BOOST_TEST(ms < timeoutMs, "a connection took " << ms << " ms");
    if (!back) std::this_thread::sleep_for(50ms);
  }
  BOOST_TEST(back, "the backend that answers again was not taken back in turn");
  b = backendStatus(control, silent.address());
  BOOST_TEST(b->getValue<std::string>("state") == "up");
  BOOST_TEST(b->getValue<int>("probes") == failedProbes + 1);
  BOOST_TEST(b->getValue<int>("connect_failures") == 1);
  const std::string log = shim.log();
  const std::string answers = "info connectable-shim: backend answers again port=6000 backend=" + silent.address();
  const auto first = log.find(answers);
  BOOST_TEST(first != std::string::npos, log);
  BOOST_TEST(log.find(answers, first + 1) == std::string::npos, log);
  BOOST_TEST(log.find("health probe") == std::string::npos, log);  // failed probes are debug lines
}

// One failure count of the shim's (first) port, from its status.
int portFailures(const std::string& controlSocket, const std::string& reason) {
  auto status = run({"curl", "-sS", "-m", "5", "--unix-socket", controlSocket, "http://shim/status"}).out;
  auto ports = Poco::JSON::Parser().parse(status).extract<Poco::JSON::Object::Ptr>()->getArray("ports");
  return ports->getObject(0)->getObject("failures")->getValue<int>(reason);
}

// The failovers of the shim's (first) port, from its status.
int portFailovers(const std::string& controlSocket) {
  auto status = run({"curl", "-sS", "-m", "5", "--unix-socket", controlSocket, "http://shim/status"}).out;
  auto ports = Poco::JSON::Parser().parse(status).extract<Poco::JSON::Object::Ptr>()->getArray("ports");
  return ports->getObject(0)->getValue<int>("failovers");
}

// A forwarder with nothing behind it (docker-proxy for a container whose program does not
// listen, a load balancer with no members) accepts every connect and hangs up at once.
// Counted as connected, it got every other client, round-robin, for as long as it stayed so.
void aBackendThatHangsUpIsTriedLast(const TestNetns& ns, bool clientSpeaksFirst, bool clientEnds, bool reset) {
  TcpServer hangsUp([reset](int fd) {
    if (reset) {
      linger hard{1, 0};
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
    }
  });
  TcpServer alive([clientSpeaksFirst](int fd) {
    if (clientSpeaksFirst) {
      char buf[16];
      if (recv(fd, buf, sizeof buf, 0) <= 0) return;
    }
    send(fd, "alive", 5, MSG_NOSIGNAL);
  });
  const std::string control = tempDir() + "/shim.sock";
  ShimProcess shim({"--netns", ns.path(), "--balance", "round-robin", "--control", control,
                    "--connect", "6000=" + hangsUp.address() + "," + alive.address()});
  int served = 0;
  for (int i = 0; i < 20; ++i) {
    int fd = connectInside(ns);
    BOOST_REQUIRE(fd >= 0);
    if (clientSpeaksFirst) BOOST_REQUIRE(send(fd, "hello", 5, MSG_NOSIGNAL) == 5);
    if (clientEnds) shutdown(fd, SHUT_WR);  // as `printf ... | socat` does
    std::string got;
    readToEof(fd, &got, 3000);
    close(fd);
    served += got == "alive";
  }
  // The first client it hung up on (one of the first two, round-robin) is the only one.
  // A client that had not said a word goes on to the other backend, and never knows. One
  // that spoke is not: what it said may have been acted on, and is not sent twice.
  BOOST_TEST(served == (clientSpeaksFirst ? 19 : 20));
  BOOST_TEST(portFailovers(control) == (clientSpeaksFirst ? 0 : 1));
  BOOST_TEST(hangsUp.accepted() == 1);
  auto b = backendStatus(control, hangsUp.address());
  BOOST_REQUIRE(b);
  BOOST_TEST(b->getValue<std::string>("state") == "penalized");
  BOOST_TEST(b->getValue<int>("connect_failures") == 1);
  BOOST_TEST(portFailures(control, "backend_hung_up") == 1);
  BOOST_TEST(portFailures(control, "backend_error") == 0);
  BOOST_TEST(shim.waitLog("backend failing; the others are tried first port=6000 backend=" + hangsUp.address() +
                          " error=\"hung up without a byte\""));
  // Its probe connects and is hung up on too: it stays penalized, and no client is sent there.
  for (int i = 0; i < 60 && b->getValue<int>("probe_failures") == 0; ++i) {
    std::this_thread::sleep_for(50ms);
    b = backendStatus(control, hangsUp.address());
  }
  BOOST_TEST(b->getValue<int>("probe_failures") == 1);
  BOOST_TEST(b->getValue<std::string>("state") == "penalized");
  BOOST_TEST(hangsUp.accepted() == 2);  // the client's connection and the probe's
}

BOOST_AUTO_TEST_CASE(ABackendThatResetsAClientWithoutAByteIsTriedLastLikeOneThatRefused) {
  aBackendThatHangsUpIsTriedLast(ns, /*clientSpeaksFirst=*/true, /*clientEnds=*/false, /*reset=*/true);
}

BOOST_AUTO_TEST_CASE(ABackendThatResetsAClientThatSpokeAndEndedWithoutAByteIsTriedLastToo) {
  aBackendThatHangsUpIsTriedLast(ns, /*clientSpeaksFirst=*/true, /*clientEnds=*/true, /*reset=*/true);
}

BOOST_AUTO_TEST_CASE(ABackendThatClosesOnAClientWaitingForItsGreetingIsTriedLastAndTheNextGreetsIt) {
  aBackendThatHangsUpIsTriedLast(ns, /*clientSpeaksFirst=*/false, /*clientEnds=*/false, /*reset=*/false);
}

BOOST_AUTO_TEST_CASE(ABackendThatResetsAClientWaitingForItsGreetingIsTriedLastAndTheNextGreetsIt) {
  aBackendThatHangsUpIsTriedLast(ns, /*clientSpeaksFirst=*/false, /*clientEnds=*/false, /*reset=*/true);
}

BOOST_AUTO_TEST_CASE(EverySocatWaitingForAGreetingGetsOneWhileHalfTheBackendsHangUp) {
  // Two forwarders with nothing behind them and two live servers that speak first (as
  // MySQL's and SMTP's do): each client hung up on before it said a word goes on to the
  // next backend of its order, also when that one hangs up too.
  TcpServer hangsUpA([](int) {});
  TcpServer hangsUpB([](int) {});
  TcpServer greetsA([](int fd) { send(fd, "220 a\r\n", 7, MSG_NOSIGNAL); });
  TcpServer greetsB([](int fd) { send(fd, "220 b\r\n", 7, MSG_NOSIGNAL); });
  const std::string control = tempDir() + "/shim.sock";
  ShimProcess shim(
      {"--netns", ns.path(), "--balance", "round-robin", "--control", control, "--connect",
       "6000=" + hangsUpA.address() + "," + hangsUpB.address() + "," + greetsA.address() + "," + greetsB.address()});
  std::map<std::string, int> got;
  for (int i = 0; i < 20; ++i) {
    // -u: socat only reads, and says nothing (no FIN either) until the server ends.
    auto r = run(ns.exec({"socat", "-u", "TCP:127.0.0.1:6000,connect-timeout=5", "STDOUT"}));
    ++got[r.out + (r.exitCode == 0 ? "" : " (socat: " + r.err + ")")];
  }
  BOOST_TEST(got["220 a\r\n"] + got["220 b\r\n"] == 20);
  BOOST_TEST(got["220 a\r\n"] >= 5);
  BOOST_TEST(got["220 b\r\n"] >= 5);
  // Each was hung up on once at least (then penalized), and each time, the client went on.
  BOOST_TEST(portFailures(control, "backend_hung_up") >= 2);
  BOOST_TEST(portFailovers(control) == portFailures(control, "backend_hung_up"));
  BOOST_TEST(portFailures(control, "no_backend") == 0);
}

// An HTTP server that refuses an upload at its headers (413, 401, 417): it answers and
// closes with the body unread, and its kernel resets. A proxy still sending the body finds
// the reset on a write before it read the answer.
void refuseUpload(int fd) {
  char buf[1024];
  if (recv(fd, buf, sizeof buf, 0) <= 0) return;
  const char answer[] = "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
  send(fd, answer, sizeof answer - 1, MSG_NOSIGNAL);
}

BOOST_AUTO_TEST_CASE(ABackendThatRefusesAnUploadWithAnAnswerIsNotTakenToHaveHungUp) {
  TcpServer refuses(refuseUpload);
  const std::string control = tempDir() + "/shim.sock";
  ShimProcess shim({"--netns", ns.path(), "--control", control, "--connect", "6000=" + refuses.address()});
  for (int i = 0; i < 5; ++i) {
    int fd = connectInside(ns);
    BOOST_REQUIRE(fd >= 0);
    const std::string head = "POST / HTTP/1.1\r\nContent-Length: 100000000\r\n\r\n";
    send(fd, head.data(), head.size(), MSG_NOSIGNAL);
    const std::string chunk(65536, 'x');
    for (int j = 0; j < 200; ++j)
      if (send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL) < 0) break;
    std::string got;
    readToEof(fd, &got, 3000);
    close(fd);
    BOOST_TEST(got.rfind("HTTP/1.1 413 ", 0) == 0, got);
  }
  auto b = backendStatus(control, refuses.address());
  BOOST_REQUIRE(b);
  BOOST_TEST(portFailures(control, "backend_hung_up") == 0);
  BOOST_TEST(b->getValue<int>("connect_failures") == 0);
  BOOST_TEST(b->getValue<std::string>("state") == "up");
}

BOOST_AUTO_TEST_CASE(AClientWhoseUploadIsRefusedGetsTheAnswerThenTheResetAsWithoutAProxy) {
  // Without a proxy, curl reads the 413 that came before the reset. The shim aborted on the
  // failed write with the answer unread behind it: curl got it 3 times in 10. Then, passing
  // the reset on right after the answer, curl still sending found it at a send first, and
  // said "Send failure" 4 times in 50.
  TcpServer refuses(refuseUpload);
  const std::string body = tempDir() + "/body";
  sh("truncate -s 64M " + body);  // more than every socket buffer on the way holds
  ShimProcess shim({"--netns", ns.path(), "--connect", "6000=" + refuses.address()});
  std::map<std::string, int> codes;
  for (int i = 0; i < 20; ++i) {
    // `Expect:` off: curl sends the body at once instead of waiting for a 100 Continue.
    auto r = run(ns.exec({"curl", "-sS", "-m", "10", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Expect:",
                          "--data-binary", "@" + body, "http://127.0.0.1:6000/"}));
    ++codes[r.out + (r.exitCode == 0 ? "" : " (" + r.err + ")")];
  }
  BOOST_TEST(codes["413"] == 20, [&] {
    std::string all;
    for (const auto& [code, n] : codes) all += std::to_string(n) + "× " + code + "; ";
    return all;
  }());
  BOOST_TEST(refuses.accepted() == 20);
}

// The shim's open connections, from its status.
int activeConnections(const std::string& controlSocket) {
  auto status = run({"curl", "-sS", "-m", "5", "--unix-socket", controlSocket, "http://shim/status"}).out;
  return Poco::JSON::Parser().parse(status).extract<Poco::JSON::Object::Ptr>()->getValue<int>("active_connections");
}

// Reads until the end: true for a reset, false for a FIN or the timeout (`*timedOut`).
bool readToReset(int fd, std::string* got, int timeoutMs, bool* timedOut) {
  timeval tv{timeoutMs / 1000, (timeoutMs % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  *timedOut = false;
  char buf[65536];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      got->append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    *timedOut = n < 0 && errno == EAGAIN;
    return n < 0 && errno == ECONNRESET;
  }
}

BOOST_AUTO_TEST_CASE(AClientThatSendsItsWholeUploadBeforeReadingIsResetSoonAfterTheBackend) {
  // Python's http.client sends the whole body before it reads. The backend answers more than
  // the buffers on the way hold for a second, then closes with the body unread (a reset).
  // Without a proxy the client's blocked send fails at once with that reset. The shim, which
  // stops reading a client whose backend reset to pass the answer on, waited for it to read
  // until the idle timeout, an hour.
  TcpServer backend([](int fd) {
    char buf[1024];
    if (recv(fd, buf, sizeof buf, 0) <= 0) return;
    fcntl(fd, F_SETFL, O_NONBLOCK);
    const std::string chunk(65536, 'a');
    const auto end = std::chrono::steady_clock::now() + 1s;
    while (std::chrono::steady_clock::now() < end)
      if (send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL) < 0) std::this_thread::sleep_for(5ms);
  });
  ShimProcess shim({"--netns", ns.path(), "--connect", "6000=" + backend.address()});
  int fd = connectInside(ns);
  BOOST_REQUIRE(fd >= 0);
  timeval tv{20, 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  const std::string head = "POST / HTTP/1.1\r\nContent-Length: 1000000000\r\n\r\n";
  BOOST_REQUIRE(send(fd, head.data(), head.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(head.size()));
  const std::string chunk(1 << 20, 'b');
  int err = 0;
  for (int i = 0; i < 1000 && err == 0; ++i)
    if (send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL) < 0) err = errno;
  close(fd);
  BOOST_TEST((err == ECONNRESET || err == EPIPE), "the upload ended with " << (err ? std::strerror(err) : "no error"));
}

BOOST_AUTO_TEST_CASE(ABackendThatEndedAndThenResetAnUploadStillEndsTheConnectionAfterItsWholeAnswer) {
  // The backend answers, and closes with nothing unread (a FIN). The client, which has not
  // read yet (a small window: most of the answer waits in the shim), sends more, and the
  // backend's socket resets it. The shim finds that reset on a write with the answer still
  // held for the client, in its pipe or its socket: all of it reaches the client, and its
  // FIN, and the connection ends. (It lingered until the idle timeout; before that, the
  // abort dropped what the client's kernel had not taken.)
  constexpr size_t kAnswer = 2u << 20;
  std::atomic<bool> ended{false};
  TcpServer backend([&](int fd) {
    char buf[1024];
    if (recv(fd, buf, sizeof buf, 0) <= 0) return;
    const std::string answer(kAnswer, 'a');
    writeAll(fd, answer.data(), answer.size(), 20000);
    waitUntilTaken(fd);  // then the close, with nothing unread: a FIN
    ended = true;
  });
  const std::string control = tempDir() + "/shim.sock";
  ShimProcess shim({"--netns", ns.path(), "--control", control, "--connect", "6000=" + backend.address()});
  int fd = connectInsideWithASmallWindow(ns);
  BOOST_REQUIRE(fd >= 0);
  const std::string head = "POST / HTTP/1.1\r\nContent-Length: 1000000000\r\n\r\n";
  BOOST_REQUIRE(send(fd, head.data(), head.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(head.size()));
  BOOST_REQUIRE(waitFor([&] { return ended.load(); }, 20s));
  std::this_thread::sleep_for(100ms);  // its FIN reaches the shim
  const std::string chunk(16384, 'b');
  for (int i = 0; i < 20; ++i) send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  std::string got;
  bool timedOut = false;
  readToReset(fd, &got, 10000, &timedOut);  // its FIN, or the reset when that came first
  close(fd);
  BOOST_TEST(got.size() == kAnswer);
  BOOST_TEST(!timedOut, "the answer did not end");
  BOOST_TEST(waitFor([&] { return activeConnections(control) == 0; }, 5s));
}

BOOST_AUTO_TEST_CASE(ABackendResetFoundOnASendWhileLeavingTheRingStillPassesTheAnswerOn) {
  // The client's bytes and the backend's full buffer and reset arrive while the shim is
  // stopped, so that it handles them in one batch: the client's go to the backend, whose
  // full buffer takes the connection out of the ring, and that send, the last operation in
  // flight, finds the reset. The connection stayed in neither the ring nor epoll, watched
  // by nothing, until the idle timeout; now the answer goes on, then the reset.
  ReservedPort reserved;
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(reserved.port());
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  BOOST_REQUIRE(bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  BOOST_REQUIRE(listen(listener, 16) == 0);
  const std::string control = tempDir() + "/shim.sock";
  ShimProcess shim(
      {"--netns", ns.path(), "--control", control, "--connect", "6000=127.0.0.1:" + std::to_string(reserved.port())});
  for (int i = 0; i < 3; ++i) {
    int fd = connectInside(ns);
    BOOST_REQUIRE(fd >= 0);
    int b = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    BOOST_REQUIRE(b >= 0);
    const std::string request(2000, 'h');
    BOOST_REQUIRE(send(fd, request.data(), request.size(), MSG_NOSIGNAL) == 2000);
    std::this_thread::sleep_for(50ms);
    char buf[100];
    BOOST_REQUIRE(recv(b, buf, sizeof buf, 0) > 0);  // the rest unread: its close resets
    std::this_thread::sleep_for(50ms);
    kill(shim.pid(), SIGSTOP);
    std::this_thread::sleep_for(20ms);
    send(fd, buf, sizeof buf, MSG_NOSIGNAL);
    const std::string answer(32768, 'a');
    writeAll(b, answer.data(), answer.size(), 5000);
    std::this_thread::sleep_for(10ms);
    close(b);
    std::this_thread::sleep_for(20ms);
    kill(shim.pid(), SIGCONT);
    std::string got;
    bool timedOut = false;
    readToReset(fd, &got, 3000, &timedOut);
    close(fd);
    BOOST_TEST(!timedOut, "round " << i << ": the connection did not end");
    BOOST_TEST(got.size() == answer.size(), "round " << i);
  }
  close(listener);
  BOOST_TEST(waitFor([&] { return activeConnections(control) == 0; }, 5s));
}

BOOST_AUTO_TEST_CASE(ALoneBackendThatHangsUpIsNotSaidToAnswerAgainWhenClientsStillReachIt) {
  // The only backend hangs up on everyone: each client still reaches it (the last one left
  // to try). Its connect alone put it back in turn and logged that it answers again, and
  // its penalty never grew.
  TcpServer hangsUp([](int) {});
  const std::string control = tempDir() + "/shim.sock";
  ShimProcess shim({"--netns", ns.path(), "--control", control, "--connect", "6000=" + hangsUp.address()});
  for (int i = 0; i < 3; ++i) {
    int fd = connectInside(ns);
    BOOST_REQUIRE(fd >= 0);
    std::string got;
    readToEof(fd, &got, 3000);
    BOOST_TEST(got.empty());
    close(fd);
  }
  BOOST_TEST(shim.waitLog("backend failing; the others are tried first"));
  BOOST_TEST(shim.log().find("backend answers again") == std::string::npos, shim.log());
  auto b = backendStatus(control, hangsUp.address());
  BOOST_REQUIRE(b);
  BOOST_TEST(b->getValue<int>("consecutive_failures") == 3);
  BOOST_TEST(portFailures(control, "backend_hung_up") == 3);
}

BOOST_AUTO_TEST_CASE(ABackendThatEndsWithoutAWordOnceTheClientSpokeOrAfterAMomentStaysInTurn) {
  // A server's own ways to end without an answer: memcached's `quit` (read, then closed),
  // an idle client closed after a while. Neither is a forwarder with nothing behind it.
  TcpServer quits([](int fd) {
    char buf[64];
    recv(fd, buf, sizeof buf, 0);
  });
  TcpServer idleCloses([](int) { std::this_thread::sleep_for(400ms); });
  const std::string control = tempDir() + "/shim.sock";
  ShimProcess shim({"--netns", ns.path(), "--control", control, "--connect", "6000=" + quits.address(), "--connect",
                    "6001=" + idleCloses.address()});
  for (int i = 0; i < 3; ++i) {
    int fd = connectInside(ns);
    BOOST_REQUIRE(fd >= 0);
    BOOST_REQUIRE(send(fd, "quit\r\n", 6, MSG_NOSIGNAL) == 6);
    std::string got;
    BOOST_TEST(readToEof(fd, &got, 3000));
    close(fd);
    fd = connectInside(ns, 6001);
    BOOST_REQUIRE(fd >= 0);
    BOOST_TEST(readToEof(fd, &got, 3000));
    close(fd);
  }
  for (const auto& address : {quits.address(), idleCloses.address()}) {
    auto b = backendStatus(control, address);
    BOOST_REQUIRE(b);
    BOOST_TEST(b->getValue<std::string>("state") == "up", address);
    BOOST_TEST(b->getValue<int>("connect_failures") == 0, address);
  }
  BOOST_TEST(shim.log().find("hung up") == std::string::npos, shim.log());
}

BOOST_AUTO_TEST_CASE(ABackendThatEndsWithoutAnswerAfterTheClientsEndStaysInTurn) {
  // A sink: it reads what the client sends up to its FIN, then closes without a word. The
  // client ended first: nothing was cut short, and the backend is not to blame.
  TcpServer sink(holdHandler());
  const std::string control = tempDir() + "/shim.sock";
  ShimProcess shim({"--netns", ns.path(), "--control", control, "--connect", "6000=" + sink.address()});
  for (int i = 0; i < 3; ++i) {
    int fd = connectInside(ns);
    BOOST_REQUIRE(fd >= 0);
    BOOST_REQUIRE(send(fd, "log line\n", 9, MSG_NOSIGNAL) == 9);
    shutdown(fd, SHUT_WR);
    std::string got;
    BOOST_TEST(readToEof(fd, &got, 3000));
    BOOST_TEST(got.empty());
    close(fd);
  }
  auto b = backendStatus(control, sink.address());
  BOOST_REQUIRE(b);
  BOOST_TEST(b->getValue<std::string>("state") == "up");
  BOOST_TEST(b->getValue<int>("connect_failures") == 0);
  BOOST_TEST(portFailures(control, "backend_hung_up") == 0);
}

BOOST_AUTO_TEST_CASE(ARequestWhoseClientResetWhileTheShimWasConnectingNeverReachesTheBackend) {
  // The client sends its request, then gives up (a reset) while the backend has not
  // answered the shim's SYN yet. Once it does, the request must not be passed on: its
  // client cannot learn the outcome any more, and a write it retries elsewhere would then
  // be made twice.
  SilentListener backend;
  ShimProcess shim({"--netns", ns.path(), "--connect-timeout", "5s", "--connect", "6000=" + backend.address()});
  int fd = connectInside(ns);
  BOOST_REQUIRE(fd >= 0);
  BOOST_REQUIRE(writeAll(fd, "DELETE /account", 15));
  std::this_thread::sleep_for(200ms);
  closeWithReset(fd);
  std::atomic<size_t> received{0};
  std::atomic<int> ended{0};
  backend.open([&](int c) {
    char buf[64];
    ssize_t n;
    while ((n = read(c, buf, sizeof buf)) > 0) received += static_cast<size_t>(n);
    ++ended;
  });
  // The shim's SYN is sent again 1 s after the first: it connects then, if it still tries.
  waitFor([&] { return received > 0 || ended > 0; }, 3s);
  BOOST_TEST(received.load() == 0u, "the backend got " << received.load() << " bytes of a client gone before");
}

BOOST_AUTO_TEST_CASE(WithIpv6OffInTheKernelTheIpv4BackendsStillServe) {
  // On a kernel booted with ipv6.disable=1, socket(AF_INET6) fails, and a name with AAAA
  // records still brings IPv6 backends. Those are passed over for the IPv4 ones; they must
  // not end the client's connection as if every backend had failed.
  TcpServer v4(replyHandler("v4"));
  ShimWithoutIpv6 shim({"--netns", ns.path(), "--balance", "round-robin", "--connect", "6000=[::1]:9," + v4.address()},
                       tempDir() + "/log");
  BOOST_REQUIRE_MESSAGE(waitFor([&] { return shim.log().find(" listening ") != std::string::npos; }, 5s), shim.log());
  for (int i = 0; i < 4; ++i) {  // round-robin: the IPv6 backend comes first every other time
    int fd = connectInside(ns);
    BOOST_REQUIRE(fd >= 0);
    std::string got;
    BOOST_TEST(readToEof(fd, &got, 3000));
    BOOST_TEST(got == "v4", "connection " << i << " got '" << got << "'; log:\n" << shim.log());
    close(fd);
  }
}

BOOST_AUTO_TEST_CASE(AllBackendsDownClosesTheClientPromptly) {
  ReservedPort a, b;  // both refuse
  std::string addrA = a.address(), addrB = b.address();
  ShimProcess shim({"--netns", ns.path(), "--connect", "6000=" + addrA + "," + addrB});
  auto start = std::chrono::steady_clock::now();
  int fd = connectInside(ns);
  // The reset may beat the client's own connect check; either way it must come at once.
  if (fd >= 0) {
    BOOST_TEST(waitClosed(fd, 3000) >= 0);
    close(fd);
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  BOOST_TEST(ms < 500, "closed after " << ms << " ms");
  BOOST_TEST(shim.waitLog("no backend reachable"));
  BOOST_TEST(shim.log().find("all 2 backends failed") != std::string::npos);
  // A real client sees it too, as a reset rather than a hang or a clean empty reply.
  // (curl says 7, 55 or 56 depending on whether the reset beats its connect check, its
  // send of the request or its wait for the answer.)
  // As prompt as a port where nothing listens, whatever curl's own start costs here.
  auto curlFor = [&](int port, long* took) {
    auto before = std::chrono::steady_clock::now();
    auto r = run(ns.exec({"curl", "-sS", "-m", "5", "http://127.0.0.1:" + std::to_string(port) + "/"}));
    *took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - before).count();
    return r;
  };
  long refusedMs = 0, took = 0;
  BOOST_TEST(curlFor(6001, &refusedMs).exitCode == 7);
  auto r = curlFor(6000, &took);
  BOOST_TEST((r.exitCode == 7 || r.exitCode == 55 || r.exitCode == 56), "curl exit " << r.exitCode << ": " << r.err);
  BOOST_TEST(took < refusedMs + 500, "curl took " << took << " ms, and " << refusedMs << " ms where nothing listens");
}

BOOST_AUTO_TEST_CASE(IdleConnectionsAreClosedAfterTheIdleTimeoutAndCounted) {
  TcpServer backend(echoHandler());
  const std::string control = tempDir() + "/shim.sock";
  ShimProcess shim({"--netns", ns.path(), "--idle-timeout", "600ms", "--control", control, "--connect",
                    "6000=" + backend.address()});
  int fd = connectInside(ns);
  BOOST_REQUIRE(fd >= 0);
  // Activity keeps it open past the timeout...
  for (int i = 0; i < 4; ++i) {
    std::this_thread::sleep_for(300ms);
    BOOST_REQUIRE(writeAll(fd, "x", 1));
    char c;
    BOOST_REQUIRE(recv(fd, &c, 1, 0) == 1);
  }
  // ...silence closes it.
  int ms = waitClosed(fd, 3000);
  close(fd);
  BOOST_TEST(ms >= 400);
  BOOST_TEST(ms < 1500);
  BOOST_TEST(waitFor([&] { return backend.open() == 0; }, 2s));
  // An operator asking why connections dropped finds it in the status and the metrics.
  auto status = run({"curl", "-sS", "--unix-socket", control, "http://shim/status"}).out;
  BOOST_TEST(status.find("\"idle_timeout\":1") != std::string::npos, status);
  auto metrics = run({"curl", "-sS", "--unix-socket", control, "http://shim/metrics"}).out;
  BOOST_TEST(metrics.find("reason=\"idle_timeout\"} 1") != std::string::npos, metrics);
}

BOOST_AUTO_TEST_CASE(ABackendHostThatVanishesWithoutAResetIsFoundOutByKeepaliveAndTheClientReset) {
  // A backend's host crashes or drops off the network: no FIN, no reset, nothing. An idle
  // pooled connection to it would wait for the idle timeout (an hour) while its client
  // takes it for a live one. Keepalive probes find it out: the client is reset, and the
  // status says it was the backend. The backend sits in a namespace of its own behind a
  // veth pair, whose far end is then taken down: its packets go nowhere.
  TestNetns far;
  auto ip = [](const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"ip"};
    argv.insert(argv.end(), args.begin(), args.end());
    BOOST_REQUIRE_MESSAGE(run(argv).exitCode == 0, "ip " << args[0] << " " << args[1] << " ... failed");
  };
  ip({"-n", ns.name(), "link", "add", "near0", "type", "veth", "peer", "name", "far0", "netns", far.name()});
  ip({"-n", ns.name(), "addr", "add", "198.18.77.1/30", "dev", "near0"});
  ip({"-n", far.name(), "addr", "add", "198.18.77.2/30", "dev", "far0"});
  ip({"-n", ns.name(), "link", "set", "near0", "up"});
  ip({"-n", far.name(), "link", "set", "far0", "up"});
  // It answers one byte, then holds its socket until the link is down (closing it sooner
  // would end the connection cleanly): that socket never hears of the client's end.
  int linkDown[2];
  BOOST_REQUIRE(pipe2(linkDown, O_CLOEXEC) == 0);
  auto answerOnce = [&linkDown](int fd) {
    char c;
    if (recv(fd, &c, 1, 0) == 1) send(fd, &c, 1, MSG_NOSIGNAL);
    pollfd p{linkDown[0], POLLIN, 0};
    poll(&p, 1, 30000);
  };
  std::unique_ptr<TcpServer> backend;
  far.inside([&] { backend = std::make_unique<TcpServer>(answerOnce, "198.18.77.2"); });
  const std::string control = tempDir() + "/shim.sock";
  ShimProcess shim({"--netns", ns.path(), "--upstream-netns", "target", "--tcp-keepalive", "2s", "--control", control,
                    "--connect", "6000=" + backend->address()});
  const auto connected = std::chrono::steady_clock::now();
  int fd = connectInside(ns);
  BOOST_REQUIRE(fd >= 0);
  BOOST_REQUIRE(writeAll(fd, "x", 1));
  char c;
  BOOST_REQUIRE(recv(fd, &c, 1, 0) == 1);
  // The upstream socket as ss sees it in the namespace it left from: its timer says
  // whether keepalive is on.
  auto upstreamSocket = [&] {
    return run(ns.exec({"ss", "-tnoH", "state", "established", "dst", backend->address()})).out;
  };
  const std::string young = upstreamSocket();
  // Only while it is younger for sure: under an emulated CPU (the kernel check's qemu),
  // connecting and running ss can take the whole 2 s.
  if (std::chrono::steady_clock::now() - connected < 1500ms) {
    BOOST_TEST(young.find("keepalive") == std::string::npos,
               "a connection younger than --tcp-keepalive has no keepalive yet: " << young);
  }
  BOOST_REQUIRE_MESSAGE(waitFor([&] { return upstreamSocket().find("keepalive") != std::string::npos; }, 5s),
                        upstreamSocket());
  ip({"-n", far.name(), "link", "set", "far0", "down"});
  close(linkDown[1]);
  const auto cut = std::chrono::steady_clock::now();
  // Silent for 2 s, then three probes 1 s apart, unanswered.
  pollfd ending{fd, POLLIN, 0};
  BOOST_REQUIRE_MESSAGE(poll(&ending, 1, 15000) == 1, "the client is still connected 15 s after its backend vanished");
  const auto tookMs =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - cut).count();
  BOOST_TEST(tookMs < 9000);
  errno = 0;
  const ssize_t n = recv(fd, &c, 1, 0);
  BOOST_TEST((n < 0 && errno == ECONNRESET), "the client must see a reset, not a clean end: " << n << ", "
                                                                                               << std::strerror(errno));
  close(fd);
  auto status = run({"curl", "-sS", "--unix-socket", control, "http://shim/status"}).out;
  BOOST_TEST(status.find("\"backend_timeout\":1") != std::string::npos, status);
  BOOST_TEST(shim.log().find("backend stopped answering; client reset") != std::string::npos, shim.log());
  backend.reset();
  close(linkDown[0]);
}

BOOST_AUTO_TEST_CASE(AnIdleTimeoutThatCutsAnAnswerShortResetsTheClientInsteadOfEndingItCleanly) {
  // The backend is still answering, the client has stopped reading: nothing moves, and the
  // idle timeout ends the connection with bytes of the answer still in the shim (a send
  // under way, a pipe). Those are lost, so the client must see a reset, as when the
  // backend aborts, never a clean end that passes the truncated answer off as complete.
  // Small messages (sent through the ring), then bulk ones (through a pipe). A small send
  // buffer for the shim's socket to the client, made in this namespace, so sends wait soon.
  BOOST_REQUIRE(run(ns.exec({"sysctl", "-q", "-w", "net.ipv4.tcp_wmem=4096 4096 4096"})).exitCode == 0);
  auto cutShort = [&](size_t message, std::chrono::milliseconds pause) {
    TcpServer backend([&](int fd) {
      const std::string chunk(message, 'a');
      while (writeAll(fd, chunk.data(), chunk.size(), 3000)) std::this_thread::sleep_for(pause);
      char c;
      while (read(fd, &c, 1) > 0) {}
    });
    ShimProcess shim({"--netns", ns.path(), "--idle-timeout", "500ms", "--connect", "6000=" + backend.address()});
    int fd = connectInsideWithASmallWindow(ns);
    BOOST_REQUIRE(fd >= 0);
    std::this_thread::sleep_for(2500ms);  // the window fills, then the connection idles out
    timeval oneSecond{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &oneSecond, sizeof oneSecond);
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    char buf[65536];
    ssize_t n;
    size_t got = 0;
    while ((n = read(fd, buf, sizeof buf)) > 0 && std::chrono::steady_clock::now() < deadline) got += static_cast<size_t>(n);
    const int err = errno;
    BOOST_REQUIRE_MESSAGE(n <= 0, "messages of " << message << " bytes: still flowing, the idle timeout never came");
    BOOST_TEST(n < 0, "messages of " << message << " bytes: a clean end after " << got << " bytes");
    BOOST_TEST((n == 0 || err == ECONNRESET), std::strerror(err));
    close(fd);
  };
  cutShort(2000, 2ms);
  cutShort(1 << 20, 0ms);
}

BOOST_AUTO_TEST_CASE(PastMaxConnsNewConnectionsWaitInsteadOfFailing) {
  TcpServer backend(echoHandler());
  ShimProcess shim({"--netns", ns.path(), "--max-conns", "2", "--connect", "6000=" + backend.address()});
  int a = connectInside(ns), b = connectInside(ns), c = connectInside(ns);
  BOOST_REQUIRE(a >= 0);
  BOOST_REQUIRE(b >= 0);
  BOOST_REQUIRE(c >= 0);  // queued in the backlog: the kernel completes the handshake
  BOOST_REQUIRE(waitFor([&] { return backend.accepted() == 2; }, 2s));
  std::this_thread::sleep_for(300ms);
  BOOST_TEST(backend.accepted() == 2);  // the third waits
  close(a);
  BOOST_TEST(waitFor([&] { return backend.accepted() == 3; }, 2s));
  BOOST_REQUIRE(writeAll(c, "third", 5));
  char buf[5];
  BOOST_TEST(recv(c, buf, 5, MSG_WAITALL) == 5);
  close(b);
  close(c);
}

BOOST_AUTO_TEST_CASE(ClientsWaitingPastMaxConnsAreCountedInTheStatusAndLoggedOnce) {
  // Clients past the limit hang in the backlog with nothing to tell them why: the operator
  // must see it, in the status and in one log line, not one per client.
  TcpServer backend(echoHandler());
  const std::string control = tempDir() + "/shim.sock";
  ShimProcess shim(
      {"--netns", ns.path(), "--max-conns", "2", "--control", control, "--connect", "6000=" + backend.address()});
  int a = connectInside(ns), b = connectInside(ns);
  BOOST_REQUIRE(a >= 0);
  BOOST_REQUIRE(b >= 0);
  BOOST_REQUIRE(waitFor([&] { return backend.accepted() == 2; }, 2s));
  std::vector<int> waiting;
  for (int i = 0; i < 3; ++i) waiting.push_back(connectInside(ns));
  BOOST_TEST(shim.waitLog("connection limit reached"), shim.log());
  auto status = run({"curl", "-sS", "--unix-socket", control, "http://shim/status"}).out;
  BOOST_TEST(status.find("\"waiting\":3") != std::string::npos, status);
  auto metrics = run({"curl", "-sS", "--unix-socket", control, "http://shim/metrics"}).out;
  BOOST_TEST(metrics.find("connectable_connections_waiting{port=\"6000\"} 3") != std::string::npos, metrics);
  // The limit is met again each time a connection ends and a waiting one takes its place.
  close(a);
  BOOST_REQUIRE(waitFor([&] { return backend.accepted() == 3; }, 2s));
  close(b);
  BOOST_REQUIRE(waitFor([&] { return backend.accepted() == 4; }, 2s));
  waiting.push_back(connectInside(ns));
  std::this_thread::sleep_for(200ms);
  const std::string log = shim.log();
  size_t lines = 0;
  for (size_t at = log.find("connection limit reached"); at != std::string::npos;
       at = log.find("connection limit reached", at + 1))
    ++lines;
  BOOST_TEST(lines == 1u, log);
  for (int fd : waiting)
    if (fd >= 0) close(fd);
}

BOOST_AUTO_TEST_CASE(AtMaxConnsAClientOfAQuietPortIsNotKeptWaitingBehindABusyOne) {
  // --max-conns counts the connections of every port. A freed slot goes to the ports'
  // waiting clients in turn: taken always by the first port with a backlog, a port that
  // keeps one would keep the other port's clients waiting for as long as it lasts.
  TcpServer backend(echoHandler());
  ShimProcess shim({"--netns", ns.path(), "--max-conns", "1", "--connect", "6000=" + backend.address(), "--connect",
                    "6001=" + backend.address()});
  int busy = connectInside(ns, 6000);
  BOOST_REQUIRE(busy >= 0);
  BOOST_REQUIRE(waitFor([&] { return backend.accepted() == 1; }, 2s));
  int quiet = connectInside(ns, 6001);
  BOOST_REQUIRE(quiet >= 0);
  std::vector<int> busyWaiting;
  for (int i = 0; i < 2; ++i) busyWaiting.push_back(connectInside(ns, 6000));
  BOOST_REQUIRE(writeAll(quiet, "quiet", 5));
  close(busy);  // one slot frees; port 6000 still has clients waiting
  BOOST_TEST(receivesExactly(quiet, "quiet", 2), "port 6001's client still waits behind port 6000's");
  close(quiet);
  for (int fd : busyWaiting)
    if (fd >= 0) close(fd);
}

BOOST_AUTO_TEST_CASE(SigtermDrainsATransferInFlightThenExitsZero) {
  TcpServer backend(echoHandler());
  ShimProcess shim({"--netns", ns.path(), "--drain-timeout", "10s", "--connect", "6000=" + backend.address()});
  int fd = connectInside(ns);
  BOOST_REQUIRE(fd >= 0);
  BOOST_REQUIRE(writeAll(fd, "before", 6));
  char buf[6];
  BOOST_REQUIRE(recv(fd, buf, 6, MSG_WAITALL) == 6);
  shim.child().signal(SIGTERM);
  BOOST_REQUIRE(shim.waitLog("draining"));
  // New connections are refused while the open one keeps working.
  BOOST_TEST(connectInside(ns) < 0);
  auto check = echoRoundTrip(fd, 8ull << 20, 99);
  BOOST_TEST(check.ok, check.error);
  close(fd);
  BOOST_TEST(shim.child().wait(3s) == 0);
}

BOOST_AUTO_TEST_CASE(DrainTimeoutEndsConnectionsThatDoNotFinish) {
  TcpServer backend(holdHandler());
  ShimProcess shim({"--netns", ns.path(), "--drain-timeout", "500ms", "--connect", "6000=" + backend.address()});
  int fd = connectInside(ns);
  BOOST_REQUIRE(fd >= 0);
  BOOST_REQUIRE(waitFor([&] { return backend.accepted() == 1; }, 2s));
  shim.child().signal(SIGTERM);
  BOOST_TEST(shim.child().wait(3s) == 0);
  BOOST_TEST(waitClosed(fd, 1000) >= 0);
  close(fd);
}

BOOST_AUTO_TEST_CASE(UpstreamFromTheTargetNamespaceReachesBackendsThere) {
  // A backend that exists only inside the namespace.
  std::unique_ptr<TcpServer> inner;
  ReservedPort onTheHost;  // the same port on the host refuses, whatever else runs there
  ns.inside([&] { inner = std::make_unique<TcpServer>(replyHandler("inside"), "127.0.0.1", onTheHost.port()); });
  std::string target = "6000=127.0.0.1:" + std::to_string(inner->port());
  {
    ShimProcess shim({"--netns", ns.path(), "--upstream-netns", "target", "--connect", target});
    int fd = connectInside(ns);
    BOOST_REQUIRE(fd >= 0);
    std::string got;
    BOOST_TEST(readToEof(fd, &got));
    BOOST_TEST(got == "inside");
    close(fd);
  }
  {
    // Without the option, upstream leaves from the host, where that backend does not exist.
    ShimProcess shim({"--netns", ns.path(), "--connect", target});
    // The shim may reset the client (no backend) before our connect call has returned.
    int fd = connectInside(ns);
    std::string got;
    if (fd >= 0) {
      readToEof(fd, &got, 3000);
      close(fd);
    }
    BOOST_TEST(got != "inside");
    BOOST_TEST(shim.waitLog("no backend reachable"));
  }
}

BOOST_AUTO_TEST_CASE(DropsEveryPrivilegeOnceListening) {
  TcpServer backend(replyHandler("ok"));
  ShimProcess shim({"--netns", ns.path(), "--connect", "6000=" + backend.address()});
  pid_t pid = shim.pid();
  BOOST_TEST(statusField(pid, "Uid") == "65534\t65534\t65534\t65534");
  BOOST_TEST(statusField(pid, "Gid") == "65534\t65534\t65534\t65534");
  BOOST_TEST(statusField(pid, "Groups") == "");
  BOOST_TEST(statusField(pid, "CapInh") == "0000000000000000");
  BOOST_TEST(statusField(pid, "CapPrm") == "0000000000000000");
  BOOST_TEST(statusField(pid, "CapEff") == "0000000000000000");
  BOOST_TEST(statusField(pid, "CapBnd") == "0000000000000000");
  BOOST_TEST(statusField(pid, "CapAmb") == "0000000000000000");
  BOOST_TEST(statusField(pid, "NoNewPrivs") == "1");
  // Not dumpable: the kernel gives its /proc files to root, not to the process's user.
  struct stat st;
  BOOST_REQUIRE(stat(("/proc/" + std::to_string(pid) + "/environ").c_str(), &st) == 0);
  BOOST_TEST(st.st_uid == 0u);
  // And it still serves.
  int fd = connectInside(ns);
  std::string got;
  BOOST_TEST(readToEof(fd, &got));
  BOOST_TEST(got == "ok");
  close(fd);
}

BOOST_AUTO_TEST_CASE(ConfinesItsSystemCallsOnceListening) {
  // What the filter refuses is tested in tests/unit/common/syscall_filter_test.cc; that it
  // refuses nothing a shim needs, by every test that runs one (ShimProcess checks its log).
  TcpServer backend(replyHandler("ok"));
  ShimProcess shim({"--netns", ns.path(), "--connect", "6000=" + backend.address()});
  // One filter more than the test's own (a CI job in a container runs under Docker's);
  // none of its own in a sanitizer build.
  const int inherited = std::stoi(statusField(getpid(), "Seccomp_filters"));
  if (kShimsOwnFilters > 0) BOOST_TEST(waitFor([&] { return statusField(shim.pid(), "Seccomp") == "2"; }, 2s));
  BOOST_TEST(statusField(shim.pid(), "Seccomp_filters") == std::to_string(inherited + kShimsOwnFilters));
  int fd = connectInside(ns);
  std::string got;
  BOOST_TEST(readToEof(fd, &got));
  BOOST_TEST(got == "ok");
  close(fd);
  // And it still drains and ends cleanly.
  shim.child().signal(SIGTERM);
  BOOST_TEST(shim.child().wait(5s) == 0);
}

BOOST_AUTO_TEST_CASE(AShimWhoseFirstLogLineComesOnceConfinedWritesItWithoutACallTheFilterRefuses) {
  // At --log-level warn nothing is said at the start. The first line's time came from
  // gmtime_r, whose first call opens /etc/localtime: refused, and logged as an error.
  ReservedPort dead;  // refuses
  TcpServer alive(replyHandler("alive"));
  // Not a ShimProcess, which waits for the "listening" lines; the filter comes after them.
  Child shim = Child::spawn({shimBinary(), "--netns", ns.path(), "--log-level", "warn", "--balance", "round-robin",
                             "--connect", "6000=" + dead.address() + "," + alive.address()},
                            tempDir() + "/shim.log");
  if (kShimsOwnFilters > 0) BOOST_REQUIRE(waitFor([&] { return statusField(shim.pid(), "Seccomp") == "2"; }, 5s));
  // A sanitizer build installs no filter: wait for port 6000 (0x1770) to listen too.
  BOOST_REQUIRE(waitFor([&] {
    bool listening = false;
    ns.inside([&] {
      std::ifstream tcp("/proc/thread-self/net/tcp");
      std::string line;
      while (std::getline(tcp, line))
        if (line.find(":1770 00000000:0000 0A") != std::string::npos) listening = true;
    });
    return listening;
  }, 5s));
  BOOST_TEST(shim.log().empty(), shim.log());
  for (int i = 0; i < 2; ++i) {
    int fd = connectInside(ns);
    std::string got;
    BOOST_TEST(readToEof(fd, &got));
    BOOST_TEST(got == "alive");
    close(fd);
  }
  BOOST_TEST(waitFor([&] { return shim.log().find("backend failing") != std::string::npos; }, 5s), shim.log());
  expectNoCallRefused(shim.log());
}

BOOST_AUTO_TEST_CASE(AShimGivenANumericUserBecomesThatUidAndGroupWithNoPasswdEntry) {
  // How the injector gives each shim a uid of its own (--shim-uids): no shim can then
  // signal another, nor can anything else that runs as nobody.
  TcpServer backend(replyHandler("ok"));
  ShimProcess shim({"--netns", ns.path(), "--user", "2000123", "--connect", "6000=" + backend.address()});
  pid_t pid = shim.pid();
  BOOST_TEST(statusField(pid, "Uid") == "2000123\t2000123\t2000123\t2000123");
  BOOST_TEST(statusField(pid, "Gid") == "2000123\t2000123\t2000123\t2000123");
  BOOST_TEST(statusField(pid, "Groups") == "");
  BOOST_TEST(statusField(pid, "CapEff") == "0000000000000000");
  BOOST_TEST(statusField(pid, "CapBnd") == "0000000000000000");
  int fd = connectInside(ns);
  std::string got;
  BOOST_TEST(readToEof(fd, &got));
  BOOST_TEST(got == "ok");
  close(fd);
  // Root's uid, and (uid_t)-1, which setresuid reads as "unchanged", are refused, as is a
  // user unknown here: as bad arguments, before any port is open, so the injector does not
  // restart such a shim for ever.
  for (const char* bad : {"0", "4294967295", "99999999999999999999", "root", "no-such-user-of-connectable"}) {
    auto refused = run({shimBinary(), "--netns", ns.path(), "--user", bad, "--connect", "6001=" + backend.address()});
    BOOST_TEST(refused.exitCode == 2, bad);
    BOOST_TEST(refused.err.find("--user") != std::string::npos, refused.err);
  }
}

BOOST_AUTO_TEST_CASE(AStandaloneShimClosesTheDescriptorsItInherited) {
  // A descriptor its parent left open (not close-on-exec) would outlive the privilege drop:
  // a capability the shim was never meant to have, and a file or port held open.
  int leak[2];
  BOOST_REQUIRE(pipe2(leak, O_CLOEXEC) == 0);
  TcpServer backend(replyHandler("ok"));
  ShimProcess shim({"--netns", ns.path(), "--connect", "6000=" + backend.address()}, {leak[1]});
  close(leak[1]);
  BOOST_TEST(writeEndClosedEverywhere(leak[0]), "the shim still holds the descriptor it inherited");
  BOOST_TEST(shim.child().running());
  close(leak[0]);
}

BOOST_AUTO_TEST_CASE(AShimStartedWithItsStandardDescriptorsClosedGivesThemToDevNull) {
  // Left closed, they are taken by the shim's own epoll, ring and sockets, and its log lines
  // are written into whichever of them sits at 2.
  std::string dir = tempDir();
  TcpServer backend(replyHandler("ok"));
  Child shim = Child::spawn({"/bin/sh", "-c", "exec \"$0\" \"$@\" <&- >&- 2>&-", shimBinary(), "--netns", ns.path(),
                             "--control", dir + "/shim.sock", "--connect", "6000=" + backend.address()});
  const pid_t pid = shim.pid();
  BOOST_REQUIRE_MESSAGE(waitFor([&] { return statusField(pid, "Uid") == "65534\t65534\t65534\t65534"; }, 5s),
                        "the shim never became nobody");
  for (int fd : {0, 1, 2}) {
    char target[256] = {};
    BOOST_TEST(readlink(("/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd)).c_str(), target, sizeof target - 1) > 0);
    BOOST_TEST(std::string(target) == "/dev/null", "fd " << fd << " is " << target);
  }
  int fd = connectInside(ns);
  std::string got;
  BOOST_TEST(readToEof(fd, &got));
  BOOST_TEST(got == "ok");
  close(fd);
}

BOOST_AUTO_TEST_CASE(AShimKeepsTheDescriptorsItIsToldToUseAndClosesTheRest) {
  // As the injector starts it: the namespace as fd 3, the container's init as pidfd 4.
  int netns = open(ns.path().c_str(), O_RDONLY | O_CLOEXEC);
  BOOST_REQUIRE(netns >= 0);
  Child init = Child::spawn({"sleep", "60"});
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, init.pid(), 0));
  BOOST_REQUIRE(pidfd >= 0);
  int leak[2];
  BOOST_REQUIRE(pipe2(leak, O_CLOEXEC) == 0);
  TcpServer backend(replyHandler("ok"));
  ShimProcess shim({"--netns-fd", "3", "--exit-with-pidfd", "4", "--connect", "6000=" + backend.address()},
                   {netns, pidfd, leak[1]});
  close(netns);
  close(pidfd);
  close(leak[1]);
  BOOST_TEST(writeEndClosedEverywhere(leak[0]), "the shim still holds fd 5, which it was not told about");
  close(leak[0]);
  int fd = connectInside(ns);
  std::string got;
  BOOST_TEST(readToEof(fd, &got));
  BOOST_TEST(got == "ok");
  close(fd);
  init.kill();
  BOOST_TEST(shim.child().wait(5s) == 0, shim.log());
}

BOOST_AUTO_TEST_CASE(AShimStartedByAnotherUserWithCapabilitiesDropsThemToo) {
  // Not root, but given capabilities (ambient here, as a unit's AmbientCapabilities= or
  // file capabilities would): it uses them to enter the namespace, then has none.
  TcpServer backend(replyHandler("ok"));
  Child shim = spawnListening({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                               "--inh-caps=+sys_admin,+net_admin", "--ambient-caps=+sys_admin,+net_admin", "--",
                               shimBinary(), "--netns", ns.path(), "--connect", "6000=" + backend.address()},
                              tempDir() + "/log");
  const pid_t pid = shim.pid();
  BOOST_TEST(statusField(pid, "Uid") == "65534\t65534\t65534\t65534");
  BOOST_TEST(statusField(pid, "CapInh") == "0000000000000000");
  BOOST_TEST(statusField(pid, "CapPrm") == "0000000000000000");
  BOOST_TEST(statusField(pid, "CapEff") == "0000000000000000");
  BOOST_TEST(statusField(pid, "CapAmb") == "0000000000000000");
  BOOST_TEST(statusField(pid, "NoNewPrivs") == "1");
  int fd = connectInside(ns);
  std::string got;
  BOOST_TEST(readToEof(fd, &got));
  BOOST_TEST(got == "ok");
  close(fd);
  expectNoCallRefused(shim.log());
}

BOOST_AUTO_TEST_CASE(AShimWhosePortsAreAllTakenExitsWithAClearErrorAndItsOwnStatus) {
  std::unique_ptr<TcpServer> squatter;
  ns.inside([&] { squatter = std::make_unique<TcpServer>(holdHandler(), "127.0.0.1", kPort); });
  Child shim = Child::spawn({shimBinary(), "--netns", ns.path(), "--connect", "6000=127.0.0.1:9"}, tempDir() + "/log");
  BOOST_TEST(shim.wait(5s) == 3);  // kExitPortInUse: the injector retries that one slowly
  BOOST_TEST(shim.log().find("port 6000 is already in use on 127.0.0.1 in the target network namespace") != std::string::npos,
             shim.log());
}

BOOST_AUTO_TEST_CASE(APortTakenInTheNamespaceIsLeftOutAndTheOtherPortsAreServed) {
  // connect.6000 on a container whose own program listens on 6000 too: that label cannot
  // be served, but as with a bad label, the container's other ports must still work.
  std::unique_ptr<TcpServer> squatter;
  ns.inside([&] { squatter = std::make_unique<TcpServer>(replyHandler("squatter"), "127.0.0.1", kPort); });
  TcpServer backend(replyHandler("ok"));
  const std::string control = tempDir() + "/control.sock";
  Child shim = Child::spawn({shimBinary(), "--netns", ns.path(), "--control", control, "--connect",
                             std::to_string(kPort) + "=" + backend.address(), "--connect",
                             std::to_string(kPort + 1) + "=" + backend.address()},
                            tempDir() + "/log");
  BOOST_REQUIRE_MESSAGE(waitFor([&] { return shim.log().find("control socket ready") != std::string::npos || !shim.running(); },
                                5s) && shim.running(),
                        shim.log());
  int fd = connectInside(ns, kPort + 1);
  std::string got;
  BOOST_TEST(readToEof(fd, &got));
  BOOST_TEST(got == "ok");
  close(fd);
  // 6000 is still the other program's, untouched.
  fd = connectInside(ns, kPort);
  got.clear();
  BOOST_TEST(readToEof(fd, &got));
  BOOST_TEST(got == "squatter");
  close(fd);
  const std::string log = shim.log();
  BOOST_TEST(log.find("error connectable-shim: port not served; the others are port=6000 error=\"port 6000 is already in use "
                      "on 127.0.0.1 in the target network namespace\"") != std::string::npos,
             log);
  BOOST_TEST(log.find("listening listen=127.0.0.1:6001") != std::string::npos, log);
  BOOST_TEST(log.find("listening listen=127.0.0.1:6000") == std::string::npos, log);
  const std::string status = run({"curl", "-sS", "--unix-socket", control, "http://shim/status"}).out;
  BOOST_TEST(status.find("\"port\":6000,\"target\":\"" + backend.address() +
                         "\",\"listen\":[],\"not_served\":\"port 6000 is already in use") != std::string::npos,
             status);
  BOOST_TEST(status.find("\"port\":6001,\"target\":\"" + backend.address() +
                         "\",\"listen\":[\"127.0.0.1:6001\"") != std::string::npos,
             status);
  BOOST_TEST(status.find("\"not_served\":null") != std::string::npos, status);
  BOOST_TEST(statusObjectOf(control, "last_error").find("port 6000 not served: port 6000 is already in use") !=
                 std::string::npos,
             status);
  const std::string text = run({shimBinary(), "status", "--control", control}).out;
  BOOST_TEST(text.find("port 6000 -> " + backend.address() + "  (NOT SERVED: port 6000 is already in use") !=
                 std::string::npos,
             text);
  shim.kill();
  expectNoCallRefused(log);
}

BOOST_AUTO_TEST_CASE(ABackendThatStartsFailingIsLoggedOnceAndSoIsItsReturn) {
  // A backend that dies showed only in counters: the operator learnt of it when every
  // backend failed. One line when it starts failing, however often it is tried again, and
  // one when it answers again.
  TcpServer live(replyHandler("live"));
  uint16_t deadPort = 0;
  {
    TcpServer gone(replyHandler("unused"));
    deadPort = gone.port();
  }  // closed: connects to it are refused
  const std::string dead = "127.0.0.1:" + std::to_string(deadPort);
  ShimProcess shim({"--netns", ns.path(), "--balance", "round-robin", "--connect", "6000=" + dead + "," + live.address()});
  auto ask = [&] {
    int fd = connectInside(ns);
    std::string got;
    if (fd >= 0) {
      readToEof(fd, &got);
      close(fd);
    }
    return got;
  };
  // Three seconds of connections: the dead one is tried again each time its penalty ends.
  for (int i = 0; i < 12; ++i) {
    BOOST_TEST(ask() == "live");
    std::this_thread::sleep_for(250ms);
  }
  const std::string failing = "warn connectable-shim: backend failing; the others are tried first port=6000 backend=" + dead +
                              " error=\"Connection refused\"";
  auto count = [](const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  };
  BOOST_TEST(count(shim.log(), "backend connect failed") == 0u);  // debug only
  BOOST_TEST(count(shim.log(), failing) == 1u, shim.log());
  TcpServer back(replyHandler("back"), "127.0.0.1", deadPort);
  bool answered = false;
  for (int i = 0; i < 60 && !answered; ++i) {
    answered = ask() == "back";
    if (!answered) std::this_thread::sleep_for(200ms);
  }
  BOOST_TEST(answered, "the backend that came back was not tried again");
  BOOST_TEST(count(shim.log(), "info connectable-shim: backend answers again port=6000 backend=" + dead +
                                   " failed_connects_in_a_row=") == 1u,
             shim.log());
  BOOST_TEST(count(shim.log(), failing) == 1u, shim.log());
}

BOOST_AUTO_TEST_CASE(AShimKilledOutrightLeavesItsPortFreeForTheNextOneAtOnce) {
  // A shim that dies is started again. Nothing it leaves behind may hold its listening
  // socket, or the next one exits with "port in use": an accept waiting in its io_uring
  // did, for the few ms the kernel takes to tear a dead process's ring down.
  TcpServer backend(replyHandler("ok"));
  for (int i = 0; i < 5; ++i) {
    ShimProcess shim({"--netns", ns.path(), "--connect", "6000=" + backend.address()});
    int fd = connectInside(ns);  // a connection in flight when it dies
    BOOST_REQUIRE(fd >= 0);
    shim.child().kill();  // SIGKILL
    close(fd);
  }
  ShimProcess shim({"--netns", ns.path(), "--connect", "6000=" + backend.address()});
  int fd = connectInside(ns);
  std::string got;
  BOOST_TEST(readToEof(fd, &got));
  BOOST_TEST(got == "ok");
  close(fd);
}

BOOST_AUTO_TEST_CASE(BadArgumentsExitTwoBeforeAnythingStarts) {
  for (auto bad : {"0=127.0.0.1:9", "70000=127.0.0.1:9", "6000", "6000=", "6000=a b"}) {
    auto r = run({shimBinary(), "--netns", ns.path(), "--connect", bad});
    BOOST_TEST(r.exitCode == 2, bad);
    BOOST_TEST(r.err.find("--connect") != std::string::npos, r.err);
  }
  auto dup = run({shimBinary(), "--connect", "6000=127.0.0.1:9", "--connect", "6000=127.0.0.1:10"});
  BOOST_TEST(dup.exitCode == 2);
  BOOST_TEST(dup.err.find("port 6000 is given twice") != std::string::npos);
  auto missing = run({shimBinary(), "--netns", "/var/run/netns/does-not-exist", "--connect", "6000=127.0.0.1:9"});
  BOOST_TEST(missing.exitCode == 1);
  BOOST_TEST(missing.err.find("/var/run/netns/does-not-exist") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(RunningOutOfFileDescriptorsDoesNotSpin) {
  TcpServer backend(holdHandler());
  // 3 std fds + epoll + signalfd + 2 listeners = 7: room for three connections of two fds,
  // then accept itself fails with EMFILE.
  Child shim = spawnListening({"prlimit", "--nofile=13", "--", shimBinary(), "--netns", ns.path(), "--connect",
                               "6000=" + backend.address()}, tempDir() + "/log");
  std::vector<int> fds;
  for (int i = 0; i < 20; ++i) fds.push_back(connectInside(ns));
  BOOST_REQUIRE(waitFor([&] { return shim.log().find("Too many open files") != std::string::npos; }, 5s));
  // CPU time used in a second while the backlog is full and accept fails with EMFILE:
  // a shim that spins uses all of it (100 ticks), one that waits for a free fd next to none.
  const long before = cpuTicks(shim.pid());
  std::this_thread::sleep_for(1s);
  const long ticks = cpuTicks(shim.pid()) - before;
  BOOST_TEST(ticks < 20, "shim used " << ticks << " ticks in a second of EMFILE");
  for (int fd : fds)
    if (fd >= 0) close(fd);
  // Once fds are free again, it serves.
  BOOST_TEST(waitFor([&] { return backend.open() == 0; }, 3s));
  int fd = connectInside(ns);
  BOOST_REQUIRE_MESSAGE(fd >= 0, "shim running: " << shim.running() << "; log:\n" << shim.log());
  BOOST_TEST(waitFor([&] { return backend.accepted() >= 1; }, 3s));
  close(fd);
  expectNoCallRefused(shim.log());
}

BOOST_AUTO_TEST_CASE(ClientsArrivingWithOneFdLeftWaitForTheBackendSocketInsteadOfBeingReset) {
  // One fd left: accept takes it and the backend's socket() fails with EMFILE. That client
  // must wait for an fd, as those still in the backlog do, not be reset as if every
  // backend were down while the next one in the backlog takes its place.
  TcpServer backend(holdHandler());
  for (const std::string path : {"auto", "epoll"}) {
    BOOST_TEST_CONTEXT("data path " << path) {
      // A connect timeout (the wait's bound) far longer than the test's checks.
      const std::vector<std::string> argv = {shimBinary(),  "--netns",   ns.path(),
                                             "--data-path", path,        "--connect-timeout",
                                             "10s",         "--connect", "6000=" + backend.address()};
      Child shim = shimWithSpareFds(argv, 3);
      const int accepted = backend.accepted();
      int served = connectInside(ns);
      BOOST_REQUIRE(served >= 0);
      BOOST_REQUIRE(waitFor([&] { return backend.accepted() == accepted + 1; }, 2s));
      std::vector<int> waiting;
      for (int i = 0; i < 5; ++i) waiting.push_back(connectInside(ns));
      std::this_thread::sleep_for(1s);
      for (size_t i = 0; i < waiting.size(); ++i) {
        BOOST_REQUIRE(waiting[i] >= 0);
        pollfd p{waiting[i], POLLIN, 0};
        BOOST_TEST(poll(&p, 1, 0) == 0, "client " << i << " was closed (revents " << p.revents << ")");
      }
      BOOST_TEST(shim.log().find("no backend reachable") == std::string::npos, shim.log());
      BOOST_TEST(shim.log().find("Too many open files") != std::string::npos, shim.log());
      // Once the served connection ends, its fds serve the next client.
      close(served);
      BOOST_TEST(waitFor([&] { return backend.accepted() == accepted + 2; }, 3s));
      for (int fd : waiting)
        if (fd >= 0) close(fd);
      BOOST_TEST(waitFor([&] { return backend.open() == 0; }, 3s));
      expectNoCallRefused(shim.log());
    }
  }
}

BOOST_AUTO_TEST_CASE(AStatusClientArrivingWithNoFdLeftWaitsWithoutSpinning) {
  // The status port lives inside the container: anyone there can connect to it. With
  // every fd of the shim taken by proxied connections, its accept fails with EMFILE and
  // the client stays queued: the shim must try again later, not at once, over and over.
  TcpServer backend(holdHandler());
  constexpr uint16_t kStatusPort = 7000;
  const std::vector<std::string> argv = {shimBinary(), "--netns", ns.path(), "--status-port",
                                         std::to_string(kStatusPort), "--connect", "6000=" + backend.address()};
  // Room for exactly three proxied connections (two fds each), so that no odd fd is left
  // over for the client.
  Child shim = shimWithSpareFds(argv, 6);
  std::vector<int> fds;
  for (int i = 0; i < 20; ++i) fds.push_back(connectInside(ns));
  BOOST_REQUIRE(waitFor([&] { return shim.log().find("Too many open files") != std::string::npos; }, 5s));
  int status = connectInside(ns, kStatusPort);
  BOOST_REQUIRE(status >= 0);  // queued in the listener's backlog
  const std::string request = "GET /status HTTP/1.0\r\n\r\n";
  BOOST_REQUIRE(writeAll(status, request.data(), request.size()));
  const long before = cpuTicks(shim.pid());
  std::this_thread::sleep_for(1s);
  const long used = cpuTicks(shim.pid()) - before;
  BOOST_TEST(used < 20, "the shim used " << used << " ticks in a second with a status client waiting");
  BOOST_TEST(shim.log().find("cannot accept a status client") != std::string::npos, shim.log());
  for (int fd : fds)
    if (fd >= 0) close(fd);
  // Once fds are free again, the waiting client gets its answer.
  std::string answer;
  BOOST_TEST(readToEof(status, &answer));
  BOOST_TEST(answer.find(" 200 OK\r\n") != std::string::npos, answer);
  close(status);
  expectNoCallRefused(shim.log());
}


BOOST_AUTO_TEST_CASE(JsonLogsAreOneObjectPerLine) {
  TcpServer backend(replyHandler("ok"));
  ShimProcess shim({"--netns", ns.path(), "--log-format", "json", "--log-level", "debug", "--connect",
                    "6000=" + backend.address()});
  int fd = connectInside(ns);
  std::string got;
  BOOST_TEST(readToEof(fd, &got));
  close(fd);
  BOOST_REQUIRE(shim.waitLog("connection closed"));
  std::istringstream lines(shim.log());
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    ++n;
    BOOST_TEST((line.front() == '{' && line.back() == '}'), line);
    BOOST_TEST(line.find("\"level\":\"") != std::string::npos, line);
    BOOST_TEST(line.find("\"msg\":\"") != std::string::npos, line);
  }
  BOOST_TEST(n >= 3);  // listening, established, closed
  BOOST_TEST(shim.log().find("\"backend\":\"" + backend.address() + "\"") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
