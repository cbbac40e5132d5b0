#include "common/io_ring.h"

#include <liburing.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <vector>

#include "common/log.h"

namespace connectable {
namespace {

constexpr uint16_t kBufferGroup = 0;

}  // namespace

Result<std::unique_ptr<IoRing>> IoRing::create(unsigned entries, unsigned buffers, unsigned maxBuffers) {
  if (maxBuffers < buffers) maxBuffers = buffers;
  std::unique_ptr<IoRing> ring(new IoRing());
  ring->ring_ = std::make_unique<io_uring>();
  io_uring_params params{};
  // One thread submits, and completions are only needed when it asks for them: the kernel
  // then runs the work of arriving bytes in our io_uring_enter, in one batch, instead of
  // interrupting us for each (6.1 and later).
  params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_COOP_TASKRUN;
  // Made disabled, so that it can be restricted (restrictToDataPath) before its first use.
  params.flags |= IORING_SETUP_R_DISABLED;
  if (int rc = io_uring_queue_init_params(entries, ring->ring_.get(), &params); rc < 0)
    return errnoStatus("io_uring_setup", -rc);
  ring->ringReady_ = true;
  if (!(params.features & IORING_FEAT_NODROP) || !(params.features & IORING_FEAT_EXT_ARG))
    return Status::error("io_uring: this kernel lacks features the data path needs");

  // Buffers are mapped, not allocated: a page costs memory only once bytes were read into
  // it. The whole pool's address range is reserved now, and buffers are handed to the
  // kernel as the pool grows, so buffers never used are never touched.
  ring->maxBuffers_ = maxBuffers;
  ring->bufferRingBytes_ = sizeof(io_uring_buf) * maxBuffers;
  void* br = mmap(nullptr, ring->bufferRingBytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (br == MAP_FAILED) return errnoStatus("mmap", errno);
  ring->bufferRing_ = static_cast<io_uring_buf_ring*>(br);
  void* bufs = mmap(nullptr, kBufferSize * maxBuffers, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                    -1, 0);
  if (bufs == MAP_FAILED) return errnoStatus("mmap", errno);
  ring->buffers_ = static_cast<char*>(bufs);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uintptr_t>(ring->bufferRing_);
  reg.ring_entries = maxBuffers;
  reg.bgid = kBufferGroup;
  if (int rc = io_uring_register_buf_ring(ring->ring_.get(), &reg, 0); rc < 0)
    return errnoStatus("io_uring provided buffers", -rc);
  io_uring_buf_ring_init(ring->bufferRing_);
  ring->bufferStep_ = buffers;
  ring->addBuffers();
  if (Status s = restrictToDataPath(ring->ring_.get()); !s) return s;
  if (int rc = io_uring_enable_rings(ring->ring_.get()); rc < 0) return errnoStatus("io_uring enable", -rc);
  return ring;
}

Status IoRing::restrictToDataPath(io_uring* ring) {
  // What IoRing queues, and nothing else: no opening of files, no sockets made, no
  // registering of anything (the pool's buffer ring is registered before).
  std::vector<io_uring_restriction> allowed;
  for (uint8_t op : {IORING_OP_RECV, IORING_OP_SEND, IORING_OP_CONNECT, IORING_OP_ASYNC_CANCEL, IORING_OP_CLOSE,
                     IORING_OP_POLL_ADD}) {
    io_uring_restriction r{};
    r.opcode = IORING_RESTRICTION_SQE_OP;
    r.sqe_op = op;
    allowed.push_back(r);
  }
  io_uring_restriction flags{};
  flags.opcode = IORING_RESTRICTION_SQE_FLAGS_ALLOWED;
  flags.sqe_flags = IOSQE_BUFFER_SELECT | IOSQE_CQE_SKIP_SUCCESS;
  allowed.push_back(flags);
  if (int rc = io_uring_register_restrictions(ring, allowed.data(), static_cast<unsigned>(allowed.size())); rc < 0)
    return errnoStatus("io_uring restrictions", -rc);
  return Status::ok();
}

bool IoRing::reserveBuffer() {
  if (buffersFree() <= buffersPromised_ && !addBuffers()) return false;
  ++buffersPromised_;
  return true;
}

bool IoRing::addBuffers() {
  const unsigned add = std::min(bufferStep_, maxBuffers_ - bufferCount_);
  if (add == 0) return false;
  const int mask = io_uring_buf_ring_mask(maxBuffers_);
  for (unsigned i = 0; i < add; ++i) {
    const auto id = static_cast<uint16_t>(bufferCount_ + i);
    io_uring_buf_ring_add(bufferRing_, const_cast<char*>(buffer(id)), kBufferSize, id, mask, static_cast<int>(i));
  }
  io_uring_buf_ring_advance(bufferRing_, static_cast<int>(add));
  bufferCount_ += add;
  return true;
}

IoRing::~IoRing() {
  if (ringReady_) io_uring_queue_exit(ring_.get());  // cancels what is still in flight
  if (buffers_) munmap(buffers_, kBufferSize * maxBuffers_);
  if (bufferRing_) munmap(bufferRing_, bufferRingBytes_);
}

io_uring_sqe* IoRing::nextSqe() {
  for (int attempt = 0; attempt < 1000; ++attempt) {
    if (io_uring_sqe* sqe = io_uring_get_sqe(ring_.get())) return sqe;
    // The submission queue is full: hand it to the kernel now and take a fresh entry.
    int rc = io_uring_submit(ring_.get());
    if (rc == -EAGAIN || rc == -EBUSY) {
      // The kernel is short of memory for requests, for now: give it a moment (up to a
      // second in all) rather than give up every connection at the first refusal.
      timespec pause{0, 1'000'000};
      nanosleep(&pause, nullptr);
    } else if (rc < 0 && rc != -EINTR) {
      log::error("io_uring submit failed", {{"error", errnoStatus("io_uring_enter", -rc).message()}});
      std::abort();  // the data path cannot go on without its ring: fail loudly
    }
  }
  log::error("io_uring submission queue stays full");
  std::abort();
}

void IoRing::recv(int fd, CompletionHandler* handler) {
  io_uring_sqe* sqe = nextSqe();
  io_uring_prep_recv(sqe, fd, nullptr, kBufferSize, 0);
  // Wait for bytes before trying: a read is made when the previous message has just been
  // passed on, when the next one has rarely arrived yet (a failed try costs a socket lock
  // and a copy attempt; when bytes are there, the poll finds them at once).
  sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = kBufferGroup;
  io_uring_sqe_set_data(sqe, handler);
}

void IoRing::send(int fd, const void* data, size_t len, CompletionHandler* handler, bool more) {
  io_uring_sqe* sqe = nextSqe();
  io_uring_prep_send(sqe, fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT | (more ? MSG_MORE : 0));
  io_uring_sqe_set_data(sqe, handler);
}

void IoRing::connect(int fd, const sockaddr* address, socklen_t length, CompletionHandler* handler) {
  io_uring_sqe* sqe = nextSqe();
  io_uring_prep_connect(sqe, fd, address, length);
  io_uring_sqe_set_data(sqe, handler);
}

void IoRing::cancel(CompletionHandler* handler) {
  io_uring_sqe* sqe = nextSqe();
  io_uring_prep_cancel(sqe, handler, 0);
  // The cancel's own completion carries nothing we act on: a null handler is skipped.
  io_uring_sqe_set_data(sqe, nullptr);
  sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

void IoRing::close(int fd) {
  io_uring_sqe* sqe = nextSqe();
  io_uring_prep_close(sqe, fd);
  io_uring_sqe_set_data(sqe, nullptr);
  sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

void IoRing::pollIn(int fd, CompletionHandler* handler) {
  io_uring_sqe* sqe = nextSqe();
  io_uring_prep_poll_add(sqe, fd, POLLIN);
  io_uring_sqe_set_data(sqe, handler);
}

bool IoRing::hasBuffer(uint32_t flags) { return (flags & IORING_CQE_F_BUFFER) != 0; }

bool IoRing::moreQueued(uint32_t flags) { return (flags & IORING_CQE_F_SOCK_NONEMPTY) != 0; }

uint16_t IoRing::bufferId(uint32_t flags) { return static_cast<uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT); }

void IoRing::releaseBuffer(uint16_t id) {
  io_uring_buf_ring_add(bufferRing_, const_cast<char*>(buffer(id)), kBufferSize, id, io_uring_buf_ring_mask(maxBuffers_), 0);
  io_uring_buf_ring_advance(bufferRing_, 1);
  --buffersLent_;
}

Status IoRing::wait(int timeoutMs) {
  int rc;
  if (timeoutMs < 0) {
    rc = io_uring_submit_and_wait(ring_.get(), 1);
  } else {
    __kernel_timespec ts{timeoutMs / 1000, static_cast<long long>(timeoutMs % 1000) * 1'000'000};
    io_uring_cqe* cqe = nullptr;
    rc = io_uring_submit_and_wait_timeout(ring_.get(), &cqe, 1, &ts, nullptr);
  }
  // ETIME: the timeout passed; EINTR: a signal (they come through the signalfd); EBUSY and
  // EAGAIN: completions are waiting to be reaped first.
  if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY && rc != -EAGAIN) return errnoStatus("io_uring_enter", -rc);
  return Status::ok();
}

void IoRing::dispatch() {
  buffersPromised_ = 0;  // those reads were made in the last wait, and took theirs or failed again
  for (;;) {
    // The buffers of the whole batch are counted as lent before any handler runs, so that
    // one retrying a starved read sees the pool as the kernel does.
    unsigned head;
    unsigned batch = 0;
    io_uring_cqe* cqe = nullptr;
    io_uring_for_each_cqe(ring_.get(), head, cqe) {
      if (hasBuffer(cqe->flags)) ++buffersLent_;
      ++batch;
    }
    if (batch == 0) return;
    // Handlers may submit, and a submit may bring completions the kernel held back: those
    // are the next batch.
    for (; batch > 0 && io_uring_peek_cqe(ring_.get(), &cqe) == 0; --batch) {
      auto* handler = static_cast<CompletionHandler*>(io_uring_cqe_get_data(cqe));
      const int result = cqe->res;
      const uint32_t flags = cqe->flags;
      io_uring_cqe_seen(ring_.get(), cqe);  // before the handler, which may submit
      if (handler) handler->onCompletion(result, flags);
    }
  }
}

}  // namespace connectable
