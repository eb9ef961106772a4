/**
 * Differential runs: seeded random step sequences over the device and the
 * dom0 hypercalls, run on two backends side by side and compared outcome
 * by outcome; a divergence is shrunk (delta debugging) to a minimal
 * sequence that still diverges, ready to save as a trace.
 *
 * @module
 */

import { DOMID_SELF } from "../mod.ts";
import { DOMID_XEN } from "../xen/domid.ts";
import type { Environment, OracleBackend } from "./backends.ts";
import { memoryBackend } from "./backends.ts";
import { compareOutcomes, compareTables } from "./compare.ts";
import { makeHeader } from "./record.ts";
import { RefContext } from "./refs.ts";
import { type Divergence, relatedSteps } from "./replay.ts";
import { StepRunner } from "./run.ts";
import { type OpName, OPS, opSpec } from "./ops.ts";
import { prng } from "../util/prng.ts";

export { prng } from "../util/prng.ts";
import {
  type DomainRef,
  type JsonValue,
  type Outcome,
  type PortRef,
  type StepInput,
  toSteps,
  type Trace,
  type TraceStep,
} from "./trace.ts";

/**
 * Options for {@linkcode generateSteps}.
 *
 * @example
 * ```ts
 * import { generateSteps, type GenerateOptions } from "./diff.ts";
 * import assert from "node:assert/strict";
 * const options: GenerateOptions = { handles: 3, coalesceReads: true };
 * const steps = generateSteps(1, 200, options);
 * assert.ok(steps.every((s) => s.op !== "read" || s.timing === "coalesce"));
 * ```
 */
export interface GenerateOptions {
  /** How many handle names to use (h0…), default 3. */
  handles?: number;
  /**
   * Mark every read `timing: "coalesce"` (for a real backend, where how
   * many times a port repeats depends on timing). Default false.
   */
  coalesceReads?: boolean;
}

/**
 * VIRQs the generator binds: per-vCPU ones (TIMER, held by the kernel;
 * DEBUG, held under 2-level only; XENOPROF and XENPMU, free: bound through
 * the device they stay counted on CPU 0), kernel-held and free globals, and
 * numbers beyond `NR_VIRQS`.
 */
const VIRQS = [
  0,
  1,
  2,
  3,
  4,
  5,
  6,
  7,
  8,
  9,
  10,
  11,
  12,
  13,
  14,
  15,
  16,
  17,
  23,
  24,
  31,
  0x8000_0000,
  0xffff_ffff,
];
/** Read sizes with nothing to round to (0..3) or over Linux's 4096 cap. */
const ODD_READ_COUNTS = [0, 1, 2, 3, 4097, 4099, 8191];
/** Literal ports: the reserved one, the 2-level edge, beyond every limit. */
const ABS_PORTS = [0, 4095, 4096, 70000, 0xffff_ffff];

/**
 * A reproducible random step sequence: the same seed, count and options
 * always give the same steps. It opens `h0` first, then mixes every
 * operation, good and bad arguments alike (ports not owned, closed, beyond
 * the device's limit, port 0; VIRQs the kernel holds and VIRQs ≥ 24;
 * `DOMID_SELF`; domains that do not exist). It is safe on a real dom0: it
 * never binds to a port below the trace's own (the kernel's, such as
 * xenstore's) and never resets dom0.
 *
 * @param seed Any integer (taken modulo 2³²).
 * @param count How many steps.
 * @param options Handle count, read timing.
 * @returns The steps.
 *
 * @example
 * ```ts
 * import { generateSteps } from "./diff.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual(generateSteps(7, 50), generateSteps(7, 50));
 * assert.equal(generateSteps(7, 50).length, 50);
 * ```
 */
export function generateSteps(
  seed: number,
  count: number,
  options: GenerateOptions = {},
): StepInput[] {
  const random = prng(seed);
  const int = (n: number) => Math.floor(random() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)];
  const names = Array.from(
    { length: Math.max(1, options.handles ?? 3) },
    (_, i) => `h${i}`,
  );
  const open = new Set<string>();
  const used = new Set<string>();
  let local = 0; // local allocations tried
  let sure = 0; // local allocations that succeed unless a handle is restricted
  let peer = 0;

  // Ports of the local domain, by use. Only what means the same on every
  // host: the kernel holds a host-dependent number of low ports, and dom0's
  // storage grows over a boot, so a port the trace never allocated may or
  // may not have storage; bucket edges are probed in the fresh peer only.
  type Use = "device" | "bind" | "status";
  const localPort = (use: Use): PortRef => {
    const r = random();
    if (use === "status") {
      // rel ports the trace is all but sure to have allocated (storage
      // exists on every host), within dom0's first storage bucket after
      // the kernel's own ports (the kernel profile's boot ports)
      if (r < 0.8 && sure > 0) return { rel: int(Math.min(sure, 36)) };
      return { abs: pick([0, 70000]) };
    }
    // Below 990 the absolute port stays inside the first FIFO event-array
    // page on every host we know (the kernel's own ports come first, see
    // the kernel profile): a trace saved from a run then replays on hosts
    // whose event arrays grew differently since boot (unbind beyond pages
    // × 1024 is EINVAL).
    if (r < 0.8 && local > 0) return { rel: int(Math.min(local + 2, 990)) };
    if (use === "bind") return { abs: pick([0, 4096, 70000]) };
    return { abs: pick(ABS_PORTS) };
  };
  // The peer is fresh: its storage is exactly what the trace allocated
  // there (hc.alloc_unbound, which always reports its port).
  const peerPort = (): PortRef => {
    const r = random();
    if (r < 0.75 && peer > 0) return { rel: int(peer + 2) };
    if (r < 0.9 && peer > 0) return { bucketEnd: pick([-1, 0, 5]) };
    return { abs: pick([0, 1, 63, 64]) };
  };
  const domainRef = (): DomainRef => {
    const r = random();
    if (r < 0.4) return { dom: "local" };
    if (r < 0.75) return { dom: "peer" };
    if (r < 0.85) return { abs: 999 };
    if (r < 0.95) return { abs: DOMID_SELF };
    return { abs: DOMID_XEN }; // never in the domain hash
  };
  const portIn = (domain: DomainRef, use: Use): PortRef => {
    if ("dom" in domain) {
      return domain.dom === "peer" ? peerPort() : localPort(use);
    }
    if (domain.abs === DOMID_SELF) return localPort(use);
    return { abs: 1 };
  };
  const handle = (): string => {
    const live = [...open];
    if (live.length > 0 && random() < 0.92) return pick(live);
    return pick(used.size > 0 ? [...used] : names);
  };

  type Kind = Exclude<OpName, "settle">;
  const weights = OPS.filter((op) => opSpec(op).weight > 0).map((
    op,
  ): [Kind, number] => [op as Kind, opSpec(op).weight]);

  const steps: StepInput[] = [];
  const push = (step: StepInput) => {
    if (step.handle !== undefined) used.add(step.handle);
    steps.push(step);
  };
  if (count > 0) {
    push({ handle: "h0", op: "open", args: {} });
    open.add("h0");
  }
  while (steps.length < count) {
    const closedNames = names.filter((n) => !open.has(n));
    const choices = weights.filter(([kind]) =>
      (kind !== "open" || closedNames.length > 0) &&
      (kind !== "close" || open.size > 0)
    );
    let roll = random() * choices.reduce((sum, [, w]) => sum + w, 0);
    let kind: Kind = choices[0][0];
    for (const [k, w] of choices) {
      if ((roll -= w) < 0) {
        kind = k;
        break;
      }
    }
    switch (kind) {
      case "open": {
        const name = pick(closedNames);
        open.add(name);
        push({ handle: name, op: "open", args: {} });
        break;
      }
      case "close": {
        const name = pick([...open]);
        open.delete(name);
        push({ handle: name, op: "close", args: {} });
        break;
      }
      case "bind_unbound_port":
        local++;
        sure++;
        push({
          handle: handle(),
          op: "bind_unbound_port",
          args: { remote_domain: domainRef() },
        });
        break;
      case "bind_interdomain": {
        local++;
        const remote: DomainRef = random() < 0.5
          ? { dom: "local" }
          : random() < 0.8
          ? { dom: "peer" }
          : pick([{ abs: 999 }, { abs: DOMID_SELF }]);
        // Only the trace's own ports or literal ones out of every kernel's
        // range: never a kernel port (xenstore's is unbound for dom0).
        const remotePort = "dom" in remote || remote.abs === DOMID_SELF
          ? portIn(remote, "bind")
          : { abs: 1 };
        push({
          handle: handle(),
          op: "bind_interdomain",
          args: { remote_domain: remote, remote_port: remotePort },
        });
        break;
      }
      case "bind_virq":
        local++;
        push({
          handle: handle(),
          op: "bind_virq",
          args: { virq: pick(VIRQS) },
        });
        break;
      case "unbind":
      case "notify":
      case "unmask":
        push({
          handle: handle(),
          op: kind,
          args: { port: localPort("device") },
        });
        break;
      case "reset":
        push({ handle: handle(), op: "reset", args: {} });
        break;
      case "restrict_domid":
        push({
          handle: handle(),
          op: "restrict_domid",
          args: {
            domid: pick<DomainRef>([
              { dom: "peer" },
              { dom: "peer" },
              { dom: "local" },
              { abs: 999 },
              { abs: DOMID_SELF },
            ]),
          },
        });
        break;
      case "read": {
        const step: StepInput = { handle: handle(), op: "read", args: {} };
        // Odd counts, as a program with a short or long buffer reads: none
        // of whole ports (0..3), or beyond Linux's 4096-byte cap. Never a
        // partial read of whole ports: which ports it returns would depend
        // on the order events arrived from different vCPUs.
        if (random() < 0.2) step.args.count = pick(ODD_READ_COUNTS);
        if (options.coalesceReads) step.timing = "coalesce";
        push(step);
        break;
      }
      case "hc.status": {
        const domain = domainRef();
        push({
          op: "hc.status",
          args: { domain, port: portIn(domain, "status") },
        });
        break;
      }
      case "hc.alloc_unbound": {
        const r = random();
        const domain: DomainRef = r < 0.4
          ? { dom: "local" }
          : r < 0.9
          ? { dom: "peer" }
          : { abs: 999 };
        if ("dom" in domain) {
          if (domain.dom === "local") {
            local++;
            sure++;
          } else peer++;
        }
        push({
          op: "hc.alloc_unbound",
          args: { domain, remote_domain: domainRef() },
        });
        break;
      }
      case "hc.reset":
        // Never dom0 (or DOMID_SELF): that would close the kernel's ports.
        push({
          op: "hc.reset",
          args: { domain: random() < 0.85 ? { dom: "peer" } : { abs: 999 } },
        });
        break;
    }
  }
  return steps;
}

/**
 * The outcome of running one sequence on two backends side by side.
 *
 * @example
 * ```ts
 * import { generateSteps, runSideBySide, type SideBySide } from "./diff.ts";
 * import { memoryBackend } from "./backends.ts";
 * import assert from "node:assert/strict";
 * const run: SideBySide = await runSideBySide(
 *   generateSteps(2, 10),
 *   memoryBackend(),
 *   memoryBackend(),
 * );
 * assert.equal(run.reference.length, 10);
 * ```
 */
export interface SideBySide {
  /** The reference backend's outcomes, step by step. */
  reference: Outcome[];
  /** The other backend's outcomes. */
  against: Outcome[];
  /** Where they first differ, and why. */
  divergence?: { index: number; reason: string };
  /**
   * When every step agreed: how the local domain's whole status tables
   * differ after the last step, if they do.
   */
  table?: string;
  /** The other backend's host. */
  environment?: Environment;
  /** Whether the signal stopped the run before its last step. */
  interrupted?: boolean;
}

/**
 * Runs steps on fresh sessions of two backends in lockstep, stopping at the
 * first step whose outcomes differ. The reference (a model) gets as many
 * vCPUs, and the same event ABI, as the other backend's host has.
 *
 * @param inputs The steps.
 * @param reference The reference backend.
 * @param against The backend under comparison.
 * @param onStep Called with each step's index before it runs (progress,
 * watchdogs).
 * @param signal Stops the run between two steps (the sessions are still
 * disposed).
 * @returns Both outcome lists and the divergence, if any.
 *
 * @example
 * ```ts
 * import { generateSteps, runSideBySide } from "./diff.ts";
 * import { memoryBackend } from "./backends.ts";
 * import assert from "node:assert/strict";
 * const run = await runSideBySide(generateSteps(1, 40), memoryBackend(), memoryBackend());
 * assert.equal(run.divergence, undefined);
 * ```
 */
export async function runSideBySide(
  inputs: readonly StepInput[],
  reference: OracleBackend,
  against: OracleBackend,
  onStep?: (index: number) => void,
  signal?: AbortSignal,
): Promise<SideBySide> {
  const b = await against.start();
  const result: SideBySide = { reference: [], against: [] };
  try {
    const env = await b.environment();
    result.environment = env;
    const a = await reference.start({
      vcpus: env.vcpus,
      abi: env.abi,
      host: env.host,
    });
    try {
      const ra = new StepRunner(
        a,
        new RefContext(a.localDomain, () => a.createPeer()),
      );
      const rb = new StepRunner(
        b,
        new RefContext(b.localDomain, () => b.createPeer()),
      );
      for (const [index, step] of inputs.entries()) {
        // Both sessions are disposed below (a real peer domain destroyed),
        // so a stop between steps leaves nothing behind.
        if (signal?.aborted) {
          result.interrupted = true;
          break;
        }
        onStep?.(index);
        const x = await ra.run(step);
        const y = await rb.run(step);
        result.reference.push(x);
        result.against.push(y);
        const reason = compareOutcomes(step, x, y);
        if (reason !== undefined) {
          result.divergence = { index, reason };
          break;
        }
      }
      if (result.divergence === undefined && !result.interrupted) {
        result.table = compareTables(
          await a.snapshot(),
          ra.refs.peerIfCreated,
          await b.snapshot(),
          rb.refs.peerIfCreated,
        );
      }
    } finally {
      await a.dispose();
    }
  } finally {
    await b.dispose();
  }
  return result;
}

/**
 * Delta debugging (Zeller's ddmin, complements only): the smallest sublist
 * of `items` it can find for which `fails` still holds, 1-minimal when the
 * budget allows (removing any single item makes it pass).
 *
 * @param items A failing list.
 * @param fails The test; must hold for `items`.
 * @param maxTests Budget of calls to `fails` (default 2000).
 * @returns The reduced list and the number of tests run.
 *
 * @example
 * ```ts
 * import { shrinkList } from "./diff.ts";
 * import assert from "node:assert/strict";
 * const { items } = await shrinkList(
 *   [1, 2, 3, 4, 5, 6, 7, 8],
 *   (xs) => Promise.resolve(xs.includes(3) && xs.includes(6)),
 * );
 * assert.deepEqual(items, [3, 6]);
 * ```
 */
export async function shrinkList<T>(
  items: readonly T[],
  fails: (items: T[]) => Promise<boolean>,
  maxTests = 2000,
): Promise<{ items: T[]; tests: number }> {
  let current = [...items];
  let n = 2;
  let tests = 0;
  while (current.length >= 2 && tests < maxTests) {
    const size = Math.ceil(current.length / n);
    let reduced = false;
    for (
      let start = 0;
      start < current.length && tests < maxTests;
      start += size
    ) {
      const complement = [
        ...current.slice(0, start),
        ...current.slice(start + size),
      ];
      tests++;
      if (await fails(complement)) {
        current = complement;
        n = Math.max(n - 1, 2);
        reduced = true;
        break;
      }
    }
    if (!reduced) {
      if (n >= current.length) break;
      n = Math.min(n * 2, current.length);
    }
  }
  if (current.length === 1 && tests < maxTests && await fails([])) {
    tests++;
    current = [];
  }
  return { items: current, tests };
}

/**
 * Options for {@linkcode runDiff}.
 *
 * @example
 * ```ts
 * import { type DiffOptions, runDiff } from "./diff.ts";
 * import assert from "node:assert/strict";
 * const options: DiffOptions = { seed: 42, ops: 50 };
 * assert.equal((await runDiff(options)).agreed, true);
 * ```
 */
export interface DiffOptions {
  /** The seed. */
  seed: number;
  /** How many steps. */
  ops: number;
  /** The reference backend (default: memory). */
  reference?: OracleBackend;
  /** The backend compared with it (default: a fresh memory instance). */
  against?: OracleBackend;
  /**
   * Generator options (default: coalesced reads and status without `vcpu`
   * unless `against` is memory).
   */
  generate?: GenerateOptions;
  /** Shrink a divergence (default true). */
  shrink?: boolean;
  /** Budget of side-by-side runs for shrinking (default 2000). */
  maxTests?: number;
  /** Called with each step's index before it runs, in the full run only. */
  onStep?: (index: number) => void;
  /**
   * Stops the run (and any shrinking) between two steps; the report then
   * says `interrupted`.
   */
  signal?: AbortSignal;
}

/**
 * What a differential run found.
 *
 * @example
 * ```ts
 * import { type DiffReport, runDiff } from "./diff.ts";
 * import assert from "node:assert/strict";
 * const report: DiffReport = await runDiff({ seed: 1, ops: 10 });
 * assert.equal(report.steps.length, 10);
 * assert.equal(report.against, "memory");
 * ```
 */
export interface DiffReport {
  /** The seed. */
  seed: number;
  /** Steps asked for. */
  ops: number;
  /** The reference backend's name. */
  reference: string;
  /** The other backend's name. */
  against: string;
  /** The generated steps. */
  steps: StepInput[];
  /** Whether every step agreed (so far, when interrupted). */
  agreed: boolean;
  /** Whether the signal stopped the run early. */
  interrupted?: boolean;
  /** The first divergence in the full sequence (expected = reference). */
  divergence?: Divergence;
  /**
   * The shrunk sequence as a trace holding the other backend's outcomes
   * (replaying it on the reference diverges at its last step), with its
   * divergence and the number of side-by-side runs shrinking took.
   */
  minimal?: { trace: Trace; divergence: Divergence; tests: number };
}

function divergenceAt(
  steps: TraceStep[],
  index: number,
  expected: Outcome,
  actual: Outcome,
  reason: string,
): Divergence {
  const step = steps[index];
  const d: Divergence = {
    i: step.i,
    op: step.op,
    args: step.args as Record<string, JsonValue>,
    expected,
    actual,
    reason,
    context: relatedSteps(steps, index, 8),
  };
  if (step.handle !== undefined) d.handle = step.handle;
  return d;
}

function withOutcomes(
  inputs: readonly StepInput[],
  outcomes: Outcome[],
): TraceStep[] {
  return toSteps(inputs).map((step, i) => {
    if (outcomes[i] !== undefined) step.outcome = outcomes[i];
    return step;
  });
}

/**
 * A whole differential run: generate `ops` steps from `seed`, run them on
 * both backends side by side, and on a divergence shrink the sequence to a
 * minimal one that still diverges.
 *
 * @param options Seed, length, backends, shrinking.
 * @returns The report.
 *
 * @example
 * ```ts
 * import { runDiff } from "./diff.ts";
 * import assert from "node:assert/strict";
 * const report = await runDiff({ seed: 3, ops: 60 });
 * assert.equal(report.agreed, true);
 * ```
 */
export async function runDiff(options: DiffOptions): Promise<DiffReport> {
  const reference = options.reference ?? memoryBackend();
  const against = options.against ?? memoryBackend();
  const real = against.name !== "memory";
  const generate = options.generate ?? { coalesceReads: real };
  const steps = generateSteps(options.seed, options.ops, generate);
  const report: DiffReport = {
    seed: options.seed,
    ops: options.ops,
    reference: reference.name,
    against: against.name,
    steps,
    agreed: true,
  };
  const { signal } = options;
  const run = await runSideBySide(
    steps,
    reference,
    against,
    options.onStep,
    signal,
  );
  if (run.interrupted) report.interrupted = true;
  const found = diverged(run);
  if (found === undefined) return report;
  report.agreed = false;
  report.divergence = divergenceAt(
    withOutcomes(steps, run.reference),
    found.index,
    run.reference[found.index],
    run.against[found.index],
    found.reason,
  );
  if (options.shrink === false || signal?.aborted) return report;

  const diverges = async (candidate: StepInput[]) =>
    !signal?.aborted &&
    diverged(
        await runSideBySide(candidate, reference, against, undefined, signal),
      ) !== undefined;
  const { items, tests } = await shrinkList(
    steps.slice(0, found.index + 1),
    diverges,
    options.maxTests,
  );
  const final = await runSideBySide(items, reference, against);
  const last = diverged(final);
  if (last === undefined) return report; // flaky: keep the full one
  const end = last.index;
  const kept = items.slice(0, end + 1);
  const traceSteps = withOutcomes(kept, final.against);
  const header = makeHeader(against.name, final.environment!, {
    note: `oracle diff --seed ${options.seed} --ops ${options.ops}: ` +
      `minimal sequence on which ${against.name} diverges from ${reference.name} ` +
      `(${reference.name} gives ${
        JSON.stringify(final.reference[end])
      } at step ${end}); outcomes are ${against.name}'s`,
  });
  report.minimal = {
    trace: { header, steps: traceSteps },
    divergence: divergenceAt(
      withOutcomes(kept, final.reference),
      end,
      final.reference[end],
      final.against[end],
      last.reason,
    ),
    tests,
  };
  return report;
}

/**
 * Where a side-by-side run first diverged: at a step, or (every step
 * having agreed) in the status tables after its last step, which is then
 * the step blamed.
 */
function diverged(
  run: SideBySide,
): { index: number; reason: string } | undefined {
  if (run.divergence !== undefined) return run.divergence;
  if (run.table === undefined || run.reference.length === 0) return undefined;
  return {
    index: run.reference.length - 1,
    reason: `after this step (the last), ${run.table}`,
  };
}
