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
import type { Domain } from "./hypervisor/domain.ts";
import { TwoLevelConsumer } from "./linux/events_2l.ts";
import { FifoConsumer } from "./linux/events_fifo.ts";
import type { FifoAbi } from "./hypervisor/event_fifo.ts";
import {
  EVTCHN_FIFO_BIT,
  EVTCHN_FIFO_EVENT_WORDS_PER_PAGE,
  EVTCHN_FIFO_NR_CHANNELS,
} from "../../xen/event_channel.ts";
import type { Hypervisor } from "./hypervisor/hypervisor.ts";
import type { HostPort } from "../../host.ts";
import {
  defaultProfile,
  type KernelProfile,
  movable,
  selectTargetCpu,
} from "./linux/profile.ts";

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
   * Bind what the kernel binds at boot (its profile's ports: VIRQ_TIMER and
   * IPIs per vCPU, in dom0 also global VIRQs, PIRQs and xenstore's port), so
   * that user programs see the kernel's ports taken as on a real host.
   * Default true.
   */
  bootPorts?: boolean;
  /**
   * The event ABI the kernel sets up: `"fifo"` (Linux 6.1's default on Xen
   * 4.17) or `"2l"` (kernel argument `xen.fifo_events=0`). Default `"fifo"`,
   * or the profile's.
   */
  eventAbi?: "fifo" | "2l";
  /**
   * What the kernel holds at boot: a snapshot's profile (`profileFromSnapshot`)
   * to reproduce a real host, or by default the reference dom0's
   * (`defaultProfile`). Its vCPUs must be the domain's.
   */
  profile?: KernelProfile;
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
  /** The ABI the kernel set up at boot, by its `EventAbi` name. */
  #abiName: "fifo" | "2l";
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
    const eventAbi = options.profile?.eventAbi ?? options.eventAbi ?? "fifo";
    // A literal, so that the check on each upcall compares interned strings.
    this.#abiName = eventAbi === "fifo" ? "fifo" : "2l";
    if (eventAbi === "fifo") {
      // evtchn_fifo_init: a control block per vCPU (the first switches the
      // domain to FIFO); event array pages come with the first binds.
      for (let cpu = 0; cpu < d.vcpus; cpu++) {
        xen.evtchnInitControl(domain, d.allocGuestPage(), 0, cpu);
      }
      this.#fifo = d.abi as FifoAbi;
      this.#consumer = new FifoConsumer(this.#fifo, d.vcpus);
    } else {
      this.#consumer = new TwoLevelConsumer(d);
      d.sharedInfo.mask.fill(0xffff_ffff); // xen_evtchn_mask_all()
    }
    d.upcall = (vcpu) => this.#upcall(vcpu);
    if (options.bootPorts ?? true) {
      this.#boot(
        options.profile ??
          defaultProfile({ eventAbi, vcpus: d.vcpus, dom0: d.privileged }),
      );
    }
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
      this.#d.guestPages.get(gfn)!.fill(1 << EVTCHN_FIFO_BIT.MASKED);
      this.xen.evtchnExpandArray(this.domain, gfn);
    }
  }

  /** Number of the guest's vCPUs. */
  get vcpus(): number {
    return this.#d.vcpus;
  }

  /**
   * Recreates the kernel's ports of a profile: each at its number (free
   * ports in between are allocated and closed again, so that Xen's
   * lowest-free allocation lands on it), in its state, on its vCPU, bound to
   * an IRQ and counted on that vCPU as Linux counts it; then the FIFO event
   * array and Xen's port storage grow to the profile's size.
   */
  #boot(profile: KernelProfile): void {
    const d = this.#d, xen = this.xen, dom = this.domain;
    if (profile.vcpus !== d.vcpus || profile.eventAbi !== this.eventAbi) {
      throw new EventChannelError("boot", "EINVAL", {
        argument: "profile",
        detail:
          `profile is for ${profile.vcpus} vCPUs (${profile.eventAbi}), ` +
          `domain ${dom} has ${d.vcpus} (${this.eventAbi})`,
      });
    }
    const noop = (): void => {};
    const fillers: number[] = [];
    for (const p of profile.ports) {
      for (;;) {
        const free = xen.allocUnbound(dom, dom, dom);
        if (free < p.port) {
          fillers.push(free);
          continue;
        }
        xen.close(dom, free);
        if (free > p.port) {
          throw new EventChannelError("boot", "EEXIST", {
            argument: "port",
            value: p.port,
            detail: "the profile lists a port twice or out of order",
          });
        }
        break;
      }
      const port = this.#create(p);
      this.#bind(port, noop, 0);
      this.#countOnCpu(port, p.vcpu);
    }
    for (const port of fillers) xen.close(dom, port);
    this.#setupPort(
      profile.eventArrayPages * EVTCHN_FIFO_EVENT_WORDS_PER_PAGE - 1,
    );
    d.reserveStorage(profile.validPorts);
  }

  /** One kernel port of a profile, made the way the kernel made it. */
  #create(p: HostPort): number {
    const xen = this.xen, dom = this.domain;
    let port: number;
    switch (p.status) {
      case "virq":
        // A per-vCPU VIRQ is bound on its vCPU; a global one on vCPU 0,
        // then moved.
        port = xen.bindVirq(dom, p.virq, movable(p) ? 0 : p.vcpu);
        break;
      case "ipi":
        return xen.bindIpi(dom, p.vcpu);
      case "pirq":
        port = xen.bindPirq(dom, p.pirq);
        break;
      case "unbound":
        port = xen.allocUnbound(dom, dom, p.remoteDomain);
        break;
      case "interdomain":
        if (p.remoteDomain !== dom) {
          throw new EventChannelError("boot", "EINVAL", {
            argument: "port",
            value: p.port,
            detail: `interdomain port to domain ${p.remoteDomain}: ` +
              "only loopback channels of the kernel can be recreated",
          });
        }
        // The lower end is offered first, the higher one binds to it.
        port = p.remotePort > p.port
          ? xen.allocUnbound(dom, dom, dom)
          : xen.bindInterdomain(dom, dom, p.remotePort);
        break;
    }
    if (movable(p) && p.vcpu !== 0) xen.bindVcpu(dom, port, p.vcpu);
    return port;
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
      this.xen.evtchnBindVcpu(this.domain, port, cpu);
      this.#countOnCpu(port, cpu);
    } catch (error) {
      // "usually just indicates that we're dealing with a virq or IPI
      // channel, which don't actually need to be rebound"
      if (!(error instanceof EventChannelError)) throw error;
    }
    this.#unmask(port, MASK_TEMPORARY);
  }

  /**
   * Binds a port a user of the kernel (a driver) asked for, as Linux 6.1's
   * `bind_evtchn_to_irq_chip` and IRQ startup do: the port is counted on
   * CPU 0 (`bind_evtchn_to_cpu(evtchn, 0, false)`) and unmasked, then its
   * affinity goes to the online CPU with the fewest channels, the new port
   * still counted on CPU 0, ties to the lowest (`select_target_cpu`); the
   * count moves only if Xen accepts `EVTCHNOP_bind_vcpu`, so a per-vCPU VIRQ
   * stays counted on CPU 0.
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
    this.#countOnCpu(port, 0);
    this.#rebind(port, selectTargetCpu(this.#channelsOnCpu, this.#d.vcpus));
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
    this.xen.evtchnUnmask(this.domain, port);
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
      this.xen.evtchnClose(this.domain, port);
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
    // The result is ignored, so no error is built for a refusal.
    this.xen.sendQuiet(this.domain, port);
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
      if (d.isUsable(port)) d.abi.unmask(port, d.portNotifyVcpu(port));
    }
  }

  #upcall(vcpu: number): void {
    // After an EVTCHNOP_reset behind its back the kernel's ABI is gone.
    if (this.#d.abi.name !== this.#abiName) return;
    // __xen_evtchn_do_upcall clears the flag before handling, for both ABIs.
    this.#d.sharedInfo.exchangeUpcallPending(vcpu, 0);
    this.#consumer.handleEvents(vcpu, this.#handlePort);
  }
}
