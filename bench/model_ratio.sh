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
# "public": a round trip through EventChannelHandle as a user writes it
# (a.notify(p); q = b.poll(); b.unmask(q)), the same cycle plus the handle
# and /dev/xen/evtchn; its line also gives public/device in the same run.
declare -A device_ns
for level in hypercall device public; do
  for abi in 2l fifo; do
    m=$(tools/deno run bench/model_ratio.ts 2000000 "$abi" "$level" | sed -n 's/.*"ns_per_cycle":\([0-9.]*\).*/\1/p')
    awk -v m="$m" -v c="$c" -v abi="$abi" -v level="$level" \
      'BEGIN { printf "model/c cycle ratio (%s, %s level): %.1f (model %.1f ns, c %.2f ns)\n", abi, level, m / c, m, c }'
    if [ "$level" = device ]; then device_ns[$abi]=$m; fi
    if [ "$level" = public ]; then
      awk -v m="$m" -v d="${device_ns[$abi]}" -v abi="$abi" \
        'BEGIN { printf "public/internal round trip ratio (%s): %.2f (public %.1f ns, device-level cycle %.1f ns)\n", abi, m / d, m, d }'
    fi
  done
done
