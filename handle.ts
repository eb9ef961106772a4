/**
 * The one device interface: a process's handle on event channels, the shape
 * of libxenevtchn and of Linux's `/dev/xen/evtchn`, in front of any backend.
 *
 * @module
 */

import type { EventChannelDevice } from "./device.ts";
import { EventChannelError } from "./errors.ts";
import { DOMID_MAX } from "./xen/domid.ts";
import { checkUint, isUint32, UINT32_MAX } from "./_validate.ts";

/** Options for waiting on a handle. */
export interface WaitOptions {
  /** Aborting it rejects the wait with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * A buffer for `read`/`write`: a `Uint8Array` over memory that is still
 * there. Anything else is what a bad pointer is to Linux's `read(2)` and
 * `write(2)`: `EFAULT`, and nothing happens.
 */
function checkBuffer(op: string, buffer: unknown): Uint8Array {
  if (!(buffer instanceof Uint8Array)) {
    throw new EventChannelError(op, "EFAULT", {
      argument: "buffer",
      value: describe(buffer),
      detail: "expected a Uint8Array",
    });
  }
  // A detached buffer (transferred, or a resized-away ArrayBuffer) reads
  // as length 0, which would pass for "less than one port" (0) silently.
  if ((buffer.buffer as { detached?: boolean }).detached === true) {
    throw new EventChannelError(op, "EFAULT", {
      argument: "buffer",
      detail: "the buffer's memory is detached",
    });
  }
  return buffer;
}

/** What `undefined` wait options stand for: shared, so none is allocated. */
const NO_WAIT_OPTIONS: WaitOptions = Object.freeze({});

/**
 * Wait options: `undefined`, or an object whose `signal` is `undefined` or
 * an `AbortSignal`; otherwise `EINVAL`, before anything waits.
 */
function checkWaitOptions(op: string, options: unknown): WaitOptions {
  if (options === undefined) return NO_WAIT_OPTIONS;
  if (typeof options !== "object" || options === null) {
    throw new EventChannelError(op, "EINVAL", {
      argument: "options",
      value: describe(options),
      detail: "expected an object such as { signal }",
    });
  }
  const signal = (options as WaitOptions).signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new EventChannelError(op, "EINVAL", {
      argument: "signal",
      value: describe(signal),
      detail: "expected an AbortSignal",
    });
  }
  return options as WaitOptions;
}

/** A value for an error message: its type, not its (maybe huge) contents. */
function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value !== "object") return typeof value;
  return value.constructor?.name ?? "object";
}

/**
 * A process's handle on event channels in one domain: the equivalent of an
 * open `/dev/xen/evtchn` (or a libxenevtchn handle). Ports it binds belong to
 * it; a port that fires is masked and reported once through
 * {@linkcode EventChannelHandle.poll}, {@linkcode EventChannelHandle.next} or
 * the async iterator, and stays masked until
 * {@linkcode EventChannelHandle.unmask}.
 *
 * Every argument is checked here, once, before the backend sees it: ports and
 * VIRQs must be unsigned 32-bit integers and domains unsigned 16-bit ones,
 * otherwise the call throws {@linkcode EventChannelError} with `EINVAL` and
 * nothing changes.
 *
 * @example A dom0 loopback channel on the in-memory backend
 * ```ts
 * import { MemoryXen } from "./backends/memory/mod.ts";
 * import assert from "node:assert/strict";
 *
 * const xen = new MemoryXen();
 * using a = xen.open(0);
 * using b = xen.open(0);
 * const offered = a.bindUnboundPort(0);
 * const local = b.bindInterdomain(0, offered);
 * assert.equal(b.poll(), local); // Xen marks a new interdomain port pending
 * b.unmask(local);
 * a.notify(offered);
 * assert.equal(await b.next(), local);
 * b.unmask(local);
 * ```
 */
export class EventChannelHandle implements Disposable, AsyncDisposable {
  #device: EventChannelDevice;
  #closed = false;
  #closing = new AbortController();
  #released: Promise<void> | undefined;
  #one = new Uint8Array(4);
  #oneView = new DataView(this.#one.buffer);
  /** The device's one-port `read`/`write`, when it has them. */
  #direct: boolean;

  /**
   * Wraps a backend device. Use a backend's `open` rather than this.
   *
   * @param device The backend device.
   */
  constructor(device: EventChannelDevice) {
    this.#device = device;
    this.#direct = typeof device.readPort === "function" &&
      typeof device.writePort === "function";
  }

  /** The backend's name, such as `"memory"` or `"linux"`. */
  get backend(): string {
    return this.#device.backend;
  }

  /** Whether {@linkcode EventChannelHandle.close} has been called. */
  get closed(): boolean {
    return this.#closed;
  }

  #open(op: string): EventChannelDevice {
    if (this.#closed) {
      throw new EventChannelError(op, "EBADF", { detail: "handle is closed" });
    }
    return this.#device;
  }

  /**
   * Allocates a port that `remoteDomain` may connect to
   * (`IOCTL_EVTCHN_BIND_UNBOUND_PORT`).
   *
   * @param remoteDomain The domain allowed to bind to the port.
   * @returns The new port.
   * @throws {EventChannelError} `EACCES` when restricted, `ENOSPC` when the
   * domain has no free port.
   */
  bindUnboundPort(remoteDomain: number): number {
    const op = "bind_unbound_port";
    const device = this.#open(op);
    return device.bindUnboundPort(
      checkUint(op, "remote_domain", remoteDomain, DOMID_MAX),
    );
  }

  /**
   * Connects to an unbound port offered by `remoteDomain`
   * (`IOCTL_EVTCHN_BIND_INTERDOMAIN`). Xen marks the new local port pending
   * at once, so it is reported once without any notify.
   *
   * @param remoteDomain The domain that offered the port.
   * @param remotePort The offered port.
   * @returns The new local port.
   * @throws {EventChannelError} `ESRCH` for an unknown domain, `EINVAL` when
   * the remote port is not unbound for this domain.
   */
  bindInterdomain(remoteDomain: number, remotePort: number): number {
    const op = "bind_interdomain";
    const device = this.#open(op);
    return device.bindInterdomain(
      checkUint(op, "remote_domain", remoteDomain, DOMID_MAX),
      checkUint(op, "remote_port", remotePort, UINT32_MAX),
    );
  }

  /**
   * Binds a virtual IRQ on vCPU 0 (`IOCTL_EVTCHN_BIND_VIRQ`).
   *
   * @param virq The VIRQ number (see `VIRQ`).
   * @returns The new port.
   * @throws {EventChannelError} `EINVAL` for a VIRQ ≥ 24, `EEXIST` when it is
   * already bound, `EACCES` when restricted.
   */
  bindVirq(virq: number): number {
    const op = "bind_virq";
    const device = this.#open(op);
    return device.bindVirq(checkUint(op, "virq", virq, UINT32_MAX));
  }

  /**
   * Unbinds and closes a port of this handle (`IOCTL_EVTCHN_UNBIND`); an
   * interdomain peer becomes unbound.
   *
   * @param port The port.
   * @throws {EventChannelError} `ENOTCONN` when this handle does not own it,
   * `EINVAL` beyond the device's channel count.
   */
  unbind(port: number): void {
    const op = "unbind";
    this.#open(op).unbind(checkUint(op, "port", port, UINT32_MAX));
  }

  /**
   * Sends an event on a port of this handle (`IOCTL_EVTCHN_NOTIFY`).
   *
   * @param port The port.
   * @throws {EventChannelError} `ENOTCONN` when this handle does not own it.
   */
  notify(port: number): void {
    const device = this.#open("notify");
    device.notify(
      isUint32(port) ? port : checkUint("notify", "port", port, UINT32_MAX),
    );
  }

  /**
   * Re-enables a port after its event was consumed (a `write()` of the port
   * number). Ports this handle does not own are ignored, as Linux does.
   *
   * @param port The port.
   */
  unmask(port: number): void {
    const device = this.#open("unmask");
    if (!isUint32(port)) checkUint("unmask", "port", port, UINT32_MAX);
    if (this.#direct) {
      device.writePort!(port);
      return;
    }
    this.#oneView.setUint32(0, port, true);
    device.write(this.#one);
  }

  /**
   * Empties the pending ring and clears its overflow (`IOCTL_EVTCHN_RESET`).
   * Ports stay bound; ports whose entries were dropped stay masked.
   */
  reset(): void {
    this.#open("reset").reset();
  }

  /**
   * Restricts this handle, permanently, to binding interdomain channels with
   * one domain (`IOCTL_EVTCHN_RESTRICT_DOMID`).
   *
   * @param domain The domain; 0 and reserved ids are refused with `EINVAL`.
   * @throws {EventChannelError} `EACCES` when already restricted.
   */
  restrictDomain(domain: number): void {
    const op = "restrict_domid";
    const device = this.#open(op);
    device.restrictDomain(checkUint(op, "domid", domain, DOMID_MAX));
  }

  /**
   * The raw device `read()`, without blocking: fills `buffer` with
   * little-endian u32 ports and returns the byte count (0 when `buffer` holds
   * less than 4 bytes), or `null` when nothing is pending.
   *
   * @param buffer Where the ports go.
   * @returns Bytes read, or `null`.
   * @throws {EventChannelError} `EFBIG` after the ring overflowed, until
   * {@linkcode EventChannelHandle.reset}; `EFAULT` (argument `buffer`) when
   * `buffer` is not a `Uint8Array` or its memory is detached.
   */
  read(buffer: Uint8Array): number | null {
    const device = this.#open("read");
    return device.read(checkBuffer("read", buffer));
  }

  /**
   * The raw device `write()`: unmasks each listed little-endian u32 port this
   * handle owns and returns the bytes accepted (rounded down to whole ports,
   * at most 4096).
   *
   * @param buffer The ports.
   * @returns Bytes accepted.
   * @throws {EventChannelError} `EFAULT` (argument `buffer`) when `buffer` is
   * not a `Uint8Array` or its memory is detached; nothing is unmasked.
   */
  write(buffer: Uint8Array): number {
    const device = this.#open("write");
    return device.write(checkBuffer("write", buffer));
  }

  /**
   * The next pending port if one is waiting, without blocking.
   *
   * @returns The port, or `undefined` when none is pending.
   * @throws {EventChannelError} `EFBIG` after the ring overflowed.
   */
  poll(): number | undefined {
    const device = this.#open("read");
    if (this.#direct) {
      const port = device.readPort!();
      return port < 0 ? undefined : port;
    }
    const n = device.read(this.#one);
    return n === 4 ? this.#oneView.getUint32(0, true) : undefined;
  }

  /**
   * Waits for the next pending port.
   *
   * @param options An `AbortSignal` to give up waiting.
   * @returns The port.
   * @throws {EventChannelError} `EBADF` when the handle is closed while
   * waiting; `EINVAL` (argument `options` or `signal`) when `options` is not
   * an object or its `signal` not an `AbortSignal`; the signal's reason when
   * it aborts.
   */
  async next(options?: WaitOptions): Promise<number> {
    options = checkWaitOptions("next", options);
    options.signal?.throwIfAborted();
    let port = this.poll();
    if (port !== undefined) return port;
    // Combine the signals only when there is something to wait for: the
    // common case, an event already queued, allocates nothing.
    const signal = options.signal === undefined
      ? this.#closing.signal
      : AbortSignal.any([options.signal, this.#closing.signal]);
    while (true) {
      await this.#device.readable(signal);
      options.signal?.throwIfAborted();
      port = this.poll();
      if (port !== undefined) return port;
    }
  }

  /**
   * Pending ports as they arrive, until the handle is closed or the signal
   * aborts (then the iteration simply ends).
   *
   * @param options An `AbortSignal` that ends the iteration.
   * @returns An async iterator of ports.
   * @throws {EventChannelError} At once, not at the first iteration: `EINVAL`
   * (argument `options` or `signal`) when `options` is not an object or its
   * `signal` not an `AbortSignal`.
   */
  ports(options?: WaitOptions): AsyncGenerator<number, void> {
    return this.#ports(checkWaitOptions("ports", options));
  }

  async *#ports(options: WaitOptions): AsyncGenerator<number, void> {
    while (!this.#closed && !options.signal?.aborted) {
      try {
        yield await this.next(options);
      } catch (error) {
        if (this.#closed || options.signal?.aborted) return;
        throw error;
      }
    }
  }

  /**
   * Same as {@linkcode EventChannelHandle.ports} without a signal.
   *
   * @returns An async iterator of ports.
   */
  [Symbol.asyncIterator](): AsyncGenerator<number, void> {
    return this.ports();
  }

  /**
   * Unbinds every port of this handle and releases it; waiters are woken and
   * end. The handle is unusable at once; the promise settles when the backend
   * has released everything (a waiting `poll(2)` in the `linux` backend
   * returns first). Calling it again returns the same promise.
   *
   * @returns Settles when released.
   */
  close(): Promise<void> {
    if (this.#released === undefined) {
      this.#closed = true;
      this.#closing.abort(
        new EventChannelError("read", "EBADF", { detail: "handle was closed" }),
      );
      this.#released = Promise.resolve(this.#device.close());
    }
    return this.#released;
  }

  /** Closes the handle (for `using`); see {@linkcode EventChannelHandle.close}. */
  [Symbol.dispose](): void {
    void this.close();
  }

  /** Closes the handle and waits for its release (for `await using`). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
