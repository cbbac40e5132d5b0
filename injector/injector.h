// Injector: watches Docker and keeps exactly one shim in every running container that asks
// for one. Subscribes to events first, then lists and reconciles, so nothing is missed;
// injects as early as the container's namespace exists (found through its cgroup, before
// Docker reports it started), with `start` + inspect as the always-correct fallback.
// Runs on one event loop thread; not thread-safe. Docker's requests run on DockerCalls'
// worker, so a slow daemon delays only what needs its answer.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/event_loop.h"
#include "injector/docker_calls.h"
#include "injector/docker_event_stream.h"
#include "injector/label_parser.h"
#include "injector/problem_records.h"
#include "injector/shim_supervisor.h"

namespace connectable {

struct InjectorOptions {
  SupervisorOptions supervisor;
  DockerCalls::Options docker;
  bool stopShimsOnExit = false;
  // A starting container's cgroup is read every earlyPollInterval for earlyPollFastFor,
  // then less and less often (doubling, up to earlyPollSlowest), for earlyPollAfterConnect
  // after its network connect event (the start has begun), or earlyPollAfterCreate after
  // its create event (a container may be created long before it is started, if ever).
  Millis earlyPollInterval{2};
  Millis earlyPollFastFor{1000};
  Millis earlyPollSlowest{64};
  Millis earlyPollAfterConnect{10000};
  Millis earlyPollAfterCreate{2000};
  Millis reconnectMin{200};
  Millis reconnectMax{5000};
  Millis reconcileRetryMin{100};   // after a failed container list or inspect, while the stream is up
  Millis reconcileRetryMax{10000};
};

struct InjectorCounters {
  // With connect labels, now, running or not: those with a shim or to get one, and those
  // whose labels ask for one in vain (every label bad, or options with no connect.PORT
  // label), which `connectable status` lists too.
  uint64_t containersWatched = 0;
  uint64_t injectedEarly = 0;      // before the start event
  uint64_t earlyPolls = 0;         // cgroup reads looking for a starting container's init
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

  // Before it acts on any container, or adopts the shims its state dir records (the other
  // injector's, in a shared one), the injector asks the daemon for its ID and hands it to
  // `claim` (InjectorLock::claimDaemon). When `claim` fails, another injector watches this
  // daemon: this one stops at once, leaves every shim alone, and `onFailed` is told why.
  // REQUIRES: called before start().
  void claimDaemonWith(std::function<Status(const std::string& daemonId)> claim,
                       std::function<void(const Status&)> onFailed);

  // containersWatched is derived here, as `connectable status` lists them: the tracked ones
  // and those whose labels get them no shim (they have a row there too).
  InjectorCounters counters() const {
    InjectorCounters c = counters_;
    c.containersWatched = tracked_.size() + badLabelsReported_.size();
    return c;
  }
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
    Clock::time_point pollSince;  // the last create or network connect event
    Clock::time_point pollUntil;
    Millis pollInterval{0};
    Clock::time_point createdAt;
    bool sawCreate = false;  // createdAt is when the create event came
    bool inspecting = false;    // an inspect is asked for and not answered yet
    bool inspectAgain = false;  // and another one was wanted meanwhile
    int inspectFailures = 0;    // in a row
    EventLoop::TimerId inspectRetryTimer = 0;
    std::vector<std::string> ignoredLabels;  // for `connectable status`, with:
    std::string noShimBecause;               // why it has no shim; empty once it has one
    bool waitingForUid = false;              // refused for want of a --shim-uids uid
    std::string optionsDrift;                // ShimSupervisor::optionsDrift, as last told
  };

  // What `connectable status` shows of the container's problems, from its Tracked.
  void recordProblems(const std::string& id);
  // The container gets no shim now, for `why`; logged already.
  void noShim(const std::string& id, const std::string& why);
  // For a shim kept as it runs: compares its options to those it would get now (one adopted
  // from an injector started with others differs), then noteOptionsDrift.
  void checkShimOptions(const std::string& id);
  // After the supervisor compared them (ensure() does too): the difference, for the log
  // and the status, when it changed.
  void noteOptionsDrift(const std::string& id);
  // After ensure() failed: whether for want of a uid, to be tried again when one frees.
  void noteUidWanted(const std::string& id);
  void retryWaitingForUid();
  void connect();
  void onNegotiated(Result<DockerCalls::Negotiated> negotiated);
  void onDaemonIdentified(Result<std::string> id);
  void subscribe();
  // Once, before the first subscribe: with a claim, not before the daemon is known ours.
  void adoptShims();
  void scheduleReconnect();
  void reconcile();
  void onListed(Result<ContainerList> list);
  // `receivedAt`: when the stream delivered it, which may be before it is handled.
  void handleEvent(const DockerEvent& event, Clock::time_point receivedAt);
  // A create, or a network connect: the container's init may be in its cgroup any moment.
  static bool startsEarlyWatch(const DockerEvent& event);
  // Tracks a created container and watches its cgroup for its init; idempotent.
  void watchEarly(const DockerEvent& event, Clock::time_point receivedAt);
  // Whether the event happened before the current stream was asked for: one the daemon
  // replays (a container created while no stream was up, or in the first stream's lookback).
  bool replayed(const DockerEvent& event) const;
  // Nothing else would list again while the event stream stays up.
  void scheduleReconcileRetry();
  void cancelReconcileRetry();
  Tracked* track(const std::string& id, const std::map<std::string, std::string>& attributes, const std::string& name);
  // The container's name as Docker says it is now (a rename event, a list): in our log lines,
  // its shim's record and, from its next start, the shim's own.
  // Its destroy event, or what stands for one: no shim, no record, no problem notes.
  void forgetContainer(const std::string& id);
  // Asks Docker which of these tracked containers, not running at the last list, still exist;
  // forgets the others (their destroy events were missed).
  void forgetRemoved(std::vector<std::string> notRunning);
  void followName(const std::string& id, const std::string& name);
  void beginEarlyWatch(const std::string& id, Millis window);
  // Counts create -> shim started once per create event (restarts are not measured).
  void recordInjectionLatency(Tracked& t);
  void stopEarlyWatch(Tracked& t);
  // Stops both ways of finding the container's init: the early watch, and an inspect's retry.
  void stopLookingForInit(Tracked& t);
  void pollEarly(const std::string& id);
  void injectFromInspect(const std::string& id);
  void onInspected(const std::string& id, DockerCalls::Inspected inspected);
  void waitForShims();

  EventLoop& loop_;
  DockerEndpoint endpoint_;
  InjectorOptions options_;
  std::unique_ptr<DockerEventStream> stream_;
  ShimSupervisor supervisor_;
  LabelLimits labelLimits_;  // from the options every shim gets
  ProblemRecords problems_;
  std::map<std::string, Tracked> tracked_;
  // Containers with bad labels, or connectable.* options but no connect.PORT label, that no
  // shim is for, so never tracked: their labels are reported once, not again at each of their
  // events and each reconcile. Running, or known from their create event; forgotten with
  // their problem record.
  std::set<std::string> badLabelsReported_;
  unsigned long hostNetnsInode_ = 0;
  Millis reconnectDelay_;
  int64_t lastEventNanos_ = 0;  // of the last event seen: the next stream replays from there
  // Until there is one: our wall clock kFirstStreamReplays before the first stream was asked
  // for. The daemon's clock may differ (tcp://), so it is no floor for lastEventNanos_.
  int64_t firstSinceNanos_ = 0;
  // Our wall clock when the current stream was asked for: events before it are replays. A
  // daemon whose clock is behind ours (tcp://) has live events taken for replays, which
  // then wait for the list and are not timed; one ahead, replays taken for live ones.
  int64_t streamAskedNanos_ = 0;
  static constexpr Millis kFirstStreamReplays{2000};
  // When the current stream connected; none before it has (a stream refused, or ended
  // before its headers, never resets the back-off).
  std::optional<Clock::time_point> streamConnectedAt_;
  static constexpr Millis kStreamLasted{10000};  // a stream up this long resets the back-off
  EventLoop::TimerId reconnectTimer_ = 0;
  EventLoop::TimerId uidRetryTimer_ = 0;  // a shim went, and a container waits for its uid
  Millis reconcileRetryDelay_;
  EventLoop::TimerId reconcileRetryTimer_ = 0;
  bool shuttingDown_ = false;
  bool everConnected_ = false;
  std::function<void()> onShutdownDone_;
  std::function<Status(const std::string&)> claimDaemon_;
  std::function<void(const Status&)> onClaimFailed_;
  bool daemonClaimed_ = false;
  int daemonIdFailures_ = 0;  // in a row; past kDaemonIdTries, the injector goes on without it
  static constexpr int kDaemonIdTries = 3;
  bool adopted_ = false;  // the state dir's shims were looked at
  bool keepShims_ = false;  // another injector's, too: exiting leaves them be whatever the options
  InjectorCounters counters_;

  DockerApiVersion api_;          // of the last successful negotiate
  std::string serverVersion_;
  bool negotiating_ = false;
  // While a list is asked for, events wait, so that they apply after it as they did before
  // it was taken: a start the list already missed must not be undone by it. (Creates and
  // network connects also start the early watch at once.)
  bool listing_ = false;
  bool listAgain_ = false;         // a reconcile was asked for while listing
  Clock::time_point listAskedAt_;  // shims started since are not the list's to judge
  struct HeldEvent {
    DockerEvent event;
    Clock::time_point receivedAt;
  };
  std::deque<HeldEvent> heldEvents_;
  size_t heldBytes_ = 0;  // their footprint()s
  static constexpr size_t kMaxHeldEvents = 10000;
  // Each event may be up to a line of the stream (1 MiB), labels and all: 10000 of them
  // would be 10 GiB of the root injector's memory. Past this, they are replayed instead.
  static constexpr size_t kMaxHeldBytes = 32u << 20;
  bool droppingEvents_ = false;    // held too many: wait for the replay
  // Last: destroyed first, so no callback of it outlives what it uses.
  std::unique_ptr<DockerCalls> calls_;
};

}  // namespace connectable
