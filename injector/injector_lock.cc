#include "injector/injector_lock.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

namespace connectable {
namespace {

// FNV-1a: stable across builds, so an old and a new injector agree on the name.
uint64_t fnv1a(const std::string& text) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

sockaddr_un abstractAddress(const std::string& name, socklen_t* len) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  // sun_path[0] stays NUL: an abstract name, no file.
  std::memcpy(addr.sun_path + 1, name.data(), name.size());
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  return addr;
}

// Who holds `name`, from the listener's credentials; false if nobody listens there, or
// its backlog stays full. Never blocks: a listener that never accepts, with its backlog
// filled (anyone may make one), would otherwise hold us in connect() for ever.
bool holderOf(const std::string& name, ucred* cred) {
  socklen_t len = 0;
  sockaddr_un addr = abstractAddress(name, &len);
  for (int attempt = 0; attempt < 10; ++attempt) {
    UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd.valid()) return false;
    if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), len) == 0) {
      socklen_t credLen = sizeof *cred;
      return getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, cred, &credLen) == 0;
    }
    if (errno != EAGAIN) return false;
    // Full for now: an injector answers its probes from its loop, busy for a moment.
    timespec pause{0, 20'000'000};
    nanosleep(&pause, nullptr);
  }
  return false;
}

}  // namespace

class InjectorLock::ProbeAnswerer : public IoHandler {
 public:
  explicit ProbeAnswerer(int fd) : fd_(fd) {}
  void onIo(uint32_t) override {
    // The probe has what it came for (our credentials, taken at connect): close it.
    while (true) {
      int probe = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (probe < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        return;  // EAGAIN; or out of fds, retried at the next readiness
      }
      ::close(probe);
    }
  }

 private:
  int fd_;
};

InjectorLock::InjectorLock() = default;
InjectorLock::~InjectorLock() = default;  // closing the fd takes it out of the loop too
InjectorLock::InjectorLock(InjectorLock&&) noexcept = default;
InjectorLock& InjectorLock::operator=(InjectorLock&&) noexcept = default;

Status InjectorLock::answerProbes(EventLoop& loop) {
  if (!fd_.valid() || answerer_) return Status::ok();
  if (fcntl(fd_.get(), F_SETFL, fcntl(fd_.get(), F_GETFL) | O_NONBLOCK) != 0)
    return errnoStatus("fcntl on the injector lock", errno);
  answerer_ = std::make_unique<ProbeAnswerer>(fd_.get());
  return loop.add(fd_.get(), EPOLLIN, answerer_.get());
}

std::string InjectorLock::nameFor(const DockerEndpoint& endpoint) {
  std::string identity = endpoint.toString();
  struct stat st {};
  if (endpoint.kind == DockerEndpoint::Kind::Unix && stat(endpoint.path.c_str(), &st) == 0)
    identity = "unix-inode:" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fnv1a(identity)));
  return std::string("connectable-injector/") + hex;
}

Result<InjectorLock> InjectorLock::acquire(const DockerEndpoint& endpoint) {
  const std::string name = nameFor(endpoint);
  InjectorLock lock;
  lock.fd_.reset(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!lock.fd_.valid()) return errnoStatus("socket", errno);
  socklen_t len = 0;
  sockaddr_un addr = abstractAddress(name, &len);
  if (bind(lock.fd_.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    if (errno != EADDRINUSE) return errnoStatus("taking the injector lock", errno);
    ucred holder{};
    if (holderOf(name, &holder) && holder.uid == 0) {
      return Status::error("another connectable injector (pid " + std::to_string(holder.pid) + ") already watches " +
                           endpoint.toString() + "; two would both inject every labelled container");
    }
    // Not an injector (those run as root and listen): someone squats the name. Run anyway.
    InjectorLock unheld;
    unheld.warning_ = "the injector lock @" + name + " is held by " +
                      (holder.pid > 0 ? "pid " + std::to_string(holder.pid) + " (uid " + std::to_string(holder.uid) + ")"
                                      : std::string("a process that does not answer")) +
                      ", not by an injector; running without it";
    return unheld;
  }
  // Listening, so a second injector can connect and read our pid (SO_PEERCRED); its
  // connection is accepted and closed once our loop runs (answerProbes).
  if (listen(lock.fd_.get(), 64) != 0) return errnoStatus("listen on the injector lock", errno);
  return lock;
}

}  // namespace connectable
