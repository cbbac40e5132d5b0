// DockerClient: the injector's read-only view of the Docker Engine API: version negotiation,
// the running containers, one container's details. Not thread-safe: one thread uses it (the
// worker of DockerCalls, never the event loop's), but for interrupt(). Calls block; each read
// for at most the request timeout. Errors are Status, never exceptions.
//
// Measured (docs/docker-events.md): GET /containers/{id}/json blocks while the daemon starts
// that container (0.5-0.9 s here), so do not inspect on `network connect`; inspect on `start`.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "injector/docker_api_version.h"
#include "injector/docker_container.h"
#include "injector/docker_endpoint.h"

namespace connectable {

class DockerConnection;

class DockerClient {
 public:
  struct Options {
    std::chrono::milliseconds connectTimeout{5000};
    std::chrono::milliseconds requestTimeout{30000};
  };

  explicit DockerClient(DockerEndpoint endpoint);
  DockerClient(DockerEndpoint endpoint, Options options);
  ~DockerClient();
  DockerClient(const DockerClient&) = delete;
  DockerClient& operator=(const DockerClient&) = delete;

  // GET /version (unversioned) and choose the API version; call again after a daemon restart.
  Status negotiate();
  bool negotiated() const { return negotiated_; }
  // REQUIRES: negotiate() succeeded.
  DockerApiVersion apiVersion() const { return apiVersion_; }
  const std::string& serverVersion() const { return serverVersion_; }  // "20.10.24+dfsg1"
  const DockerEndpoint& endpoint() const { return endpoint_; }

  // Running containers (`docker ps`), and the rows that did not parse; with `all`, stopped
  // and created ones too (`docker ps -a`). REQUIRES: negotiate() succeeded.
  Result<ContainerList> listContainers(bool all = false);

  // One container by id (or name). A 404 is the error "no such container: <id>", and sets
  // *notFound when given, so a caller can tell "already gone" from a failure.
  // REQUIRES: negotiate() succeeded.
  Result<ContainerInfo> inspectContainer(const std::string& id, bool* notFound = nullptr);

  // The daemon's own ID (GET /info "ID"): kept in its data root, so the same across its
  // restarts and whichever socket or address reaches it. REQUIRES: negotiate() succeeded.
  Result<std::string> daemonId();

  // Cuts the call under way, from any thread: it fails, and the next one connects afresh.
  void interrupt();
  // Before a new call: an interrupt() that came earlier no longer applies.
  void clearInterrupt();

 private:
  Result<std::string> getJson(const std::string& path, const std::string& what,
                              bool* notFound = nullptr);

  DockerEndpoint endpoint_;
  Options options_;
  std::unique_ptr<DockerConnection> connection_;
  bool negotiated_ = false;
  DockerApiVersion apiVersion_;
  std::string serverVersion_;
};

// What GET /version says: the API version chosen from its ApiVersion and MinAPIVersion
// (negotiateDockerApiVersion), and the daemon's own version. Pure; any thread.
struct DockerVersion {
  DockerApiVersion api;
  std::string server;  // "20.10.24+dfsg1", or empty when the daemon did not say
};
Result<DockerVersion> parseDockerVersion(std::string_view json);
// GET /info's "ID", which must be there. Pure; any thread.
Result<std::string> parseDockerInfoId(std::string_view json);

// The versioned GET /events path for container and network events, optionally replaying
// from `sinceNanos` (ns since the epoch, as in DockerEvent::timeNano) so a reconnect misses
// nothing.
std::string dockerEventsPath(DockerApiVersion version, int64_t sinceNanos = 0);

// A container id or name safe to put in a URL path: [A-Za-z0-9_.-], at most 128 bytes.
bool validContainerRef(const std::string& ref);

}  // namespace connectable
