#!/usr/bin/env bash
# ci_stage.sh - the real-Xen stage of CI: .ci/run calls it after the software
# tests (and `deno task test:xen` runs it alone). Boots real Xen under QEMU
# (tests/xen/boot.sh) twice, and in dom0 runs the linux conformance suite and
# every test that needs a real device:
#
#   deno test --no-check --no-lock -A --sanitize-ops --sanitize-resources \
#     --junit-path=... tests/conformance/linux_test.ts tests/linux/ \
#     tests/xen/differential_test.ts   (10,000 random ops, linux vs the model)
#
# with EVTCHN_CREATE_DOMAIN=1 (the privcmd-created second domain case runs)
# and EVTCHN_SETTLE_MS tuned for the accelerator:
#   1. FIFO event ABI (dom0's default)           -> OUTDIR/xen-fifo.xml
#   2. 2-level ABI (dom0 xen.fifo_events=0)      -> OUTDIR/xen-2l.xml
#   3. bench/xen_ratio.sh (one vCPU, FIFO then 2-level): Deno/C ratio lines
#      for the round trip, the synchronous and the async wait, and a one-way
#      stream (events/s). Measurements, never a failure.
# Each run's whole output is also kept in OUTDIR/xen-<abi>.log (and
# OUTDIR/xen-ratio-<abi>.log).
#
# usage: tests/xen/ci_stage.sh OUTDIR
# exit:  0 both ABI runs passed; 1 a run failed, timed out, ran on the wrong
#        ABI, ignored tests, or wrote no JUnit report; 2 usage;
#        3 this machine cannot run the stage (not root and packages missing,
#        qemu-system-x86_64 not installable, apt unreachable, no Deno, too
#        little memory): ONE line on stdout says why, nothing else is printed.
# env:   XENVM_CI_TIMEOUT   seconds per boot before it is killed (default 1500,
#                           scaled by the empty boot's slowness, 1x to 4x)
#        XENVM_CI_SETTLE_MS EVTCHN_SETTLE_MS in dom0 (default 100 under TCG,
#                           30 under KVM)
#        XENVM_CI_RATIO     0: skip step 3        XENVM_CI_RATIO_N  its N (2000)
#
# dom0 sees the host read-only: the reports are written into a directory under
# tests/xen/.cache exported with --rw, then copied to OUTDIR (which may be
# anywhere, /tmp included).
set -uo pipefail

# ------------------------------------------------------------------- in dom0
if [ "${1:-}" = --in-dom0 ]; then
  label=$2 out=$3
  shift 3
  abi=$(dmesg | sed -n 's/.*xen:events: Using \(.*\) ABI.*/\1/p' | head -1)
  echo "${abi:-unknown}" > "$out/xen-$label.abi"
  v=/sys/hypervisor/version
  echo "[dom0] Xen $(cat $v/major).$(cat $v/minor)$(cat $v/extra), dom0 $(uname -r), events ABI: ${abi:-unknown}, $(nproc) vCPUs, EVTCHN_SETTLE_MS=${EVTCHN_SETTLE_MS:-}"
  exec deno test --no-check --no-lock -A --sanitize-ops --sanitize-resources \
    --junit-path="$out/xen-$label.xml" "$@"
fi

# ------------------------------------------------------------------ on the host
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd -P)"
CACHE="$HERE/.cache"
# The differential runs come last: they must not depend on what ran before
# them in the same boot (each starts from a snapshot of the host).
TESTS=(tests/conformance/linux_test.ts tests/linux/ tests/xen/cli_test.ts tests/xen/readme_test.ts tests/xen/placement_test.ts tests/xen/fuzz_test.ts tests/xen/errno_test.ts tests/xen/c_programs_test.ts tests/xen/differential_test.ts)
# With one vCPU only placement is checked (every port lands on vCPU 0).
TESTS_1VCPU=(tests/xen/placement_test.ts)

[ $# -eq 1 ] && [ -n "$1" ] || { echo "usage: tests/xen/ci_stage.sh OUTDIR" >&2; exit 2; }
mkdir -p "$1" 2>/dev/null || { echo "xen-ci: cannot create OUTDIR $1" >&2; exit 2; }
OUTDIR="$(cd "$1" && pwd -P)"
TIMEOUT=${XENVM_CI_TIMEOUT:-1500}
[[ "$TIMEOUT" =~ ^[1-9][0-9]*$ ]] || { echo "xen-ci: XENVM_CI_TIMEOUT must be a number of seconds" >&2; exit 2; }
# the stage decides the event ABI itself
unset XENVM_DOM0_EXTRA XENVM_XEN_EXTRA

T0=$SECONDS
dur() { local s=$((SECONDS - $1)); printf '%dm%02ds' $((s / 60)) $((s % 60)); }
cannot() { echo "real-Xen stage cannot run on this machine: $*"; exit 3; }

# ------------------------------------------------------ can this machine run it?
[ "$(uname -s)" = Linux ] || cannot "not Linux ($(uname -s))"
command -v dpkg-query >/dev/null && command -v apt-get >/dev/null \
  || cannot "no apt-get/dpkg (the harness installs Debian packages)"
avail=$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo 2>/dev/null)
[ "${avail:-0}" -ge 2700 ] || cannot "only ${avail:-?} MB of memory available, QEMU needs about 2700"
deno_err=$("$HERE/deno.sh" 2>&1 >/dev/null) || cannot "no Deno binary to run in dom0 (${deno_err:-deno.sh failed})"

HOST_PKGS=$(sed -n 's/^HOST_PKGS="\(.*\)"$/\1/p' "$HERE/install.sh")
missing=()
for p in $HOST_PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" != 0 ]; then
  cannot "not root and packages missing: ${missing[*]}"
fi

# install.sh: quick when nothing changed; its chatter is kept, not shown, so
# that the cannot-run path prints its one line only
mkdir -p "$CACHE" 2>/dev/null || cannot "cannot write to $CACHE"
ilog=$(mktemp)
trap 'rm -f "$ilog"' EXIT
if ! "$HERE/install.sh" >"$ilog" 2>&1; then
  why=$(grep -m1 '^xen-vm install:' "$ilog" | sed 's/^xen-vm install: //')
  net=$(grep -m1 -E 'Temporary failure resolving|Could not resolve|Failed to fetch|Unable to connect|Could not connect|Network is unreachable|Connection timed out|No route to host' "$CACHE/install.log" 2>/dev/null)
  if [ -n "$net" ]; then cannot "apt unreachable (${net})"; fi
  # a package this machine's apt sources do not have (qemu-system-x86 on a
  # non-Debian host, the Debian kernel or Xen packages on another distribution)
  nopkg=$(grep -m1 -E "Unable to locate package|has no installation candidate|Can't select candidate version|is not available" "$CACHE/install.log" 2>/dev/null)
  if [ -n "$nopkg" ]; then
    case "$nopkg" in
      *qemu*) cannot "qemu-system-x86_64 is not installable from apt (${nopkg#E: })" ;;
      *) cannot "a package is not installable from apt (${nopkg#E: })" ;;
    esac
  fi
  case "$why" in
    "must run as root"* | "cannot write"* | "cannot find the kernel ABI"*) cannot "$why" ;;
  esac
  echo "xen-ci: tests/xen/install.sh failed: ${why:-see below}" >&2
  cat "$ilog" >&2
  exit 1
fi
command -v qemu-system-x86_64 >/dev/null || cannot "qemu-system-x86_64 not found after install.sh"

# -------------------------------------------------------------------- the runs
cd "$ROOT" || { echo "xen-ci: cannot cd to $ROOT" >&2; exit 1; }
RW=$(mktemp -d "$CACHE/ci.XXXXXX") || { echo "xen-ci: cannot create a directory under $CACHE" >&2; exit 1; }
trap 'rm -f "$ilog"; rm -rf "$RW"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
RWOPT=(--rw "$RW")
# a checkout under /tmp is invisible in dom0 (its /tmp is a tmpfs) unless exported
case "$ROOT/" in /tmp/*) RWOPT=(--rw "$ROOT") ;; esac

if [ -z "${XENVM_CI_SETTLE_MS:-}" ]; then
  if [ -r /dev/kvm ] && [ -w /dev/kvm ] && { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; }; then
    XENVM_CI_SETTLE_MS=30
  else
    XENVM_CI_SETTLE_MS=100 # TCG: a delivery to the other vCPU can take tens of ms
  fi
fi

# junit_counts FILE -> "passed failed ignored" (as .ci/run counts: steps are
# cases); "? ? ?" when it cannot be parsed
junit_counts() {
  python3 - "$1" <<'PY' 2>/dev/null || echo "? ? ?"
import sys, xml.etree.ElementTree as ET
p = f = s = 0
for case in ET.parse(sys.argv[1]).getroot().iter("testcase"):
    if case.find("failure") is not None or case.find("error") is not None: f += 1
    elif case.find("skipped") is not None:
        # a test that applies only where there is no Xen is not a missing device
        if "[ignored: off Xen only" not in case.get("name", ""): s += 1
    else: p += 1
print(p, f, s)
PY
}

# Budgets scale with this machine's speed now: one empty boot is timed
# (about 10 s on a quiet 2-core machine) and every boot's timeout is
# multiplied by how much slower it was, 1x to 4x.
REF_BOOT_S=12
t=$EPOCHREALTIME
"$HERE/boot.sh" --quiet --no-install --timeout 300 -- true >/dev/null 2>&1
boot_ms=$(awk -v a="$t" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }')
SCALE=$(awk -v ms="$boot_ms" -v ref="$REF_BOOT_S" 'BEGIN { s = ms / 1000 / ref; if (s < 1) s = 1; if (s > 4) s = 4; printf "%.2f", s }')
TIMEOUT=$(awk -v t="$TIMEOUT" -v s="$SCALE" 'BEGIN { printf "%d", t * s }')
echo "== real-Xen: an empty boot took $((boot_ms / 1000)).$(printf '%03d' $((boot_ms % 1000)) | cut -c1)s (reference ${REF_BOOT_S}s): budgets x$SCALE, ${TIMEOUT}s per boot"

SUMMARY=()
status=0
# run_abi LABEL WANT_ABI TESTS_ARRAY_NAME [boot.sh options...]
run_abi() {
  local label=$1 want=$2 t=$SECONDS rc=0 abi verdict p f s
  local -n tests=$3
  shift 3
  echo "== real-Xen $label: boot Xen ($want event ABI) and run ${tests[*]} in dom0 (timeout ${TIMEOUT}s; dom0's output follows as it is written)"
  rm -f "$RW/xen-$label.xml" "$RW/xen-$label.abi" "$OUTDIR/xen-$label.xml"
  "$HERE/run_in_dom0.sh" --follow --timeout "$TIMEOUT" "${RWOPT[@]}" \
    --env EVTCHN_CREATE_DOMAIN=1 --env EVTCHN_SETTLE_MS="$XENVM_CI_SETTLE_MS" --env NO_COLOR=1 \
    --env EVTCHN_DIFF_SAVE="$RW" \
    "$@" "$HERE/ci_stage.sh" --in-dom0 "$label" "$RW" "${tests[@]}" 2>&1 | tee "$OUTDIR/xen-$label.log"
  rc=${PIPESTATUS[0]}
  abi=$(cat "$RW/xen-$label.abi" 2>/dev/null || echo "not reported")
  read -r p f s <<<"0 0 0"
  if [ -s "$RW/xen-$label.xml" ]; then
    cp "$RW/xen-$label.xml" "$OUTDIR/xen-$label.xml"
    read -r p f s < <(junit_counts "$OUTDIR/xen-$label.xml")
  fi
  local running
  # the test deno was in when the boot was killed: the last "name ..." line
  running=$(grep -a -E '^\s*[^ ].* \.\.\.' "$OUTDIR/xen-$label.log" | grep -a -v -E '\.\.\. *(ok|FAILED|ignored)' | tail -n 1 | sed 's/ \.\.\..*//; s/^ *//')
  case "$rc" in
    0) verdict=ok ;;
    124) verdict="FAILED: timed out after ${TIMEOUT}s${running:+ in test \"$running\"}" ;;
    125) verdict="FAILED: Xen/dom0 did not boot (see $OUTDIR/xen-$label.log)" ;;
    *) verdict="FAILED: deno test exited $rc" ;;
  esac
  if [ ! -s "$RW/xen-$label.xml" ]; then
    if [ "$rc" -eq 0 ]; then verdict="FAILED: no JUnit report"; else verdict="$verdict, no JUnit report"; fi
  elif [ "$abi" != "$want" ]; then
    verdict="FAILED: dom0 used the '$abi' event ABI, not $want"
  elif [ "$p" = "?" ]; then
    if [ "$rc" -eq 0 ]; then verdict="FAILED: the JUnit report does not parse"; else verdict="$verdict, JUnit report unreadable"; fi
  elif [ "$rc" -eq 0 ] && [ "$s" -gt 0 ]; then
    verdict="FAILED: $s tests ignored in dom0 (a device missing?)"
  elif [ "$rc" -eq 0 ] && [ "$f" -gt 0 ]; then
    verdict="FAILED: the report has failures"
  elif [ "$rc" -eq 0 ] && [ "$p" -eq 0 ]; then
    verdict="FAILED: no test ran"
  fi
  [ "$verdict" = ok ] || status=1
  SUMMARY+=("real-Xen $label ($abi ABI): $p passed, $f failed, $s ignored in $(dur "$t") - $verdict")
  echo "${SUMMARY[-1]}"
}

# The differential run (tests/xen/differential_test.ts) gets its own seed per
# ABI; a diverging sequence is shrunk and saved as OUTDIR/diff-seed-S.jsonl.
# Five runs of 4,000 steps per ABI: 20,000 steps compared, seeds varied.
DIFF_ENV=(--env EVTCHN_DIFF_RUNS="${XENVM_CI_DIFF_RUNS:-5}" --env EVTCHN_DIFF_OPS="${XENVM_CI_DIFF_OPS:-4000}")
run_abi fifo FIFO-based TESTS "${DIFF_ENV[@]}" --env EVTCHN_DIFF_SEED="${XENVM_CI_DIFF_SEED:-20261125}"
run_abi 2l 2-level TESTS --dom0-extra xen.fifo_events=0 "${DIFF_ENV[@]}" --env EVTCHN_DIFF_SEED="${XENVM_CI_DIFF_SEED_2L:-4170}"
run_abi fifo-1vcpu FIFO-based TESTS_1VCPU --smp 1
run_abi 2l-1vcpu 2-level TESTS_1VCPU --smp 1 --dom0-extra xen.fifo_events=0
cp "$RW"/diff-seed-*.jsonl "$OUTDIR"/ 2>/dev/null || true
while IFS= read -r line; do SUMMARY+=("$line"); done \
  < <(grep -h '^differential run:' "$OUTDIR"/xen-*.log 2>/dev/null)

if [ "${XENVM_CI_RATIO:-1}" != 0 ]; then
  # Deno vs C libxenevtchn in one boot per ABI: round trip, synchronous wait,
  # await next() and a one-way stream (events/s). Measurements, not tests.
  for abi in fifo 2l; do
    extra=()
    [ "$abi" = 2l ] && extra=(--dom0-extra xen.fifo_events=0)
    echo "== real-Xen ratio ($abi): bench/xen_ratio.sh ${XENVM_CI_RATIO_N:-2000} ${extra[*]} (1 vCPU; a measurement, not a test)"
    t=$SECONDS
    ratio=$("$ROOT/bench/xen_ratio.sh" "${XENVM_CI_RATIO_N:-2000}" --quiet --timeout "$TIMEOUT" "${extra[@]}" 2>"$OUTDIR/xen-ratio-$abi.log")
    rc=$?
    if [ "$rc" -eq 0 ] && [ -n "$ratio" ]; then
      echo "$ratio" >> "$OUTDIR/xen-ratio-$abi.log"
      while IFS= read -r line; do SUMMARY+=("[$abi] $line"); done <<<"$ratio"
      SUMMARY[-1]+=" [$(dur "$t")]"
      printf '%s\n' "$ratio"
    else
      SUMMARY+=("[$abi] deno/c ratios: not measured (bench/xen_ratio.sh exited $rc; see $OUTDIR/xen-ratio-$abi.log)")
      tail -n 15 "$OUTDIR/xen-ratio-$abi.log" >&2
      echo "${SUMMARY[-1]}"
    fi
  done
fi

echo "== real-Xen stage summary ($(dur "$T0"); reports in $OUTDIR)"
printf '%s\n' "${SUMMARY[@]}"
exit "$status"
