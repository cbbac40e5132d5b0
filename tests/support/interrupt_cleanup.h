// Interrupt cleanup: ends what a test program started (child processes, network
// namespaces, temporary directories) when the program dies of SIGINT, SIGTERM or SIGHUP
// (Ctrl-C, ctest's or a CI runner's stop) and so never unwinds a stack, and at exit the
// children and namespaces a case left when a crash Boost.Test caught skipped its
// destructors. Owners (Child, TestNetns, tempDir) still end them as each test ends; they
// register them here meanwhile. Thread-safe; the signal handler is async-signal-safe.
#pragma once

#include <sys/types.h>

#include <string>

namespace connectable::testing::interrupt_cleanup {

// `target` as kill(2) takes it: a pid, or minus a process group's id.
void addChild(pid_t target);
void removeChild(pid_t target);
// A namespace's bind mount, /var/run/netns/NAME.
void addNetns(const std::string& path);
void removeNetns(const std::string& path);
// Removed on a signal only: at a normal exit its owner removes it.
void addDir(const std::string& path);

}  // namespace connectable::testing::interrupt_cleanup
