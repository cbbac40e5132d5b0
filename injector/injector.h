// Injector: watches Docker and keeps exactly one shim in every running container that asks
// for one. Subscribes to events first, then lists and reconciles, so nothing is missed;
// injects as early as the container's namespace exists (found through its cgroup, before
// Docker reports it started), with `start` + inspect as the always-correct fallback.
// Runs on one event loop thread; not thread-safe.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/event_loop.h"
#include "injector/docker_client.h"
#include "injector/docker_event_stream.h"
#include "injector/label_parser.h"
#include "injector/shim_supervisor.h"

namespace connectable {

struct InjectorOptions {
  SupervisorOptions supervisor;
  bool stopShimsOnExit = false;
  Millis earlyPollInterval{2};     // how often a starting container's cgroup is read
  Millis earlyPollWindow{10000};   // for how long after its create event
  Millis reconnectMin{200};
  Millis reconnectMax{5000};
  Millis reconcileRetryMin{100};   // after a failed container list, while the stream is up
  Millis reconcileRetryMax{10000};
};

struct InjectorCounters {
  uint64_t containersWatched = 0;  // with connect labels, now
  uint64_t injectedEarly = 0;      // before the start event
  uint64_t injectedOnStart = 0;    // at start, or at reconcile
  uint64_t badLabels = 0;
  uint64_t dockerReconnects = 0;
  // From a container's create event to its shim being spawned, in seconds; containers
  // found by reconcile (no create event seen) are not counted.
  static const std::vector<double>& latencyBounds();
  std::vector<uint64_t> latencyCounts = std::vector<uint64_t>(latencyBounds().size() + 1);
  double latencySum = 0;
  void recordLatency(double seconds);
};

class Injector : public DockerEventSink {
 public:
  Injector(EventLoop& loop, const DockerEndpoint& endpoint, InjectorOptions options);
  ~Injector() override;

  // Adopts shims left by a previous run, then connects to Docker (retrying in the background).
  Status start();
  // SIGTERM: stop watching; leave the shims serving unless told to stop them. onDone runs
  // once that is over. Idempotent: a later call changes nothing and its onDone never runs.
  void shutdown(std::function<void()> onDone);

  const InjectorCounters& counters() const { return counters_; }
  ShimSupervisor& supervisor() { return supervisor_; }

  // DockerEventSink
  void onDockerStreamConnected() override;
  void onDockerEvent(const DockerEvent& event) override;
  void onDockerEventMalformed(const Status& why) override;
  void onDockerStreamEnded(const Status& why) override;

 private:
  struct Tracked {
    std::string name;
    ContainerRequest request;
    EventLoop::TimerId pollTimer = 0;
    Clock::time_point pollUntil;
    Clock::time_point createdAt;
    bool sawCreate = false;  // createdAt is the create event's time
  };

  void connect();
  void scheduleReconnect();
  void reconcile();
  // Nothing else would list again while the event stream stays up.
  void scheduleReconcileRetry();
  void cancelReconcileRetry();
  Tracked* track(const std::string& id, const std::map<std::string, std::string>& attributes, const std::string& name);
  void beginEarlyWatch(const std::string& id);
  // Counts create -> shim started once per create event (restarts are not measured).
  void recordInjectionLatency(Tracked& t);
  void stopEarlyWatch(Tracked& t);
  void pollEarly(const std::string& id);
  void injectFromInspect(const std::string& id);
  void waitForShims();

  EventLoop& loop_;
  DockerEndpoint endpoint_;
  InjectorOptions options_;
  DockerClient client_;
  std::unique_ptr<DockerEventStream> stream_;
  ShimSupervisor supervisor_;
  std::map<std::string, Tracked> tracked_;
  unsigned long hostNetnsInode_ = 0;
  Millis reconnectDelay_;
  int64_t lastEventNanos_ = 0;  // of the last event seen: the next stream replays from there
  Clock::time_point streamConnectedAt_{};
  static constexpr Millis kStreamLasted{10000};  // a stream up this long resets the back-off
  EventLoop::TimerId reconnectTimer_ = 0;
  Millis reconcileRetryDelay_;
  EventLoop::TimerId reconcileRetryTimer_ = 0;
  bool shuttingDown_ = false;
  bool everConnected_ = false;
  std::function<void()> onShutdownDone_;
  InjectorCounters counters_;
};

}  // namespace connectable
