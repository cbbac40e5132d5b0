#include "common/inherited_fds.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

namespace connectable {
namespace {

constexpr int kFirstInherited = 3;  // 0, 1, 2 are stdin, stdout, stderr: always kept

// The descriptors of `keep` that could be closed, sorted, once each.
std::vector<int> normalised(std::vector<int> keep) {
  keep.erase(std::remove_if(keep.begin(), keep.end(), [](int fd) { return fd < kFirstInherited; }), keep.end());
  std::sort(keep.begin(), keep.end());
  keep.erase(std::unique(keep.begin(), keep.end()), keep.end());
  return keep;
}

bool kept(const std::vector<int>& keep, int fd) {
  return fd < kFirstInherited || std::binary_search(keep.begin(), keep.end(), fd);
}

}  // namespace

void openStandardFds() {
  for (int fd = 0; fd < kFirstInherited; ++fd) {
    if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF) continue;
    // The numbers below are open by now, so the lowest free one is `fd` itself.
    (void)open("/dev/null", O_RDWR);
  }
}

void closeInheritedFds(std::vector<int> keep) {
  keep = normalised(std::move(keep));
  unsigned from = kFirstInherited;
  bool closed = true;
  // The gaps between the kept descriptors, then everything above the last one.
  for (int fd : keep) {
    if (static_cast<unsigned>(fd) > from) closed = closed && close_range(from, static_cast<unsigned>(fd) - 1, 0) == 0;
    from = static_cast<unsigned>(fd) + 1;
  }
  closed = closed && close_range(from, ~0u, 0) == 0;
  // ENOSYS before Linux 5.9; EPERM from seccomp profiles older than the call (Docker's did).
  if (!closed) closeInheritedFdsOneByOne(std::move(keep));
}

void closeInheritedFdsOneByOne(std::vector<int> keep) {
  keep = normalised(std::move(keep));
  // Listed first, closed after: closing while reading the directory would skip entries.
  std::vector<int> open;
  if (DIR* dir = opendir("/proc/self/fd")) {
    while (dirent* entry = readdir(dir)) {
      if (entry->d_name[0] >= '0' && entry->d_name[0] <= '9') open.push_back(std::atoi(entry->d_name));
    }
    closedir(dir);  // its own descriptor is in the list, closed already: EBADF below, harmless
    for (int fd : open)
      if (!kept(keep, fd)) close(fd);
    return;
  }
  // No /proc (a bare chroot): every descriptor the limit allows.
  long limit = sysconf(_SC_OPEN_MAX);
  for (long fd = kFirstInherited; fd < limit; ++fd)
    if (!kept(keep, static_cast<int>(fd))) close(static_cast<int>(fd));
}

}  // namespace connectable
