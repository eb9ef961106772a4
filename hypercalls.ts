/**
 * The dom0 hypercall level: the `EVTCHNOP_*` operations that a control domain
 * issues directly (libxenctrl's `xc_evtchn_status`, `xc_evtchn_alloc_unbound`
 * and `xc_evtchn_reset`), which the evtchn device does not offer.
 *
 * @module
 */

import type { ChannelStatusName } from "./xen/event_channel.ts";
import { EventChannelError } from "./errors.ts";
import { DOMID_SELF } from "./xen/domid.ts";

/**
 * What `EVTCHNOP_status` reports for one port: its state, its notify vCPU and
 * the state's own fields (`u` in `struct evtchn_status`).
 *
 * @example
 * ```ts
 * import type { ChannelStatus } from "./hypercalls.ts";
 * import { MemoryXen } from "./mod.ts";
 * import assert from "node:assert/strict";
 * const hc = new MemoryXen().hypercalls(0);
 * const port = hc.allocUnbound(0, 1);
 * const status: ChannelStatus = hc.status(0, port);
 * assert.deepEqual(status, { status: "unbound", vcpu: 0, remoteDomain: 1 });
 * ```
 */
export type ChannelStatus =
  | { status: "closed"; vcpu: number }
  | { status: "unbound"; vcpu: number; remoteDomain: number }
  | {
    status: "interdomain";
    vcpu: number;
    remoteDomain: number;
    remotePort: number;
  }
  | { status: "pirq"; vcpu: number; pirq: number }
  | { status: "virq"; vcpu: number; virq: number }
  | { status: "ipi"; vcpu: number };

/** Every state name `EVTCHNOP_status` can report. */
export type { ChannelStatusName };

/**
 * Event-channel hypercalls issued by one calling domain on any domain, with
 * Xen's checks (privilege, domain lookup, port validity). Failures throw
 * `EventChannelError` carrying Xen's errno.
 *
 * @example On the in-memory hypervisor
 * ```ts
 * import { MemoryXen } from "./backends/memory/mod.ts";
 * import assert from "node:assert/strict";
 * const xen = new MemoryXen();
 * xen.createDomain({ domain: 1 });
 * const dom0 = xen.hypercalls(0);
 * const port = dom0.allocUnbound(1, 0);
 * assert.deepEqual(dom0.status(1, port), {
 *   status: "unbound",
 *   vcpu: 0,
 *   remoteDomain: 0,
 * });
 * ```
 */
export interface Dom0Hypercalls {
  /** `EVTCHNOP_status` of `port` in `domain`. */
  status(domain: number, port: number): ChannelStatus;
  /** `EVTCHNOP_alloc_unbound` in `domain` for `remoteDomain`; the port. */
  allocUnbound(domain: number, remoteDomain: number): number;
  /**
   * `EVTCHNOP_reset` of `domain`. Every backend refuses the control
   * domain's own reset (dom0, or `DOMID_SELF` from dom0) with `EPERM` before
   * any hypercall ({@linkcode refuseControlDomainReset}): it would close
   * the kernel's own ports (timers, IPIs, xenstore) under it.
   */
  reset(domain: number): void;
}

/**
 * The one refusal every {@linkcode Dom0Hypercalls} backend makes in front of
 * `EVTCHNOP_reset`: the calling control domain resetting itself. Xen would
 * do it (dom0 is privileged over itself) and close every port its kernel
 * holds; no tool wants that, so it is `EPERM` on the model and on a real
 * host alike.
 *
 * @param caller The calling domain.
 * @param domain The domain to reset.
 * @throws {EventChannelError} `reset` with `EPERM` for dom0 resetting itself.
 *
 * @example
 * ```ts
 * import { refuseControlDomainReset } from "./hypercalls.ts";
 * import assert from "node:assert/strict";
 * assert.throws(() => refuseControlDomainReset(0, 0x7ff0), /EPERM/);
 * refuseControlDomainReset(0, 5); // another domain: fine
 * ```
 */
export function refuseControlDomainReset(caller: number, domain: number): void {
  if (caller === 0 && (domain === 0 || domain === DOMID_SELF)) {
    throw new EventChannelError("reset", "EPERM", {
      argument: "dom",
      value: domain,
      detail: "refusing to reset the control domain's own event channels",
    });
  }
}
