# dockerd.sh: gives tests and demos a Docker daemon, starting one only if none answers.
# Source it (bash). Always uses /usr/bin/docker: a newer client may shadow it in PATH.
#
#   dockerd_ensure            # install docker.io if needed, start dockerd if none answers
#   dockerd_stop_if_started [STATUS]
#                             # stop only the daemon dockerd_ensure started, by pid, and
#                             # remove what it left: its docker0 bridge if there was none
#                             # before it, and its log unless STATUS (the caller's exit
#                             # status) is given and not 0
#   dockerd_restart_own       # restart the daemon these scripts started (for tests)
#
# The daemon's bridge and address pools live in 198.18.0.0/15 (benchmark range, RFC 2544),
# so containers never collide with real networks.

DOCKER=/usr/bin/docker
DOCKERD=/usr/sbin/dockerd
# Docker's own docker-ce puts it there; installing docker.io would remove that package.
[ ! -x "$DOCKERD" ] && [ -x /usr/bin/dockerd ] && DOCKERD=/usr/bin/dockerd
DOCKER_SOCK=${DOCKER_SOCK:-/var/run/docker.sock}
DOCKERD_STATE_DIR=${DOCKERD_STATE_DIR:-/tmp/connectable-dockerd}
DOCKERD_PID_FILE=${DOCKERD_PID_FILE:-$DOCKERD_STATE_DIR/dockerd.pid}
DOCKERD_LOG=${DOCKERD_LOG:-$DOCKERD_STATE_DIR/dockerd.log}
DOCKERD_TIMEOUT=${DOCKERD_TIMEOUT:-60}

_dockerd_log() { echo "dockerd.sh: $*" >&2; }

# True when a daemon answers on the socket.
dockerd_answers() {
  [ -S "$DOCKER_SOCK" ] && timeout 10 "$DOCKER" -H "unix://$DOCKER_SOCK" info >/dev/null 2>&1
}

# Pids of every running dockerd, ours or not (a zombie, one just stopped, is not running).
# POSIX sh: the tests source this file with /bin/sh.
_dockerd_pids() {
  local dir pids=""
  for dir in /proc/[0-9]*; do
    [ "$(cat "$dir/comm" 2>/dev/null)" = dockerd ] || continue
    [ "$(awk '{print $3}' "$dir/stat" 2>/dev/null)" = Z ] && continue
    pids="$pids${pids:+ }${dir#/proc/}"
  done
  echo "$pids"
}

dockerd_ensure() {
  if [ ! -x "$DOCKERD" ] || [ ! -x "$DOCKER" ]; then
    _dockerd_log "installing docker.io"
    DEBIAN_FRONTEND=noninteractive apt-get install -y docker.io >&2 || {
      _dockerd_log "apt-get install docker.io failed"; return 1; }
  fi
  # A record left by an earlier run whose daemon is gone names nobody: drop it, so only a
  # daemon these scripts started now is ever restarted or stopped by them.
  if [ -f "$DOCKERD_PID_FILE" ] && [ "$(cat "/proc/$(cat "$DOCKERD_PID_FILE")/comm" 2>/dev/null)" != dockerd ]; then
    rm -f "$DOCKERD_PID_FILE"
  fi
  if dockerd_answers; then
    return 0
  fi
  # One that runs and does not answer yet (starting, busy, socket-activated) owns
  # /var/lib/docker and the socket: a second daemon beside it would share both.
  local other
  other=$(_dockerd_pids)
  if [ -n "$other" ]; then
    _dockerd_log "dockerd runs (pid $other) but does not answer on $DOCKER_SOCK; not starting another"
    return 1
  fi
  mkdir -p "$DOCKERD_STATE_DIR"
  # dockerd makes docker0 and leaves it when it stops: ours is removed then, another's kept.
  if ip link show docker0 >/dev/null 2>&1; then _DOCKERD_MADE_BRIDGE=; else _DOCKERD_MADE_BRIDGE=1; fi
  _dockerd_log "starting $DOCKERD (log: $DOCKERD_LOG)"
  # setsid: the daemon must not die with the caller's terminal or process group.
  setsid "$DOCKERD" \
    --host "unix://$DOCKER_SOCK" \
    --bip 198.19.255.1/24 \
    --default-address-pool base=198.19.0.0/16,size=24 \
    --pidfile "$DOCKERD_STATE_DIR/dockerd.own.pid" \
    >"$DOCKERD_LOG" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$DOCKERD_PID_FILE"
  _DOCKERD_STARTED_PID=$pid
  local deadline=$(($(date +%s) + DOCKERD_TIMEOUT))
  until dockerd_answers; do
    if ! kill -0 "$pid" 2>/dev/null; then
      _dockerd_log "dockerd (pid $pid) exited during startup; last log lines:"
      tail -n 20 "$DOCKERD_LOG" >&2
      rm -f "$DOCKERD_PID_FILE"
      return 1
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      _dockerd_log "dockerd (pid $pid) did not answer on $DOCKER_SOCK within ${DOCKERD_TIMEOUT}s; last log lines:"
      tail -n 20 "$DOCKERD_LOG" >&2
      return 1
    fi
    sleep 0.2
  done
  _dockerd_log "dockerd ready (pid $pid)"
}

# Only the daemon this shell's dockerd_ensure started: one started by an earlier run is
# left alone (stop it with DOCKERD_PID_FILE by hand).
dockerd_stop_if_started() {
  local pid=${_DOCKERD_STARTED_PID:-} status=${1:-}
  [ -n "$pid" ] || return 0
  _DOCKERD_STARTED_PID=
  # A test may have restarted our daemon (dockerd_restart_own): the pid file names the
  # current one, and only our scripts write it.
  [ -f "$DOCKERD_PID_FILE" ] && pid=$(cat "$DOCKERD_PID_FILE")
  rm -f "$DOCKERD_PID_FILE"
  _dockerd_stop_pid "$pid"
  # Only once no dockerd runs: one started meanwhile by someone else would be using it.
  if [ -n "${_DOCKERD_MADE_BRIDGE:-}" ] && [ -z "$(_dockerd_pids)" ] && ip link show docker0 >/dev/null 2>&1; then
    ip link delete docker0 || _dockerd_log "could not remove the docker0 bridge our dockerd made"
  fi
  _DOCKERD_MADE_BRIDGE=
  if [ "$status" = 0 ]; then
    rm -f "$DOCKERD_LOG"
    rmdir "$DOCKERD_STATE_DIR" 2>/dev/null || true
  elif [ -f "$DOCKERD_LOG" ]; then
    _dockerd_log "dockerd's log is kept: $DOCKERD_LOG"
  fi
}

_dockerd_stop_pid() {
  local pid=$1
  # Only our daemon: the pid must still be a dockerd, not a reused pid.
  if [ -z "$pid" ] || [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != "dockerd" ]; then
    return 0
  fi
  _dockerd_log "stopping dockerd (pid $pid)"
  kill -TERM "$pid"
  local deadline=$(($(date +%s) + DOCKERD_TIMEOUT))
  # Our child turns zombie until reaped, and kill -0 still succeeds on a zombie.
  while kill -0 "$pid" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      _dockerd_log "dockerd (pid $pid) ignored SIGTERM for ${DOCKERD_TIMEOUT}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null
      break
    fi
    sleep 0.2
  done
  wait "$pid" 2>/dev/null || true
}

# Restarts the daemon recorded in the pid file (one these scripts started), for tests of
# what happens when Docker goes away and comes back. Fails if there is no such daemon.
dockerd_restart_own() {
  local pid
  pid=$(cat "$DOCKERD_PID_FILE" 2>/dev/null) || { _dockerd_log "no daemon of ours to restart"; return 1; }
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ] || { _dockerd_log "pid $pid is not our dockerd"; return 1; }
  kill -TERM "$pid"
  local deadline=$(($(date +%s) + DOCKERD_TIMEOUT))
  while [ -e "/proc/$pid" ] && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]; do
    [ "$(date +%s)" -ge "$deadline" ] && { kill -KILL "$pid"; break; }
    sleep 0.1
  done
  rm -f "$DOCKERD_PID_FILE"
  local saved=${_DOCKERD_STARTED_PID:-} bridge=${_DOCKERD_MADE_BRIDGE:-}
  dockerd_ensure
  _DOCKERD_STARTED_PID=$saved
  _DOCKERD_MADE_BRIDGE=$bridge  # the first daemon's docker0, still there
}
