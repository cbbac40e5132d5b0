#include "tests/support/shim_process.h"

#include <boost/test/unit_test.hpp>
#include <algorithm>
#include <cstdlib>
#include <stdexcept>

namespace connectable::testing {

std::string shimBinary() {
#ifdef CONNECTABLE_BIN_DIR
  return std::string(CONNECTABLE_BIN_DIR) + "/connectable-shim";
#else
  return "connectable-shim";
#endif
}

namespace {
size_t countOf(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = haystack.find(needle); pos != std::string::npos; pos = haystack.find(needle, pos + 1)) ++n;
  return n;
}
}  // namespace

ShimProcess::ShimProcess(std::vector<std::string> args, const std::vector<int>& inherit) {
  std::vector<std::string> argv = {shimBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  // ctest runs the data-path suite once more with the epoll path (tests/CMakeLists.txt).
  if (const char* path = std::getenv("CONNECTABLE_TEST_SHIM_DATA_PATH")) argv.insert(argv.end(), {"--data-path", path});
  size_t ports = static_cast<size_t>(std::count_if(args.begin(), args.end(), [](const std::string& a) {
    return a == "--connect" || a.rfind("--connect=", 0) == 0;
  }));
  // A log of its own: a second shim in the same test must not find the first one's
  // "listening" line and be taken for ready before it is.
  static int started = 0;
  child_ = Child::spawn(argv, tempDir() + "/shim-" + std::to_string(++started) + ".log", inherit);
  bool up = waitFor([&] { return countOf(child_.log(), " listening ") + countOf(child_.log(), "\"msg\":\"listening\"") >= ports || !child_.running(); },
                    std::chrono::seconds(5));
  if (!up || !child_.running())
    throw std::runtime_error("shim did not start listening; log:\n" + child_.log());
}

void expectNoCallRefused(const std::string& log) {
  const size_t refused = log.find("refused by the shim's filter");
  if (refused == std::string::npos) return;
  const size_t newline = log.rfind('\n', refused);
  const size_t start = newline == std::string::npos ? 0 : newline + 1;
  BOOST_ERROR("the shim's system call filter refused a call: " << log.substr(start, log.find('\n', refused) - start));
}

ShimProcess::~ShimProcess() {
  if (child_.logPath().empty()) return;  // moved from
  expectNoCallRefused(child_.log());
}

bool ShimProcess::waitLog(const std::string& text, std::chrono::milliseconds timeout) {
  return waitFor([&] { return child_.log().find(text) != std::string::npos; }, timeout);
}

}  // namespace connectable::testing
