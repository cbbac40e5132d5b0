#include "injector/state_dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

namespace connectable {

namespace {

// A `connectable status` probing the lock holds it shared for a few microseconds: an
// injector starting at that moment must not take it for another injector.
constexpr int kTries = 25;
constexpr auto kBetweenTries = std::chrono::milliseconds(2);

}  // namespace

Result<StateDirLock> StateDirLock::acquire(const std::string& stateDir) {
  const std::string path = stateDir + "/injector.lock";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd.valid()) return errnoStatus("opening " + path, errno);
  int locked;
  for (int tries = 1; (locked = ::flock(fd.get(), LOCK_EX | LOCK_NB)) != 0 && errno == EWOULDBLOCK && tries < kTries;
       ++tries)
    std::this_thread::sleep_for(kBetweenTries);
  if (locked != 0) {
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

Result<bool> StateDirLock::heldByAnInjector(const std::string& stateDir) {
  const std::string path = stateDir + "/injector.lock";
  // Read-only and never created: a probe leaves the state dir as it found it.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) {
    if (errno == ENOENT) return false;  // every injector makes it before anything else
    return errnoStatus("opening " + path, errno);
  }
  // Shared, so that two probes never see each other; released as fd closes.
  if (::flock(fd.get(), LOCK_SH | LOCK_NB) == 0) return false;
  if (errno == EWOULDBLOCK) return true;
  return errnoStatus("locking " + path, errno);
}

}  // namespace connectable
