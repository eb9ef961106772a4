/**
 * The contract between the public {@linkcode EventChannelHandle} and a
 * backend: the operations of one open `/dev/xen/evtchn` file description,
 * with arguments already checked.
 *
 * @module
 */

/**
 * Most ports one `read()` or `write()` of the device carries: Linux caps
 * both at `PAGE_SIZE` bytes (`drivers/xen/evtchn.c`, `evtchn_read` and
 * `evtchn_write`), 4096 / `sizeof(evtchn_port_t)`.
 *
 * @example
 * ```ts
 * import { MAX_PORTS_PER_CALL } from "./device.ts";
 * import assert from "node:assert/strict";
 * assert.equal(MAX_PORTS_PER_CALL, 1024);
 * ```
 */
export const MAX_PORTS_PER_CALL = 1024;

/**
 * Longest synchronous wait, in milliseconds
 * ({@linkcode EventChannelDevice.readableSync}, the handle's `nextSync` and
 * `drain`): the calling thread is blocked meanwhile, and nothing on it (a
 * `close()`, a timer, a Worker's `terminate()`) takes effect before the wait
 * returns, so a loop waits again rather than long.
 *
 * @example
 * ```ts
 * import { MAX_SYNC_WAIT_MS } from "./device.ts";
 * import assert from "node:assert/strict";
 * assert.equal(MAX_SYNC_WAIT_MS, 10_000);
 * ```
 */
export const MAX_SYNC_WAIT_MS = 10_000;

/**
 * One open event-channel device, as a backend implements it. Every argument
 * arrives validated by {@linkcode EventChannelHandle} (ports are uint32,
 * domains uint16, VIRQs uint32); a backend reports refusals by throwing
 * {@linkcode EventChannelError} with Linux's errno for the ioctl.
 *
 * The methods mirror Linux's `drivers/xen/evtchn.c`: one per ioctl, plus
 * `read` and `write` of little-endian u32 port numbers.
 *
 * @example A one-port device behind a handle, which checks arguments first
 * ```ts
 * import type { EventChannelDevice } from "./device.ts";
 * import { EventChannelError } from "./errors.ts";
 * import { EventChannelHandle } from "./handle.ts";
 * import assert from "node:assert/strict";
 *
 * const calls: string[] = [];
 * const unsupported = (): never => {
 *   throw new EventChannelError("ioctl", "ENOSYS");
 * };
 * const device: EventChannelDevice = {
 *   backend: "example",
 *   bindUnboundPort(remoteDomain) {
 *     calls.push(`bind_unbound_port ${remoteDomain}`);
 *     return 5;
 *   },
 *   bindInterdomain: unsupported,
 *   bindVirq: unsupported,
 *   unbind: (port) => void calls.push(`unbind ${port}`),
 *   notify: unsupported,
 *   reset: () => {},
 *   restrictDomain: unsupported,
 *   read: () => null,
 *   write: (buffer) => buffer.length,
 *   readPorts: () => 0,
 *   writePorts: () => {},
 *   readableSync: () => false,
 *   readable: () => Promise.resolve(),
 *   close: () => void calls.push("close"),
 * };
 * const handle = new EventChannelHandle(device);
 * assert.equal(handle.backend, "example");
 * assert.equal(handle.bindUnboundPort(1), 5);
 * // A domain id beyond uint16 never reaches the device.
 * assert.throws(() => handle.bindUnboundPort(70_000), { code: "EINVAL" });
 * handle.unbind(5);
 * await handle.close();
 * assert.deepEqual(calls, ["bind_unbound_port 1", "unbind 5", "close"]);
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
   * `read()` into native-order u32s: copies up to `ports.length` entries
   * (at most {@linkcode MAX_PORTS_PER_CALL}) into `ports` and returns how
   * many, 0 when the ring is empty or `ports` is empty. Throws as `read`.
   */
  readPorts(ports: Uint32Array): number;
  /**
   * `write()` of `ports[0..count)`: re-enables each listed port this device
   * owns. `count` is an integer from 0 to
   * min(`ports.length`, {@linkcode MAX_PORTS_PER_CALL}).
   */
  writePorts(ports: Uint32Array, count: number): void;
  /**
   * Blocks the calling thread until `read` has something to report (entries
   * or an error) or `timeoutMs` (an integer from 0 to
   * {@linkcode MAX_SYNC_WAIT_MS}) has passed; returns whether it has. A
   * backend whose events are produced on this same thread (the in-memory
   * model) cannot block: it answers for the present at once.
   */
  readableSync(timeoutMs: number): boolean;
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
