/**
 * The one table of `EVTCHNOP_*` operations, as `do_event_channel_op`
 * (`xen/common/event_channel.c`) switches on them: per op its command
 * number, the fields the caller fills in its argument struct
 * (`xen/include/public/event_channel.h`) with their C types, in the order
 * Xen reads them, what it returns, and the handler that runs it.
 *
 * The checks here are the C types: a value no C caller could pass (not an
 * integer, negative, beyond `domid_t` or `uint32_t`) is refused with
 * `EINVAL` before Xen looks at anything. Xen's own checks, in Xen's order,
 * are the handlers' (the `evtchn*` methods of {@linkcode Hypervisor}). Code
 * that adds an op, lists ops (the property and fuzz tests) or issues one by
 * name reads this table; nothing else spells the op vocabulary out.
 *
 * @module
 */

import { checkUint, UINT32_MAX } from "../../../util/validate.ts";
import type { ChannelStatus } from "../../../hypercalls.ts";
import { DOMID_MAX } from "../../../xen/domid.ts";
import { EVTCHNOP, type EvtchnOpName } from "../../../xen/event_channel.ts";
import type { Hypervisor } from "./hypervisor.ts";

/**
 * The C type of an argument field, which bounds it: `domid_t` (16 bits),
 * `evtchn_port_t` and `uint32_t` (32 bits), `xen_pfn_t` (a guest frame,
 * taken up to `Number.MAX_SAFE_INTEGER`).
 */
export type OpArgType = "domid_t" | "evtchn_port_t" | "uint32_t" | "xen_pfn_t";

/**
 * The largest value of each {@linkcode OpArgType}.
 *
 * @example
 * ```ts
 * import { OP_ARG_MAX } from "./op_table.ts";
 * import assert from "node:assert/strict";
 * assert.equal(OP_ARG_MAX.domid_t, 0xffff);
 * ```
 */
export const OP_ARG_MAX: Readonly<Record<OpArgType, number>> = Object.freeze({
  domid_t: DOMID_MAX,
  evtchn_port_t: UINT32_MAX,
  uint32_t: UINT32_MAX,
  xen_pfn_t: Number.MAX_SAFE_INTEGER,
});

/** One input field of an op's argument struct. */
export interface OpArg {
  /** Its name in the public header's struct (`remote_dom`, `port`, …). */
  readonly name: string;
  /** Its C type. */
  readonly type: OpArgType;
}

/** What an op gives back. */
export type OpResult = "port" | "status" | "link_bits" | "nothing";

/**
 * One row of the table.
 *
 * @example
 * ```ts
 * import { EVTCHN_OPS } from "./op_table.ts";
 * import assert from "node:assert/strict";
 * const send = EVTCHN_OPS.send;
 * assert.equal(send.cmd, 4);
 * assert.deepEqual(send.args.map((a) => a.name), ["port"]);
 * ```
 */
export interface EvtchnOp {
  /** The op's name: `EVTCHNOP_` dropped, lower case. */
  readonly name: EvtchnOpName;
  /** `EVTCHNOP_*` command number. */
  readonly cmd: number;
  /** Input fields, in the order Xen reads them. */
  readonly args: readonly OpArg[];
  /** What it returns. */
  readonly returns: OpResult;
  /**
   * The handler: Xen's checks and effects, for arguments that have their C
   * types; the calling domain is looked up (`ESRCH` if it does not exist).
   */
  readonly run: (
    xen: Hypervisor,
    caller: number,
    args: readonly number[],
  ) => number | ChannelStatus | void;
}

const dom = (name: string): OpArg => ({ name, type: "domid_t" });
const port = (name: string): OpArg => ({ name, type: "evtchn_port_t" });
const u32 = (name: string): OpArg => ({ name, type: "uint32_t" });
const gfn = (name: string): OpArg => ({ name, type: "xen_pfn_t" });

function row(
  name: EvtchnOpName,
  args: OpArg[],
  returns: OpResult,
  run: EvtchnOp["run"],
): EvtchnOp {
  return Object.freeze({
    name,
    cmd: EVTCHNOP[name],
    args: Object.freeze(args.map((a) => Object.freeze(a))),
    returns,
    run,
  });
}

/**
 * Every `EVTCHNOP_*` operation Xen 4.17 has, by name, in command order.
 *
 * @example Ops and their argument structs
 * ```ts
 * import { EVTCHN_OPS } from "./op_table.ts";
 * import assert from "node:assert/strict";
 * assert.equal(Object.keys(EVTCHN_OPS).length, 15);
 * assert.deepEqual(
 *   EVTCHN_OPS.bind_interdomain.args.map((a) => `${a.type} ${a.name}`),
 *   ["domid_t remote_dom", "evtchn_port_t remote_port"],
 * );
 * assert.equal(EVTCHN_OPS.init_control.returns, "link_bits");
 * ```
 */
export const EVTCHN_OPS: Readonly<Record<EvtchnOpName, EvtchnOp>> = Object
  .freeze({
    bind_interdomain: row(
      "bind_interdomain",
      [dom("remote_dom"), port("remote_port")],
      "port",
      (x, c, a) => x.evtchnBindInterdomain(c, a[0], a[1]),
    ),
    bind_virq: row(
      "bind_virq",
      [u32("virq"), u32("vcpu")],
      "port",
      (x, c, a) => x.evtchnBindVirq(c, a[0], a[1]),
    ),
    bind_pirq: row(
      "bind_pirq",
      [u32("pirq"), u32("flags")],
      "port",
      (x, c, a) => x.evtchnBindPirq(c, a[0], a[1]),
    ),
    close: row(
      "close",
      [port("port")],
      "nothing",
      (x, c, a) => x.evtchnClose(c, a[0]),
    ),
    send: row(
      "send",
      [port("port")],
      "nothing",
      (x, c, a) => x.evtchnSend(c, a[0]),
    ),
    status: row(
      "status",
      [dom("dom"), port("port")],
      "status",
      (x, c, a) => x.evtchnStatus(c, a[0], a[1]),
    ),
    alloc_unbound: row(
      "alloc_unbound",
      [dom("dom"), dom("remote_dom")],
      "port",
      (x, c, a) => x.evtchnAllocUnbound(c, a[0], a[1]),
    ),
    bind_ipi: row(
      "bind_ipi",
      [u32("vcpu")],
      "port",
      (x, c, a) => x.evtchnBindIpi(c, a[0]),
    ),
    bind_vcpu: row(
      "bind_vcpu",
      [port("port"), u32("vcpu")],
      "nothing",
      (x, c, a) => x.evtchnBindVcpu(c, a[0], a[1]),
    ),
    unmask: row(
      "unmask",
      [port("port")],
      "nothing",
      (x, c, a) => x.evtchnUnmask(c, a[0]),
    ),
    reset: row(
      "reset",
      [dom("dom")],
      "nothing",
      (x, c, a) => x.evtchnReset(c, a[0], false),
    ),
    init_control: row(
      "init_control",
      [gfn("control_gfn"), u32("offset"), u32("vcpu")],
      "link_bits",
      (x, c, a) => x.evtchnInitControl(c, a[0], a[1], a[2]),
    ),
    expand_array: row(
      "expand_array",
      [gfn("array_gfn")],
      "nothing",
      (x, c, a) => x.evtchnExpandArray(c, a[0]),
    ),
    set_priority: row(
      "set_priority",
      [port("port"), u32("priority")],
      "nothing",
      (x, c, a) => x.evtchnSetPriority(c, a[0], a[1]),
    ),
    reset_cont: row(
      "reset_cont",
      [dom("dom")],
      "nothing",
      (x, c, a) => x.evtchnReset(c, a[0], true),
    ),
  });

/**
 * The table's type checks for one op: each argument against its C type, in
 * order. Positional (an op has at most three fields), so that a check
 * allocates nothing.
 *
 * @param op The op.
 * @param a Its first argument, if it has one.
 * @param b Its second.
 * @param c Its third.
 * @throws {EventChannelError} `EINVAL` naming the op and the first argument
 * out of its type (a missing one included).
 *
 * @example
 * ```ts
 * import { checkOpArgs, EVTCHN_OPS } from "./op_table.ts";
 * import { EventChannelError } from "../../../errors.ts";
 * import assert from "node:assert/strict";
 * checkOpArgs(EVTCHN_OPS.status, 0x7ff0, 3);
 * assert.throws(
 *   () => checkOpArgs(EVTCHN_OPS.status, 0x10000, 3),
 *   (e) => e instanceof EventChannelError && e.argument === "dom",
 * );
 * ```
 */
export function checkOpArgs(
  op: EvtchnOp,
  a?: unknown,
  b?: unknown,
  c?: unknown,
): void {
  const fields = op.args;
  const n = fields.length;
  if (n > 0) checkUint(op.name, fields[0].name, a, OP_ARG_MAX[fields[0].type]);
  if (n > 1) checkUint(op.name, fields[1].name, b, OP_ARG_MAX[fields[1].type]);
  if (n > 2) checkUint(op.name, fields[2].name, c, OP_ARG_MAX[fields[2].type]);
}
