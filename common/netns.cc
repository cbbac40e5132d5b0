#include "common/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif
#include <linux/nsfs.h>
#include <sys/ioctl.h>
#include <sys/vfs.h>

namespace connectable {

Result<NetnsFd> NetnsFd::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errnoStatus("opening network namespace " + path, errno);
  auto adopted = adopt(fd);
  if (!adopted) return adopted.status().withContext(path);
  return adopted;
}

Result<NetnsFd> NetnsFd::current() { return open("/proc/thread-self/ns/net"); }

Result<NetnsFd> NetnsFd::adopt(int fd) {
  NetnsFd ns(fd);
  struct statfs fs;
  if (fstatfs(fd, &fs) != 0) return errnoStatus("fd " + std::to_string(fd), errno);
  if (static_cast<unsigned long>(fs.f_type) != NSFS_MAGIC)
    return Status::error("fd " + std::to_string(fd) + " is not a namespace");
  int type = ioctl(fd, NS_GET_NSTYPE);
  if (type >= 0 && type != CLONE_NEWNET)
    return Status::error("fd " + std::to_string(fd) + " is a namespace but not a network namespace");
  // Keep it out of any program we might exec later.
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  return ns;
}

Result<unsigned long> NetnsFd::inode() const {
  struct stat st;
  if (fstat(fd_.get(), &st) != 0) return errnoStatus("fstat namespace", errno);
  return static_cast<unsigned long>(st.st_ino);
}

Status enterNetns(const NetnsFd& target) {
  if (setns(target.fd(), CLONE_NEWNET) != 0) return errnoStatus("setns into network namespace", errno);
  return Status::ok();
}

}  // namespace connectable
