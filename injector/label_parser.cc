#include "injector/label_parser.h"

#include <algorithm>

#include "shim/shim_options.h"

namespace connectable {

const std::vector<std::string>& labelOptionNames() {
  // Not --dns, --user or --netns: where a container's lookups go and what the shim runs as
  // are the host operator's choice, never the container's.
  static const std::vector<std::string> names = {"balance",     "connect-timeout", "idle-timeout",
                                                 "max-conns",   "drain-timeout",   "upstream-netns",
                                                 "dns-min-ttl", "dns-timeout"};
  return names;
}

bool mentionsConnectable(const std::map<std::string, std::string>& labels) {
  for (const auto& [key, value] : labels) {
    if (key.rfind("connect.", 0) == 0 || key.rfind("connectable.", 0) == 0) return true;
  }
  return false;
}

ContainerRequest parseContainerLabels(const std::map<std::string, std::string>& labels) {
  ContainerRequest request;
  const std::string probe = "--connect=1=127.0.0.1:1";  // lets the shim's parser judge one option
  for (const auto& [key, value] : labels) {
    if (key.rfind("connect.", 0) == 0) {
      auto spec = parseConnectSpec(std::string_view(key).substr(8), value);
      if (!spec) {
        request.errors.push_back("label '" + key + "=" + value + "': " + spec.status().message());
        continue;
      }
      request.connects.push_back(std::move(*spec));
    } else if (key.rfind("connectable.", 0) == 0) {
      std::string name = key.substr(12);
      const auto& known = labelOptionNames();
      if (std::find(known.begin(), known.end(), name) == known.end()) {
        request.errors.push_back("label '" + key + "': unknown option '" + name + "'");
        continue;
      }
      std::string flag = "--" + name + "=" + value;
      auto checked = parseShimOptions({probe, flag, name == "upstream-netns" ? "--netns-fd=3" : "--log-level=info"});
      if (!checked) {
        request.errors.push_back("label '" + key + "=" + value + "': " + checked.status().message());
        continue;
      }
      request.shimArgs.push_back(flag);
    }
  }
  std::sort(request.connects.begin(), request.connects.end(),
            [](const ConnectSpec& a, const ConnectSpec& b) { return a.port < b.port; });
  return request;
}

}  // namespace connectable
