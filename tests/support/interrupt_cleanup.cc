#include "tests/support/interrupt_cleanup.h"

#include <pthread.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

namespace connectable::testing::interrupt_cleanup {
namespace {

// Fixed tables of atomics: the signal handler may neither allocate nor lock.
constexpr size_t kChildren = 1024;
constexpr size_t kNamespaces = 64;
constexpr size_t kDirs = 512;
constexpr size_t kPathMax = 128;

std::atomic<pid_t> children[kChildren];

enum : int { kFree = 0, kWriting = 1, kReady = 2 };
struct PathSlot {
  std::atomic<int> state{kFree};
  char path[kPathMax];
};
PathSlot namespaces[kNamespaces];
PathSlot dirs[kDirs];

// A command's arguments, each ended by a NUL; `order` runs the latest added first.
constexpr size_t kCommands = 256;
constexpr size_t kCommandMax = 512;
constexpr size_t kArgsMax = 16;
struct CommandSlot {
  std::atomic<int> state{kFree};
  std::atomic<uint64_t> order{0};
  char args[kCommandMax];
  size_t length = 0;
};
CommandSlot commands[kCommands];
std::atomic<uint64_t> commandsAdded{0};

std::string joined(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) out += a + '\0';
  return out;
}

// Whose entries the tables hold (see forgetInChild).
std::atomic<pid_t> owner{0};

void addPath(PathSlot* slots, size_t count, const std::string& path) {
  if (path.size() >= kPathMax) return;
  for (size_t i = 0; i < count; ++i) {
    int expected = kFree;
    if (!slots[i].state.compare_exchange_strong(expected, kWriting)) continue;
    std::memcpy(slots[i].path, path.c_str(), path.size() + 1);
    slots[i].state.store(kReady);
    return;
  }
}

void removePath(PathSlot* slots, size_t count, const std::string& path) {
  for (size_t i = 0; i < count; ++i) {
    if (slots[i].state.load() != kReady || path != slots[i].path) continue;
    int expected = kReady;
    if (slots[i].state.compare_exchange_strong(expected, kFree)) return;
  }
}

// The system call itself: glibc's fork runs atfork handlers, and a sanitizer's fork
// takes locks the interrupted thread may hold.
void runAndWait(char* const argv[]) {
  pid_t pid = static_cast<pid_t>(syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0));
  if (pid == 0) {
    execv(argv[0], argv);
    _exit(127);
  }
  if (pid > 0) waitpid(pid, nullptr, 0);
}

// The commands still registered, the latest added first.
void runCommands() {
  for (;;) {
    CommandSlot* latest = nullptr;
    for (auto& slot : commands)
      if (slot.state.load() == kReady && (!latest || slot.order.load() > latest->order.load())) latest = &slot;
    if (!latest) return;
    char* argv[kArgsMax + 1];
    size_t n = 0;
    for (size_t at = 0; at < latest->length && n < kArgsMax; at += std::strlen(latest->args + at) + 1)
      argv[n++] = latest->args + at;
    argv[n] = nullptr;
    runAndWait(argv);
    latest->state.store(kFree);
  }
}

// Async-signal-safe: kill, waitpid, umount2, unlink, clone, execve.
void endAll(bool removeDirs) {
  if (getpid() != owner.load()) return;
  for (auto& slot : children) {
    pid_t target = slot.load();
    if (target != 0) kill(target, SIGKILL);
  }
  for (auto& slot : children) {
    pid_t target = slot.exchange(0);
    if (target != 0) waitpid(target < 0 ? -target : target, nullptr, 0);  // unreaped, a group leader holds its group
  }
  runCommands();
  for (auto& slot : namespaces) {
    if (slot.state.load() != kReady) continue;
    umount2(slot.path, MNT_DETACH);  // what `ip netns del` does
    unlink(slot.path);
    slot.state.store(kFree);
  }
  if (!removeDirs) return;
  static char* argv[kDirs + 3];
  size_t n = 0;
  argv[n++] = const_cast<char*>("/bin/rm");
  argv[n++] = const_cast<char*>("-rf");
  for (auto& slot : dirs)
    if (slot.state.load() == kReady) argv[n++] = slot.path;
  argv[n] = nullptr;
  if (n > 2) runAndWait(argv);
}

void onSignal(int signo) {
  const int saved = errno;
  endAll(/*removeDirs=*/true);
  errno = saved;
  // SA_RESETHAND made the disposition the default again: the signal, raised once more and
  // delivered as this returns, ends the program as it would have without us.
  raise(signo);
}

// At exit: children, commands and namespaces of a case whose destructors a caught crash
// skipped.
struct AtExit {
  ~AtExit() { endAll(/*removeDirs=*/false); }
} atExit;

// A forked child is a program of its own: it inherits none of its parent's entries.
void forgetInChild() {
  for (auto& slot : children) slot.store(0);
  for (auto& slot : namespaces) slot.state.store(kFree);
  for (auto& slot : dirs) slot.state.store(kFree);
  for (auto& slot : commands) slot.state.store(kFree);
  owner.store(getpid());
}

void installOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    owner.store(getpid());
    pthread_atfork(nullptr, nullptr, forgetInChild);
    for (int signo : {SIGINT, SIGTERM, SIGHUP}) {
      struct sigaction old {};
      sigaction(signo, nullptr, &old);
      if (old.sa_handler != SIG_DFL) continue;  // ignored on purpose (nohup), or handled by the program
      struct sigaction action {};
      action.sa_handler = onSignal;
      sigemptyset(&action.sa_mask);
      action.sa_flags = SA_RESETHAND;
      sigaction(signo, &action, nullptr);
    }
  });
}

}  // namespace

void addChild(pid_t target) {
  installOnce();
  for (auto& slot : children) {
    pid_t expected = 0;
    if (slot.compare_exchange_strong(expected, target)) return;
  }
}

void removeChild(pid_t target) {
  for (auto& slot : children) {
    pid_t expected = target;
    if (slot.compare_exchange_strong(expected, 0)) return;
  }
}

void addNetns(const std::string& path) {
  installOnce();
  addPath(namespaces, kNamespaces, path);
}

void removeNetns(const std::string& path) { removePath(namespaces, kNamespaces, path); }

void addDir(const std::string& path) {
  installOnce();
  addPath(dirs, kDirs, path);
}

void addCommand(const std::vector<std::string>& argv) {
  installOnce();
  const std::string args = joined(argv);
  if (argv.empty() || argv.size() > kArgsMax || args.size() > kCommandMax) return;
  for (auto& slot : commands) {
    int expected = kFree;
    if (!slot.state.compare_exchange_strong(expected, kWriting)) continue;
    std::memcpy(slot.args, args.data(), args.size());
    slot.length = args.size();
    slot.order.store(++commandsAdded);
    slot.state.store(kReady);
    return;
  }
}

void removeCommand(const std::vector<std::string>& argv) {
  const std::string args = joined(argv);
  for (auto& slot : commands) {
    if (slot.state.load() != kReady || slot.length != args.size() || std::memcmp(slot.args, args.data(), args.size()) != 0)
      continue;
    int expected = kReady;
    if (slot.state.compare_exchange_strong(expected, kFree)) return;
  }
}

}  // namespace connectable::testing::interrupt_cleanup
