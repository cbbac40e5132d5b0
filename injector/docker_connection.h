// DockerConnection: one keep-alive HTTP/1.1 connection to the Engine API over a UNIX socket
// or TCP, with POCO inside. Internal to the injector. Not thread-safe: one owning thread,
// except shutdown(), which any thread may call to wake a blocked read.
#pragma once

#include <chrono>
#include <istream>
#include <memory>
#include <mutex>
#include <string>

#include "common/status.h"
#include "injector/docker_endpoint.h"

namespace connectable {

class DockerConnection {
 public:
  // TCP only: a peer that vanished without a reset (a host gone, a path cut) is found by
  // keepalive probes, after idle + interval * count: 60 s, where the kernel's defaults take
  // 2 h 11 min, during which the event stream would wait, hearing nothing.
  struct KeepAlive {
    std::chrono::seconds idle{30};
    std::chrono::seconds interval{10};
    int count = 3;
  };
  struct Timeouts {
    std::chrono::milliseconds connect{5000};
    std::chrono::milliseconds io{30000};  // zero: wait forever (the event stream)
    KeepAlive keepAlive{};
  };
  struct Reply {
    int status = 0;
    std::string body;
  };

  DockerConnection(DockerEndpoint endpoint, Timeouts timeouts);
  ~DockerConnection();
  DockerConnection(const DockerConnection&) = delete;
  DockerConnection& operator=(const DockerConnection&) = delete;

  // GET with the whole body read; (re)connects as needed.
  Result<Reply> get(const std::string& pathAndQuery);

  // GET whose body is then read incrementally from *body (a POCO stream: reads may throw
  // Poco::Exception, which the caller must catch). Valid until the next call or close().
  Result<int> openStream(const std::string& pathAndQuery, std::istream** body);

  // Wakes a read blocked on this connection (it then sees EOF), and every later one. Any thread.
  void shutdown();
  // Cuts the request under way, and every later one until clearInterrupt(). Any thread.
  void interrupt();
  // The owner, before a new request: an interrupt() before this call no longer applies.
  void clearInterrupt();
  void close();
  const DockerEndpoint& endpoint() const { return endpoint_; }

 private:
  class Session;
  void rememberFd();

  DockerEndpoint endpoint_;
  Timeouts timeouts_;
  std::unique_ptr<Session> session_;
  std::mutex fdMutex_;  // guards fd_, shutdown_ and interrupted_ against the owner closing the socket
  int fd_ = -1;
  bool shutdown_ = false;
  bool interrupted_ = false;  // until clearInterrupt(): also cuts a connection a retry makes
};

// "no such container" and the like: Docker's {"message": "..."} error body, or the raw text.
std::string dockerErrorMessage(const std::string& body);

// Reads `in` to its end into *out, but at most `limit` bytes: false (with what came) when
// the body is longer. A broken or hostile daemon's endless body must not take our memory.
bool readAtMost(std::istream& in, size_t limit, std::string* out);
// The most a reply we parse may take (a list of some twenty thousand containers fits;
// past about 16 MiB of such a list, docker_json refuses to parse it anyway, see
// kMaxParsedBytes), and the most of an error's body we keep for its message.
inline constexpr size_t kMaxReplyBytes = size_t{32} << 20;
inline constexpr size_t kMaxErrorBodyBytes = size_t{64} << 10;

}  // namespace connectable
