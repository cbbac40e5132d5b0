#include "shim/discovery.h"

namespace connectable {

bool needsDiscovery(const Proxy& proxy) {
  for (const auto& port : proxy.ports())
    for (const auto& t : port->spec().targets)
      if (t.needsLookup()) return true;
  return false;
}

void attachDiscovery(ServiceResolver& resolver, Proxy& proxy) {
  for (const auto& port : proxy.ports()) {
    const auto& targets = port->spec().targets;
    for (size_t i = 0; i < targets.size(); ++i) {
      if (!targets[i].needsLookup()) continue;
      ListenPort* p = port.get();
      Proxy* px = &proxy;
      resolver.watch(targets[i], [p, px, i](const Resolution& r) {
        if (r.pending) return;
        // A failed lookup with an older answer keeps serving it (stale); without one, the
        // target has no backends and says why.
        p->backends().update(i, r.backends, r.status.isOk() ? "" : r.status.message(), r.stale);
        if (!r.status.isOk()) px->noteError("DNS " + p->spec().targets[i].text + ": " + r.status.message());
        p->backendsChanged();
      });
    }
  }
}

}  // namespace connectable
