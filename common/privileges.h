// Privileges: what a shim gives up once its listeners exist. After dropPrivileges the
// process runs as an unprivileged user with no capabilities (not even in its bounding set),
// no_new_privs, and not dumpable, so a compromised shim can reach nothing it did not have.
// Call from the only thread, after every privileged step.
#pragma once

#include <string>

#include "common/status.h"

namespace connectable {

// REQUIRES: called as root; `user` exists in the passwd database.
Status dropPrivileges(const std::string& user);

// For a process started by another user: no capabilities (whatever it was given), then
// hardenProcess.
Status dropPrivilegesAsNonRoot();

// Hardening that needs no privilege: no_new_privs and not dumpable.
Status hardenProcess();

}  // namespace connectable
