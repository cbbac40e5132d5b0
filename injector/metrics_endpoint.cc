#include "injector/metrics_endpoint.h"

#include <algorithm>
#include <vector>

#include "common/log.h"
#include "common/metrics.h"
#include "common/target.h"
#include "injector/shim_scrape.h"

namespace connectable {

Result<SocketAddress> parseListenAddress(const std::string& text) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos) return Status::error("'" + text + "' is not IP:PORT");
  std::string ip = text.substr(0, colon);
  if (ip.size() >= 2 && ip.front() == '[' && ip.back() == ']') ip = ip.substr(1, ip.size() - 2);
  auto port = parsePort(text.substr(colon + 1));
  if (!port) return port.status().withContext("'" + text + "'");
  auto address = SocketAddress::parseIp(ip, *port);
  if (!address) return Status::error("'" + text + "': '" + ip + "' is not an IP address");
  return *address;
}

namespace {

// A gather answers within kGatherDeadline; the connection waits a little longer for it
// (HttpServer's default, 2 s, would cut a scrape of 97 silent shims: 4 rounds of 500 ms).
constexpr Millis kGatherDeadline{8000};  // under Prometheus's default scrape_timeout, 10 s

HttpServer::Options serverOptions() {
  HttpServer::Options o;
  o.timeout = kGatherDeadline + Millis(2000);
  return o;
}

}  // namespace

MetricsEndpoint::MetricsEndpoint(EventLoop& loop, Injector& injector, Millis shimTimeout)
    : loop_(loop),
      injector_(injector),
      shimTimeout_(shimTimeout),
      server_(loop, [this](const HttpRequest& r, const HttpServer::Respond& respond) {
        if (r.path != "/metrics") {
          respond(HttpResponse::text(404, "not found: try /metrics\n"));
          return;
        }
        gather(respond);
      }, serverOptions()) {}

MetricsEndpoint::~MetricsEndpoint() { *alive_ = false; }

Status MetricsEndpoint::listen(const SocketAddress& address) {
  return server_.listenTcp(address).withContext("--metrics-listen");
}

std::string MetricsEndpoint::injectorMetrics() const {
  const InjectorCounters& c = injector_.counters();
  MetricsText m;
  m.family("connectable_injector_containers_watched", "gauge",
           "Containers with connect labels known to the injector, running or not, those whose every label is bad "
           "included (as connectable status lists them).");
  m.sample("connectable_injector_containers_watched", {}, c.containersWatched);
  size_t running = 0, waiting = 0;
  for (const auto& shim : injector_.supervisor().list()) ++(shim.shimPid != 0 ? running : waiting);
  m.family("connectable_injector_shims_running", "gauge", "Shim processes running now.");
  m.sample("connectable_injector_shims_running", {}, running);
  m.family("connectable_injector_shims_waiting", "gauge",
           "Containers whose shim is not running now and is to be started again: after it died, or while a port "
           "it needs is taken inside the container.");
  m.sample("connectable_injector_shims_waiting", {}, waiting);
  m.family("connectable_injector_shim_restarts_total", "counter",
           "Shims started again after they died on their own (tries while a port is taken are not counted).");
  m.sample("connectable_injector_shim_restarts_total", {}, injector_.supervisor().restartsTotal());
  m.family("connectable_injector_docker_reconnects_total", "counter", "Times the Docker event stream was connected again.");
  m.sample("connectable_injector_docker_reconnects_total", {}, c.dockerReconnects);
  m.family("connectable_injector_bad_labels_total", "counter", "Labels ignored because they were malformed.");
  m.sample("connectable_injector_bad_labels_total", {}, c.badLabels);
  m.family("connectable_injector_injections_total", "counter",
           "Shims started: early (before the start event) or at start or reconcile.");
  m.sample("connectable_injector_injections_total", {{"when", "early"}}, c.injectedEarly);
  m.sample("connectable_injector_injections_total", {{"when", "start"}}, c.injectedOnStart);
  m.family("connectable_injector_early_polls_total", "counter",
           "Reads of a starting container's cgroup, looking for its init before the start event.");
  m.sample("connectable_injector_early_polls_total", {}, c.earlyPolls);
  m.family("connectable_injector_injection_latency_seconds", "histogram",
           "From a container's create event to its shim being started.");
  m.histogram("connectable_injector_injection_latency_seconds", {}, InjectorCounters::latencyBounds(), c.latencyCounts,
              c.latencySum);
  return m.text();
}

void MetricsEndpoint::gather(const HttpServer::Respond& respond) {
  // Scrapes that arrive while one gathers share its answer: however many clients ask, the
  // shims are asked once at a time.
  if (waiting_) {
    waiting_->push_back(respond);
    return;
  }
  waiting_ = std::make_shared<std::vector<HttpServer::Respond>>(1, respond);
  // Only running shims are asked: one waiting to be started again has no socket to answer
  // on, and shows as connectable_shim_up 0 with no wait.
  std::vector<ShimInfo> shims = injector_.supervisor().list();
  std::stable_partition(shims.begin(), shims.end(), [](const ShimInfo& s) { return s.shimPid != 0; });
  std::vector<std::string> sockets;
  for (const auto& shim : shims)
    if (shim.shimPid != 0) sockets.push_back(shim.control);
  ShimScrapeLimits limits;
  limits.timeout = shimTimeout_;
  limits.deadline = kGatherDeadline;
  std::weak_ptr<bool> alive = alive_;
  scrapeShims(loop_, std::move(sockets), "/metrics", limits, [this, alive, shims, waiting = waiting_](ShimScrapeResult scraped) {
    auto a = alive.lock();
    if (!a || !*a) return;
    if (scraped.overBudget > 0)
      log::warn("metrics: shims' answers over the budget left out (shown as connectable_shim_up 0)",
                {{"shims", std::to_string(scraped.overBudget)}});
    MetricsMerger merger;
    merger.addOwn(injectorMetrics());
    MetricsText up;
    up.family("connectable_shim_up", "gauge", "1 when the container's shim answered on its control socket.");
    auto answered = [&](size_t i) {
      return i < scraped.replies.size() && scraped.replies[i] && scraped.replies[i]->code == 200;
    };
    for (size_t i = 0; i < shims.size(); ++i)
      up.sample("connectable_shim_up", {{"container", shims[i].containerName}, {"container_id", shims[i].containerId}},
                answered(i) ? 1 : 0);
    merger.addOwn(up.text());
    for (size_t i = 0; i < shims.size(); ++i) {
      if (!answered(i)) continue;
      merger.addFrom(scraped.replies[i]->body, {{"container", shims[i].containerName}, {"container_id", shims[i].containerId}});
      // Freed once merged: the answers, their merged samples and the text made of those are
      // then not all held at once.
      std::string().swap(scraped.replies[i]->body);
    }
    if (merger.cut() > 0)
      log::warn("metrics: shims' answers cut short: labelled, they would pass the merge's budget",
                {{"shims", std::to_string(merger.cut())}});
    if (merger.rejected() > 0)
      log::warn("metrics: lines of shims' answers left out: malformed, or samples of the injector's own families",
                {{"lines", std::to_string(merger.rejected())}});
    HttpResponse response = HttpResponse::metrics(merger.text());
    waiting_.reset();  // a scrape that a response below triggers starts a new gather
    for (const auto& r : *waiting) r(response);
  });
}

}  // namespace connectable
