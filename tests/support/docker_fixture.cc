#include "tests/support/docker_fixture.h"

#include <sys/stat.h>
#include <unistd.h>

#include <stdexcept>

#include "tests/support/interrupt_cleanup.h"

namespace connectable::testing {

const std::string kDocker = "/usr/bin/docker";

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

std::string repoRoot() {
  std::string file = __FILE__;  // <root>/tests/support/docker_fixture.cc
  for (int i = 0; i < 3; ++i) file = file.substr(0, file.rfind('/'));
  return file;
}

DockerResources::DockerResources() {
  struct stat st {};
  if (stat("/var/run/docker.sock", &st) != 0 || !S_ISSOCK(st.st_mode) ||
      run({kDocker, "version", "--format", "{{.Server.Version}}"}, std::chrono::seconds(20)).exitCode != 0)
    throw std::runtime_error("no Docker daemon answers on /var/run/docker.sock: run the tests through scripts/test");
}

DockerResources::~DockerResources() {
  for (auto it = containers_.rbegin(); it != containers_.rend(); ++it) removeNow({kDocker, "rm", "-f", *it});
  for (const auto& n : networks_) removeNow({kDocker, "network", "rm", n});
  for (const auto& i : images_) removeNow({kDocker, "image", "rm", "-f", i});
}

void DockerResources::removeLater(const std::vector<std::string>& removal) { interrupt_cleanup::addCommand(removal); }

void DockerResources::removeNow(const std::vector<std::string>& removal) {
  run(removal);
  interrupt_cleanup::removeCommand(removal);
}

void DockerResources::recordContainer(const std::string& nameOrId) {
  containers_.push_back(nameOrId);
  removeLater({kDocker, "rm", "-f", nameOrId});
}

void DockerResources::recordNetwork(const std::string& name) {
  networks_.push_back(name);
  removeLater({kDocker, "network", "rm", name});
}

void DockerResources::recordImage(const std::string& name) {
  images_.push_back(name);
  removeLater({kDocker, "image", "rm", "-f", name});
}

const std::string& DockerResources::busyboxImage() {
  if (!image_.empty()) return image_;
  std::string name = "connectable-test-busybox-" + std::to_string(getpid());
  auto built = sh(". " + repoRoot() + "/scripts/lib/images.sh && build_busybox_image " + name, std::chrono::seconds(60));
  if (built.exitCode != 0) throw std::runtime_error("building " + name + ": " + built.err);
  recordImage(name);
  image_ = name;
  return image_;
}

std::string DockerResources::runDetached(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {kDocker, "run", "-d"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = run(argv, std::chrono::seconds(60));
  if (r.exitCode != 0) {
    lastError_ = r.err;
    return "";
  }
  std::string id = trimmed(r.out);
  recordContainer(id);
  return id;
}

std::string DockerResources::idOf(const std::string& name) {
  return trimmed(run({kDocker, "inspect", "-f", "{{.Id}}", name}).out);
}

}  // namespace connectable::testing
