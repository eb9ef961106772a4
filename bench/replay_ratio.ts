// Prints the time per step of `replay --all` at 10k, 100k and 1M steps and
// the ratio of each to the 10k one (linear replay keeps it near 1; the issue
// asks for at most 1.2). A measurement, never a test: run it on a quiet
// machine.
//
//   tools/deno run --allow-read bench/replay_ratio.ts [STEPS...]

import { divergingTrace } from "./_replay_trace.ts";
import { memoryBackend } from "../oracle/backends.ts";
import { replayTrace } from "../oracle/replay.ts";

const sizes = Deno.args.length > 0
  ? Deno.args.map(Number)
  : [10_000, 100_000, 1_000_000];
let base: number | undefined;
for (const steps of sizes) {
  const { trace, divergent } = await divergingTrace(steps);
  // The best of a few rounds (at least ~2 s of replays in all per size), so
  // that a pause of the garbage collector or a neighbour does not decide.
  const rounds = Math.max(3, Math.min(50, Math.ceil(2_000_000 / steps)));
  let best = Infinity;
  for (let round = 0; round < rounds; round++) {
    const start = performance.now();
    const report = await replayTrace(trace, memoryBackend(), { all: true });
    const us = (performance.now() - start) * 1000 / steps;
    if (report.divergences.length !== divergent) {
      throw new Error(`expected ${divergent} divergences`);
    }
    best = Math.min(best, us);
  }
  base ??= best;
  console.log(
    `replay --all ${String(steps).padStart(9)} steps: ${
      best.toFixed(2)
    } µs/step, ${(best / base).toFixed(2)}x the ${sizes[0]}-step time per step`,
  );
}
