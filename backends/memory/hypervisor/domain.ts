/**
 * A modelled domain: its port table (Xen's `struct evtchn` per port from
 * `xen/include/xen/sched.h`, kept in typed arrays so the hot path allocates
 * nothing), its vCPUs and its delivery ABI, with the per-domain parts of
 * `xen/common/event_channel.c` (`evtchn_init`, `get_free_port`,
 * `evtchn_free`, `evtchn_port_set_pending`) and x86's
 * `vcpu_mark_events_pending`.
 *
 * @module
 */

import {
  EVTCHNS_PER_BUCKET,
  XL_DEFAULT_MAX_EVTCHN_PORT,
} from "../../../xen/event_channel.ts";
import { PAGE_SIZE } from "../../../xen/page.ts";
import { NR_VIRQS } from "../../../xen/virq.ts";
import type { EventAbi } from "./event_abi.ts";
import { TwoLevelAbi } from "./event_2l.ts";
import { SharedInfo } from "./shared_info.ts";
import * as tables from "./_tables.ts";

// The port table's keys as this module's own constants, which V8 folds
// into optimized code (imported bindings are live: reloaded and checked at
// every use, which more than doubles the cost of a table access).
const IRQ: typeof tables.IRQ = tables.IRQ;
const NOTIFY_VCPU: typeof tables.NOTIFY_VCPU = tables.NOTIFY_VCPU;
const REMOTE_DOMAIN: typeof tables.REMOTE_DOMAIN = tables.REMOTE_DOMAIN;
const REMOTE_PORT: typeof tables.REMOTE_PORT = tables.REMOTE_PORT;
const STATE: typeof tables.STATE = tables.STATE;
const VIRQ_TO_PORT: typeof tables.VIRQ_TO_PORT = tables.VIRQ_TO_PORT;
const XEN_CONSUMER: typeof tables.XEN_CONSUMER = tables.XEN_CONSUMER;

/**
 * Xen's internal channel states (`ECS_*` in xen/include/xen/sched.h); these
 * are what `xl debug-keys e` prints as `s=`, not the `EVTCHNSTAT_*` values.
 *
 * @example
 * ```ts
 * import { ECS } from "./domain.ts";
 * import assert from "node:assert/strict";
 * assert.equal(ECS.INTERDOMAIN, 3);
 * ```
 */
export const ECS = {
  FREE: 0,
  RESERVED: 1,
  UNBOUND: 2,
  INTERDOMAIN: 3,
  PIRQ: 4,
  VIRQ: 5,
  IPI: 6,
} as const;

/** The name of an `ECS_*` state, lower case as `xl debug-keys e` users say it. */
export type EcsName =
  | "free"
  | "reserved"
  | "unbound"
  | "interdomain"
  | "pirq"
  | "virq"
  | "ipi";

/**
 * `ECS_*` names by number, the inverse of {@linkcode ECS}.
 *
 * @example
 * ```ts
 * import { ECS, ECS_NAME } from "./domain.ts";
 * import assert from "node:assert/strict";
 * assert.equal(ECS_NAME[ECS.VIRQ], "virq");
 * ```
 */
export const ECS_NAME: readonly EcsName[] = (() => {
  const names: EcsName[] = [];
  for (const [name, value] of Object.entries(ECS)) {
    names[value] = name.toLowerCase() as EcsName;
  }
  return Object.freeze(names);
})();

/** Options for creating a domain. */
export interface DomainOptions {
  /** The domain id (0..0x7FEF). */
  domain: number;
  /** Control domain rights (`is_control_domain`); dom0 has them. */
  privileged?: boolean;
  /** Number of vCPUs (`max_vcpus`), 1 by default. */
  vcpus?: number;
  /**
   * `max_evtchn_port`: the highest port the domain may allocate. Defaults to
   * `INT_MAX` (no limit but the ABI's) for dom0 and to 1023 (xl's
   * `max_event_channels` default) for other domains.
   */
  maxEvtchnPort?: number;
  /** Physical IRQs the domain may bind (`nr_pirqs`), 256 by default. */
  nrPirqs?: number;
  /**
   * Whether the toolstack holds the domain paused (`controller_pause_count`).
   * Xen creates domains paused; the model's default is a running domain.
   */
  paused?: boolean;
  /** A domain this one serves as device model for (`d->target`). */
  target?: number;
}

/**
 * One domain's event-channel state.
 *
 * @example
 * ```ts
 * import { Domain, ECS } from "./domain.ts";
 * import assert from "node:assert/strict";
 * const d = new Domain({ domain: 1, vcpus: 2 });
 * assert.equal(d.validEvtchns, 64);
 * assert.equal(d.portState(0), ECS.RESERVED); // port 0 is reserved
 * ```
 */
export class Domain {
  /** Domain id. */
  readonly id: number;
  /** Control-domain rights. */
  readonly privileged: boolean;
  /** Number of vCPUs. */
  readonly vcpus: number;
  /** `max_evtchn_port`. */
  readonly maxEvtchnPort: number;
  /** `nr_pirqs`. */
  readonly nrPirqs: number;
  /** `d->target`, or -1. */
  readonly target: number;
  /** `controller_pause_count`. */
  pauseCount: number;
  /** `is_dying`. */
  dying = false;
  /** `valid_evtchns`: bucket-granular count of ports with storage. */
  validEvtchns: number = EVTCHNS_PER_BUCKET;
  /** `active_evtchns`: ports in use (not FREE, not the reserved port 0). */
  activeEvtchns = 0;
  /** `xen_evtchns`: ports whose local end Xen itself consumes. */
  xenEvtchns = 0;

  // The port table, under keys private to this folder (_tables.ts): the
  // hypervisor's files write it, everyone else reads it through inspect.ts
  // or the read-only port* methods below.
  /** `ECS_*` per port. */
  [STATE]: Uint8Array;
  /** Notify vCPU per port (`notify_vcpu_id`). */
  [NOTIFY_VCPU]: Uint32Array;
  /** Unbound: allowed remote domain; interdomain: the peer domain. */
  [REMOTE_DOMAIN]: Uint16Array;
  /** Interdomain: the peer port. */
  [REMOTE_PORT]: Uint32Array;
  /** VIRQ or PIRQ number. */
  [IRQ]: Uint32Array;
  /** 1 where Xen consumes the local end (`xen_consumer`). */
  [XEN_CONSUMER]: Uint8Array;
  /** `virq_to_evtchn`, `NR_VIRQS` entries per vCPU; 0 = unbound. */
  readonly [VIRQ_TO_PORT]: Uint32Array;
  /** `pirq_to_evtchn`. */
  readonly pirqToPort: Map<number, number> = new Map();
  /** PIRQs this domain may bind (`pirq_access_permitted`). */
  readonly pirqAccess: Set<number> = new Set();

  /** Shared info and vCPU info, as the guest sees them. */
  readonly sharedInfo: SharedInfo;
  /** The delivery ABI in force (2-level until FIFO is set up). */
  abi: EventAbi;
  /**
   * The guest's upcall: called when Xen kicks a vCPU whose
   * `evtchn_upcall_mask` is clear. Unset: events wait for the guest to look.
   */
  upcall: ((vcpu: number) => void) | undefined;
  /** Guest frames by gfn: 4 KiB pages the guest offers to Xen (FIFO). */
  readonly guestPages: Map<number, Uint32Array> = new Map();
  #nextGfn = 0x1000;
  #inUpcall = false;
  #upcallAgain = false;

  /**
   * Creates a domain as Xen's `evtchn_init` does: bucket 0, port 0 reserved,
   * 2-level ABI.
   *
   * @param options Id, privilege, vCPUs and limits.
   */
  constructor(options: DomainOptions) {
    this.id = options.domain;
    this.privileged = options.privileged ?? false;
    this.vcpus = options.vcpus ?? 1;
    this.maxEvtchnPort = Math.min(
      options.maxEvtchnPort ??
        (this.privileged ? 0x7fff_ffff : XL_DEFAULT_MAX_EVTCHN_PORT),
      0x7fff_ffff,
    );
    this.nrPirqs = options.nrPirqs ?? 256;
    this.target = options.target ?? -1;
    this.pauseCount = options.paused ? 1 : 0;
    const n = EVTCHNS_PER_BUCKET;
    this[STATE] = new Uint8Array(n);
    this[NOTIFY_VCPU] = new Uint32Array(n);
    this[REMOTE_DOMAIN] = new Uint16Array(n);
    this[REMOTE_PORT] = new Uint32Array(n);
    this[IRQ] = new Uint32Array(n);
    this[XEN_CONSUMER] = new Uint8Array(n);
    this[STATE][0] = ECS.RESERVED;
    this[VIRQ_TO_PORT] = new Uint32Array(this.vcpus * NR_VIRQS);
    this.sharedInfo = new SharedInfo(this.vcpus);
    this.abi = new TwoLevelAbi(
      this.sharedInfo,
      (v) => this.markEventsPending(v),
    );
  }

  /**
   * Gives the guest a fresh, zeroed, writable page of its own memory.
   *
   * @returns Its guest frame number.
   */
  allocGuestPage(): number {
    const gfn = this.#nextGfn++;
    this.guestPages.set(gfn, new Uint32Array(PAGE_SIZE / 4));
    return gfn;
  }

  /** Switches back to the 2-level ABI (a completed `EVTCHNOP_reset`). */
  useTwoLevel(): void {
    if (this.abi.name === "2l") return;
    this.abi = new TwoLevelAbi(
      this.sharedInfo,
      (v) => this.markEventsPending(v),
    );
  }

  /** Ports the current ABI can address (`max_evtchns`). */
  get maxEvtchns(): number {
    return this.abi.maxChannels;
  }

  /**
   * `port_is_valid`: the port has storage.
   *
   * @param port The port.
   * @returns Whether it is below `valid_evtchns`.
   */
  isValid(port: number): boolean {
    return port < this.validEvtchns;
  }

  /**
   * A port's `ECS_*` state (`evtchn->state`), read-only: the port table
   * itself is private to the hypervisor's folder.
   *
   * @param port A valid port (below `validEvtchns`).
   * @returns Its {@linkcode ECS} value.
   *
   * @example
   * ```ts
   * import { Hypervisor } from "./hypervisor.ts";
   * import { ECS } from "./domain.ts";
   * import assert from "node:assert/strict";
   * const xen = new Hypervisor();
   * const d = xen.createDomain({ domain: 1 });
   * const port = xen.bindIpi(1, 0); // domain 1, vCPU 0
   * assert.equal(d.portState(port), ECS.IPI);
   * assert.equal(d.portState(port + 1), ECS.FREE);
   * ```
   */
  portState(port: number): number {
    return this[STATE][port];
  }

  /**
   * A port's notify vCPU (`notify_vcpu_id`), read-only.
   *
   * @param port A valid port.
   * @returns The vCPU (0 on a free port).
   */
  portNotifyVcpu(port: number): number {
    return this[NOTIFY_VCPU][port];
  }

  /**
   * An unbound port's allowed remote domain or an interdomain port's peer
   * domain, read-only.
   *
   * @param port A valid port.
   * @returns The domain id (0 on a free port).
   */
  portRemoteDomain(port: number): number {
    return this[REMOTE_DOMAIN][port];
  }

  /**
   * An interdomain port's peer port, read-only.
   *
   * @param port A valid port.
   * @returns The peer's port (0 on a free port).
   */
  portRemotePort(port: number): number {
    return this[REMOTE_PORT][port];
  }

  /**
   * A VIRQ or PIRQ port's VIRQ or PIRQ number, read-only.
   *
   * @param port A valid port.
   * @returns The number (0 on a free port).
   */
  portIrq(port: number): number {
    return this[IRQ][port];
  }

  /**
   * `evtchn_usable`: not Xen's, and in a state beyond RESERVED.
   *
   * @param port A valid port.
   * @returns Whether events may be set on it.
   */
  isUsable(port: number): boolean {
    return this[XEN_CONSUMER][port] === 0 && this[STATE][port] > ECS.RESERVED;
  }

  /**
   * `get_free_port`: the lowest FREE, non-busy port, growing storage by
   * buckets as Xen's `evtchn_allocate_port` does.
   *
   * @returns The port, or a negative errno (`-EINVAL` when dying,
   * `-ENOSPC` at the limit).
   */
  allocatePort(): number {
    if (this.dying) return -22;
    const limit = Math.min(this.maxEvtchnPort, this.maxEvtchns - 1);
    const abi = this.abi;
    for (let port = 0; port <= limit; port++) {
      if (port >= this.validEvtchns) {
        this.#grow(port);
        this.activeEvtchns++;
        return port;
      }
      if (this[STATE][port] === ECS.FREE && !abi.isBusy(port)) {
        this.activeEvtchns++;
        return port;
      }
    }
    return -28;
  }

  /**
   * Grows port storage until `validPorts` ports are valid, as a history of
   * allocations up to that port would have left it (Xen never shrinks it).
   * Used to boot a model from a host snapshot, whose dom0 may have more
   * storage than ports in use.
   *
   * @param validPorts The storage edge to reach.
   */
  reserveStorage(validPorts: number): void {
    if (validPorts > this.validEvtchns) this.#grow(validPorts - 1);
  }

  #grow(port: number): void {
    let valid = this.validEvtchns;
    while (port >= valid) valid += EVTCHNS_PER_BUCKET;
    if (valid > this[STATE].length) {
      let size = this[STATE].length;
      while (size < valid) size *= 2;
      this[STATE] = growTo(this[STATE], size);
      this[NOTIFY_VCPU] = growTo(this[NOTIFY_VCPU], size);
      this[REMOTE_DOMAIN] = growTo(this[REMOTE_DOMAIN], size);
      this[REMOTE_PORT] = growTo(this[REMOTE_PORT], size);
      this[IRQ] = growTo(this[IRQ], size);
      this[XEN_CONSUMER] = growTo(this[XEN_CONSUMER], size);
    }
    this.validEvtchns = valid;
  }

  /**
   * `check_free_port`: undoes the count of a port allocated and then not
   * used because a later check failed.
   *
   * @param port The port.
   */
  releaseUnusedPort(port: number): void {
    if (this[STATE][port] === ECS.FREE) this.activeEvtchns--;
  }

  /**
   * `evtchn_free`: clears pending (not the mask), state FREE, notify vCPU 0.
   *
   * @param port The port.
   */
  free(port: number): void {
    if (this.isUsable(port)) this.abi.clearPending(port);
    if (this[XEN_CONSUMER][port]) this.xenEvtchns--;
    this.activeEvtchns--;
    this[STATE][port] = ECS.FREE;
    this[NOTIFY_VCPU][port] = 0;
    this[XEN_CONSUMER][port] = 0;
    this[REMOTE_DOMAIN][port] = 0;
    this[REMOTE_PORT][port] = 0;
    this[IRQ][port] = 0;
  }

  /**
   * `evtchn_port_set_pending`: only on usable ports.
   *
   * @param port A valid port.
   * @param vcpu The vCPU to notify.
   */
  setPending(port: number, vcpu: number): void {
    if (this.isUsable(port)) this.abi.setPending(port, vcpu);
  }

  /**
   * x86 `vcpu_mark_events_pending`: set `evtchn_upcall_pending`; on a 0→1
   * change kick the vCPU, which runs the guest's upcall if its
   * `evtchn_upcall_mask` is clear.
   *
   * @param vcpu The vCPU.
   */
  markEventsPending(vcpu: number): void {
    if (this.sharedInfo.exchangeUpcallPending(vcpu, 1)) return;
    this.kick(vcpu);
  }

  /**
   * Delivers an upcall to the guest now if it can take one. Upcalls that
   * arrive while one runs are run again after it, never nested, as a vCPU
   * with events masked during its handler would see them.
   *
   * @param vcpu The vCPU.
   */
  kick(vcpu: number): void {
    const upcall = this.upcall;
    if (upcall === undefined || this.sharedInfo.upcallMask(vcpu)) return;
    if (this.#inUpcall) {
      this.#upcallAgain = true;
      return;
    }
    this.#runUpcall(upcall, vcpu);
  }

  /**
   * The upcall, and then those that came while it ran (kept out of `kick`,
   * which stays small enough to inline; the rerun loop is out of this one,
   * which then inlines too).
   */
  #runUpcall(upcall: (vcpu: number) => void, vcpu: number): void {
    this.#inUpcall = true;
    try {
      upcall(vcpu);
      if (this.#upcallAgain) this.#runAgain(upcall);
    } finally {
      this.#inUpcall = false;
    }
  }

  /** Kicks that came while the handler ran (to this or another vCPU). */
  #runAgain(upcall: (vcpu: number) => void): void {
    while (this.#upcallAgain) {
      this.#upcallAgain = false;
      for (let v = 0; v < this.vcpus; v++) {
        if (
          this.sharedInfo.upcallPending(v) && !this.sharedInfo.upcallMask(v)
        ) upcall(v);
      }
    }
  }

  /**
   * The port bound to a VIRQ on a vCPU, or 0.
   *
   * @param virq The VIRQ.
   * @param vcpu The vCPU.
   * @returns The port or 0.
   */
  virqPort(virq: number, vcpu: number): number {
    return this[VIRQ_TO_PORT][vcpu * NR_VIRQS + virq];
  }
}

function growTo<T extends Uint8Array | Uint16Array | Uint32Array>(
  array: T,
  size: number,
): T {
  const bigger = new (array.constructor as new (n: number) => T)(size);
  bigger.set(array);
  return bigger;
}
