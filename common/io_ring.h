// IoRing: an io_uring the event loop waits in, so that socket reads and writes are queued
// and made many at a time, in the one system call that also waits for the next event.
//
// Why: on the hosts we measured, a system call costs about 1 µs of entry and exit alone
// (page-table isolation, virtualised CPUs), and a proxy in the epoll style makes four per
// request/response (recv and send, each way). Through the ring, one io_uring_enter carries
// the sends and reads of every connection that moved since the last one.
//
// Reads take their buffer from a shared pool only when bytes arrive (provided buffers), so
// an idle connection holds none; the pool grows when a burst finds it empty. Every
// operation has a CompletionHandler that gets exactly one completion.
// Single-threaded: every call from the thread that created the ring.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "common/status.h"

struct io_uring;
struct io_uring_sqe;
struct io_uring_buf_ring;

namespace connectable {

class CompletionHandler {
 public:
  virtual ~CompletionHandler() = default;
  // result: what the system call would have returned, or -errno. flags: the CQE's flags
  // (IoRing::hasBuffer / bufferId for reads).
  virtual void onCompletion(int result, uint32_t flags) = 0;
};

class IoRing {
 public:
  static constexpr size_t kBufferSize = size_t{16} * 1024;

  // The pool starts with `buffers` read buffers and may grow to `maxBuffers` (addBuffers);
  // both powers of 2, at most 32768. An error when the kernel has no io_uring (before 6.0),
  // or it is denied to us (seccomp, the io_uring_disabled sysctl): the caller then goes on
  // with epoll alone.
  // The ring is restricted to the operations below (restrictToDataPath).
  static Result<std::unique_ptr<IoRing>> create(unsigned entries, unsigned buffers, unsigned maxBuffers = 0);
  // For a ring made with IORING_SETUP_R_DISABLED and not enabled yet: once enabled, it
  // takes only the operations IoRing queues, and no registration. Operations in a ring are
  // not system calls, so the shim's system call filter (common/syscall_filter.h) never
  // sees them: this is what keeps the ring from being the way around it. Public for its test.
  static Status restrictToDataPath(io_uring* ring);
  ~IoRing();
  IoRing(const IoRing&) = delete;
  IoRing& operator=(const IoRing&) = delete;

  // A read of up to kBufferSize bytes into a pool buffer; the completion names the buffer
  // (hasBuffer/bufferId), which the handler must give back with releaseBuffer. -ENOBUFS
  // when every buffer is lent out.
  void recv(int fd, CompletionHandler* handler);
  // Sends what the socket takes of [data, data + len) now, and never waits in the ring for
  // room (MSG_DONTWAIT): a short count, or -EAGAIN, says that the peer's buffers are full.
  // `more`: the caller sends or shuts down again right after (MSG_MORE), so the kernel
  // holds these bytes for that call's segment instead of sending a segment of their own.
  void send(int fd, const void* data, size_t len, CompletionHandler* handler, bool more = false);
  // connect(fd, address): the completion's result is 0 or -errno. `address` must stay valid
  // until the next wait.
  void connect(int fd, const sockaddr* address, socklen_t length, CompletionHandler* handler);
  // Asks the kernel to cancel the handler's operation; its completion still comes (with
  // -ECANCELED, or with its result if it had finished).
  void cancel(CompletionHandler* handler);
  // close(fd), made with the next submit; nothing comes back. The fd is the ring's from
  // now on: the caller must not touch it again.
  void close(int fd);
  // One completion when fd is readable; at once if it already is when the poll is made.
  void pollIn(int fd, CompletionHandler* handler);

  static bool hasBuffer(uint32_t flags);
  // For a recv that brought bytes: the socket had more queued when it returned, bytes or
  // the peer's FIN (TCP counts a queued FIN as one more byte to read).
  static bool moreQueued(uint32_t flags);
  static uint16_t bufferId(uint32_t flags);
  const char* buffer(uint16_t id) const { return buffers_ + size_t{id} * kBufferSize; }
  void releaseBuffer(uint16_t id);
  // Buffers in the pool; of them, those lent to completed reads and not given back yet,
  // and those the kernel holds for reads to come.
  unsigned bufferCount() const { return bufferCount_; }
  unsigned buffersLent() const { return buffersLent_; }
  unsigned buffersFree() const { return bufferCount_ - buffersLent_; }
  // For a read that failed with -ENOBUFS, before it is made again: true when a buffer will
  // be there for it, counting those promised to other such reads since the last dispatch,
  // after growing the pool by its initial size if it must (up to maxBuffers; the new
  // buffers cost memory once bytes were read into them). False when the pool is full-grown
  // and every buffer is lent or promised.
  bool reserveBuffer();

  // Submits what was queued and waits up to timeoutMs (-1: without limit) for at least one
  // completion. Fails only on an error the ring cannot go on after.
  Status wait(int timeoutMs);
  // Hands every completion that is there to its handler. Handlers may queue new operations.
  void dispatch();

 private:
  IoRing() = default;
  io_uring_sqe* nextSqe();

  std::unique_ptr<io_uring> ring_;
  bool ringReady_ = false;
  io_uring_buf_ring* bufferRing_ = nullptr;
  size_t bufferRingBytes_ = 0;
  char* buffers_ = nullptr;
  unsigned bufferCount_ = 0;   // buffers made so far: ids [0, bufferCount_)
  unsigned bufferStep_ = 0;    // the initial count, also what addBuffers adds
  unsigned maxBuffers_ = 0;    // the ring's size, and the memory mapped for buffers
  unsigned buffersLent_ = 0;   // handed to a completion and not released yet
  unsigned buffersPromised_ = 0;  // to reads made again since the last dispatch
  bool addBuffers();
};

}  // namespace connectable
