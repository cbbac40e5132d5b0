# test_leftovers.sh: removes what test programs killed outright left behind. Source it (sh).
#
#   remove_test_leftovers   # network namespaces, containers, networks and images of tests
#                           # whose program no longer runs
#
# A test removes what it creates when it ends, fails or is interrupted (SIGINT, SIGTERM:
# tests/support/interrupt_cleanup.h); a SIGKILL, such as a ctest timeout, leaves no chance.
# Every such object is named connectable-test-... or connectable-itest-... with the pid of
# the test program as one of its dash-separated parts. Only objects of pids that no longer
# run are removed: a test running beside this one keeps its own.

# The first all-digit part of a dash-separated name, or nothing.
_leftover_pid() {
  _old_ifs=$IFS
  IFS=-
  # shellcheck disable=SC2086
  set -- $1
  IFS=$_old_ifs
  for _part; do
    case $_part in
      '' | *[!0-9]*) ;;
      *) echo "$_part"; return 0 ;;
    esac
  done
}

# Reads names on stdin; prints those of ours whose test program is gone.
_leftovers_of_dead_tests() {
  while read -r _name; do
    case $_name in
      connectable-test-* | connectable-itest-*) ;;
      *) continue ;;
    esac
    _pid=$(_leftover_pid "$_name")
    [ -n "$_pid" ] && [ ! -d "/proc/$_pid" ] && echo "$_name"
  done
  return 0
}

remove_test_leftovers() {
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | _leftovers_of_dead_tests); do
    echo "test_leftovers: removing network namespace $ns" >&2
    ip netns del "$ns" || true
  done
  _docker=/usr/bin/docker
  [ -x "$_docker" ] && "$_docker" info >/dev/null 2>&1 || return 0
  for c in $("$_docker" ps -a --format '{{.Names}}' | _leftovers_of_dead_tests); do
    echo "test_leftovers: removing container $c" >&2
    "$_docker" rm -f "$c" >/dev/null || true
  done
  for n in $("$_docker" network ls --format '{{.Name}}' | _leftovers_of_dead_tests); do
    echo "test_leftovers: removing network $n" >&2
    "$_docker" network rm "$n" >/dev/null || true
  done
  for i in $("$_docker" images --format '{{.Repository}}' | _leftovers_of_dead_tests | sort -u); do
    echo "test_leftovers: removing image $i" >&2
    "$_docker" rmi -f "$i" >/dev/null || true
  done
}
