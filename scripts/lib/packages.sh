# Debian 12 packages, installed on demand. Sourced by scripts/test, scripts/demo, bench/.
BUILD_PACKAGES="cmake ninja-build g++ pkg-config libpoco-dev libc-ares-dev liburing-dev libboost-test-dev"
# Real peers and clients of the tests: namespaces, DNS, HTTP, Redis, Docker, Prometheus (and promtool),
# socat (a second path to the Docker socket).
# clang and its libFuzzer runtime, for scripts/fuzz.
FUZZ_PACKAGES="clang-14 libclang-rt-14-dev"
TEST_PACKAGES="iproute2 util-linux procps curl wget busybox-static redis-server redis-tools dnsmasq-base docker.io prometheus socat"

_package_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# ensure_packages PKG...: installs whatever is missing, with one apt-get update first.
# docker.io counts as there when Docker's own docker-ce is: it conflicts with it, and
# apt-get -y would remove the host's engine to install it.
ensure_packages() {
  local missing=()
  local p
  for p in "$@"; do
    [ "$p" = docker.io ] && _package_installed docker-ce && continue
    _package_installed "$p" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing: ${missing[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: missing packages (${missing[*]}) and not root to install them" >&2
    return 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  # We need these programs, not their services: on a systemd host, installing redis-server,
  # prometheus or docker.io would start them (on :6379, :9090) and leave them running.
  # A policy-rc.d that says no (honoured by invoke-rc.d and deb-systemd-invoke, as in
  # Docker's Debian images) keeps them stopped; the scripts start what they need and stop
  # it after. An existing policy-rc.d is left as it is.
  local policy=/usr/sbin/policy-rc.d added="" rc=0 saved
  if [ ! -e "$policy" ]; then
    # Left behind, it would keep every later install or upgrade on this host from starting
    # or restarting its service: a signal (SIGTERM, a Ctrl-C during the download) removes it
    # too. Only a signal can end the shell in this window (apt-get's failure is caught), so
    # the caller's EXIT trap is left alone; its INT, TERM and HUP traps are put back after.
    saved=$(trap -p INT TERM HUP)
    trap 'rm -f "$policy"; exit 130' INT
    trap 'rm -f "$policy"; exit 143' TERM
    trap 'rm -f "$policy"; exit 129' HUP
    printf '#!/bin/sh\n# connectable: no service starts while packages install\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    added=1
  fi
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
  if [ -n "$added" ]; then
    rm -f "$policy"
    trap - INT TERM HUP
    eval "$saved"
  fi
  return $rc
}
