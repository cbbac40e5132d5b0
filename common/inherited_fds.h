// InheritedFds: a program started by another may be handed descriptors its parent forgot to
// mark close-on-exec (a socket, a directory); kept, they outlive a privilege drop as
// capabilities and hold their files and ports open. Call from main, before any thread exists
// and before the program opens descriptors of its own.
#pragma once

#include <vector>

namespace connectable {

// Opens /dev/null as each of 0, 1 and 2 that a parent left closed: else the program's first
// descriptors take those numbers, its log lines go into them, and the programs it starts
// inherit them. Call first thing in main.
void openStandardFds();

// Closes every descriptor above 2 except those in `keep`: with close_range(2) where the
// kernel (5.9+) and a seccomp filter allow it, else closeInheritedFdsOneByOne.
void closeInheritedFds(std::vector<int> keep);

// The fallback alone, exposed for tests: closes each descriptor /proc/self/fd lists, or
// without /proc each one below the open-files limit.
void closeInheritedFdsOneByOne(std::vector<int> keep);

}  // namespace connectable
