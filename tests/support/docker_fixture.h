// Docker for integration tests: the real daemon (started by scripts/test when none runs),
// an offline busybox image, and a record of every container, network and image a test
// creates, removed when the test ends, also when it fails or is interrupted. Not
// thread-safe.
#pragma once

#include <string>
#include <vector>

#include "tests/support/process.h"

namespace connectable::testing {

extern const std::string kDocker;  // /usr/bin/docker: a newer client may shadow it in PATH

class DockerResources {
 public:
  DockerResources();   // fails the test clearly when no daemon answers
  ~DockerResources();  // removes what was recorded, containers first
  DockerResources(const DockerResources&) = delete;
  DockerResources& operator=(const DockerResources&) = delete;

  // An image with busybox and its applets, imported offline; built once per object.
  const std::string& busyboxImage();
  // `docker run -d ARGS...`; records the container; returns its full id ("" on failure,
  // with the error in lastError()).
  std::string runDetached(const std::vector<std::string>& args);
  // Removed also when the test program is interrupted (tests/support/interrupt_cleanup.h).
  void recordContainer(const std::string& nameOrId);
  void recordNetwork(const std::string& name);
  void recordImage(const std::string& name);
  const std::string& lastError() const { return lastError_; }
  // Full id of a container by name.
  std::string idOf(const std::string& name);

 private:
  static void removeLater(const std::vector<std::string>& removal);
  static void removeNow(const std::vector<std::string>& removal);

  std::vector<std::string> containers_, networks_, images_;
  std::string image_;
  std::string lastError_;
};

std::string trimmed(std::string s);
// The repository's root, from this file's place in it.
std::string repoRoot();

}  // namespace connectable::testing
