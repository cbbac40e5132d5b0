#include "common/syscall_filter.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/futex.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>

#include "common/event_loop.h"
#include "tests/support/process.h"

using namespace connectable;

// Not under the sanitizers: their runtime makes calls no proxy does (sigaltstack, at
// every _exit), and the shim installs no filter there either (shim/main.cc).
#if (defined(__x86_64__) || defined(__aarch64__)) && !defined(__SANITIZE_ADDRESS__)

namespace {

// Runs `check` in a forked child confined by the filter (installed with a loop of its own
// that records what it reports); returns what the child wrote: "" when all was as expected.
// Nothing in the child may use Boost.Test once confined.
struct Confined {
  EventLoop loop;
  std::set<long> reported;
  std::unique_ptr<SyscallFilter> filter;
  // Runs the loop for a moment, so that what the filter refused gets reported.
  void settle() {
    loop.addTimer(Millis(50), [this] { loop.stop(); });
    loop.run();
  }
};

connectable::testing::ForkedRun inConfinedChild(const std::function<std::string(Confined&)>& setUp,
                                                 const std::function<std::string(Confined&)>& check) {
  return connectable::testing::runForked([&](int report) {
    rlimit noCore{0, 0};  // some children end by a signal on purpose: no core file
    setrlimit(RLIMIT_CORE, &noCore);
    Confined c;
    std::string wrong;
    if (!c.loop.init()) wrong = "no loop; ";
    if (wrong.empty()) wrong = setUp(c);
    if (wrong.empty()) {
      auto filter = SyscallFilter::install(c.loop, [&](long n) { c.reported.insert(n); });
      if (!filter) wrong = "install: " + filter.status().message();
      else c.filter = std::move(*filter);
    }
    if (wrong.empty()) wrong = check(c);
    ssize_t unused = write(report, wrong.data(), wrong.size());
    (void)unused;
  });
}

// The child found all as expected and ended normally.
void expectAllAsExpected(const connectable::testing::ForkedRun& run) {
  BOOST_TEST(run.report == "");
  BOOST_TEST((WIFEXITED(run.status) && WEXITSTATUS(run.status) == 0));
}

std::string failsWithEnosys(const char* what, long result) {
  if (result != -1) return std::string(what) + " succeeded; ";
  if (errno != ENOSYS) return std::string(what) + " failed with " + std::strerror(errno) + ", not ENOSYS; ";
  return "";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(SyscallFilterOfTheShim)

BOOST_AUTO_TEST_CASE(AConfinedProcessStillDoesEverythingAProxyDoes) {
  int listener = -1;
  sockaddr_in address{};
  auto run = inConfinedChild(
      [&](Confined&) -> std::string {
        // Listeners exist before the filter, as in the shim.
        listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof address;
        if (bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || listen(listener, 8) != 0 ||
            getsockname(listener, reinterpret_cast<sockaddr*>(&address), &len) != 0)
          return "no listener; ";
        return "";
      },
      [&](Confined& c) {
        std::string wrong;
        // An upstream connection: a socket, options, connect, accept, both ways.
        int up = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        if (up < 0) return std::string("socket(AF_INET) refused; ");
        if (setsockopt(up, IPPROTO_TCP, 1 /* TCP_NODELAY */, &one, sizeof one) != 0) wrong += "setsockopt; ";
        if (connect(up, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) wrong += "connect; ";
        int down = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (down < 0) return wrong + "accept4; ";
        if (send(up, "ping", 4, MSG_NOSIGNAL) != 4) wrong += "send; ";
        char buf[8] = {};
        int unread = 0;
        if (ioctl(down, FIONREAD, &unread) != 0) wrong += "ioctl(FIONREAD); ";
        if (ioctl(up, SIOCOUTQ, &unread) != 0) wrong += "ioctl(SIOCOUTQ); ";
        if (recv(down, buf, sizeof buf, 0) != 4) wrong += "recv; ";
        // Splice through a pipe, as bulk transfers go.
        int p[2];
        if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) return wrong + "pipe2; ";
        if (fcntl(p[0], F_SETPIPE_SZ, 256 * 1024) < 0) wrong += "fcntl(F_SETPIPE_SZ); ";
        if (send(up, "pong", 4, MSG_NOSIGNAL) != 4) wrong += "send; ";
        usleep(10000);
        if (splice(down, nullptr, p[1], nullptr, 4, SPLICE_F_NONBLOCK) != 4) wrong += "splice in; ";
        if (splice(p[0], nullptr, up, nullptr, 4, SPLICE_F_NONBLOCK) != 4) wrong += "splice out; ";
        if (shutdown(up, SHUT_WR) != 0) wrong += "shutdown; ";
        // DNS: UDP, IPv4 and IPv6.
        int udp = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (udp < 0 && errno != EAFNOSUPPORT) wrong += "socket(AF_INET6, SOCK_DGRAM); ";
        // c-ares's sockets: no flags at socket(), fcntl for them.
        int dns = socket(AF_INET, SOCK_STREAM, 0);
        if (dns < 0 || fcntl(dns, F_SETFL, fcntl(dns, F_GETFL) | O_NONBLOCK) != 0 || fcntl(dns, F_SETFD, FD_CLOEXEC) != 0 ||
            fcntl(dns, F_GETFD) != FD_CLOEXEC)
          wrong += "a socket made non-blocking with fcntl; ";
        close(dns);
        for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
          int s = socket(AF_INET, type, type == SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP);
          if (s < 0) wrong += "socket() naming TCP or UDP; ";
          close(s);
        }
        if (fcntl(p[0], F_GETPIPE_SZ) < 256 * 1024) wrong += "fcntl(F_GETPIPE_SZ); ";
        // Memory, randomness, time.
        void* m = mmap(nullptr, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) wrong += "mmap; ";
        else if (mprotect(m, 4096, PROT_READ) != 0 || munmap(m, 1 << 20) != 0) wrong += "mprotect/munmap; ";
        std::string big(8 << 20, 'x');  // malloc, from its own mapping
        char random[8];
        if (getrandom(random, sizeof random, 0) != 8) wrong += "getrandom; ";
        c.settle();  // epoll_wait, with a timer
        for (int fd : {up, down, p[0], p[1], udp, listener}) close(fd);
        if (!c.reported.empty()) wrong += "the filter reported " + std::to_string(*c.reported.begin()) + "; ";
        return wrong;
      });
  expectAllAsExpected(run);
}

BOOST_AUTO_TEST_CASE(WhatAProxyNeverDoesFailsWithEnosysAndIsReportedOncePerCall) {
  const pid_t test = getpid();  // the child's parent, taken before: getppid() is refused too
  auto run = inConfinedChild([](Confined&) { return std::string(); }, [&](Confined& c) {
    std::string wrong;
    char* const argv[] = {const_cast<char*>("/bin/false"), nullptr};
    wrong += failsWithEnosys("execve", execve(argv[0], argv, environ));
    wrong += failsWithEnosys("execve again", execve(argv[0], argv, environ));
    wrong += failsWithEnosys("open", open("/etc/hostname", O_RDONLY));
    struct stat st;
    wrong += failsWithEnosys("stat", stat("/etc/hostname", &st));
    wrong += failsWithEnosys("socket(AF_NETLINK)", socket(AF_NETLINK, SOCK_RAW, 0));
    wrong += failsWithEnosys("socket(AF_PACKET)", socket(AF_PACKET, SOCK_RAW, 0));
    wrong += failsWithEnosys("socket(AF_UNIX)", socket(AF_UNIX, SOCK_STREAM, 0));
    wrong += failsWithEnosys("fork", fork());
    wrong += failsWithEnosys("kill(parent)", kill(test, 0));
    wrong += failsWithEnosys("tgkill(parent)", syscall(SYS_tgkill, test, test, 0));
    int word = 0;
    wrong += failsWithEnosys("futex", syscall(SYS_futex, &word, FUTEX_WAKE, 1, nullptr, nullptr, 0));
    wrong += failsWithEnosys("ptrace", ptrace(PTRACE_ATTACH, test, nullptr, nullptr));
    char c0 = 'x';
    wrong += failsWithEnosys("ioctl(TIOCSTI)", ioctl(0, TIOCSTI, &c0));
    void* code = mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    wrong += failsWithEnosys("mmap(PROT_EXEC)", code == MAP_FAILED ? -1 : 0);
    void* data = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    wrong += failsWithEnosys("mprotect(PROT_EXEC)", mprotect(data, 4096, PROT_READ | PROT_EXEC));
    c.settle();
    std::set<long> expected = {SYS_futex, SYS_execve, SYS_socket, SYS_kill, SYS_tgkill, SYS_ptrace, SYS_ioctl, SYS_mmap, SYS_mprotect};
    expected.insert(SYS_openat);      // open() is openat() in today's C library
    expected.insert(SYS_newfstatat);  // and stat() newfstatat()
    expected.insert(SYS_clone);   // and fork() a clone()
    if (c.reported != expected) {
      wrong += "reported:";
      for (long n : c.reported) wrong += " " + std::to_string(n);
      wrong += "; ";
    }
    // Reported once: the same calls again bring nothing new.
    c.reported.clear();
    wrong += failsWithEnosys("execve a third time", execve(argv[0], argv, environ));
    c.settle();
    if (!c.reported.empty()) wrong += "execve reported twice; ";
    return wrong;
  });
  expectAllAsExpected(run);
}

BOOST_AUTO_TEST_CASE(ACallRefusedAfterTheLoopsLastTurnIsReportedWhenTheFilterGoes) {
  // As when a shim's loop stopped and what it runs on the way out meets the filter.
  auto run = inConfinedChild([](Confined&) { return std::string(); }, [](Confined& c) {
    std::string wrong = failsWithEnosys("open", open("/etc/hostname", O_RDONLY));
    c.filter.reset();
    if (c.reported != std::set<long>{SYS_openat}) wrong += "not reported when the filter went; ";
    return wrong;
  });
  expectAllAsExpected(run);
}

BOOST_AUTO_TEST_CASE(OfTheInternetFamiliesOnlyTcpAndUdpSocketsAreMade) {
  // The rest of those families is where the kernel's rarer code is: MPTCP and UDP-Lite
  // are open to any user, ICMP ping sockets to the groups of net.ipv4.ping_group_range
  // (all, with systemd's defaults), SCTP, L2TP, DCCP modules load on first use.
  auto run = inConfinedChild([](Confined&) { return std::string(); }, [](Confined& c) {
    std::string wrong;
    wrong += failsWithEnosys("MPTCP", socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP));
    wrong += failsWithEnosys("MPTCP over IPv6", socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, IPPROTO_MPTCP));
    wrong += failsWithEnosys("UDP-Lite", socket(AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE));
    wrong += failsWithEnosys("ICMP ping", socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP));
    wrong += failsWithEnosys("raw IPv4", socket(AF_INET, SOCK_RAW, IPPROTO_ICMP));
    wrong += failsWithEnosys("raw IPv6", socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMPV6));
    wrong += failsWithEnosys("SCTP", socket(AF_INET, SOCK_SEQPACKET, IPPROTO_SCTP));
    wrong += failsWithEnosys("SCTP stream", socket(AF_INET6, SOCK_STREAM, IPPROTO_SCTP));
    wrong += failsWithEnosys("L2TP", socket(AF_INET, SOCK_DGRAM, 115 /* IPPROTO_L2TP */));
    c.settle();
    if (c.reported != std::set<long>{SYS_socket}) wrong += "not reported as socket(); ";
    return wrong;
  });
  expectAllAsExpected(run);
}

BOOST_AUTO_TEST_CASE(SocketOptionsAreTheFewAProxySets) {
  // TCP_ULP attaches an upper layer (kTLS) to a socket, where unprivileged exploits were
  // found; SO_ATTACH_FILTER a BPF program; the others reach option code no proxy needs.
  auto run = inConfinedChild([](Confined&) { return std::string(); }, [](Confined& c) {
    std::string wrong;
    int tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (tcp < 0) return std::string("socket refused; ");
    const int one = 1;
    const linger lg{1, 0};
    const int size = 65536;
    if (setsockopt(tcp, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) wrong += "TCP_NODELAY refused; ";
    if (setsockopt(tcp, SOL_SOCKET, SO_OOBINLINE, &one, sizeof one) != 0) wrong += "SO_OOBINLINE refused; ";
    if (setsockopt(tcp, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) != 0) wrong += "SO_LINGER refused; ";
    if (setsockopt(tcp, SOL_SOCKET, SO_SNDBUF, &size, sizeof size) != 0) wrong += "SO_SNDBUF refused; ";
    if (setsockopt(tcp, SOL_SOCKET, SO_RCVBUF, &size, sizeof size) != 0) wrong += "SO_RCVBUF refused; ";
    const int seconds = 30, probes = 3;
    if (setsockopt(tcp, IPPROTO_TCP, TCP_KEEPIDLE, &seconds, sizeof seconds) != 0) wrong += "TCP_KEEPIDLE refused; ";
    if (setsockopt(tcp, IPPROTO_TCP, TCP_KEEPINTVL, &seconds, sizeof seconds) != 0) wrong += "TCP_KEEPINTVL refused; ";
    if (setsockopt(tcp, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof probes) != 0) wrong += "TCP_KEEPCNT refused; ";
    if (setsockopt(tcp, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one) != 0) wrong += "SO_KEEPALIVE refused; ";
    if (!c.reported.empty()) wrong += "an option a proxy sets was reported; ";
    wrong += failsWithEnosys("TCP_ULP", setsockopt(tcp, IPPROTO_TCP, TCP_ULP, "tls", 3));
    wrong += failsWithEnosys("TCP_CONGESTION", setsockopt(tcp, IPPROTO_TCP, TCP_CONGESTION, "reno", 4));
    sock_filter acceptAll = BPF_STMT(BPF_RET | BPF_K, 0xffff);
    sock_fprog program{1, &acceptAll};
    wrong += failsWithEnosys("SO_ATTACH_FILTER", setsockopt(tcp, SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof program));
    wrong += failsWithEnosys("SO_BINDTODEVICE", setsockopt(tcp, SOL_SOCKET, SO_BINDTODEVICE, "lo", 2));
    wrong += failsWithEnosys("IP_TTL", setsockopt(tcp, IPPROTO_IP, IP_TTL, &one, sizeof one));
    close(tcp);
    c.settle();
    if (c.reported != std::set<long>{SYS_setsockopt}) wrong += "not reported as setsockopt(); ";
    return wrong;
  });
  expectAllAsExpected(run);
}

BOOST_AUTO_TEST_CASE(NoDescriptorIsSetToSignalAnotherProcess) {
  // F_SETOWN names a process to get SIGIO (or any signal, F_SETSIG) when the fd is ready:
  // kill() by another name, for every process of the shim's user.
  const pid_t test = getpid();
  auto run = inConfinedChild([](Confined&) { return std::string(); }, [&](Confined& c) {
    std::string wrong;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return std::string("socket refused; ");
    wrong += failsWithEnosys("F_SETOWN", fcntl(fd, F_SETOWN, test));
    f_owner_ex owner{F_OWNER_PID, test};
    wrong += failsWithEnosys("F_SETOWN_EX", fcntl(fd, F_SETOWN_EX, &owner));
    wrong += failsWithEnosys("F_SETSIG", fcntl(fd, F_SETSIG, SIGKILL));
    close(fd);
    c.settle();
    if (c.reported != std::set<long>{SYS_fcntl}) wrong += "not reported as fcntl(); ";
    return wrong;
  });
  expectAllAsExpected(run);
}

BOOST_AUTO_TEST_CASE(AnAbortStillEndsTheProcessWithSigabrt) {
  // The loop's and the ring's impossible states: abort() signals the process itself.
  auto run = inConfinedChild(
      [](Confined&) {
        signal(SIGABRT, SIG_DFL);  // as in the shim, not Boost.Test's handler
        return std::string();
      },
      [](Confined&) -> std::string { std::abort(); });
  BOOST_TEST(run.report == "");
  BOOST_TEST((WIFSIGNALED(run.status) && WTERMSIG(run.status) == SIGABRT), "wait status " << run.status);
}

BOOST_AUTO_TEST_CASE(ASigsysTheFilterDidNotRaiseChangesNothing) {
  // kill -SYS from outside arrives between any two instructions, or ends a wait early: taken
  // for a refused call, it made the call it interrupted fail (the loop's wait: an abort) or
  // overwrote a register of running code, and reported a call nobody made.
  auto run = inConfinedChild([](Confined&) { return std::string(); }, [](Confined& c) {
    std::string wrong;
    if (raise(SIGSYS) != 0) wrong += std::string("raise(SIGSYS) failed with ") + std::strerror(errno) + "; ";
    c.settle();
    for (long n : c.reported) wrong += "the filter reported " + std::to_string(n) + "; ";
    return wrong;
  });
  expectAllAsExpected(run);
}

#if defined(__x86_64__)
BOOST_AUTO_TEST_CASE(ACallInAnotherArchitecturesConventionEndsTheProcess) {
  // The x32 numbering reaches other entry points, which no list of ours describes.
  auto run = inConfinedChild([](Confined&) { return std::string(); }, [](Confined&) {
    syscall(0x40000000L | SYS_getpid);
    return std::string("still running after an x32 call; ");
  });
  BOOST_TEST(run.report == "");
  BOOST_TEST((WIFSIGNALED(run.status) && WTERMSIG(run.status) == SIGSYS));
}
#endif

BOOST_AUTO_TEST_SUITE_END()

#endif
