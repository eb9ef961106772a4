#!/usr/bin/env bash
# The model's cycle against the same bit operations in C (gcc -O2), as a
# ratio. A measurement, never a test: run it on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
gcc -O2 -o "$out/cycle" bench/c/cycle.c
c=$("$out/cycle" 200000000 | sed -n 's/.*"ns_per_cycle":\([0-9.]*\).*/\1/p')
# "hypercall": EVTCHNOP_send, the guest's consumer, EVTCHNOP_unmask.
# "device": the same through the modelled Linux kernel (late EOI, mask
# reasons, the evtchn driver's handler), as the memory backend runs it.
for level in hypercall device; do
  for abi in 2l fifo; do
    m=$(tools/deno run bench/model_ratio.ts 2000000 "$abi" "$level" | sed -n 's/.*"ns_per_cycle":\([0-9.]*\).*/\1/p')
    awk -v m="$m" -v c="$c" -v abi="$abi" -v level="$level" \
      'BEGIN { printf "model/c cycle ratio (%s, %s level): %.1f (model %.1f ns, c %.2f ns)\n", abi, level, m / c, m, c }'
  done
done
