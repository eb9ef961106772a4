/**
 * The part of a Linux 6.1 guest kernel that event channels pass through
 * (`drivers/xen/events/events_base.c`): it masks every port at boot, binds
 * its own VIRQs and IPIs, takes upcalls, acks late-EOI ports by masking them,
 * and keeps per-port mask reasons so that a temporary mask never unmasks a
 * port still waiting for its EOI.
 *
 * @module
 */

import { EventChannelError } from "../../errors.ts";
import { isGlobalVirq, VIRQ } from "../../xen/virq.ts";
import type { Domain } from "./hypervisor/domain.ts";
import { TwoLevelConsumer } from "./hypervisor/guest_2l.ts";
import type { Hypervisor } from "./hypervisor/hypervisor.ts";

/** Linux `EVT_MASK_REASON_EXPLICIT` (events_base.c). */
const MASK_EXPLICIT = 1;
/** Linux `EVT_MASK_REASON_TEMPORARY`. */
const MASK_TEMPORARY = 2;
/** Linux `EVT_MASK_REASON_EOI_PENDING`. */
const MASK_EOI_PENDING = 4;
const MASK_REASONS = 7;
const LATE_EOI = 0x40;
const BOUND = 0x80;

/** Options for a modelled Linux guest. */
export interface LinuxGuestOptions {
  /**
   * Bind what Linux binds at boot (per vCPU: VIRQ_TIMER and its IPIs; in
   * dom0 also VIRQ_CONSOLE, VIRQ_PCPU_STATE and VIRQ_MCA), so that user
   * programs see the kernel's ports taken as on a real host. Default true.
   */
  bootPorts?: boolean;
}

/**
 * A Linux guest kernel's event handling in one modelled domain.
 *
 * @example
 * ```ts
 * import { Hypervisor } from "./hypervisor/hypervisor.ts";
 * import { LinuxGuest } from "./linux_guest.ts";
 * import assert from "node:assert/strict";
 * const xen = new Hypervisor();
 * xen.createDomain({ domain: 1 });
 * const linux = new LinuxGuest(xen, 1, { bootPorts: false });
 * const ipi = xen.bindIpi(1, 0);
 * const seen: number[] = [];
 * linux.bindLateEoi(ipi, (port) => seen.push(port));
 * xen.send(1, ipi);
 * assert.deepEqual(seen, [ipi]); // delivered, now masked until EOI
 * xen.send(1, ipi);
 * assert.deepEqual(seen, [ipi]);
 * linux.lateEoi(ipi); // unmask: the pending event is delivered again
 * assert.deepEqual(seen, [ipi, ipi]);
 * ```
 */
export class LinuxGuest {
  /** The hypervisor. */
  readonly xen: Hypervisor;
  /** The guest's domain id. */
  readonly domain: number;
  #d: Domain;
  #consumer: TwoLevelConsumer;
  // Per port, indexed by port number (no allocation per event).
  #handlers: (((port: number) => void) | undefined)[] = [];
  /** Bit 7: bound to a handler; bit 6: late EOI; bits 0-2: mask reasons. */
  #flags = new Uint8Array(1024);
  #lastSelectedCpu = 0;
  #handlePort = (port: number): void => {
    const flags = this.#flags[port];
    if (flags & LATE_EOI) this.#mask(port, MASK_EOI_PENDING);
    const info = this.#d.sharedInfo;
    info.pending[port >>> 5] &= ~(1 << (port & 31)); // clear_evtchn
    if (flags & BOUND) this.#handlers[port]!(port);
  };

  /**
   * Boots the guest's event handling: masks every port, registers the upcall.
   *
   * @param xen The hypervisor.
   * @param domain The guest's domain id.
   * @param options Boot options.
   */
  constructor(xen: Hypervisor, domain: number, options: LinuxGuestOptions = {}) {
    const d = xen.domain(domain);
    if (d === undefined) {
      throw new EventChannelError("boot", "ESRCH", {
        argument: "domain",
        value: domain,
      });
    }
    this.xen = xen;
    this.domain = domain;
    this.#d = d;
    this.#consumer = new TwoLevelConsumer(d);
    d.sharedInfo.mask.fill(0xffff_ffff); // xen_evtchn_mask_all()
    d.upcall = (vcpu) => this.#upcall(vcpu);
    if (options.bootPorts ?? true) this.#bootPorts();
  }

  /** `xen_evtchn_nr_channels()`: bounds `IOCTL_EVTCHN_UNBIND`. */
  get nrChannels(): number {
    return this.#d.maxEvtchns;
  }

  /** Number of the guest's vCPUs. */
  get vcpus(): number {
    return this.#d.vcpus;
  }

  #bootPorts(): void {
    const own = (port: number) => this.bind(port, () => {});
    for (let cpu = 0; cpu < this.#d.vcpus; cpu++) {
      own(this.xen.bindVirq(this.domain, VIRQ.TIMER, cpu));
      // RESCHEDULE, CALL_FUNCTION, CALL_FUNCTION_SINGLE, IRQ_WORK
      for (let i = 0; i < 4; i++) own(this.xen.bindIpi(this.domain, cpu));
    }
    if (this.#d.privileged) {
      for (const virq of [VIRQ.CONSOLE, VIRQ.PCPU_STATE, VIRQ.MCA]) {
        if (isGlobalVirq(virq)) own(this.xen.bindVirq(this.domain, virq, 0));
      }
    }
  }

  /**
   * Attaches a handler to a port the guest bound and unmasks it (IRQ
   * startup).
   *
   * @param port The port.
   * @param handler Called on each delivery.
   */
  bind(port: number, handler: (port: number) => void): void {
    this.#bind(port, handler, 0);
  }

  #bind(port: number, handler: (port: number) => void, flags: number): void {
    if (port >= this.#flags.length) {
      let size = this.#flags.length;
      while (size <= port) size *= 2;
      const bigger = new Uint8Array(size);
      bigger.set(this.#flags);
      this.#flags = bigger;
    }
    this.#handlers[port] = handler;
    this.#flags[port] = BOUND | flags;
    this.xen.unmask(this.domain, port);
  }

  /**
   * Same as {@linkcode LinuxGuest.bind} for a late-EOI IRQ: each delivery
   * masks the port until {@linkcode LinuxGuest.lateEoi}.
   *
   * @param port The port.
   * @param handler Called on each delivery.
   */
  bindLateEoi(port: number, handler: (port: number) => void): void {
    this.#bind(port, handler, LATE_EOI);
  }

  /**
   * Detaches the handler, masks the port and closes it in Xen
   * (`unbind_from_irq` → `xen_evtchn_close`).
   *
   * @param port The port.
   */
  unbind(port: number): void {
    this.#mask(port, MASK_EXPLICIT);
    this.#handlers[port] = undefined;
    this.#flags[port] = 0;
    try {
      this.xen.close(this.domain, port);
    } catch (error) {
      // Linux BUG()s here; the model keeps going so that the state a program
      // sees after an EVTCHNOP_reset behind the driver's back is observable.
      if (!(error instanceof EventChannelError)) throw error;
    }
  }

  /**
   * `xen_irq_lateeoi`: drops the EOI-pending mask; unmasks in Xen when no
   * other reason holds it.
   *
   * @param port The port.
   */
  lateEoi(port: number): void {
    this.#unmask(port, MASK_EOI_PENDING);
  }

  /**
   * `xen_set_affinity_evtchn` to the next online vCPU, as the 6.1 evtchn
   * driver does after binding an unbound or interdomain port
   * (`evtchn_bind_interdom_next_vcpu`).
   *
   * @param port The port.
   */
  bindToNextVcpu(port: number): void {
    let cpu = this.#lastSelectedCpu + 1;
    if (cpu >= this.#d.vcpus) cpu = 0;
    this.#lastSelectedCpu = cpu;
    this.#mask(port, MASK_TEMPORARY);
    try {
      this.xen.bindVcpu(this.domain, port, cpu);
    } catch (error) {
      if (!(error instanceof EventChannelError)) throw error;
    }
    this.#unmask(port, MASK_TEMPORARY);
  }

  /**
   * `notify_remote_via_evtchn`: EVTCHNOP_send, result ignored.
   *
   * @param port The port.
   */
  notify(port: number): void {
    try {
      this.xen.send(this.domain, port);
    } catch (error) {
      if (!(error instanceof EventChannelError)) throw error;
    }
  }

  #mask(port: number, reason: number): void {
    const flags = this.#flags[port];
    if (flags === undefined) return;
    this.#flags[port] = flags | reason;
    if ((flags & MASK_REASONS) === 0) {
      this.#d.sharedInfo.mask[port >>> 5] |= 1 << (port & 31);
    }
  }

  #unmask(port: number, reason: number): void {
    const flags = this.#flags[port];
    if (!(flags & BOUND) || !(flags & reason)) return;
    this.#flags[port] = flags & ~reason;
    if ((flags & MASK_REASONS & ~reason) === 0) {
      this.xen.unmask(this.domain, port);
    }
  }

  #upcall(vcpu: number): void {
    this.#consumer.handleEvents(vcpu, this.#handlePort);
  }
}
