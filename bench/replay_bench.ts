// deno bench: `replay --all` of traces where every fifth step diverges, at
// 10k, 100k and 1M steps. Time per step should stay flat (it grew with the
// trace's length while context was found by scanning back from each
// divergence). Run: tools/deno bench --allow-read bench/replay_bench.ts;
// bench/replay_ratio.ts prints the per-step ratio.

import { divergingTrace } from "./_replay_trace.ts";
import { memoryBackend } from "../oracle/backends.ts";
import { replayTrace } from "../oracle/replay.ts";

for (const steps of [10_000, 100_000, 1_000_000]) {
  const { trace, divergent } = await divergingTrace(steps);
  Deno.bench({
    name: `replay --all: ${steps} steps`,
    group: "replay --all",
    baseline: steps === 10_000,
    // Few rounds of the big ones: a 10⁶-step replay takes seconds.
    n: steps >= 1_000_000 ? 2 : steps >= 100_000 ? 5 : 20,
    warmup: 1,
    async fn(): Promise<void> {
      const report = await replayTrace(trace, memoryBackend(), { all: true });
      if (report.divergences.length !== divergent) {
        throw new Error(
          `expected ${divergent} divergences, got ${report.divergences.length}`,
        );
      }
    },
  });
}
