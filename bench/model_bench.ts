// deno bench: the model's send → consume → unmask cycle, which should stay
// flat in the number of ports and of domains, under each event ABI.
// Run: tools/deno task bench (ratios are printed per group against the
// baseline).

import { makeCycle } from "./_cycle.ts";

for (const eventAbi of ["2l", "fifo"] as const) {
  const small = makeCycle({ ports: 64, domains: 2, eventAbi });
  const large = makeCycle({ ports: 4096 - 64, domains: 2, eventAbi });
  Deno.bench({
    name: `${eventAbi}: 64 ports`,
    group: `${eventAbi} ports`,
    baseline: true,
    fn: () => small.run(),
  });
  Deno.bench({
    name: `${eventAbi}: 4032 ports`,
    group: `${eventAbi} ports`,
    fn: () => large.run(),
  });
  const one = makeCycle({ ports: 64, domains: 2, eventAbi });
  const many = makeCycle({ ports: 2000, domains: 1000, eventAbi });
  Deno.bench({
    name: `${eventAbi}: 1 domU`,
    group: `${eventAbi} domains`,
    baseline: true,
    fn: () => one.run(),
  });
  Deno.bench({
    name: `${eventAbi}: 999 domUs`,
    group: `${eventAbi} domains`,
    fn: () => many.run(),
  });
}

const fifo4096 = makeCycle({ ports: 4096, domains: 1, eventAbi: "fifo" });
const fifo100k = makeCycle({ ports: 100_000, domains: 1, eventAbi: "fifo" });
Deno.bench({
  name: "fifo: 4096 ports",
  group: "fifo large",
  baseline: true,
  fn: () => fifo4096.run(),
});
Deno.bench({
  name: "fifo: 100,000 ports",
  group: "fifo large",
  fn: () => fifo100k.run(),
});
