// Prints the model's ns per send → consume → unmask cycle as one JSON line,
// timed over many iterations (the best of several rounds), for
// bench/model_ratio.sh to compare with the C loop. Levels: "hypercall" (Xen
// alone), "device" (through the modelled Linux kernel) and "public" (the
// round trip `a.notify(p); const q = b.poll(); b.unmask(q)` on
// EventChannelHandles of the memory backend).

import { makeCycle, makeHypercallCycle, makePublicCycle } from "./_cycle.ts";

const iterations = Number(Deno.args[0] ?? 2_000_000);
const eventAbi = (Deno.args[1] ?? "2l") as "2l" | "fifo";
const level = Deno.args[2] ?? "device";
const options = { ports: 4032, domains: 2, eventAbi };
const cycle = level === "hypercall"
  ? makeHypercallCycle(options)
  : level === "public"
  ? makePublicCycle(options)
  : makeCycle(options);
let best = Infinity;
for (let round = 0; round < 5; round++) {
  const start = performance.now();
  for (let i = 0; i < iterations; i++) cycle.run();
  best = Math.min(best, (performance.now() - start) * 1e6 / iterations);
}
if (cycle.delivered() !== 5 * iterations) {
  throw new Error(
    `expected ${5 * iterations} deliveries, got ${cycle.delivered()}`,
  );
}
console.log(
  JSON.stringify({ impl: `model-${eventAbi}-${level}`, ns_per_cycle: best }),
);
