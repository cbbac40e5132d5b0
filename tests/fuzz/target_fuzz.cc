// Text that names backends: a connect label's value or a shim's --connect, whatever its
// bytes, read as a port, a DNS name, a target, a target list and PORT=TARGETS (whole, and
// as a label's key and value). Nothing may crash; an error says something; a port is
// 1-65535; a name is within DNS's limits; whatever parsed reads back the same from the
// text the shim and the injector pass on.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/target.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/same_target.h"

using namespace connectable;
using connectable::fuzz::check;
using connectable::fuzz::sameTarget;

namespace {

template <typename T>
void checkError(const Result<T>& r) {
  if (!r) check(!r.status().message().empty());
}

bool isNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
}

void checkName(std::string_view name) {
  check(!name.empty() && name.size() <= 254 && name.front() != '.');
  for (char c : name) check(isNameChar(c));
}

void checkTarget(const Target& t) {
  check(!t.text.empty() && !t.host.empty());
  switch (t.kind) {
    case Target::Kind::Srv:
      check(t.port == 0 && t.host == t.text);
      checkName(t.host);
      break;
    case Target::Kind::HostPort:
      check(t.port >= 1);
      checkName(t.host);
      break;
    case Target::Kind::Literal:
      check(t.port >= 1 && t.address.port() == t.port);
      // [::ffff:a.b.c.d] is the IPv4 address it carries.
      check(t.text.front() == '[' ? t.address.valid() : t.address.family() == AF_INET);
      break;
  }
  auto again = parseTarget(t.text);
  check(again.isOk() && sameTarget(*again, t));
}

void checkSpec(const ConnectSpec& spec) {
  check(spec.port >= 1 && !spec.targets.empty());
  for (const auto& t : spec.targets) checkTarget(t);
  auto again = parseConnectSpec(spec.text());
  check(again.isOk() && again->port == spec.port && again->targets.size() == spec.targets.size());
  for (size_t i = 0; i < spec.targets.size(); ++i) check(sameTarget(again->targets[i], spec.targets[i]));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  auto port = parsePort(text);
  checkError(port);
  if (port) {
    check(*port >= 1 && text.find_first_not_of("0123456789") == std::string_view::npos);
    auto again = parsePort(std::to_string(*port));
    check(again.isOk() && *again == *port);
  }

  Status name = validateDnsName(text);
  if (name) checkName(text);
  else check(!name.message().empty());

  auto target = parseTarget(text);
  checkError(target);
  if (target) checkTarget(*target);

  auto list = parseTargetList(text);
  checkError(list);
  if (list) {
    check(!list->empty());
    for (const auto& t : *list) checkTarget(t);
  }

  auto spec = parseConnectSpec(text);
  checkError(spec);
  if (spec) checkSpec(*spec);
  // The label's form, connect.<port>=<targets>: the same spec from the same two pieces.
  size_t eq = text.find('=');
  auto pieces = parseConnectSpec(text.substr(0, eq), eq == text.npos ? std::string_view() : text.substr(eq + 1));
  checkError(pieces);
  check(pieces.isOk() == spec.isOk());
  if (pieces) checkSpec(*pieces);
  return 0;
}
