// ShimStatus: what a shim says about itself — JSON for tools (GET /status on the control
// socket), Prometheus text for scrapers (GET /metrics), plain text for people (the status
// port, `connectable-shim status`). Built on demand from the live proxy and resolver.
// Runs on the shim's event loop thread; not thread-safe.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "common/http_server.h"
#include "common/io_ring.h"
#include "common/srv_resolver.h"
#include "shim/proxy.h"

namespace connectable {

struct ShimIdentity {
  std::string name;      // --name
  std::string version;
  pid_t pid = 0;
  Clock::time_point started;
  std::chrono::system_clock::time_point startedWall;
  uint16_t statusPort = 0;
  std::string dataPath;  // "io_uring" or "epoll"
  const IoRing* ring = nullptr;  // the io_uring data path's, for its read buffer pool
};

class ShimStatus {
 public:
  // REQUIRES: proxy (and resolver, when given) outlive this object.
  ShimStatus(const Proxy& proxy, const ServiceResolver* resolver, ShimIdentity identity);

  std::string json() const;
  std::string metrics() const;
  std::string text() const;

  // The system call filter (common/syscall_filter.h): installed, or why not; and each call
  // number it refused.
  void setSyscallFilter(bool on, std::string whyNot = "");
  void noteRefusedSyscall(long number) { refusedSyscalls_.push_back(number); }

  // The control socket: /status (JSON; ?format=text for the table), /metrics, else 404.
  void serveControl(const HttpRequest& request, const HttpServer::Respond& respond) const;
  // The status port: plain text whatever the path.
  void serveStatusPort(const HttpRequest& request, const HttpServer::Respond& respond) const;

 private:
  // The resolver's state of a name target (TTL, next lookup); nullptr for literals.
  const Resolution* lookupOf(const Target& target) const;

  const Proxy& proxy_;
  const ServiceResolver* resolver_;
  ShimIdentity id_;
  bool syscallFilter_ = false;
  std::string syscallFilterWhyNot_ = "not installed yet";
  std::vector<long> refusedSyscalls_;
};

// "1h2m3s", "4m0s", "12s": an age for people.
std::string formatAge(double seconds);

}  // namespace connectable
