# process_group.sh: runs a long command (ctest, qemu) so that a signal to the script stops
# it before the script cleans up. Source it (bash).
#
#   run_in_own_group CMD [ARG...]   # runs CMD and returns its exit status; on SIGINT or
#                                   # SIGTERM to the script, passes the signal on to CMD's
#                                   # process group, waits until every process of it has
#                                   # ended, and exits 130 or 143 (the script's EXIT trap
#                                   # then cleans up, with that status)
#
# Without it, on a SIGTERM bash runs its EXIT trap at once and exits, while the command
# runs on, orphaned: the clean-up stops the dockerd its tests still use. A terminal's
# Ctrl-C reaches CMD through the script only (CMD's group is not the terminal's).

# How long the group may take to end after the signal (tests remove what they made) before
# it is killed.
PROCESS_GROUP_STOP_TIMEOUT=${PROCESS_GROUP_STOP_TIMEOUT:-60}

run_in_own_group() {
  # setsid: CMD leads a group of its own, with its pid as the group's id (a child of a
  # non-interactive bash is never a group leader, so setsid does not fork). bash starts a
  # background command with SIGINT and SIGQUIT ignored: the subshell sets them back first.
  ( trap - INT QUIT; exec setsid "$@" ) &
  _process_group=$!
  local saved rc=0
  saved=$(trap -p INT TERM)
  trap '_process_group_stop INT 130' INT
  trap '_process_group_stop TERM 143' TERM
  # A trapped signal ends this wait at once, and its trap then runs.
  wait "$_process_group" || rc=$?
  trap - INT TERM
  eval "$saved"
  return "$rc"
}

# True while a process of group $1 runs (a zombie, already ended, does not count).
_process_group_runs() {
  local group=$1 stat line
  for stat in /proc/[0-9]*/stat; do
    read -r line 2>/dev/null <"$stat" || continue  # (ended meanwhile)
    # After the command's name, in parentheses: the state, the parent, the group.
    # shellcheck disable=SC2086
    set -- ${line##*) }
    [ "${3:-}" = "$group" ] && [ "${1:-}" != Z ] && return 0
  done
  return 1
}

_process_group_stop() {
  local signal=$1 status=$2
  # Another Ctrl-C now must not cut short the clean-up that follows.
  trap '' INT TERM
  kill -s "$signal" -- "-$_process_group" 2>/dev/null || true
  # Not only the leader: when ctest has ended, the test programs may still be removing what
  # they made.
  local deadline=$((SECONDS + PROCESS_GROUP_STOP_TIMEOUT))
  while _process_group_runs "$_process_group"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "process_group.sh: the processes of group $_process_group did not end within ${PROCESS_GROUP_STOP_TIMEOUT}s of SIG$signal; killing them" >&2
      kill -s KILL -- "-$_process_group" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  wait "$_process_group" 2>/dev/null || true
  exit "$status"
}
