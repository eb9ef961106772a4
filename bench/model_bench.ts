// deno bench: the model's send → consume → unmask cycle, flat in the number
// of ports and of domains. Run: tools/deno task bench

import { makeCycle } from "./_cycle.ts";

const ports64 = makeCycle(64, 2);
const ports4095 = makeCycle(4000, 2);
const domains1 = makeCycle(64, 1);
const domains1000 = makeCycle(1000, 1000);

Deno.bench({
  name: "cycle, 64 ports",
  group: "ports",
  baseline: true,
  fn: () => ports64.run(),
});
Deno.bench({
  name: "cycle, 4000 ports",
  group: "ports",
  fn: () => ports4095.run(),
});
Deno.bench({
  name: "cycle, 1 domU",
  group: "domains",
  baseline: true,
  fn: () => domains1.run(),
});
Deno.bench({
  name: "cycle, 1000 domains",
  group: "domains",
  fn: () => domains1000.run(),
});
