#!/usr/bin/env bash
# build.sh - builds the C side of `evtchn serve` (see "C programs against the model" in README.md):
#   libxenevtchn.so.1      Xen 4.17 libxenevtchn's ABI, talking to the server
#   libevtchn_preload.so   LD_PRELOAD: open("/dev/xen/evtchn") goes to the server
#   cross_check, pingpong  the proof programs (tests/xen/cross_check.c,
#                          shim/examples/pingpong.c), linked dynamically against
#                          Debian's libxenevtchn so that LD_LIBRARY_PATH swaps it
# into OUT (default shim/.build) and prints one line per file: NAME PATH.
# Needs gcc and Debian's libxen-dev (apt-get install gcc libxen-dev, as
# tests/xen/install.sh does). Exit 3 when either is missing, 1 on a build error.
# usage: shim/build.sh [OUT]
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
OUT="${1:-$HERE/.build}"

command -v gcc >/dev/null || { echo "shim: gcc missing: apt-get install gcc" >&2; exit 3; }
[ -f /usr/include/xenevtchn.h ] && [ -f /usr/include/xen/sys/evtchn.h ] || {
  echo "shim: Xen headers missing (/usr/include/xenevtchn.h): apt-get install libxen-dev" >&2
  exit 3
}
mkdir -p "$OUT"

CFLAGS=(-O2 -g -std=gnu11 -Wall -Wextra -Werror -fPIC -pthread)
LIB_FLAGS=("${CFLAGS[@]}" -shared -fvisibility=hidden -Wl,-z,defs -Wl,--as-needed)

# Each output is built under a temporary name and renamed, so a failed build
# never leaves a half-written library where a test would load it.
gcc "${LIB_FLAGS[@]}" -Wl,-soname,libxenevtchn.so.1 \
  -Wl,--version-script="$HERE/libxenevtchn.map" \
  -o "$OUT/libxenevtchn.so.1.tmp" "$HERE/libxenevtchn.c" "$HERE/evtchn_client.c"
mv "$OUT/libxenevtchn.so.1.tmp" "$OUT/libxenevtchn.so.1"
# for `gcc -L OUT -lxenevtchn`
ln -sfn libxenevtchn.so.1 "$OUT/libxenevtchn.so"

gcc "${LIB_FLAGS[@]}" -o "$OUT/libevtchn_preload.so.tmp" \
  "$HERE/preload.c" "$HERE/evtchn_client.c"
mv "$OUT/libevtchn_preload.so.tmp" "$OUT/libevtchn_preload.so"

# The programs link against the system's libxenevtchn (the unmodified case);
# when only our library is there (no libxenevtchn.so in /usr/lib), against ours.
LINK_DIR=()
if ! gcc -print-file-name=libxenevtchn.so | grep -q /; then LINK_DIR=(-L "$OUT"); fi
for prog in "$ROOT/tests/xen/cross_check.c" "$HERE/examples/pingpong.c"; do
  name="$(basename "$prog" .c)"
  gcc "${CFLAGS[@]}" -o "$OUT/$name.tmp" "$prog" "${LINK_DIR[@]}" -lxenevtchn
  mv "$OUT/$name.tmp" "$OUT/$name"
done

for f in libxenevtchn.so.1 libevtchn_preload.so cross_check pingpong; do
  echo "$f $OUT/$f"
done
