#!/usr/bin/env bash
# xen_ratio.sh - Deno vs C event channels on real Xen, in ONE boot of the QEMU
# harness (tests/xen), one vCPU (--smp 1: with 2 vCPUs the numbers depend on
# which vCPU the process lands on). Per round (3 by default), alternating:
#   C round trips     tests/xen/cross_check.c (libxenevtchn): N `a2b` round
#                     trips, notify(A,a) -> pending(B)=b -> unmask(B,b)
#   Deno round trips  bench/xen_roundtrip.ts --wait all: the same through the
#                     public API, once per wait: poll() spin, await next(),
#                     nextSync()
#   C stream          cross_check BURSTS stream: bursts of PORTS notifies,
#                     drained with read(2)/write(2) of up to PORTS ports
#   Deno stream       xen_roundtrip.ts BURSTS stream --wait both: the same
#                     with handle.drain()/unmaskAll(), waiting synchronously
#                     (drain(ports, timeout)) and by await next()
#
# usage: bench/xen_ratio.sh [N=2000] [boot.sh options...]
#   e.g. bench/xen_ratio.sh 2000
#        bench/xen_ratio.sh 2000 --dom0-extra xen.fifo_events=0   (2-level ABI)
#        bench/xen_ratio.sh 2000 --quiet --timeout 300
# stdout: four lines, e.g.
#   deno/c round trip ratio: 1.04 (c 95123 ns, deno 98765 ns, N=2000, fifo; best run of 3 each, deno via nextSync(); poll() spin: 101234 ns = 1.06; ...; best batch of 100: c 93012 ns, deno 96543 ns = 1.04)
#   deno/c sync wait ratio: 1.04 (c 95123 ns, deno nextSync() 98765 ns, target <= 1.15, N=2000, fifo; best batch of 100: c 93012 ns, deno 96543 ns = 1.04)
#   deno/c async wait ratio: 1.08 (c 95123 ns, deno await next() 102734 ns, target <= 1.3, N=2000, fifo; best batch of 100: ...)
#   deno/c stream ratio: 1.10 (time per event; c 20000 ns = 50000 events/s, deno drain() 22000 ns = 45454 events/s; await next() + drain: 23000 ns = 1.15; 64 ports per burst, 500 bursts, fifo; best batch of 10 bursts: ...)
# where c and deno are the mean of one run (ns_per_round_trip, ns_per_event)
# of the fastest of the runs of each (interference from the host only ever
# adds time under TCG, so the minimum is the steadiest figure). The first
# line is the historical one: "deno" there is the fastest of Deno's waits,
# and the best batch is the fastest 100 consecutive round trips of any run.
# The JSON lines of every run go to stderr as "# {...}"; boot.sh's progress
# lines too (--quiet: not).
# exit: 0 when measured; otherwise boot.sh's code (124 timeout, 125 boot
# failure) or 1 (a run failed: its stderr is shown). It measures, it does not
# judge: no ratio makes it fail.
# env: XENVM_RATIO_WARMUP  warm-up round trips before each timed run, the same
#      for C and Deno (default 5000: under TCG, V8 needs ~1 s of round trips
#      before the FFI calls run optimised; with cross_check's default of 100,
#      Deno's number is mostly cold code).
#      XENVM_RATIO_ROUNDS  C/Deno alternations (default 3)
#      XENVM_RATIO_STREAM  0: no stream runs (and no stream line)
#      XENVM_RATIO_BURSTS  timed bursts per stream run (default N/4)
#      XENVM_RATIO_PORTS   ports per burst (default 64, at most 1024)
#      XENVM_RATIO_PATHS   1: also run bench/xen_paths.ts once (a per-path
#                          profile, JSON lines on stderr as "# {...}")
set -euo pipefail

if [ "${1:-}" = --in-dom0 ]; then
  # ------------------------------------------------------------- in dom0
  N=$2 WARMUP=$3 ROUNDS=$4 STREAM=$5 BURSTS=$6 PORTS=$7 PATHS=$8
  H=${XENVM_HARNESS:?run through tests/xen/run_in_dom0.sh}
  abi=$(dmesg | sed -n 's/.*xen:events: Using \(.*\) ABI.*/\1/p' | head -1)
  echo "abi=${abi:-unknown} vcpus=$(nproc)"
  # stream warm-up: four times as many events as the round trips' warm-up
  SWARM=$(( (4 * WARMUP + PORTS - 1) / PORTS ))
  for round in $(seq "$ROUNDS"); do
    echo "# round $round: C" >&2
    "$H/.cache/cross_check" "$N" a2b "$WARMUP"
    echo "# round $round: Deno" >&2
    deno run --no-check --no-lock -A bench/xen_roundtrip.ts "$N" a2b "$WARMUP" --wait all
    if [ "$STREAM" != 0 ]; then
      echo "# round $round: C stream" >&2
      "$H/.cache/cross_check" "$BURSTS" stream "$SWARM" "$PORTS"
      echo "# round $round: Deno stream" >&2
      deno run --no-check --no-lock -A bench/xen_roundtrip.ts "$BURSTS" stream "$SWARM" "$PORTS" --wait both
    fi
  done
  if [ "$PATHS" = 1 ]; then
    echo "# per-path profile: bench/xen_paths.ts" >&2
    deno run --no-check --no-lock -A bench/xen_paths.ts "$N" "$WARMUP" --table
  fi
  exit 0
fi

# ---------------------------------------------------------------- on the host
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
case "${1:-}" in -h|--help) sed -n '2,44p' "$0"; exit 0 ;; esac
N=2000
if [ $# -gt 0 ] && [[ "$1" != -* ]]; then N=$1; shift; fi
WARMUP=${XENVM_RATIO_WARMUP:-5000} ROUNDS=${XENVM_RATIO_ROUNDS:-3}
STREAM=${XENVM_RATIO_STREAM:-1} PORTS=${XENVM_RATIO_PORTS:-64} PATHS=${XENVM_RATIO_PATHS:-0}
[[ "$N" =~ ^[1-9][0-9]*$ ]] && BURSTS=${XENVM_RATIO_BURSTS:-$(( N / 4 > 0 ? N / 4 : 1 ))}
[[ "$N" =~ ^[1-9][0-9]*$ ]] && [[ "$WARMUP" =~ ^[0-9]+$ ]] && [[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] \
  && [[ "$BURSTS" =~ ^[1-9][0-9]*$ ]] && [[ "$PORTS" =~ ^[1-9][0-9]*$ ]] && [ "$PORTS" -le 1024 ] \
  || { echo "usage: bench/xen_ratio.sh [N] [boot.sh options...]  (env XENVM_RATIO_WARMUP, _ROUNDS, _STREAM, _BURSTS, _PORTS, _PATHS)" >&2; exit 2; }

cd "$ROOT"
rc=0
out=$("$ROOT/tests/xen/run_in_dom0.sh" --smp 1 "$@" "$0" --in-dom0 "$N" "$WARMUP" "$ROUNDS" "$STREAM" "$BURSTS" "$PORTS" "$PATHS") || rc=$?
if [ "$rc" -ne 0 ]; then
  echo "xen_ratio: no ratio: the dom0 run exited $rc" >&2
  exit "$rc"
fi
sed -n 's/^{/# {/p' <<<"$out" >&2
# the per-path table (xen_paths.ts --table writes it to dom0's stderr, which
# boot.sh passes through to ours)

# fastest run of each implementation / wait path; the ABI from dom0's dmesg
awk -v n="$N" -v stream="$STREAM" '
  function num(line, key,   r) {
    r = line; sub(".*\"" key "\":", "", r); sub("[,}].*", "", r); return r + 0
  }
  function str(line, key,   r) {
    r = line; sub(".*\"" key "\":\"", "", r); sub("\".*", "", r); return r
  }
  function low(arr, k, x) { if (!(k in arr) || x < arr[k]) arr[k] = x }
  /^abi=/ { abi = $1; sub("abi=", "", abi) }
  /"impl":"c-libxenevtchn"/ && /"mode":"stream"/ {
    ncs++; low(srun, "c", num($0, "ns_per_event")); low(sbat, "c", num($0, "best_batch_ns_per_event")); sports = num($0, "ports"); sbursts = num($0, "bursts"); next
  }
  /"impl":"deno-evtchn"/ && /"mode":"stream"/ {
    w = str($0, "wait"); nds[w]++
    if (!(w in sseen)) { sseen[w] = 1; sorder[++nsw] = w }
    low(srun, w, num($0, "ns_per_event")); low(sbat, w, num($0, "best_batch_ns_per_event")); next
  }
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
    if (stream != 0 && (ncs == 0 || nsw == 0)) { print "xen_ratio: missing stream results (C runs: " ncs ", Deno paths: " nsw ")" > "/dev/stderr"; exit 1 }
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
    if ("nextSync()" in run)
      printf "deno/c sync wait ratio: %.2f (c %.0f ns, deno nextSync() %.0f ns, target <= 1.15, N=%d, %s; best batch of 100: c %.0f ns, deno %.0f ns = %.2f)\n",
        run["nextSync()"] / c, c, run["nextSync()"], n, label, bat["c"], bat["nextSync()"], bat["nextSync()"] / bat["c"]
    if ("await next()" in run)
      printf "deno/c async wait ratio: %.2f (c %.0f ns, deno await next() %.0f ns, target <= 1.3, N=%d, %s; best batch of 100: c %.0f ns, deno %.0f ns = %.2f)\n",
        run["await next()"] / c, c, run["await next()"], n, label, bat["c"], bat["await next()"], bat["await next()"] / bat["c"]
    if (stream != 0) {
      cs = srun["c"]; sync = "drain(ports, timeout)"; async = "await next() + drain"
      printf "deno/c stream ratio: %.2f (time per event; c %.0f ns = %.0f events/s, deno drain() %.0f ns = %.0f events/s; await next() + drain: %.0f ns = %.2f; %d ports per burst, %d bursts, %s; best batch of 10 bursts: c %.0f ns, deno %.0f ns = %.2f)\n",
        srun[sync] / cs, cs, 1e9 / cs, srun[sync], 1e9 / srun[sync], srun[async], srun[async] / cs, sports, sbursts, label, sbat["c"], sbat[sync], sbat[sync] / sbat["c"]
    }
  }' <<<"$out"
