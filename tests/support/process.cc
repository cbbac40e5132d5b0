#include "tests/support/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "tests/support/interrupt_cleanup.h"

namespace connectable::testing {
namespace {

std::vector<char*> toArgv(const std::vector<std::string>& argv) {
  std::vector<char*> out;
  for (const auto& a : argv) out.push_back(const_cast<char*>(a.c_str()));
  out.push_back(nullptr);
  return out;
}

}  // namespace

RunResult run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
              const std::string& input) {
  RunResult result;
  int outPipe[2], errPipe[2], inPipe[2];
  if (pipe2(outPipe, O_CLOEXEC) || pipe2(errPipe, O_CLOEXEC) || pipe2(inPipe, O_CLOEXEC))
    throw std::runtime_error("pipe2 failed");
  auto args = toArgv(argv);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(inPipe[0], 0);
    dup2(outPipe[1], 1);
    dup2(errPipe[1], 2);
    close_range(3, ~0u, 0);  // whatever the test runner left open is not the child's
    execvp(args[0], args.data());
    dprintf(2, "exec %s: %s\n", args[0], strerror(errno));
    _exit(127);
  }
  close(outPipe[1]);
  close(errPipe[1]);
  close(inPipe[0]);
  if (!input.empty()) {
    signal(SIGPIPE, SIG_IGN);
    size_t off = 0;
    while (off < input.size()) {
      ssize_t n = write(inPipe[1], input.data() + off, input.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
  }
  close(inPipe[1]);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  struct pollfd fds[2] = {{outPipe[0], POLLIN, 0}, {errPipe[0], POLLIN, 0}};
  int open = 2;
  bool killed = false;
  while (open > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      ::kill(pid, SIGKILL);
      killed = true;
      break;
    }
    if (poll(fds, 2, static_cast<int>(left.count())) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[65536];
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        (i == 0 ? result.out : result.err).append(buf, static_cast<size_t>(n));
      } else {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open;
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) close(f.fd);
  int status = 0;
  waitpid(pid, &status, 0);
  result.exitCode = (!killed && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
  return result;
}

RunResult sh(const std::string& command, std::chrono::milliseconds timeout) {
  return run({"/bin/sh", "-c", command}, timeout);
}

Child Child::spawn(const std::vector<std::string>& argv, const std::string& logPath, const std::vector<int>& inherit,
                   bool ownGroup) {
  Child c;
  c.logPath_ = logPath;
  c.group_ = ownGroup;
  auto args = toArgv(argv);
  std::vector<int> moved(inherit.size(), -1);  // allocated here: the child only writes to it
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    if (ownGroup) setpgid(0, 0);
    int fd = open(logPath.empty() ? "/dev/null" : logPath.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int null = open("/dev/null", O_RDONLY);
    dup2(null, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    // Unblock everything: a test runner may have blocked signals we rely on (SIGTERM, SIGHUP).
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    // Above every target first, so placing one cannot clobber another not yet placed.
    const int first = 3;
    const int after = first + static_cast<int>(inherit.size());
    for (size_t i = 0; i < inherit.size(); ++i) moved[i] = fcntl(inherit[i], F_DUPFD, after);
    for (size_t i = 0; i < moved.size(); ++i) {
      if (moved[i] < 0 || dup2(moved[i], first + static_cast<int>(i)) < 0) {
        dprintf(2, "passing fd %d: %s\n", inherit[i], strerror(errno));
        _exit(127);
      }
    }
    close_range(static_cast<unsigned>(after), ~0u, 0);
    execvp(args[0], args.data());
    dprintf(2, "exec %s: %s\n", args[0], strerror(errno));
    _exit(127);
  }
  if (ownGroup) setpgid(pid, pid);  // both sides: whichever runs first, signals find the group
  c.pid_ = pid;
  interrupt_cleanup::addChild(c.target());
  return c;
}

Child::Child(Child&& o) noexcept
    : pid_(o.pid_), group_(o.group_), status_(o.status_), reaped_(o.reaped_), logPath_(std::move(o.logPath_)) {
  o.pid_ = -1;
}

Child& Child::operator=(Child&& o) noexcept {
  if (this != &o) {
    kill();
    pid_ = o.pid_;
    group_ = o.group_;
    status_ = o.status_;
    reaped_ = o.reaped_;
    logPath_ = std::move(o.logPath_);
    o.pid_ = -1;
  }
  return *this;
}

Child::~Child() { kill(); }

bool Child::running() {
  if (pid_ < 0 || reaped_) return false;
  int status;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    reaped_ = true;
    status_ = status;
    interrupt_cleanup::removeChild(target());
    return false;
  }
  return true;
}

void Child::signal(int signo) {
  if (running()) ::kill(target(), signo);
}

int Child::wait(std::chrono::milliseconds timeout) {
  if (pid_ < 0) return -1;
  if (!waitFor([&] { return !running(); }, timeout)) return -1;
  if (WIFEXITED(status_)) return WEXITSTATUS(status_);
  if (WIFSIGNALED(status_)) return 128 + WTERMSIG(status_);
  return -1;
}

void Child::kill() {
  if (pid_ < 0 || reaped_) return;
  ::kill(target(), SIGKILL);  // unreaped, the child holds its pid, and so the group's id
  int status;
  waitpid(pid_, &status, 0);
  reaped_ = true;
  status_ = status;
  interrupt_cleanup::removeChild(target());
}

std::string Child::log() const { return logPath_.empty() ? "" : readFile(logPath_); }

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

ForkedRun runForked(const std::function<void(int report)>& body) {
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    close(report[0]);
    body(report[1]);
    _exit(0);
  }
  close(report[1]);
  ForkedRun run;
  char buf[4096];
  for (ssize_t n; (n = read(report[0], buf, sizeof buf)) > 0;) run.report.append(buf, static_cast<size_t>(n));
  close(report[0]);
  waitpid(pid, &run.status, 0);
  return run;
}

namespace {
// Every directory tempDir() made, removed when the test program ends; set
// CONNECTABLE_KEEP_TEST_DIRS=1 to keep them (logs of a failing run).
struct TempDirs {
  std::vector<std::string> dirs;
  ~TempDirs() {
    if (std::getenv("CONNECTABLE_KEEP_TEST_DIRS")) return;
    for (const auto& d : dirs) run({"rm", "-rf", d}, std::chrono::seconds(30));
  }
};
TempDirs& tempDirs() {
  static TempDirs all;
  return all;
}
}  // namespace

std::string tempDir() {
  char tmpl[] = "/tmp/connectable-test-XXXXXX";
  char* dir = mkdtemp(tmpl);
  if (!dir) throw std::runtime_error("mkdtemp failed");
  tempDirs().dirs.push_back(dir);
  if (!std::getenv("CONNECTABLE_KEEP_TEST_DIRS")) interrupt_cleanup::addDir(dir);
  return dir;
}

}  // namespace connectable::testing
