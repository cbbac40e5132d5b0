# test_failures.sh: what failed, in a few lines. Source it (sh).
#
#   print_test_failures BUILD_DIR   # the failed checks of the last ctest run in BUILD_DIR
#
# ctest --output-on-failure prints a failed program's whole log, and a suite's log runs to
# thousands of lines (--log_level=test_suite names each case as it starts, so that a hang
# shows where it is). A CI page that keeps only the head and the tail of the output would
# cut the failed check out of the middle; this prints it again, last.
print_test_failures() {
  _log=$1/Testing/Temporary/LastTest.log
  [ -f "$_log" ] || return 0
  echo "---- failed checks (from $_log) ----"
  # Boost.Test's failed checks and uncaught exceptions, sanitizer reports, ctest's verdicts.
  # No pipe, and never a failure: under `set -eo pipefail` either would end the caller here,
  # before it exits with ctest's own status.
  grep -m 60 -E 'error: in "|fatal error: in "|critical check|unknown location|: exception|ERROR: AddressSanitizer|runtime error:|Test (Failed|Timeout)|\*\*\*(Failed|Timeout|Exception)' "$_log" || true
  echo "----"
}
