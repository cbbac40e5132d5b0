#include "injector/injector_lock.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>

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

// Why the root process `pid`, listening on an injector's name, is not an injector; empty
// when it may be one. Every injector holds CAP_SYS_ADMIN in our user namespace, on the
// host or in its container (it enters containers' namespaces with it); root in a container
// run without it (Docker's default) has root's uid but not the capability, and with
// --net=host it shares our abstract names. Such a process could take a name as it came
// free (an injector restarting) and keep every later injector out. Only what is read and
// shows otherwise clears a root holder: one we cannot look at (another pid namespace, or
// an AppArmor profile refusing us its /proc entries) is taken for the injector it may be.
std::string whyNotAnInjector(pid_t pid) {
  if (pid <= 0) return "";
  const std::string proc = "/proc/" + std::to_string(pid);
  struct stat theirs {}, ours {};
  if (stat((proc + "/ns/user").c_str(), &theirs) == 0 && stat("/proc/self/ns/user", &ours) == 0 &&
      (theirs.st_dev != ours.st_dev || theirs.st_ino != ours.st_ino))
    return "in another user namespace";
  std::ifstream status(proc + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("CapEff:", 0) != 0) continue;
    const unsigned long long effective = std::strtoull(line.c_str() + 7, nullptr, 16);
    constexpr int kCapSysAdmin = 21;
    return (effective >> kCapSysAdmin & 1) != 0 ? "" : "without CAP_SYS_ADMIN, which every injector has";
  }
  return "";
}

// "unix-dir:DEV:INO/NAME": the socket's directory, through every symlink, and its name
// there. The directory outlives the socket file; a missing one leaves the path as given.
std::string socketLocation(const std::string& path) {
  std::string canonical = path;
  if (char* real = realpath(path.c_str(), nullptr)) {
    canonical = real;
    std::free(real);
  }
  const size_t slash = canonical.rfind('/');  // the path is absolute: there is one
  const std::string dir = slash == 0 ? "/" : canonical.substr(0, slash);
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0) return "unix-path:" + canonical;
  return "unix-dir:" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + canonical.substr(slash);
}

// Hashed: any path fits the 107 bytes of an abstract name.
std::string hashedName(const std::string& identity) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fnv1a(identity)));
  return std::string("connectable-injector/") + hex;
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
  if (!answerers_.empty()) return Status::ok();
  loop_ = &loop;
  for (const auto& fd : fds_)
    if (Status s = answerProbesOn(fd.get(), loop); !s) return s;
  return Status::ok();
}

Status InjectorLock::answerProbesOn(int fd, EventLoop& loop) {
  if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) return errnoStatus("fcntl on the injector lock", errno);
  answerers_.push_back(std::make_unique<ProbeAnswerer>(fd));
  return loop.add(fd, EPOLLIN, answerers_.back().get());
}

std::vector<std::string> InjectorLock::namesFor(const DockerEndpoint& endpoint) {
  std::vector<std::string> identities;
  if (endpoint.kind != DockerEndpoint::Kind::Unix) {
    identities.push_back(endpoint.toString());
  } else {
    identities.push_back(socketLocation(endpoint.path));
    struct stat st {};
    // The format of the injectors that had this name alone: they and we still see each other.
    if (stat(endpoint.path.c_str(), &st) == 0)
      identities.push_back("unix-inode:" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino));
  }
  std::vector<std::string> names;
  for (const auto& identity : identities) names.push_back(hashedName(identity));
  return names;
}

std::string InjectorLock::nameForDaemon(const std::string& daemonId) {
  return hashedName("docker-daemon:" + daemonId);
}

Result<InjectorLock> InjectorLock::acquire(const DockerEndpoint& endpoint) {
  InjectorLock lock;
  for (const auto& name : namesFor(endpoint))
    if (Status s = lock.take(name, "already watches " + endpoint.toString()); !s) return s;
  return lock;
}

Status InjectorLock::claimDaemon(const std::string& daemonId, const DockerEndpoint& endpoint) {
  const size_t before = fds_.size();
  if (Status s = take(nameForDaemon(daemonId),
                      "already watches the Docker daemon behind " + endpoint.toString() + " (ID " + daemonId + ")");
      !s)
    return s;
  if (loop_ != nullptr && fds_.size() > before) return answerProbesOn(fds_.back().get(), *loop_);
  return Status::ok();
}

Status InjectorLock::take(const std::string& name, const std::string& what) {
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return errnoStatus("socket", errno);
  socklen_t len = 0;
  sockaddr_un addr = abstractAddress(name, &len);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    if (errno != EADDRINUSE) return errnoStatus("taking the injector lock", errno);
    ucred holder{};
    const bool answered = holderOf(name, &holder);
    std::string why = !answered ? "" : holder.uid != 0 ? "not root" : whyNotAnInjector(holder.pid);
    if (answered && why.empty()) {
      return Status::error("another connectable injector (pid " + std::to_string(holder.pid) + ") " + what +
                           "; two would both inject every labelled container");
    }
    // Not an injector (those run as root with CAP_SYS_ADMIN, and listen): someone squats
    // the name. Run anyway.
    warning_ += std::string(warning_.empty() ? "" : "; ") + "the injector lock @" + name + " is held by " +
                (answered ? "pid " + std::to_string(holder.pid) + " (uid " + std::to_string(holder.uid) + ", " + why + ")"
                          : std::string("a process that does not answer")) +
                ", not by an injector; running without it";
    return Status::ok();
  }
  // Listening, so a second injector can connect and read our pid (SO_PEERCRED); its
  // connection is accepted and closed once our loop runs (answerProbes).
  if (listen(fd.get(), 64) != 0) return errnoStatus("listen on the injector lock", errno);
  fds_.push_back(std::move(fd));
  return Status::ok();
}

}  // namespace connectable
