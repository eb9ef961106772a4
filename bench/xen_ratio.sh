#!/usr/bin/env bash
# xen_ratio.sh - Deno vs C event-channel round trip on real Xen, in ONE boot of
# the QEMU harness (tests/xen): C (tests/xen/cross_check.c, libxenevtchn), then
# Deno (bench/xen_roundtrip.ts, both wait paths), then C, then Deno, ... (3
# rounds by default), all `a2b` round trips (notify(A,a) -> pending(B)=b -> unmask(B,b)), one vCPU
# (--smp 1: with 2 vCPUs the numbers depend on which vCPU the process lands on).
#
# usage: bench/xen_ratio.sh [N=2000] [boot.sh options...]
#   e.g. bench/xen_ratio.sh 2000
#        bench/xen_ratio.sh 2000 --dom0-extra xen.fifo_events=0   (2-level ABI)
#        bench/xen_ratio.sh 2000 --quiet --timeout 300
# stdout: exactly one line, e.g.
#   deno/c round trip ratio: 1.04 (c 95123 ns, deno 98765 ns, N=2000, fifo; best run of 3 each, deno via poll() spin; await next(): 101234 ns = 1.06; best batch of 100: c 93012 ns, deno 96543 ns = 1.04)
# where c and deno are ns_per_round_trip (the mean over one run's N round
# trips) of the fastest of the runs of each (interference from the host only
# ever adds time under TCG, so the minimum is the steadiest figure), "deno"
# being the faster of Deno's two wait paths (both are named); the best batch
# is the fastest 100 consecutive round trips of any run, for a busy host. The JSON lines of every
# run go to stderr as "# {...}"; boot.sh's progress lines too (--quiet: not).
# exit: 0 when measured; otherwise boot.sh's code (124 timeout, 125 boot
# failure) or 1 (a run failed: its stderr is shown). It measures, it does not
# judge: no ratio makes it fail.
# env: XENVM_RATIO_WARMUP  warm-up round trips before each timed run, the same
#      for C and Deno (default 5000: under TCG, V8 needs ~1 s of round trips
#      before the FFI calls run optimised; with cross_check's default of 100,
#      Deno's number is mostly cold code).
#      XENVM_RATIO_ROUNDS  C/Deno alternations (default 3)
set -euo pipefail

if [ "${1:-}" = --in-dom0 ]; then
  # ------------------------------------------------------------- in dom0
  N=$2 WARMUP=$3 ROUNDS=$4
  H=${XENVM_HARNESS:?run through tests/xen/run_in_dom0.sh}
  abi=$(dmesg | sed -n 's/.*xen:events: Using \(.*\) ABI.*/\1/p' | head -1)
  echo "abi=${abi:-unknown} vcpus=$(nproc)"
  for round in $(seq "$ROUNDS"); do
    echo "# round $round: C" >&2
    "$H/.cache/cross_check" "$N" a2b "$WARMUP"
    echo "# round $round: Deno" >&2
    deno run --no-check --no-lock -A bench/xen_roundtrip.ts "$N" a2b "$WARMUP" --wait both
  done
  exit 0
fi

# ---------------------------------------------------------------- on the host
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
case "${1:-}" in -h|--help) sed -n '2,27p' "$0"; exit 0 ;; esac
N=2000
if [ $# -gt 0 ] && [[ "$1" != -* ]]; then N=$1; shift; fi
WARMUP=${XENVM_RATIO_WARMUP:-5000} ROUNDS=${XENVM_RATIO_ROUNDS:-3}
[[ "$N" =~ ^[1-9][0-9]*$ ]] && [[ "$WARMUP" =~ ^[0-9]+$ ]] && [[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] \
  || { echo "usage: bench/xen_ratio.sh [N] [boot.sh options...]  (env XENVM_RATIO_WARMUP, XENVM_RATIO_ROUNDS)" >&2; exit 2; }

cd "$ROOT"
rc=0
out=$("$ROOT/tests/xen/run_in_dom0.sh" --smp 1 "$@" "$0" --in-dom0 "$N" "$WARMUP" "$ROUNDS") || rc=$?
if [ "$rc" -ne 0 ]; then
  echo "xen_ratio: no ratio: the dom0 run exited $rc" >&2
  exit "$rc"
fi
sed -n 's/^{/# {/p' <<<"$out" >&2

# fastest run of each implementation / wait path; the ABI from dom0's dmesg
awk -v n="$N" '
  function num(line, key,   r) {
    r = line; sub(".*\"" key "\":", "", r); sub("[,}].*", "", r); return r + 0
  }
  function str(line, key,   r) {
    r = line; sub(".*\"" key "\":\"", "", r); sub("\".*", "", r); return r
  }
  function low(arr, k, x) { if (!(k in arr) || x < arr[k]) arr[k] = x }
  /^abi=/ { abi = $1; sub("abi=", "", abi) }
  /"impl":"c-libxenevtchn"/ {
    nc++; low(run, "c", num($0, "ns_per_round_trip")); low(bat, "c", num($0, "best_batch_ns_per_round_trip"))
  }
  /"impl":"deno-evtchn"/ {
    w = str($0, "wait"); nd[w]++
    if (!(w in seen)) { seen[w] = 1; order[++nw] = w }
    low(run, w, num($0, "ns_per_round_trip")); low(bat, w, num($0, "best_batch_ns_per_round_trip"))
  }
  END {
    if (nc == 0 || nw == 0) { print "xen_ratio: missing results (C runs: " nc ", Deno paths: " nw ")" > "/dev/stderr"; exit 1 }
    c = run["c"]; best = ""; runs = nc
    for (i = 1; i <= nw; i++) {
      w = order[i]; if (nd[w] < runs) runs = nd[w]
      if (best == "" || run[w] < run[best]) best = w
    }
    label = abi ~ /FIFO/ ? "fifo" : abi ~ /2-level/ ? "2-level" : abi
    other = ""
    for (i = 1; i <= nw; i++) {
      w = order[i]
      if (w != best) other = other sprintf("; %s: %.0f ns = %.2f", w, run[w], run[w] / c)
    }
    printf "deno/c round trip ratio: %.2f (c %.0f ns, deno %.0f ns, N=%d, %s; best run of %d each, deno via %s%s; best batch of 100: c %.0f ns, deno %.0f ns = %.2f)\n",
      run[best] / c, c, run[best], n, label, runs, best, other, bat["c"], bat[best], bat[best] / bat["c"]
  }' <<<"$out"
