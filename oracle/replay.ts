/**
 * Replaying a trace on a backend and comparing every outcome with the
 * recorded one.
 *
 * @module
 */

import type { OracleBackend } from "./backends.ts";
import {
  compareOutcomes,
  describeOutcome,
  ignoredDifferences,
} from "./compare.ts";
import { RefContext } from "./refs.ts";
import { StepRunner } from "./run.ts";
import type { JsonValue, Outcome, Trace, TraceStep } from "./trace.ts";

/**
 * One step whose outcome differs from the recorded one.
 *
 * @example
 * ```ts
 * import type { Divergence } from "./replay.ts";
 * const d: Divergence = {
 *   i: 4,
 *   op: "notify",
 *   handle: "h1",
 *   args: { port: { rel: 0 } },
 *   expected: { error: { code: "ENOTCONN", errno: 107 } },
 *   actual: { ok: null },
 *   reason: "expected error ENOTCONN (107), got ok null",
 *   context: [],
 * };
 * ```
 */
export interface Divergence {
  /** The step's index (`i`). */
  i: number;
  /** The trace line it came from, when known. */
  line?: number;
  /** The op. */
  op: string;
  /** The handle, for device ops. */
  handle?: string;
  /** The arguments as written. */
  args: Record<string, JsonValue>;
  /** The recorded outcome. */
  expected: Outcome;
  /** The outcome now. */
  actual: Outcome;
  /** Why they differ. */
  reason: string;
  /** The earlier steps that led there (same handle or same ports), oldest first. */
  context: TraceStep[];
}

/**
 * What a replay found.
 *
 * @example
 * ```ts
 * import type { ReplayReport } from "./replay.ts";
 * const report: ReplayReport = {
 *   backend: "memory",
 *   total: 10,
 *   replayed: 10,
 *   divergences: [],
 *   ignored: [],
 * };
 * ```
 */
export interface ReplayReport {
  /** The backend replayed on. */
  backend: string;
  /** Steps in the trace. */
  total: number;
  /** Steps run (fewer than `total` when it stopped at a divergence). */
  replayed: number;
  /** Every divergence found (at most one without `all`). */
  divergences: Divergence[];
  /**
   * Fields a step said not to compare (`ignore`) that differ anyway: not
   * divergences, but worth a look.
   */
  ignored: {
    i: number;
    op: string;
    field: string;
    expected: JsonValue;
    actual: JsonValue;
  }[];
}

/**
 * Options for {@linkcode replayTrace}.
 *
 * @example
 * ```ts
 * import type { ReplayOptions } from "./replay.ts";
 * const options: ReplayOptions = { all: true };
 * ```
 */
export interface ReplayOptions {
  /** Keep going after a divergence and report every one. */
  all?: boolean;
  /** How many earlier steps to give as context (default 8). */
  context?: number;
}

/** The port and handle "words" a step mentions, to find related steps. */
function mentions(step: TraceStep): Set<string> {
  const words = new Set<string>();
  if (step.handle !== undefined) words.add(`handle:${step.handle}`);
  const walk = (value: unknown): void => {
    if (Array.isArray(value)) value.forEach(walk);
    else if (typeof value === "object" && value !== null) {
      const o = value as Record<string, unknown>;
      if (typeof o.rel === "number") words.add(`rel:${o.rel}`);
      else for (const v of Object.values(o)) walk(v);
    }
  };
  walk(step.args);
  if (step.outcome !== undefined && "ok" in step.outcome) walk(step.outcome.ok);
  return words;
}

/** The `rel` port a step allocated, as a mention, if it allocated one. */
function allocatedWord(step: TraceStep): string | undefined {
  const outcome = step.outcome;
  if (
    outcome === undefined || !("ok" in outcome) ||
    !(step.op.startsWith("bind_") || step.op === "hc.alloc_unbound")
  ) return undefined;
  const ok = outcome.ok as Record<string, unknown> | null;
  return typeof ok?.rel === "number" ? `rel:${ok.rel}` : undefined;
}

/**
 * The steps that led to step `index`: where the handle it uses was opened
 * and where the ports it mentions were last allocated, then the most recent
 * earlier steps sharing its handle or a `rel` port (the immediately
 * preceding step always), at most `limit` in all (origins first), oldest
 * first.
 *
 * @param steps The trace's steps.
 * @param index The position of the divergent step.
 * @param limit How many at most.
 * @returns The related steps.
 *
 * @example
 * ```ts
 * import { relatedSteps } from "./replay.ts";
 * import assert from "node:assert/strict";
 * const steps = [
 *   { type: "step" as const, i: 0, handle: "h0", op: "open" as const, args: {} },
 *   { type: "step" as const, i: 1, handle: "h1", op: "open" as const, args: {} },
 *   { type: "step" as const, i: 2, handle: "h1", op: "reset" as const, args: {} },
 *   { type: "step" as const, i: 3, handle: "h0", op: "reset" as const, args: {} },
 * ];
 * assert.deepEqual(relatedSteps(steps, 3, 8).map((s) => s.i), [0, 2]);
 * ```
 */
export function relatedSteps(
  steps: readonly TraceStep[],
  index: number,
  limit: number,
): TraceStep[] {
  const target = mentions(steps[index]);
  const picked = new Set<number>();
  // Origins: the handle's open, each mentioned port's latest allocation.
  const wanted = new Set(
    [...target].filter((w) => w.startsWith("rel:") || w.startsWith("handle:")),
  );
  for (let j = index - 1; j >= 0 && wanted.size > 0; j--) {
    const step = steps[j];
    const handle = `handle:${step.handle}`;
    if (step.op === "open" && wanted.has(handle)) {
      wanted.delete(handle);
      picked.add(j);
    }
    const word = allocatedWord(step);
    if (word !== undefined && wanted.has(word)) {
      wanted.delete(word);
      picked.add(j);
    }
  }
  for (const j of [...picked].sort((a, b) => b - a).slice(limit)) {
    picked.delete(j);
  }
  for (let j = index - 1; j >= 0 && picked.size < limit; j--) {
    if (j === index - 1 || [...mentions(steps[j])].some((w) => target.has(w))) {
      picked.add(j);
    }
  }
  return [...picked].sort((a, b) => a - b).map((j) => steps[j]);
}

/**
 * Replays a trace on a fresh session of `backend` (a model with the
 * header's vCPU count and event ABI) and compares each outcome with the recorded one,
 * stopping at the first divergence unless `all`.
 *
 * @param trace The trace; every step needs an outcome.
 * @param backend Where to replay.
 * @param options `all`, context size.
 * @returns The report.
 *
 * @example
 * ```ts
 * import { replayTrace } from "./replay.ts";
 * import { recordSteps } from "./record.ts";
 * import { memoryBackend } from "./backends.ts";
 * import assert from "node:assert/strict";
 * const trace = await recordSteps([
 *   { handle: "h0", op: "open", args: {} },
 *   { handle: "h0", op: "bind_virq", args: { virq: 0 } },
 * ], memoryBackend());
 * const report = await replayTrace(trace, memoryBackend());
 * assert.equal(report.divergences.length, 0);
 * ```
 */
export async function replayTrace(
  trace: Trace,
  backend: OracleBackend,
  options: ReplayOptions = {},
): Promise<ReplayReport> {
  const session = await backend.start({
    vcpus: trace.header?.vcpus,
    abi: trace.header?.abi,
  });
  const report: ReplayReport = {
    backend: session.backend,
    total: trace.steps.length,
    replayed: 0,
    divergences: [],
    ignored: [],
  };
  try {
    const runner = new StepRunner(
      session,
      new RefContext(session.localDomain, () => session.createPeer()),
    );
    for (const [index, step] of trace.steps.entries()) {
      const actual = await runner.run(step);
      report.replayed++;
      const expected = step.outcome;
      if (expected === undefined) continue;
      const reason = compareOutcomes(step, expected, actual);
      if (reason === undefined) {
        for (const d of ignoredDifferences(step, expected, actual)) {
          report.ignored.push({ i: step.i, op: step.op, ...d });
        }
        continue;
      }
      const divergence: Divergence = {
        i: step.i,
        op: step.op,
        args: step.args,
        expected,
        actual,
        reason,
        context: relatedSteps(trace.steps, index, options.context ?? 8),
      };
      if (step.handle !== undefined) divergence.handle = step.handle;
      const line = trace.lines?.[index];
      if (line !== undefined) divergence.line = line;
      report.divergences.push(divergence);
      if (!options.all) break;
    }
  } finally {
    await session.dispose();
  }
  return report;
}

/**
 * A divergence in words, for terminals.
 *
 * @param d The divergence.
 * @returns Several lines.
 *
 * @example
 * ```ts
 * import { formatDivergence } from "./replay.ts";
 * import assert from "node:assert/strict";
 * const text = formatDivergence({
 *   i: 4,
 *   op: "notify",
 *   handle: "h1",
 *   args: { port: { rel: 0 } },
 *   expected: { error: { code: "ENOTCONN", errno: 107 } },
 *   actual: { ok: null },
 *   reason: "expected error ENOTCONN (107), got ok null",
 *   context: [],
 * });
 * assert.match(text, /step 4/);
 * ```
 */
export function formatDivergence(d: Divergence): string {
  const where = d.line === undefined ? "" : ` (line ${d.line})`;
  const lines = [
    `divergence at step ${d.i}${where}: ${d.handle ?? ""}${
      d.handle ? " " : ""
    }${d.op} ${JSON.stringify(d.args)}`,
    `  expected: ${describeOutcome(d.expected)}`,
    `  actual:   ${describeOutcome(d.actual)}`,
  ];
  if (d.context.length > 0) {
    lines.push("  steps that led there:");
    for (const s of d.context) {
      lines.push(
        `    ${s.i}: ${s.handle ?? ""}${s.handle ? " " : ""}${s.op} ${
          JSON.stringify(s.args)
        } -> ${describeOutcome(s.outcome)}`,
      );
    }
  }
  return lines.join("\n");
}
