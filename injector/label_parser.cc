#include "injector/label_parser.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <set>
#include <string_view>

#include "common/nearest_name.h"
#include "common/quoted.h"
#include "shim/shim_options.h"

namespace connectable {

const std::vector<std::string>& labelOptionNames() {
  // Not --dns, --user or --netns: where a container's lookups go and what the shim runs as
  // are the host operator's choice, never the container's.
  static const std::vector<std::string> names = {"balance",     "connect-timeout", "idle-timeout",
                                                 "max-conns",   "drain-timeout",   "upstream-netns",
                                                 "dns-min-ttl", "dns-timeout",     "status-port",
                                                 "tcp-keepalive"};
  return names;
}

namespace {

// connect.<port>, or connect[<port>] as gliderlabs/connectable's code read it.
bool isConnectKey(const std::string& key) { return key.rfind("connect.", 0) == 0 || key.rfind("connect[", 0) == 0; }

bool isConnectableKey(const std::string& key) { return isConnectKey(key) || key.rfind("connectable.", 0) == 0; }

// What a connect key says its port is; none for a '[' not closed at the key's end.
std::optional<std::string_view> portTextOf(const std::string& key) {
  std::string_view rest = std::string_view(key).substr(8);
  if (key[7] == '.') return rest;
  if (rest.empty() || rest.back() != ']') return std::nullopt;
  rest.remove_suffix(1);
  return rest;
}

// The shim's parser judges one option at a time next to a connect port of its own (port 1),
// which must not be the status port being checked.
std::string probeFor(const std::string& name, const std::string& value) {
  auto port = parsePort(value);
  bool one = name == "status-port" && port && *port == 1;
  return one ? "--connect=2=127.0.0.1:1" : "--connect=1=127.0.0.1:1";
}

// The option a mistyped name meant: the nearest within two edits (the options themselves are
// three or more apart), unless another is as near.
std::optional<std::string> nearestOption(const std::string& name) { return nearestName(name, labelOptionNames()); }

// The connect.PORT key a label key not read as one was likely meant as: one slip in its case
// ("Connect.6000"), its separator ("connect_6000", "connect:6000", "connect6000") or its
// word ("conect.6000", "connects.6000"). Only before a port number, so that other software's
// labels are not taken for ours.
std::optional<std::string> meantConnectKey(const std::string& key) {
  const size_t digits = key.find_last_not_of("0123456789");
  if (digits == std::string::npos || digits + 1 == key.size() || key.size() - digits - 1 > 5) return std::nullopt;
  const bool separated = !std::isalnum(static_cast<unsigned char>(key[digits]));
  std::string word = key.substr(0, separated ? digits : digits + 1);
  std::transform(word.begin(), word.end(), word.begin(), [](unsigned char c) { return std::tolower(c); });
  if (word.size() > 8 || editDistance(word, "connect") > 1) return std::nullopt;
  return "connect." + key.substr(digits + 1);
}

// "balance, connect-timeout, ..."
std::string optionList() {
  std::string list;
  for (const auto& option : labelOptionNames()) list += (list.empty() ? "" : ", ") + option;
  return list;
}

// Adds the spec's DNS lookups to `lookups`, or, when that would pass
// kMaxDnsLookupsPerContainer, leaves `lookups` as it was and says why.
std::optional<std::string> lookupsOverCap(const ConnectSpec& spec, std::set<std::string>& lookups) {
  std::set<std::string> added;
  for (const Target& target : spec.targets) {
    if (!target.asksDnsServer()) continue;
    std::string key = target.lookupKey();  // as the shim's resolver counts them
    if (!lookups.count(key)) added.insert(std::move(key));
  }
  if (lookups.size() + added.size() <= kMaxDnsLookupsPerContainer) {
    lookups.merge(added);
    return std::nullopt;
  }
  return std::to_string(added.size()) + " more DNS lookup" + (added.size() == 1 ? "" : "s") + ", after " +
         std::to_string(lookups.size()) + " in the labels before it, is over the " +
         std::to_string(kMaxDnsLookupsPerContainer) +
         " a container may have (an SRV name, or a host name with its port; each is refreshed in the "
         "background against the host's DNS server)";
}

}  // namespace

bool mentionsConnectable(const std::map<std::string, std::string>& labels) {
  for (const auto& [key, value] : labels) {
    // A mistyped connect key alone would otherwise go unnoticed: no log line, no status.
    if (isConnectableKey(key) || meantConnectKey(key)) return true;
  }
  return false;
}

ContainerRequest parseContainerLabels(const std::map<std::string, std::string>& labels, const LabelLimits& limits) {
  ContainerRequest request;
  // Ports are numbers, as the shim reads them: connect.80 and connect.080 are one port, which
  // the shim would refuse to take twice. Of the valid labels for one port, the one written
  // with fewest leading zeros keeps it (connect.80 over connect.080, as a user means it),
  // then the first in key order; the others are reported, in key order with the rest.
  std::map<std::string, Result<ConnectSpec>> specs;
  std::map<uint16_t, std::string> portLabels;
  std::set<std::string> dnsLookups;  // of the connect labels taken so far
  for (const auto& [key, value] : labels) {
    if (!isConnectKey(key) || key.size() > kMaxLabelKey || value.size() > kMaxLabelValue) continue;
    auto portText = portTextOf(key);
    if (!portText) continue;
    const auto& spec = specs.emplace(key, parseConnectSpec(*portText, value)).first->second;
    if (!spec) continue;
    auto [holder, fresh] = portLabels.emplace(spec->port, key);
    if (!fresh && portText->size() < portTextOf(holder->second)->size()) holder->second = key;
  }
  for (const auto& [key, value] : labels) {
    if (!isConnectableKey(key)) continue;
    if (key.size() > kMaxLabelKey) {
      request.errors.push_back("label " + quoted(key) + ": key of " + std::to_string(key.size()) +
                               " bytes is longer than " + std::to_string(kMaxLabelKey));
      continue;
    }
    if (value.size() > kMaxLabelValue) {
      request.errors.push_back("label " + quoted(key) + ": value of " + std::to_string(value.size()) +
                               " bytes is longer than " + std::to_string(kMaxLabelValue));
      continue;
    }
    const std::string label = "label " + quoted(key + "=" + value);
    if (isConnectKey(key)) {
      auto parsed = specs.find(key);
      if (parsed == specs.end()) {  // no port in the key, so none parsed above
        request.errors.push_back(label + ": expected connect.PORT or connect[PORT]");
        continue;
      }
      auto& spec = parsed->second;
      if (!spec) {
        request.errors.push_back(label + ": " + spec.status().message());
        continue;
      }
      const std::string& holder = portLabels.at(spec->port);
      if (holder != key) {
        request.errors.push_back(label + ": port " + std::to_string(spec->port) +
                                 " is already taken by label " + quoted(holder));
        continue;
      }
      if (auto over = lookupsOverCap(*spec, dnsLookups)) {
        request.errors.push_back(label + ": " + *over);
        portLabels.erase(spec->port);
        continue;
      }
      request.connects.push_back(std::move(*spec));
    } else if (key.rfind("connectable.", 0) == 0) {
      std::string name = key.substr(12);
      const auto& known = labelOptionNames();
      if (std::find(known.begin(), known.end(), name) == known.end()) {
        if (name == "dns" || name == "user" || name == "data-path" || name == "allow-upstream") {
          request.errors.push_back(label + ": '" + name + "' is the host's choice (connectable --" +
                                   name + "), which no label can change");
        } else {
          auto meant = nearestOption(name);
          request.errors.push_back(label + ": unknown option " + quoted(name) +
                                   (meant ? " (did you mean '" + *meant + "'?)" : "") + "; options are " +
                                   optionList());
        }
        continue;
      }
      std::string flag = "--" + name + "=" + value;
      auto checked = parseShimOptions({probeFor(name, value), flag,
                                       name == "upstream-netns" ? "--netns-fd=3" : "--log-level=info"});
      if (!checked) {
        request.errors.push_back(label + ": " + checked.status().message());
        continue;
      }
      const size_t asked = checked->proxy.maxConns;  // 0 is unlimited
      if (name == "max-conns" && limits.maxConns != 0 && (asked == 0 || asked > limits.maxConns)) {
        request.errors.push_back(label + ": more than the host's --max-conns " +
                                 std::to_string(limits.maxConns) + ", which applies");
        continue;
      }
      if (name == "dns-min-ttl" && checked->dnsMinTtl < limits.dnsMinTtl) {
        const auto ms = limits.dnsMinTtl.count();  // as a user writes it: 1s, 1500ms
        request.errors.push_back(label + ": shorter than the host's --dns-min-ttl " +
                                 (ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + "ms") +
                                 ", which applies");
        continue;
      }
      request.shimArgs.push_back(flag);
    }
  }
  if (!request.wanted()) {
    bool connectKey = false, option = false;
    std::string hint;
    for (const auto& [key, value] : labels) {
      connectKey = connectKey || isConnectKey(key);
      option = option || key.rfind("connectable.", 0) == 0;
      if (auto meant = isConnectableKey(key) ? std::nullopt : meantConnectKey(key); meant && hint.empty())
        hint = " (did you mean '" + *meant + "', not '" + key + "'?)";
    }
    if (connectKey) request.noShimBecause = "it has no usable connect.PORT label" + hint;
    else if (option) request.noShimBecause = "it has no connect.PORT label, so its connectable.* options apply to nothing" + hint;
    else if (!hint.empty()) request.noShimBecause = "it has no connect.PORT label" + hint;
  }
  std::sort(request.connects.begin(), request.connects.end(),
            [](const ConnectSpec& a, const ConnectSpec& b) { return a.port < b.port; });
  // A status port that is also a connect port would stop the shim: drop it, say why.
  for (auto it = request.shimArgs.begin(); it != request.shimArgs.end(); ++it) {
    if (it->rfind("--status-port=", 0) != 0) continue;
    std::string value = it->substr(14);
    auto port = parsePort(value);  // the shim's parser accepted it above
    auto taken = port ? portLabels.find(*port) : portLabels.end();
    if (taken != portLabels.end()) {
      request.errors.push_back("label 'connectable.status-port=" + value + "': port " + std::to_string(*port) +
                               " is also a connect port (label '" + taken->second + "')");
      request.shimArgs.erase(it);
      break;
    }
  }
  return request;
}

}  // namespace connectable
