/**
 * The delivery ABI of one domain, as Xen's `struct evtchn_port_ops`
 * (xen/common/event_channel.h): how a port is set pending, cleared, unmasked
 * and queried. Xen switches a domain between the 2-level and the FIFO ABI;
 * the model does the same by swapping the object that implements this.
 *
 * @module
 */

/**
 * A domain's event delivery ABI. Ports passed in are valid and usable (the
 * hypervisor checks `evtchn_usable` before calling, as Xen's wrappers in
 * `xen/include/xen/event.h` do).
 *
 * @example Code written against the interface, given the 2-level ABI
 * ```ts
 * import type { EventAbi } from "./event_abi.ts";
 * import { TwoLevelAbi } from "./event_2l.ts";
 * import { SharedInfo } from "./shared_info.ts";
 * import assert from "node:assert/strict";
 *
 * function pendingPorts(abi: EventAbi, ports: number[]): number[] {
 *   return ports.filter((p) => abi.isPending(p));
 * }
 * const upcalls: number[] = [];
 * const abi: EventAbi = new TwoLevelAbi(
 *   new SharedInfo(1),
 *   (vcpu) => upcalls.push(vcpu),
 * );
 * abi.mask(5);
 * abi.setPending(5, 0); // masked: pending, but no upcall
 * abi.setPending(70, 0);
 * assert.deepEqual(pendingPorts(abi, [5, 6, 70]), [5, 70]);
 * assert.deepEqual(upcalls, [0]); // for port 70 alone
 * ```
 */
export interface EventAbi {
  /** `"2l"` or `"fifo"`. */
  readonly name: "2l" | "fifo";
  /** `max_evtchns()`: ports this ABI can address. */
  readonly maxChannels: number;
  /** `set_pending`: mark `port` pending towards vCPU `vcpu`. */
  setPending(port: number, vcpu: number): void;
  /** `clear_pending`: on free only. */
  clearPending(port: number): void;
  /** `unmask`: clear the mask and re-deliver if pending. */
  unmask(port: number, vcpu: number): void;
  /** `is_pending`. */
  isPending(port: number): boolean;
  /** `is_masked`. */
  isMasked(port: number): boolean;
  /** `is_busy`: FIFO ports still linked in a queue cannot be reused. */
  isBusy(port: number): boolean;
  /** `init` on bind: FIFO resets the priority. */
  initPort(port: number): void;
  /** The guest masks a port by writing its own memory (not a hypercall). */
  mask(port: number): void;
}
