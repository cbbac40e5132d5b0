# dockerd.sh: gives tests and demos a Docker daemon, starting one only if none answers.
# Source it (bash). Always uses /usr/bin/docker: a newer client may shadow it in PATH.
#
#   dockerd_ensure            # install docker.io if needed (through packages.sh's
#                             # ensure_packages: source it too), start dockerd if none answers
#   dockerd_stop_if_started [STATUS]
#                             # stop only the daemon dockerd_ensure started, by pid, and
#                             # remove what it left: its docker0 bridge if there was none
#                             # before it, the iptables rules, chains and policies it
#                             # added or changed, IP forwarding and bridge-nf-call-ip(6)tables
#                             # if it turned them on, and its log unless STATUS (the
#                             # caller's exit status) is given and not 0
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
    # Through packages.sh, which the caller sources: its apt-get update first, and its
    # policy-rc.d, without which the install starts and enables docker.service on a systemd
    # host (the tests would then use that daemon, and leave it running).
    if ! command -v ensure_packages >/dev/null 2>&1; then
      _dockerd_log "no $DOCKERD or $DOCKER: install docker.io (scripts/lib/packages.sh: ensure_packages docker.io)"
      return 1
    fi
    ensure_packages docker.io || { _dockerd_log "installing docker.io failed"; return 1; }
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
  # It also adds iptables chains and rules, sets FORWARD's policy to DROP and turns IP
  # forwarding on, and leaves all of it behind: a record of the host before it lets
  # dockerd_stop_if_started undo exactly that.
  _dockerd_record_host "$DOCKERD_STATE_DIR/host-before"
  # A daemon restarted by dockerd_restart_own writes after the first one's lines, which a
  # failed test may need; a new run starts the log afresh.
  [ -n "${_DOCKERD_RESTARTING:-}" ] || : >"$DOCKERD_LOG"
  _dockerd_log "starting $DOCKERD (log: $DOCKERD_LOG)"
  # setsid: the daemon must not die with the caller's terminal or process group.
  setsid "$DOCKERD" \
    --host "unix://$DOCKER_SOCK" \
    --bip 198.19.255.1/24 \
    --default-address-pool base=198.19.0.0/16,size=24 \
    --pidfile "$DOCKERD_STATE_DIR/dockerd.own.pid" \
    >>"$DOCKERD_LOG" 2>&1 </dev/null &
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
  if [ -d "$DOCKERD_STATE_DIR/host-before" ]; then
    if [ -z "$(_dockerd_pids)" ]; then
      _dockerd_restore_host "$DOCKERD_STATE_DIR/host-before"
    else
      _dockerd_log "another dockerd runs now: the iptables rules ours added are left to it"
    fi
    rm -rf "$DOCKERD_STATE_DIR/host-before"
  fi
  if [ "$status" = 0 ]; then
    rm -f "$DOCKERD_LOG"
    rmdir "$DOCKERD_STATE_DIR" 2>/dev/null || true
  elif [ -f "$DOCKERD_LOG" ]; then
    _dockerd_log "dockerd's log is kept: $DOCKERD_LOG"
  fi
}

# The tables dockerd writes to (Docker 20.10 uses filter and nat), as `iptables -S` prints
# them, IP forwarding, and net.bridge.bridge-nf-call-ip(6)tables: dockerd turns them on,
# and then every bridge of the host (libvirt, LXC) sends its traffic through iptables. They
# exist only while br_netfilter is loaded; one that dockerd loaded is left loaded (something
# else may use it by then), as it loads: with them on.
_DOCKERD_TABLES="filter nat"
_DOCKERD_BRIDGE_NF="bridge-nf-call-iptables bridge-nf-call-ip6tables"
_dockerd_record_host() {
  local dir=$1 t f
  rm -rf "$dir" && mkdir -p "$dir"
  sysctl -n net.ipv4.ip_forward >"$dir/ip_forward" 2>/dev/null
  for f in $_DOCKERD_BRIDGE_NF; do
    [ -f "/proc/sys/net/bridge/$f" ] || continue
    cat "/proc/sys/net/bridge/$f" >"$dir/$f" 2>/dev/null || rm -f "$dir/$f"
  done
  command -v iptables >/dev/null 2>&1 || return 0
  for t in $_DOCKERD_TABLES; do
    iptables -w -t "$t" -S >"$dir/$t" 2>/dev/null || rm -f "$dir/$t"
  done
}

# Undoes, line by line, what Docker changed since the record: its rules added (in its
# DOCKER chains, jumping to them, or naming its bridges) are deleted, then its chains, and
# policies changed are set back. Rules anyone else added or removed meanwhile are theirs:
# a whole-table restore would undo those too.
_dockerd_restore_host() {
  local dir=$1 t line f
  if command -v iptables >/dev/null 2>&1; then
    for t in $_DOCKERD_TABLES; do
      [ -f "$dir/$t" ] || continue
      iptables -w -t "$t" -S >"$dir/$t.after" 2>/dev/null || continue
      # (`|| true`: finding nothing is no failure, and callers run under set -e -o pipefail.)
      grep -vxF -f "$dir/$t" "$dir/$t.after" >"$dir/$t.added" || true
      # Rules first (a chain goes only once nothing jumps to it), then chains, then policies.
      { grep '^-A ' "$dir/$t.added" | grep -E '^-A DOCKER|-j DOCKER|docker0|br-[0-9a-f]{12}' || true; } \
        | while IFS= read -r line; do
        # iptables -S quotes arguments with spaces, as xargs reads them.
        printf '%s\n' "${line#-A }" | xargs iptables -w -t "$t" -D \
          || _dockerd_log "could not remove the iptables rule ($t) $line"
      done
      { grep '^-N DOCKER' "$dir/$t.added" || true; } | while IFS= read -r line; do
        iptables -w -t "$t" -X "${line#-N }" || _dockerd_log "could not remove the iptables chain ($t) ${line#-N }"
      done
      { grep '^-P ' "$dir/$t" || true; } | while IFS= read -r line; do
        grep -qxF -- "$line" "$dir/$t.after" && continue
        set -- $line
        iptables -w -t "$t" -P "$2" "$3" || _dockerd_log "could not set the iptables policy ($t) $2 back to $3"
      done
    done
  fi
  if [ "$(cat "$dir/ip_forward" 2>/dev/null)" = 0 ] && [ "$(sysctl -n net.ipv4.ip_forward 2>/dev/null)" = 1 ]; then
    sysctl -qw net.ipv4.ip_forward=0 || _dockerd_log "could not turn IP forwarding back off"
  fi
  for f in $_DOCKERD_BRIDGE_NF; do
    if [ "$(cat "$dir/$f" 2>/dev/null)" = 0 ] && [ "$(cat "/proc/sys/net/bridge/$f" 2>/dev/null)" = 1 ]; then
      { echo 0 >"/proc/sys/net/bridge/$f"; } 2>/dev/null || _dockerd_log "could not turn net.bridge.$f back off"
    fi
  done
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
  # The host as it was before the first daemon, not as that one left it.
  local record="$DOCKERD_STATE_DIR/host-before"
  [ -d "$record" ] && mv "$record" "$record.first"
  _DOCKERD_RESTARTING=1 dockerd_ensure
  [ -d "$record.first" ] && rm -rf "$record" && mv "$record.first" "$record"
  _DOCKERD_STARTED_PID=$saved
  _DOCKERD_MADE_BRIDGE=$bridge  # the first daemon's docker0, still there
}
