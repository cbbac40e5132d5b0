// MetricsEndpoint: the injector's GET /metrics (--metrics-listen, off by default): its own
// counters plus every shim's metrics, gathered from their control sockets, each sample
// labelled with the container it belongs to.
// Runs on the injector's event loop thread; not thread-safe.
//
// The gather never blocks the loop: the shims are asked without blocking, 32 at a time
// (scrapeShims), each given `shimTimeout` (default 500 ms) to answer, and all of them 8 s
// (under Prometheus's default scrape timeout); a shim that did not answer in time shows as
// connectable_shim_up 0. Scrapes that arrive during a gather get its answer, held once
// for all of them.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/http_server.h"
#include "common/socket_address.h"
#include "injector/injector.h"

namespace connectable {

// "127.0.0.1:9100", "[::1]:9100": an IP literal and a port.
Result<SocketAddress> parseListenAddress(const std::string& text);

class MetricsEndpoint {
 public:
  // REQUIRES: loop and injector outlive this object.
  MetricsEndpoint(EventLoop& loop, Injector& injector, Millis shimTimeout = Millis(500));
  ~MetricsEndpoint();

  Status listen(const SocketAddress& address);
  uint16_t port() const { return server_.tcpPort(); }

  // The injector's own metrics, without the shims'.
  std::string injectorMetrics() const;

 private:
  void gather(const HttpServer::Respond& respond);

  EventLoop& loop_;
  Injector& injector_;
  Millis shimTimeout_;
  HttpServer server_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  // The scrapes waiting for the gather under way; null when none is.
  std::shared_ptr<std::vector<HttpServer::Respond>> waiting_;
};

}  // namespace connectable
