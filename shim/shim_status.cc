#include "shim/shim_status.h"

#include <cstdio>

#include "common/log.h"
#include "common/metrics.h"

namespace connectable {
namespace {

std::string q(const std::string& s) { return "\"" + log::jsonEscape(s) + "\""; }

double secondsBetween(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

// Seconds from now until `when`; 0 when it is now or past (a lookup under way).
double secondsUntil(Clock::time_point now, Clock::time_point when) {
  return when > now ? secondsBetween(now, when) : 0.0;
}

std::string fixed(double v, int decimals = 3) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

const char* kindName(Target::Kind kind) {
  switch (kind) {
    case Target::Kind::Literal: return "literal";
    case Target::Kind::HostPort: return "host";
    case Target::Kind::Srv: return "srv";
  }
  return "?";
}

// "penalized" from a failure until a probe or a connection reaches it again: past the
// penalty's end too, while its probe is under way (or failing, which starts a new one).
std::string backendState(const Backend& b) { return b.penalized() ? "penalized" : "up"; }

double penaltyLeft(const Backend& b, Clock::time_point now) {
  return b.penaltyRunning(now) ? secondsBetween(now, b.penalizedUntil) : 0.0;
}

// DNS state of a target: "literal", "pending", "ok", "stale: <why>", "failed: <why>".
std::string dnsState(const BackendSet& set, size_t i) {
  const Target& t = set.targets()[i];
  if (!t.needsLookup()) return "literal";
  if (!set.answered(i)) return "pending";
  if (set.problem(i).empty()) return "ok";
  return std::string(set.stale(i) ? "stale: " : "failed: ") + set.problem(i);
}

}  // namespace

std::string formatAge(double seconds) {
  // `connectable status` shows what a shim's JSON says, any number: past 64 bits of seconds
  // the conversion would be undefined, so those are clamped (and a NaN is none).
  if (!(seconds > 0)) seconds = 0;
  auto s = seconds < 0x1p64 ? static_cast<uint64_t>(seconds) : UINT64_MAX;
  std::string out;
  if (s >= 86400) out += std::to_string(s / 86400) + "d";
  if (s >= 3600) out += std::to_string(s / 3600 % 24) + "h";
  if (s >= 60) out += std::to_string(s / 60 % 60) + "m";
  return out + std::to_string(s % 60) + "s";
}

ShimStatus::ShimStatus(const Proxy& proxy, const ServiceResolver* resolver, ShimIdentity identity)
    : proxy_(proxy), resolver_(resolver), id_(std::move(identity)) {}

const Resolution* ShimStatus::lookupOf(const Target& target) const {
  if (!resolver_ || !target.needsLookup()) return nullptr;
  const Resolution* r = resolver_->resolutionOf(target);
  // "localhost" is a name the resolver never asks about: no TTL, no next lookup.
  return r && r->nextLookup != Clock::time_point::max() ? r : nullptr;
}

void ShimStatus::setSyscallFilter(bool on, std::string whyNot) {
  syscallFilter_ = on;
  syscallFilterWhyNot_ = std::move(whyNot);
}

std::string ShimStatus::json() const {
  const auto now = Clock::now();
  std::string j = "{\"name\":" + q(id_.name) + ",\"version\":" + q(id_.version) + ",\"pid\":" + std::to_string(id_.pid) +
                  ",\"started_at\":" +
                  std::to_string(std::chrono::duration_cast<std::chrono::seconds>(id_.startedWall.time_since_epoch()).count()) +
                  ",\"uptime_seconds\":" + fixed(secondsBetween(id_.started, now)) +
                  ",\"active_connections\":" + std::to_string(proxy_.activeConnections()) +
                  ",\"draining\":" + (proxy_.draining() ? "true" : "false") + ",\"data_path\":" + q(id_.dataPath) +
                  ",\"read_buffers\":" +
                  (id_.ring ? "{\"pool\":" + std::to_string(id_.ring->bufferCount()) +
                                  ",\"lent\":" + std::to_string(id_.ring->buffersLent()) + "}"
                            : std::string("null")) +
                  ",\"epoll_path\":" +
                  (id_.ring ? "{\"connections\":" + std::to_string(proxy_.epollPath().connections) +
                                  ",\"entered\":" + std::to_string(proxy_.epollPath().entered) +
                                  ",\"returned\":" + std::to_string(proxy_.epollPath().returned) + "}"
                            : std::string("null")) +
                  ",\"status_port\":" + (id_.statusPort ? std::to_string(id_.statusPort) : "null") +
                  ",\"syscall_filter\":{\"on\":" + (syscallFilter_ ? "true" : "false") +
                  (syscallFilter_ ? std::string() : ",\"why_not\":" + q(syscallFilterWhyNot_)) + ",\"refused\":[";
  for (size_t i = 0; i < refusedSyscalls_.size(); ++i) j += (i ? "," : "") + std::to_string(refusedSyscalls_[i]);
  j += "]},\"last_error\":";
  if (proxy_.lastError().empty()) {
    j += "null";
  } else {
    j += "{\"message\":" + q(proxy_.lastError()) +
         ",\"seconds_ago\":" + fixed(secondsBetween(proxy_.lastErrorAt(), now)) + "}";
  }
  j += ",\"ports\":[";
  bool firstPort = true;
  for (const auto& port : proxy_.ports()) {
    const PortCounters& c = port->counters();
    BackendSet& set = port->backends();
    j += std::string(firstPort ? "" : ",") + "{\"port\":" + std::to_string(port->spec().port) +
         ",\"target\":" + q(port->spec().targetsText()) + ",\"listen\":[";
    firstPort = false;
    for (size_t i = 0; i < port->listenAddresses().size(); ++i)
      j += (i ? "," : "") + q(port->listenAddresses()[i].toString());
    j += "],\"not_served\":" + (port->notServed().empty() ? std::string("null") : q(port->notServed())) +
         ",\"connections\":{\"active\":" + std::to_string(c.active) + ",\"total\":" + std::to_string(c.established) +
         ",\"accepted\":" + std::to_string(c.accepted) + ",\"waiting\":" + std::to_string(port->waiting()) +
         "},\"bytes\":{\"to_backends\":" + std::to_string(c.bytesToBackend) +
         ",\"from_backends\":" + std::to_string(c.bytesFromBackend) + "},\"failovers\":" + std::to_string(c.failovers) +
         ",\"failures\":{";
    for (size_t r = 0; r < kFailureReasons; ++r)
      j += std::string(r ? "," : "") + q(failureReasonName(static_cast<FailureReason>(r))) + ":" +
           std::to_string(c.failures[r]);
    j += "},\"targets\":[";
    for (size_t i = 0; i < set.targets().size(); ++i) {
      const Target& t = set.targets()[i];
      j += std::string(i ? "," : "") + "{\"target\":" + q(t.text) + ",\"kind\":" + q(kindName(t.kind)) +
           ",\"dns\":" + q(dnsState(set, i)) + ",\"outside_allow_upstream\":[";
      for (size_t k = 0; k < set.refused(i).size(); ++k) j += (k ? "," : "") + q(set.refused(i)[k].toString());
      j += "]";
      const Resolution* r = lookupOf(t);
      j += ",\"ttl_seconds\":" + (r && r->ttl.count() > 0 ? fixed(r->ttl.count() / 1000.0) : std::string("null")) +
           ",\"next_lookup_in_seconds\":" + (r ? fixed(secondsUntil(now, r->nextLookup)) : std::string("null")) +
           ",\"backends\":[";
      const auto& list = set.backendsOf(i);
      for (size_t k = 0; k < list.size(); ++k) j += (k ? "," : "") + q(list[k]->address.toString());
      j += "]}";
    }
    j += "],\"backends\":[";
    const auto& backends = set.backends();
    for (size_t k = 0; k < backends.size(); ++k) {
      const Backend& b = *backends[k];
      j += std::string(k ? "," : "") + "{\"address\":" + q(b.address.toString()) + ",\"target\":" + q(b.target) +
           ",\"priority\":" + std::to_string(b.priority) + ",\"weight\":" + std::to_string(b.weight) +
           ",\"state\":" + q(backendState(b)) + ",\"consecutive_failures\":" +
           std::to_string(b.consecutiveFailures) + ",\"penalty_seconds_left\":" + fixed(penaltyLeft(b, now)) +
           ",\"probing\":" + (b.probing ? "true" : "false") + ",\"probes\":" + std::to_string(b.probes) +
           ",\"probe_failures\":" + std::to_string(b.probeFailures) +
           ",\"connections\":{\"active\":" + std::to_string(b.active) + ",\"total\":" + std::to_string(b.total) +
           "},\"connect_failures\":" + std::to_string(b.connectFailures) +
           ",\"bytes\":{\"to_backend\":" + std::to_string(b.bytesToBackend) +
           ",\"from_backend\":" + std::to_string(b.bytesFromBackend) + "}}";
    }
    j += "]}";
  }
  j += "],\"dns\":";
  if (!resolver_) {
    j += "null";
  } else {
    const auto& d = resolver_->counters();
    j += "{\"lookups\":" + std::to_string(d.lookups) + ",\"queries\":" + std::to_string(d.queriesSent) +
         ",\"query_failures\":" + std::to_string(d.queryFailures) +
         ",\"lookup_failures\":" + std::to_string(d.lookupFailures) +
         ",\"stale_answers_served\":" + std::to_string(d.staleAnswersServed) +
         ",\"malformed_answers\":" + std::to_string(d.malformedAnswers) + "}";
  }
  return j + "}\n";
}

std::string ShimStatus::metrics() const {
  const auto now = Clock::now();
  MetricsText m;
  m.family("connectable_shim_start_time_seconds", "gauge", "When the shim started, in seconds since the epoch.");
  m.sample("connectable_shim_start_time_seconds", {},
           static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(id_.startedWall.time_since_epoch()).count()));
  m.family("connectable_shim_uptime_seconds", "gauge", "Seconds since the shim started.");
  m.sampleDouble("connectable_shim_uptime_seconds", {}, secondsBetween(id_.started, now));
  m.family("connectable_syscall_filter", "gauge", "1 when the shim's system calls are confined (seccomp), else 0.");
  m.sample("connectable_syscall_filter", {}, syscallFilter_ ? 1 : 0);
  m.family("connectable_syscalls_refused", "gauge",
           "System calls the shim's filter refused (each counted once): above 0, part of the shim failed.");
  m.sample("connectable_syscalls_refused", {}, refusedSyscalls_.size());
  if (id_.ring) {
    m.family("connectable_read_buffers", "gauge",
             "Read buffers of the io_uring data path: the pool, which grows with bursts, and those lent to reads.");
    m.sample("connectable_read_buffers", {{"state", "pool"}}, id_.ring->bufferCount());
    m.sample("connectable_read_buffers", {{"state", "lent"}}, id_.ring->buffersLent());
    m.family("connectable_epoll_path_connections", "gauge",
             "Open connections that left the io_uring data path for epoll: a bulk transfer, or a peer "
             "that stopped reading. They go back once their traffic is small again.");
    m.sample("connectable_epoll_path_connections", {}, proxy_.epollPath().connections);
    m.family("connectable_epoll_path_entered_total", "counter", "Times a connection left the io_uring data path.");
    m.sample("connectable_epoll_path_entered_total", {}, proxy_.epollPath().entered);
    m.family("connectable_epoll_path_returned_total", "counter", "Times a connection went back to the io_uring data path.");
    m.sample("connectable_epoll_path_returned_total", {}, proxy_.epollPath().returned);
  }

  const auto& ports = proxy_.ports();
  auto perPort = [&](const std::string& name, const char* type, const std::string& help, auto value) {
    m.family(name, type, help);
    for (const auto& p : ports) m.sample(name, {{"port", std::to_string(p->spec().port)}}, value(*p));
  };
  perPort("connectable_connections_active", "gauge", "Client connections open now.",
          [](ListenPort& p) { return p.counters().active; });
  perPort("connectable_connections_accepted_total", "counter", "Client connections accepted.",
          [](ListenPort& p) { return p.counters().accepted; });
  perPort("connectable_connections_waiting", "gauge",
          "Client connections waiting in the kernel's backlog to be accepted (past --max-conns, or at the fd limit).",
          [](ListenPort& p) { return p.waiting(); });
  perPort("connectable_connections_total", "counter", "Client connections that reached a backend.",
          [](ListenPort& p) { return p.counters().established; });
  perPort("connectable_failovers_total", "counter",
          "Connect attempts past the first backend of a connection (after a failed connect, or a hang-up before either "
          "side said a word).",
          [](ListenPort& p) { return p.counters().failovers; });
  m.family("connectable_bytes_total", "counter", "Bytes carried, by direction (to_backends: sent by clients).");
  for (const auto& p : ports) {
    std::string port = std::to_string(p->spec().port);
    m.sample("connectable_bytes_total", {{"port", port}, {"direction", "to_backends"}}, p->counters().bytesToBackend);
    m.sample("connectable_bytes_total", {{"port", port}, {"direction", "from_backends"}}, p->counters().bytesFromBackend);
  }
  m.family("connectable_failures_total", "counter",
           "Failed connect attempts and client connections, by reason (connect_* are single attempts).");
  for (const auto& p : ports)
    for (size_t r = 0; r < kFailureReasons; ++r)
      m.sample("connectable_failures_total",
               {{"port", std::to_string(p->spec().port)}, {"reason", failureReasonName(static_cast<FailureReason>(r))}},
               p->counters().failures[r]);

  auto perBackend = [&](const std::string& name, const char* type, const std::string& help, auto emit) {
    m.family(name, type, help);
    for (const auto& p : ports)
      for (const auto& b : p->backends().backends())
        emit(MetricLabels{{"port", std::to_string(p->spec().port)}, {"target", b->target}, {"backend", b->address.toString()}},
             *b);
  };
  perBackend("connectable_backend_up", "gauge",
             "1 when the backend is tried in turn, 0 while penalized: from a failure until a health probe or a "
             "connection reaches it again.",
             [&](const MetricLabels& l, const Backend& b) { m.sample("connectable_backend_up", l, b.penalized() ? 0 : 1); });
  perBackend("connectable_backend_penalty_seconds", "gauge",
             "Seconds left of the backend's penalty; at 0 while penalized, its health probe is under way.",
             [&](const MetricLabels& l, const Backend& b) { m.sampleDouble("connectable_backend_penalty_seconds", l, penaltyLeft(b, now)); });
  perBackend("connectable_backend_probing", "gauge", "1 while a health probe of the penalized backend is under way (its connect, then 200 ms of watching for a hang-up).",
             [&](const MetricLabels& l, const Backend& b) { m.sample("connectable_backend_probing", l, b.probing ? 1 : 0); });
  perBackend("connectable_backend_probes_total", "counter",
             "Health probes made to the backend: a TCP connect at each penalty's end, watched 200 ms for a hang-up.",
             [&](const MetricLabels& l, const Backend& b) { m.sample("connectable_backend_probes_total", l, b.probes); });
  perBackend("connectable_backend_probe_failures_total", "counter", "Health probes to the backend that failed.",
             [&](const MetricLabels& l, const Backend& b) { m.sample("connectable_backend_probe_failures_total", l, b.probeFailures); });
  perBackend("connectable_backend_connections_active", "gauge", "Connections open through the backend now.",
             [&](const MetricLabels& l, const Backend& b) { m.sample("connectable_backend_connections_active", l, b.active); });
  perBackend("connectable_backend_connections_total", "counter", "Connections established to the backend.",
             [&](const MetricLabels& l, const Backend& b) { m.sample("connectable_backend_connections_total", l, b.total); });
  perBackend("connectable_backend_connect_failures_total", "counter", "Failed connect attempts of clients to the backend, hang-ups without a byte included.",
             [&](const MetricLabels& l, const Backend& b) { m.sample("connectable_backend_connect_failures_total", l, b.connectFailures); });
  perBackend("connectable_backend_bytes_total", "counter", "Bytes carried through the backend, by direction.",
             [&](MetricLabels l, const Backend& b) {
               l.emplace_back("direction", "to_backend");
               m.sample("connectable_backend_bytes_total", l, b.bytesToBackend);
               l.back().second = "from_backend";
               m.sample("connectable_backend_bytes_total", l, b.bytesFromBackend);
             });

  if (resolver_) {
    const auto& d = resolver_->counters();
    m.family("connectable_dns_lookups_total", "counter", "Name lookups started (one per target per refresh).");
    m.sample("connectable_dns_lookups_total", {}, d.lookups);
    m.family("connectable_dns_queries_total", "counter", "DNS questions sent.");
    m.sample("connectable_dns_queries_total", {}, d.queriesSent);
    m.family("connectable_dns_query_failures_total", "counter", "DNS questions that timed out, were refused or malformed.");
    m.sample("connectable_dns_query_failures_total", {}, d.queryFailures);
    m.family("connectable_dns_lookup_failures_total", "counter", "Lookups that ended without a usable answer.");
    m.sample("connectable_dns_lookup_failures_total", {}, d.lookupFailures);
    m.family("connectable_dns_stale_answers_total", "counter", "Failed lookups that kept serving the last good answer.");
    m.sample("connectable_dns_stale_answers_total", {}, d.staleAnswersServed);
  }
  return m.text();
}

std::string ShimStatus::text() const {
  const auto now = Clock::now();
  std::string t = "connectable-shim " + id_.version + (id_.name.empty() ? "" : " for " + id_.name) + ", pid " +
                  std::to_string(id_.pid) + ", up " + formatAge(secondsBetween(id_.started, now)) +
                  ", data path " + id_.dataPath +
                  (id_.ring ? " (" + std::to_string(id_.ring->bufferCount()) + " read buffers)" : std::string()) +
                  (syscallFilter_ ? ", system calls confined" : ", system calls not confined: " + syscallFilterWhyNot_) + "\n";
  if (!refusedSyscalls_.empty()) {
    t += "system calls refused by the filter:";
    for (long n : refusedSyscalls_) t += " " + std::to_string(n);
    t += "\n";
  }
  for (const auto& port : proxy_.ports()) {
    const PortCounters& c = port->counters();
    BackendSet& set = port->backends();
    std::string listen;
    for (const auto& a : port->listenAddresses()) listen += (listen.empty() ? "" : " ") + a.toString();
    t += "\nport " + std::to_string(port->spec().port) + " -> " + port->spec().targetsText() +
         (port->notServed().empty() ? "  (listening on " + listen + ")\n" : "  (NOT SERVED: " + port->notServed() + ")\n");
    t += "  connections: " + std::to_string(c.active) + " active, " + std::to_string(c.established) + " total, " +
         std::to_string(c.accepted) + " accepted, " + std::to_string(port->waiting()) + " waiting, " +
         std::to_string(c.failovers) + " failovers\n";
    t += "  bytes: " + std::to_string(c.bytesToBackend) + " to backends, " + std::to_string(c.bytesFromBackend) +
         " from backends\n";
    std::string failures;
    for (size_t r = 0; r < kFailureReasons; ++r)
      if (c.failures[r]) failures += std::string(failures.empty() ? "" : ", ") + failureReasonName(static_cast<FailureReason>(r)) +
                                     " " + std::to_string(c.failures[r]);
    t += "  failures: " + (failures.empty() ? std::string("none") : failures) + "\n";
    for (size_t i = 0; i < set.targets().size(); ++i)
      if (set.targets()[i].needsLookup()) {
        t += "  dns " + set.targets()[i].text + ": " + dnsState(set, i) + ", " +
             std::to_string(set.backendsOf(i).size()) + " backends";
        if (const Resolution* r = lookupOf(set.targets()[i])) {
          if (r->ttl.count() > 0) t += ", ttl " + formatAge(r->ttl.count() / 1000.0);
          t += ", next lookup in " + formatAge(secondsUntil(now, r->nextLookup));
        }
        if (!set.refused(i).empty()) t += ", left out (outside --allow-upstream): " + set.refusedText(i);
        t += "\n";
      } else if (!set.refused(i).empty()) {
        t += "  target " + set.targets()[i].text + ": left out (outside --allow-upstream)\n";
      }
    for (const auto& b : set.backends()) {
      std::string state = backendState(*b);
      if (b->probing) {
        state += ", probing";
      } else if (b->penalized()) {
        state += " " + fixed(penaltyLeft(*b, now), 1) + "s";
      }
      std::string probes;
      if (b->probes) probes = ", probes " + std::to_string(b->probes) + " (" + std::to_string(b->probeFailures) + " failed)";
      t += "  backend " + b->address.toString() + "  " + state + "  active " + std::to_string(b->active) + ", total " +
           std::to_string(b->total) + ", connect failures " + std::to_string(b->connectFailures) + probes + ", bytes " +
           std::to_string(b->bytesToBackend) + " out / " + std::to_string(b->bytesFromBackend) + " in\n";
    }
    if (set.backends().empty()) t += "  no backends\n";
  }
  if (!proxy_.lastError().empty())
    t += "\nlast error (" + formatAge(secondsBetween(proxy_.lastErrorAt(), now)) + " ago): " + proxy_.lastError() + "\n";
  return t;
}

void ShimStatus::serveControl(const HttpRequest& request, const HttpServer::Respond& respond) const {
  if (request.path == "/status") {
    if (request.query.find("format=text") != std::string::npos) {
      respond(HttpResponse::text(200, text()));
    } else {
      respond(HttpResponse::json(json()));
    }
  } else if (request.path == "/metrics") {
    respond(HttpResponse::metrics(metrics()));
  } else {
    respond(HttpResponse::text(404, "not found: try /status, /status?format=text or /metrics\n"));
  }
}

void ShimStatus::serveStatusPort(const HttpRequest&, const HttpServer::Respond& respond) const {
  respond(HttpResponse::text(200, text()));
}

}  // namespace connectable
