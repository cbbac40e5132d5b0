// In-process TCP peers for integration tests: servers on a loopback port chosen by the
// kernel, each serving on its own thread, and blocking client helpers with timeouts.
// Each server object is used from the test thread; its internals are synchronized.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace connectable::testing {

// A listening server. `handler` runs on a new thread per connection, given the socket;
// the server closes it afterwards.
class TcpServer {
 public:
  using Handler = std::function<void(int fd)>;
  // Binds 127.0.0.1 (or the given address) with port 0 unless a port is given.
  explicit TcpServer(Handler handler, const std::string& ip = "127.0.0.1", uint16_t port = 0);
  // Serves on a socket already listening on 127.0.0.1, and owns it from now on.
  TcpServer(int listeningFd, Handler handler);
  ~TcpServer();
  TcpServer(const TcpServer&) = delete;
  TcpServer& operator=(const TcpServer&) = delete;

  uint16_t port() const { return port_; }
  std::string address() const;  // "127.0.0.1:PORT"
  int accepted() const { return accepted_.load(); }
  int open() const { return open_.load(); }
  void stop();  // closes the listener: later connects are refused

 private:
  void acceptLoop();

  Handler handler_;
  int listenFd_ = -1;
  uint16_t port_ = 0;
  std::string ip_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> accepted_{0};
  std::atomic<int> open_{0};
  std::thread acceptThread_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
};

// A listener that does not accept, with its accept queue already full: further SYNs are
// dropped, so a connect to it hangs until the connector's own timeout, or until open().
class SilentListener {
 public:
  SilentListener();
  ~SilentListener();
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;
  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // Stops being silent: the accept queue grows, and every connection queued or to come
  // (connectors whose SYNs were dropped retry within seconds) goes to `handler`, as with a
  // TcpServer.
  void open(TcpServer::Handler handler);

 private:
  int listenFd_ = -1;
  std::vector<int> fillers_;
  uint16_t port_ = 0;
  std::unique_ptr<TcpServer> server_;
};

// A loopback port the test holds: bound on 127.0.0.1 (SO_REUSEADDR), never listening.
// While held, connects to it are refused and the kernel hands it to no one else (neither
// to a bind to port 0 nor as a connect's source port), so a backend that must refuse stays
// refused, and a server the test starts on it (the shim, redis-server, busybox httpd, a
// TcpServer: all bind with SO_REUSEADDR, which may share a port no one listens on) finds it
// free. A port read from a socket and then closed may be taken by anyone in between.
class ReservedPort {
 public:
  ReservedPort();
  ~ReservedPort();
  ReservedPort(const ReservedPort&) = delete;
  ReservedPort& operator=(const ReservedPort&) = delete;
  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// Handlers
TcpServer::Handler echoHandler();                        // echoes until EOF, then closes
TcpServer::Handler echoThenSayHandler(std::string tail);  // echoes until EOF, then sends tail
TcpServer::Handler replyHandler(std::string reply);       // sends reply, then closes
TcpServer::Handler holdHandler();                         // reads and discards until EOF

// A listening UNIX stream socket at `path` (a fake daemon's); -1 on failure.
int listenUnix(const std::string& path, int backlog = 8);

// Client helpers. Each returns -1 / false on failure or timeout.
int connectTcp(const std::string& ip, uint16_t port, int timeoutMs = 2000);
bool writeAll(int fd, const void* data, size_t len, int timeoutMs = 10000);
// Reads until EOF; false on error or timeout. `out` gets what arrived.
bool readToEof(int fd, std::string* out, int timeoutMs = 10000);
// Waits for EOF or reset; returns milliseconds waited, or -1 on timeout.
int waitClosed(int fd, int timeoutMs);
// Closes `fd` with a reset (SO_LINGER 0), as a client or server that gives up does.
void closeWithReset(int fd);
// Sends `len` deterministic bytes (seeded) while receiving the echo, concurrently;
// returns true when exactly the same bytes came back. Hash of both sides reported.
struct EchoCheck {
  bool ok = false;
  uint64_t sentHash = 0;
  uint64_t receivedHash = 0;
  uint64_t received = 0;
  std::string error;
};
EchoCheck echoRoundTrip(int fd, uint64_t len, uint32_t seed, int timeoutMs = 60000);

}  // namespace connectable::testing
