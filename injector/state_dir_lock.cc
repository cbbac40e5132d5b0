#include "injector/state_dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>

namespace connectable {

Result<StateDirLock> StateDirLock::acquire(const std::string& stateDir) {
  const std::string path = stateDir + "/injector.lock";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd.valid()) return errnoStatus("opening " + path, errno);
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) return errnoStatus("locking " + path, errno);
    char text[16] = {};
    const ssize_t n = ::pread(fd.get(), text, sizeof text - 1, 0);
    const long pid = n > 0 ? std::strtol(text, nullptr, 10) : 0;
    return Status::error("another injector" + (pid > 0 ? " (pid " + std::to_string(pid) + ")" : std::string()) +
                         " uses the state dir " + stateDir +
                         ": each injector needs its own --state-dir, or it would take over the other's shims");
  }
  // Ours: the pid is for the error above, read by the next one to try.
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd.get(), 0) != 0 || ::pwrite(fd.get(), pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size()))
    return errnoStatus("writing " + path, errno);
  return StateDirLock(std::move(fd));
}

}  // namespace connectable
