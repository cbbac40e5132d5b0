// DockerEventStream: GET /events (container and network events) delivered to the injector's
// event loop. Threading: a dedicated reader thread blocks on the HTTP stream, parses each
// line and queues it; an eventfd wakes the loop, and every sink callback runs on the loop's
// thread. Construct, start, stop and destroy on the loop's thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <variant>

#include "common/event_loop.h"
#include "common/status.h"
#include "injector/docker_api_version.h"
#include "injector/docker_connection.h"
#include "injector/docker_endpoint.h"
#include "injector/docker_event.h"

namespace connectable {

struct DockerEventLine;

// What the stream tells its owner, always on the loop's thread, in stream order.
// REQUIRES: callbacks do not destroy the stream; use EventLoop::defer for that.
class DockerEventSink {
 public:
  virtual ~DockerEventSink() = default;
  // The daemon accepted the subscription: events from now on will arrive, so this is the
  // moment to list containers and reconcile.
  virtual void onDockerStreamConnected() {}
  virtual void onDockerEvent(const DockerEvent& event) = 0;
  // A line that did not parse; the stream has logged it and goes on with the next line.
  virtual void onDockerEventMalformed(const Status& /*why*/) {}
  // The stream is over (daemon gone, connection cut, HTTP error, queue overflow): no more
  // calls follow. Reconnect with back-off, passing lastEventNanos() as sinceNanos.
  virtual void onDockerStreamEnded(const Status& why) = 0;
};

class DockerEventStream : private IoHandler {
 public:
  struct Options {
    int64_t sinceNanos = 0;                      // replay events from then (0: only new ones)
    std::chrono::milliseconds connectTimeout{5000};
    size_t maxQueued = 100'000;                  // beyond: end the stream rather than grow
    size_t maxQueuedBytes = size_t{64} << 20;    // the same, counting the events' lines
    size_t maxLineBytes = 1 << 20;               // longer lines are reported malformed
    // tcp:// only: how soon a daemon that vanished without a word is noticed; the stream
    // is otherwise silent for as long as Docker is.
    DockerConnection::KeepAlive keepAlive;
  };

  DockerEventStream(EventLoop& loop, DockerEndpoint endpoint, DockerApiVersion version,
                    DockerEventSink& sink);
  DockerEventStream(EventLoop& loop, DockerEndpoint endpoint, DockerApiVersion version,
                    DockerEventSink& sink, Options options);
  ~DockerEventStream() override;  // stop()
  DockerEventStream(const DockerEventStream&) = delete;
  DockerEventStream& operator=(const DockerEventStream&) = delete;

  // Registers the eventfd with the loop and starts the reader. REQUIRES: called once.
  Status start();
  // Cuts the connection and joins the reader; no sink call happens after it returns.
  // Idempotent.
  void stop();
  // For process exit: cuts the connection and stops delivering, but does not wait for the
  // reader, which may sit in a connect() to a daemon too busy to accept. The caller must
  // then leak the stream (release its owner), since the reader may still touch it.
  void abandon();

  bool ended() const { return ended_; }
  // timeNano of the last event delivered to the sink (0 if none): `since` for a reconnect.
  int64_t lastEventNanos() const { return lastEventNanos_; }
  uint64_t malformedCount() const { return malformed_; }

 private:
  struct Connected {};
  struct Malformed { Status why; };
  struct Ended { Status why; };
  using Item = std::variant<Connected, DockerEvent, Malformed, Ended>;

  // IoHandler: the eventfd is readable.
  void onIo(uint32_t events) override;

  void readerMain();               // the reader thread
  Status readLines(std::istream& body);
  // Reader thread: queues what a line says; false when the queue overflowed.
  bool deliver(const DockerEventLine& line);
  // Reader thread; false when the queue overflowed. `bytes`: the size of what it came from.
  bool push(Item item, size_t bytes = 0);

  EventLoop& loop_;
  DockerEndpoint endpoint_;
  DockerApiVersion version_;
  DockerEventSink& sink_;
  Options options_;
  int eventFd_ = -1;
  std::unique_ptr<DockerConnection> connection_;
  std::thread reader_;
  std::atomic<bool> stopping_{false};

  std::mutex queueMutex_;          // guards queue_, queuedBytes_ and overflowed_
  std::deque<Item> queue_;
  size_t queuedBytes_ = 0;         // of the lines behind the queued events
  bool overflowed_ = false;

  // Loop thread only.
  bool ended_ = false;
  int64_t lastEventNanos_ = 0;
  uint64_t malformed_ = 0;
};

}  // namespace connectable
