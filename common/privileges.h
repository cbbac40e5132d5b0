// Privileges: what a shim gives up once its listeners exist. After dropPrivileges the
// process runs as an unprivileged user with no capabilities (not even in its bounding set),
// no_new_privs, and not dumpable, so a compromised shim can reach nothing it did not have.
// Call from the only thread, after every privileged step.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace connectable {

// A uid written as a number: decimal digits only, below (uid_t)-1, which setresuid reads as
// "unchanged". None for anything else, a user's name for one.
std::optional<uid_t> parseUid(std::string_view text);

// REQUIRES: called as root; `user` exists in the passwd database, or is a number: a uid
// that needs no entry there, whose group is the same number (the injector gives each shim
// one of its own from --shim-uids, so that no shim can signal another).
Status dropPrivileges(const std::string& user);

// Whether dropPrivileges(user) can work here: `user` is in the passwd database or a number,
// and neither its uid nor its group is root's. For checking arguments before anything
// starts: a user that cannot work is then a bad argument, not a failure with ports open.
Status checkUnprivilegedUser(const std::string& user);

// For a process started by another user: no capabilities (whatever it was given), then
// hardenProcess.
Status dropPrivilegesAsNonRoot();

// Hardening that needs no privilege: no_new_privs and not dumpable.
Status hardenProcess();

}  // namespace connectable
