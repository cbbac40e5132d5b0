#include "tests/support/dnsmasq.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace connectable::testing {
namespace {

// Binds 127.0.0.1:port (0: any) for `type`; returns the port bound, 0 on failure.
uint16_t tryBind(int type, uint16_t port) {
  int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sin.sin_port = htons(port);
  uint16_t bound = 0;
  socklen_t len = sizeof sin;
  if (bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len) == 0) {
    bound = ntohs(sin.sin_port);
  }
  close(fd);
  return bound;
}

// A port free for both UDP and TCP: dnsmasq needs both (TCP for truncated answers).
uint16_t freePort() {
  for (int i = 0; i < 50; ++i) {
    uint16_t p = tryBind(SOCK_DGRAM, 0);
    if (p != 0 && tryBind(SOCK_STREAM, p) == p) return p;
  }
  throw std::runtime_error("no free loopback port for dnsmasq");
}

}  // namespace

Dnsmasq::Dnsmasq(std::vector<std::string> options) : options_(std::move(options)), dir_(tempDir()) {}

Dnsmasq::~Dnsmasq() {
  child_.kill();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

void Dnsmasq::start() {
  if (port_ == 0) port_ = freePort();
  std::string conf = dir_ + "/dnsmasq.conf";
  {
    std::ofstream out(conf, std::ios::trunc);
    for (const auto& line : options_) out << line << "\n";
  }
  std::string logFile = dir_ + "/queries.log";
  std::string marker = "started, version";
  size_t startsBefore = 0;
  for (size_t pos = 0; (pos = log().find(marker, pos)) != std::string::npos; pos += marker.size()) ++startsBefore;
  // --keep-in-foreground, not --no-daemon: the latter answers TCP in-process, one
  // connection at a time and nothing else meanwhile, and c-ares keeps its TCP connection
  // open while any question is pending, so UDP questions asked then went unanswered. The
  // TCP helpers dnsmasq forks hold its sockets: its own process group, killed whole, ends
  // them with it. --user=root: the log file and the pid file stay ours to read and remove.
  child_ = Child::spawn({"/usr/sbin/dnsmasq", "--keep-in-foreground", "--user=root", "--conf-file=" + conf,
                         "--port=" + std::to_string(port_), "--listen-address=127.0.0.1", "--bind-interfaces",
                         "--no-resolv", "--no-hosts", "--log-queries", "--log-facility=" + logFile,
                         "--pid-file=" + dir_ + "/dnsmasq.pid"},
                        dir_ + "/stderr-" + std::to_string(++runs_) + ".log", {}, /*ownGroup=*/true);
  bool up = waitFor(
      [&] {
        size_t starts = 0;
        std::string text = log();
        for (size_t pos = 0; (pos = text.find(marker, pos)) != std::string::npos; pos += marker.size()) ++starts;
        // Started, and the port taken: it listens.
        return starts > startsBefore && tryBind(SOCK_DGRAM, port_) == 0;
      },
      std::chrono::seconds(5));
  if (!up || !child_.running()) {
    std::string err = child_.log();
    child_.kill();
    throw std::runtime_error("dnsmasq did not start on port " + std::to_string(port_) + ": " + err);
  }
}

void Dnsmasq::stop() { child_.kill(); }

void Dnsmasq::restart(std::vector<std::string> options) {
  stop();
  options_ = std::move(options);
  start();
}

void Dnsmasq::pause() { child_.signal(SIGSTOP); }
void Dnsmasq::resume() { child_.signal(SIGCONT); }

int Dnsmasq::queryCount(const std::string& type, const std::string& name) const {
  std::string needle = "query[" + type + "] " + name + " from ";
  std::string text = log();
  int n = 0;
  for (size_t pos = 0; (pos = text.find(needle, pos)) != std::string::npos; pos += needle.size()) ++n;
  return n;
}

std::string Dnsmasq::log() const { return readFile(dir_ + "/queries.log"); }

}  // namespace connectable::testing
