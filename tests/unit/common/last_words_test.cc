// The terminate handler's last words: what an uncaught exception leaves in the log.
#include "common/log.h"

#include <Poco/JSON/Parser.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <csignal>
#include <exception>
#include <functional>
#include <stdexcept>
#include <string>

namespace clog = connectable::log;

namespace {

struct Ending {
  int signal = 0;        // the signal that ended the child, 0 if it exited
  std::string stderrText;
};

// Runs `body` in a child whose terminate handler is clog::lastWords and whose log is JSON.
Ending endInChild(const std::function<void()>& body) {
  int pipeFds[2];
  BOOST_REQUIRE(::pipe2(pipeFds, O_CLOEXEC) == 0);
  const pid_t pid = ::fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(pipeFds[1], STDERR_FILENO);
    std::signal(SIGABRT, SIG_DFL);  // Boost.Test's own handler would report and carry on
    clog::configure(clog::Level::Info, clog::Format::Json, "test");
    std::set_terminate(clog::lastWords);
    // Out of a noexcept function an exception goes no further: Boost.Test catches the rest.
    [&]() noexcept { body(); }();
    ::_exit(0);
  }
  ::close(pipeFds[1]);
  Ending ending;
  char buf[4096];
  for (ssize_t n; (n = ::read(pipeFds[0], buf, sizeof buf)) > 0;) ending.stderrText.append(buf, static_cast<size_t>(n));
  ::close(pipeFds[0]);
  int status = 0;
  BOOST_REQUIRE(::waitpid(pid, &status, 0) == pid);
  if (WIFSIGNALED(status)) ending.signal = WTERMSIG(status);
  return ending;
}

Poco::JSON::Object::Ptr onlyLine(const std::string& text) {
  BOOST_REQUIRE_MESSAGE(!text.empty() && text.find('\n') == text.size() - 1, "one line: " + text);
  return Poco::JSON::Parser().parse(text).extract<Poco::JSON::Object::Ptr>();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(LastWords)

BOOST_AUTO_TEST_CASE(AnUncaughtExceptionIsLoggedWithItsWhatThenTheProcessAborts) {
  const Ending ending = endInChild([] { throw std::runtime_error("backend list \"gone\""); });
  BOOST_TEST(ending.signal == SIGABRT);
  const auto line = onlyLine(ending.stderrText);
  BOOST_TEST(line->getValue<std::string>("level") == "error");
  BOOST_TEST(line->getValue<std::string>("component") == "test");
  BOOST_TEST(line->getValue<std::string>("msg") == "uncaught exception, aborting");
  BOOST_TEST(line->getValue<std::string>("exception") == "backend list \"gone\"");
}

BOOST_AUTO_TEST_CASE(RunningOutOfMemoryGetsFixedWordsThatNeedNoAllocation) {
  const Ending ending = endInChild([] { throw std::bad_alloc(); });
  BOOST_TEST(ending.signal == SIGABRT);
  BOOST_TEST(ending.stderrText == "uncaught exception: out of memory (std::bad_alloc), aborting\n");
}

BOOST_AUTO_TEST_CASE(SomethingThatIsNotAStdExceptionIsStillNamedAsUncaught) {
  const Ending ending = endInChild([] { throw 42; });
  BOOST_TEST(ending.signal == SIGABRT);
  BOOST_TEST(onlyLine(ending.stderrText)->getValue<std::string>("msg") ==
             "uncaught exception (not a std::exception), aborting");
}

BOOST_AUTO_TEST_CASE(TerminateWithNoExceptionInFlightSaysSo) {
  const Ending ending = endInChild([] { std::terminate(); });
  BOOST_TEST(ending.signal == SIGABRT);
  BOOST_TEST(onlyLine(ending.stderrText)->getValue<std::string>("msg") ==
             "std::terminate called without an exception in flight, aborting");
}

BOOST_AUTO_TEST_SUITE_END()
