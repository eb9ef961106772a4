#!/usr/bin/env bash
# build_cross_check.sh - compile cross_check.c against Debian's libxenevtchn
# (libxen-dev) into tests/xen/.cache/cross_check. Static when the .a files are
# there, so the binary does not depend on the host's /usr/lib being the same as
# what dom0 sees; dynamic otherwise (dom0 shares the host's / anyway).
# Skipped when the binary is newer than the source. usage: build_cross_check.sh [--force]
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="$HERE/.cache/cross_check"
SRC="$HERE/cross_check.c"
mkdir -p "$HERE/.cache"
[ "${1:-}" != --force ] && [ -x "$OUT" ] && [ "$OUT" -nt "$SRC" ] && [ "$OUT" -nt "$0" ] && exit 0

[ -f /usr/include/xenevtchn.h ] || { echo "xen-vm: /usr/include/xenevtchn.h missing: apt-get install libxen-dev (tests/xen/install.sh does)" >&2; exit 1; }
command -v gcc >/dev/null || { echo "xen-vm: gcc missing: apt-get install gcc" >&2; exit 1; }

CFLAGS=(-O2 -Wall -Wextra -Werror -std=gnu11)
LIBDIR=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
# libxenevtchn.a needs libxentoolcore (restrict hooks) and libxentoollog (its
# default logger); the .so records those itself, a static link must name them.
if [ -f "/usr/lib/$LIBDIR/libxenevtchn.a" ] && [ -f "/usr/lib/$LIBDIR/libxentoolcore.a" ] \
   && [ -f "/usr/lib/$LIBDIR/libxentoollog.a" ]; then
  gcc "${CFLAGS[@]}" -static -o "$OUT.tmp" "$SRC" -lxenevtchn -lxentoolcore -lxentoollog
  kind=static
else
  gcc "${CFLAGS[@]}" -o "$OUT.tmp" "$SRC" -lxenevtchn
  kind=dynamic
fi
mv "$OUT.tmp" "$OUT"
echo "[xen-vm] built $OUT ($kind, libxenevtchn from libxen-dev $(dpkg-query -W -f='${Version}' libxen-dev 2>/dev/null || echo '?'))" >&2
