#include "common/syscall_filter.h"

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <termios.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <vector>

namespace connectable {
namespace {

#if defined(__x86_64__)
constexpr uint32_t kArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr uint32_t kArch = AUDIT_ARCH_AARCH64;
#endif

// The calls a running shim makes, nothing about them checked but their number. The kernel
// remembers for each such number that the filter allows it whatever the arguments, and
// then runs no filter for it at all: the data path pays nothing.
constexpr long kAllowed[] = {
    // Waiting and the ring (io_uring_register is not here: the ring is set up before).
    SYS_io_uring_enter, SYS_epoll_ctl, SYS_epoll_pwait,
#ifdef SYS_epoll_wait
    SYS_epoll_wait,
#endif
#ifdef SYS_epoll_pwait2
    SYS_epoll_pwait2,
#endif
    // Connections, both ways, and the DNS resolver's UDP and TCP sockets. socket(),
    // setsockopt() and fcntl() are below, with their arguments checked.
    SYS_accept4, SYS_accept, SYS_connect, SYS_shutdown, SYS_close, SYS_getsockopt, SYS_getsockname,
    SYS_getpeername, SYS_recvfrom, SYS_sendto, SYS_recvmsg, SYS_sendmsg, SYS_read, SYS_write, SYS_readv, SYS_writev,
    SYS_splice, SYS_pipe2, SYS_lseek,
    // Memory (mmap and mprotect are below: never executable), time, randomness.
    SYS_brk, SYS_munmap, SYS_mremap, SYS_madvise, SYS_clock_gettime, SYS_clock_getres, SYS_gettimeofday,
    SYS_nanosleep, SYS_clock_nanosleep, SYS_getrandom,
#ifdef SYS_time
    SYS_time,
#endif
    // Signals (the loop's signalfd exists already; SIGSYS below returns through
    // rt_sigreturn), identity, the end. No futex: one thread never waits for a lock, and
    // futex is where unprivileged exploits were found (CVE-2014-3153).
    SYS_rt_sigreturn, SYS_rt_sigprocmask, SYS_rt_sigaction, SYS_restart_syscall, SYS_sched_yield,
    SYS_getpid, SYS_gettid, SYS_getuid, SYS_geteuid, SYS_getgid, SYS_getegid, SYS_getrusage, SYS_exit,
    SYS_exit_group,
};

// Each refused call number is reported once: bit n of the map is set by the SIGSYS
// handler, and `reported` is what the loop has passed on already.
constexpr long kNumbers = 1024;
std::atomic<uint64_t> refusedMap[kNumbers / 64];
uint64_t reportedMap[kNumbers / 64];
std::atomic<int> wakeFd{-1};

// SIGSYS's si_code when the filter raised it: SYS_SECCOMP, which glibc 2.36 does not name.
constexpr int kSeccompTrap = 1;

// Runs in place of a refused call: makes it return -ENOSYS, and wakes the loop. Only what
// is safe in a signal handler (atomics, write), and only calls the filter allows.
void onSigsys(int, siginfo_t* info, void* context) {
  // A SIGSYS sent by someone (kill -SYS) may interrupt any instruction: no call to fail.
  if (info->si_code != kSeccompTrap) return;
  const int savedErrno = errno;
  auto* uc = static_cast<ucontext_t*>(context);
#if defined(__x86_64__)
  uc->uc_mcontext.gregs[REG_RAX] = -ENOSYS;
#elif defined(__aarch64__)
  uc->uc_mcontext.regs[0] = static_cast<uint64_t>(-ENOSYS);
#endif
  const long n = info->si_syscall;
  // Past the map: no such call on the architectures we know; refused, not reported.
  if (n < 0 || n >= kNumbers) return;
  const uint64_t bit = uint64_t{1} << (n % 64);
  if (!(refusedMap[n / 64].fetch_or(bit) & bit)) {
    const uint64_t one = 1;
    ssize_t unused = ::write(wakeFd.load(), &one, sizeof one);
    (void)unused;
  }
  errno = savedErrno;
}

// A classic BPF program, built one instruction at a time. Jump offsets count the
// instructions skipped.
class Program {
 public:
  // A condition on a call's argument: its low 32 bits (little-endian on both architectures
  // we know), less the bits `mask` leaves out, are one of `values`.
  struct ArgIn {
    int arg;
    std::vector<uint32_t> values;
    uint32_t mask = ~uint32_t{0};
  };

  void load(uint32_t offset) { add(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offset)); }
  void ret(uint32_t action) { add(BPF_STMT(BPF_RET | BPF_K, action)); }
  // if (A == k) fall through, else skip `skip` instructions.
  void ifEqual(uint32_t k, uint8_t skip) { add(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, k, 0, skip)); }
  // if (A == k) skip `skip` instructions, else fall through.
  void ifEqualSkip(uint32_t k, uint8_t skip) { add(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, k, skip, 0)); }
  // if (A >= k) fall through, else skip `skip` instructions.
  void ifAtLeast(uint32_t k, uint8_t skip) { add(BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, k, 0, skip)); }

  // Call `nr` (in A) returns `pass` when every condition holds, `fail` otherwise; any other
  // call falls through, with A unchanged. With `orElseNext`, the call itself falls through
  // when a condition does not hold, with A its number again, to the next check of it (with
  // other conditions) instead of returning `fail`. The offsets are counted here, once for all.
  void ifCall(uint32_t nr, const std::vector<ArgIn>& conditions, uint32_t pass, uint32_t fail,
              bool orElseNext = false) {
    size_t size = 2;  // the two outcomes
    for (const ArgIn& c : conditions) size += 1 + (c.mask != ~uint32_t{0}) + c.values.size();
    ifEqual(nr, narrow(size));
    const size_t end = code_.size() + size;
    const size_t failAt = orElseNext ? end - 1 : end - 2;
    const size_t passAt = orElseNext ? end - 2 : end - 1;
    for (size_t i = 0; i < conditions.size(); ++i) {
      const ArgIn& c = conditions[i];
      load(static_cast<uint32_t>(offsetof(seccomp_data, args) + sizeof(uint64_t) * static_cast<size_t>(c.arg)));
      if (c.mask != ~uint32_t{0}) add(BPF_STMT(BPF_ALU | BPF_AND | BPF_K, c.mask));
      // Met: on to the next condition (the one after these values), or to `pass`.
      const size_t metAt = i + 1 < conditions.size() ? code_.size() + c.values.size() : passAt;
      for (size_t v = 0; v < c.values.size(); ++v) {
        const size_t here = code_.size();
        const bool last = v + 1 == c.values.size();
        add(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, c.values[v], narrow(metAt - here - 1), narrow(last ? failAt - here - 1 : 0)));
      }
    }
    if (orElseNext) {
      ret(pass);
      load(offsetof(seccomp_data, nr));
    } else {
      ret(fail);
      ret(pass);
    }
  }

  std::vector<sock_filter>& code() { return code_; }

 private:
  static uint8_t narrow(size_t skip) {
    if (skip > 255) std::abort();  // a jump too long for classic BPF: a check too big
    return static_cast<uint8_t>(skip);
  }
  void add(sock_filter f) { code_.push_back(f); }
  std::vector<sock_filter> code_;
};

constexpr uint32_t kAllow = SECCOMP_RET_ALLOW;
constexpr uint32_t kRefuse = SECCOMP_RET_TRAP;  // onSigsys: ENOSYS, reported

// The shim's program. The number is in A whenever a check of one call begins; each check
// whose arguments it reads ends in returns, so A is the number again for the next one.
std::vector<sock_filter> buildProgram(pid_t self) {
  Program p;
  p.load(offsetof(seccomp_data, arch));
  p.ifEqualSkip(kArch, 1);
  p.ret(SECCOMP_RET_KILL_PROCESS);
  p.load(offsetof(seccomp_data, nr));
#if defined(__x86_64__)
  p.ifAtLeast(0x40000000, 1);  // the x32 convention's numbers
  p.ret(SECCOMP_RET_KILL_PROCESS);
#endif
  for (long n : kAllowed) {
    p.ifEqual(static_cast<uint32_t>(n), 1);
    p.ret(kAllow);
  }
  // socket(): TCP and UDP, IPv4 and IPv6 (to backends, to DNS servers), and nothing else
  // of those families: raw, ICMP, SCTP, MPTCP, UDP-Lite, L2TP are the kernel's rarer code.
  // A protocol of 0 is the type's first, TCP or UDP, whatever modules are loaded.
  p.ifCall(SYS_socket,
           {{0, {AF_INET, AF_INET6}},
            {1, {SOCK_STREAM, SOCK_DGRAM}, ~uint32_t{SOCK_NONBLOCK | SOCK_CLOEXEC}},
            {2, {0, IPPROTO_TCP, IPPROTO_UDP}}},
           kAllow, kRefuse);
  // setsockopt(): what the shim sets on upstream sockets (TCP_NODELAY, SO_OOBINLINE, and
  // keepalive on those that live long), on a reset (SO_LINGER), and c-ares' buffer sizes.
  // Not TCP_ULP (kTLS and the other upper layers, where unprivileged exploits were found),
  // socket filters (SO_ATTACH_FILTER), nor the rest of the kernel's option code.
  p.ifCall(SYS_setsockopt, {{1, {SOL_SOCKET}}, {2, {SO_OOBINLINE, SO_LINGER, SO_SNDBUF, SO_RCVBUF, SO_KEEPALIVE}}},
           kAllow, kRefuse, /*orElseNext=*/true);
  p.ifCall(SYS_setsockopt, {{1, {IPPROTO_TCP}}, {2, {TCP_NODELAY, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT}}}, kAllow,
           kRefuse);
  // fcntl(): flags of an fd and a pipe's size; not F_SETOWN and F_SETSIG, with which an
  // fd signals any process of our user.
  p.ifCall(SYS_fcntl, {{1, {F_GETFD, F_SETFD, F_GETFL, F_SETFL, F_GETPIPE_SZ, F_SETPIPE_SZ}}}, kAllow, kRefuse);
  // ioctl(): how many bytes wait on a socket to be read (FIONREAD) or acknowledged
  // (SIOCOUTQ), and whether an fd is a terminal (stdio).
  p.ifCall(SYS_ioctl, {{1, {FIONREAD, SIOCOUTQ, TCGETS}}}, kAllow, kRefuse);
  // mmap(), mprotect(): memory for data, never for code.
  for (long n : {long{SYS_mmap}, long{SYS_mprotect}}) p.ifCall(static_cast<uint32_t>(n), {{2, {0}, PROT_EXEC}}, kAllow, kRefuse);
  // tgkill(): abort() signalling itself, nobody else.
  p.ifCall(SYS_tgkill, {{0, {static_cast<uint32_t>(self)}}}, kAllow, kRefuse);
  p.ret(kRefuse);
  return std::move(p.code());
}

}  // namespace

Result<std::unique_ptr<SyscallFilter>> SyscallFilter::install(EventLoop& loop, OnRefused onRefused) {
#if !defined(__x86_64__) && !defined(__aarch64__)
  return Status::error("no system call filter for this architecture");
#else
  const int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) return errnoStatus("eventfd", errno);
  std::unique_ptr<SyscallFilter> filter(new SyscallFilter(loop, fd, std::move(onRefused)));
  if (Status s = loop.add(fd, EPOLLIN, filter.get()); !s) return s;
  wakeFd.store(fd);

  struct sigaction action {};
  action.sa_sigaction = onSigsys;
  action.sa_flags = SA_SIGINFO;
  sigemptyset(&action.sa_mask);
  if (sigaction(SIGSYS, &action, nullptr) != 0) return errnoStatus("sigaction(SIGSYS)", errno);
  sigset_t sigsys;
  sigemptyset(&sigsys);
  sigaddset(&sigsys, SIGSYS);
  sigprocmask(SIG_UNBLOCK, &sigsys, nullptr);

  std::vector<sock_filter> code = buildProgram(getpid());
  sock_fprog program{static_cast<unsigned short>(code.size()), code.data()};
  // Needed to install a filter without CAP_SYS_ADMIN; privileges.cc sets it too.
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return errnoStatus("prctl(PR_SET_NO_NEW_PRIVS)", errno);
  // SPEC_ALLOW: a kernel may otherwise turn on its Speculative Store Bypass mitigation for
  // every filtered process (arm64 does by default), which is for sandboxes running foreign
  // code and slows every load; the shim runs none. Kernels before 4.17 lack the flag.
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_SPEC_ALLOW, &program) != 0 &&
      (errno != EINVAL || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) != 0))
    return errnoStatus("seccomp filter", errno);
  return filter;
#endif
}

SyscallFilter::SyscallFilter(EventLoop& loop, int eventFd, OnRefused onRefused)
    : loop_(loop), eventFd_(eventFd), onRefused_(std::move(onRefused)) {}

SyscallFilter::~SyscallFilter() {
  // What was refused since the loop's last turn (the shim ends after its loop stopped).
  reportNew();
  // The filter stays (nothing removes one): later refusals still fail with ENOSYS, unreported.
  wakeFd.store(-1);
  loop_.remove(eventFd_);
  ::close(eventFd_);
}

void SyscallFilter::onIo(uint32_t) {
  uint64_t count = 0;
  ssize_t unused = ::read(eventFd_, &count, sizeof count);
  (void)unused;
  reportNew();
}

void SyscallFilter::reportNew() {
  for (long word = 0; word < kNumbers / 64; ++word) {
    const uint64_t fresh = refusedMap[word].load() & ~reportedMap[word];
    reportedMap[word] |= fresh;
    for (long bit = 0; bit < 64; ++bit)
      if (fresh & (uint64_t{1} << bit)) onRefused_(word * 64 + bit);
  }
}

}  // namespace connectable
