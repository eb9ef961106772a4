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
 * import { Domain } from "./domain.ts";
 * import assert from "node:assert/strict";
 * const d = new Domain({ domain: 1, vcpus: 2 });
 * assert.equal(d.validEvtchns, 64);
 * assert.equal(d.state[0], 1); // port 0 is reserved
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

  /** `ECS_*` per port. */
  state: Uint8Array;
  /** Notify vCPU per port (`notify_vcpu_id`). */
  notifyVcpu: Uint32Array;
  /** Unbound: allowed remote domain; interdomain: the peer domain. */
  remoteDomain: Uint16Array;
  /** Interdomain: the peer port. */
  remotePort: Uint32Array;
  /** VIRQ or PIRQ number. */
  irq: Uint32Array;
  /** 1 where Xen consumes the local end (`xen_consumer`). */
  xenConsumer: Uint8Array;

  /** `virq_to_evtchn`, `NR_VIRQS` entries per vCPU; 0 = unbound. */
  readonly virqToPort: Uint32Array;
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
    this.state = new Uint8Array(n);
    this.notifyVcpu = new Uint32Array(n);
    this.remoteDomain = new Uint16Array(n);
    this.remotePort = new Uint32Array(n);
    this.irq = new Uint32Array(n);
    this.xenConsumer = new Uint8Array(n);
    this.state[0] = ECS.RESERVED;
    this.virqToPort = new Uint32Array(this.vcpus * NR_VIRQS);
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
   * `evtchn_usable`: not Xen's, and in a state beyond RESERVED.
   *
   * @param port A valid port.
   * @returns Whether events may be set on it.
   */
  isUsable(port: number): boolean {
    return this.xenConsumer[port] === 0 && this.state[port] > ECS.RESERVED;
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
      if (this.state[port] === ECS.FREE && !abi.isBusy(port)) {
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
    if (valid > this.state.length) {
      let size = this.state.length;
      while (size < valid) size *= 2;
      this.state = growTo(this.state, size);
      this.notifyVcpu = growTo(this.notifyVcpu, size);
      this.remoteDomain = growTo(this.remoteDomain, size);
      this.remotePort = growTo(this.remotePort, size);
      this.irq = growTo(this.irq, size);
      this.xenConsumer = growTo(this.xenConsumer, size);
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
    if (this.state[port] === ECS.FREE) this.activeEvtchns--;
  }

  /**
   * `evtchn_free`: clears pending (not the mask), state FREE, notify vCPU 0.
   *
   * @param port The port.
   */
  free(port: number): void {
    if (this.isUsable(port)) this.abi.clearPending(port);
    if (this.xenConsumer[port]) this.xenEvtchns--;
    this.activeEvtchns--;
    this.state[port] = ECS.FREE;
    this.notifyVcpu[port] = 0;
    this.xenConsumer[port] = 0;
    this.remoteDomain[port] = 0;
    this.remotePort[port] = 0;
    this.irq[port] = 0;
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

  /** The upcall and those that came while it ran (kept out of `kick`, which stays small enough to inline). */
  #runUpcall(upcall: (vcpu: number) => void, vcpu: number): void {
    this.#inUpcall = true;
    try {
      upcall(vcpu);
      // Kicks that came while the handler ran (to this or another vCPU).
      while (this.#upcallAgain) {
        this.#upcallAgain = false;
        for (let v = 0; v < this.vcpus; v++) {
          if (
            this.sharedInfo.upcallPending(v) && !this.sharedInfo.upcallMask(v)
          ) upcall(v);
        }
      }
    } finally {
      this.#inUpcall = false;
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
    return this.virqToPort[vcpu * NR_VIRQS + virq];
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
