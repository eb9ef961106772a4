// deno bench: a round trip through the public API on the memory backend
// (`a.notify(p); const q = b.poll(); b.unmask(q)` on EventChannelHandles),
// against the model's own send → consume → unmask cycle (the baseline), for
// each event ABI; then the public round trip's flatness in ports and domains.
// Run: tools/deno bench bench/public_bench.ts

import { makeCycle, makePublicCycle } from "./_cycle.ts";

for (const eventAbi of ["fifo", "2l"] as const) {
  const options = { ports: 64, domains: 2, eventAbi };
  const internal = makeCycle(options);
  const pub = makePublicCycle(options);
  Deno.bench({
    name: `${eventAbi}: model cycle (internal)`,
    group: `public round trip, ${eventAbi}`,
    baseline: true,
    fn: () => internal.run(),
  });
  Deno.bench({
    name: `${eventAbi}: public round trip`,
    group: `public round trip, ${eventAbi}`,
    fn: () => pub.run(),
  });

  const few = makePublicCycle({ ports: 64, domains: 2, eventAbi });
  const many = makePublicCycle({
    ports: eventAbi === "fifo" ? 100_000 : 4032,
    domains: 1,
    eventAbi,
  });
  Deno.bench({
    name: `${eventAbi}: public, 64 ports`,
    group: `public ${eventAbi} ports`,
    baseline: true,
    fn: () => few.run(),
  });
  Deno.bench({
    name: `${eventAbi}: public, ${
      eventAbi === "fifo" ? "100,000" : "4032"
    } ports`,
    group: `public ${eventAbi} ports`,
    fn: () => many.run(),
  });
  const one = makePublicCycle({ ports: 64, domains: 2, eventAbi });
  const domUs = makePublicCycle({ ports: 2000, domains: 1000, eventAbi });
  Deno.bench({
    name: `${eventAbi}: public, 1 domU`,
    group: `public ${eventAbi} domains`,
    baseline: true,
    fn: () => one.run(),
  });
  Deno.bench({
    name: `${eventAbi}: public, 999 domUs`,
    group: `public ${eventAbi} domains`,
    fn: () => domUs.run(),
  });
}
