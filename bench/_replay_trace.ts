// A long trace for timing replays: one handle opened, then the same five
// steps over and over (bind an unbound port, notify it, a dom0 status of a
// port beyond the device, unbind, status again). Each status is recorded as
// succeeding, so every fifth step diverges and `replay --all` must find
// context for each; their arguments mention no handle or relative port, so
// the old backward scan for related steps went all the way to step 0.

import { memoryBackend } from "../oracle/backends.ts";
import { recordSteps } from "../oracle/record.ts";
import type { StepInput, Trace, TraceStep } from "../oracle/trace.ts";

const CYCLE: StepInput[] = [
  {
    handle: "h0",
    op: "bind_unbound_port",
    args: { remote_domain: { dom: "local" } },
  },
  { handle: "h0", op: "notify", args: { port: { rel: 0 } } },
  {
    op: "hc.status",
    args: { domain: { dom: "local" }, port: { abs: 70000 } },
  },
  { handle: "h0", op: "unbind", args: { port: { rel: 0 } } },
  { op: "hc.status", args: { domain: { dom: "local" }, port: { rel: 0 } } },
];

/**
 * Builds a recorded trace of `steps` steps where every fifth step diverges
 * from the model. The cycle is recorded once on the model and repeated (its
 * outcomes do not depend on how often it ran), so building 10⁶ steps costs
 * no replay.
 *
 * @param steps How many steps in all (at least 1).
 * @returns The trace and how many of its steps diverge.
 *
 * @example
 * ```ts
 * import { divergingTrace } from "./_replay_trace.ts";
 * import assert from "node:assert/strict";
 * const { trace, divergent } = await divergingTrace(11);
 * assert.equal(trace.steps.length, 11);
 * assert.equal(divergent, 2);
 * ```
 */
export async function divergingTrace(
  steps: number,
): Promise<{ trace: Trace; divergent: number }> {
  const recorded = await recordSteps(
    [{ handle: "h0", op: "open", args: {} }, ...CYCLE, ...CYCLE],
    memoryBackend(),
  );
  const [open, ...rest] = recorded.steps;
  const cycle = rest.slice(CYCLE.length);
  // A status beyond the device is refused (EINVAL); recorded as ok, it
  // diverges on every replay.
  cycle[2] = { ...cycle[2], outcome: { ok: { status: "closed" } } };
  const out: TraceStep[] = [{ ...open, i: 0 }];
  let divergent = 0;
  for (let i = 1; i < steps; i++) {
    const k = (i - 1) % CYCLE.length;
    out.push({ ...cycle[k], i });
    if (k === 2) divergent++;
  }
  return { trace: { header: recorded.header, steps: out }, divergent };
}
