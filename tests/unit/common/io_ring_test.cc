#include "common/io_ring.h"

#include <fcntl.h>
#include <liburing.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/event_loop.h"

using namespace connectable;

namespace {

// Where the kernel denies io_uring (the io_uring_disabled sysctl, a seccomp profile), the
// shim runs on epoll and there is nothing to test here.
std::unique_ptr<IoRing> makeRing(unsigned buffers, unsigned maxBuffers = 0) {
  auto ring = IoRing::create(64, buffers, maxBuffers);
  if (!ring) BOOST_TEST_MESSAGE("no io_uring here: " << ring.status().message());
  return ring ? std::move(*ring) : nullptr;
}

struct Recorded : CompletionHandler {
  std::optional<int> result;
  uint32_t flags = 0;
  void onCompletion(int r, uint32_t f) override {
    result = r;
    flags = f;
  }
};

// Waits and dispatches until `done` holds, for at most `turns` waits of 100 ms.
template <typename Done>
bool runUntil(IoRing& ring, Done done, int turns = 20) {
  for (int i = 0; i < turns && !done(); ++i) {
    BOOST_REQUIRE(ring.wait(100));
    ring.dispatch();
  }
  return done();
}

struct SocketPair {
  int fds[2] = {-1, -1};
  SocketPair() { BOOST_REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) == 0); }
  ~SocketPair() {
    ::close(fds[0]);
    ::close(fds[1]);
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(io_ring)

BOOST_AUTO_TEST_CASE(AReadTakesAPoolBufferOnlyWhenBytesArrive) {
  auto ring = makeRing(4);
  if (!ring) return;
  SocketPair p;
  Recorded read;
  ring->recv(p.fds[0], &read);
  BOOST_REQUIRE(ring->wait(50));
  ring->dispatch();
  BOOST_TEST(!read.result.has_value());  // nothing sent yet: the read waits, without a buffer
  BOOST_REQUIRE(write(p.fds[1], "hello", 5) == 5);
  BOOST_REQUIRE(runUntil(*ring, [&] { return read.result.has_value(); }));
  BOOST_TEST(*read.result == 5);
  BOOST_REQUIRE(IoRing::hasBuffer(read.flags));
  BOOST_TEST(std::string(ring->buffer(IoRing::bufferId(read.flags)), 5) == "hello");
  ring->releaseBuffer(IoRing::bufferId(read.flags));
}

BOOST_AUTO_TEST_CASE(ASendTakesWhatThePeerHasRoomForAndNeverWaitsInTheRingForMore) {
  // A send that waited in the ring for a peer that stopped reading would leave nothing to
  // watch the connection's other side: the caller is told at once, and decides.
  auto ring = makeRing(4);
  if (!ring) return;
  SocketPair p;  // nobody reads p.fds[1]
  const std::string data(4 << 20, 'x');  // far more than a socket buffer holds
  Recorded sent;
  ring->send(p.fds[0], data.data(), data.size(), &sent);
  BOOST_REQUIRE(runUntil(*ring, [&] { return sent.result.has_value(); }, 2));
  BOOST_TEST(*sent.result > 0);
  BOOST_TEST(*sent.result < static_cast<int>(data.size()));
  Recorded full;
  ring->send(p.fds[0], data.data(), data.size(), &full);
  BOOST_REQUIRE(runUntil(*ring, [&] { return full.result.has_value(); }, 2));
  BOOST_TEST(*full.result == -EAGAIN);
  // What was taken arrives whole.
  std::string got(data.size(), '\0');
  size_t have = 0;
  for (ssize_t n; (n = read(p.fds[1], got.data() + have, got.size() - have)) > 0;) have += static_cast<size_t>(n);
  BOOST_TEST(have == static_cast<size_t>(*sent.result));
  BOOST_TEST(got.compare(0, have, data, 0, have) == 0);
}

BOOST_AUTO_TEST_CASE(WhenEveryBufferIsLentOutAReadFailsWithEnobufsUntilOneIsBack) {
  auto ring = makeRing(2);
  if (!ring) return;
  SocketPair a, b, c;
  for (SocketPair* p : {&a, &b, &c}) BOOST_REQUIRE(write(p->fds[1], "m", 1) == 1);
  Recorded ra, rb, rc;
  ring->recv(a.fds[0], &ra);
  ring->recv(b.fds[0], &rb);
  ring->recv(c.fds[0], &rc);
  BOOST_REQUIRE(runUntil(*ring, [&] { return ra.result && rb.result && rc.result; }));
  std::vector<int> results = {*ra.result, *rb.result, *rc.result};
  BOOST_TEST(std::count(results.begin(), results.end(), 1) == 2);
  BOOST_TEST(std::count(results.begin(), results.end(), -ENOBUFS) == 1);
  // Give one back: the starved socket's byte can now be read.
  Recorded* starved = *ra.result == -ENOBUFS ? &ra : *rb.result == -ENOBUFS ? &rb : &rc;
  Recorded* lucky = starved == &ra ? &rb : &ra;
  int starvedFd = starved == &ra ? a.fds[0] : starved == &rb ? b.fds[0] : c.fds[0];
  ring->releaseBuffer(IoRing::bufferId(lucky->flags));
  Recorded again;
  ring->recv(starvedFd, &again);
  BOOST_REQUIRE(runUntil(*ring, [&] { return again.result.has_value(); }));
  BOOST_TEST(*again.result == 1);
}

BOOST_AUTO_TEST_CASE(ReadsStarvedByABurstAreServedByAPoolThatGrowsUpToItsLimit) {
  auto ring = makeRing(2, 4);
  if (!ring) return;
  BOOST_TEST(ring->bufferCount() == 2u);
  SocketPair pairs[5];
  Recorded first[5];
  for (auto& p : pairs) BOOST_REQUIRE(write(p.fds[1], "m", 1) == 1);
  for (int i = 0; i < 5; ++i) ring->recv(pairs[i].fds[0], &first[i]);
  BOOST_REQUIRE(runUntil(*ring, [&] { return std::all_of(first, first + 5, [](auto& r) { return r.result.has_value(); }); }));
  std::vector<int> starved;
  for (int i = 0; i < 5; ++i)
    if (*first[i].result == -ENOBUFS) starved.push_back(i);
  BOOST_REQUIRE(starved.size() == 3u);  // two buffers, five reads with bytes
  BOOST_TEST(ring->buffersFree() == 0u);

  // The first starved read grows the pool by its initial size (2), which is enough for the
  // second too; the third finds the pool at its limit (4) with every buffer spoken for.
  BOOST_TEST(ring->reserveBuffer());
  BOOST_TEST(ring->bufferCount() == 4u);
  BOOST_TEST(ring->reserveBuffer());
  BOOST_TEST(!ring->reserveBuffer());
  BOOST_TEST(ring->bufferCount() == 4u);

  Recorded again[2];
  for (int k = 0; k < 2; ++k) ring->recv(pairs[starved[k]].fds[0], &again[k]);
  BOOST_REQUIRE(runUntil(*ring, [&] { return again[0].result && again[1].result; }));
  for (auto& r : again) {
    BOOST_TEST(r.result.value_or(-1) == 1);
    BOOST_REQUIRE(IoRing::hasBuffer(r.flags));
    BOOST_TEST(IoRing::bufferId(r.flags) >= 2u);  // the new buffers
    BOOST_TEST(*ring->buffer(IoRing::bufferId(r.flags)) == 'm');
  }
  BOOST_TEST(ring->buffersFree() == 0u);
  ring->releaseBuffer(IoRing::bufferId(again[0].flags));
  BOOST_TEST(ring->buffersFree() == 1u);
  BOOST_TEST(ring->reserveBuffer());  // the one given back
}

BOOST_AUTO_TEST_CASE(ACancelledReadCompletesWithEcanceledAndTakesNoBuffer) {
  auto ring = makeRing(4);
  if (!ring) return;
  SocketPair p;
  Recorded read;
  ring->recv(p.fds[0], &read);
  BOOST_REQUIRE(ring->wait(0));
  ring->cancel(&read);
  BOOST_REQUIRE(runUntil(*ring, [&] { return read.result.has_value(); }));
  BOOST_TEST(*read.result == -ECANCELED);
  BOOST_TEST(!IoRing::hasBuffer(read.flags));
}

BOOST_AUTO_TEST_CASE(AnEventLoopOnTheRingStillServesEpollHandlersAndTimers) {
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  if (!loop.enableRing(64, 4)) return;  // no io_uring here
  BOOST_REQUIRE(loop.ring() != nullptr);
  struct Counter : IoHandler {
    int fd = eventfd(0, EFD_NONBLOCK);
    int events = 0;
    void onIo(uint32_t) override {
      uint64_t v;
      while (read(fd, &v, sizeof v) == sizeof v) ++events;
    }
    ~Counter() override { ::close(fd); }
  } counter;
  BOOST_REQUIRE(loop.add(counter.fd, EPOLLIN | EPOLLET, &counter));
  bool timerFired = false;
  loop.addTimer(Millis(20), [&] {
    timerFired = true;
    uint64_t one = 1;
    BOOST_REQUIRE(write(counter.fd, &one, sizeof one) == sizeof one);  // seen through the ring's poll
  });
  loop.addTimer(Millis(200), [&] { loop.stop(); });
  loop.run();
  BOOST_TEST(timerFired);
  BOOST_TEST(counter.events == 1);
  loop.remove(counter.fd);
}

BOOST_AUTO_TEST_CASE(ALevelTriggeredFdThatIsStillReadyIsServedAgainWithoutANewEvent) {
  // c-ares reads a TCP answer a piece at a time from a level-triggered registration: what
  // is left must be handed to it again, as epoll_wait would, not wait for another event.
  // A semaphore eventfd is such an fd: each read takes one of its three counts.
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  if (!loop.enableRing(64, 4)) return;  // no io_uring here
  struct OneAtATime : IoHandler {
    int fd = eventfd(3, EFD_NONBLOCK | EFD_SEMAPHORE);
    int taken = 0;
    void onIo(uint32_t) override {
      uint64_t v;
      if (read(fd, &v, sizeof v) == sizeof v) ++taken;
    }
    ~OneAtATime() override { ::close(fd); }
  } reader;
  BOOST_REQUIRE(loop.add(reader.fd, EPOLLIN, &reader));  // level-triggered
  loop.addTimer(Millis(300), [&] { loop.stop(); });
  loop.run();
  BOOST_TEST(reader.taken == 3);
  loop.remove(reader.fd);
}

BOOST_AUTO_TEST_CASE(ARestrictedRingTakesTheDataPathsOperationsAndNothingElse) {
  // The way around the shim's system call filter would be the ring: an open or a socket
  // queued there is no system call.
  io_uring raw{};
  io_uring_params params{};
  params.flags = IORING_SETUP_R_DISABLED;
  if (int rc = io_uring_queue_init_params(8, &raw, &params); rc < 0) {
    BOOST_TEST_MESSAGE("no io_uring here: " << std::strerror(-rc));
    return;
  }
  BOOST_REQUIRE(IoRing::restrictToDataPath(&raw));
  BOOST_REQUIRE(io_uring_enable_rings(&raw) == 0);
  SocketPair p;
  BOOST_REQUIRE(write(p.fds[1], "hello", 5) == 5);
  auto complete = [&](const std::function<void(io_uring_sqe*)>& prepare) {
    prepare(io_uring_get_sqe(&raw));
    BOOST_REQUIRE(io_uring_submit(&raw) == 1);
    io_uring_cqe* cqe = nullptr;
    BOOST_REQUIRE(io_uring_wait_cqe(&raw, &cqe) == 0);
    const int result = cqe->res;
    io_uring_cqe_seen(&raw, cqe);
    return result;
  };
  char buf[8];
  BOOST_TEST(complete([&](io_uring_sqe* s) { io_uring_prep_recv(s, p.fds[0], buf, sizeof buf, 0); }) == 5);
  BOOST_TEST(complete([](io_uring_sqe* s) { io_uring_prep_openat(s, AT_FDCWD, "/etc/hostname", O_RDONLY, 0); }) == -EACCES);
  BOOST_TEST(complete([](io_uring_sqe* s) { io_uring_prep_socket(s, AF_NETLINK, SOCK_RAW, 0, 0); }) == -EACCES);
  BOOST_TEST(complete([](io_uring_sqe* s) { io_uring_prep_nop(s); }) == -EACCES);
  // Nor can anything be registered: files, buffers, another buffer ring.
  int fds[1] = {p.fds[0]};
  BOOST_TEST(io_uring_register_files(&raw, fds, 1) == -EACCES);
  io_uring_queue_exit(&raw);
}

BOOST_AUTO_TEST_CASE(TheRingItCreatesIsRestrictedToTheDataPath) {
  // The case above tests the restriction; this one that the data path's ring has it. The
  // ring is the fd create() adds; anything registered on a restricted ring is refused.
  auto ringFds = [] {
    std::set<std::string> fds;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd"))
      if (std::filesystem::exists(entry.path()) && std::filesystem::read_symlink(entry.path()) == "anon_inode:[io_uring]")
        fds.insert(entry.path().filename());
    return fds;
  };
  const auto before = ringFds();
  auto ring = makeRing(8);
  if (!ring) return;
  std::vector<std::string> made;
  for (const auto& fd : ringFds())
    if (!before.count(fd)) made.push_back(fd);
  BOOST_REQUIRE(made.size() == 1u);
  SocketPair p;
  int files[1] = {p.fds[0]};
  long rc = syscall(__NR_io_uring_register, std::stoi(made[0]), IORING_REGISTER_FILES, files, 1);
  BOOST_TEST(rc == -1);
  BOOST_TEST(errno == EACCES);
}

BOOST_AUTO_TEST_SUITE_END()
