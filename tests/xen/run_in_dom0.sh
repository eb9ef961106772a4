#!/usr/bin/env bash
# run_in_dom0.sh - boot real Xen once and run a whole bash script in dom0, so one
# boot (~10 s under TCG) serves several commands: the C cross-check, deno tests, ...
#
# usage: run_in_dom0.sh [boot.sh options] SCRIPT [ARGS...]
#   e.g. tests/xen/run_in_dom0.sh --timeout 300 tests/xen/dom0_example.sh 2000
#        tests/xen/run_in_dom0.sh --dom0-extra xen.fifo_events=0 my_checks.sh
#
# The script is copied into the per-run dir, so it may live anywhere (even under
# /tmp); it runs under /bin/bash as root in dom0 with cwd = your cwd, exit code =
# the script's. The host's Deno is put on the guest PATH (boot.sh --deno) unless
# XENVM_NO_DENO=1. Inside, $XENVM=1 and $XENVM_HARNESS = this directory.
# Exit codes as boot.sh: 124 timeout, 125 boot failure.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
opts=()
# boot.sh options that take a value: their value is not the script
while [ $# -gt 0 ]; do
  case "$1" in
    --timeout|--rw|--dom0-extra|--xen-extra|--env|--mem|--smp)
      [ $# -ge 2 ] || { echo "xen-vm: $1 needs a value" >&2; exit 2; }
      opts+=("$1" "$2"); shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    -*) opts+=("$1"); shift ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || { echo "usage: run_in_dom0.sh [boot.sh options] SCRIPT [ARGS...]" >&2; exit 2; }
[ "${XENVM_NO_DENO:-0}" = 1 ] || opts+=(--deno)
exec "$HERE/boot.sh" ${opts[@]+"${opts[@]}"} --env XENVM_HARNESS="$HERE" --script "$@"
