// One line of Docker's GET /events stream, whatever its bytes: parsed as the event stream's
// reader parses it, then read as the injector reads an event (the container it is about,
// its name, and for a create the labels in its attributes). Nothing may crash, throw or
// overflow; what comes out is no bigger than the line, a parsed event has a Type and an
// Action, and its times give Docker's sort key without overflow.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "injector/docker_container.h"
#include "injector/docker_event.h"
#include "injector/label_parser.h"
#include "tests/fuzz/fuzz_check.h"

using namespace connectable;
using connectable::fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view line(reinterpret_cast<const char*>(data), size);
  auto ev = parseDockerEvent(line);
  if (!ev) {
    check(!ev.status().message().empty());
    return 0;
  }
  check(!ev->type.empty() && !ev->action.empty());
  check(ev->type.size() <= size && ev->action.size() <= size && ev->actorId.size() <= size);
  for (const auto& [key, value] : ev->attributes) check(key.size() + value.size() <= size);
  check(ev->time >= 0 && ev->timeNano >= 0);
  check(ev->nanos() >= 0);
  const std::string id = ev->containerId();
  check(id.size() <= size);
  if (ev->isContainer()) check(id == ev->actorId);
  if (!ev->isContainer() && !ev->isNetwork()) check(id.empty());
  if (isContainerId(id)) check(shortContainerId(id).size() == 12);
  auto name = ev->attributes.find("name");
  (void)containerDisplayName(name == ev->attributes.end() ? "" : name->second, id);
  // A create's attributes are the container's labels: what the injector tracks it by.
  if (mentionsConnectable(ev->attributes)) {
    for (const LabelLimits& limits : {LabelLimits{}, LabelLimits{100}}) {
      ContainerRequest request = parseContainerLabels(ev->attributes, limits);
      for (size_t i = 1; i < request.connects.size(); ++i) check(request.connects[i - 1].port < request.connects[i].port);
      // Each becomes one exec argument, which a NUL would cut short.
      for (const auto& arg : request.shimArgs) check(arg.rfind("--", 0) == 0 && arg.find('\0') == std::string::npos);
      for (const auto& c : request.connects) check(c.text().find('\0') == std::string::npos);
      for (const auto& e : request.errors) check(!e.empty());
    }
  }
  return 0;
}
