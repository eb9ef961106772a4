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
import { macrotask, Pacer } from "../util/pace.ts";
import { StepRunner } from "./run.ts";
import { opSpec } from "./ops.ts";
import type { JsonValue, Outcome, Trace, TraceStep } from "./trace.ts";

/**
 * One step whose outcome differs from the recorded one.
 *
 * @example
 * ```ts
 * import { type Divergence, formatDivergence } from "./replay.ts";
 * import assert from "node:assert/strict";
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
 * assert.match(formatDivergence(d), /step 4/);
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
 * import { type ReplayReport, replayTrace } from "./replay.ts";
 * import { recordSteps } from "./record.ts";
 * import { memoryBackend } from "./backends.ts";
 * import { scenario } from "./scenarios.ts";
 * import assert from "node:assert/strict";
 * const trace = await recordSteps(scenario("loopback")!.steps, memoryBackend());
 * const report: ReplayReport = await replayTrace(trace, memoryBackend());
 * assert.equal(report.replayed, report.total);
 * assert.deepEqual(report.divergences, []);
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
  /** Whether `signal` stopped the replay before its end. */
  interrupted?: boolean;
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
 * import { type ReplayOptions, replayTrace } from "./replay.ts";
 * import { recordSteps } from "./record.ts";
 * import { memoryBackend } from "./backends.ts";
 * import { scenario } from "./scenarios.ts";
 * import assert from "node:assert/strict";
 * const options: ReplayOptions = { all: true };
 * const trace = await recordSteps(scenario("loopback")!.steps, memoryBackend());
 * const report = await replayTrace(trace, memoryBackend(), options);
 * assert.equal(report.replayed, trace.steps.length);
 * ```
 */
export interface ReplayOptions {
  /** Keep going after a divergence and report every one. */
  all?: boolean;
  /** How many earlier steps to give as context (default 8). */
  context?: number;
  /**
   * Stops the replay between steps when aborted; the report then holds what
   * was found so far and `interrupted: true`.
   */
  signal?: AbortSignal;
}

/** The port and handle "words" a step mentions, to find related steps. */
function mentions(step: TraceStep): Set<string> {
  const words = new Set<string>();
  if (step.handle !== undefined) words.add(`handle:${step.handle}`);
  // An explicit stack, not recursion: a trace built in code may nest deeper
  // than parsed ones (TRACE_LIMITS.depth) can.
  const stack: unknown[] = [step.args];
  if (step.outcome !== undefined && "ok" in step.outcome) {
    stack.push(step.outcome.ok);
  }
  while (stack.length > 0) {
    const value = stack.pop();
    if (Array.isArray(value)) {
      for (const v of value) stack.push(v);
    } else if (typeof value === "object" && value !== null) {
      const o = value as Record<string, unknown>;
      if (typeof o.rel === "number") words.add(`rel:${o.rel}`);
      else for (const key in o) stack.push(o[key]);
    }
  }
  return words;
}

/** The `rel` port a step allocated, as a mention, if it allocated one. */
function allocatedWord(step: TraceStep): string | undefined {
  const outcome = step.outcome;
  if (
    outcome === undefined || !("ok" in outcome) ||
    opSpec(step.op).result !== "port"
  ) return undefined;
  const ok = outcome.ok as Record<string, unknown> | null;
  return typeof ok?.rel === "number" ? `rel:${ok.rel}` : undefined;
}

/**
 * What {@linkcode relatedSteps} needs to know of the steps before some
 * index, kept up to date one step at a time so that asking about every step
 * of a trace (`replay --all`) costs time linear in its length: the latest
 * `open` of each handle, the latest allocation of each `rel` port, and for
 * each handle and port the last `limit` steps that mention it.
 *
 * @example
 * ```ts
 * import { RelatedIndex } from "./replay.ts";
 * import assert from "node:assert/strict";
 * const steps = [
 *   { type: "step" as const, i: 0, handle: "h0", op: "open" as const, args: {} },
 *   { type: "step" as const, i: 1, handle: "h1", op: "open" as const, args: {} },
 *   { type: "step" as const, i: 2, handle: "h1", op: "reset" as const, args: {} },
 *   { type: "step" as const, i: 3, handle: "h0", op: "reset" as const, args: {} },
 * ];
 * const index = new RelatedIndex(8);
 * for (const step of steps.slice(0, 3)) index.add(step);
 * assert.deepEqual(index.related(steps, 3).map((s) => s.i), [0, 2]);
 * ```
 */
export class RelatedIndex {
  readonly #limit: number;
  /** Steps added so far (the next step's position). */
  #count = 0;
  /** Handle word → position of its latest `open`. */
  readonly #opened = new Map<string, number>();
  /** `rel` word → position of its latest allocation. */
  readonly #allocated = new Map<string, number>();
  /** Word → positions of the last `limit` steps mentioning it, oldest first. */
  readonly #recent = new Map<string, number[]>();

  /**
   * Constructs an empty index.
   *
   * @param limit How many related steps a query returns at most.
   */
  constructor(limit: number) {
    this.#limit = Math.max(0, Math.floor(limit));
  }

  /**
   * Adds the next step (steps must be added in order, from position 0).
   *
   * @param step The step at position {@linkcode RelatedIndex.size}.
   */
  add(step: TraceStep): void {
    const j = this.#count++;
    if (step.op === "open" && step.handle !== undefined) {
      this.#opened.set(`handle:${step.handle}`, j);
    }
    const word = allocatedWord(step);
    if (word !== undefined) this.#allocated.set(word, j);
    if (this.#limit === 0) return;
    for (const w of mentions(step)) {
      let list = this.#recent.get(w);
      if (list === undefined) this.#recent.set(w, list = []);
      list.push(j);
      // Twice the limit before trimming, so that trimming is amortised O(1).
      if (list.length >= 2 * this.#limit) list.splice(0, this.#limit);
    }
  }

  /** How many steps were added. */
  get size(): number {
    return this.#count;
  }

  /**
   * The steps that led to `steps[index]`, as {@linkcode relatedSteps} gives
   * them; every step before `index` must have been added, and no later one.
   *
   * @param steps The trace's steps.
   * @param index The position of the step asked about (= `size`).
   * @returns The related steps, oldest first.
   */
  related(steps: readonly TraceStep[], index: number): TraceStep[] {
    if (index !== this.#count) {
      throw new RangeError(
        `related(${index}) needs exactly the ${index} steps before it added, not ${this.#count}`,
      );
    }
    const limit = this.#limit;
    const target = mentions(steps[index]);
    // Origins: the handle's open, each mentioned port's latest allocation,
    // the most recent `limit` of them.
    const origins: number[] = [];
    for (const w of target) {
      const j = this.#opened.get(w) ?? this.#allocated.get(w);
      if (j !== undefined) origins.push(j);
    }
    const picked = new Set(
      [...new Set(origins)].sort((a, b) => b - a).slice(0, limit),
    );
    // Then the latest steps sharing a word (and the one just before), newest
    // first, until `limit`: the union of each word's recent list holds them.
    const candidates = new Set<number>();
    if (index > 0) candidates.add(index - 1);
    for (const w of target) {
      for (const j of this.#recent.get(w) ?? []) candidates.add(j);
    }
    for (const j of [...candidates].sort((a, b) => b - a)) {
      if (picked.size >= limit) break;
      picked.add(j);
    }
    return [...picked].sort((a, b) => a - b).map((j) => steps[j]);
  }
}

/**
 * The steps that led to step `index`: where the handle it uses was opened
 * and where the ports it mentions were last allocated, then the most recent
 * earlier steps sharing its handle or a `rel` port (the immediately
 * preceding step always), at most `limit` in all (origins first), oldest
 * first. One question costs time linear in `index`; to ask about many steps
 * of one trace, feed a {@linkcode RelatedIndex} instead.
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
  const related = new RelatedIndex(limit);
  for (let j = 0; j < index; j++) related.add(steps[j]);
  return related.related(steps, index);
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
    host: trace.header?.host,
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
    // Context is looked up in an index fed as the replay goes, so that
    // `all` on a trace where every step diverges stays linear.
    const related = new RelatedIndex(options.context ?? 8);
    // The memory backend answers at once: yield now and then so that the
    // signal (SIGINT in the CLI) is seen.
    const pacer = new Pacer();
    const signal = options.signal;
    const steps = trace.steps;
    for (let index = 0; index < steps.length; index++) {
      const step = steps[index];
      if (pacer.due()) await macrotask();
      if (signal?.aborted) {
        report.interrupted = true;
        break;
      }
      const actual = await runner.run(step);
      report.replayed++;
      const expected = step.outcome;
      const reason = expected === undefined
        ? undefined
        : compareOutcomes(step, expected, actual);
      if (expected === undefined || reason === undefined) {
        if (expected !== undefined) {
          for (const d of ignoredDifferences(step, expected, actual)) {
            report.ignored.push({ i: step.i, op: step.op, ...d });
          }
        }
        related.add(step);
        continue;
      }
      const divergence: Divergence = {
        i: step.i,
        op: step.op,
        args: step.args,
        expected,
        actual,
        reason,
        context: related.related(trace.steps, index),
      };
      related.add(step);
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
