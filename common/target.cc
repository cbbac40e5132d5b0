#include "common/target.h"

#include <arpa/inet.h>

#include <cctype>
#include <cstdio>

#include "common/quoted.h"
#include "common/utf8.h"

namespace connectable {
namespace {

bool isLabelChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
}

// What an error shows of the invalid character at s[i]: a whole UTF-8 character, never one
// byte of it (the error goes into JSON, problem records and logs, which a lone byte makes
// unreadable), or else the byte's value.
std::string invalidCharacter(std::string_view s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c > 0x20 && c < 0x7f) return "character " + quoted(s.substr(i, 1));
  if (c >= 0x80)
    if (size_t n = utf8SequenceLength(s, i)) return "character " + quoted(s.substr(i, n));
  char hex[8];
  std::snprintf(hex, sizeof hex, "0x%02x", c);
  return std::string("byte ") + hex;
}

bool looksLikeIpv4(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c)) && c != '.') return false;
  return true;
}

// For a literal 0.0.0.0 or [::]: what to write instead if the local host is what is meant.
std::string localHostHint(const SocketAddress& a) {
  if (!a.isUnspecified()) return "";
  return a.family() == AF_INET6 ? "; write [::1] if it is meant" : "; write 127.0.0.1 if it is meant";
}

}  // namespace

Result<uint16_t> parsePort(std::string_view text) {
  if (text.empty()) return Status::error("port is empty");
  for (char c : text) {
    if (!std::isdigit(static_cast<unsigned char>(c)))
      return Status::error("port " + quoted(text) + " is not a number from 1 to 65535");
  }
  // Leading zeros change no number: 006003 is port 6003, as 0080 is 80.
  std::string_view digits = text;
  while (digits.size() > 1 && digits.front() == '0') digits.remove_prefix(1);
  unsigned value = 0;
  for (char c : digits.substr(0, 6)) value = value * 10 + static_cast<unsigned>(c - '0');
  if (value < 1 || value > 65535)
    return Status::error("port " + quoted(text) + " is out of range (1-65535)");
  return static_cast<uint16_t>(value);
}

Status validateDnsName(std::string_view name) {
  if (name.empty()) return Status::error("name is empty");
  std::string_view body = name;
  if (body.back() == '.') body.remove_suffix(1);
  if (body.size() > 253)
    return Status::error("name of " + std::to_string(name.size()) + " characters is longer than 253");
  if (body.empty()) return Status::error("name " + quoted(name) + " has no labels");
  size_t start = 0;
  while (start <= body.size()) {
    size_t dot = body.find('.', start);
    if (dot == std::string_view::npos) dot = body.size();
    std::string_view label = body.substr(start, dot - start);
    if (label.empty()) return Status::error("name " + quoted(name) + " has an empty label");
    if (label.size() > 63)
      return Status::error("name " + quoted(name) + " has a label longer than 63 characters");
    for (size_t i = 0; i < label.size(); ++i) {
      if (!isLabelChar(label[i]))
        return Status::error("name " + quoted(name) + " has an invalid " + invalidCharacter(label, i));
    }
    if (label.front() == '-' || label.back() == '-')
      return Status::error("name " + quoted(name) + " has a label starting or ending with '-'");
    start = dot + 1;
  }
  return Status::ok();
}

Result<Target> parseTarget(std::string_view text) {
  Target t;
  t.text = std::string(text);
  if (text.empty()) return Status::error("target is empty");
  for (char c : text) {
    if (std::isspace(static_cast<unsigned char>(c)) || static_cast<unsigned char>(c) < 0x20)
      return Status::error("target " + quoted(text) + " contains white space or a control character");
  }

  if (text.front() == '[') {  // [IPv6]:port
    size_t close = text.find(']');
    if (close == std::string_view::npos)
      return Status::error("target " + quoted(text) + " has '[' without ']'");
    std::string_view ip = text.substr(1, close - 1);
    std::string_view rest = text.substr(close + 1);
    if (rest.empty() || rest.front() != ':')
      return Status::error("target " + quoted(text) + " needs a port after ']', as [fd00::5]:6379");
    auto port = parsePort(rest.substr(1));
    if (!port) return port.status().withContext("target " + quoted(text));
    if (size_t zone = ip.find('%'); zone != std::string_view::npos)
      return Status::error("target " + quoted(text) + ": IPv6 zones (" + quoted(ip.substr(zone)) +
                           ") are not supported; use a global or unique local address");
    auto addr = SocketAddress::parseIp(ip, *port);
    if (!addr || addr->family() != AF_INET6)
      return Status::error("target " + quoted(text) + ": " + quoted(ip) + " is not an IPv6 address");
    // [::ffff:a.b.c.d] reaches a.b.c.d: as that address it is one backend with it, and
    // --allow-upstream and the checks below see it as IPv4.
    addr = addr->unmapped();
    if (std::string why = unconnectableBecause(*addr); !why.empty())
      return Status::error("target " + quoted(text) + ": " + why + localHostHint(*addr));
    t.kind = Target::Kind::Literal;
    t.host = std::string(ip);
    t.port = *port;
    t.address = *addr;
    return t;
  }

  // A URL (tcp://db:5432, as Docker links wrote one) is refused for what it is, not as an
  // IPv6 address for its colons.
  if (size_t scheme = text.find("://"); scheme != std::string_view::npos) {
    std::string_view rest = text.substr(scheme + 3);
    rest = rest.substr(0, rest.find('/'));
    return Status::error("target " + quoted(text) + " has a scheme (" + quoted(text.substr(0, scheme + 3)) +
                         "): write HOST:PORT" + (rest.empty() ? std::string() : ", as " + std::string(rest)));
  }

  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {  // a bare name: SRV
    if (looksLikeIpv4(text)) {
      if (SocketAddress::parseIp(text, 0))
        return Status::error("target " + quoted(text) + " is an address without a port; write it as " +
                             std::string(text) + ":<port>");
      if (text.find('.') == std::string_view::npos)
        return Status::error("target " + quoted(text) +
                             " is a number, not a name: write HOST:PORT (as db.example.org:" + std::string(text) +
                             ") or a DNS SRV name");
      return Status::error("target " + quoted(text) +
                           " is neither an IPv4 address nor a name: write IPV4:PORT, HOST:PORT or a DNS SRV name");
    }
    if (Status s = validateDnsName(text); !s) return s.withContext("target " + quoted(text));
    t.kind = Target::Kind::Srv;
    t.host = std::string(text);
    return t;
  }
  if (text.find(':') != colon)
    return Status::error("target " + quoted(text) + " looks like an IPv6 address; write it as [addr]:port");

  std::string_view host = text.substr(0, colon);
  auto port = parsePort(text.substr(colon + 1));
  if (!port) return port.status().withContext("target " + quoted(text));
  if (host.empty()) return Status::error("target " + quoted(text) + " has no host before ':'");
  t.host = std::string(host);
  t.port = *port;
  if (looksLikeIpv4(host)) {
    auto addr = SocketAddress::parseIp(host, *port);
    if (!addr || addr->family() != AF_INET)
      return Status::error("target " + quoted(text) + ": " + quoted(host) + " is not an IPv4 address");
    if (std::string why = unconnectableBecause(*addr); !why.empty())
      return Status::error("target " + quoted(text) + ": " + why + localHostHint(*addr));
    t.kind = Target::Kind::Literal;
    t.address = *addr;
    return t;
  }
  if (Status s = validateDnsName(host); !s) return s.withContext("target " + quoted(text));
  t.kind = Target::Kind::HostPort;
  return t;
}

Result<std::vector<Target>> parseTargetList(std::string_view text) {
  std::vector<Target> out;
  if (text.empty()) return Status::error("no target given");
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    std::string_view piece = text.substr(start, comma == std::string_view::npos ? text.npos : comma - start);
    if (piece.empty()) return Status::error("empty target in list " + quoted(text));
    auto target = parseTarget(piece);
    if (!target) return target.status();
    out.push_back(std::move(*target));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

Result<ConnectSpec> parseConnectSpec(std::string_view portText, std::string_view targets) {
  auto port = parsePort(portText);
  if (!port) return port.status();
  auto list = parseTargetList(targets);
  if (!list) return list.status();
  ConnectSpec spec;
  spec.port = *port;
  spec.targets = std::move(*list);
  return spec;
}

Result<ConnectSpec> parseConnectSpec(std::string_view text) {
  size_t eq = text.find('=');
  if (eq == std::string_view::npos)
    return Status::error(quoted(text) + " has no '=': expected PORT=TARGET[,TARGET...]");
  auto spec = parseConnectSpec(text.substr(0, eq), text.substr(eq + 1));
  if (!spec) return spec.status().withContext(quoted(text));
  return spec;
}

std::string unconnectableBecause(const SocketAddress& address) {
  const SocketAddress a = address.unmapped();
  if (a.isUnspecified()) return a.ipString() + " is the unspecified address, which Linux connects to the local host";
  if (a.family() == AF_INET6) {
    const in6_addr& v6 = reinterpret_cast<const sockaddr_in6*>(a.sockaddr_ptr())->sin6_addr;
    if (IN6_IS_ADDR_LINKLOCAL(&v6))
      return a.ipString() + " is link-local, which needs a zone (not supported); use a global or unique local address";
    if (IN6_IS_ADDR_MULTICAST(&v6)) return a.ipString() + " is a multicast address, which TCP cannot connect to";
    return {};
  }
  const uint32_t v4 = ntohl(reinterpret_cast<const sockaddr_in*>(a.sockaddr_ptr())->sin_addr.s_addr);
  if (IN_MULTICAST(v4)) return a.ipString() + " is a multicast address, which TCP cannot connect to";
  if (v4 == INADDR_BROADCAST) return a.ipString() + " is the broadcast address, which TCP cannot connect to";
  return {};
}

std::string Target::lookupKey() const {
  std::string key = std::to_string(static_cast<int>(kind)) + "|";
  for (char c : host) key += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return key + "|" + std::to_string(port);
}

bool Target::asksDnsServer() const {
  if (kind != Kind::HostPort) return kind == Kind::Srv;
  std::string_view h = host;
  if (!h.empty() && h.back() == '.') h.remove_suffix(1);
  if (h.size() != 9) return true;
  for (size_t i = 0; i < h.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(h[i])) != "localhost"[i]) return true;
  return false;
}

std::string ConnectSpec::text() const { return std::to_string(port) + "=" + targetsText(); }

std::string ConnectSpec::targetsText() const {
  std::string out;
  for (size_t i = 0; i < targets.size(); ++i) {
    if (i) out += ',';
    out += targets[i].text;
  }
  return out;
}

}  // namespace connectable
