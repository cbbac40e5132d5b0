// check(): a fuzz target's assertion. A broken invariant aborts, which libFuzzer reports as
// a crash with the input that caused it, and the corpus replay as a failed test.
#pragma once

#include <cstdlib>

namespace connectable::fuzz {

inline void check(bool holds) {
  if (!holds) std::abort();
}

}  // namespace connectable::fuzz
