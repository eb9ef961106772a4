/**
 * Linux 6.1's `/dev/xen/evtchn` (`drivers/xen/evtchn.c`), modelled: one open
 * file description with its bound ports, its ring of fired ports, the ring's
 * growth and overflow, restrict-domain, and unmask by `write()`.
 *
 * @module
 */

import { EVTCHN_RING } from "./linux/profile.ts";
import type { EventChannelDevice } from "../../device.ts";
import { EventChannelError } from "../../errors.ts";
import {
  DOMID_FIRST_RESERVED,
  DOMID_SELF,
  UNRESTRICTED_DOMID as UNRESTRICTED,
} from "../../xen/domid.ts";
import type { LinuxGuest } from "./linux_guest.ts";
import type { Linter } from "./lint.ts";
// Reads and writes are capped at `PAGE_SIZE` bytes.
import { PAGE_SIZE } from "../../xen/page.ts";

/** A port in {@linkcode MemoryEvtchnDevice}'s table: bound here, enabled. */
const ENABLED = 1;
/** Bound here, fired and not yet written back (disabled). */
const DISABLED = 2;

/**
 * One open `/dev/xen/evtchn` in a modelled Linux guest.
 *
 * @example
 * ```ts
 * import { Hypervisor } from "./hypervisor/hypervisor.ts";
 * import { LinuxGuest } from "./linux_guest.ts";
 * import { MemoryEvtchnDevice } from "./evtchn_device.ts";
 * import assert from "node:assert/strict";
 * const xen = new Hypervisor();
 * xen.createDomain({ domain: 0, privileged: true });
 * const device = new MemoryEvtchnDevice(new LinuxGuest(xen, 0));
 * device.bindUnboundPort(1);
 * assert.equal(device.ringSize, 64);
 * device.close();
 * ```
 */
export class MemoryEvtchnDevice implements EventChannelDevice {
  /** Always `"memory"`. */
  readonly backend = "memory";
  #linux: LinuxGuest;
  /**
   * Per port, indexed by port number (no hashing per event): 0 when not
   * bound on this file description, else ENABLED or DISABLED (fired and not
   * yet written back). Grows by doubling to cover the highest port bound.
   */
  #bound = new Uint8Array(64);
  /** Ports bound on this file description. */
  #count = 0;
  #ring = new Uint32Array(0);
  #cons = 0;
  #prod = 0;
  #overflow = false;
  #restrict = UNRESTRICTED;
  #waiters = new Set<() => void>();
  #onInterrupt = (port: number): void => this.#interrupt(port);
  #closed = false;
  /** Lint mode's recorder, or `undefined` (lint off: one check per op). */
  #lint: Linter | undefined;
  /** This handle's number for the linter. */
  #lintId = -1;

  /**
   * Opens the device in a guest.
   *
   * @param linux The guest kernel the device lives in.
   * @param lint Lint mode's recorder, when on (see `MemoryXen`'s `lint`).
   */
  constructor(linux: LinuxGuest, lint?: Linter) {
    this.#linux = linux;
    if (lint !== undefined) {
      this.#lint = lint;
      lint.op();
      this.#lintId = lint.opened(linux.domain);
      this.#onInterrupt = (port: number): void => this.#lintInterrupt(port);
    }
  }

  /** Current ring size in entries (0 until the first bind). */
  get ringSize(): number {
    return this.#ring.length;
  }

  /** Ports bound on this file description, ascending. */
  get ports(): number[] {
    const ports: number[] = [];
    const bound = this.#bound;
    for (let port = 0; port < bound.length; port++) {
      if (bound[port] !== 0) ports.push(port);
    }
    return ports;
  }

  /** Whether `port` is bound on this file description. */
  #has(port: number): boolean {
    return port < this.#bound.length && this.#bound[port] !== 0;
  }

  /** Ring entries not yet read. */
  get queued(): number {
    return this.#prod - this.#cons;
  }

  /** Whether the ring overflowed (reads give `EFBIG` until reset). */
  get overflowed(): boolean {
    return this.#overflow;
  }

  #hypercall<T>(op: string, call: () => T): T {
    try {
      return call();
    } catch (error) {
      if (error instanceof EventChannelError) {
        throw new EventChannelError(op, error.errno, {
          argument: error.argument,
          value: error.value,
          detail: error.detail,
          cause: error,
        });
      }
      throw error;
    }
  }

  bindUnboundPort(remoteDomain: number): number {
    const op = "bind_unbound_port";
    this.#lint?.op();
    this.#checkUnrestricted(op);
    const linux = this.#linux;
    const port = this.#hypercall(
      op,
      () =>
        linux.xen.evtchnAllocUnbound(linux.domain, DOMID_SELF, remoteDomain),
    );
    this.#bindToUser(port);
    return port;
  }

  bindInterdomain(remoteDomain: number, remotePort: number): number {
    const op = "bind_interdomain";
    this.#lint?.op();
    if (this.#restrict !== UNRESTRICTED && this.#restrict !== remoteDomain) {
      throw new EventChannelError(op, "EACCES", {
        argument: "remote_domain",
        value: remoteDomain,
        detail: `handle is restricted to domain ${this.#restrict}`,
      });
    }
    const linux = this.#linux;
    const port = this.#hypercall(
      op,
      () =>
        linux.xen.evtchnBindInterdomain(linux.domain, remoteDomain, remotePort),
    );
    this.#bindToUser(port);
    return port;
  }

  bindVirq(virq: number): number {
    const op = "bind_virq";
    this.#lint?.op();
    this.#checkUnrestricted(op);
    const linux = this.#linux;
    const port = this.#hypercall(
      op,
      () => linux.xen.evtchnBindVirq(linux.domain, virq, 0),
    );
    this.#bindToUser(port);
    return port;
  }

  #checkUnrestricted(op: string): void {
    if (this.#restrict !== UNRESTRICTED) {
      throw new EventChannelError(op, "EACCES", {
        detail: `handle is restricted to domain ${this.#restrict}`,
      });
    }
  }

  /** `evtchn_bind_to_user`: own the port, grow the ring, bind the IRQ. */
  #bindToUser(port: number): void {
    this.#lint?.allocated(this.#lintId, this.#linux.domain, port);
    if (port >= this.#bound.length) {
      let size = this.#bound.length;
      while (size <= port) size *= 2;
      const bigger = new Uint8Array(size);
      bigger.set(this.#bound);
      this.#bound = bigger;
    }
    if (this.#bound[port] === 0) this.#count++;
    this.#bound[port] = ENABLED;
    if (this.#count > this.#ring.length) this.#resizeRing();
    this.#linux.bindBalanced(port, this.#onInterrupt, true);
  }

  /** `evtchn_resize_ring`: 64, then doubling; entries keep their order. */
  #resizeRing(): void {
    const size = this.#ring.length === 0
      ? EVTCHN_RING.FIRST
      : this.#ring.length * 2;
    const ring = new Uint32Array(size);
    const n = this.#prod - this.#cons;
    for (let i = 0; i < n; i++) ring[i] = this.#entry(this.#cons + i);
    this.#ring = ring;
    this.#cons = 0;
    this.#prod = n;
  }

  #entry(index: number): number {
    return this.#ring[index & (this.#ring.length - 1)];
  }

  /** `evtchn_interrupt`: disable the port and queue it, or overflow. */
  #interrupt(port: number): void {
    if (this.#has(port)) this.#bound[port] = DISABLED;
    if (this.#prod - this.#cons < this.#ring.length) {
      this.#ring[this.#prod & (this.#ring.length - 1)] = port;
      const wasEmpty = this.#prod === this.#cons;
      this.#prod++;
      if (wasEmpty) this.#wake();
    } else {
      this.#overflow = true;
      this.#wake();
    }
  }

  /** `#interrupt` in lint mode: records the delivery or the drop. */
  #lintInterrupt(port: number): void {
    const lint = this.#lint!;
    if (this.#prod - this.#cons >= this.#ring.length) {
      lint.dropped(this.#lintId, port);
    } else if (this.#has(port)) {
      lint.delivered(this.#lintId, port);
    }
    this.#interrupt(port);
  }

  #wake(): void {
    if (this.#waiters.size === 0) return; // the common case: nobody waits
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const wake of waiters) wake();
  }

  unbind(port: number): void {
    this.#lint?.op();
    if (port >= this.#linux.nrChannels) {
      throw new EventChannelError("unbind", "EINVAL", {
        argument: "port",
        value: port,
        detail: `beyond the kernel's ${this.#linux.nrChannels} channels`,
      });
    }
    if (!this.#has(port)) {
      throw new EventChannelError("unbind", "ENOTCONN", {
        argument: "port",
        value: port,
        detail: "port is not bound on this handle",
      });
    }
    this.#unbindFromUser(port);
  }

  #unbindFromUser(port: number): void {
    this.#lint?.unbinding(this.#lintId, this.#linux.domain, port);
    this.#bound[port] = 0;
    this.#count--;
    this.#linux.unbind(port);
  }

  notify(port: number): void {
    if (this.#lint !== undefined) this.#lintNotify(port);
    if (!this.#has(port)) {
      throw new EventChannelError("notify", "ENOTCONN", {
        argument: "port",
        value: port,
        detail: "port is not bound on this handle",
      });
    }
    this.#linux.notify(port);
  }

  /** Lint mode's side of `notify`, out of the hot path. */
  #lintNotify(port: number): void {
    const lint = this.#lint!;
    lint.op();
    if (this.#has(port)) lint.notified(this.#lintId, this.#linux.domain, port);
  }

  reset(): void {
    if (this.#lint !== undefined) {
      this.#lint.op();
      this.#lint.ringReset(this.#lintId);
    }
    this.#cons = 0;
    this.#prod = 0;
    this.#overflow = false;
  }

  restrictDomain(domain: number): void {
    const op = "restrict_domid";
    this.#lint?.op();
    if (this.#restrict !== UNRESTRICTED) {
      throw new EventChannelError(op, "EACCES", {
        argument: "domid",
        value: domain,
        detail: `already restricted to domain ${this.#restrict}`,
      });
    }
    if (domain === 0 || domain >= DOMID_FIRST_RESERVED) {
      throw new EventChannelError(op, "EINVAL", {
        argument: "domid",
        value: domain,
        detail: "must be a domU id (1..0x7fef)",
      });
    }
    this.#restrict = domain;
  }

  read(buffer: Uint8Array): number | null {
    if (this.#lint !== undefined) this.#lint.op();
    let count = Math.min(buffer.length & ~3, PAGE_SIZE);
    if (count === 0) return 0;
    if (this.#overflow) {
      throw new EventChannelError("read", "EFBIG", {
        detail: "the ring overflowed; reset the handle",
      });
    }
    const available = this.#prod - this.#cons;
    if (available === 0) return null;
    count = Math.min(count >>> 2, available);
    // Little-endian u32s, byte by byte: no view allocated per read.
    for (let i = 0, at = 0; i < count; i++, at += 4) {
      const port = this.#entry(this.#cons + i);
      buffer[at] = port;
      buffer[at + 1] = port >>> 8;
      buffer[at + 2] = port >>> 16;
      buffer[at + 3] = port >>> 24;
    }
    this.#consumed(this.#cons + count);
    return count * 4;
  }

  /**
   * `read()` of one entry into a 4-byte buffer, without the buffer: the
   * port, or -1 where `read` returns `null`.
   *
   * @returns The next port, or -1 when the ring is empty.
   * @throws {EventChannelError} `EFBIG` after an overflow, as `read`.
   */
  readPort(): number {
    if (this.#lint !== undefined) this.#lint.op();
    if (this.#overflow) {
      throw new EventChannelError("read", "EFBIG", {
        detail: "the ring overflowed; reset the handle",
      });
    }
    const cons = this.#cons;
    if (this.#prod === cons) return -1;
    const port = this.#ring[cons & (this.#ring.length - 1)];
    this.#consumed(cons + 1);
    return port;
  }

  /**
   * Moves the consumer index; a drained ring starts over at slot 0, which
   * no reader can tell (only `prod - cons` and the order of entries show)
   * and keeps the slots in use in cache however large the ring has grown.
   */
  #consumed(cons: number): void {
    if (cons === this.#prod) this.#prod = cons = 0;
    this.#cons = cons;
  }

  write(buffer: Uint8Array): number {
    const lint = this.#lint;
    if (lint !== undefined) lint.op();
    const count = Math.min(buffer.length & ~3, PAGE_SIZE);
    for (let i = 0; i < count; i += 4) {
      const port = (buffer[i] | (buffer[i + 1] << 8) |
        (buffer[i + 2] << 16) | (buffer[i + 3] << 24)) >>> 0;
      if (lint !== undefined) this.#lintUnmask(port);
      this.#enable(port);
    }
    return count;
  }

  /**
   * `write()` of one port, without the buffer: re-enables it if it is bound
   * here and fired.
   *
   * @param port The port (a uint32).
   */
  writePort(port: number): void {
    if (this.#lint !== undefined) {
      this.#lint.op();
      this.#lintUnmask(port);
    }
    this.#enable(port);
  }

  /**
   * `read()` into a `Uint32Array`: up to `ports.length` entries (at most
   * 1024, Linux's `PAGE_SIZE` cap), without byte shuffling.
   *
   * @param ports Where the ports go.
   * @returns How many were read; 0 when the ring is empty.
   * @throws {EventChannelError} `EFBIG` after an overflow, as `read`.
   */
  readPorts(ports: Uint32Array): number {
    if (this.#lint !== undefined) this.#lint.op();
    let count = Math.min(ports.length, PAGE_SIZE >>> 2);
    if (count === 0) return 0;
    if (this.#overflow) {
      throw new EventChannelError("read", "EFBIG", {
        detail: "the ring overflowed; reset the handle",
      });
    }
    const cons = this.#cons;
    count = Math.min(count, this.#prod - cons);
    for (let i = 0; i < count; i++) ports[i] = this.#entry(cons + i);
    this.#consumed(cons + count);
    return count;
  }

  /**
   * `write()` of `ports[0..count)`: re-enables each one bound here and
   * fired.
   *
   * @param ports The ports.
   * @param count How many (checked by the handle: at most `ports.length`).
   */
  writePorts(ports: Uint32Array, count: number): void {
    const lint = this.#lint;
    if (lint !== undefined) lint.op();
    for (let i = 0; i < count; i++) {
      if (lint !== undefined) this.#lintUnmask(ports[i]);
      this.#enable(ports[i]);
    }
  }

  /**
   * The synchronous wait, which cannot wait here: events are produced by
   * the thread that would be blocked, so none can arrive meanwhile. Says at
   * once whether `read` has something to report.
   *
   * @param _timeoutMs Ignored.
   * @returns Whether entries are queued or the ring overflowed.
   */
  readableSync(_timeoutMs: number): boolean {
    return this.#overflow || this.#prod !== this.#cons;
  }

  /** Re-enables a port if it is bound here and fired. */
  #enable(port: number): void {
    if (port < this.#bound.length && this.#bound[port] === DISABLED) {
      this.#bound[port] = ENABLED;
      this.#linux.lateEoi(port);
    }
  }

  /** Lint mode: a write about to re-enable a fired port ends its window. */
  #lintUnmask(port: number): void {
    if (port < this.#bound.length && this.#bound[port] === DISABLED) {
      this.#lint!.unmasked(this.#lintId, port);
    }
  }

  readable(signal: AbortSignal): Promise<void> {
    if (this.#closed || signal.aborted || this.#overflow || this.queued > 0) {
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        signal.removeEventListener("abort", done);
        this.#waiters.delete(done);
        resolve();
      };
      this.#waiters.add(done);
      signal.addEventListener("abort", done, { once: true });
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const ports = this.ports;
    if (this.#lint !== undefined) {
      this.#lint.op();
      this.#lint.closed(this.#lintId, this.#linux.domain, ports);
    }
    for (const port of ports) this.#unbindFromUser(port);
    this.#wake();
  }
}
