// InjectorCommandLine: the options of `connectable`, parsed and checked before it starts.
// Options meant for every shim are checked by the shim's own parser and passed through.
// Pure functions over plain values, but for the shims' user, looked up in the passwd
// database as they will, and the users and groups a --shim-uids range must not hold, read
// from the account files; no thread-safety concerns.
#pragma once

#include <string>
#include <vector>

#include "common/log.h"
#include "common/status.h"
#include "injector/injector.h"

namespace connectable {

struct InjectorCommandLine {
  std::string command = "run";  // or "status" (later)
  std::string docker;           // --docker; empty: DOCKER_HOST, then the default socket
  std::string metricsListen;    // --metrics-listen IP:PORT; empty: no /metrics
  InjectorOptions options;
  log::Level logLevel = log::Level::Info;
  log::Format logFormat = log::Format::Text;
  bool help = false;
  bool version = false;
};

// The users and groups of this host (passwd and group format), which no --shim-uids uid may
// be: a shim would run as that user, or in that group. A file that does not exist holds none.
struct AccountFiles {
  std::string passwd = "/etc/passwd";
  std::string group = "/etc/group";
};

// `selfExe` locates the shim next to the injector when --shim is not given.
Result<InjectorCommandLine> parseInjectorCommandLine(const std::vector<std::string>& args, const std::string& selfExe,
                                                     const AccountFiles& accounts = AccountFiles());
const char* injectorUsage();

}  // namespace connectable
