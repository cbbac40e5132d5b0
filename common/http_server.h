// HttpServer: answers small HTTP/1.0 GET requests on the event loop, for control sockets,
// status ports and /metrics. Not thread-safe: everything runs on the loop's thread.
//
// Each client is a small handler with a bounded request (anything longer is answered 400)
// and a deadline (a silent client is closed), so a slow or hostile client never blocks the
// loop nor grows memory. One request per connection; the answer ends with a close.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/event_loop.h"
#include "common/socket_address.h"
#include "common/status.h"

namespace connectable {

struct HttpRequest {
  std::string method;  // "GET", "HEAD"
  std::string path;    // without the query: "/status"
  std::string query;   // after '?', raw
};

struct HttpResponse {
  int code = 200;
  std::string contentType = "text/plain; charset=utf-8";
  // Never changed once made: the clients given one answer (a /metrics gather's) share it.
  std::shared_ptr<const std::string> body = std::make_shared<const std::string>();

  static HttpResponse text(int code, std::string body);
  static HttpResponse json(std::string body);
  // Prometheus text exposition format 0.0.4.
  static HttpResponse metrics(std::string body);
};

class HttpServer {
 public:
  // `respond` may be called later (after a gather), at most once; after the client went
  // away it does nothing. The client keeps the response's body, not a copy of it.
  using Respond = std::function<void(const HttpResponse&)>;
  using Handler = std::function<void(const HttpRequest&, Respond respond)>;

  struct Options {
    size_t maxRequest = 4096;   // request line and headers
    Millis timeout{2000};       // from accept to the last byte of the answer
    // From accept to the end of the request, within `timeout`: a client that holds a slot
    // without asking (one of maxClients) is closed soon, even where answers may take long.
    Millis requestTimeout{2000};
    size_t maxClients = 32;     // more wait in the kernel's backlog
    // UNIX listeners: peers whose uid is not listed get 403 (the socket's mode 0600
    // already keeps others out; this holds even if the mode were changed).
    std::vector<uid_t> allowedUids;
  };

  // REQUIRES: loop outlives the server.
  HttpServer(EventLoop& loop, Handler handler, Options options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // A UNIX socket at `path`, mode 0600 (a stale socket there is replaced; any other
  // file is an error). Call while privileged: the listening fd keeps working afterwards.
  Status listenUnix(const std::string& path);
  // A TCP listener, created in the calling thread's current network namespace.
  // On failure, *errorCode (if given) is the errno of the bind or listen.
  Status listenTcp(const SocketAddress& address, int* errorCode = nullptr);
  // The port listenTcp bound (useful with port 0); 0 if none.
  uint16_t tcpPort() const { return tcpPort_; }

  size_t clients() const { return clients_.size(); }

 private:
  class Listener;
  class Client;
  void accept(Listener& listener);
  void finished(Client* client);
  // The listeners leave the loop while no client can be taken (all slots busy, or no fd
  // to accept with), so that a waiting client does not make a level-triggered listener
  // spin; they come back when a client finishes or the retry timer fires.
  void pauseAccepting();
  void resumeAccepting();

  EventLoop& loop_;
  Handler handler_;
  Options options_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::map<Client*, std::unique_ptr<Client>> clients_;
  uint16_t tcpPort_ = 0;
  bool acceptPaused_ = false;
  EventLoop::TimerId retryTimer_ = 0;  // after running out of fds
  bool shortageLogged_ = false;        // said once until an accept succeeds again
};

// Parses "GET /path?query HTTP/1.x" from the head of a request. Pure function.
Result<HttpRequest> parseHttpRequestLine(const std::string& head);

}  // namespace connectable
