// CapturedOutput: what the code under test writes on one of the process's own descriptors
// (stdout, stderr) while it lives, kept in a file the test reads back.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <string>

#include "tests/support/process.h"

namespace connectable::testing {

class CapturedOutput {
 public:
  CapturedOutput(int fd, std::string path) : fd_(fd), path_(std::move(path)) {
    std::fflush(nullptr);  // what stdio buffered before belongs to the old target
    saved_ = dup(fd_);
    int file = open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    BOOST_REQUIRE(saved_ >= 0 && file >= 0);
    dup2(file, fd_);
    close(file);
  }
  ~CapturedOutput() { restore(); }
  CapturedOutput(const CapturedOutput&) = delete;
  CapturedOutput& operator=(const CapturedOutput&) = delete;

  // Back to where it wrote before; idempotent.
  void restore() {
    if (saved_ < 0) return;
    std::fflush(nullptr);
    dup2(saved_, fd_);
    close(saved_);
    saved_ = -1;
  }
  std::string text() const { return readFile(path_); }

 private:
  int fd_;
  std::string path_;
  int saved_ = -1;
};

}  // namespace connectable::testing
