#include "common/privileges.h"

#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <limits>

namespace connectable {

namespace {

// Empties the bounding set, and the ambient set with it. Shrinking the bounding set needs
// CAP_SETPCAP: `required` says whether lacking it is an error (root) or not (another user).
Status dropBoundingSet(bool required) {
  // Up to the last capability the running kernel knows (PR_CAPBSET_READ says EINVAL past
  // it), not the headers' CAP_LAST_CAP: a newer kernel may have more.
  for (int cap = 0; cap < 64 && prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; ++cap) {
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && (required || errno != EPERM))
      return errnoStatus("prctl(PR_CAPBSET_DROP)", errno);
    if (required && prctl(PR_CAPBSET_READ, cap, 0, 0, 0) != 0)
      return Status::error("capability " + std::to_string(cap) + " is still in the bounding set");
  }
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  return Status::ok();
}

// Empties the inheritable, permitted and effective sets, then checks they are empty.
Status clearCapabilitySets() {
  struct __user_cap_header_struct header {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capset, &header, data) != 0) return errnoStatus("capset", errno);
  if (syscall(SYS_capget, &header, data) != 0) return errnoStatus("capget", errno);
  for (const auto& d : data)
    if (d.effective || d.permitted || d.inheritable) return Status::error("capabilities remain after dropping them");
  return Status::ok();
}

}  // namespace

Status hardenProcess() {
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return errnoStatus("prctl(PR_SET_NO_NEW_PRIVS)", errno);
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return errnoStatus("prctl(PR_SET_DUMPABLE)", errno);
  return Status::ok();
}

std::optional<uid_t> parseUid(std::string_view text) {
  if (text.empty() || text.size() > 10 || text.find_first_not_of("0123456789") != std::string_view::npos)
    return std::nullopt;
  const unsigned long long n = std::stoull(std::string(text));
  if (n >= std::numeric_limits<uid_t>::max()) return std::nullopt;
  return static_cast<uid_t>(n);
}

namespace {

struct UserIds {
  uid_t uid = 0;
  gid_t gid = 0;
};

Result<UserIds> unprivilegedUser(const std::string& user) {
  UserIds ids;
  if (!user.empty() && user.find_first_not_of("0123456789") == std::string::npos) {
    auto n = parseUid(user);
    if (!n) return Status::error("uid " + user + " is out of range");
    ids.uid = ids.gid = *n;
  } else {
    struct passwd* pw = getpwnam(user.c_str());
    if (!pw) return Status::error("unknown user '" + user + "'");
    ids.uid = pw->pw_uid;
    ids.gid = pw->pw_gid;
  }
  if (ids.uid == 0) return Status::error("user '" + user + "' is root; choose an unprivileged user");
  if (ids.gid == 0) return Status::error("user '" + user + "' has group root; choose an unprivileged user");
  return ids;
}

}  // namespace

Status checkUnprivilegedUser(const std::string& user) { return unprivilegedUser(user).status(); }

Status dropPrivileges(const std::string& user) {
  auto ids = unprivilegedUser(user);
  if (!ids) return ids.status();
  const uid_t uid = ids->uid;
  const gid_t gid = ids->gid;

  // The bounding set needs CAP_SETPCAP to shrink, so empty it while we still have it.
  if (Status s = dropBoundingSet(true); !s) return s;
  if (setgroups(0, nullptr) != 0) return errnoStatus("setgroups", errno);
  if (setresgid(gid, gid, gid) != 0) return errnoStatus("setresgid", errno);
  // Changing all uids away from 0 clears permitted and effective capabilities (no KEEPCAPS).
  if (setresuid(uid, uid, uid) != 0) return errnoStatus("setresuid", errno);

  // Belt and braces: clear any capability left, and check that root cannot come back.
  if (Status s = clearCapabilitySets(); !s) return s;
  if (setuid(0) == 0) return Status::error("could regain root after dropping privileges");
  return hardenProcess();
}

Status dropPrivilegesAsNonRoot() {
  // Started by another user, perhaps with capabilities (file or ambient ones): they go too.
  if (Status s = dropBoundingSet(false); !s) return s;
  if (Status s = clearCapabilitySets(); !s) return s;
  return hardenProcess();
}

}  // namespace connectable
