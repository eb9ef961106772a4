#!/usr/bin/env bash
# c_programs.sh - the C half of `evtchn serve`'s proof: builds
# tests/xen/cross_check.c and shim/examples/pingpong.c against the system's
# libxenevtchn (Debian's libxen-dev) and runs them, printing lines that
# compare one for one between real Xen and the model:
#
#   in dom0 (real Xen):   tests/xen/boot.sh -- bash tests/xen/c_programs.sh
#   against evtchn serve: LD_LIBRARY_PATH=shim/.build EVTCHN_SOCKET=... \
#                         bash tests/xen/c_programs.sh
#
# (tests/serve/c_programs_test.ts does the second and compares with
# tests/serve/fixtures/c_programs.real.txt, this script's output in dom0.)
# cross_check's timings and pingpong's stderr (port numbers) are left out;
# everything else is printed. pingpong runs in loopback mode (PEER=0): real
# Xen here has no second Linux domain.
#
# usage: c_programs.sh [BUILD_DIR]   (default: a fresh directory in $TMPDIR)
# Exit: 0 when every program succeeded, 1 otherwise, 3 when gcc or
# libxen-dev is missing.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$(dirname "$HERE")")"
command -v gcc >/dev/null && [ -f /usr/include/xenevtchn.h ] || {
  echo "c_programs: needs gcc and libxen-dev (tests/xen/install.sh installs them)" >&2
  exit 3
}
OUT="${1:-$(mktemp -d "${TMPDIR:-/tmp}/c_programs.XXXXXX")}"
mkdir -p "$OUT"
CFLAGS=(-O2 -Wall -Wextra -Werror -std=gnu11)
gcc "${CFLAGS[@]}" -o "$OUT/cross_check" "$ROOT/tests/xen/cross_check.c" -lxenevtchn || exit 1
gcc "${CFLAGS[@]}" -o "$OUT/pingpong" "$ROOT/shim/examples/pingpong.c" -lxenevtchn || exit 1

rc=0
for mode in a2b pingpong; do
  if json=$(CROSS_CHECK_WATCHDOG=120 "$OUT/cross_check" 300 "$mode" 20 2>"$OUT/cross_check.$mode.err"); then
    # every field but the times
    echo "$json" | sed -E 's/.*"mode":"([a-z0-9]+)".*"iterations":([0-9]+),"warmup":([0-9]+).*"port_a":([0-9]+),"port_b":([0-9]+),"initial_pending":(-?[0-9]+).*/cross_check \1: iterations \2, warmup \3, port a \4, port b \5, first pending on b \6/'
  else
    echo "cross_check $mode: FAIL (exit $?)"
    sed 's/^/  /' "$OUT/cross_check.$mode.err"
    rc=1
  fi
done
"$OUT/pingpong" 0 5 2>"$OUT/pingpong.err" || { rc=1; sed 's/^/  /' "$OUT/pingpong.err"; }
exit $rc
