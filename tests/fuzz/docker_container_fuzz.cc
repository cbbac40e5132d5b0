// Docker's reply to GET /containers/json or GET /containers/{id}/json, whatever its bytes:
// parsed by both parsers (each rejects the other's shape early), then read as the injector
// reads a container: its name, its display name, and the labels that ask for a shim.
// Nothing may crash, throw or overflow; what comes out is no bigger than the reply; a
// parsed container has an id, a running one a pid, and every skipped row a reason.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "injector/docker_container.h"
#include "injector/label_parser.h"
#include "tests/fuzz/fuzz_check.h"

using namespace connectable;
using connectable::fuzz::check;

namespace {

size_t inputSize = 0;

void checkText(const std::string& text) { check(text.size() <= inputSize); }

void checkId(const std::string& id) {
  check(!id.empty());
  checkText(id);
  if (isContainerId(id)) check(shortContainerId(id).size() == 12);
}

// What Injector::track does with a container's labels.
void readLabels(const Labels& labels, const std::string& name, const std::string& id) {
  for (const auto& [key, value] : labels) check(key.size() + value.size() <= inputSize);
  (void)containerDisplayName(name, id);
  if (!mentionsConnectable(labels)) return;
  for (const LabelLimits& limits : {LabelLimits{}, LabelLimits{100}}) {
    ContainerRequest request = parseContainerLabels(labels, limits);
    for (size_t i = 1; i < request.connects.size(); ++i) check(request.connects[i - 1].port < request.connects[i].port);
    // Each becomes one exec argument, which a NUL would cut short.
    for (const auto& arg : request.shimArgs) check(arg.rfind("--", 0) == 0 && arg.find('\0') == std::string::npos);
    for (const auto& c : request.connects) check(c.text().find('\0') == std::string::npos);
    for (const auto& e : request.errors) check(!e.empty());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  inputSize = size;
  std::string_view json(reinterpret_cast<const char*>(data), size);
  if (auto list = parseContainerList(json)) {
    for (const auto& c : list->containers) {
      checkId(c.id);
      for (const auto& n : c.names) checkText(n);
      checkText(c.state);
      checkText(c.networkMode);
      const std::string name = c.name();
      checkText(name);
      check(name.find('/') == std::string::npos);
      readLabels(c.labels, name, c.id);
    }
    for (const auto& s : list->skipped) {
      check(!s.why.isOk());
      checkText(s.id);
    }
  }
  if (auto c = parseContainerInspect(json)) {
    checkId(c->id);
    checkText(c->name);
    checkText(c->startedAt);
    checkText(c->networkMode);
    checkText(c->sandboxKey);
    check(c->pid >= 0);
    check(!c->running || c->pid > 0);
    (void)c->hostNetwork();
    readLabels(c->labels, c->name, c->id);
  }
  return 0;
}
