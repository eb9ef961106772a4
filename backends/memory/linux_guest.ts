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
import { VIRQ } from "../../xen/virq.ts";
import type { Domain } from "./hypervisor/domain.ts";
import { TwoLevelConsumer } from "./hypervisor/guest_2l.ts";
import { FifoConsumer } from "./hypervisor/guest_fifo.ts";
import { FIFO_BIT, type FifoAbi } from "./hypervisor/event_fifo.ts";
import { EVTCHN_FIFO_NR_CHANNELS } from "../../xen/event_channel.ts";
import type { Hypervisor } from "./hypervisor/hypervisor.ts";

/** Linux `EVT_MASK_REASON_EXPLICIT` (events_base.c). */
const MASK_EXPLICIT = 1;
/** Linux `EVT_MASK_REASON_TEMPORARY`. */
const MASK_TEMPORARY = 2;
/** Linux `EVT_MASK_REASON_EOI_PENDING`. */
const MASK_EOI_PENDING = 4;
const MASK_REASONS = 7;
const LATE_EOI = 0x40;
const NO_CPU = 0xff;
const BOUND = 0x80;

/** Options for a modelled Linux guest. */
export interface LinuxGuestOptions {
  /**
   * Bind what Linux binds at boot (per vCPU: VIRQ_TIMER and its IPIs; in
   * dom0 also VIRQ_CONSOLE, VIRQ_PCPU_STATE and VIRQ_MCA), so that user
   * programs see the kernel's ports taken as on a real host. Default true.
   */
  bootPorts?: boolean;
  /**
   * The event ABI the kernel sets up: `"fifo"` (Linux 6.1's default on Xen
   * 4.17) or `"2l"` (kernel argument `xen.fifo_events=0`). Default `"fifo"`.
   */
  eventAbi?: "fifo" | "2l";
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
  #consumer: { handleEvents(vcpu: number, h: (port: number) => void): void };
  #fifo: FifoAbi | undefined;
  // Per port, indexed by port number (no allocation per event).
  #handlers: (((port: number) => void) | undefined)[] = [];
  /** Bit 7: bound to a handler; bit 6: late EOI; bits 0-2: mask reasons. */
  #flags = new Uint8Array(1024);
  /** `channels_on_cpu`, and the CPU each port is counted on. */
  #channelsOnCpu: Uint32Array;
  #portCpu = new Uint8Array(1024).fill(NO_CPU);
  #handlePort = (port: number): void => {
    const flags = this.#flags[port];
    if (flags & LATE_EOI) this.#mask(port, MASK_EOI_PENDING);
    this.#d.abi.clearPending(port); // clear_evtchn
    if (flags & BOUND) this.#handlers[port]!(port);
  };

  /**
   * Boots the guest's event handling: masks every port, registers the upcall.
   *
   * @param xen The hypervisor.
   * @param domain The guest's domain id.
   * @param options Boot options.
   */
  constructor(
    xen: Hypervisor,
    domain: number,
    options: LinuxGuestOptions = {},
  ) {
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
    this.#channelsOnCpu = new Uint32Array(d.vcpus);
    if ((options.eventAbi ?? "fifo") === "fifo") {
      // evtchn_fifo_init: a control block per vCPU (the first switches the
      // domain to FIFO); event array pages come with the first binds.
      for (let cpu = 0; cpu < d.vcpus; cpu++) {
        xen.initControl(domain, d.allocGuestPage(), 0, cpu);
      }
      this.#fifo = d.abi as FifoAbi;
      this.#consumer = new FifoConsumer(this.#fifo, d.vcpus);
    } else {
      this.#consumer = new TwoLevelConsumer(d);
      d.sharedInfo.mask.fill(0xffff_ffff); // xen_evtchn_mask_all()
    }
    d.upcall = (vcpu) => this.#upcall(vcpu);
    if (options.bootPorts ?? true) this.#bootPorts();
  }

  /**
   * `xen_evtchn_nr_channels()`, which bounds `IOCTL_EVTCHN_UNBIND`: 4096
   * under 2-level, event-array pages × 1024 under FIFO.
   */
  get nrChannels(): number {
    return this.#fifo?.numEvtchns ?? this.#d.maxEvtchns;
  }

  /** The event ABI the kernel runs. */
  get eventAbi(): "fifo" | "2l" {
    return this.#fifo === undefined ? "2l" : "fifo";
  }

  /**
   * `evtchn_fifo_setup`: grow the event array until it covers `port`, each
   * new page's words initialised masked.
   */
  #setupPort(port: number): void {
    const fifo = this.#fifo;
    if (fifo === undefined || port >= EVTCHN_FIFO_NR_CHANNELS) return;
    while (fifo.numEvtchns <= port) {
      const gfn = this.#d.allocGuestPage();
      this.#d.guestPages.get(gfn)!.fill(1 << FIFO_BIT.MASKED);
      this.xen.expandArray(this.domain, gfn);
    }
  }

  /** Number of the guest's vCPUs. */
  get vcpus(): number {
    return this.#d.vcpus;
  }

  /**
   * The kernel's own ports, fitted to a real Debian 6.1 dom0 under Xen 4.17
   * (first user port 25 under FIFO and 27 under 2-level with 2 vCPUs, 18 and
   * 19 with one; new ports placed as observed): 7 per vCPU (VIRQ_TIMER and
   * 6 IPIs: reschedule, call function, call function single, IRQ work,
   * spinlock kick, one more), plus VIRQ_DEBUG per vCPU under 2-level only;
   * in dom0 also VIRQ_CONSOLE, VIRQ_PCPU_STATE, VIRQ_MCA and 6 device PIRQs,
   * spread like any IRQ, and the xenstore port, allocated unbound with no
   * IRQ while no xenstored runs.
   */
  #bootPorts(): void {
    const d = this.#d, noop = (): void => {};
    for (let cpu = 0; cpu < d.vcpus; cpu++) {
      const perCpu = [this.xen.bindVirq(this.domain, VIRQ.TIMER, cpu)];
      for (let i = 0; i < 6; i++) {
        perCpu.push(this.xen.bindIpi(this.domain, cpu));
      }
      if (this.#fifo === undefined) {
        perCpu.push(this.xen.bindVirq(this.domain, VIRQ.DEBUG, cpu));
      }
      for (const port of perCpu) {
        this.#bind(port, noop, 0);
        this.#countOnCpu(port, cpu);
      }
    }
    if (d.privileged) {
      for (const virq of [VIRQ.CONSOLE, VIRQ.PCPU_STATE, VIRQ.MCA]) {
        this.bindBalanced(this.xen.bindVirq(this.domain, virq, 0), noop, false);
      }
      for (const pirq of [9, 16, 17, 18, 19, 20]) {
        this.bindBalanced(this.xen.bindPirq(this.domain, pirq), noop, false);
      }
      this.xen.allocUnbound(this.domain, this.domain, 0); // xenstore
    }
  }

  /** `bind_evtchn_to_cpu`: Linux's count of channels per CPU. */
  #countOnCpu(port: number, cpu: number): void {
    const old = this.#portCpu[port];
    if (old !== NO_CPU) this.#channelsOnCpu[old]--;
    this.#portCpu[port] = cpu;
    if (cpu !== NO_CPU) this.#channelsOnCpu[cpu]++;
  }

  /**
   * `xen_rebind_evtchn_to_cpu`: mask for the move, EVTCHNOP_bind_vcpu, and
   * only if Xen agreed, count the port on the new CPU.
   */
  #rebind(port: number, cpu: number): void {
    this.#mask(port, MASK_TEMPORARY);
    try {
      this.xen.bindVcpu(this.domain, port, cpu);
      this.#countOnCpu(port, cpu);
    } catch (error) {
      // "usually just indicates that we're dealing with a virq or IPI
      // channel, which don't actually need to be rebound"
      if (!(error instanceof EventChannelError)) throw error;
    }
    this.#unmask(port, MASK_TEMPORARY);
  }

  /**
   * Binds a port a user of the kernel (a driver) asked for: it is unmasked
   * (IRQ startup), then its affinity is set to the online CPU with the fewest
   * channels, ties to the lowest (`select_target_cpu`), as Linux 6.1 does for
   * every non-per-CPU IRQ; the port itself is counted only once Xen accepted
   * the move (`bind_evtchn_to_cpu` after EVTCHNOP_bind_vcpu).
   *
   * @param port The port.
   * @param handler Called on each delivery.
   * @param lateEoi Whether each delivery masks it until `lateEoi`.
   */
  bindBalanced(
    port: number,
    handler: (port: number) => void,
    lateEoi: boolean,
  ): void {
    this.#bind(port, handler, lateEoi ? LATE_EOI : 0);
    let best = 0;
    for (let cpu = 1; cpu < this.#d.vcpus; cpu++) {
      if (this.#channelsOnCpu[cpu] < this.#channelsOnCpu[best]) best = cpu;
    }
    this.#rebind(port, best);
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
      const cpus = new Uint8Array(size).fill(NO_CPU);
      cpus.set(this.#portCpu);
      this.#portCpu = cpus;
    }
    this.#setupPort(port);
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
    this.#countOnCpu(port, NO_CPU);
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
    if ((flags & MASK_REASONS) === 0) this.#d.abi.mask(port);
  }

  #unmask(port: number, reason: number): void {
    const flags = this.#flags[port];
    if (!(flags & BOUND) || !(flags & reason)) return;
    this.#flags[port] = flags & ~reason;
    if ((flags & MASK_REASONS & ~reason) === 0) {
      // evtchn_2l_unmask / evtchn_fifo_unmask: the guest clears the mask in
      // its own memory and re-raises a pending event itself (2-level) or
      // through EVTCHNOP_unmask (FIFO); both end in the bit operations of
      // Xen's unmask for the port's vCPU, without the dispatcher's checks.
      const d = this.#d;
      if (d.isUsable(port)) d.abi.unmask(port, d.notifyVcpu[port]);
    }
  }

  #upcall(vcpu: number): void {
    // After an EVTCHNOP_reset behind its back the kernel's ABI is gone.
    if (this.#d.abi.name !== this.eventAbi) return;
    // __xen_evtchn_do_upcall clears the flag before handling, for both ABIs.
    this.#d.sharedInfo.exchangeUpcallPending(vcpu, 0);
    this.#consumer.handleEvents(vcpu, this.#handlePort);
  }
}
