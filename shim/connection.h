// Connection: one client connection and its upstream, from accept to close.
// States: Waiting (for a port's first DNS answer) → Connecting (trying backends in the
// balancer's order) → Open (moving bytes both ways) → Closed (deleted after the loop batch,
// and after the last of its io_uring operations has completed). Open goes back to
// Connecting when its backend hung up before either side said a word (failOver).
//
// Open has two data paths. With an io_uring in the loop, each direction reads into a pool
// buffer and sends it on, one operation in flight at a time (bytes keep their order). A
// read that fills a whole buffer is bulk: the connection then leaves the ring for
// readiness (epoll) and moves bytes with splice through a pipe lent by the pool, without
// copying them. A send that the peer does not take whole (it stopped reading) leaves the
// ring too: nothing would read the other side meanwhile, and its reset would go unseen.
// A read that finds the buffer pool empty grows it and tries again; once the pool is
// full-grown, that connection leaves the ring too. Without a ring, it starts there.
// A connection that left goes back to the ring once its traffic is small again: a pooled
// connection that carried one large answer must not pay the epoll path for the rest of
// its life.
// Owned by Proxy; runs on the EventLoop's thread; not thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/event_loop.h"
#include "common/socket_address.h"
#include "shim/backend.h"
#include "shim/pipe_pool.h"
#include "shim/proxy.h"

namespace connectable {

class ListenPort;
class Proxy;

class Connection {
 public:
  Connection(Proxy& proxy, ListenPort& port, int clientFd, const SocketAddress& peer);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Starts connecting, or waits for the port's first DNS answer.
  void start();
  // Called by the port when its backends changed while this connection was waiting.
  void backendsReady();
  // `failure`: what to count, for an abort that is a failure (kCount: none).
  void close(const char* reason, bool abort, FailureReason failure = FailureReason::kCount);
  bool closed() const { return state_ == State::Closed; }

 private:
  enum class State { Waiting, Connecting, Open, Closed };
  static constexpr Millis kClientMayHaveLeft{1};
  // How long a client has to find the answer before the reset that followed it (see
  // resetClientAfterItsAnswer): an active sender polls within microseconds.
  static constexpr Millis kResetAfterAnswer{100};
  // How long such a client may take none of that answer before it is reset anyway: one
  // blocked in a send that only the reset would end, or one that stopped reading.
  static constexpr Millis kAnswerStall{1000};
  // Quiet pumps in a row (see returnToRingIfQuiet) before an epoll connection goes back to
  // the ring. A request and its answer make two: one small exchange is not enough, so a
  // connection whose answers are all large, or every other one, does not go back and
  // forth (each round trip costs about six system calls).
  static constexpr int kQuietPumpsBeforeRing = 8;
  struct Direction;

  // The upstream's connect, made through the ring.
  struct ConnectOp : CompletionHandler {
    Connection* conn = nullptr;
    bool inFlight = false;
    void onCompletion(int result, uint32_t flags) override;
  };

  // One io_uring operation of a direction: a read from `from` or a send to `to`.
  struct RingOp : CompletionHandler {
    Connection* conn = nullptr;
    Direction* dir = nullptr;
    bool send = false;
    bool inFlight = false;
    void onCompletion(int result, uint32_t flags) override;
  };

  // One socket of the connection, as epoll sees it.
  struct Side : IoHandler {
    Connection* conn = nullptr;
    int fd = -1;
    bool readable = false;
    bool writable = false;
    bool upstream = false;
    bool peerClosed = false;  // epoll reported RDHUP/HUP/ERR: read on until EOF or error
    bool peerFailed = false;  // epoll reported ERR (a reset): no FIN to send bytes along with
    // Reset, and the error taken by a call that is not a read: SO_ERROR at the connect
    // (ECONNRESET), or a failed write. The EOF that follows its last bytes stands for that
    // reset, and is passed on as one once they have been (passEof).
    bool resetUnseen = false;
    // The last send to this side went with MSG_MORE, waiting for the FIN behind it: an abort
    // pushes it out first, or the close would drop bytes already taken from the other side.
    bool corked = false;
    // epoll reported EPOLLPRI: TCP urgent data is queued. Reads stop short at its mark and
    // splice does not pass it at all, so read on with recv until EAGAIN.
    bool urgent = false;
    void onIo(uint32_t events) override;
  };

  // Bytes flowing from one side to the other through a pipe lent by the pool.
  struct Direction {
    Side* from = nullptr;
    Side* to = nullptr;
    Pipe pipe;
    size_t inPipe = 0;
    bool eof = false;       // `from` said it will send no more
    bool shutDown = false;  // and `to` was told so (shutdown SHUT_WR)
    bool bulk = false;      // the last read filled a whole copy buffer: splice, not copy
    uint64_t bytes = 0;
    RingOp read;
    RingOp write;
    // `buffer` is this direction's until its bytes are sent: read before the backend
    // answered, in flight, or the rest of a send cancelled on leaving the ring.
    bool holdsBuffer = false;
    uint16_t buffer = 0;       // a ring pool buffer
    size_t sending = 0;        // bytes in it
    size_t sent = 0;           // of which sent (a send cancelled part-way leaves a rest)
    // The read that filled it left more queued behind: bytes, or the peer's FIN, which the
    // send then waits for (MSG_MORE) so that it goes out in their segment.
    bool moreQueued = false;
    bool starved = false;  // a read found the pool empty before the backend answered
    // `from` is no longer read: `to` reset while `from` was still sending and the other
    // direction still had its words to pass on (writeFailed), or the backend reset after
    // its answer (resetClientAfterItsAnswer).
    bool refused = false;
    // Read from `from` and not sent on yet: in the pipe, or in a ring buffer.
    bool holds() const { return inPipe > 0 || holdsBuffer; }
    // Anything read from `from` at all: sent on, or held, or lost with a send that found
    // `to` reset (refused: its buffer is released before writeFailed, uncounted).
    bool readAny() const { return bytes != 0 || holds() || refused; }
  };

  void onClientIo(uint32_t events);
  void onUpstreamIo(uint32_t events);
  void leaveWaitingList();
  void connectNext();
  void connectFailed(const char* why, FailureReason reason);
  // The passive health of a connect that failed (lastError_ says why), and its log lines.
  void backendFailed(Clock::time_point now);
  // socket() for the backend failed for want of fds or kernel memory (`err`): try again
  // shortly.
  void waitForDescriptor(int err);
  void established();
  void pumpAll();
  // An epoll event on the client of an open connection: pumps, then aborts if the client
  // has an error the pump left unread.
  void onOpenClientIo(uint32_t events);
  // Moves what it can; returns false when the connection is no longer open (aborted, or
  // failed over to another backend).
  bool pump(Direction& d);
  // Small messages: recv into the stack, send on; what the other side does not take goes
  // into the pipe. 1 moved something, 0 must wait, -1 aborted.
  int copyThroughStack(Direction& d);
  // The fallback when no pipe can be had: 1 moved something, 0 must wait, -1 aborted.
  int copyWithoutPipe(Direction& d);
  // Abort both sides after a failed read from (write to) one, counting whose fault it was.
  void readFailed(const Direction& d);
  // The backend has just ended its side (a FIN, or a reset). When that was without a byte
  // to the client, within kHangUpWindow of the connect, and for a FIN before the client
  // said anything, it hung up on a client it never served: counted against its health as
  // a failed connect is (once per connection), and true.
  bool hungUpWithoutAByte(bool reset);
  // After such a hang-up: when the client has not said a word either (it waits for a
  // greeting, as MySQL's and SMTP's clients do), nothing was passed on either way, and the
  // client goes to the next backend of its order, as after a failed connect; true then
  // (the connection is Connecting again, or closed). False when there is none left, or
  // the client spoke: what it said may have been acted on, and is not sent twice.
  bool failOver();
  // Aborts both sides after a failed write to d.to, unless the backend reset while the
  // client was still sending and may have answered before that: then only `d` stops (see
  // Direction::refused), and the answer goes on, then the reset. The connection is closed
  // when this returns, or `d` refused.
  void writeFailed(Direction& d);
  // The backend reset after words of its own, and the client may still be sending, or
  // has not taken them all: both directions stop, and the client is reset once its kernel
  // has taken them, kResetAfterAnswer later at the earliest (watchAnswer).
  void resetClientAfterItsAnswer(FailureReason failure);
  // While the client of a backend that reset is passed its answer (the client refused by
  // writeFailed, or resetClientAfterItsAnswer): every kResetAfterAnswer, resets it once its
  // kernel has taken all of it, or when none of it moved for kAnswerStall.
  void watchAnswer();
  // A reset read from the backend while bytes it sent before it are still held here (the
  // client not taking them yet): true, and d has ended, with the reset passed on after
  // them, as without a proxy (passEof). False: readFailed as usual.
  bool resetBehindHeldBytes(Direction& d);
  static int queuedToSend(const Side& s);  // bytes its kernel has not had acknowledged (SIOCOUTQ)
  // The backend's socket may still bring bytes for the client, or holds some here.
  bool backendMaySayMore() const;
  // What a failed read from or write to the backend counts as: a hang-up, or an error.
  FailureReason backendFailure();
  void backendTimedOut();  // a read or write failed with ETIMEDOUT
  void countBytes(Direction& d, uint64_t n);
  // `d` has ended and all of it was passed on: `to` is told. True when both directions have.
  bool passEof(Direction& d);
  // The timer of an open connection: the idle timeout, and before it, the moment its
  // upstream socket has lived --tcp-keepalive and gets TCP keepalive.
  void armTimer();
  void onTimer();
  void turnOnKeepalive();
  // Bytes read from one side and not handed to the other yet: held here, or still unread
  // in a socket.
  bool bytesUndelivered() const;
  static bool hasUnread(const Side& s);  // bytes wait in its socket (FIONREAD)
  void closeUpstreamSocket();
  // The io_uring data path.
  // `clientMayHaveLeft`: the connect took long enough for the client to give up meanwhile,
  // unseen when its read had ended: checked before what it sent goes on.
  void enterRing(bool clientMayHaveLeft);
  void ringRead(Direction& d);
  bool retryStarvedRead(Direction& d);  // after ENOBUFS; false: the pool is full-grown and empty
  void onRingConnected(int result);
  void onRingRead(Direction& d, int result, uint32_t flags);
  void ringForward(Direction& d);
  void releaseRingBuffer(Direction& d);
  void onRingWritten(Direction& d, int result);
  void ringEof(Direction& d);
  void leaveRing();
  void cancelRingOps();
  void finishLeavingRing();
  // After a pump on the epoll path that moved `moved` bytes: counts it as quiet when it
  // moved less than a read buffer and left nothing behind (no bytes held here or unread in
  // a socket, no EOF, no urgent data), and goes back to the ring after enough of them.
  void returnToRingIfQuiet(uint64_t moved);
  void finishClose();

  Proxy& proxy_;
  ListenPort& port_;
  State state_ = State::Waiting;
  SocketAddress peer_;
  Side client_;
  Side upstream_;
  Direction toBackend_;
  Direction toClient_;
  std::vector<std::shared_ptr<Backend>> order_;
  size_t nextAttempt_ = 0;
  std::shared_ptr<Backend> backend_;  // being connected to, or connected
  EventLoop::TimerId timer_ = 0;
  bool inRing_ = false;       // on the io_uring path (from the start, when the loop has a ring)
  ConnectOp connectOp_;
  bool leavingRing_ = false;  // no new reads; epoll takes over once nothing is in flight
  int ringOps_ = 0;           // operations in flight; the object lives until they complete
  int quietPumps_ = 0;        // on the epoll path with a ring: see returnToRingIfQuiet
  Clock::time_point lastActivity_;
  Clock::time_point attemptStarted_;  // of the connect to backend_, for passive health and keepalive
  bool keepaliveOn_ = false;          // on the upstream socket (see turnOnKeepalive)
  bool hungUp_ = false;               // hungUpWithoutAByte counted this connection
  bool countedEstablished_ = false;   // in the port's connections_total (once, failovers or not)
  bool answerPending_ = false;        // connected to a penalized backend that has not served yet
  // resetClientAfterItsAnswer: the backend's reset, which the client gets next, counts as
  // resetFailure_; queuedToClient_, what its kernel had not taken at the last look.
  FailureReason resetFailure_ = FailureReason::kCount;
  int queuedToClient_ = 0;
  Clock::time_point openedAt_{};      // when the backend's connect completed
  Clock::time_point fdWaitStarted_{};  // since when socket() finds no fd; epoch: it does
  std::string lastError_;
};

}  // namespace connectable
