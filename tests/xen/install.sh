#!/usr/bin/env bash
# install.sh - prepare everything the real-Xen harness (boot.sh) needs, from
# Debian's own packages only (no other download source is reachable in CI):
#
#   1. host tools via apt-get: qemu-system-x86 busybox-static cpio libxen-dev gcc strace
#   2. apt-get download xen-hypervisor-4.17-amd64 and the current
#      linux-image-<abi>-amd64-unsigned into tests/xen/.cache/debs/
#   3. extract the hypervisor (.cache/xen), the dom0 kernel and only the ~15
#      modules dom0 needs (.cache/kernel/)
#   4. build the dom0 initramfs (.cache/initrd.cpio.gz) from busybox + init.sh
#   5. build the libxenevtchn cross-check (build_cross_check.sh)
#
# usage: install.sh [--refresh]
#   --refresh   forget the cached kernel ABI and re-resolve it from
#               `apt-cache depends linux-image-amd64` (after `apt-get update`)
# env:   XENVM_KVER   force a kernel ABI, e.g. 6.1.0-56-amd64
#
# Idempotent: every step is skipped when its output is already there and newer
# than its inputs; a second run takes well under a second. Root is needed only
# when apt-get has something to do. Exits nonzero with one "xen-vm install:" line
# on failure (details in .cache/install.log).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="$HERE/.cache"
LOG="$CACHE/install.log"
XEN_PKG="xen-hypervisor-4.17-amd64"
HOST_PKGS="qemu-system-x86 busybox-static cpio libxen-dev gcc strace"
# dom0 modules (all =m in Debian's 6.1 config). Their dependencies are added
# automatically from each .ko's depends= field.
WANT_MODS="9pnet_virtio 9p virtio_pci xen-evtchn xenfs xen-privcmd xen-gntdev xen-gntalloc"

REFRESH=0
case "${1:-}" in
  --refresh) REFRESH=1 ;;
  "") ;;
  -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
  *) echo "xen-vm install: unknown option $1" >&2; exit 2 ;;
esac

die() { echo "xen-vm install: $*" >&2; exit 1; }
mkdir -p "$CACHE/debs" 2>/dev/null && [ -w "$CACHE" ] || die "cannot write to $CACHE"
log() { echo "[xen-vm install] $*" >&2; }
# apt's chatter goes to the log; the user sees one line
quiet() { "$@" >>"$LOG" 2>&1; }

# Serialise concurrent installs (two boot.sh started at once would otherwise
# both extract into the same directories).
exec 9>"$CACHE/install.lock"
flock 9
: > "$LOG"   # this run's apt output only

# ---------------------------------------------------------------- 1. host tools
apt_updated=0
apt_update() {
  [ "$apt_updated" = 1 ] && return 0
  [ "$(id -u)" = 0 ] || die "must run as root to use apt-get (missing: $*)"
  log "apt-get update"
  quiet apt-get update -q || die "apt-get update failed (see $LOG)"
  apt_updated=1
}
missing=()
for p in $HOST_PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "must run as root to apt-get install ${missing[*]}"
  # an apt list may be missing or stale on a fresh machine: update once first
  apt_update "${missing[*]}"
  log "apt-get install ${missing[*]}"
  quiet env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" \
    || die "apt-get install ${missing[*]} failed (see $LOG)"
fi

# ------------------------------------------------------------ 2. kernel ABI
# Old kernel ABIs vanish from the mirror after a point release, so the ABI is
# never hard-coded: $XENVM_KVER, else the one already cached (stable across
# runs, no apt needed), else what the linux-image-amd64 metapackage points at.
resolve_kver() {
  apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: linux-image-\([0-9].*-amd64\)$/\1/p' | head -1
}
KVER="${XENVM_KVER:-}"
if [ -z "$KVER" ] && [ "$REFRESH" = 0 ] && [ -f "$CACHE/kver" ]; then KVER=$(cat "$CACHE/kver"); fi
if [ -z "$KVER" ]; then
  [ "$REFRESH" = 1 ] && apt_update "kernel ABI lookup"
  KVER=$(resolve_kver)
  if [ -z "$KVER" ]; then apt_update "kernel ABI lookup"; KVER=$(resolve_kver); fi
  [ -n "$KVER" ] || die "cannot find the kernel ABI: 'apt-cache depends linux-image-amd64' names no linux-image-*-amd64"
fi
KPKG="linux-image-${KVER}-unsigned"   # same kernel as the signed one, without shim deps

# ---------------------------------------------------------------- 3. debs
# apt-get download writes into the cwd and does not need root; only a stale
# package list (404 on the pool) needs an update, which does.
fetch_deb() {
  local pkg=$1
  ls "$CACHE/debs/${pkg}_"*.deb >/dev/null 2>&1 && return 0
  log "apt-get download $pkg"
  if ! (cd "$CACHE/debs" && quiet apt-get download "$pkg"); then
    apt_update "$pkg"
    (cd "$CACHE/debs" && quiet apt-get download "$pkg") || die "apt-get download $pkg failed (see $LOG)"
  fi
}
fetch_deb "$XEN_PKG"
fetch_deb "$KPKG"
# several versions can pile up after --refresh: use the newest
newest_deb() { ls "$CACHE/debs/${1}_"*.deb | sort -V | tail -1; }
XEN_DEB=$(newest_deb "$XEN_PKG")
K_DEB=$(newest_deb "$KPKG")

# ------------------------------------------------------------- 4. extract
if [ ! -f "$CACHE/xen" ] || [ "$XEN_DEB" -nt "$CACHE/xen" ]; then
  log "extracting Xen from $(basename "$XEN_DEB")"
  rm -rf "$CACHE/xenpkg"; mkdir -p "$CACHE/xenpkg"
  dpkg-deb --fsys-tarfile "$XEN_DEB" | tar -x -C "$CACHE/xenpkg" --wildcards './boot/xen-*.gz'
  # QEMU's multiboot loader wants the uncompressed ELF
  gunzip -c "$CACHE"/xenpkg/boot/xen-4.17-amd64.gz > "$CACHE/xen.tmp"
  mv "$CACHE/xen.tmp" "$CACHE/xen"
  dpkg-deb -f "$XEN_DEB" Version > "$CACHE/xen.version"
  rm -rf "$CACHE/xenpkg"
fi

KDIR="$CACHE/kernel"
MODROOT="$KDIR/lib/modules/$KVER"
if [ ! -f "$KDIR/.done" ] || [ "$(cat "$KDIR/.done")" != "$KVER" ] || [ "$K_DEB" -nt "$KDIR/.done" ]; then
  # only vmlinuz + the module directories we need: a full extraction is ~400 MB
  log "extracting dom0 kernel $KVER + needed modules"
  rm -rf "$KDIR"; mkdir -p "$KDIR"
  M="./lib/modules/$KVER"
  dpkg-deb --fsys-tarfile "$K_DEB" | tar -x -C "$KDIR" --wildcards \
    "./boot/vmlinuz-$KVER" "$M/modules.builtin" \
    "$M/kernel/fs/netfs/*" "$M/kernel/fs/fscache/*" "$M/kernel/fs/9p/*" "$M/kernel/net/9p/*" \
    "$M/kernel/drivers/virtio/*" "$M/kernel/drivers/xen/*" \
    || die "extracting $(basename "$K_DEB") failed"
  echo "$KVER" > "$KDIR/.done"
fi
echo "$KVER" > "$CACHE/kver"
ln -sfn "kernel/boot/vmlinuz-$KVER" "$CACHE/vmlinuz"   # stable name for boot.sh

# ------------------------------------------------------------ 5. initramfs
modfile() { find "$MODROOT" -name "$(printf '%s' "$1" | sed 's/[-_]/[-_]/g').ko" | head -1; }
builtin() { grep -q "/$(printf '%s' "$1" | sed 's/[-_]/[-_]/g').ko$" "$MODROOT/modules.builtin" 2>/dev/null; }
ORDER=" "
# Load order = dependencies first, computed from each .ko's "depends=" modinfo
# field, because it changes between ABIs (virtio needs virtio_ring first in
# 6.1.0-56 but not in 6.1.0-50).
resolve() {
  case "$ORDER" in *" $1 "*) return 0 ;; esac
  builtin "$1" && return 0
  local f d
  f=$(modfile "$1")
  if [ -z "$f" ] && [ ! -f "$KDIR/.full" ]; then
    log "module $1 is outside the extracted subset: extracting all modules"
    dpkg-deb --fsys-tarfile "$K_DEB" | tar -x -C "$KDIR" --wildcards './lib/modules/*'
    touch "$KDIR/.full"
    f=$(modfile "$1")
  fi
  [ -n "$f" ] || die "kernel module $1 not found in $(basename "$K_DEB")"
  for d in $(tr '\0' '\n' < "$f" | sed -n 's/^depends=//p' | head -1 | tr ',' ' '); do resolve "$d"; done
  ORDER="$ORDER$1 "
}
INITRD="$CACHE/initrd.cpio.gz"
if [ ! -f "$INITRD" ] || [ "$HERE/init.sh" -nt "$INITRD" ] || [ "$HERE/install.sh" -nt "$INITRD" ] \
   || [ "$KDIR/.done" -nt "$INITRD" ] || [ /bin/busybox -nt "$INITRD" ]; then
  log "building initramfs"
  R="$CACHE/initrd.root"; rm -rf "$R"
  mkdir -p "$R"/{bin,dev,proc,sys,host,xenvm,tmp,lib/modules}
  cp /bin/busybox "$R/bin/busybox"   # busybox-static: no libraries needed
  for m in $WANT_MODS; do resolve "$m"; done
  for m in $ORDER; do cp "$(modfile "$m")" "$R/lib/modules/$m.ko"; done
  echo $ORDER | tr ' ' '\n' > "$R/lib/modules/order"
  cp "$HERE/init.sh" "$R/init"; chmod 755 "$R/init"
  (cd "$R" && find . | cpio -o -H newc --quiet | gzip -1) > "$INITRD.tmp"
  mv "$INITRD.tmp" "$INITRD"
  rm -rf "$R"
  log "initramfs modules (load order):$ORDER"
fi

# ------------------------------------------------------- 6. C cross-check
"$HERE/build_cross_check.sh" >&2 || die "building cross_check.c failed"

# boot.sh re-runs this script whenever the stamp is missing or older than it
printf 'kver=%s\nxen=%s\n' "$KVER" "$(cat "$CACHE/xen.version")" > "$CACHE/ready"
log "ready: Xen $(cat "$CACHE/xen.version"), dom0 kernel $KVER (cache: $CACHE)"
