/**
 * Running one step: resolve its references on this host, perform it through
 * the public API, and encode what came back (a result with references, or
 * an errno) as an {@linkcode Outcome}.
 *
 * @module
 */

import { type Dom0Hypercalls, EventChannelError } from "../mod.ts";
import {
  EnvironmentError,
  type OracleHandle,
  type OracleSession,
} from "./backends.ts";
import { type RefContext, RefError } from "./refs.ts";
import { macrotask, Pacer } from "../util/pace.ts";
import { type OpSpec, opSpec } from "./ops.ts";
import type {
  DomainRef,
  JsonValue,
  Outcome,
  PortRef,
  StepInput,
} from "./trace.ts";

/** One pacer for every runner: diff's shrinking makes many short runs. */
const PACER = new Pacer();

/** Largest ring the device ever has (2¹⁷ entries); a bound for draining. */
const MAX_RING = 1 << 17;

/**
 * A step that cannot be applied as written (an unknown handle, a handle
 * opened twice). Recorded as the outcome code `ORACLE`.
 *
 * @example
 * ```ts
 * import { StepError } from "./run.ts";
 * import assert from "node:assert/strict";
 * const error = new StepError('handle "h3" was never opened');
 * assert.equal(error.name, "StepError");
 * ```
 */
export class StepError extends Error {
  /**
   * Creates the error.
   *
   * @param message What is wrong with the step.
   */
  constructor(message: string) {
    super(message);
    this.name = "StepError";
  }
}

/**
 * The operation name an `EventChannelError` from a step carries: the step's
 * own, without the `hc.` of dom0 hypercall steps.
 *
 * @param op The step's op.
 * @returns The error's op.
 */
function errorOp(op: string): string {
  return op.startsWith("hc.") ? op.slice(3) : op;
}

/**
 * The outcome for a thrown error: an `EventChannelError`'s code and errno;
 * `ORACLE` (errno 0) for a step the oracle could not apply; the error's name
 * (errno 0, with its message) for anything else, which is a bug somewhere.
 *
 * @param error What was thrown.
 * @returns The outcome.
 *
 * @example
 * ```ts
 * import { errorOutcome } from "./run.ts";
 * import { EventChannelError } from "../mod.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual(errorOutcome(new EventChannelError("notify", "ENOTCONN")), {
 *   error: { code: "ENOTCONN", errno: 107 },
 * });
 * ```
 */
export function errorOutcome(error: unknown): Outcome {
  if (error instanceof EventChannelError) {
    return { error: { code: error.code, errno: error.errno } };
  }
  if (error instanceof RefError || error instanceof StepError) {
    return { error: { code: "ORACLE", errno: 0, message: error.message } };
  }
  const e = error instanceof Error ? error : new Error(String(error));
  return { error: { code: e.name || "Error", errno: 0, message: e.message } };
}

/** A handle or hypercall method as the table names it. */
type Call = (...args: number[]) => unknown;

/**
 * A step's arguments as the numbers its call takes, in the table's order:
 * domains first resolved, then ports in the space the op names.
 *
 * @param refs The run's references.
 * @param spec The op's table entry.
 * @param args The step's arguments.
 * @returns Argument name → number.
 */
export function decodeArgs(
  refs: RefContext,
  spec: OpSpec,
  args: Readonly<Record<string, JsonValue>>,
): Record<string, number> {
  const values: Record<string, number> = {};
  for (const [name, kind] of Object.entries(spec.args)) {
    const arg = args[name];
    values[name] = kind === "domain"
      ? refs.domain(arg as DomainRef)
      : kind === "port"
      ? refs.port(portSpace(refs, spec, values), arg as PortRef)
      : arg as number;
  }
  return values;
}

/**
 * A call's arguments as trace references, the inverse of
 * {@linkcode decodeArgs}.
 *
 * @param refs The run's references.
 * @param spec The op's table entry.
 * @param values Argument name → number.
 * @returns The step's arguments.
 */
export function encodeArgs(
  refs: RefContext,
  spec: OpSpec,
  values: Readonly<Record<string, number>>,
): Record<string, JsonValue> {
  const args: Record<string, JsonValue> = {};
  for (const [name, kind] of Object.entries(spec.args)) {
    const value = values[name];
    args[name] = kind === "domain"
      ? refs.encodeDomain(value)
      : kind === "port"
      ? refs.encodePort(portSpace(refs, spec, values), value)
      : value;
  }
  return args;
}

/**
 * A call's result as trace JSON: a new port is recorded as allocated in its
 * space and written as a reference, a status with references, else `null`.
 *
 * @param refs The run's references.
 * @param spec The op's table entry.
 * @param values The call's arguments (for the result's space).
 * @param value What the call returned.
 * @returns The encoded result.
 */
export function encodeResult(
  refs: RefContext,
  spec: OpSpec,
  values: Readonly<Record<string, number>>,
  value: unknown,
): JsonValue {
  switch (spec.result) {
    case "port": {
      const space = spec.resultSpace === undefined
        ? "local"
        : refs.spaceOf(values[spec.resultSpace]);
      refs.allocated(space, value as number);
      return refs.encodePort(space, value as number);
    }
    case "status":
      return refs.encodeStatus(value as Record<string, unknown>);
    default:
      return null;
  }
}

function portSpace(
  refs: RefContext,
  spec: OpSpec,
  values: Readonly<Record<string, number>>,
): string {
  return spec.portSpace === undefined
    ? "local"
    : refs.spaceOf(values[spec.portSpace]);
}

/**
 * What a runner needs of a session; {@linkcode OracleSession} has it all.
 *
 * @example
 * ```ts
 * import { type RunnerHost, StepRunner } from "./run.ts";
 * import { RefContext } from "./refs.ts";
 * import { MemoryXen } from "../mod.ts";
 * import assert from "node:assert/strict";
 * const xen = new MemoryXen();
 * const host: RunnerHost = {
 *   readSettleMs: 0,
 *   open: () => xen.open(0),
 *   hypercalls: () => xen.hypercalls(0),
 *   settle: () => Promise.resolve(),
 * };
 * const runner = new StepRunner(host, new RefContext(0, 1));
 * assert.deepEqual(
 *   await runner.run({ handle: "h0", op: "open", args: {} }),
 *   { ok: null },
 * );
 * ```
 */
export type RunnerHost = Pick<
  OracleSession,
  "readSettleMs" | "open" | "hypercalls" | "settle"
>;

interface Slot {
  handle: OracleHandle;
  closed: boolean;
}

/**
 * Runs steps on one host, keeping the named handles and the reference
 * mapping between steps.
 *
 * @example
 * ```ts
 * import { StepRunner } from "./run.ts";
 * import { RefContext } from "./refs.ts";
 * import { memoryBackend } from "./backends.ts";
 * import assert from "node:assert/strict";
 * const session = await memoryBackend().start();
 * const runner = new StepRunner(session, new RefContext(0, () => session.createPeer()));
 * await runner.run({ handle: "h0", op: "open", args: {} });
 * const outcome = await runner.run({
 *   handle: "h0",
 *   op: "bind_unbound_port",
 *   args: { remote_domain: { dom: "local" } },
 * });
 * assert.deepEqual(outcome, { ok: { rel: 0 } });
 * await session.dispose();
 * ```
 */
export class StepRunner {
  /** The reference mapping. */
  readonly refs: RefContext;
  #host: RunnerHost;
  #slots = new Map<string, Slot>();
  /** Whether a step since the last wait may have an event in flight. */
  #inFlight = false;
  #hc: Dom0Hypercalls | undefined;

  /**
   * Creates a runner with no handles open.
   *
   * @param host Where to open handles and issue hypercalls.
   * @param refs The reference mapping for this run.
   */
  constructor(host: RunnerHost, refs: RefContext) {
    this.#host = host;
    this.refs = refs;
  }

  /**
   * Names a handle opened elsewhere, as if an `open` step had opened it.
   *
   * @param name The name.
   * @param handle The handle.
   */
  adopt(name: string, handle: OracleHandle): void {
    this.#slots.set(name, { handle, closed: false });
  }

  /**
   * Runs a step and returns its outcome; refusals become error outcomes.
   *
   * @param step The step.
   * @returns The outcome.
   * @throws {EnvironmentError} when the host cannot run it at all.
   */
  async run(step: StepInput): Promise<Outcome> {
    // On the memory backend every step settles at once, so a long run (or
    // diff's thousands of short ones) would never let a signal listener
    // run: give the event loop a turn now and then.
    if (PACER.due()) await macrotask();
    try {
      return { ok: await this.execute(step) };
    } catch (error) {
      if (error instanceof EnvironmentError) throw error;
      // An errno is evidence only for the call that failed: an error raised
      // by another operation (a wait's, a read's) must not become this
      // step's outcome, where it would pass for something Xen answered.
      if (error instanceof EventChannelError && error.op !== errorOp(step.op)) {
        return errorOutcome(
          new StepError(
            `${step.op} failed with an error of ${error.op} (${error.code})`,
          ),
        );
      }
      return errorOutcome(error);
    }
  }

  /**
   * Runs a step and returns its encoded result; refusals are thrown.
   *
   * @param step The step.
   * @returns The result as trace JSON.
   */
  async execute(step: StepInput): Promise<JsonValue> {
    const args = step.args;
    // Steps whose outcome depends on whether an event has landed in a ring
    // yet (reset empties the ring; unbind and close stop a port's event
    // before or after it was queued) wait for deliveries in flight first,
    // as reads do: real Xen delivers across vCPUs by IPI, so without the
    // wait a reset right after a bind_interdomain could run before the
    // bind's pending event reached the ring, and the next read would see
    // an event the model (which delivers at once) had already reset away.
    const spec = opSpec(step.op);
    if (this.#inFlight && spec.settlesFirst) {
      await this.#host.settle(this.#host.readSettleMs);
      this.#inFlight = false;
    }
    if (spec.delivers) this.#inFlight = true;
    switch (step.op) {
      case "open": {
        const name = step.handle!;
        if (this.#slots.get(name)?.closed === false) {
          throw new StepError(`handle "${name}" is already open`);
        }
        this.#slots.set(name, { handle: this.#host.open(), closed: false });
        return null;
      }
      case "close": {
        const slot = this.#slot(step);
        slot.closed = true;
        await slot.handle.close();
        return null;
      }
      case "read": {
        const handle = this.#slot(step).handle;
        await this.#host.settle(
          (args.settleMs as number | undefined) ?? this.#host.readSettleMs,
        );
        this.#inFlight = false;
        const count = args.count as number | undefined;
        return count === undefined
          ? this.#drain(handle)
          : this.#readOnce(handle, count);
      }
      case "settle":
        await this.#host.settle(args.ms as number);
        return null;
      default:
        return this.executeSync(step);
    }
  }

  /**
   * Runs a step that needs no waiting (everything but `open`, `close`,
   * `read` and `settle`).
   *
   * @param step The step.
   * @returns The result as trace JSON.
   */
  executeSync(step: StepInput): JsonValue {
    const spec = opSpec(step.op);
    if (spec.on === "runner") {
      throw new StepError(`op ${step.op} cannot run synchronously`);
    }
    const values = decodeArgs(this.refs, spec, step.args);
    const target = spec.on === "handle"
      ? this.#handle(step)
      : this.#hypercalls();
    const method = (target as unknown as Record<string, Call>)[spec.method!];
    return encodeResult(
      this.refs,
      spec,
      values,
      method.apply(target, Object.values(values)),
    );
  }

  #hypercalls(): Dom0Hypercalls {
    return this.#hc ??= this.#host.hypercalls();
  }

  #slot(step: StepInput): Slot {
    const slot = this.#slots.get(step.handle ?? "");
    if (slot === undefined) {
      throw new StepError(`handle "${step.handle}" was never opened`);
    }
    return slot;
  }

  #handle(step: StepInput): OracleHandle {
    return this.#slot(step).handle;
  }

  /**
   * One `read(2)` of `count` bytes, as a program with an odd buffer makes
   * it: Linux rounds the count down to whole ports (below 4 it reads
   * nothing, even on an overflowed ring) and caps it at 4096 bytes.
   */
  #readOnce(handle: OracleHandle, count: number): JsonValue {
    const buffer = new Uint8Array(count);
    const n = handle.read(buffer) ?? 0;
    const view = new DataView(buffer.buffer);
    const ports: JsonValue[] = [];
    for (let at = 0; at + 4 <= n; at += 4) {
      const port = view.getUint32(at, true);
      this.refs.seen("local", port);
      ports.push(this.refs.encodePort("local", port));
    }
    return ports;
  }

  /** Reads without blocking until the ring is empty. */
  #drain(handle: OracleHandle): JsonValue {
    const buffer = new Uint8Array(4096);
    const view = new DataView(buffer.buffer);
    const ports: number[] = [];
    while (ports.length <= MAX_RING) {
      const n = handle.read(buffer);
      if (n === null || n === 0) break;
      for (let at = 0; at + 4 <= n; at += 4) {
        ports.push(view.getUint32(at, true));
      }
    }
    return ports.map((port) => {
      this.refs.seen("local", port);
      return this.refs.encodePort("local", port);
    });
  }
}
