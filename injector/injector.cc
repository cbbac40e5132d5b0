#include "injector/injector.h"

#include <signal.h>

#include <cerrno>
#include <chrono>
#include <iterator>

#include "common/log.h"
#include "common/netns.h"
#include "injector/docker_container.h"
#include "shim/shim_options.h"

namespace connectable {

const std::vector<double>& InjectorCounters::latencyBounds() {
  static const std::vector<double> bounds = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  return bounds;
}

void InjectorCounters::recordLatency(double seconds) {
  const auto& bounds = latencyBounds();
  size_t i = 0;
  while (i < bounds.size() && seconds > bounds[i]) ++i;
  ++latencyCounts[i];
  latencySum += seconds;
}

namespace {

// The status note of a container whose shim runs with options other than it would get now
// (ShimSupervisor::optionsDrift), and what applies them.
std::string optionsDriftNote(const std::string& id, const std::string& name, const std::string& drift) {
  return "its shim runs with the options it was started with (" + drift + "): `docker restart " +
         (name.empty() ? shortContainerId(id) : name) + "` applies them";
}

}  // namespace

Injector::Injector(EventLoop& loop, const DockerEndpoint& endpoint, InjectorOptions options)
    : loop_(loop),
      endpoint_(endpoint),
      options_(std::move(options)),
      supervisor_(loop, options_.supervisor),
      problems_(options_.supervisor.stateDir),
      reconnectDelay_(options_.reconnectMin),
      reconcileRetryDelay_(options_.reconcileRetryMin),
      calls_(std::make_unique<DockerCalls>(loop, endpoint, options_.docker)) {
  std::vector<std::string> every = {"--connect=1=127.0.0.1:1"};
  every.insert(every.end(), options_.supervisor.shimArgs.begin(), options_.supervisor.shimArgs.end());
  if (auto host = parseShimOptions(every)) {
    labelLimits_.maxConns = host->proxy.maxConns;
    labelLimits_.dnsMinTtl = host->dnsMinTtl;
  }
}

Injector::~Injector() {
  if (stream_) stream_->stop();
  if (reconnectTimer_) loop_.cancelTimer(reconnectTimer_);
  if (uidRetryTimer_) loop_.cancelTimer(uidRetryTimer_);
  cancelReconcileRetry();
  for (auto& [id, t] : tracked_) stopLookingForInit(t);
}

Status Injector::start() {
  auto host = NetnsFd::current();
  if (!host) return host.status();
  auto inode = host->inode();
  if (!inode) return inode.status();
  hostNetnsInode_ = *inode;
  if (Status s = supervisor_.init(); !s) return s;
  if (Status s = problems_.init(); !s) return s;
  supervisor_.onNotServing([this](const std::string& id, const std::string& why) { noShim(id, why); });
  supervisor_.onShimGone([this] {
    if (!uidRetryTimer_) uidRetryTimer_ = loop_.addTimer(Millis(0), [this] { retryWaitingForUid(); });
  });
  // The state dir may be another injector's too: its shims are ours once the daemon is.
  if (!claimDaemon_) adoptShims();
  if (Status s = calls_->start(); !s) return s.withContext("docker requests");
  connect();
  return Status::ok();
}

void Injector::connect() {
  reconnectTimer_ = 0;
  if (shuttingDown_ || negotiating_) return;
  negotiating_ = true;
  calls_->negotiate([this](Result<DockerCalls::Negotiated> negotiated) {
    negotiating_ = false;
    onNegotiated(std::move(negotiated));
  });
}

void Injector::onNegotiated(Result<DockerCalls::Negotiated> negotiated) {
  if (shuttingDown_) return;
  if (!negotiated) {
    log::warn("cannot reach Docker; retrying", {{"docker", endpoint_.toString()}, {"error", negotiated.status().message()},
                                                  {"retry_ms", std::to_string(reconnectDelay_.count())}});
    scheduleReconnect();
    return;
  }
  api_ = negotiated->api;
  serverVersion_ = negotiated->server;
  if (claimDaemon_ && !daemonClaimed_) {
    calls_->daemonId([this](Result<std::string> id) { onDaemonIdentified(std::move(id)); });
    return;
  }
  subscribe();
}

void Injector::claimDaemonWith(std::function<Status(const std::string&)> claim,
                               std::function<void(const Status&)> onFailed) {
  claimDaemon_ = std::move(claim);
  onClaimFailed_ = std::move(onFailed);
}

void Injector::onDaemonIdentified(Result<std::string> id) {
  if (shuttingDown_) return;
  if (!id && ++daemonIdFailures_ < kDaemonIdTries) {
    // Most likely a daemon busy for a moment: going on without its name now would let a
    // second injector take it meanwhile, and both would inject every container.
    log::warn("cannot learn the Docker daemon's ID; asking again", {{"docker", endpoint_.toString()},
                                                                    {"error", id.status().message()},
                                                                    {"retry_ms", std::to_string(reconnectDelay_.count())}});
    scheduleReconnect();
    return;
  }
  if (!id) {
    // The socket's names still hold; the daemon's is tried again at the next connect. A
    // daemon that gives no ID (not Docker's own) must not keep us from working.
    log::warn("cannot learn the Docker daemon's ID; the injector lock holds only the socket's names",
              {{"docker", endpoint_.toString()}, {"error", id.status().message()}});
  } else if (Status s = claimDaemon_(*id); !s) {
    keepShims_ = true;
    shutdown([this, s] { onClaimFailed_(s); });
    return;
  } else {
    daemonClaimed_ = true;
  }
  adoptShims();
  subscribe();
}

void Injector::adoptShims() {
  if (adopted_) return;
  adopted_ = true;
  auto adopted = supervisor_.adopt();
  if (!adopted.empty()) log::info("re-adopted running shims", {{"count", std::to_string(adopted.size())}});
}

void Injector::subscribe() {
  // After a gap, the daemon replays what happened since the last event we saw (destroys,
  // creates of containers not started yet: what the reconcile's list of running containers
  // cannot tell). Before any, from a little before the first stream: the daemon sends a
  // stream's headers before it subscribes it (moby's getEvents), and the list follows the
  // headers, so an event in between would be in neither. Replayed events are duplicates,
  // which every handler takes as such (as after any reconnect).
  if (firstSinceNanos_ == 0) {
    firstSinceNanos_ = std::chrono::duration_cast<std::chrono::nanoseconds>(
                           (std::chrono::system_clock::now() - kFirstStreamReplays).time_since_epoch())
                           .count();
  }
  streamAskedNanos_ =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  DockerEventStream::Options streamOptions;
  streamOptions.sinceNanos = lastEventNanos_ != 0 ? lastEventNanos_ : firstSinceNanos_;
  stream_ = std::make_unique<DockerEventStream>(loop_, endpoint_, api_, *this, streamOptions);
  streamConnectedAt_.reset();
  if (Status s = stream_->start(); !s) {
    log::warn("cannot subscribe to Docker events; retrying", {{"error", s.message()}});
    stream_.reset();
    scheduleReconnect();
    return;
  }
  log::info("connected to Docker", {{"docker", endpoint_.toString()}, {"api", api_.toString()},
                                    {"server", serverVersion_}});
}

void Injector::scheduleReconnect() {
  if (shuttingDown_ || reconnectTimer_) return;
  reconnectTimer_ = loop_.addTimer(reconnectDelay_, [this] { connect(); });
  reconnectDelay_ = std::min(reconnectDelay_ * 2, options_.reconnectMax);
}

void Injector::onDockerStreamConnected() {
  droppingEvents_ = false;
  streamConnectedAt_ = loop_.now();
  if (everConnected_) ++counters_.dockerReconnects;
  everConnected_ = true;
  reconcile();
}

void Injector::onDockerStreamEnded(const Status& why) {
  if (shuttingDown_) return;
  log::warn("Docker event stream ended; reconnecting", {{"error", why.message()}});
  // The back-off starts afresh only after a stream that connected and lasted: one that a
  // daemon (or a proxy in front of it) refuses, or accepts and drops at once, would otherwise
  // be asked for again, with two warnings (and a full reconcile) each time, every
  // reconnectMin for ever.
  if (streamConnectedAt_ && loop_.now() - *streamConnectedAt_ >= kStreamLasted) reconnectDelay_ = options_.reconnectMin;
  cancelReconcileRetry();  // the reconnect reconciles
  // And inspects what it must: retries now would only queue up behind a daemon that is gone.
  for (auto& [id, t] : tracked_) {
    if (t.inspectRetryTimer) loop_.cancelTimer(t.inspectRetryTimer);
    t.inspectRetryTimer = 0;
    t.inspectFailures = 0;
  }
  // The stream may not be destroyed from its own callback.
  loop_.defer([this] {
    stream_.reset();
    scheduleReconnect();
  });
}

void Injector::onDockerEventMalformed(const Status& /*why*/) {
  // Logged by the stream. It may have been a labelled container's start or die, which no
  // later event repeats: the list says what runs now.
  if (!listing_) log::info("listing containers again, since an event could not be read");
  reconcile();
}

Injector::Tracked* Injector::track(const std::string& id, const std::map<std::string, std::string>& labels,
                                   const std::string& name) {
  auto it = tracked_.find(id);
  if (it != tracked_.end()) return &it->second;
  if (!mentionsConnectable(labels)) return nullptr;
  ContainerRequest request = parseContainerLabels(labels, labelLimits_);
  if ((!request.errors.empty() || !request.wanted()) && badLabelsReported_.insert(id).second) {
    for (const auto& e : request.errors) {
      ++counters_.badLabels;
      log::error("ignoring bad label", {{"container", containerDisplayName(name, id)}, {"error", e}});
    }
    // No label of it is bad, but it asks connectable for something (a typo in its connect
    // key, say): without this line it would pass unnoticed.
    if (request.errors.empty() && !request.wanted())
      log::warn("container gets no shim", {{"container", containerDisplayName(name, id)}, {"reason", request.noShimBecause}});
  }
  std::vector<std::string> ignored;
  for (const auto& e : request.errors) ignored.push_back("ignored bad label: " + e);
  if (!request.wanted()) {
    // Said as a reason of its own: `connectable status --json` gives it as the row's error.
    ignored.push_back("no shim: " + request.noShimBecause);
    // Yet a shim adopted from an injector that took its labels serves on (a label this one
    // refuses: 0.0.0.0, or past the DNS lookup cap), until the container restarts.
    supervisor_.checkOptions(id, name, request);
    if (std::string drift = supervisor_.optionsDrift(id); !drift.empty()) ignored.push_back(optionsDriftNote(id, name, drift));
    problems_.set({id, name, ignored});
    return nullptr;
  }
  badLabelsReported_.erase(id);  // tracked from now on, and a tracked container is not parsed again
  Tracked t;
  t.name = name;
  t.ignoredLabels = std::move(ignored);
  problems_.set({id, name, t.ignoredLabels});  // none: a record left from before goes
  t.request = std::move(request);
  t.createdAt = loop_.now();
  return &tracked_.emplace(id, std::move(t)).first->second;
}

void Injector::onDockerEvent(const DockerEvent& event) {
  if (droppingEvents_) return;  // until the stream that replays them is up
  if (listing_) {
    // One is always held, however big (a line of the stream at most): replayed, it would
    // come back as big.
    if (heldEvents_.empty() ||
        (heldEvents_.size() < kMaxHeldEvents && heldBytes_ + event.footprint() <= kMaxHeldBytes)) {
      // Stamped now: a held create is timed from when it came, not from the end of the list.
      heldEvents_.push_back({event, loop_.now()});
      heldBytes_ += event.footprint();
      // The early watch cannot wait for a slow list: by then the container may run, and
      // its app been refused. It only adds a shim, which is newer than the list and so not
      // the list's to judge; the event still applies after the list, in order, as a duplicate.
      // A replayed one waits for the list: its container may have run for a while (created
      // and started before the injector), which the list injects as what it is, a running
      // container, where the early watch would take it for one not started yet.
      if (startsEarlyWatch(event) && !replayed(event)) watchEarly(event, loop_.now());
      return;
    }
    // A daemon this busy: let it replay them from the last one acted on, on a new stream.
    log::warn("too many Docker events while listing containers; reconnecting to have them replayed",
              {{"held", std::to_string(heldEvents_.size())}, {"held_bytes", std::to_string(heldBytes_)}});
    // None acted on yet: from just before the first held one, by the daemon's own clock.
    if (lastEventNanos_ == 0 && !heldEvents_.empty()) lastEventNanos_ = heldEvents_.front().event.timeNano - 1;
    heldEvents_.clear();
    heldBytes_ = 0;
    droppingEvents_ = true;
    onDockerStreamEnded(Status::error("events held while listing: more than " + std::to_string(kMaxHeldEvents) +
                                      " or " + std::to_string(kMaxHeldBytes >> 20) + " MiB"));
    return;
  }
  handleEvent(event, loop_.now());
}

void Injector::handleEvent(const DockerEvent& event, Clock::time_point receivedAt) {
  // Only events acted on count: a reconnect replays from here, held ones included.
  if (event.timeNano > lastEventNanos_) lastEventNanos_ = event.timeNano;
  const std::string id = event.containerId();
  if (id.empty()) return;
  if (event.isContainer()) {
    const std::string name = event.containerName();
    if (event.action == "create") {
      watchEarly(event, receivedAt);
    } else if (event.action == "start") {
      if (!track(id, event.attributes, name)) return;
      injectFromInspect(id);
    } else if (event.action == "die") {
      auto it = tracked_.find(id);
      if (it != tracked_.end()) stopEarlyWatch(it->second);
      // A die replayed after a reconnect may be about an init that a later start (and the
      // reconcile) already replaced: the shim of a live init stays.
      if (!supervisor_.servesLiveInit(id)) {
        supervisor_.stop(id, "container died");
        noteOptionsDrift(id);  // none, with no shim
      }
    } else if (event.action == "rename") {
      // One that is not tracked may still have a problem record (every label of it bad):
      // track() rewrites that under the new name, as the list would only at the next reconcile.
      if (!tracked_.count(id)) track(id, event.attributes, name);
      followName(id, name);
    } else if (event.action == "destroy") {
      forgetContainer(id);
    }
  } else if (event.isNetwork() && event.action == "connect") {
    watchEarly(event, receivedAt);
  }
}

bool Injector::startsEarlyWatch(const DockerEvent& event) {
  return (event.isContainer() && event.action == "create") || (event.isNetwork() && event.action == "connect");
}

void Injector::watchEarly(const DockerEvent& event, Clock::time_point receivedAt) {
  const std::string id = event.containerId();
  if (id.empty()) return;
  // Replayed after the list that found it running: the inspect that list asked for injects
  // it as what it is, a running container, not one being started.
  auto listedRunning = [&](const Tracked& t) { return replayed(event) && t.inspecting; };
  if (event.isNetwork()) {
    // The namespace exists before the container runs: look for it now.
    auto it = tracked_.find(id);
    if (it != tracked_.end() && !supervisor_.serves(id) && !listedRunning(it->second))
      beginEarlyWatch(id, options_.earlyPollAfterConnect);
    return;
  }
  Tracked* t = track(id, event.attributes, event.containerName());
  if (!t) return;
  // A reconnect replays the last event acted on, and a list replays those it held: a create
  // for a container served already is that, and no shim waits for it. Nor is a create from
  // before the stream the injector's to time: it was not watching.
  if (!supervisor_.serves(id) && !replayed(event)) {
    t->sawCreate = true;
    t->createdAt = receivedAt;
  }
  if (listedRunning(*t)) return;
  beginEarlyWatch(id, options_.earlyPollAfterCreate);
}

bool Injector::replayed(const DockerEvent& event) const {
  return event.nanos() != 0 && event.nanos() < streamAskedNanos_;
}

void Injector::forgetContainer(const std::string& id) {
  auto it = tracked_.find(id);
  if (it != tracked_.end()) {
    stopLookingForInit(it->second);
    tracked_.erase(it);
  }
  badLabelsReported_.erase(id);
  problems_.remove(id);
  supervisor_.stop(id, "container removed");
}

void Injector::forgetRemoved(std::vector<std::string> notRunning) {
  // One list of every container, not an inspect each: requests to the daemon run one at a
  // time, and a host keeps many stopped containers, whose inspects would queue ahead of those
  // of containers starting now.
  calls_->listAllContainers([this, notRunning = std::move(notRunning)](Result<ContainerList> all) {
    if (shuttingDown_) return;
    if (!all) {
      // Kept until the next list: a stopped container may start again, and a removed one
      // is only counted as watched meanwhile.
      log::warn("cannot list stopped containers", {{"error", all.status().message()}});
      return;
    }
    std::set<std::string> exist;
    for (const auto& c : all->containers) exist.insert(c.id);
    for (const auto& bad : all->skipped) {
      if (bad.id.empty()) return;  // any of them might be that row
      exist.insert(bad.id);
    }
    // Each was tracked, served or recorded before the list was asked for, so a list without
    // it means it is gone; a shim of it goes too, even while its init runs.
    for (const auto& id : notRunning) {
      auto it = tracked_.find(id);
      const bool isTracked = it != tracked_.end();
      if (exist.count(id)) continue;
      if (!isTracked && !supervisor_.serves(id)) {
        // A record alone (or forgotten meanwhile): it goes, and with it the container's
        // count among those watched for bad labels, so the count stays what status lists.
        problems_.remove(id);
        badLabelsReported_.erase(id);
        continue;
      }
      log::info("forgetting a container that was removed while no event could say so",
                {{"container", containerDisplayName(isTracked ? it->second.name : supervisor_.containerNameOf(id), id)}});
      forgetContainer(id);
    }
  });
}

void Injector::followName(const std::string& id, const std::string& name) {
  auto it = tracked_.find(id);
  if (name.empty() || it == tracked_.end()) return;
  if (it->second.name != name) {
    log::info("container renamed", {{"container", containerDisplayName(name, id)}, {"was", it->second.name}});
    it->second.name = name;
    recordProblems(id);
  }
  supervisor_.rename(id, name);  // an adopted shim's record may know it by an older name still
}

void Injector::recordProblems(const std::string& id) {
  auto it = tracked_.find(id);
  if (it == tracked_.end()) return;
  ProblemRecord r{id, it->second.name, it->second.ignoredLabels};
  if (!it->second.noShimBecause.empty()) r.problems.push_back("no shim: " + it->second.noShimBecause);
  if (!it->second.optionsDrift.empty()) r.problems.push_back(optionsDriftNote(id, it->second.name, it->second.optionsDrift));
  problems_.set(r);
}

void Injector::noShim(const std::string& id, const std::string& why) {
  auto it = tracked_.find(id);
  if (it == tracked_.end() || it->second.noShimBecause == why) return;
  it->second.noShimBecause = why;
  if (!why.empty()) it->second.optionsDrift.clear();  // no shim, no options
  recordProblems(id);
}

void Injector::checkShimOptions(const std::string& id) {
  auto it = tracked_.find(id);
  if (it == tracked_.end()) return;
  supervisor_.checkOptions(id, it->second.name, it->second.request);
  noteOptionsDrift(id);
}

void Injector::noteOptionsDrift(const std::string& id) {
  auto it = tracked_.find(id);
  if (it == tracked_.end()) return;
  std::string drift = supervisor_.optionsDrift(id);
  if (drift == it->second.optionsDrift) return;
  it->second.optionsDrift = drift;
  if (!drift.empty())
    log::info("shim runs with the options it was started with; restarting the container applies today's",
              {{"container", containerDisplayName(it->second.name, id)}, {"options", drift}});
  recordProblems(id);
}

void Injector::noteUidWanted(const std::string& id) {
  auto it = tracked_.find(id);
  if (it != tracked_.end() && !supervisor_.hasUidFor(id)) it->second.waitingForUid = true;
}

void Injector::retryWaitingForUid() {
  uidRetryTimer_ = 0;
  if (shuttingDown_) return;
  // Each asks Docker afresh, as a start would; those that lose the race wait again.
  for (auto& [id, t] : tracked_) {
    if (!t.waitingForUid || !supervisor_.hasUidFor(id)) continue;
    t.waitingForUid = false;
    injectFromInspect(id);
  }
}

void Injector::beginEarlyWatch(const std::string& id, Millis window) {
  auto it = tracked_.find(id);
  if (it == tracked_.end()) return;
  Tracked& t = it->second;
  // Options no shim would take: waiting for the start cannot mend them, and the start
  // reports them (cannot start shim), once. Nothing to look for meanwhile. (Checked here,
  // once a watch, not at each of its polls: neither the labels nor the host's options change.)
  if (Status s = supervisor_.checkArguments(id, t.name, t.request); !s) {
    log::debug("no early injection", {{"container", containerDisplayName(t.name, id)}, {"error", s.message()}});
    return;
  }
  t.pollSince = loop_.now();
  t.pollUntil = std::max(t.pollUntil, t.pollSince + window);
  t.pollInterval = options_.earlyPollInterval;
  if (t.pollTimer) return;
  pollEarly(id);
}

void Injector::stopEarlyWatch(Tracked& t) {
  if (t.pollTimer) loop_.cancelTimer(t.pollTimer);
  t.pollTimer = 0;
}

void Injector::stopLookingForInit(Tracked& t) {
  stopEarlyWatch(t);
  if (t.inspectRetryTimer) loop_.cancelTimer(t.inspectRetryTimer);
  t.inspectRetryTimer = 0;
}

void Injector::pollEarly(const std::string& id) {
  auto it = tracked_.find(id);
  if (it == tracked_.end()) return;
  Tracked& t = it->second;
  t.pollTimer = 0;
  // Exiting: stopAll() has run or is not wanted, and a shim started now would outlive the
  // wait for every shim to be gone (--stop-shims-on-exit) until its container stops.
  if (shuttingDown_ || supervisor_.serves(id)) return;
  ++counters_.earlyPolls;
  if (auto init = findContainerInit(id, hostNetnsInode_)) {
    pid_t pid = init->process.pid();
    Status s = supervisor_.ensure(id, t.name, t.request, std::move(init->process), std::move(init->netns));
    if (s) {
      noShim(id, "");
      noteOptionsDrift(id);
      ++counters_.injectedEarly;
      auto ms = std::chrono::duration_cast<Millis>(loop_.now() - t.createdAt).count();
      const bool sawCreate = t.sawCreate;  // a restart has no create to count from
      recordInjectionLatency(t);
      if (sawCreate)
        log::info("injected before start", {{"container", containerDisplayName(t.name, id)}, {"init_pid", std::to_string(pid)},
                                            {"ms_after_create", std::to_string(ms)}});
      else
        log::info("injected before start", {{"container", containerDisplayName(t.name, id)}, {"init_pid", std::to_string(pid)}});
      return;
    }
    log::warn("early injection failed; waiting for start", {{"container", containerDisplayName(t.name, id)}, {"error", s.message()}});
    noteUidWanted(id);
    return;
  }
  // Polling lasts only while a labelled container is being started: an idle host costs nothing.
  // Its init comes within a few hundred ms of the network connect event (docs/docker-events.md);
  // past that, a slower look costs a late start little, and a compose project that creates
  // fifty containers before it starts them does not keep a CPU busy reading cgroups.
  const Clock::time_point now = loop_.now();
  if (now >= t.pollUntil) return;
  if (now - t.pollSince >= options_.earlyPollFastFor) t.pollInterval = std::min(t.pollInterval * 2, options_.earlyPollSlowest);
  t.pollTimer = loop_.addTimer(t.pollInterval, [this, id] { pollEarly(id); });
}

void Injector::injectFromInspect(const std::string& id) {
  if (shuttingDown_) return;
  auto it = tracked_.find(id);
  if (it == tracked_.end()) return;
  Tracked& t = it->second;
  stopLookingForInit(t);
  // One request per container at a time; one asked for meanwhile follows it, since the
  // container may have changed after the daemon answered the first.
  if (t.inspecting) {
    t.inspectAgain = true;
    return;
  }
  t.inspecting = true;
  calls_->inspectContainer(id, [this, id](DockerCalls::Inspected inspected) { onInspected(id, std::move(inspected)); });
}

void Injector::onInspected(const std::string& id, DockerCalls::Inspected inspected) {
  auto it = tracked_.find(id);
  if (it == tracked_.end()) return;  // destroyed meanwhile
  Tracked& t = it->second;
  t.inspecting = false;
  if (t.inspectAgain) {
    t.inspectAgain = false;
    injectFromInspect(id);
    return;
  }
  if (shuttingDown_) return;
  auto& info = inspected.info;
  if (!info) {
    if (inspected.notFound) return;  // gone: its destroy event follows
    // Nothing else would ask again before the container's next event, and it may never
    // have one: try again, less and less often (a reply that never parses costs little).
    const Millis retry = std::min(options_.reconcileRetryMin * (1 << std::min(t.inspectFailures, 16)), options_.reconcileRetryMax);
    ++t.inspectFailures;
    log::warn("cannot inspect container; retrying", {{"container", containerDisplayName(t.name, id)}, {"error", info.status().message()},
                                                     {"retry_ms", std::to_string(retry.count())}});
    t.inspectRetryTimer = loop_.addTimer(retry, [this, id] {
      auto again = tracked_.find(id);
      if (again == tracked_.end()) return;
      again->second.inspectRetryTimer = 0;
      injectFromInspect(id);
    });
    return;
  }
  t.inspectFailures = 0;
  if (t.name.empty()) t.name = info->name;
  if (info->hostNetwork()) {
    log::warn("container uses the host's network; connectable never injects there",
              {{"container", containerDisplayName(t.name, id)}});
    noShim(id, "it uses the host's network, where connectable never injects");
    return;
  }
  if (!info->running || info->pid <= 0) return;
  if (supervisor_.serves(id) && supervisor_.initPidOf(id) == info->pid) {  // the early path got it right
    checkShimOptions(id);
    return;
  }
  auto process = ProcessHandle::open(info->pid);
  if (!process) {
    // Ended since Docker answered, as a short job's container does (`docker run --rm app
    // true`): its die event follows. Anything else is worth a warning.
    if (::kill(info->pid, 0) != 0 && errno == ESRCH)
      log::debug("container exited before its shim could start", {{"container", containerDisplayName(t.name, id)}});
    else
      log::warn("container process is gone", {{"container", containerDisplayName(t.name, id)}, {"error", process.status().message()}});
    return;
  }
  if (!process->inContainer(id)) {
    // Exited since Docker answered, and the pid taken by another process by the time it
    // was pinned: never inject into that one's namespace. A later event or reconcile
    // inspects afresh.
    log::warn("container process is gone (its pid now names a process outside the container)",
              {{"container", containerDisplayName(t.name, id)}, {"pid", std::to_string(info->pid)}});
    return;
  }
  auto netns = process->openNetns();
  if (!netns) {
    log::warn("cannot open container namespace", {{"container", containerDisplayName(t.name, id)}, {"error", netns.status().message()}});
    noShim(id, "cannot open its network namespace: " + netns.status().message());
    return;
  }
  auto inode = netns->inode();
  if (inode && *inode == hostNetnsInode_) {
    log::warn("container shares the host's network namespace; connectable never injects there",
              {{"container", containerDisplayName(t.name, id)}});
    noShim(id, "it shares the host's network namespace, where connectable never injects");
    return;
  }
  if (Status s = supervisor_.ensure(id, t.name, t.request, std::move(*process), std::move(*netns)); !s) {
    log::error("cannot start shim", {{"container", containerDisplayName(t.name, id)}, {"error", s.message()}});
    noShim(id, s.message());
    noteUidWanted(id);
    return;
  }
  noShim(id, "");
  noteOptionsDrift(id);
  ++counters_.injectedOnStart;
  recordInjectionLatency(t);
}

void Injector::recordInjectionLatency(Tracked& t) {
  if (t.sawCreate) counters_.recordLatency(std::chrono::duration<double>(Clock::now() - t.createdAt).count());
  t.sawCreate = false;  // a later restart of the container is not measured from this create
}

void Injector::reconcile() {
  cancelReconcileRetry();
  if (shuttingDown_) return;
  if (listing_) {
    listAgain_ = true;
    return;
  }
  listing_ = true;
  listAskedAt_ = loop_.now();
  calls_->listContainers([this](Result<ContainerList> list) {
    listing_ = false;
    if (shuttingDown_) return;
    onListed(std::move(list));
    // What happened while the daemon listed, in order, as if the list had taken no time.
    std::deque<HeldEvent> held;
    held.swap(heldEvents_);
    heldBytes_ = 0;
    for (const HeldEvent& h : held) handleEvent(h.event, h.receivedAt);
    if (listAgain_) {
      listAgain_ = false;
      reconcile();
    }
  });
}

void Injector::onListed(Result<ContainerList> list) {
  if (!list) {
    log::warn("cannot list containers; retrying", {{"error", list.status().message()},
                                                   {"retry_ms", std::to_string(reconcileRetryDelay_.count())}});
    scheduleReconcileRetry();
    return;
  }
  reconcileRetryDelay_ = options_.reconcileRetryMin;
  std::map<std::string, bool> running;
  // A row we cannot read is still a running container: keep its shim, if it has one. Without
  // its id, any shim might be its: stop none on this list.
  bool everyIdKnown = true;
  for (const auto& bad : list->skipped) {
    log::warn("skipping a container the list did not describe properly",
              {{"container", bad.id.empty() ? "?" : shortContainerId(bad.id)}, {"error", bad.why.message()}});
    if (bad.id.empty()) everyIdKnown = false;
    else running[bad.id] = true;
  }
  for (const auto& c : list->containers) {
    running[c.id] = true;
    if (!track(c.id, c.labels, c.name())) continue;
    // Renamed while no event could say so: the injector was away, or the gap was too long to replay.
    followName(c.id, c.name());
    // A shim whose container init still runs (pinned by pidfd, checked by start time) serves
    // the right namespace: no inspect, which is one blocking round trip per container.
    if (supervisor_.servesLiveInit(c.id)) {
      checkShimOptions(c.id);  // adopted, perhaps started with other options
      continue;
    }
    injectFromInspect(c.id);
  }
  // Not running: stopped (it may start again), being started, or removed while no event
  // could say so. So are the containers of adopted shims the list does not show.
  std::vector<std::string> notRunning;
  for (const auto& [id, t] : tracked_)
    if (!running.count(id)) notRunning.push_back(id);
  for (const auto& shim : supervisor_.list())
    if (!running.count(shim.containerId) && !tracked_.count(shim.containerId)) notRunning.push_back(shim.containerId);
  // And those with nothing but a record (every label bad, say): a stopped one keeps it,
  // so that status still says why it had no shim; a removed one's goes.
  for (const auto& id : problems_.containerIds())
    if (!running.count(id) && !tracked_.count(id) && !supervisor_.serves(id)) notRunning.push_back(id);
  if (!notRunning.empty()) forgetRemoved(std::move(notRunning));
  for (const auto& shim : supervisor_.list()) {
    // A shim started since the list was asked for (the early path runs meanwhile) is newer
    // than what the list knows. One whose container's init still runs serves a container
    // being started, which Docker calls created until its start event: a stopped
    // container's init is gone, and a removed one's shim goes in forgetRemoved.
    if (everyIdKnown && !running.count(shim.containerId) && shim.since < listAskedAt_ &&
        !supervisor_.servesLiveInit(shim.containerId))
      supervisor_.stop(shim.containerId, "container not running");
  }
  log::info("reconciled", {{"running", std::to_string(list->containers.size() + list->skipped.size())},
                           {"watched", std::to_string(tracked_.size())},
                           {"shims", std::to_string(supervisor_.list().size())}});
}

void Injector::scheduleReconcileRetry() {
  if (shuttingDown_) return;
  reconcileRetryTimer_ = loop_.addTimer(reconcileRetryDelay_, [this] {
    reconcileRetryTimer_ = 0;
    reconcile();
  });
  reconcileRetryDelay_ = std::min(reconcileRetryDelay_ * 2, options_.reconcileRetryMax);
}

void Injector::cancelReconcileRetry() {
  if (reconcileRetryTimer_) loop_.cancelTimer(reconcileRetryTimer_);
  reconcileRetryTimer_ = 0;
}

void Injector::shutdown(std::function<void()> onDone) {
  // A second signal (say Ctrl-C after SIGTERM) must not start a second wait for the shims.
  if (shuttingDown_) {
    log::info("already exiting");
    return;
  }
  shuttingDown_ = true;
  cancelReconcileRetry();
  // No shim is started from here on (pollEarly and injectFromInspect say so too): the
  // timers that would look for a container's init go.
  for (auto& [id, t] : tracked_) stopLookingForInit(t);
  if (stream_) {
    // Exiting must not wait on Docker: a swamped daemon can hold our reader in connect().
    stream_->abandon();
    // Never deleted (the reader may still use it), but reachable until the very end, so it
    // is no leak: the holder itself is never destroyed either, not even by exit().
    static auto* abandoned = new std::vector<DockerEventStream*>();
    abandoned->push_back(stream_.release());
  }
  // Nor on a Docker request under way; the same holds for its worker.
  calls_->abandon();
  static auto* abandonedCalls = new std::vector<DockerCalls*>();
  abandonedCalls->push_back(calls_.release());
  if (keepShims_) {
    onDone();
    return;
  }
  if (!options_.stopShimsOnExit) {
    log::info("exiting; shims keep serving until their containers stop, and a restarted injector re-adopts them",
              {{"shims", std::to_string(supervisor_.list().size())}});
    onDone();
    return;
  }
  supervisor_.stopAll();
  onShutdownDone_ = std::move(onDone);
  waitForShims();
}

void Injector::waitForShims() {
  // The supervisor kills laggards itself, replaced shims too; this only waits for them to be gone.
  if (supervisor_.allGone()) {
    auto done = std::move(onShutdownDone_);
    done();
    return;
  }
  loop_.addTimer(Millis(50), [this] { waitForShims(); });
}

}  // namespace connectable
