/**
 * The one device interface: a process's handle on event channels, the shape
 * of libxenevtchn and of Linux's `/dev/xen/evtchn`, in front of any backend.
 *
 * @module
 */

import {
  type EventChannelDevice,
  MAX_PORTS_PER_CALL,
  MAX_SYNC_WAIT_MS,
} from "./device.ts";
import { EventChannelError } from "./errors.ts";
import { DOMID_MAX } from "./xen/domid.ts";
import { checkUint, isUint32, UINT32_MAX } from "./util/validate.ts";

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

/**
 * A port list for `drain`/`unmaskAll`: a `Uint32Array` over memory that is
 * still there, else `EFAULT` (a bad pointer to Linux), nothing done.
 */
function checkPorts(op: string, ports: unknown): Uint32Array {
  if (!(ports instanceof Uint32Array)) {
    throw new EventChannelError(op, "EFAULT", {
      argument: "ports",
      value: describe(ports),
      detail: "expected a Uint32Array",
    });
  }
  // Detached, it reads as length 0: "nothing pending", silently.
  if ((ports.buffer as { detached?: boolean }).detached === true) {
    throw new EventChannelError(op, "EFAULT", {
      argument: "ports",
      detail: "the array's memory is detached",
    });
  }
  return ports;
}

/**
 * A synchronous wait's timeout: an integer number of milliseconds from 0 to
 * `MAX_SYNC_WAIT_MS`, else `EINVAL` before anything is read.
 */
function checkTimeout(op: string, timeoutMs: unknown): number {
  if (
    typeof timeoutMs === "number" && timeoutMs >>> 0 === timeoutMs &&
    timeoutMs <= MAX_SYNC_WAIT_MS
  ) {
    return timeoutMs;
  }
  return checkUint(op, "timeout", timeoutMs, MAX_SYNC_WAIT_MS);
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
    const port = this.#readOne(this.#open("read"));
    return port < 0 ? undefined : port;
  }

  /**
   * The next pending port, waiting for it on the calling thread for up to
   * `timeoutMs` milliseconds: the synchronous wait of a dedicated loop (a
   * Worker, a command-line tool), cheaper than `await next()` because
   * nothing is handed to another thread and no promise is made. The whole
   * thread, event loop included, is blocked while it waits, hence the bound
   * ({@linkcode MAX_SYNC_WAIT_MS}, 10 s): a loop calls it again.
   *
   * On the `linux` backend the pending port is read first (one `read(2)`),
   * and only when there is none does `poll(2)` sleep on the device. On the
   * `memory` backend events are produced by this same thread, so nothing
   * can arrive while it waits: it returns what is pending or, at once,
   * `undefined`.
   *
   * @param timeoutMs How long to wait, an integer from 0 (do not wait:
   * {@linkcode EventChannelHandle.poll}) to 10,000; default 0.
   * @returns The port, or `undefined` when none arrived in time (also, on
   * `linux`, when another reader of the same file description took it, or a
   * signal interrupted the wait).
   * @throws {EventChannelError} `EINVAL` (argument `timeout`) for a timeout
   * that is not such an integer; `EFBIG` after the ring overflowed; `EBADF`
   * when the handle is closed.
   *
   * @example A loop that takes what is pending, waiting 10 ms at most
   * ```ts
   * import { MemoryXen } from "./backends/memory/mod.ts";
   * import assert from "node:assert/strict";
   *
   * const xen = new MemoryXen();
   * using a = xen.open(0);
   * using b = xen.open(0);
   * const local = b.bindInterdomain(0, a.bindUnboundPort(0));
   * assert.equal(b.nextSync(10), local); // pending since the bind
   * b.unmask(local);
   * assert.equal(b.nextSync(10), undefined); // memory: at once
   * ```
   */
  nextSync(timeoutMs: number = 0): number | undefined {
    const device = this.#open("read");
    checkTimeout("read", timeoutMs);
    const port = this.#readOne(device);
    if (port >= 0 || timeoutMs === 0) return port < 0 ? undefined : port;
    return this.#waitOne(device, timeoutMs);
  }

  /** The slow path of `nextSync`: nothing was pending. */
  #waitOne(device: EventChannelDevice, timeoutMs: number): number | undefined {
    const deadline = performance.now() + timeoutMs;
    while (device.readableSync(timeoutMs)) {
      const port = this.#readOne(device);
      if (port >= 0) return port;
      // Readable, yet another reader was first: wait out the rest.
      timeoutMs = Math.ceil(deadline - performance.now());
      if (timeoutMs <= 0) break;
    }
    return undefined;
  }

  /** One port from the device, or -1 when none is pending. */
  #readOne(device: EventChannelDevice): number {
    if (this.#direct) return device.readPort!();
    return device.read(this.#one) === 4 ? this.#oneView.getUint32(0, true) : -1;
  }

  /**
   * Takes every pending port at once, in one `read(2)` on `linux`: fills
   * `ports` from index 0 in the order they fired and returns how many
   * (at most `ports.length`, and at most {@linkcode MAX_PORTS_PER_CALL},
   * 1024, Linux's cap of one read). Each port taken is masked until it is
   * unmasked, as with {@linkcode EventChannelHandle.poll}; hand the same
   * array to {@linkcode EventChannelHandle.unmaskAll} to re-enable them all
   * in one `write(2)`. Nothing is allocated.
   *
   * With a `timeoutMs` and nothing pending, it first waits for an event on
   * the calling thread, as {@linkcode EventChannelHandle.nextSync} does
   * (the same bound; on `memory` it does not wait).
   *
   * @param ports Where the ports go (native-order u32s, the kernel's
   * `evtchn_port_t`).
   * @param timeoutMs How long to wait when nothing is pending, an integer
   * from 0 (default: do not wait) to 10,000.
   * @returns How many ports were taken; 0 when none (or `ports` is empty).
   * @throws {EventChannelError} `EFAULT` (argument `ports`) when `ports` is
   * not a `Uint32Array` or its memory is detached; `EINVAL` (argument
   * `timeout`) for a bad timeout; `EFBIG` after the ring overflowed;
   * `EBADF` when the handle is closed. Nothing is taken then.
   *
   * @example Drain a burst, unmask it in one call
   * ```ts
   * import { MemoryXen } from "./backends/memory/mod.ts";
   * import assert from "node:assert/strict";
   *
   * const xen = new MemoryXen();
   * using a = xen.open(0);
   * using b = xen.open(0);
   * const offered = [a.bindUnboundPort(0), a.bindUnboundPort(0)];
   * const local = offered.map((p) => b.bindInterdomain(0, p));
   * const ports = new Uint32Array(64);
   * let n = b.drain(ports); // the two bind-time events
   * b.unmaskAll(ports, n);
   * for (const p of offered) a.notify(p);
   * n = b.drain(ports);
   * assert.deepEqual([...ports.subarray(0, n)], local);
   * b.unmaskAll(ports, n);
   * assert.equal(b.drain(ports), 0);
   * ```
   */
  drain(ports: Uint32Array, timeoutMs: number = 0): number {
    const device = this.#open("read");
    checkPorts("read", ports);
    checkTimeout("read", timeoutMs);
    const n = device.readPorts(ports);
    if (n > 0 || timeoutMs === 0 || ports.length === 0) return n;
    return device.readableSync(timeoutMs) ? device.readPorts(ports) : 0;
  }

  /**
   * Unmasks `ports[0..count)` (one `write(2)` per
   * {@linkcode MAX_PORTS_PER_CALL} ports on `linux`): the batch
   * {@linkcode EventChannelHandle.unmask}, typically of what
   * {@linkcode EventChannelHandle.drain} took. Ports this handle does not
   * own are ignored, as Linux does. Nothing is allocated.
   *
   * @param ports The ports (native-order u32s).
   * @param count How many, from the start: an integer from 0 to
   * `ports.length` (default: all).
   * @throws {EventChannelError} `EFAULT` (argument `ports`) when `ports` is
   * not a `Uint32Array` or its memory is detached; `EINVAL` (argument
   * `count`) for a count that is not an integer in that range; `EBADF` when
   * the handle is closed. Nothing is unmasked then.
   */
  unmaskAll(ports: Uint32Array, count?: number): void {
    const device = this.#open("write");
    checkPorts("write", ports);
    let n = ports.length;
    if (count !== undefined) {
      n = isUint32(count) && count <= n
        ? count
        : checkUint("write", "count", count, n);
    }
    if (n <= MAX_PORTS_PER_CALL) {
      device.writePorts(ports, n);
      return;
    }
    for (let at = 0; at < n; at += MAX_PORTS_PER_CALL) {
      const part = Math.min(MAX_PORTS_PER_CALL, n - at);
      // Rare (over 1024 ports): a view per 1024 ports.
      device.writePorts(ports.subarray(at, at + part), part);
    }
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
    // The common case, an event already queued: one read, no allocation
    // beyond the promise itself.
    if (options !== undefined) {
      options = checkWaitOptions("next", options);
      options.signal?.throwIfAborted();
    } else options = NO_WAIT_OPTIONS;
    const first = this.#readOne(this.#open("read"));
    if (first >= 0) return first;
    let port: number | undefined;
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
