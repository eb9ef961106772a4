// `replay --all` is linear in the trace's length: the context of each
// divergence comes from an index kept as the replay goes, not from a scan
// back towards step 0 (which made 10k steps take 74 s and 20k 263 s). The
// index gives exactly what the scan gave.

import assert from "node:assert/strict";
import {
  memoryBackend,
  RelatedIndex,
  replayTrace,
  type Trace,
  type TraceStep,
} from "../../oracle/mod.ts";
import { prng } from "../../util/prng.ts";

/** The words (handle, rel port) a step mentions, as the definition says. */
function words(step: TraceStep): Set<string> {
  const out = new Set<string>();
  if (step.handle !== undefined) out.add(`handle:${step.handle}`);
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (typeof v === "object" && v !== null) {
      const o = v as Record<string, unknown>;
      if (typeof o.rel === "number") out.add(`rel:${o.rel}`);
      else Object.values(o).forEach(walk);
    }
  };
  walk(step.args);
  if (step.outcome !== undefined && "ok" in step.outcome) walk(step.outcome.ok);
  return out;
}

/** The definition, by brute force: origins, then the latest related steps. */
function bruteForce(
  steps: TraceStep[],
  index: number,
  limit: number,
): number[] {
  const target = words(steps[index]);
  const picked = new Set<number>();
  const wanted = new Set(target);
  for (let j = index - 1; j >= 0; j--) {
    const s = steps[j];
    const handle = `handle:${s.handle}`;
    if (s.op === "open" && wanted.delete(handle)) picked.add(j);
    const ok = s.outcome !== undefined && "ok" in s.outcome
      ? s.outcome.ok as { rel?: number } | null
      : undefined;
    const allocates = s.op.startsWith("bind_") || s.op === "hc.alloc_unbound";
    if (
      allocates && typeof ok?.rel === "number" && wanted.delete(`rel:${ok.rel}`)
    ) {
      picked.add(j);
    }
  }
  for (const j of [...picked].sort((a, b) => b - a).slice(limit)) {
    picked.delete(j);
  }
  for (let j = index - 1; j >= 0 && picked.size < limit; j--) {
    if (j === index - 1 || [...words(steps[j])].some((w) => target.has(w))) {
      picked.add(j);
    }
  }
  return [...picked].sort((a, b) => a - b);
}

/** A random trace over a few handles and rel ports. */
function randomSteps(rand: () => number, n: number): TraceStep[] {
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)];
  const handles = ["h0", "h1", "h2"];
  const rel = () => ({ rel: Math.floor(rand() * 6) });
  const steps: TraceStep[] = [];
  for (let i = 0; i < n; i++) {
    const r = rand();
    const handle = pick(handles);
    let step: TraceStep;
    if (r < 0.1) {
      step = {
        type: "step",
        i,
        handle,
        op: "open",
        args: {},
        outcome: { ok: null },
      };
    } else if (r < 0.35) {
      step = {
        type: "step",
        i,
        handle,
        op: "bind_unbound_port",
        args: { remote_domain: { dom: "local" } },
        outcome: { ok: rel() },
      };
    } else if (r < 0.55) {
      step = {
        type: "step",
        i,
        handle,
        op: "notify",
        args: { port: rel() },
        outcome: { ok: null },
      };
    } else if (r < 0.7) {
      step = {
        type: "step",
        i,
        handle,
        op: "read",
        args: {},
        outcome: { ok: [rel(), rel()] },
      };
    } else if (r < 0.8) {
      step = {
        type: "step",
        i,
        op: "hc.alloc_unbound",
        args: { domain: { dom: "local" }, remote_domain: { dom: "peer" } },
        outcome: { ok: rel() },
      };
    } else {
      step = {
        type: "step",
        i,
        op: "hc.status",
        args: { domain: { dom: "local" }, port: { abs: 70000 } },
        outcome: { error: { code: "EINVAL", errno: 22 } },
      };
    }
    steps.push(step);
  }
  return steps;
}

Deno.test("RelatedIndex gives the definition's related steps", () => {
  for (let seed = 1; seed <= 20; seed++) {
    const rand = prng(seed);
    const steps = randomSteps(rand, 300);
    for (const limit of [0, 1, 3, 8]) {
      const index = new RelatedIndex(limit);
      for (let k = 0; k < steps.length; k++) {
        const got = index.related(steps, k).map((s) => s.i);
        assert.deepEqual(
          got,
          bruteForce(steps, k, limit),
          `seed ${seed}, limit ${limit}, step ${k}`,
        );
        index.add(steps[k]);
      }
    }
  }
});

Deno.test("replay --all reads each step a bounded number of times", async () => {
  // Every step diverges (a status recorded as ok is refused) and mentions no
  // handle or rel port: the old scan for context went back to step 0 from
  // each one. Counting reads of the steps array measures the work without
  // timing anything.
  const n = 3_000;
  const steps: TraceStep[] = [];
  for (let i = 0; i < n; i++) {
    steps.push({
      type: "step",
      i,
      op: "hc.status",
      args: { domain: { dom: "local" }, port: { abs: 70000 } },
      outcome: { ok: null },
    });
  }
  let reads = 0;
  const counted = new Proxy(steps, {
    get(target, key, receiver): unknown {
      if (typeof key === "string" && /^\d+$/.test(key)) reads++;
      return Reflect.get(target, key, receiver);
    },
  });
  const trace: Trace = { steps: counted };
  const report = await replayTrace(trace, memoryBackend(), { all: true });
  assert.equal(report.divergences.length, n);
  // The last divergence's context: the step just before (nothing else
  // shares a handle or port with it).
  assert.deepEqual(report.divergences[n - 1].context.map((s) => s.i), [n - 2]);
  // Linear: a handful per step (was n²/2 = 4.5 million).
  assert.ok(reads <= 20 * n, `${reads} reads of ${n} steps`);
});
