/**
 * The oracle's trace format: JSON Lines, one header line then one line per
 * step, with ports and domains written as references that mean the same
 * thing on every host (see `oracle/FORMAT.md`). Parsing is strict and every
 * complaint names its line.
 *
 * @module
 */

import { checkHostSnapshot, type HostSnapshot } from "../host.ts";

import { tooDeep } from "../util/json_scan.ts";
import { type ArgKind, OP_TABLE, type OpName, OPS, opSpec } from "./ops.ts";

/** The only trace version this module reads and writes. */
export const TRACE_VERSION = 1;

/**
 * Limits on what {@linkcode parseTrace} accepts, so that hostile input gives
 * a {@linkcode TraceParseError} rather than exhausting stack or memory:
 * `depth` is the deepest JSON nesting of one line (a step needs 5; deeper
 * nesting would overflow the stack of recursive walks such as comparing
 * outcomes), checked by a linear scan before `JSON.parse`; `steps` the most
 * steps; `bytes` the longest text (UTF-16 units) and `lineBytes` the longest
 * line.
 *
 * @example
 * ```ts
 * import { TRACE_LIMITS } from "./trace.ts";
 * import assert from "node:assert/strict";
 * assert.equal(TRACE_LIMITS.depth, 32);
 * ```
 */
export const TRACE_LIMITS: {
  readonly depth: number;
  readonly steps: number;
  readonly bytes: number;
  readonly lineBytes: number;
} = {
  depth: 32,
  steps: 2_000_000,
  bytes: 256 * 1024 * 1024,
  lineBytes: 1024 * 1024,
};

/**
 * A JSON value, as traces hold them.
 *
 * @example
 * ```ts
 * import type { JsonValue } from "./trace.ts";
 * import assert from "node:assert/strict";
 * const value: JsonValue = { rel: 0 };
 * assert.equal(JSON.stringify(value), '{"rel":0}');
 * ```
 */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | JsonValue[]
  | { [key: string]: JsonValue };

/**
 * A domain as a trace names it: the recording domain (`local`, dom0 on a
 * real host and in the model), the replayer's fresh second domain (`peer`),
 * or a literal id that means the same everywhere (`abs`, such as 32752 =
 * `DOMID_SELF` or a domain that exists nowhere).
 *
 * @example
 * ```ts
 * import { type DomainRef, parseTrace } from "./trace.ts";
 * import assert from "node:assert/strict";
 * const peer: DomainRef = { dom: "peer" };
 * const line = { op: "hc.reset", args: { domain: peer } };
 * assert.deepEqual(parseTrace(JSON.stringify(line)).steps[0].args.domain, peer);
 * ```
 */
export type DomainRef = { dom: "local" | "peer" } | { abs: number };

/**
 * A port as a trace names it, within the space of one domain (given by the
 * op's domain argument): `rel` = offset from the first port the trace
 * allocated in that domain; `abs` = a literal number (port 0, ports beyond
 * the device's limit); `bucketEnd` = offset from the first multiple of 64
 * above every port seen in that domain (Xen's port storage grows in buckets
 * of 64, so `{bucketEnd: 0}` is the first port without storage).
 *
 * @example
 * ```ts
 * import { parseTrace, type PortRef } from "./trace.ts";
 * import assert from "node:assert/strict";
 * const edge: PortRef = { bucketEnd: 0 };
 * const line = { op: "hc.status", args: { domain: { dom: "peer" }, port: edge } };
 * assert.deepEqual(parseTrace(JSON.stringify(line)).steps[0].args.port, edge);
 * ```
 */
export type PortRef = { rel: number } | { abs: number } | { bucketEnd: number };

/**
 * How a `read` is compared: `coalesce` compares the set of ports delivered
 * (their count depends on timing); `drain` only checks that the read
 * succeeded (or failed the same way). Without it, reads compare as
 * multisets (arrival order across vCPUs is timing).
 *
 * @example
 * ```ts
 * import { parseTrace, type Timing } from "./trace.ts";
 * import assert from "node:assert/strict";
 * const timing: Timing = "coalesce";
 * const line = { handle: "h0", op: "read", args: {}, timing };
 * assert.equal(parseTrace(JSON.stringify(line)).steps[0].timing, "coalesce");
 * ```
 */
export type Timing = "coalesce" | "drain";

/**
 * What a step produced: a JSON result (ports as {@linkcode PortRef}s,
 * domains as {@linkcode DomainRef}s), or an errno. Code `ORACLE` marks a
 * step the oracle could not apply (an unknown handle, a reference it cannot
 * resolve).
 *
 * @example
 * ```ts
 * import { type Outcome, parseTrace } from "./trace.ts";
 * import assert from "node:assert/strict";
 * const refused: Outcome = { error: { code: "ENOTCONN", errno: 107 } };
 * const line = { handle: "h0", op: "reset", args: {}, outcome: refused };
 * assert.deepEqual(parseTrace(JSON.stringify(line)).steps[0].outcome, refused);
 * ```
 */
export type Outcome =
  | { ok: JsonValue }
  | { error: { code: string; errno: number; message?: string } };

/**
 * The first line of a trace: where it was recorded.
 *
 * @example
 * ```ts
 * import { formatTrace, parseTrace, type TraceHeader } from "./trace.ts";
 * import assert from "node:assert/strict";
 * const header: TraceHeader = {
 *   type: "header",
 *   version: 1,
 *   backend: "memory",
 *   xen: "4.17 (model)",
 *   kernel: "6.1 (model)",
 *   abi: "2l",
 *   vcpus: 2,
 *   recorded: "2025-01-01T00:00:00.000Z",
 * };
 * assert.deepEqual(parseTrace(formatTrace({ header, steps: [] })).header, header);
 * ```
 */
export interface TraceHeader {
  /** Always `"header"`. */
  type: "header";
  /** {@linkcode TRACE_VERSION}. */
  version: number;
  /** The backend that produced the outcomes (`memory`, `linux`, …). */
  backend: string;
  /** The hypervisor's version. */
  xen: string;
  /** The recording domain's kernel release. */
  kernel: string;
  /** The recording domain's event ABI: `fifo`, `2l` or `unknown`. */
  abi: string;
  /** The recording domain's vCPUs (the model replays with as many). */
  vcpus: number;
  /** When, as an ISO 8601 date. */
  recorded: string;
  /** The built-in scenario recorded, if any. */
  scenario?: string;
  /** Anything else worth knowing. */
  note?: string;
  /**
   * The recording host's snapshot when the trace began (real hosts): a
   * replay on the model boots from it, so absolute ports and vCPUs agree.
   */
  host?: HostSnapshot;
}

/**
 * A step to perform, without its outcome: what scenarios and random
 * sequences are made of.
 *
 * @example
 * ```ts
 * import type { StepInput } from "./trace.ts";
 * import { recordSteps } from "./record.ts";
 * import { memoryBackend } from "./backends.ts";
 * import assert from "node:assert/strict";
 * const step: StepInput = {
 *   handle: "h0",
 *   op: "bind_unbound_port",
 *   args: { remote_domain: { dom: "local" } },
 * };
 * const open: StepInput = { handle: "h0", op: "open", args: {} };
 * const trace = await recordSteps([open, step], memoryBackend());
 * assert.deepEqual(trace.steps[1].outcome, { ok: { rel: 0 } });
 * ```
 */
export interface StepInput {
  /** The handle (`h0`, `h1`, …) for device operations; none otherwise. */
  handle?: string;
  /** The operation. */
  op: OpName;
  /** Its arguments, with references (see the op table in FORMAT.md). */
  args: Record<string, JsonValue>;
  /** How a `read` is compared. */
  timing?: Timing;
  /**
   * Fields of an object result not to compare (such as `["vcpu"]` where a
   * host's kernel decides it from state the trace does not capture).
   */
  ignore?: string[];
  /** A comment for human readers. */
  note?: string;
}

/**
 * One step line: a {@linkcode StepInput} with its index and, once recorded,
 * its outcome.
 *
 * @example
 * ```ts
 * import { formatTrace, parseTrace, type TraceStep } from "./trace.ts";
 * import assert from "node:assert/strict";
 * const step: TraceStep = {
 *   type: "step",
 *   i: 0,
 *   handle: "h0",
 *   op: "open",
 *   args: {},
 *   outcome: { ok: null },
 * };
 * assert.deepEqual(parseTrace(formatTrace({ steps: [step] })).steps, [step]);
 * ```
 */
export interface TraceStep extends StepInput {
  /** Always `"step"`. */
  type: "step";
  /** The step's index. */
  i: number;
  /** What it produced when recorded. */
  outcome?: Outcome;
}

/**
 * A whole trace.
 *
 * @example
 * ```ts
 * import { parseTrace, type Trace } from "./trace.ts";
 * import assert from "node:assert/strict";
 * const empty: Trace = parseTrace("");
 * assert.deepEqual(empty.steps, []);
 * ```
 */
export interface Trace {
  /** The header, when the text had one. */
  header?: TraceHeader;
  /** The steps, in order. */
  steps: TraceStep[];
  /** The text line of each step (1-based), when parsed from text. */
  lines?: number[];
}

/**
 * A trace that cannot be read: names the (1-based) line and column.
 *
 * @example
 * ```ts
 * import { parseTrace, TraceParseError } from "./trace.ts";
 * import assert from "node:assert/strict";
 * assert.throws(() => parseTrace("{oops"), TraceParseError);
 * try {
 *   parseTrace('\n{"op": "toString"}');
 * } catch (error) {
 *   assert.ok(error instanceof TraceParseError);
 *   assert.equal(error.line, 2);
 *   assert.equal(error.column, 8); // at "toString"
 * }
 * ```
 */
export class TraceParseError extends Error {
  /** The offending line, 1-based. */
  readonly line: number;
  /** The column of the problem in that line, 1-based (1 when unknown). */
  readonly column: number;

  /**
   * Creates the error; the message is prefixed with the line and column.
   *
   * @param line The 1-based line.
   * @param message What is wrong.
   * @param column The 1-based column.
   */
  constructor(line: number, message: string, column = 1) {
    super(`line ${line}, column ${column}: ${message}`);
    this.name = "TraceParseError";
    this.line = line;
    this.column = column;
  }
}

/**
 * Options for {@linkcode parseTrace}.
 *
 * @example
 * ```ts
 * import { type ParseOptions, parseTrace } from "./trace.ts";
 * import assert from "node:assert/strict";
 * const options: ParseOptions = { requireOutcomes: true };
 * const noOutcome = '{"handle":"h0","op":"open","args":{}}';
 * assert.equal(parseTrace(noOutcome).steps.length, 1);
 * assert.throws(() => parseTrace(noOutcome, options));
 * ```
 */
export interface ParseOptions {
  /** Every step must carry an outcome (for replay). Default false. */
  requireOutcomes?: boolean;
}

/**
 * The largest `count` a `read` step may ask for: Linux caps each read at
 * 4096 bytes, so anything larger only checks the cap.
 */
const MAX_READ_BYTES = 65_536;

const HANDLE_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,31}$/;
const STEP_KEYS = new Set([
  "type",
  "i",
  "handle",
  "op",
  "args",
  "timing",
  "ignore",
  "note",
  "outcome",
]);
const HEADER_KEYS = new Set([
  "type",
  "version",
  "backend",
  "xen",
  "kernel",
  "abi",
  "vcpus",
  "recorded",
  "scenario",
  "note",
  "host",
]);

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isInt(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value);
}

function describe(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}

/**
 * Checks a domain reference; a bare integer is accepted as `{abs: N}`.
 * Returns the normal form, or a complaint.
 */
function checkDomainRef(value: unknown): DomainRef | string {
  if (isInt(value)) return value >= 0 ? { abs: value } : "negative domain";
  if (!isObject(value)) {
    return `expected a domain reference ({"dom":"local"|"peer"} or {"abs":N}), got ${
      describe(value)
    }`;
  }
  const keys = Object.keys(value);
  if (keys.length === 1 && (value.dom === "local" || value.dom === "peer")) {
    return { dom: value.dom };
  }
  if (keys.length === 1 && isInt(value.abs) && value.abs >= 0) {
    return { abs: value.abs };
  }
  return `bad domain reference ${describe(value)}`;
}

/**
 * Checks a port reference; a bare integer is accepted as `{abs: N}`.
 * Returns the normal form, or a complaint.
 */
function checkPortRef(value: unknown): PortRef | string {
  if (isInt(value)) return value >= 0 ? { abs: value } : "negative port";
  if (!isObject(value)) {
    return `expected a port reference ({"rel":k}, {"abs":N} or {"bucketEnd":k}), got ${
      describe(value)
    }`;
  }
  const keys = Object.keys(value);
  if (keys.length === 1 && isInt(value.rel)) return { rel: value.rel };
  if (keys.length === 1 && isInt(value.abs) && value.abs >= 0) {
    return { abs: value.abs };
  }
  if (keys.length === 1 && isInt(value.bucketEnd)) {
    return { bucketEnd: value.bucketEnd };
  }
  return `bad port reference ${describe(value)}`;
}

function checkOutcome(value: unknown): Outcome | string {
  if (!isObject(value)) {
    return `outcome must be an object, got ${describe(value)}`;
  }
  const keys = Object.keys(value);
  if (keys.length === 1 && keys[0] === "ok") {
    return { ok: value.ok as JsonValue };
  }
  if (keys.length === 1 && keys[0] === "error") {
    const error = value.error;
    if (
      isObject(error) && typeof error.code === "string" && error.code !== "" &&
      isInt(error.errno) &&
      (error.message === undefined || typeof error.message === "string")
    ) {
      const out: { code: string; errno: number; message?: string } = {
        code: error.code,
        errno: error.errno,
      };
      if (error.message !== undefined) out.message = error.message;
      return { error: out };
    }
    return `bad error outcome ${
      describe(error)
    } (need {"code":"E…","errno":N})`;
  }
  return `outcome must be {"ok":…} or {"error":{…}}, got ${describe(value)}`;
}

/**
 * Checks one step object (parsed JSON) and returns its normal form, or a
 * complaint. Bare integers in port and domain arguments become `{abs: N}`.
 *
 * @param value The parsed object.
 * @param index The step's position, used when it has no `i`.
 * @returns The step, or what is wrong with it.
 *
 * @example
 * ```ts
 * import { checkStep } from "./trace.ts";
 * import assert from "node:assert/strict";
 * const step = checkStep({ op: "unbind", handle: "h0", args: { port: 70000 } }, 0);
 * assert.deepEqual(typeof step === "string" ? step : step.args, {
 *   port: { abs: 70000 },
 * });
 * ```
 */
export function checkStep(value: unknown, index: number): TraceStep | string {
  if (!isObject(value)) {
    return `a step must be an object, got ${describe(value)}`;
  }
  for (const key of Object.keys(value)) {
    if (!STEP_KEYS.has(key)) return `unknown key "${key}" in step`;
  }
  if (value.type !== undefined && value.type !== "step") {
    return `"type" must be "step" or "header", got ${describe(value.type)}`;
  }
  const op = value.op;
  // Own properties only: "toString" or "__proto__" must be unknown ops, not
  // Object.prototype's members.
  if (typeof op !== "string" || !Object.hasOwn(OP_TABLE, op)) {
    return `unknown op ${describe(op)} (known: ${OPS.join(", ")})`;
  }
  const schema = opSpec(op as OpName);
  const step: TraceStep = {
    type: "step",
    i: index,
    op: op as OpName,
    args: {},
  };
  if (value.i !== undefined) {
    if (!isInt(value.i) || value.i < 0) {
      return `"i" must be a non-negative integer, got ${describe(value.i)}`;
    }
    step.i = value.i;
  }
  if (schema.handle) {
    if (typeof value.handle !== "string" || !HANDLE_NAME.test(value.handle)) {
      return `op ${op} needs a "handle" name such as "h0", got ${
        describe(value.handle)
      }`;
    }
    step.handle = value.handle;
  } else if (value.handle !== undefined) {
    return `op ${op} takes no "handle"`;
  }
  const args = value.args ?? {};
  if (!isObject(args)) return `"args" must be an object, got ${describe(args)}`;
  for (const key of Object.keys(args)) {
    if (!Object.hasOwn(schema.args, key)) {
      return `op ${op} has no argument "${key}" (takes: ${
        Object.keys(schema.args).join(", ") || "none"
      })`;
    }
  }
  for (
    const [name, kind] of Object.entries(schema.args) as [string, ArgKind][]
  ) {
    const arg = args[name];
    if (arg === undefined) {
      if (schema.optional?.includes(name)) continue;
      return `op ${op} needs argument "${name}"`;
    }
    let checked: JsonValue | string;
    switch (kind) {
      case "domain":
        checked = checkDomainRef(arg);
        break;
      case "port":
        checked = checkPortRef(arg);
        break;
      case "uint":
        checked = isInt(arg) && arg >= 0 && arg <= 0xffff_ffff
          ? arg
          : `"${name}" must be an integer in 0..4294967295, got ${
            describe(arg)
          }`;
        break;
      case "ms":
        checked = isInt(arg) && arg >= 0 && arg <= 60_000
          ? arg
          : `"${name}" must be milliseconds in 0..60000, got ${describe(arg)}`;
        break;
      case "bytes":
        checked = isInt(arg) && arg >= 0 && arg <= MAX_READ_BYTES
          ? arg
          : `"${name}" must be bytes in 0..${MAX_READ_BYTES}, got ${
            describe(arg)
          }`;
        break;
    }
    if (typeof checked === "string") return `op ${op}: ${checked}`;
    step.args[name] = checked;
  }
  if (value.timing !== undefined) {
    if (op !== "read") return `"timing" applies only to read`;
    if (value.timing !== "coalesce" && value.timing !== "drain") {
      return `"timing" must be "coalesce" or "drain", got ${
        describe(value.timing)
      }`;
    }
    step.timing = value.timing;
  }
  if (value.ignore !== undefined) {
    if (
      !Array.isArray(value.ignore) ||
      !value.ignore.every((f) => typeof f === "string" && f !== "")
    ) {
      return `"ignore" must be a list of result field names`;
    }
    step.ignore = [...value.ignore];
  }
  if (value.note !== undefined) {
    if (typeof value.note !== "string") return `"note" must be a string`;
    step.note = value.note;
  }
  if (value.outcome !== undefined) {
    const outcome = checkOutcome(value.outcome);
    if (typeof outcome === "string") return outcome;
    step.outcome = outcome;
  }
  return step;
}

function checkHeader(value: Record<string, unknown>): TraceHeader | string {
  for (const key of Object.keys(value)) {
    if (!HEADER_KEYS.has(key)) return `unknown key "${key}" in header`;
  }
  if (value.version !== TRACE_VERSION) {
    return `unsupported trace version ${
      describe(value.version)
    } (this oracle reads ${TRACE_VERSION})`;
  }
  for (const key of ["backend", "xen", "kernel", "abi", "recorded"]) {
    if (typeof value[key] !== "string") {
      return `header needs a string "${key}"`;
    }
  }
  if (!isInt(value.vcpus) || value.vcpus < 1 || value.vcpus > 128) {
    return `header "vcpus" must be an integer in 1..128, got ${
      describe(value.vcpus)
    }`;
  }
  for (const key of ["scenario", "note"]) {
    if (value[key] !== undefined && typeof value[key] !== "string") {
      return `header "${key}" must be a string`;
    }
  }
  if (value.host !== undefined) {
    try {
      checkHostSnapshot(value.host);
    } catch (error) {
      return `header "host": ${(error as Error).message}`;
    }
  }
  return value as unknown as TraceHeader;
}

/**
 * Parses JSON Lines text into a trace. Blank lines are skipped; the header,
 * if any, must come first; step indices must increase.
 *
 * @param text The trace.
 * @param options Whether outcomes are required.
 * @returns The trace.
 * @throws {TraceParseError} naming the first bad line.
 *
 * @example
 * ```ts
 * import { parseTrace } from "./trace.ts";
 * import assert from "node:assert/strict";
 * const trace = parseTrace(
 *   '{"type":"step","i":0,"handle":"h0","op":"open","args":{},"outcome":{"ok":null}}\n',
 *   { requireOutcomes: true },
 * );
 * assert.equal(trace.steps[0].op, "open");
 * ```
 */
export function parseTrace(text: string, options: ParseOptions = {}): Trace {
  if (text.length > TRACE_LIMITS.bytes) {
    throw new TraceParseError(
      1,
      `the trace is ${text.length} characters long; at most ${TRACE_LIMITS.bytes} are read`,
    );
  }
  const trace: Trace = { steps: [], lines: [] };
  let last = -1;
  let lineNo = 0;
  // Line by line with indexOf, not split(): no second copy of a large text.
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf("\n", start);
    if (end === -1) end = text.length;
    lineNo++;
    const lineStart = start;
    start = end + 1;
    const raw = text.slice(lineStart, end);
    const line = raw.trim();
    if (line === "") continue;
    // Columns count from the line as written, before trimming.
    const indent = raw.length - raw.trimStart().length;
    const fail = (message: string, offset = 0): never => {
      throw new TraceParseError(lineNo, message, indent + offset + 1);
    };
    if (line.length > TRACE_LIMITS.lineBytes) {
      fail(
        `the line is ${line.length} characters long; at most ${TRACE_LIMITS.lineBytes}`,
      );
    }
    const deep = tooDeep(line, TRACE_LIMITS.depth);
    if (deep !== -1) {
      fail(`JSON nested deeper than ${TRACE_LIMITS.depth} levels`, deep);
    }
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      const message = (error as Error).message;
      const at = /at position (\d+)/.exec(message);
      fail(`not JSON (${message})`, at === null ? 0 : Number(at[1]));
    }
    if (isObject(value) && value.type === "header") {
      if (trace.header !== undefined || trace.steps.length > 0) {
        fail("a header may only be the first line");
      }
      const header = checkHeader(value);
      if (typeof header === "string") fail(header);
      trace.header = header as TraceHeader;
      continue;
    }
    const step = checkStep(value, last + 1);
    if (typeof step === "string") fail(step, keyColumn(line, step));
    const checked = step as TraceStep;
    if (checked.i <= last) {
      fail(
        `step index ${checked.i} does not follow ${last}`,
        keyOffset(line, "i"),
      );
    }
    if (options.requireOutcomes && checked.outcome === undefined) {
      fail(
        `step ${checked.i} (${checked.op}) has no "outcome"; record the trace first`,
      );
    }
    if (trace.steps.length >= TRACE_LIMITS.steps) {
      fail(`more than ${TRACE_LIMITS.steps} steps`);
    }
    last = checked.i;
    trace.steps.push(checked);
    trace.lines!.push(lineNo);
  }
  return trace;
}

/** The offset of `"key"` as a key in a line, or 0 when it is not there. */
function keyOffset(line: string, key: string): number {
  const at = line.indexOf(`"${key}"`);
  return at === -1 ? 0 : at;
}

/**
 * Where in its line a complaint about a step points: at the key it is
 * about (the first quoted key of the complaint that the line has, such as
 * `"op"` for an unknown op), else at the line's start.
 */
function keyColumn(line: string, complaint: string): number {
  const named = /\b(op|args|handle|timing|ignore|note|outcome|i|type)\b/.exec(
    complaint,
  );
  const quoted = /"([^"]+)"/.exec(complaint);
  for (const key of [quoted?.[1], named?.[1]]) {
    if (key !== undefined && line.includes(`"${key}"`)) {
      return keyOffset(line, key);
    }
  }
  return 0;
}

/**
 * One step as its JSON line, keys in a fixed order.
 *
 * @param step The step.
 * @returns The line, without a newline.
 *
 * @example
 * ```ts
 * import { formatStep } from "./trace.ts";
 * import assert from "node:assert/strict";
 * assert.equal(
 *   formatStep({ type: "step", i: 3, handle: "h0", op: "reset", args: {} }),
 *   '{"type":"step","i":3,"handle":"h0","op":"reset","args":{}}',
 * );
 * ```
 */
export function formatStep(step: TraceStep): string {
  const out: Record<string, unknown> = { type: "step", i: step.i };
  if (step.handle !== undefined) out.handle = step.handle;
  out.op = step.op;
  out.args = step.args;
  if (step.timing !== undefined) out.timing = step.timing;
  if (step.ignore !== undefined) out.ignore = step.ignore;
  if (step.note !== undefined) out.note = step.note;
  if (step.outcome !== undefined) out.outcome = step.outcome;
  return JSON.stringify(out);
}

/**
 * A whole trace as JSON Lines text (header first, trailing newline).
 *
 * @param trace The trace.
 * @returns The text.
 *
 * @example
 * ```ts
 * import { formatTrace, parseTrace } from "./trace.ts";
 * import assert from "node:assert/strict";
 * const text = formatTrace({
 *   steps: [{ type: "step", i: 0, handle: "h0", op: "open", args: {} }],
 * });
 * assert.deepEqual(parseTrace(text).steps[0].op, "open");
 * ```
 */
export function formatTrace(trace: Trace): string {
  const lines: string[] = [];
  if (trace.header !== undefined) {
    const h = trace.header;
    const header: Record<string, unknown> = {
      type: "header",
      version: h.version,
      backend: h.backend,
      xen: h.xen,
      kernel: h.kernel,
      abi: h.abi,
      vcpus: h.vcpus,
      recorded: h.recorded,
    };
    if (h.scenario !== undefined) header.scenario = h.scenario;
    if (h.note !== undefined) header.note = h.note;
    if (h.host !== undefined) header.host = h.host;
    lines.push(JSON.stringify(header));
  }
  for (const step of trace.steps) lines.push(formatStep(step));
  return lines.join("\n") + "\n";
}

/**
 * Numbers step inputs as trace steps (0, 1, 2, …), dropping any outcome.
 *
 * @param inputs The steps.
 * @returns Fresh trace steps.
 *
 * @example
 * ```ts
 * import { toSteps } from "./trace.ts";
 * import assert from "node:assert/strict";
 * assert.equal(toSteps([{ handle: "h0", op: "open", args: {} }])[0].i, 0);
 * ```
 */
export function toSteps(inputs: readonly StepInput[]): TraceStep[] {
  return inputs.map((input, i) => {
    const step: TraceStep = {
      type: "step",
      i,
      op: input.op,
      args: input.args,
    };
    if (input.handle !== undefined) step.handle = input.handle;
    if (input.timing !== undefined) step.timing = input.timing;
    if (input.ignore !== undefined) step.ignore = input.ignore;
    if (input.note !== undefined) step.note = input.note;
    return step;
  });
}
