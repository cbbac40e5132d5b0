// runUntil: drives an EventLoop in a test until a condition holds, or a timeout passes.
#pragma once

#include <chrono>
#include <functional>

#include "common/event_loop.h"

namespace connectable::testing {

// Runs the loop until `done` holds or `timeout` passes; a loop may be run this way again.
inline bool runUntil(EventLoop& loop, const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  std::function<void()> check = [&] {
    if (done() || Clock::now() > deadline) {
      loop.stop();
      return;
    }
    loop.addTimer(std::chrono::milliseconds(5), check);
  };
  loop.addTimer(std::chrono::milliseconds(0), check);
  loop.run();
  return done();
}

}  // namespace connectable::testing
