// Dnsmasq: a real DNS server for integration tests, serving only the records a test gives
// it, on a free loopback port, logging every query so tests can count them. Killed by pid
// when the object goes away, also when a test fails. Not thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tests/support/process.h"

namespace connectable::testing {

class Dnsmasq {
 public:
  // `options` are dnsmasq config-file lines ("srv-host=...", "host-record=...", "local-ttl=5").
  explicit Dnsmasq(std::vector<std::string> options);
  ~Dnsmasq();  // kills dnsmasq, removes its directory
  Dnsmasq(const Dnsmasq&) = delete;
  Dnsmasq& operator=(const Dnsmasq&) = delete;

  // Starts on a free port (the same one again on later starts); returns once it listens.
  // Throws std::runtime_error when dnsmasq does not come up.
  void start();
  void stop();
  void restart(std::vector<std::string> options);  // new records, same port
  void pause();   // SIGSTOP: bound but answering nothing, like a hung server
  void resume();  // SIGCONT

  uint16_t port() const { return port_; }
  std::string server() const { return "127.0.0.1:" + std::to_string(port_); }
  // How many queries of `type` ("SRV", "A", "AAAA") for `name` dnsmasq has logged, over
  // every run so far.
  int queryCount(const std::string& type, const std::string& name) const;
  std::string log() const;

 private:
  std::vector<std::string> options_;
  std::string dir_;
  uint16_t port_ = 0;
  int runs_ = 0;
  Child child_;
};

}  // namespace connectable::testing
