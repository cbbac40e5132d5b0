#!/usr/bin/env bash
# The shim on its own, no Docker: a network namespace (connectable-demo-PID) whose only way
# out is the shim's localhost:8080, spread over two web servers running on the host.
# Run as root from the repository root after building (scripts/demo does both).
# The web servers listen on 127.0.0.1:18091 and :18092 (ALPHA_PORT, BETA_PORT to change).
set -euo pipefail
BIN=${BIN:-build/bin}
ALPHA_PORT=${ALPHA_PORT:-18091}
BETA_PORT=${BETA_PORT:-18092}
NS=connectable-demo-$$
WORK=$(mktemp -d)
pids=()

cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# Two backends on the host's loopback, each saying who it is.
for name in alpha beta; do
  mkdir -p "$WORK/$name"
  echo "hello from $name" > "$WORK/$name/index.html"
done
busybox httpd -f -p "127.0.0.1:$ALPHA_PORT" -h "$WORK/alpha" & pids+=($!)
busybox httpd -f -p "127.0.0.1:$BETA_PORT" -h "$WORK/beta" & beta=$!; pids+=($beta)
# Each must answer with its own page: on a port already taken, httpd fails in the
# background, and the shim would serve whatever listens there.
wait_serving() {  # PORT NAME VARIABLE
  for _ in $(seq 50); do
    [ "$(curl -s -m 1 "127.0.0.1:$1/")" = "hello from $2" ] && return 0
    sleep 0.1
  done
  echo "standalone-shim.sh: $2 does not answer on 127.0.0.1:$1; is the port taken? (set $3)" >&2
  return 1
}
wait_serving "$ALPHA_PORT" alpha ALPHA_PORT
wait_serving "$BETA_PORT" beta BETA_PORT

# A namespace with nothing but loopback: it cannot reach the host at all.
ip netns add "$NS"
ip -n "$NS" link set lo up

"$BIN/connectable-shim" --netns "/var/run/netns/$NS" \
  --connect "8080=127.0.0.1:$ALPHA_PORT,127.0.0.1:$BETA_PORT" --connect-timeout 500ms 2>"$WORK/shim.log" &
shim=$!; pids+=($shim)
for _ in $(seq 50); do ip netns exec "$NS" curl -s -o /dev/null 127.0.0.1:8080 && break; sleep 0.1; done

echo "== inside $NS, ten requests to localhost:8080"
for _ in $(seq 10); do ip netns exec "$NS" curl -s 127.0.0.1:8080/; done | sort | uniq -c

echo "== the backends themselves are out of reach from inside:"
ip netns exec "$NS" curl -s -m 2 "127.0.0.1:$ALPHA_PORT/" || echo "   (connection refused, as it should be)"

echo "== beta stops; ten more requests"
kill "$beta"; wait "$beta" 2>/dev/null || true
for _ in $(seq 10); do ip netns exec "$NS" curl -s 127.0.0.1:8080/; done | sort | uniq -c

echo "== the shim runs as nobody with no capabilities, confined to a proxy's system calls (Seccomp 2):"
grep -E '^(Uid|CapEff|NoNewPrivs|Seccomp):' "/proc/$shim/status"
echo "== its log:"
cat "$WORK/shim.log"
