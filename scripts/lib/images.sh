# images.sh: builds container images offline (nothing can be pulled here). Source it (bash).
#
#   build_busybox_image NAME   # image with /bin/busybox and applet symlinks; CMD /bin/sh
#
# Idempotent: an existing image NAME is kept. Uses /usr/bin/docker (see dockerd.sh).

BUSYBOX_STATIC=${BUSYBOX_STATIC:-/bin/busybox}
BUSYBOX_APPLETS="sh ash cat echo ls ps sleep wget httpd nc ip ifconfig netstat hostname
  env true false test mkdir rm cp mv grep sed awk head tail id kill date printf seq sync"

build_busybox_image() {
  local name=$1
  if [ -z "$name" ]; then
    echo "images.sh: usage: build_busybox_image NAME" >&2; return 2
  fi
  if /usr/bin/docker image inspect "$name" >/dev/null 2>&1; then
    return 0
  fi
  # A dynamic busybox would not run in an image without libc.
  # (ldd fails on a static binary, so test its words, not its status: callers may use pipefail.)
  local ldd_says
  ldd_says=$(ldd "$BUSYBOX_STATIC" 2>&1 || true)
  if [ ! -x "$BUSYBOX_STATIC" ] || [[ "$ldd_says" != *"not a dynamic"* ]]; then
    echo "images.sh: $BUSYBOX_STATIC is missing or not static; apt-get install -y busybox-static" >&2
    return 1
  fi
  local rootfs
  rootfs=$(mktemp -d /tmp/busybox-rootfs.XXXXXX) || return 1
  mkdir -p "$rootfs/bin" "$rootfs/tmp" "$rootfs/etc" "$rootfs/proc" "$rootfs/sys" \
           "$rootfs/dev" "$rootfs/var/www"
  cp "$BUSYBOX_STATIC" "$rootfs/bin/busybox"
  local applet
  for applet in $BUSYBOX_APPLETS; do
    ln -s busybox "$rootfs/bin/$applet"
  done
  echo 'root:x:0:0:root:/:/bin/sh' >"$rootfs/etc/passwd"
  echo 'root:x:0:' >"$rootfs/etc/group"
  local rc=0
  tar -C "$rootfs" -c . | /usr/bin/docker import --change 'CMD ["/bin/sh"]' - "$name" >/dev/null || rc=$?
  rm -rf "$rootfs"
  if [ "$rc" -ne 0 ]; then
    echo "images.sh: docker import of $name failed" >&2
  fi
  return "$rc"
}
