#!/usr/bin/env bash
# dom0_example.sh - several checks in ONE boot; runs inside dom0 via
#   tests/xen/run_in_dom0.sh tests/xen/dom0_example.sh [ITERATIONS]
# (run_in_dom0.sh sets XENVM_HARNESS and puts the host's deno on PATH).
# Prints the C cross-check JSON lines on stdout; stops at the first failure.
set -euo pipefail
N=${1:-2000}
H=${XENVM_HARNESS:?run me through tests/xen/run_in_dom0.sh}

echo "# dom0: $(uname -r), xen $(cat /sys/hypervisor/version/major).$(cat /sys/hypervisor/version/minor)$(cat /sys/hypervisor/version/extra), $(dmesg | grep -o 'xen:events: Using .* ABI' | head -1)" >&2
"$H/.cache/cross_check" "$N" a2b
"$H/.cache/cross_check" "$N" pingpong
deno --version | head -1 >&2
deno test --no-check --no-lock -A tests/xen/placement_test.ts >&2
