#include "common/unique_fd.h"

#include <fcntl.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

using connectable::UniqueFd;

namespace {

bool isOpen(int fd) { return fcntl(fd, F_GETFD) != -1; }

// Two fresh descriptors (a pipe's ends), owned by nobody yet.
std::pair<int, int> twoFds() {
  int p[2];
  BOOST_REQUIRE(pipe(p) == 0);
  return {p[0], p[1]};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(unique_fd)

BOOST_AUTO_TEST_CASE(ClosesItsFdWhenDestroyed) {
  auto [a, b] = twoFds();
  { UniqueFd owner(a); }
  BOOST_TEST(!isOpen(a));
  ::close(b);
}

BOOST_AUTO_TEST_CASE(MoveHandsOverOwnershipAndClosesWhatTheTargetHeld) {
  auto [a, b] = twoFds();
  UniqueFd first(a), second(b);
  second = std::move(first);
  BOOST_TEST(!isOpen(b));  // what `second` held is closed
  BOOST_TEST(second.get() == a);
  BOOST_TEST(!first.valid());  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  UniqueFd third(std::move(second));
  BOOST_TEST(third.get() == a);
  BOOST_TEST(isOpen(a));
}

BOOST_AUTO_TEST_CASE(ReleaseGivesTheFdUpWithoutClosingIt) {
  auto [a, b] = twoFds();
  int released;
  {
    UniqueFd owner(a);
    released = owner.release();
    BOOST_TEST(!owner.valid());
  }
  BOOST_TEST(released == a);
  BOOST_TEST(isOpen(a));
  ::close(a);
  ::close(b);
}

BOOST_AUTO_TEST_CASE(ResetClosesTheOldFdAndHoldsTheNewOne) {
  auto [a, b] = twoFds();
  UniqueFd owner(a);
  owner.reset(b);
  BOOST_TEST(!isOpen(a));
  BOOST_TEST(owner.get() == b);
  owner.reset();
  BOOST_TEST(!isOpen(b));
  BOOST_TEST(!owner.valid());
}

BOOST_AUTO_TEST_SUITE_END()
