/**
 * The `linux` backend's device: one open `/dev/xen/evtchn`, driven through
 * libc with Deno FFI.
 *
 * Every ioctl, `read` and `write` is a synchronous call on the JS thread
 * through `_syscall.ts`, whose result carries the kernel's errno (nothing
 * the runtime does after the call can change it). The fd is
 * opened `O_NONBLOCK`, so none of them ever sleeps. There are two ways to
 * wait. The asynchronous one (`readable`): at most one nonblocking `poll(2)`
 * per device is parked on Deno's blocking pool, over the device fd and an
 * `eventfd` that {@linkcode LinuxEvtchnDevice.close} (or the last waiter
 * leaving) writes to wake it, with a finite timeout as a backstop. The
 * synchronous one (`readableSync`): `poll(2)` on the device fd alone, on the
 * calling thread, for a bounded time.
 *
 * @module
 */

import { type EventChannelDevice, MAX_PORTS_PER_CALL } from "../../device.ts";
import { EventChannelError } from "../../errors.ts";
import { ERRNO } from "../../xen/errno.ts";
import {
  BIND_INTERDOMAIN,
  BIND_UNBOUND_PORT,
  BIND_VIRQ,
  IOCTL_EVTCHN_BIND_INTERDOMAIN,
  IOCTL_EVTCHN_BIND_UNBOUND_PORT,
  IOCTL_EVTCHN_BIND_VIRQ,
  IOCTL_EVTCHN_NOTIFY,
  IOCTL_EVTCHN_RESET,
  IOCTL_EVTCHN_RESTRICT_DOMID,
  IOCTL_EVTCHN_UNBIND,
  NOTIFY,
  RESTRICT_DOMID,
  UNBIND,
} from "./_evtchn_h.ts";
import { openFile } from "./_fd.ts";
import { type Blame, refusal } from "./_refusal.ts";
import {
  acquireLibc,
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  type Libc,
  O_CLOEXEC,
  O_NONBLOCK,
  O_RDWR,
  POLLERR,
  POLLFD_EVENTS,
  POLLFD_FD,
  POLLFD_REVENTS,
  POLLFD_SIZE,
  POLLHUP,
  POLLIN,
  POLLNVAL,
  releaseLibc,
} from "./_libc.ts";
import { type Syscalls, syscalls } from "./_syscall.ts";

/** Where Linux puts the event-channel device. */
export const DEFAULT_EVTCHN_PATH = "/dev/xen/evtchn";

/**
 * How long one parked `poll(2)` may sleep before it is re-issued (ms). A
 * backstop only: wake-ups come from the device or the eventfd.
 */
export const POLL_TIMEOUT_MS = 1000;

/**
 * Options for {@linkcode LinuxEvtchnDevice}.
 *
 * @example The path is the one file opened, named when it cannot be
 * ```ts
 * import {
 *   LinuxEvtchnDevice,
 *   type LinuxEvtchnDeviceOptions,
 * } from "./device.ts";
 * import { linuxDeviceStatus } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const absent: LinuxEvtchnDeviceOptions = { path: "/dev/xen/no-such-device" };
 * assert.throws(() => new LinuxEvtchnDevice(absent), {
 *   name: "EventChannelError",
 *   op: "open",
 *   code: "ENOENT",
 *   argument: "path",
 *   value: "/dev/xen/no-such-device",
 * });
 *
 * const options: LinuxEvtchnDeviceOptions = { path: "/dev/xen/evtchn" };
 * if (linuxDeviceStatus(options).available) {
 *   const device = new LinuxEvtchnDevice(options);
 *   assert.equal(device.path, "/dev/xen/evtchn");
 *   await device.close();
 * }
 * ```
 */
export interface LinuxEvtchnDeviceOptions {
  /** The device file; `/dev/xen/evtchn` when omitted. */
  path?: string;
}

interface Held {
  libc: Libc;
  fd: number;
  wakeFd: number;
}

// A backstop for devices dropped without close(): closes both fds and gives
// the libc reference back. Unregistered by close(), so it can never close a
// reused fd number.
const finalizer = new FinalizationRegistry<Held>((held) => {
  held.libc.close(held.wakeFd);
  held.libc.close(held.fd);
  releaseLibc();
});

/**
 * One open `/dev/xen/evtchn`, as an {@linkcode EventChannelDevice}. Wrap it
 * in an `EventChannelHandle` (what `openLinuxHandle` does) rather than using
 * it directly: the handle validates arguments, the device does not.
 *
 * @example Directly, where there is a device (prefer `openLinuxHandle`)
 * ```ts
 * import { LinuxEvtchnDevice } from "./device.ts";
 * import { linuxDeviceStatus } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const status = linuxDeviceStatus();
 * if (status.available) {
 *   const device = new LinuxEvtchnDevice();
 *   const port = device.bindUnboundPort(0);
 *   device.unbind(port);
 *   assert.equal(device.read(new Uint8Array(4)), null); // nothing pending
 *   await device.close();
 * } else {
 *   assert.throws(() => new LinuxEvtchnDevice(), {
 *     name: "EventChannelError",
 *     op: "open",
 *     code: status.code,
 *   });
 * }
 * ```
 */
export class LinuxEvtchnDevice implements EventChannelDevice {
  /** Always `"linux"`. */
  readonly backend = "linux";
  /** The device file this was opened on. */
  readonly path: string;

  #libc: Libc;
  /** Every call whose failure is reported (errno comes back in-call). */
  #sys: Syscalls;
  #fd: number;
  #wakeFd: number;
  #closed = false;
  #released: Promise<void> | undefined;

  #arg = new Uint32Array(2);
  /** One port read or written by `readPort`/`writePort`. */
  #port = new Uint32Array(1);
  /**
   * The synchronous wait's own `struct pollfd` (the device fd alone): never
   * the parked poll's, which a pool thread may be using at the same time.
   * As i32s: [0] = fd, [1] = events | revents << 16 (little-endian shorts).
   */
  #syncPollfd = new Int32Array(POLLFD_SIZE / 4);
  #domid = new Uint16Array(1);
  #pollfds = new Uint8Array(2 * POLLFD_SIZE);
  #pollView = new DataView(this.#pollfds.buffer);
  #counter = new BigUint64Array(1);

  #waiters = 0;
  #poller: Promise<void> | undefined;

  /**
   * Opens the device `O_RDWR | O_CLOEXEC | O_NONBLOCK` and a wake-up
   * eventfd, loading libc if this is its first user.
   *
   * @param options The device path.
   * @throws {EventChannelError} `open` with the real errno: `ENOENT` when
   * there is no such device (not a Xen host), `EACCES` without access.
   * @throws {Deno.errors.NotCapable} without `--allow-ffi` (untouched).
   */
  constructor(options: LinuxEvtchnDeviceOptions = {}) {
    this.path = options.path ?? DEFAULT_EVTCHN_PATH;
    const libc = acquireLibc();
    const sys = syscalls(libc);
    let fd = -1;
    try {
      fd = openFile(
        sys,
        this.path,
        O_RDWR | O_CLOEXEC | O_NONBLOCK,
        this.path === DEFAULT_EVTCHN_PATH
          ? "event-channel device /dev/xen/evtchn"
          : this.path,
      );
      const wakeFd = sys.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
      if (wakeFd < 0) {
        throw new EventChannelError("open", -wakeFd, {
          detail: "eventfd for waking poll(2)",
        });
      }
      this.#wakeFd = wakeFd;
    } catch (error) {
      if (fd >= 0) libc.close(fd);
      releaseLibc();
      throw error;
    }
    this.#libc = libc;
    this.#sys = sys;
    this.#fd = fd;
    const v = this.#pollView;
    v.setInt32(POLLFD_FD, fd, true);
    v.setInt16(POLLFD_EVENTS, POLLIN, true);
    v.setInt32(POLLFD_SIZE + POLLFD_FD, this.#wakeFd, true);
    v.setInt16(POLLFD_SIZE + POLLFD_EVENTS, POLLIN, true);
    this.#syncPollfd[POLLFD_FD / 4] = fd;
    finalizer.register(this, { libc, fd, wakeFd: this.#wakeFd }, this);
  }

  /** Whether {@linkcode LinuxEvtchnDevice.close} has been called. */
  get closed(): boolean {
    return this.#closed;
  }

  #live(op: string): number {
    if (this.#closed) {
      throw new EventChannelError(op, "EBADF", { detail: "device is closed" });
    }
    return this.#fd;
  }

  #ioctl(
    op: string,
    request: bigint,
    arg: Uint32Array | Uint16Array | null,
    blame: Blame,
  ): number {
    const fd = this.#live(op);
    const result = this.#sys.ioctl(fd, request, arg);
    if (result < 0) throw refusal(op, -result, blame);
    return result;
  }

  /**
   * `IOCTL_EVTCHN_BIND_UNBOUND_PORT`.
   *
   * @param remoteDomain The domain allowed to connect.
   * @returns The new port.
   */
  bindUnboundPort(remoteDomain: number): number {
    this.#arg[BIND_UNBOUND_PORT.remote_domain / 4] = remoteDomain;
    return this.#ioctl(
      "bind_unbound_port",
      IOCTL_EVTCHN_BIND_UNBOUND_PORT,
      this.#arg,
      () => undefined,
    );
  }

  /**
   * `IOCTL_EVTCHN_BIND_INTERDOMAIN`.
   *
   * @param remoteDomain The domain that offered the port.
   * @param remotePort The offered port.
   * @returns The new local port.
   */
  bindInterdomain(remoteDomain: number, remotePort: number): number {
    this.#arg[BIND_INTERDOMAIN.remote_domain / 4] = remoteDomain;
    this.#arg[BIND_INTERDOMAIN.remote_port / 4] = remotePort;
    return this.#ioctl(
      "bind_interdomain",
      IOCTL_EVTCHN_BIND_INTERDOMAIN,
      this.#arg,
      (code) =>
        code === ERRNO.ESRCH || code === ERRNO.EACCES
          ? ["remote_domain", remoteDomain]
          : code === ERRNO.EINVAL
          ? ["remote_port", remotePort]
          : undefined,
    );
  }

  /**
   * `IOCTL_EVTCHN_BIND_VIRQ` (on vCPU 0).
   *
   * @param virq The VIRQ.
   * @returns The new port.
   */
  bindVirq(virq: number): number {
    this.#arg[BIND_VIRQ.virq / 4] = virq;
    return this.#ioctl(
      "bind_virq",
      IOCTL_EVTCHN_BIND_VIRQ,
      this.#arg,
      (code) =>
        code === ERRNO.EINVAL || code === ERRNO.EEXIST
          ? ["virq", virq]
          : undefined,
    );
  }

  /**
   * `IOCTL_EVTCHN_UNBIND`.
   *
   * @param port A port of this device.
   */
  unbind(port: number): void {
    this.#arg[UNBIND.port / 4] = port;
    this.#ioctl(
      "unbind",
      IOCTL_EVTCHN_UNBIND,
      this.#arg,
      (code) =>
        code === ERRNO.ENOTCONN || code === ERRNO.EINVAL
          ? ["port", port]
          : undefined,
    );
  }

  /**
   * `IOCTL_EVTCHN_NOTIFY`.
   *
   * @param port A port of this device.
   */
  notify(port: number): void {
    // The round trip's hot path: no closure, no conversion per call.
    const fd = this.#live("notify");
    this.#arg[NOTIFY.port / 4] = port;
    const result = this.#sys.ioctl(fd, IOCTL_EVTCHN_NOTIFY, this.#arg);
    if (result < 0) {
      const code = -result;
      throw new EventChannelError(
        "notify",
        code,
        code === ERRNO.ENOTCONN ? { argument: "port", value: port } : {},
      );
    }
  }

  /** `IOCTL_EVTCHN_RESET`: empties the ring and clears its overflow. */
  reset(): void {
    this.#ioctl("reset", IOCTL_EVTCHN_RESET, null, () => undefined);
  }

  /**
   * `IOCTL_EVTCHN_RESTRICT_DOMID`.
   *
   * @param domain The only domain interdomain binds may name from now on.
   */
  restrictDomain(domain: number): void {
    this.#domid[RESTRICT_DOMID.domid / 2] = domain;
    this.#ioctl(
      "restrict_domid",
      IOCTL_EVTCHN_RESTRICT_DOMID,
      this.#domid,
      (code) => code === ERRNO.EINVAL ? ["domid", domain] : undefined,
    );
  }

  /**
   * `read(2)` on the nonblocking fd.
   *
   * @param buffer Where the little-endian u32 ports go.
   * @returns The byte count, or `null` when the ring is empty (`EAGAIN`).
   * @throws {EventChannelError} `read` with the real errno (`EFBIG` after an
   * overflow).
   */
  read(buffer: Uint8Array): number | null {
    const fd = this.#live("read");
    const n = this.#sys.read(fd, buffer, byteCount(buffer));
    if (n < 0) {
      const code = -n;
      if (code === ERRNO.EAGAIN) return null;
      throw new EventChannelError("read", code);
    }
    return n;
  }

  /**
   * `write(2)`: unmasks the listed ports this fd owns.
   *
   * @param buffer Little-endian u32 ports.
   * @returns The bytes accepted.
   * @throws {EventChannelError} `write` with the real errno.
   */
  write(buffer: Uint8Array): number {
    const fd = this.#live("write");
    const n = this.#sys.write(fd, buffer, byteCount(buffer));
    if (n < 0) throw new EventChannelError("write", -n);
    return n;
  }

  /**
   * `read(2)` of one port: the handle's `poll` and `next` fast path (no
   * buffer argument, no `DataView`).
   *
   * @returns The port, or -1 when the ring is empty (`EAGAIN`).
   * @throws {EventChannelError} `read` with the real errno (`EFBIG` after an
   * overflow).
   */
  readPort(): number {
    const fd = this.#live("read");
    const n = this.#sys.read(fd, this.#port, ONE_PORT);
    if (n === 4) return this.#port[0];
    return this.#readFailed(n);
  }

  /** `readPort`'s rare outcomes, out of its hot path. */
  #readFailed(n: number): number {
    if (n >= 0) return -1; // 0 bytes: not something Linux returns for 4
    const code = -n;
    if (code === ERRNO.EAGAIN) return -1;
    throw new EventChannelError("read", code);
  }

  /**
   * `write(2)` of one port: the handle's `unmask` fast path.
   *
   * @param port The port to unmask (a uint32; ignored unless this fd owns
   * it and it fired).
   * @throws {EventChannelError} `write` with the real errno.
   */
  writePort(port: number): void {
    const fd = this.#live("write");
    this.#port[0] = port;
    const n = this.#sys.write(fd, this.#port, ONE_PORT);
    if (n < 0) throw new EventChannelError("write", -n);
  }

  /**
   * `read(2)` of up to `ports.length` ports (at most 1024) in one call.
   *
   * @param ports Where the ports go, in native byte order (the kernel's
   * `evtchn_port_t`).
   * @returns How many ports were read; 0 when none is pending.
   * @throws {EventChannelError} `read` with the real errno (`EFBIG` after an
   * overflow).
   */
  readPorts(ports: Uint32Array): number {
    const fd = this.#live("read");
    const count = ports.length < MAX_PORTS_PER_CALL
      ? ports.length
      : MAX_PORTS_PER_CALL;
    if (count === 0) return 0;
    const n = this.#sys.read(fd, ports, PORT_BYTES[count]);
    if (n > 0) return n >>> 2;
    this.#readFailed(n); // throws unless EAGAIN
    return 0;
  }

  /**
   * `write(2)` of `ports[0..count)` in one call.
   *
   * @param ports The ports, in native byte order.
   * @param count How many (at most `ports.length` and 1024; checked by the
   * handle).
   * @throws {EventChannelError} `write` with the real errno.
   */
  writePorts(ports: Uint32Array, count: number): void {
    const fd = this.#live("write");
    if (count === 0) return;
    const n = this.#sys.write(fd, ports, PORT_BYTES[count]);
    if (n < 0) throw new EventChannelError("write", -n);
  }

  /**
   * `poll(2)` on the device fd alone, on the calling thread: returns when
   * it is readable or in error, or after `timeoutMs`. Interrupted by a
   * signal (`EINTR`), it polls again for what is left of the timeout.
   *
   * @param timeoutMs How long, 0 to `MAX_SYNC_WAIT_MS` (checked by the
   * handle).
   * @returns Whether `read` has something to report.
   * @throws {EventChannelError} `poll` with the real errno for another
   * failure (none is expected on a valid fd).
   */
  readableSync(timeoutMs: number): boolean {
    this.#live("read");
    const pollfd = this.#syncPollfd;
    let deadline = -1;
    while (true) {
      pollfd[POLLFD_EVENTS / 4] = POLLIN; // and revents = 0
      const n = this.#sys.poll(pollfd, ONE_FD, timeoutMs);
      if (n > 0) return true; // POLLIN, or POLLERR/POLLHUP/POLLNVAL: read
      if (n === 0) return false;
      const code = -n;
      if (code !== ERRNO.EINTR) throw new EventChannelError("poll", code);
      const now = performance.now();
      if (deadline < 0) deadline = now + timeoutMs;
      timeoutMs = Math.ceil(deadline - now);
      if (timeoutMs <= 0) return false;
    }
  }

  /**
   * Resolves when the fd polls readable or in error (`POLLIN`, `POLLERR`),
   * when `signal` aborts or when the device is closed. Concurrent callers
   * share one parked `poll(2)`; when the last of them leaves, the poll is
   * woken and ends, so no pool thread stays parked for nobody.
   *
   * @param signal Ends this caller's wait.
   * @returns Settles (never rejects) when the caller should read again.
   */
  readable(signal: AbortSignal): Promise<void> {
    if (this.#closed || signal.aborted) return Promise.resolve();
    this.#waiters++;
    const poller = this.#poller ??= this.#pollLoop();
    return new Promise<void>((resolve) => {
      let done = false;
      const leave = (): void => {
        if (done) return;
        done = true;
        signal.removeEventListener("abort", leave);
        this.#waiters--;
        // The last waiter gone while the poll still sleeps: wake it so it
        // ends instead of holding a pool thread (and the op sanitizer).
        if (this.#waiters === 0 && this.#poller === poller) this.#wake();
        resolve();
      };
      signal.addEventListener("abort", leave, { once: true });
      poller.then(leave);
    });
  }

  // Never rejects.
  async #pollLoop(): Promise<void> {
    // Return to the caller first, so `#poller` is set before `finally`
    // clears it.
    await Promise.resolve();
    try {
      const view = this.#pollView;
      while (!this.#closed && this.#waiters > 0) {
        view.setInt16(POLLFD_REVENTS, 0, true);
        view.setInt16(POLLFD_SIZE + POLLFD_REVENTS, 0, true);
        const n = await this.#libc.poll(
          this.#pollfds,
          2n,
          POLL_TIMEOUT_MS,
        );
        if (this.#closed) return;
        // -1 (EINTR and the like; errno is another thread's): resolve early,
        // callers read and wait again.
        if (n < 0) return;
        if (n === 0) continue;
        const wake = view.getInt16(POLLFD_SIZE + POLLFD_REVENTS, true);
        if (wake & POLLIN) this.#drainWake();
        const device = view.getInt16(POLLFD_REVENTS, true);
        if (device & (POLLIN | POLLERR | POLLHUP | POLLNVAL)) return;
      }
    } catch {
      // A failed FFI call: resolve early; the caller's read reports the fd's
      // state with a real errno.
    } finally {
      this.#poller = undefined;
    }
  }

  #wake(): void {
    this.#counter[0] = 1n;
    // EAGAIN only when the counter is at its maximum: it is set already.
    this.#libc.write(this.#wakeFd, this.#counter, 8n);
  }

  #drainWake(): void {
    this.#libc.read(this.#wakeFd, this.#counter, 8n);
  }

  /**
   * Closes the device: wakes a parked `poll(2)`, waits for it to return,
   * then closes the eventfd and the device fd (which makes Linux unbind, and
   * Xen close, every port still bound) and gives libc back. Idempotent.
   *
   * @returns Settles when everything is released; already settled when no
   * poll was in flight.
   */
  close(): Promise<void> {
    if (this.#released !== undefined) return this.#released;
    this.#closed = true;
    finalizer.unregister(this);
    const poller = this.#poller;
    if (poller === undefined) {
      this.#release();
      this.#released = Promise.resolve();
    } else {
      this.#wake();
      this.#released = poller.then(() => this.#release());
    }
    return this.#released;
  }

  #release(): void {
    this.#libc.close(this.#wakeFd);
    this.#libc.close(this.#fd);
    this.#wakeFd = -1;
    this.#fd = -1;
    releaseLibc();
  }
}

/**
 * `count * 4` as the `size_t` of `read`/`write`, for 0 to 1024 ports: made
 * once, so a batch allocates no BigInt per call (Deno's fast FFI path takes
 * a 64-bit argument as a BigInt; a number there takes the slow path, ~2×).
 */
const PORT_BYTES: readonly bigint[] = Array.from(
  { length: MAX_PORTS_PER_CALL + 1 },
  (_, count) => BigInt(count * 4),
);

/** One port, the size of nearly every read and write. */
const ONE_PORT = PORT_BYTES[1];

/** `nfds` of the synchronous `poll(2)`: the device fd alone. */
const ONE_FD = 1n;

function byteCount(buffer: Uint8Array): bigint {
  const bytes = buffer.byteLength;
  return bytes <= 4 * MAX_PORTS_PER_CALL && (bytes & 3) === 0
    ? PORT_BYTES[bytes >>> 2]
    : BigInt(bytes);
}
