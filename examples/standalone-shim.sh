#!/usr/bin/env bash
# The shim on its own, no Docker: a network namespace "blue" whose only way out is the
# shim's localhost:8080, spread over two web servers running on the host.
# Run as root from the repository root after building (scripts/demo does both).
set -euo pipefail
BIN=${BIN:-build/bin}
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
busybox httpd -f -p 127.0.0.1:18081 -h "$WORK/alpha" & pids+=($!)
busybox httpd -f -p 127.0.0.1:18082 -h "$WORK/beta" & beta=$!; pids+=($beta)

# A namespace with nothing but loopback: it cannot reach the host at all.
ip netns add "$NS"
ip -n "$NS" link set lo up

"$BIN/connectable-shim" --netns "/var/run/netns/$NS" \
  --connect 8080=127.0.0.1:18081,127.0.0.1:18082 --connect-timeout 500ms 2>"$WORK/shim.log" &
shim=$!; pids+=($shim)
for _ in $(seq 50); do ip netns exec "$NS" curl -s -o /dev/null 127.0.0.1:8080 && break; sleep 0.1; done

echo "== inside $NS, ten requests to localhost:8080"
for _ in $(seq 10); do ip netns exec "$NS" curl -s 127.0.0.1:8080/; done | sort | uniq -c

echo "== the backends themselves are out of reach from inside:"
ip netns exec "$NS" curl -s -m 2 127.0.0.1:18081/ || echo "   (connection refused, as it should be)"

echo "== beta stops; ten more requests"
kill "$beta"; wait "$beta" 2>/dev/null || true
for _ in $(seq 10); do ip netns exec "$NS" curl -s 127.0.0.1:8080/; done | sort | uniq -c

echo "== the shim runs as nobody with no capabilities, confined to a proxy's system calls (Seccomp 2):"
grep -E '^(Uid|CapEff|NoNewPrivs|Seccomp):' "/proc/$shim/status"
echo "== its log:"
cat "$WORK/shim.log"
