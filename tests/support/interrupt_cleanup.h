// Interrupt cleanup: ends what a test program started (child processes, network
// namespaces, temporary directories, Docker's containers, networks and images) when the
// program dies of SIGINT, SIGTERM or SIGHUP (Ctrl-C, ctest's or a CI runner's stop) and so
// never unwinds a stack, and at exit what a case left when a crash Boost.Test caught
// skipped its destructors. Owners (Child, TestNetns, tempDir, DockerResources) still end
// them as each test ends; they register them here meanwhile. Thread-safe; the signal
// handler is async-signal-safe.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace connectable::testing::interrupt_cleanup {

// `target` as kill(2) takes it: a pid, or minus a process group's id.
void addChild(pid_t target);
void removeChild(pid_t target);
// A namespace's bind mount, /var/run/netns/NAME.
void addNetns(const std::string& path);
void removeNetns(const std::string& path);
// Removed on a signal only: at a normal exit its owner removes it.
void addDir(const std::string& path);
// What only a command can end (`/usr/bin/docker rm -f ID`): run and waited for, the latest
// added first, after the children were killed. argv[0] is a path; no more than 16 words.
void addCommand(const std::vector<std::string>& argv);
void removeCommand(const std::vector<std::string>& argv);

}  // namespace connectable::testing::interrupt_cleanup
