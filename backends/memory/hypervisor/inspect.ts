/**
 * A read-only view of the model, as Xen's `xl debug-keys e` handler
 * (`domain_dump_evtchn_info` in `xen/common/event_channel.c`, with the ABIs'
 * `print_state` from `event_2l.c` and `event_fifo.c`) reads it: one row per
 * port in use, and per domain the facts that dump and `xl list` show. Rows
 * are plain frozen objects, built on request, so that callers never hold the
 * model's own arrays.
 *
 * @module
 */

import { ECS, ECS_NAME, type EcsName } from "./domain.ts";
import type { Domain } from "./domain.ts";
import { FifoAbi } from "./event_fifo.ts";
import {
  EVTCHN_FIFO_BIT,
  EVTCHN_FIFO_LINK_MASK,
} from "../../../xen/event_channel.ts";
import type { Hypervisor } from "./hypervisor.ts";
import {
  IRQ,
  NOTIFY_VCPU,
  REMOTE_DOMAIN,
  REMOTE_PORT,
  STATE,
  XEN_CONSUMER,
} from "./_tables.ts";

/**
 * One port in use, as `xl debug-keys e` prints it:
 * `port [p/m/s]: s=ECS n=VCPU x=XEN d=DOM p=PORT | v=VIRQ | p=PIRQ`.
 *
 * @example
 * ```ts
 * import { Hypervisor } from "./hypervisor.ts";
 * import { inspectPort } from "./inspect.ts";
 * import assert from "node:assert/strict";
 * const xen = new Hypervisor();
 * xen.createDomain({ domain: 1 });
 * const port = xen.bindVirq(1, 1, 0); // VIRQ_DEBUG
 * const row = inspectPort(xen.domain(1)!, port)!;
 * assert.equal(row.state, "virq");
 * assert.equal(row.virq, 1);
 * assert.ok(Object.isFrozen(row));
 * ```
 */
export interface PortInfo {
  /** The port number. */
  readonly port: number;
  /** Xen's internal state (`ECS_*`), by name: never `"free"` in a row. */
  readonly state: EcsName;
  /** The same state as Xen's number, what the dump prints as `s=`. */
  readonly ecs: number;
  /** `notify_vcpu_id` (`n=`). */
  readonly vcpu: number;
  /** `evtchn_is_pending` (`p`). */
  readonly pending: boolean;
  /** `evtchn_is_masked` (`m`); a FIFO port without an event word is masked. */
  readonly masked: boolean;
  /**
   * 2-level only: the port's selector bit on its notify vCPU (the dump's
   * `s`); `null` under FIFO.
   */
  readonly selector: boolean | null;
  /**
   * FIFO only, once the port has an event word: LINKED, BUSY, the link
   * field and the port's priority (0 highest, 15 lowest).
   */
  readonly fifo?: {
    readonly linked: boolean;
    readonly busy: boolean;
    readonly link: number;
    readonly priority: number;
  };
  /** `xen_consumer` (`x=`): Xen itself holds the local end. */
  readonly xen: boolean;
  /** Unbound: the domain allowed to bind; interdomain: the peer. */
  readonly remoteDomain?: number;
  /** Interdomain: the peer's port. */
  readonly remotePort?: number;
  /** VIRQ ports: the VIRQ. */
  readonly virq?: number;
  /** PIRQ ports: the PIRQ. */
  readonly pirq?: number;
}

/**
 * A domain as the model holds it.
 *
 * @example
 * ```ts
 * import { Hypervisor } from "./hypervisor.ts";
 * import { inspectDomain } from "./inspect.ts";
 * import assert from "node:assert/strict";
 * const xen = new Hypervisor();
 * xen.createDomain({ domain: 2, vcpus: 3 });
 * const info = inspectDomain(xen.domain(2)!);
 * assert.equal(info.vcpus, 3);
 * assert.equal(info.abi, "2l"); // until a guest sets up FIFO
 * assert.equal(info.validPorts, 64); // one bucket
 * ```
 */
export interface DomainInfo {
  /** The domain id. */
  readonly id: number;
  /** Control-domain rights (`is_control_domain`). */
  readonly privileged: boolean;
  /** `max_vcpus`. */
  readonly vcpus: number;
  /** The event ABI Xen runs for it now (`evtchn_port_ops`). */
  readonly abi: "2l" | "fifo";
  /** `valid_evtchns`: ports with storage (bucket-granular). */
  readonly validPorts: number;
  /** `active_evtchns`: ports in use, port 0 not counted. */
  readonly activePorts: number;
  /** `max_evtchn_port`. */
  readonly maxPort: number;
  /** `nr_pirqs`. */
  readonly nrPirqs: number;
  /** Held paused by the toolstack (`controller_pause_count`). */
  readonly paused: boolean;
  /** `d->target`: the domain it serves as device model for, or -1. */
  readonly target: number;
}

/**
 * The row of one port, or `undefined` when the port is free or beyond the
 * domain's storage (the dump skips both).
 *
 * @param d The domain.
 * @param port The port.
 * @returns The row, frozen.
 *
 * @example
 * ```ts
 * import { Domain } from "./domain.ts";
 * import { inspectPort } from "./inspect.ts";
 * import assert from "node:assert/strict";
 * const d = new Domain({ domain: 1 });
 * assert.equal(inspectPort(d, 5), undefined); // free
 * assert.equal(inspectPort(d, 0)?.state, "reserved");
 * ```
 */
export function inspectPort(d: Domain, port: number): PortInfo | undefined {
  if (!(Number.isInteger(port) && port >= 0 && port < d.validEvtchns)) {
    return undefined;
  }
  const ecs = d[STATE][port];
  if (ecs === ECS.FREE) return undefined;
  const vcpu = d[NOTIFY_VCPU][port];
  const abi = d.abi;
  const row: {
    -readonly [K in keyof PortInfo]: PortInfo[K];
  } = {
    port,
    state: ECS_NAME[ecs],
    ecs,
    vcpu,
    pending: abi.isPending(port),
    masked: abi.isMasked(port),
    selector: abi.name === "2l"
      ? d.sharedInfo.selectorBit(vcpu, port >>> 6)
      : null,
    xen: d[XEN_CONSUMER][port] !== 0,
  };
  if (abi instanceof FifoAbi) {
    const word = abi.word(port);
    if (word !== undefined) {
      row.fifo = Object.freeze({
        linked: (word & (1 << EVTCHN_FIFO_BIT.LINKED)) !== 0,
        busy: (word & (1 << EVTCHN_FIFO_BIT.BUSY)) !== 0,
        link: word & EVTCHN_FIFO_LINK_MASK,
        priority: abi.priority[port],
      });
    }
  }
  switch (ecs) {
    case ECS.UNBOUND:
      row.remoteDomain = d[REMOTE_DOMAIN][port];
      break;
    case ECS.INTERDOMAIN:
      row.remoteDomain = d[REMOTE_DOMAIN][port];
      row.remotePort = d[REMOTE_PORT][port];
      break;
    case ECS.VIRQ:
      row.virq = d[IRQ][port];
      break;
    case ECS.PIRQ:
      row.pirq = d[IRQ][port];
      break;
  }
  return Object.freeze(row);
}

/**
 * Every port in use from 1 up to the storage edge, ascending, as the dump
 * walks them (port 0, reserved, is not listed).
 *
 * @param d The domain.
 * @returns The rows, in a frozen array.
 *
 * @example
 * ```ts
 * import { Hypervisor } from "./hypervisor.ts";
 * import { inspectPorts } from "./inspect.ts";
 * import assert from "node:assert/strict";
 * const xen = new Hypervisor();
 * xen.createDomain({ domain: 0, privileged: true });
 * xen.createDomain({ domain: 1 });
 * const offered = xen.allocUnbound(1, 1, 0);
 * const local = xen.bindInterdomain(0, 1, offered);
 * const [row] = inspectPorts(xen.domain(0)!);
 * assert.deepEqual(
 *   [row.port, row.state, row.remoteDomain, row.remotePort, row.pending],
 *   [local, "interdomain", 1, offered, true], // pending from the bind
 * );
 * ```
 */
export function inspectPorts(d: Domain): readonly PortInfo[] {
  const rows: PortInfo[] = [];
  for (let port = 1; port < d.validEvtchns; port++) {
    const row = inspectPort(d, port);
    if (row !== undefined) rows.push(row);
  }
  return Object.freeze(rows);
}

/**
 * A domain's facts.
 *
 * @param d The domain.
 * @returns Them, frozen.
 *
 * @example
 * ```ts
 * import { Domain } from "./domain.ts";
 * import { inspectDomain } from "./inspect.ts";
 * import assert from "node:assert/strict";
 * const info = inspectDomain(new Domain({ domain: 4, paused: true }));
 * assert.equal(info.maxPort, 1023); // xl's default for a domU
 * assert.equal(info.paused, true);
 * ```
 */
export function inspectDomain(d: Domain): DomainInfo {
  return Object.freeze({
    id: d.id,
    privileged: d.privileged,
    vcpus: d.vcpus,
    abi: d.abi.name,
    validPorts: d.validEvtchns,
    activePorts: d.activeEvtchns,
    maxPort: d.maxEvtchnPort,
    nrPirqs: d.nrPirqs,
    paused: d.pauseCount > 0,
    target: d.target,
  });
}

/**
 * Every live domain's facts, by ascending id.
 *
 * @param xen The model.
 * @returns The domains, in a frozen array.
 *
 * @example
 * ```ts
 * import { Hypervisor } from "./hypervisor.ts";
 * import { inspectDomains } from "./inspect.ts";
 * import assert from "node:assert/strict";
 * const xen = new Hypervisor();
 * xen.createDomain({ domain: 3 });
 * xen.createDomain({ domain: 0, privileged: true });
 * assert.deepEqual(inspectDomains(xen).map((d) => d.id), [0, 3]);
 * ```
 */
export function inspectDomains(xen: Hypervisor): readonly DomainInfo[] {
  return Object.freeze(
    xen.domainIds.map((id) => inspectDomain(xen.domain(id)!)),
  );
}
