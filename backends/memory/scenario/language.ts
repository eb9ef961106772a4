/**
 * The scenario language of `evtchn sim`: domains, then a script of
 * hypervisor operations, with optional fault statements (`seed`, `faults`).
 * Its types, the table of operations and their fields, and validation that
 * names the path (and, for a file, line and column) of the first thing
 * wrong. Running is in `runner.ts`. The `EVTCHNOP` operations come from the
 * model's op table (`op_table.ts`: names, argument fields and their C
 * types); this file adds only what is the scenario's own: which ops a step
 * may name, defaults, VIRQ names, documentation, and the Xen and toolstack
 * operations.
 *
 * @example
 * ```ts
 * import { validateScenario } from "./language.ts";
 * import assert from "node:assert/strict";
 * const s = validateScenario({
 *   domains: [{ id: 0, privileged: true }],
 *   steps: [{ op: "alloc_unbound", caller: 0, dom: 0, remote_dom: 0 }],
 *   seed: 7,
 *   faults: { spurious: [{ step: 1, domain: 0 }] },
 * });
 * assert.equal(s.steps.length, 1);
 * assert.throws(() => validateScenario({ domains: [], steps: [{ op: "sned" }] }), /unknown op/);
 * ```
 *
 * @module
 */

import { DOMID_SELF } from "../../../xen/domid.ts";
import { ERRNO } from "../../../xen/errno.ts";
import { parseVirq } from "../../../xen/virq.ts";
import { EventChannelError } from "../../../errors.ts";
import { checkFaults, type FaultErrno, type FaultOptions } from "../faults.ts";
import type { DomainOptions } from "../hypervisor/domain.ts";
import { EVTCHN_OPS, type OpArgType } from "../hypervisor/op_table.ts";
import type { EvtchnOpName } from "../../../xen/event_channel.ts";

// The types this module's public ones name, so that its documentation is
// complete (`deno doc --lint`).
export type { DomainOptions, FaultErrno, FaultOptions };

/** Where something is in a scenario file. */
export interface SourceLocation {
  /** Line, from 1. */
  line: number;
  /** Column, from 1. */
  column: number;
}

/** A domain of a scenario. */
export type ScenarioDomain =
  & Omit<DomainOptions, "domain">
  & {
    /** Domain id (0..0x7fef). */
    id: number;
    /** Boot a modelled Linux guest in it. Default false. */
    linux?: boolean;
    /** With `linux`, bind the kernel's own ports at boot. Default true. */
    bootPorts?: boolean;
    /** With `linux`, the event ABI the kernel sets up. Default `"fifo"`. */
    eventAbi?: "fifo" | "2l";
  };

/** An operand: a number, `"$name"` (an earlier result), or a symbolic name. */
export type Operand = number | string;

/** One step of a scenario. */
export interface ScenarioStep {
  /** The operation (see {@linkcode OPS}). */
  op: string;
  /** Name the port this step returns, for later `"$name"` operands. */
  as?: string;
  /** `"ok"` or the errno the step should give; otherwise it should succeed. */
  expect?: string;
  /** Free text. */
  comment?: string;
  /** The operation's fields. */
  [field: string]: unknown;
}

/** A scenario: domains, then steps run in order. */
export interface Scenario {
  /** A short name. */
  name?: string;
  /** What it shows. */
  description?: string;
  /** Domains created before the first step, in order. */
  domains: ScenarioDomain[];
  /** The steps. */
  steps: ScenarioStep[];
  /** The fault scheduler's seed (an integer; default 0). */
  seed?: number;
  /**
   * Faults to inject, as `MemoryXen`'s `faults` option takes them, a step
   * being a scenario step (from 1): `destroyDomain`, `spurious`, `delay`,
   * and `fail` naming a scenario op. A scenario has no handles, so no
   * `overflow`.
   */
  faults?: FaultOptions;
}

/** What a field holds. */
export type FieldKind = "domain" | "port" | "virq" | "int" | "bool" | "abi";

/** A field of an operation: its kind, and its default when optional. */
export interface FieldSpec {
  /** What it holds. */
  kind: FieldKind;
  /** Default when absent; absent and no default means required. */
  default?: number | boolean | string;
}

/** An operation of the scenario language. */
export interface OpSpec {
  /** Who does it: a calling domain (`caller` field), or Xen/the toolstack. */
  by: "caller" | "xen" | "tools";
  /**
   * Its fields, in display order (without `caller`); for an `EVTCHNOP`,
   * the op table's arguments in the order Xen reads them.
   */
  fields: Record<string, FieldSpec>;
  /** What it returns. */
  returns: "port" | "status" | "nothing";
  /** One line of documentation. */
  doc: string;
}

// The exclusions with their literal type, from which ScenarioEvtchnOp is
// computed (the exported copy below is typed for its documentation).
const EXCLUDED = {
  init_control: "it takes a guest frame, and a scenario has no guest " +
    "memory: a domain's eventAbi has its modelled Linux set FIFO up",
  expand_array: "it takes a guest frame, and a scenario has no guest " +
    "memory: the modelled Linux expands its own event array",
  reset_cont: "it resumes a preempted reset, and the model's resets " +
    "always complete (it would only give EBUSY)",
} as const satisfies Partial<Record<EvtchnOpName, string>>;

/**
 * The `EVTCHNOP`s a step cannot name, each with the reason. Every other op
 * of the model's op table (`EVTCHN_OPS`) is a scenario op.
 *
 * @example
 * ```ts
 * import { OPS, SCENARIO_EXCLUDED_EVTCHNOPS } from "./language.ts";
 * import assert from "node:assert/strict";
 * assert.ok(Object.hasOwn(SCENARIO_EXCLUDED_EVTCHNOPS, "init_control"));
 * assert.ok(!Object.hasOwn(OPS, "init_control"));
 * ```
 */
export const SCENARIO_EXCLUDED_EVTCHNOPS: Readonly<Record<string, string>> =
  Object.freeze(EXCLUDED);

/** The `EVTCHNOP`s a step can name. */
type ScenarioEvtchnOp = Exclude<EvtchnOpName, keyof typeof EXCLUDED>;

/**
 * What the scenario adds to an `EVTCHNOP`'s row of the op table: a note
 * for its one line of documentation (after `EVTCHNOP_<name>`), and
 * defaults for fields a scenario may leave out.
 */
interface EvtchnOpExtras {
  /** Appended to `EVTCHNOP_<name>` in the reference. */
  note?: string;
  /** Defaults, by field name. */
  defaults?: Readonly<Record<string, number>>;
}

/**
 * The scenario's own part of each `EVTCHNOP` it exposes, in the order the
 * reference lists them (allocation before binding, as a scenario runs).
 * Typed by the op table's names less the exclusions, so that an op added
 * to `EVTCHNOP` fails type checking until it is here or excluded.
 */
const EVTCHNOP_EXTRAS: Readonly<Record<ScenarioEvtchnOp, EvtchnOpExtras>> = {
  alloc_unbound: { note: ": a port in dom that remote_dom may bind" },
  bind_interdomain: {
    note: ": connect to an unbound port offered to caller",
  },
  bind_virq: {
    note: " (virq by number or name such as DOM_EXC)",
    defaults: { vcpu: 0 },
  },
  bind_ipi: { defaults: { vcpu: 0 } },
  bind_pirq: {
    note: " (flags 1 = BIND_PIRQ__WILL_SHARE)",
    defaults: { flags: 0 },
  },
  close: {},
  send: {},
  status: {},
  bind_vcpu: {},
  unmask: {},
  set_priority: { note: " (FIFO only: 0 highest, 15 lowest)" },
  reset: { note: " (another domain must be paused)" },
};

/**
 * What a scenario field of each C type holds. An argument named `virq`
 * (a `uint32_t`) also takes a VIRQ's name: {@linkcode FIELD_KIND_BY_NAME}.
 */
const FIELD_KIND_BY_TYPE: Readonly<Record<OpArgType, FieldKind>> = {
  domid_t: "domain",
  evtchn_port_t: "port",
  uint32_t: "int",
  xen_pfn_t: "int",
};

/** Arguments whose scenario field reads more than their C type's numbers. */
const FIELD_KIND_BY_NAME: Readonly<Record<string, FieldKind>> = {
  virq: "virq",
};

/**
 * A scenario op from an `EVTCHNOP`'s row: its fields are the row's
 * arguments, in Xen's order and under the header's names (scenario files
 * use those names: `tests/scenario/language_test.ts` holds them to the
 * documented format), called by a domain.
 */
function fromOpTable(name: ScenarioEvtchnOp, extras: EvtchnOpExtras): OpSpec {
  const op = EVTCHN_OPS[name];
  const fields: Record<string, FieldSpec> = {};
  for (const arg of op.args) {
    const kind = Object.hasOwn(FIELD_KIND_BY_NAME, arg.name)
      ? FIELD_KIND_BY_NAME[arg.name]
      : FIELD_KIND_BY_TYPE[arg.type];
    const fallback = extras.defaults?.[arg.name];
    fields[arg.name] = fallback === undefined
      ? { kind }
      : { kind, default: fallback };
  }
  for (const field of Object.keys(extras.defaults ?? {})) {
    // A default for no argument: the op table renamed or dropped one.
    if (!Object.hasOwn(fields, field)) {
      throw new Error(`scenario op ${name}: a default for no field '${field}'`);
    }
  }
  if (op.returns === "link_bits") {
    // Only init_control's, which is excluded: a step's result is a port or
    // a status.
    throw new Error(`scenario op ${name}: a link_bits result`);
  }
  return {
    by: "caller",
    fields,
    returns: op.returns,
    doc: `EVTCHNOP_${name}${extras.note ?? ""}`,
  };
}

const DOM: FieldSpec = { kind: "domain" };
const VIRQ: FieldSpec = { kind: "virq" };
const VCPU0: FieldSpec = { kind: "int", default: 0 };

/**
 * Every operation a step may name: the `EVTCHNOP`s, from the model's op
 * table, then what Xen and the toolstack do.
 *
 * @example
 * ```ts
 * import { OPS } from "./language.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual(Object.keys(OPS.bind_virq.fields), ["virq", "vcpu"]);
 * assert.equal(OPS.bind_virq.fields.vcpu.default, 0);
 * assert.equal(OPS.raise_virq.by, "xen");
 * ```
 */
export const OPS: Record<string, OpSpec> = {
  ...Object.fromEntries(
    Object.entries(EVTCHNOP_EXTRAS).map(([name, extras]) => [
      name,
      fromOpTable(name as ScenarioEvtchnOp, extras),
    ]),
  ),
  raise_virq: {
    by: "xen",
    fields: { dom: DOM, virq: VIRQ, vcpu: VCPU0 },
    returns: "nothing",
    doc: "Xen raises a VIRQ in dom",
  },
  assert_pirq: {
    by: "xen",
    fields: { dom: DOM, pirq: { kind: "int" } },
    returns: "nothing",
    doc: "a physical IRQ fires for dom",
  },
  grant_pirq: {
    by: "tools",
    fields: { dom: DOM, pirq: { kind: "int" } },
    returns: "nothing",
    doc: "let dom bind a PIRQ (irq_permit_access)",
  },
  set_virq_handler: {
    by: "tools",
    fields: { virq: VIRQ, dom: DOM },
    returns: "nothing",
    doc: "make dom the handler of a global VIRQ",
  },
  set_paused: {
    by: "tools",
    fields: { dom: DOM, paused: { kind: "bool" } },
    returns: "nothing",
    doc: "pause or unpause dom (controller pause)",
  },
  create_domain: {
    by: "tools",
    fields: {
      id: { kind: "int" },
      privileged: { kind: "bool", default: false },
      vcpus: { kind: "int", default: 1 },
      maxEvtchnPort: { kind: "int", default: -1 },
      nrPirqs: { kind: "int", default: 256 },
      paused: { kind: "bool", default: false },
      target: { kind: "int", default: -1 },
      linux: { kind: "bool", default: false },
      bootPorts: { kind: "bool", default: true },
      eventAbi: { kind: "abi", default: "fifo" },
    },
    returns: "nothing",
    doc: 'create a domain (fields as in "domains")',
  },
  destroy_domain: {
    by: "tools",
    fields: { dom: DOM },
    returns: "nothing",
    doc: "destroy dom: its peers become unbound, VIRQ_DOM_EXC is raised",
  },
};

/** A mistake in a scenario, at a path such as `steps[2].port`. */
export class ScenarioError extends Error {
  /** Where, as a path. */
  readonly path: string;
  /** Where, in the file, when known. */
  readonly location: SourceLocation | undefined;

  /**
   * Constructs a scenario error.
   *
   * @param path The path.
   * @param message What is wrong.
   * @param location Where in the file.
   */
  constructor(path: string, message: string, location?: SourceLocation) {
    super(message);
    this.name = "ScenarioError";
    this.path = path;
    this.location = location;
  }
}

/**
 * Bounds on a scenario, checked before anything runs, so that hostile input
 * is a usage error (exit 2) rather than minutes of work or an exhausted
 * heap: the most steps and domains, and the largest file `sim` reads.
 * (Nesting is bounded by the JSON reader, MAX_JSON_DEPTH in _json.ts.)
 */
export const SCENARIO_LIMITS = {
  steps: 1_000_000,
  domains: 1_000,
  bytes: 64 * 1024 * 1024,
} as const;

const ROOT_KEYS = [
  "name",
  "description",
  "domains",
  "steps",
  "seed",
  "faults",
  "comment",
];
const DOMAIN_KEYS = new Set(Object.keys(OPS.create_domain.fields));
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Checks a parsed scenario and returns it typed.
 *
 * @param value The parsed JSON.
 * @param locate Where a path is in the file, when there is a file.
 * @returns The scenario.
 * @throws {ScenarioError} At the first mistake.
 */
export function validateScenario(
  value: unknown,
  locate?: (path: string) => SourceLocation,
): Scenario {
  const fail = (path: string, message: string): never => {
    throw new ScenarioError(path, message, locate?.(path));
  };
  if (!isObject(value)) fail("", "expected an object with domains and steps");
  const root = value as Record<string, unknown>;
  for (const key of Object.keys(root)) {
    if (!ROOT_KEYS.includes(key)) {
      fail(key, `unknown key '${key}' (expected ${ROOT_KEYS.join(", ")})`);
    }
  }
  if (root.seed !== undefined && !Number.isSafeInteger(root.seed)) {
    fail("seed", "expected an integer");
  }
  if (root.faults !== undefined) {
    if (
      typeof root.faults === "object" && root.faults !== null &&
      "overflow" in root.faults
    ) {
      fail("faults.overflow", "a scenario has no handles to overflow");
    }
    try {
      checkFaults(root.faults, Object.keys(OPS));
    } catch (error) {
      if (!(error instanceof EventChannelError)) throw error;
      const path = error.argument ?? "faults";
      fail(path, error.detail ?? error.message);
    }
  }
  for (const key of ["name", "description"]) {
    if (root[key] !== undefined && typeof root[key] !== "string") {
      fail(key, "expected a string");
    }
  }
  if (!Array.isArray(root.domains)) {
    fail("domains", "expected an array of domains");
  }
  if (!Array.isArray(root.steps)) fail("steps", "expected an array of steps");
  if ((root.domains as unknown[]).length > SCENARIO_LIMITS.domains) {
    fail("domains", `more than ${SCENARIO_LIMITS.domains} domains`);
  }
  if ((root.steps as unknown[]).length > SCENARIO_LIMITS.steps) {
    fail("steps", `more than ${SCENARIO_LIMITS.steps} steps`);
  }

  const ids = new Set<number>();
  (root.domains as unknown[]).forEach((domain, i) => {
    const path = `domains[${i}]`;
    if (!isObject(domain)) fail(path, 'expected an object such as {"id": 1}');
    const d = domain as Record<string, unknown>;
    for (const key of Object.keys(d)) {
      if (!DOMAIN_KEYS.has(key)) {
        fail(
          `${path}.${key}`,
          `unknown key '${key}' (expected ${[...DOMAIN_KEYS].join(", ")})`,
        );
      }
    }
    if (d.id === undefined) fail(path, "missing 'id'");
    for (const [key, spec] of Object.entries(OPS.create_domain.fields)) {
      if (d[key] === undefined) continue;
      const ok = spec.kind === "bool"
        ? typeof d[key] === "boolean"
        : spec.kind === "abi"
        ? d[key] === "fifo" || d[key] === "2l"
        : typeof d[key] === "number" && Number.isInteger(d[key]);
      if (!ok) {
        fail(
          `${path}.${key}`,
          spec.kind === "int"
            ? "expected an integer"
            : `expected ${describeKind(spec.kind)}`,
        );
      }
    }
    if (ids.has(d.id as number)) {
      fail(`${path}.id`, `domain ${d.id} is listed twice`);
    }
    ids.add(d.id as number);
  });

  const names = new Set<string>();
  (root.steps as unknown[]).forEach((step, i) => {
    const path = `steps[${i}]`;
    if (!isObject(step)) {
      fail(path, 'expected an object such as {"op": "send", ...}');
    }
    const s = step as Record<string, unknown>;
    if (typeof s.op !== "string") fail(`${path}.op`, "missing 'op' (a string)");
    // Own properties only: "toString" or "constructor" are unknown ops, not
    // Object.prototype's members.
    if (!Object.hasOwn(OPS, s.op as string)) {
      fail(
        `${path}.op`,
        `unknown op '${clip(s.op as string)}' (expected ${
          Object.keys(OPS).join(", ")
        })`,
      );
    }
    const spec = OPS[s.op as string];
    const allowed = new Set([
      "op",
      "as",
      "expect",
      "comment",
      ...Object.keys(spec.fields),
      ...(spec.by === "caller" ? ["caller"] : []),
    ]);
    for (const key of Object.keys(s)) {
      if (!allowed.has(key)) {
        fail(
          `${path}.${key}`,
          `'${s.op}' takes no '${key}' (it takes ${
            [...allowed].slice(4).join(", ")
          })`,
        );
      }
    }
    const fields: [string, FieldSpec][] = Object.entries(spec.fields);
    if (spec.by === "caller") fields.unshift(["caller", DOM]);
    for (const [key, field] of fields) {
      const v = s[key];
      if (v === undefined) {
        if (field.default === undefined) fail(path, `'${s.op}' needs '${key}'`);
        continue;
      }
      checkOperand(`${path}.${key}`, v, field.kind, names, fail);
    }
    if (s.as !== undefined) {
      if (spec.returns !== "port") {
        fail(`${path}.as`, `'${s.op}' returns no port to name`);
      }
      if (typeof s.as !== "string" || !NAME.test(s.as)) {
        fail(`${path}.as`, 'expected a name such as "p1" (letters, digits, _)');
      }
      names.add(s.as as string);
    }
    if (s.expect !== undefined) {
      const e = s.expect;
      if (typeof e !== "string" || (e !== "ok" && !Object.hasOwn(ERRNO, e))) {
        fail(
          `${path}.expect`,
          `expected "ok" or an errno name (${Object.keys(ERRNO).join(", ")})`,
        );
      }
    }
    if (s.comment !== undefined && typeof s.comment !== "string") {
      fail(`${path}.comment`, "expected a string");
    }
  });
  return root as unknown as Scenario;
}

/** A value for a one-line message, cut short. */
function clip(text: string): string {
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

function checkOperand(
  path: string,
  value: unknown,
  kind: FieldKind,
  names: Set<string>,
  fail: (path: string, message: string) => never,
): void {
  if (kind === "bool" || kind === "abi") {
    const ok = kind === "bool"
      ? typeof value === "boolean"
      : value === "fifo" || value === "2l";
    if (!ok) fail(path, `expected ${describeKind(kind)}`);
    return;
  }
  if (typeof value === "number") {
    if (!Number.isFinite(value)) fail(path, "expected a number");
    return; // range is Xen's business: out of range gives EINVAL at run time
  }
  if (typeof value !== "string") fail(path, `expected ${describeKind(kind)}`);
  const text = value as string;
  if (text.startsWith("$")) {
    if (!names.has(text.slice(1))) {
      fail(path, `'${text}' names no earlier step's "as"`);
    }
    return;
  }
  if (kind === "domain" && text === "DOMID_SELF") return;
  if (kind === "virq" && parseVirq(text) !== undefined) return;
  fail(path, `expected ${describeKind(kind)}, got '${text}'`);
}

function describeKind(kind: FieldKind): string {
  switch (kind) {
    case "domain":
      return 'a domain id, "DOMID_SELF" or "$name"';
    case "virq":
      return 'a VIRQ number, a name such as "DOM_EXC", or "$name"';
    case "bool":
      return "true or false";
    case "abi":
      return '"fifo" or "2l"';
    default:
      return 'a number or "$name"';
  }
}

/**
 * Resolves a checked operand that is not a `$name`.
 *
 * @param value The operand.
 * @returns Its number.
 */
export function literalOperand(value: Operand): number {
  if (typeof value === "number") return value;
  if (value === "DOMID_SELF") return DOMID_SELF;
  return parseVirq(value)!;
}

/**
 * The language's reference, as `evtchn sim --help` prints it: the format,
 * an example, the keys, the fault statements and every operation.
 *
 * @returns The text (no final newline).
 *
 * @example
 * ```ts
 * import { scenarioReference } from "./language.ts";
 * import assert from "node:assert/strict";
 * assert.match(scenarioReference(), /^  alloc_unbound +caller dom remote_dom$/m);
 * ```
 */
export function scenarioReference(): string {
  return `SCENARIO FORMAT (JSON):
  {
    "name": "two-domains",                    optional
    "description": "what it shows",           optional
    "domains": [                              created first, in order
      {"id": 0, "privileged": true, "vcpus": 2},
      {"id": 1, "maxEvtchnPort": 1023, "linux": false}
    ],
    "steps": [
      {"op": "alloc_unbound", "caller": 1, "dom": 1, "remote_dom": 0, "as": "p1"},
      {"op": "bind_interdomain", "caller": 0, "remote_dom": 1,
       "remote_port": "$p1", "as": "p0"},
      {"op": "send", "caller": 0, "port": "$p0"},
      {"op": "bind_virq", "caller": 0, "virq": "TIMER", "expect": "EEXIST"}
    ]
  }

  Domain keys: id (required), privileged, vcpus, maxEvtchnPort, nrPirqs,
  paused, target, linux (boot a modelled Linux guest, which masks every port
  and takes events as they are unmasked), bootPorts (with linux: bind the
  kernel's own VIRQ_TIMER and IPIs, default true), eventAbi (with linux:
  "fifo", the default, or "2l").
  Fault statements (optional): "seed": an integer; "faults": as the API's
  MemoryXen faults option, a step being a scenario step (from 1):
    "faults": {"destroyDomain": [{"step": 3, "domain": 1}],
               "spurious": [{"step": 5, "domain": 0, "port": 1}],
               "delay": {"steps": 4, "vcpus": [1]},
               "fail": [{"op": "alloc_unbound", "call": 2, "errno": "ENOMEM"}]}
  Step keys: op; caller (the calling domain, for hypercalls); the op's
  fields; "as" names the port a step returns, and later steps use it as
  "$name"; "expect" is "ok" or an errno name (then that outcome is a
  success); "comment". Domain fields take "DOMID_SELF"; virq fields take
  names such as "DOM_EXC" or "VIRQ_DOM_EXC". Out-of-range numbers are passed
  to Xen, which refuses them with EINVAL. The full reference, and the
  examples' files, are in cli/examples/ (README.md).

OPERATIONS:
${
    Object.entries(OPS).map(([name, spec]) =>
      `  ${name.padEnd(17)} ${
        [
          ...(spec.by === "caller" ? ["caller"] : []),
          ...Object.entries(spec.fields).map(([k, f]) =>
            f.default === undefined ? k : `[${k}]`
          ),
        ].join(" ")
      }\n  ${"".padEnd(17)} ${spec.doc}`
    ).join("\n")
  }`;
}
