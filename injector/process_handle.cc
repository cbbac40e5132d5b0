#include "injector/process_handle.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>

#include "injector/docker_container.h"

namespace connectable {

Result<ProcessHandle> ProcessHandle::open(pid_t pid) {
  int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return errnoStatus("pidfd_open(" + std::to_string(pid) + ")", errno);
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  ProcessHandle h;
  h.pid_ = pid;
  h.fd_.reset(fd);
  return h;
}

bool ProcessHandle::alive() const {
  if (!fd_.valid()) return false;
  struct pollfd p {fd_.get(), POLLIN, 0};
  return poll(&p, 1, 0) == 0;  // a pidfd turns readable when its process exits
}

Status ProcessHandle::signal(int signo) const {
  if (syscall(SYS_pidfd_send_signal, fd_.get(), signo, nullptr, 0) != 0)
    return errnoStatus("signalling pid " + std::to_string(pid_), errno);
  return Status::ok();
}

Result<NetnsFd> ProcessHandle::openNetns() const {
  auto ns = NetnsFd::open("/proc/" + std::to_string(pid_) + "/ns/net");
  if (!ns) return ns.status();
  if (!alive()) return Status::error("process " + std::to_string(pid_) + " exited while its namespace was opened");
  return ns;
}

bool ProcessHandle::inContainer(const std::string& containerId) const {
  // Found by substring: a part of an id, or an id with a '/' before it, would be in
  // every cgroup path that holds it.
  if (!isContainerId(containerId)) return false;
  // Every cgroup path Docker makes for a container holds its full id (docker/<id>,
  // docker-<id>.scope), seen from our cgroup namespace or not.
  std::ifstream in("/proc/" + std::to_string(pid_) + "/cgroup");
  std::string line;
  bool named = false;
  while (!named && std::getline(in, line)) named = line.find(containerId) != std::string::npos;
  return named && alive();
}

Result<unsigned long long> processStartTime(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = stat.rfind(')');
  if (stat.empty() || close == std::string::npos) return Status::error("no process " + std::to_string(pid));
  std::istringstream fields(stat.substr(close + 2));
  std::string field;
  // Field 3 (state) is the first after ')'; start time is field 22.
  for (int i = 3; i <= 22; ++i) {
    if (!(fields >> field)) return Status::error("short /proc/" + std::to_string(pid) + "/stat");
  }
  return std::stoull(field);
}

bool sameProcess(pid_t pid, unsigned long long startTime) {
  auto now = processStartTime(pid);
  return now && *now == startTime;
}

std::string processComm(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
  std::string comm;
  std::getline(in, comm);
  return comm;
}

std::vector<std::string> processArguments(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
  std::vector<std::string> args;
  std::string arg;
  while (std::getline(in, arg, '\0')) args.push_back(arg);
  if (!args.empty()) args.erase(args.begin());
  return args;
}

std::vector<pid_t> namespacePids(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("NSpid:", 0) != 0) continue;
    std::istringstream fields(line.substr(6));
    std::vector<pid_t> pids;
    pid_t p;
    while (fields >> p) pids.push_back(p);
    return pids;
  }
  return {};
}

std::vector<std::string> containerCgroupProcsPaths(const std::string& id) {
  const std::string scope = "system.slice/docker-" + id + ".scope";
  return {
      "/sys/fs/cgroup/pids/docker/" + id + "/cgroup.procs",     // v1, cgroupfs driver
      "/sys/fs/cgroup/memory/docker/" + id + "/cgroup.procs",
      "/sys/fs/cgroup/pids/" + scope + "/cgroup.procs",         // v1, systemd driver
      "/sys/fs/cgroup/memory/" + scope + "/cgroup.procs",
      "/sys/fs/cgroup/docker/" + id + "/cgroup.procs",          // v2, cgroupfs driver
      "/sys/fs/cgroup/" + scope + "/cgroup.procs",              // v2, systemd driver
  };
}

std::optional<EarlyInit> findContainerInit(const std::string& containerId, unsigned long hostNetnsInode) {
  if (!isContainerId(containerId)) return std::nullopt;  // it becomes a path under /sys/fs/cgroup
  for (const auto& path : containerCgroupProcsPaths(containerId)) {
    std::ifstream in(path);
    if (!in) continue;
    pid_t pid;
    while (in >> pid) {
      // runc's parent and first child pass through; only the init stays (and keeps its pid).
      std::string comm = processComm(pid);
      if (comm.empty() || comm == "runc:[0:PARENT]" || comm == "runc:[1:CHILD]" || comm == "runc") continue;
      // In a pid namespace of its own the init is pid 1; any other process there was started
      // in it (docker exec, or the init's children) and may end long before the container.
      auto nsPids = namespacePids(pid);
      if (nsPids.empty() || (nsPids.size() > 1 && nsPids.back() != 1)) continue;
      auto process = ProcessHandle::open(pid);
      if (!process || !process->inContainer(containerId)) continue;  // gone, or its pid reused
      auto netns = process->openNetns();
      if (!netns) continue;
      auto inode = netns->inode();
      if (!inode || *inode == hostNetnsInode) continue;  // not (yet) in its own namespace
      EarlyInit found;
      found.process = std::move(*process);
      found.netns = std::move(*netns);
      found.netnsInode = *inode;
      return found;
    }
    return std::nullopt;  // the container's cgroup exists; its init is not there yet
  }
  return std::nullopt;
}

}  // namespace connectable
