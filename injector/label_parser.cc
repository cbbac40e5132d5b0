#include "injector/label_parser.h"

#include <algorithm>

#include "shim/shim_options.h"

namespace connectable {

const std::vector<std::string>& labelOptionNames() {
  // Not --dns, --user or --netns: where a container's lookups go and what the shim runs as
  // are the host operator's choice, never the container's.
  static const std::vector<std::string> names = {"balance",     "connect-timeout", "idle-timeout",
                                                 "max-conns",   "drain-timeout",   "upstream-netns",
                                                 "dns-min-ttl", "dns-timeout", "status-port"};
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
      // The probe's own port must not collide with a status port being checked.
      std::string probeFor = name == "status-port" && value == "1" ? "--connect=2=127.0.0.1:1" : probe;
      auto checked = parseShimOptions({probeFor, flag, name == "upstream-netns" ? "--netns-fd=3" : "--log-level=info"});
      if (!checked) {
        request.errors.push_back("label '" + key + "=" + value + "': " + checked.status().message());
        continue;
      }
      request.shimArgs.push_back(flag);
    }
  }
  std::sort(request.connects.begin(), request.connects.end(),
            [](const ConnectSpec& a, const ConnectSpec& b) { return a.port < b.port; });
  // A status port that is also a connect port would stop the shim: drop it, say why.
  for (auto it = request.shimArgs.begin(); it != request.shimArgs.end(); ++it) {
    if (it->rfind("--status-port=", 0) != 0) continue;
    std::string value = it->substr(14);
    if (std::any_of(request.connects.begin(), request.connects.end(),
                    [&](const ConnectSpec& c) { return std::to_string(c.port) == value; })) {
      request.errors.push_back("label 'connectable.status-port=" + value + "': port " + value + " is also a connect port");
      request.shimArgs.erase(it);
      break;
    }
  }
  return request;
}

}  // namespace connectable
