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
 * @example
 * ```ts
 * import type { EventAbi } from "./event_abi.ts";
 * function pendingPorts(abi: EventAbi, ports: number[]): number[] {
 *   return ports.filter((p) => abi.isPending(p));
 * }
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
