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
      resolver.watch(targets[i], [p, i](const Resolution& r) {
        if (r.pending) return;
        // A failed lookup with an older answer keeps serving it (stale); without one, the
        // target has no backends and says why.
        p->backends().update(i, r.backends, r.status.isOk() ? "" : r.status.message());
        p->backendsChanged();
      });
    }
  }
}

}  // namespace connectable
