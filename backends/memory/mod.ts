/**
 * The `memory` backend: Xen's event-channel subsystem and Linux's
 * `/dev/xen/evtchn` driver, modelled in memory. No permissions needed.
 *
 * @example
 * ```ts
 * import { MemoryXen } from "./mod.ts";
 * import assert from "node:assert/strict";
 * const xen = new MemoryXen();
 * xen.createDomain({ domain: 1 });
 * await using dom0 = xen.open(0);
 * await using domU = xen.open(1);
 * const offered = domU.bindUnboundPort(0);
 * const port = dom0.bindInterdomain(1, offered);
 * assert.equal(dom0.poll(), port); // pending right after bind
 * ```
 *
 * @module
 */

import { EventChannelHandle } from "../../handle.ts";
import type { Dom0Hypercalls } from "../../hypercalls.ts";
import { EventChannelError } from "../../errors.ts";
import type { Domain, DomainOptions } from "./hypervisor/domain.ts";
import { Hypervisor } from "./hypervisor/hypervisor.ts";
import { MemoryEvtchnDevice } from "./evtchn_device.ts";
import { LinuxGuest } from "./linux_guest.ts";

export { Hypervisor } from "./hypervisor/hypervisor.ts";
export { checkInvariants } from "./hypervisor/invariants.ts";
export type { Domain, DomainOptions } from "./hypervisor/domain.ts";
export type { EventAbi } from "./hypervisor/event_abi.ts";
export { TwoLevelAbi } from "./hypervisor/event_2l.ts";
export { FifoAbi } from "./hypervisor/event_fifo.ts";
export { SharedInfo } from "./hypervisor/shared_info.ts";
export { LinuxGuest, type LinuxGuestOptions } from "./linux_guest.ts";
export { MemoryEvtchnDevice } from "./evtchn_device.ts";

/** Options for a modelled domain with its Linux kernel. */
export interface MemoryDomainOptions extends DomainOptions {
  /** Boot a Linux guest in it (needed to open handles). Default true. */
  linux?: boolean;
  /** Bind the kernel's own ports at boot, as Linux does. Default true. */
  bootPorts?: boolean;
  /** The guest kernel's event ABI: `"fifo"` (default) or `"2l"`. */
  eventAbi?: "fifo" | "2l";
}

/** Options for {@linkcode MemoryXen}. */
export interface MemoryXenOptions {
  /** dom0's vCPUs (default 2, like the project's real-Xen VM). */
  vcpus?: number;
  /** Bind dom0 kernel's own ports at boot. Default true. */
  bootPorts?: boolean;
  /**
   * Event ABI of every Linux guest: `"fifo"` (default, as Linux 6.1 on Xen
   * 4.17) or `"2l"` (as with `xen.fifo_events=0`).
   */
  eventAbi?: "fifo" | "2l";
}

/**
 * A modelled Xen host: the hypervisor with a privileged dom0 running Linux,
 * more domains on request, and `/dev/xen/evtchn` handles in any domain
 * running Linux.
 *
 * @example dom0 allocates for a domU through the hypercall level
 * ```ts
 * import { MemoryXen } from "./mod.ts";
 * import assert from "node:assert/strict";
 * const xen = new MemoryXen();
 * xen.createDomain({ domain: 3 });
 * const port = xen.hypercalls(0).allocUnbound(3, 0);
 * assert.equal(xen.hypercalls(0).status(3, port).status, "unbound");
 * ```
 */
export class MemoryXen {
  /** The hypervisor model. */
  readonly hypervisor: Hypervisor = new Hypervisor();
  #guests = new Map<number, LinuxGuest>();
  #eventAbi: "fifo" | "2l";

  /**
   * Boots the host with dom0.
   *
   * @param options dom0's vCPUs and boot ports.
   */
  constructor(options: MemoryXenOptions = {}) {
    this.#eventAbi = options.eventAbi ?? "fifo";
    this.createDomain({
      domain: 0,
      privileged: true,
      vcpus: options.vcpus ?? 2,
      bootPorts: options.bootPorts,
    });
  }

  /**
   * Creates a domain, by default running Linux.
   *
   * @param options The domain and its guest.
   * @returns The domain's model.
   */
  createDomain(options: MemoryDomainOptions): Domain {
    const domain = this.hypervisor.createDomain(options);
    if (options.linux ?? true) {
      this.#guests.set(
        domain.id,
        new LinuxGuest(this.hypervisor, domain.id, {
          bootPorts: options.bootPorts,
          eventAbi: options.eventAbi ?? this.#eventAbi,
        }),
      );
    }
    return domain;
  }

  /**
   * Destroys a domain (Xen's teardown; peers become unbound).
   *
   * @param domain The domain id.
   */
  destroyDomain(domain: number): void {
    this.hypervisor.destroyDomain(domain);
    this.#guests.delete(domain);
  }

  /**
   * The Linux guest of a domain.
   *
   * @param domain The domain id.
   * @returns The guest, or `undefined` when the domain runs none.
   */
  guest(domain: number): LinuxGuest | undefined {
    return this.#guests.get(domain);
  }

  /**
   * Opens `/dev/xen/evtchn` in a domain running Linux.
   *
   * @param domain The domain id (default dom0).
   * @returns A handle.
   * @throws {EventChannelError} `ENOENT` when the domain runs no Linux.
   */
  open(domain = 0): EventChannelHandle {
    const guest = this.#guests.get(domain);
    if (guest === undefined) {
      throw new EventChannelError("open", "ENOENT", {
        argument: "domain",
        value: domain,
        detail: "no Linux guest with /dev/xen/evtchn in that domain",
      });
    }
    return new EventChannelHandle(new MemoryEvtchnDevice(guest));
  }

  /**
   * The dom0-level hypercalls, issued as `caller`.
   *
   * @param caller The calling domain (default dom0).
   * @returns The hypercalls.
   */
  hypercalls(caller = 0): Dom0Hypercalls {
    const xen = this.hypervisor;
    return {
      status: (domain, port) => xen.status(caller, domain, port),
      allocUnbound: (domain, remote) =>
        xen.allocUnbound(caller, domain, remote),
      reset: (domain) => xen.reset(caller, domain),
    };
  }
}
