#!/usr/bin/env bash
# record_fixtures.sh - record the oracle's built-in scenarios on real Xen as
# fixtures. Runs INSIDE dom0, from the repository root, through the harness:
#
#   tests/xen/run_in_dom0.sh --rw tests/oracle/fixtures tests/oracle/record_fixtures.sh [SCENARIO...]
#
# (no SCENARIO: all of them). Writes tests/oracle/fixtures/NAME.jsonl (or into
# $ORACLE_FIXTURES_DIR: pass it with --env and export it with --rw), then
# replays each on the in-memory model and prints the verdict (stdout: one JSON
# line per scenario; a divergence there is a model bug or a scenario that needs
# work, not a recording failure). Exit 0 once every scenario is recorded.
#
# Each recording starts with a snapshot of dom0's event channels in its
# header, so the replay on the model boots from the same host state and
# compares every field (vCPU included).
set -euo pipefail
[ -f cli/oracle_command.ts ] || { echo "record_fixtures.sh: run from the repository root" >&2; exit 2; }
[ -c /dev/xen/evtchn ] || { echo "record_fixtures.sh: no /dev/xen/evtchn: run inside dom0 (tests/xen/run_in_dom0.sh)" >&2; exit 2; }
DENO=${XENVM_DENO:-deno}
ORACLE=(run -A --no-check cli/oracle_command.ts)
if [ $# -gt 0 ]; then names=("$@"); else
  # (no process substitution: dom0's chroot has no /dev/fd)
  # shellcheck disable=SC2207
  names=($("$DENO" "${ORACLE[@]}" scenarios | awk '{print $1}'))
fi
OUT=${ORACLE_FIXTURES_DIR:-tests/oracle/fixtures}
mkdir -p "$OUT"
echo "# dom0: $(uname -r), $(nproc) vCPUs, xen $(cat /sys/hypervisor/version/major 2>/dev/null).$(cat /sys/hypervisor/version/minor 2>/dev/null)$(cat /sys/hypervisor/version/extra 2>/dev/null)" >&2
for name in "${names[@]}"; do
  out="$OUT/$name.jsonl"
  "$DENO" "${ORACLE[@]}" record "$name" --backend linux --out "$out" >&2
  "$DENO" "${ORACLE[@]}" replay "$out" --all --json || true
done
