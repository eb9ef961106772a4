/**
 * The contract between the public {@linkcode EventChannelHandle} and a
 * backend: the operations of one open `/dev/xen/evtchn` file description,
 * with arguments already checked.
 *
 * @module
 */

/**
 * One open event-channel device, as a backend implements it. Every argument
 * arrives validated by {@linkcode EventChannelHandle} (ports are uint32,
 * domains uint16, VIRQs uint32); a backend reports refusals by throwing
 * {@linkcode EventChannelError} with Linux's errno for the ioctl.
 *
 * The methods mirror Linux's `drivers/xen/evtchn.c`: one per ioctl, plus
 * `read` and `write` of little-endian u32 port numbers.
 *
 * @example A do-nothing device for illustration
 * ```ts
 * import type { EventChannelDevice } from "./device.ts";
 * const device: Partial<EventChannelDevice> = { backend: "example" };
 * ```
 */
export interface EventChannelDevice {
  /** The backend's name, such as `"memory"` or `"linux"`. */
  readonly backend: string;
  /** `IOCTL_EVTCHN_BIND_UNBOUND_PORT`: returns the new port. */
  bindUnboundPort(remoteDomain: number): number;
  /** `IOCTL_EVTCHN_BIND_INTERDOMAIN`: returns the new local port. */
  bindInterdomain(remoteDomain: number, remotePort: number): number;
  /** `IOCTL_EVTCHN_BIND_VIRQ`: returns the new port. */
  bindVirq(virq: number): number;
  /** `IOCTL_EVTCHN_UNBIND`. */
  unbind(port: number): void;
  /** `IOCTL_EVTCHN_NOTIFY`. */
  notify(port: number): void;
  /** `IOCTL_EVTCHN_RESET`: empties the ring and clears overflow. */
  reset(): void;
  /** `IOCTL_EVTCHN_RESTRICT_DOMID`. */
  restrictDomain(domain: number): void;
  /**
   * `read()` without blocking: copies whole pending-port entries into
   * `buffer` and returns the byte count, or `null` when the ring is empty
   * (`EAGAIN`). Throws `EFBIG` after an overflow.
   */
  read(buffer: Uint8Array): number | null;
  /** `write()`: re-enables (unmasks) each listed port this device owns. */
  write(buffer: Uint8Array): number;
  /**
   * Optional: `read()` of one entry without a buffer, the handle's `poll`
   * fast path: the port, or -1 where `read` would return `null`; throws as
   * `read` does. A backend without it is read through a 4-byte buffer.
   */
  readPort?(): number;
  /**
   * Optional: `write()` of one port without a buffer, the handle's `unmask`
   * fast path; the port is a checked uint32. A backend without it is written
   * a 4-byte buffer.
   */
  writePort?(port: number): void;
  /**
   * Resolves once `read` has something to report (entries or an error), or
   * when `signal` aborts, or when the device is closed. It may resolve early;
   * callers read again and wait again.
   */
  readable(signal: AbortSignal): Promise<void>;
  /**
   * Unbinds every port and releases the device; wakes `readable` waiters.
   * Called once. May return a promise that settles when all is released.
   */
  close(): void | Promise<void>;
}
