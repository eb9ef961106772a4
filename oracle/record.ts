/**
 * Recording traces: run a list of steps on a backend and keep every
 * outcome ({@linkcode recordSteps}), or wrap handles and hypercalls a
 * program uses so that everything done through them is written down
 * ({@linkcode Recorder}, {@linkcode recordingHandle}).
 *
 * @module
 */

import type { Dom0Hypercalls } from "../mod.ts";
import type {
  Environment,
  OracleBackend,
  OracleHandle,
  SessionOptions,
} from "./backends.ts";
import { RefContext } from "./refs.ts";
import { macrotask, Pacer } from "../util/pace.ts";
import { encodeArgs, encodeResult, errorOutcome, StepRunner } from "./run.ts";
import { type OpName, opSpec } from "./ops.ts";
import {
  formatTrace,
  type JsonValue,
  type StepInput,
  toSteps,
  type Trace,
  TRACE_VERSION,
  type TraceHeader,
  type TraceStep,
} from "./trace.ts";

/**
 * A trace header for a host.
 *
 * @param backend The backend's name.
 * @param environment The host.
 * @param extra A scenario name or a note.
 * @returns The header, dated now.
 *
 * @example
 * ```ts
 * import { makeHeader } from "./record.ts";
 * import assert from "node:assert/strict";
 * const header = makeHeader("memory", {
 *   xen: "4.17 (model)",
 *   kernel: "6.1 (model)",
 *   abi: "2l",
 *   vcpus: 2,
 * });
 * assert.equal(header.type, "header");
 * assert.equal(header.abi, "2l");
 * ```
 */
export function makeHeader(
  backend: string,
  environment: Environment,
  extra: { scenario?: string; note?: string } = {},
): TraceHeader {
  const header: TraceHeader = {
    type: "header",
    version: TRACE_VERSION,
    backend,
    xen: environment.xen,
    kernel: environment.kernel,
    abi: environment.abi,
    vcpus: environment.vcpus,
    recorded: new Date().toISOString(),
  };
  if (extra.scenario !== undefined) header.scenario = extra.scenario;
  if (extra.note !== undefined) header.note = extra.note;
  if (environment.host !== undefined) header.host = environment.host;
  return header;
}

/**
 * Options for {@linkcode recordSteps}.
 *
 * @example
 * ```ts
 * import { type RecordOptions, recordSteps } from "./record.ts";
 * import { memoryBackend } from "./backends.ts";
 * import { scenario } from "./scenarios.ts";
 * import assert from "node:assert/strict";
 * const options: RecordOptions = { scenario: "loopback" };
 * const steps = scenario("loopback")!.steps;
 * const trace = await recordSteps(steps, memoryBackend(), options);
 * assert.equal(trace.header?.scenario, "loopback");
 * ```
 */
export interface RecordOptions extends SessionOptions {
  /** The scenario's name, for the header. */
  scenario?: string;
  /** A note for the header. */
  note?: string;
  /**
   * Stops recording between steps when aborted: the trace then holds the
   * steps run so far (with their outcomes) and no others.
   */
  signal?: AbortSignal;
}

/**
 * Runs steps on a fresh session of a backend and returns them with their
 * outcomes, under a header describing the host. Arguments stay as written
 * (references), results are encoded as references.
 *
 * @param inputs The steps.
 * @param backend Where to run them.
 * @param options Header extras and session options.
 * @returns The trace.
 *
 * @example
 * ```ts
 * import { recordSteps } from "./record.ts";
 * import { memoryBackend } from "./backends.ts";
 * import assert from "node:assert/strict";
 * const trace = await recordSteps([
 *   { handle: "h0", op: "open", args: {} },
 *   { handle: "h0", op: "notify", args: { port: { abs: 70000 } } },
 * ], memoryBackend());
 * assert.deepEqual(trace.steps[1].outcome, {
 *   error: { code: "ENOTCONN", errno: 107 },
 * });
 * ```
 */
export async function recordSteps(
  inputs: readonly StepInput[],
  backend: OracleBackend,
  options: RecordOptions = {},
): Promise<Trace> {
  const session = await backend.start(options);
  try {
    const header = makeHeader(
      session.backend,
      await session.environment(),
      options,
    );
    const runner = new StepRunner(
      session,
      new RefContext(session.localDomain, () => session.createPeer()),
    );
    const steps = toSteps(inputs);
    // The memory backend answers at once: yield now and then so that the
    // signal (SIGINT in the CLI) is seen.
    const pacer = new Pacer();
    for (const [i, input] of inputs.entries()) {
      if (pacer.due()) await macrotask();
      if (options.signal?.aborted) {
        steps.length = i;
        break;
      }
      steps[i].outcome = await runner.run(input);
    }
    return { header, steps };
  } finally {
    await session.dispose();
  }
}

/**
 * Options for a {@linkcode Recorder}.
 *
 * @example
 * ```ts
 * import { Recorder, type RecorderOptions } from "./record.ts";
 * import assert from "node:assert/strict";
 * const options: RecorderOptions = { localDomain: 0, peerDomain: 1 };
 * assert.deepEqual(new Recorder(options).trace().steps, []);
 * ```
 */
export interface RecorderOptions {
  /** The domain the handles live in (default 0). */
  localDomain?: number;
  /** The domain to write as `{"dom":"peer"}`, if any. */
  peerDomain?: number;
  /** The backend's name for the header (default `memory`). */
  backend?: string;
  /** The host, for the header (default: the model's). */
  environment?: Environment;
}

/**
 * Writes down everything done through the handles and hypercalls it wraps,
 * as a trace. Port numbers become references: `rel` from the first port
 * the recording allocated in a domain, `abs` below that or at 4096 and
 * above (so port 0, kernel ports and out-of-range ports stay literal).
 *
 * @example Record a program's loopback
 * ```ts
 * import { Recorder } from "./record.ts";
 * import { MemoryXen } from "../mod.ts";
 * import assert from "node:assert/strict";
 *
 * const xen = new MemoryXen();
 * const recorder = new Recorder();
 * const a = recorder.handle(xen.open(0));
 * const b = recorder.handle(xen.open(0));
 * const offered = a.bindUnboundPort(0);
 * const port = b.bindInterdomain(0, offered);
 * assert.deepEqual(await b.drain(), [port]);
 * await a.close();
 * await b.close();
 * assert.match(recorder.toJsonl(), /"op":"bind_interdomain"/);
 * ```
 */
export class Recorder {
  /** The reference mapping. */
  readonly refs: RefContext;
  #runner: StepRunner;
  #steps: TraceStep[] = [];
  #names = 0;
  #header: TraceHeader;

  /**
   * Creates an empty recording.
   *
   * @param options The domains and the header.
   */
  constructor(options: RecorderOptions = {}) {
    this.refs = new RefContext(
      options.localDomain ?? 0,
      options.peerDomain ?? (() => {
        throw new Error("no peer domain was given to the Recorder");
      }),
    );
    this.#header = makeHeader(
      options.backend ?? "memory",
      // MemoryXen's defaults: FIFO, as Linux 6.1 picks on Xen 4.17.
      options.environment ?? {
        xen: "4.17 (model)",
        kernel: "6.1 (model)",
        abi: "fifo",
        vcpus: 2,
      },
    );
    this.#runner = new StepRunner({
      readSettleMs: 0,
      open: () => {
        throw new Error("a Recorder only records handles given to it");
      },
      hypercalls: () => {
        throw new Error("a Recorder only records hypercalls given to it");
      },
      settle: (ms) =>
        ms <= 0
          ? Promise.resolve()
          : new Promise((resolve) => setTimeout(resolve, ms)),
    }, this.refs);
  }

  /**
   * Starts recording a handle: writes an `open` step for it and returns a
   * wrapper whose every call is written down.
   *
   * @param handle The handle.
   * @param name Its name in the trace (default `h0`, `h1`, …).
   * @returns The wrapper.
   */
  handle(handle: OracleHandle, name?: string): RecordingHandle {
    return recordingHandle(handle, this, name);
  }

  /**
   * Wraps dom0 hypercalls so that every call is written down.
   *
   * @param hypercalls The hypercalls.
   * @returns The same interface, recording.
   */
  hypercalls(hypercalls: Dom0Hypercalls): Dom0Hypercalls {
    return {
      status: (domain, port) =>
        this.call(
          undefined,
          "hc.status",
          { domain, port },
          () => hypercalls.status(domain, port),
        ),
      allocUnbound: (domain, remote_domain) =>
        this.call(
          undefined,
          "hc.alloc_unbound",
          { domain, remote_domain },
          () => hypercalls.allocUnbound(domain, remote_domain),
        ),
      reset: (domain) =>
        this.call(
          undefined,
          "hc.reset",
          { domain },
          () => hypercalls.reset(domain),
        ),
    };
  }

  /** @internal Names a new handle and writes its `open` step. */
  adopt(handle: OracleHandle, name?: string): string {
    const chosen = name ?? `h${this.#names++}`;
    this.#runner.adopt(chosen, handle);
    this.#push({ handle: chosen, op: "open", args: {} }, { ok: null });
    return chosen;
  }

  /**
   * @internal Performs one synchronous call of `op` (a table entry's
   * method) through the wrapped objects, writes it down with its arguments
   * and result encoded as the table says, and returns the call's own result
   * (or throws its own error).
   */
  call<T>(
    handle: string | undefined,
    op: OpName,
    values: Record<string, number>,
    perform: () => T,
  ): T {
    const spec = opSpec(op);
    // Arguments are encoded before the call: an unbind's port is the one
    // the program knew, not whatever the call leaves behind.
    const input: StepInput = {
      op,
      args: encodeArgs(this.refs, spec, values),
    };
    if (handle !== undefined) input.handle = handle;
    let value: T;
    try {
      value = perform();
    } catch (error) {
      this.#push(input, errorOutcome(error));
      throw error;
    }
    this.#push(input, { ok: encodeResult(this.refs, spec, values, value) });
    return value;
  }

  /** @internal Runs an asynchronous step (`read`, `close`) and writes it down. */
  async async(input: StepInput): Promise<JsonValue> {
    try {
      const value = await this.#runner.execute(input);
      this.#push(input, { ok: value });
      return value;
    } catch (error) {
      this.#push(input, errorOutcome(error));
      throw error;
    }
  }

  #push(input: StepInput, outcome: TraceStep["outcome"]): void {
    const step: TraceStep = {
      type: "step",
      i: this.#steps.length,
      op: input.op,
      args: input.args,
    };
    if (input.handle !== undefined) step.handle = input.handle;
    step.outcome = outcome;
    this.#steps.push(step);
  }

  /**
   * The trace so far.
   *
   * @returns Header and steps.
   */
  trace(): Trace {
    return { header: this.#header, steps: [...this.#steps] };
  }

  /**
   * The trace so far as JSON Lines.
   *
   * @returns The text.
   */
  toJsonl(): string {
    return formatTrace(this.trace());
  }
}

/**
 * A handle whose every call is written to a {@linkcode Recorder}. The
 * synchronous calls keep `EventChannelHandle`'s signatures (the real result
 * is returned, the real error thrown); pending ports are read with
 * {@linkcode RecordingHandle.drain}, which is the trace's `read`.
 *
 * @example
 * ```ts
 * import { Recorder } from "./record.ts";
 * import { MemoryXen } from "../mod.ts";
 * import assert from "node:assert/strict";
 * const recorder = new Recorder();
 * const h = recorder.handle(new MemoryXen().open(0));
 * assert.throws(() => h.notify(70000)); // thrown as ever, and recorded
 * await h.close();
 * const [, notify] = recorder.trace().steps;
 * assert.deepEqual(notify.outcome, { error: { code: "ENOTCONN", errno: 107 } });
 * ```
 */
export class RecordingHandle {
  /** The handle's name in the trace. */
  readonly name: string;
  #recorder: Recorder;
  #handle: OracleHandle;

  /**
   * Starts recording `handle` (writes its `open` step).
   *
   * @param handle The handle to record.
   * @param recorder Where to write.
   * @param name Its name (default: the next `hN`).
   */
  constructor(handle: OracleHandle, recorder: Recorder, name?: string) {
    this.#recorder = recorder;
    this.#handle = handle;
    this.name = recorder.adopt(handle, name);
  }

  #run<T>(
    op: OpName,
    values: Record<string, number>,
    perform: () => T,
  ): T {
    return this.#recorder.call(this.name, op, values, perform);
  }

  /**
   * `bind_unbound_port`.
   *
   * @param remoteDomain The domain allowed to connect.
   * @returns The new port.
   */
  bindUnboundPort(remoteDomain: number): number {
    return this.#run(
      "bind_unbound_port",
      { remote_domain: remoteDomain },
      () => this.#h().bindUnboundPort(remoteDomain),
    );
  }

  /**
   * `bind_interdomain`.
   *
   * @param remoteDomain The domain that offered the port.
   * @param remotePort Its port.
   * @returns The new local port.
   */
  bindInterdomain(remoteDomain: number, remotePort: number): number {
    return this.#run(
      "bind_interdomain",
      { remote_domain: remoteDomain, remote_port: remotePort },
      () => this.#h().bindInterdomain(remoteDomain, remotePort),
    );
  }

  /**
   * `bind_virq`.
   *
   * @param virq The VIRQ.
   * @returns The new port.
   */
  bindVirq(virq: number): number {
    return this.#run("bind_virq", { virq }, () => this.#h().bindVirq(virq));
  }

  /**
   * `unbind`.
   *
   * @param port The port.
   */
  unbind(port: number): void {
    this.#run("unbind", { port }, () => this.#h().unbind(port));
  }

  /**
   * `notify`.
   *
   * @param port The port.
   */
  notify(port: number): void {
    this.#run("notify", { port }, () => this.#h().notify(port));
  }

  /**
   * `unmask`.
   *
   * @param port The port.
   */
  unmask(port: number): void {
    this.#run("unmask", { port }, () => this.#h().unmask(port));
  }

  /** `reset` (of the handle's ring). */
  reset(): void {
    this.#run("reset", {}, () => this.#h().reset());
  }

  /**
   * `restrict_domid`.
   *
   * @param domain The domain.
   */
  restrictDomain(domain: number): void {
    this.#run(
      "restrict_domid",
      { domid: domain },
      () => this.#h().restrictDomain(domain),
    );
  }

  /**
   * `read`: waits `settleMs`, then reads every pending port without
   * blocking.
   *
   * @param settleMs Milliseconds to wait first (default 0).
   * @returns The ports, in arrival order.
   */
  async drain(settleMs = 0): Promise<number[]> {
    const args: Record<string, JsonValue> = settleMs > 0 ? { settleMs } : {};
    const value = await this.#recorder.async({
      handle: this.name,
      op: "read",
      args,
    });
    const refs = this.#recorder.refs;
    return (value as JsonValue[]).map((ref) =>
      refs.port("local", ref as never)
    );
  }

  /** `close`. */
  async close(): Promise<void> {
    await this.#recorder.async({ handle: this.name, op: "close", args: {} });
  }

  #h(): OracleHandle {
    return this.#handle;
  }
}

/**
 * Wraps a handle so that everything done through it is written to
 * `recorder` (an `open` step first).
 *
 * @param handle The handle.
 * @param recorder The recorder.
 * @param name Its name in the trace (default: the next `hN`).
 * @returns The recording wrapper.
 *
 * @example
 * ```ts
 * import { Recorder, recordingHandle } from "./record.ts";
 * import { MemoryXen } from "../mod.ts";
 * import assert from "node:assert/strict";
 * const recorder = new Recorder();
 * const h = recordingHandle(new MemoryXen().open(0), recorder, "server");
 * h.bindUnboundPort(0);
 * await h.close();
 * assert.equal(recorder.trace().steps.length, 3);
 * ```
 */
export function recordingHandle(
  handle: OracleHandle,
  recorder: Recorder,
  name?: string,
): RecordingHandle {
  return new RecordingHandle(handle, recorder, name);
}
