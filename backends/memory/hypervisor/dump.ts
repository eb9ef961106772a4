/**
 * A domain's channel table as Xen's `xl debug-keys e` prints it
 * (`domain_dump_evtchn_info` in `xen/common/event_channel.c`, with the ABIs'
 * `print_state`), from the model's read-only rows or from a real host's
 * snapshot (`hostDumpRows`), so that `evtchn sim` and `evtchn snapshot`
 * print the same table:
 *
 *     port [p/m/s]: s=STATE n=VCPU x=XEN  d=DOM p=PORT | v=VIRQ | p=PIRQ  NAME
 *
 * A real host's `EVTCHNOP_status` does not tell the pending, mask and
 * selector bits or whether Xen consumes the port: those print as `?`.
 *
 * @example
 * ```ts
 * import { dumpLines, dumpRow } from "./dump.ts";
 * import { MemoryXen } from "../mod.ts";
 * import assert from "node:assert/strict";
 * const xen = new MemoryXen({ eventAbi: "2l", bootPorts: false });
 * xen.hypercalls(0).allocUnbound(0, 1);
 * const rows = xen.ports(0).map(dumpRow);
 * assert.deepEqual(dumpLines(rows), [
 *   "       1 [0/1/0]: s=2 n=0 x=0 d=1  unbound", // Linux masks every port
 * ]);
 * ```
 *
 * @module
 */

import type { PortInfo } from "./inspect.ts";
import type { HostSnapshot } from "../../../host.ts";
import { ECS } from "./domain.ts";
import { virqName } from "../../../xen/virq.ts";

/** A row of the dump, as `evtchn sim --json` prints it. */
export interface DumpRow {
  /** The port. */
  port: number;
  /** Xen's state, by name. */
  state: string;
  /** Xen's state number (`s=`). */
  ecs: number;
  /** Notify vCPU (`n=`). */
  vcpu: number;
  /** Pending bit (`undefined`: not known, as on a real host). */
  pending: boolean | undefined;
  /** Mask bit (`undefined`: not known). */
  masked: boolean | undefined;
  /** 2-level selector bit; `null` under FIFO (`undefined`: not known). */
  selector: boolean | null | undefined;
  /** Xen consumes the local end (`x=`; `undefined`: not known). */
  xen: boolean | undefined;
  /** FIFO event word and priority, once the port has a word. */
  fifo?: { linked: boolean; busy: boolean; link: number; priority: number };
  /** Unbound: the allowed remote; interdomain: the peer domain. */
  remoteDomain?: number;
  /** Interdomain: the peer port. */
  remotePort?: number;
  /** VIRQ number. */
  virq?: number;
  /** VIRQ name, such as `VIRQ_TIMER`. */
  virqName?: string;
  /** PIRQ number. */
  pirq?: number;
}

/**
 * A dump row from the model's row of a port.
 *
 * @param p The port's row (`MemoryXen.ports`, `inspectPorts`).
 * @returns The dump row (its fields in the order `sim --json` prints them).
 */
export function dumpRow(p: PortInfo): DumpRow {
  const row: DumpRow = {
    port: p.port,
    state: p.state,
    ecs: p.ecs,
    vcpu: p.vcpu,
    pending: p.pending,
    masked: p.masked,
    selector: p.selector,
    xen: p.xen,
  };
  if (p.fifo !== undefined) row.fifo = { ...p.fifo };
  if (p.state === "unbound" || p.state === "interdomain") {
    row.remoteDomain = p.remoteDomain;
  }
  if (p.state === "interdomain") row.remotePort = p.remotePort;
  if (p.state === "virq" && p.virq !== undefined) {
    row.virq = p.virq;
    row.virqName = virqName(p.virq);
  }
  if (p.state === "pirq") row.pirq = p.pirq;
  return row;
}

function bit(value: boolean | undefined): string {
  return value === undefined ? "?" : value ? "1" : "0";
}

/** Xen's `evtchn_port_print_state`: the selector bit, or FIFO's B and link. */
function printState(row: DumpRow): string {
  if (row.selector !== null) return bit(row.selector);
  const f = row.fifo;
  if (f === undefined) return "?     ";
  return `${f.busy ? "B" : " "} ${
    f.linked ? String(f.link).padEnd(4) : "-   "
  }`;
}

/**
 * The largest `f(item)`, or 0 for none. Not `Math.max(...items.map(f))`:
 * spreading passes every item as an argument on the stack, which overflows
 * beyond ~10⁵ items.
 *
 * @param items The items.
 * @param f Their measure.
 * @returns The largest.
 */
export function maxOf<T>(items: readonly T[], f: (item: T) => number): number {
  let max = 0;
  for (const item of items) max = Math.max(max, f(item));
  return max;
}

/**
 * The dump's lines, one per port, the state names aligned.
 *
 * @param rows The rows, ascending.
 * @returns The lines.
 */
export function dumpLines(rows: readonly DumpRow[]): string[] {
  const lines = rows.map((row) => {
    let line = `    ${String(row.port).padStart(4)} [${bit(row.pending)}/${
      bit(row.masked)
    }/${printState(row)}]: s=${row.ecs} n=${row.vcpu} x=${bit(row.xen)}`;
    let name = row.state;
    if (row.remotePort !== undefined) {
      line += ` d=${row.remoteDomain} p=${row.remotePort}`;
    } else if (row.remoteDomain !== undefined) {
      line += ` d=${row.remoteDomain}`;
    } else if (row.virq !== undefined) {
      line += ` v=${row.virq}`;
      name += ` ${row.virqName}`;
    } else if (row.pirq !== undefined) {
      line += ` p=${row.pirq}`;
    }
    return [line, name];
  });
  const width = maxOf(lines, ([line]) => line.length);
  return lines.map(([line, name]) => `${line.padEnd(width)}  ${name}`);
}

/**
 * The rows of a host snapshot (`snapshotHost()` on a real dom0, or
 * `MemoryXen.snapshot()`), for {@linkcode dumpLines}: what
 * `EVTCHNOP_status` tells, the rest unknown.
 *
 * @param snapshot The snapshot.
 * @returns One row per port in use.
 *
 * @example
 * ```ts
 * import { dumpLines, hostDumpRows } from "./dump.ts";
 * import { MemoryXen } from "../mod.ts";
 * import assert from "node:assert/strict";
 * const lines = dumpLines(hostDumpRows(new MemoryXen().snapshot()));
 * assert.match(lines[0], /^ {7}1 \[\?\/\?\/\?\]: s=5 n=0 x=\? v=0 +virq VIRQ_TIMER$/);
 * ```
 */
export function hostDumpRows(snapshot: HostSnapshot): DumpRow[] {
  return snapshot.ports.map((p) => {
    const row: DumpRow = {
      port: p.port,
      state: p.status,
      ecs: ECS[p.status.toUpperCase() as keyof typeof ECS],
      vcpu: p.vcpu,
      pending: undefined,
      masked: undefined,
      selector: undefined,
      xen: undefined,
    };
    switch (p.status) {
      case "unbound":
        row.remoteDomain = p.remoteDomain;
        break;
      case "interdomain":
        row.remoteDomain = p.remoteDomain;
        row.remotePort = p.remotePort;
        break;
      case "virq":
        row.virq = p.virq;
        row.virqName = virqName(p.virq);
        break;
      case "pirq":
        row.pirq = p.pirq;
        break;
    }
    return row;
  });
}
