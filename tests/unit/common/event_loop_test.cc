#include "common/event_loop.h"

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <thread>

using namespace connectable;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_SUITE(EventLoopTimers)

// The injector's turns can be long (it forks and execs each shim it starts, one after the
// other, when a list brings many containers), and a grace or a back-off set at the end of
// such a turn must not come early by the turn's length.
BOOST_AUTO_TEST_CASE(ATimerSetLateInALongTurnCountsFromWhenItWasSet) {
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  Clock::time_point set, fired;
  loop.defer([&] {
    std::this_thread::sleep_for(300ms);  // the turn's blocking work
    set = Clock::now();
    loop.addTimer(200ms, [&] {
      fired = Clock::now();
      loop.stop();
    });
  });
  loop.addTimer(5s, [&] { loop.stop(); });  // a bound, should it never fire
  loop.run();
  BOOST_REQUIRE(fired != Clock::time_point{});
  BOOST_TEST(std::chrono::duration_cast<Millis>(fired - set).count() >= 200,
             "fired " << std::chrono::duration_cast<Millis>(fired - set).count() << " ms after it was set");
}

BOOST_AUTO_TEST_CASE(TimersFireInTheOrderOfTheirDeadlines) {
  EventLoop loop;
  BOOST_REQUIRE(loop.init());
  std::string order;
  loop.addTimer(60ms, [&] { order += "c"; loop.stop(); });
  loop.addTimer(20ms, [&] { order += "a"; });
  loop.addTimer(40ms, [&] { order += "b"; });
  auto cancelled = loop.addTimer(30ms, [&] { order += "x"; });
  loop.cancelTimer(cancelled);
  loop.cancelTimer(cancelled);  // a second cancel is a no-op
  loop.run();
  BOOST_TEST(order == "abc");
}

BOOST_AUTO_TEST_SUITE_END()
