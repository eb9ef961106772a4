/**
 * The oracle's one table of operations. Everything that knows about steps
 * derives from it: the trace schema ({@linkcode OPS}, `checkStep`), how the
 * runner performs a step and encodes its result, how the recorder writes a
 * call down, which steps may put an event in flight or wait for one, and
 * the differential generator's weights. Adding an operation is one entry
 * here (and, for a generated op, how the generator picks its arguments).
 *
 * @module
 */

/**
 * The kind of a step argument: a domain reference, a port reference (in
 * the space of the op's {@linkcode OpSpec.portSpace}), a plain `u32`,
 * milliseconds (0..60000) or a byte count (0..65536).
 *
 * @example
 * ```ts
 * import type { ArgKind } from "./ops.ts";
 * import assert from "node:assert/strict";
 * const kind: ArgKind = "port";
 * assert.equal(kind, "port");
 * ```
 */
export type ArgKind = "domain" | "port" | "uint" | "ms" | "bytes";

/**
 * One operation.
 *
 * @example
 * ```ts
 * import { OP_TABLE, type OpSpec } from "./ops.ts";
 * import assert from "node:assert/strict";
 * const spec: OpSpec = OP_TABLE["bind_interdomain"];
 * assert.deepEqual(Object.keys(spec.args), ["remote_domain", "remote_port"]);
 * ```
 */
export interface OpSpec {
  /**
   * Who performs it: a method of the step's handle, a dom0 hypercall, or
   * the runner itself (`open`, `close`, `read`, `settle`, which wait).
   */
  readonly on: "handle" | "hypercalls" | "runner";
  /** The step names a handle. */
  readonly handle: boolean;
  /**
   * The method called (on the handle or the `Dom0Hypercalls`), with the
   * arguments below in their order.
   */
  readonly method?: string;
  /** Arguments in call order: name → kind. */
  readonly args: Readonly<Record<string, ArgKind>>;
  /** Arguments that may be left out. */
  readonly optional?: readonly string[];
  /**
   * The domain argument whose port space the port arguments are in;
   * without it they are the local domain's.
   */
  readonly portSpace?: string;
  /** What a success returns: a new port, a status, or nothing. */
  readonly result?: "port" | "status";
  /**
   * The domain argument whose space a returned port is in; without it the
   * local domain's.
   */
  readonly resultSpace?: string;
  /** May put an event on its way to a ring (real Xen delivers by IPI). */
  readonly delivers?: boolean;
  /**
   * Its outcome depends on whether an event already reached the ring, so it
   * waits for deliveries in flight first.
   */
  readonly settlesFirst?: boolean;
  /** Relative weight in the differential generator; 0: never generated. */
  readonly weight: number;
}

/**
 * Every operation a step can perform: device operations (with a handle),
 * dom0 hypercalls (`hc.*`) and a pause (`settle`).
 *
 * @example
 * ```ts
 * import { OP_TABLE } from "./ops.ts";
 * import assert from "node:assert/strict";
 * assert.equal(OP_TABLE["hc.alloc_unbound"].method, "allocUnbound");
 * assert.equal(OP_TABLE["notify"].delivers, true);
 * ```
 */
export const OP_TABLE = {
  "open": { on: "runner", handle: true, args: {}, weight: 3 },
  "close": {
    on: "runner",
    handle: true,
    args: {},
    settlesFirst: true,
    weight: 1,
  },
  "bind_unbound_port": {
    on: "handle",
    handle: true,
    method: "bindUnboundPort",
    args: { remote_domain: "domain" },
    result: "port",
    weight: 10,
  },
  "bind_interdomain": {
    on: "handle",
    handle: true,
    method: "bindInterdomain",
    args: { remote_domain: "domain", remote_port: "port" },
    portSpace: "remote_domain",
    result: "port",
    // Xen marks the new port pending (evtchn_bind_interdomain).
    delivers: true,
    weight: 10,
  },
  "bind_virq": {
    on: "handle",
    handle: true,
    method: "bindVirq",
    args: { virq: "uint" },
    result: "port",
    weight: 4,
  },
  "unbind": {
    on: "handle",
    handle: true,
    method: "unbind",
    args: { port: "port" },
    settlesFirst: true,
    weight: 6,
  },
  "notify": {
    on: "handle",
    handle: true,
    method: "notify",
    args: { port: "port" },
    delivers: true,
    weight: 10,
  },
  "unmask": {
    on: "handle",
    handle: true,
    method: "unmask",
    args: { port: "port" },
    // A pending port fires when the kernel re-enables its IRQ.
    delivers: true,
    weight: 8,
  },
  "reset": {
    on: "handle",
    handle: true,
    method: "reset",
    args: {},
    settlesFirst: true,
    weight: 1,
  },
  "restrict_domid": {
    on: "handle",
    handle: true,
    method: "restrictDomain",
    args: { domid: "domain" },
    weight: 1,
  },
  "read": {
    on: "runner",
    handle: true,
    args: { settleMs: "ms", count: "bytes" },
    optional: ["settleMs", "count"],
    weight: 10,
  },
  "settle": { on: "runner", handle: false, args: { ms: "ms" }, weight: 0 },
  "hc.status": {
    on: "hypercalls",
    handle: false,
    method: "status",
    args: { domain: "domain", port: "port" },
    portSpace: "domain",
    result: "status",
    weight: 6,
  },
  "hc.alloc_unbound": {
    on: "hypercalls",
    handle: false,
    method: "allocUnbound",
    args: { domain: "domain", remote_domain: "domain" },
    result: "port",
    resultSpace: "domain",
    weight: 4,
  },
  "hc.reset": {
    on: "hypercalls",
    handle: false,
    method: "reset",
    args: { domain: "domain" },
    weight: 1,
  },
} as const satisfies Record<string, OpSpec>;

/**
 * The name of an operation.
 *
 * @example
 * ```ts
 * import type { OpName } from "./ops.ts";
 * import assert from "node:assert/strict";
 * const op: OpName = "hc.status";
 * assert.equal(op, "hc.status");
 * ```
 */
export type OpName = keyof typeof OP_TABLE;

/**
 * Every operation's name, in the table's order.
 *
 * @example
 * ```ts
 * import { OPS } from "./ops.ts";
 * import assert from "node:assert/strict";
 * assert.ok(OPS.includes("bind_virq"));
 * assert.equal(OPS[0], "open");
 * ```
 */
export const OPS: readonly OpName[] = Object.freeze(
  Object.keys(OP_TABLE) as OpName[],
);

/**
 * The table entry of a step's op.
 *
 * @param op The op.
 * @returns Its entry.
 *
 * @example
 * ```ts
 * import { opSpec } from "./ops.ts";
 * import assert from "node:assert/strict";
 * assert.equal(opSpec("unbind").settlesFirst, true);
 * ```
 */
export function opSpec(op: OpName): OpSpec {
  return OP_TABLE[op];
}
