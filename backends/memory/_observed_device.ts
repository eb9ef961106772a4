/**
 * The device a host in lint or fault mode hands out: the modelled
 * `/dev/xen/evtchn` unchanged, plus what lint and fault injection must see
 * of it (reads that found the ring empty, waits for readability) and reach
 * (its ring, to overflow it on purpose). A host with neither mode hands out
 * the plain device, so this costs nothing there.
 *
 * @module
 */

import { EventChannelError } from "../../errors.ts";
import type { ErrnoName } from "../../xen/errno.ts";
import { MemoryEvtchnDevice } from "./evtchn_device.ts";
import type { LinuxGuest } from "./linux_guest.ts";
import type { Linter } from "./lint.ts";

/** What fault injection needs of an observed device. */
export interface DeviceObserver {
  /** The device was opened as the linter's handle `handle`. */
  opened(handle: number, device: ObservedDevice): void;
  /** The program is about to wait on the device: time may pass. */
  idle(device: ObservedDevice): void;
  /** Before an operation: the errno to fail it with, if any. */
  failure(op: string, handle: number): ErrnoName | undefined;
}

/**
 * `MemoryEvtchnDevice` with lint's and fault injection's observation points.
 *
 * @example
 * ```ts
 * import { Hypervisor } from "./hypervisor/hypervisor.ts";
 * import { LinuxGuest } from "./linux_guest.ts";
 * import { Linter } from "./lint.ts";
 * import { ObservedDevice } from "./_observed_device.ts";
 * import assert from "node:assert/strict";
 * const xen = new Hypervisor();
 * xen.createDomain({ domain: 0, privileged: true });
 * const linter = new Linter(xen);
 * const device = new ObservedDevice(new LinuxGuest(xen, 0), linter);
 * device.bindUnboundPort(0);
 * assert.equal(device.read(new Uint8Array(4)), null);
 * assert.equal(linter.findings()[0].code, "read-would-block");
 * device.close();
 * ```
 */
export class ObservedDevice extends MemoryEvtchnDevice {
  /** The linter's number for this handle. */
  readonly handle: number;
  /** The guest kernel the device lives in. */
  readonly guest: LinuxGuest;
  readonly #lint: Linter;
  readonly #observer: DeviceObserver | undefined;

  /**
   * Opens the device in a guest.
   *
   * @param linux The guest kernel.
   * @param lint The host's linter (it also counts steps for faults).
   * @param observer Fault injection, when on.
   */
  constructor(linux: LinuxGuest, lint: Linter, observer?: DeviceObserver) {
    super(linux, lint);
    this.guest = linux;
    this.#lint = lint;
    this.handle = lint.lastHandle;
    this.#observer = observer;
    observer?.opened(this.handle, this);
  }

  /** Fails the operation, counted as a step, if fault injection says so. */
  #check(op: string): void {
    const errno = this.#observer?.failure(op, this.handle);
    if (errno === undefined) return;
    this.#lint.op();
    throw new EventChannelError(op, errno, {
      detail: "injected fault (MemoryXen faults.fail)",
    });
  }

  override bindUnboundPort(remoteDomain: number): number {
    this.#check("bind_unbound_port");
    return super.bindUnboundPort(remoteDomain);
  }

  override bindInterdomain(remoteDomain: number, remotePort: number): number {
    this.#check("bind_interdomain");
    return super.bindInterdomain(remoteDomain, remotePort);
  }

  override bindVirq(virq: number): number {
    this.#check("bind_virq");
    return super.bindVirq(virq);
  }

  override unbind(port: number): void {
    this.#check("unbind");
    super.unbind(port);
  }

  override notify(port: number): void {
    this.#check("notify");
    super.notify(port);
  }

  override reset(): void {
    this.#check("reset");
    super.reset();
  }

  override restrictDomain(domain: number): void {
    this.#check("restrict_domid");
    super.restrictDomain(domain);
  }

  override read(buffer: Uint8Array): number | null {
    const n = super.read(buffer);
    if (buffer.length >= 4) this.#lint.read(this.handle, n === null);
    return n;
  }

  override readPort(): number {
    const port = super.readPort();
    // An empty one-port read is the handle's poll(), the non-blocking
    // check: only entries taken count.
    if (port >= 0) this.#lint.read(this.handle, false);
    return port;
  }

  override readPorts(ports: Uint32Array): number {
    const n = super.readPorts(ports);
    if (n > 0) this.#lint.read(this.handle, false);
    return n;
  }

  override readable(signal: AbortSignal): Promise<void> {
    this.#lint.waiting(this.handle);
    this.#observer?.idle(this);
    return super.readable(signal);
  }

  override readableSync(timeoutMs: number): boolean {
    this.#lint.waiting(this.handle);
    this.#observer?.idle(this);
    return super.readableSync(timeoutMs);
  }
}
