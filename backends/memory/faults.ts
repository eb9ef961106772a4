/**
 * Deterministic fault injection for the `memory` backend: the rare things a
 * real host does to a program (a peer domain dies, an event arrives that
 * nobody sent, a vCPU takes its upcall late, the ring overflows, an ioctl
 * fails for want of memory) made to happen on purpose, at a chosen step,
 * and the same way every time for the same seed. Turned on with
 * `new MemoryXen({ faults: {...}, seed })`; what was injected is read with
 * `MemoryXen.injectedFaults()`.
 *
 * A step is one operation of the program on the host (an ioctl, read or
 * write of a handle, a dom0 hypercall), counted from 1 as lint mode counts
 * them; a fault "at step N" acts just before the Nth operation runs.
 *
 * @example A peer domain destroyed at step 5
 * ```ts
 * import { MemoryXen, VIRQ } from "../../mod.ts";
 * import assert from "node:assert/strict";
 * const xen = new MemoryXen({
 *   faults: { destroyDomain: [{ step: 5, domain: 1 }] },
 * });
 * xen.createDomain({ domain: 1 });
 * using dom0 = xen.open(0); // step 1
 * const exc = dom0.bindVirq(VIRQ.DOM_EXC); // 2
 * const offered = xen.hypercalls(0).allocUnbound(1, 0); // 3
 * const port = dom0.bindInterdomain(1, offered); // 4: pending at bind
 * assert.equal(dom0.poll(), port); // 5: domain 1 is destroyed first
 * assert.equal(dom0.poll(), exc); // VIRQ_DOM_EXC
 * assert.equal(xen.hypercalls(0).status(0, port).status, "unbound");
 * assert.equal(xen.injectedFaults()[0].kind, "destroy-domain");
 * ```
 *
 * @module
 */

import { EventChannelError } from "../../errors.ts";
import { ERRNO } from "../../xen/errno.ts";
import { EVTCHNOP } from "../../xen/event_channel.ts";
import type { Domain } from "./hypervisor/domain.ts";
import type { Hypervisor } from "./hypervisor/hypervisor.ts";
import { inspectPort, inspectPorts } from "./hypervisor/inspect.ts";
import type { DeviceObserver, ObservedDevice } from "./_observed_device.ts";
import { prng } from "../../util/prng.ts";

/** The errnos an operation can be made to fail with. */
export type FaultErrno = "ENOMEM" | "ENOSPC" | "EAGAIN";

/**
 * The faults to inject. Every list holds at most
 * {@linkcode FAULT_LIMITS}`.entries` entries; steps and call counts are
 * integers from 1 to `Number.MAX_SAFE_INTEGER`.
 */
export interface FaultOptions {
  /**
   * Destroy a domain just before a step, as the toolstack's `xl destroy`
   * (Xen's `domain_kill` → `evtchn_destroy`): its ports close, each
   * interdomain peer becomes unbound, VIRQ_DOM_EXC goes to its handler
   * (dom0). Domain 0 cannot be destroyed.
   */
  destroyDomain?: readonly { step: number; domain: number }[];
  /**
   * Mark a port pending just before a step, as if its peer had notified it:
   * a spurious event. Without `port`, one of the domain's ports in use is
   * chosen by the seeded scheduler.
   */
  spurious?: readonly { step: number; domain: number; port?: number }[];
  /**
   * Delay cross-vCPU delivery: an upcall to a listed vCPU (default every
   * vCPU but 0, where the program runs) of a listed domain (default all) is
   * held for 1 to `steps` steps (at most {@linkcode FAULT_LIMITS}`.delay`),
   * drawn by the seeded scheduler, as a vCPU not yet scheduled takes its
   * events late. Events for it meanwhile accumulate as on a real host. A
   * program that waits (`next()`, the async iterator) lets time pass: held
   * deliveries are released, earliest first, until it has an event.
   */
  delay?: {
    steps: number;
    vcpus?: readonly number[];
    domains?: readonly number[];
  };
  /**
   * Overflow a handle's ring just before a step: one of its ports (chosen
   * by the seeded scheduler) fires until the ring is full and one event
   * more is dropped, as a storm of events the program did not read in time
   * would. Reads then give `EFBIG` until the handle is reset. `handle`
   * numbers handles in the order the host opened them, from 0.
   */
  overflow?: readonly { step: number; handle: number }[];
  /**
   * Make the `call`-th call (from 1, counted over the whole host) of an
   * operation fail with an errno, before it changes anything. `op` is
   * either a handle operation, by its name in errors (`bind_unbound_port`,
   * `bind_interdomain`, `bind_virq`, `unbind`, `notify`, `reset`,
   * `restrict_domid`), as Linux's evtchn driver fails an ioctl when
   * `kzalloc` or the ring's growth does (ENOMEM); or a hypercall,
   * `EVTCHNOP_<name>` (`EVTCHNOP_alloc_unbound`, `EVTCHNOP_send`, …), as
   * Xen fails one (ENOMEM, ENOSPC), whoever issues it: the program's
   * handles and `hypercalls()`, and the modelled kernel beneath them (a
   * handle's bind issues `bind_*` and `bind_vcpu`, its unbind `close`, its
   * notify `send`, whose failure Linux ignores). Hypercalls are counted
   * from the host's first step on (a domain created later boots its kernel
   * with hypercalls that count too), and `domain` restricts the count to
   * one calling domain.
   */
  fail?: readonly {
    op: string;
    call: number;
    errno: FaultErrno;
    domain?: number;
  }[];
}

/** Bounds on a fault plan. */
export const FAULT_LIMITS = {
  /** Most entries in each list. */
  entries: 10_000,
  /** Longest delivery delay, in steps. */
  delay: 1_000_000,
  /** Most entries kept in the log of injected faults (then counted only). */
  log: 100_000,
} as const;

/** The operations a `fail` fault may name: a handle's, then Xen's. */
export const FAULTABLE_OPS: readonly string[] = [
  "bind_unbound_port",
  "bind_interdomain",
  "bind_virq",
  "unbind",
  "notify",
  "reset",
  "restrict_domid",
  ...Object.keys(EVTCHNOP).map((op) => `EVTCHNOP_${op}`),
];

/** One fault as it was injected (or found nothing to act on). */
export interface InjectedFault {
  /** The step it acted before (the current step for a release on a wait). */
  step: number;
  /** Which fault. `release`: a delayed delivery reached its vCPU. */
  kind:
    | "destroy-domain"
    | "spurious"
    | "delay"
    | "release"
    | "overflow"
    | "fail";
  /** The domain concerned. */
  domain?: number;
  /** The port concerned. */
  port?: number;
  /** The vCPU (delay, release). */
  vcpu?: number;
  /** The handle (overflow, fail). */
  handle?: number;
  /** The operation (fail). */
  op?: string;
  /** The errno (fail). */
  errno?: FaultErrno;
  /** Delay: the step at which it is released. */
  until?: number;
  /** Set when the fault found nothing to act on, and why. */
  skipped?: string;
}

interface Held {
  domain: Domain;
  vcpu: number;
  until: number;
}

type Scheduled =
  | { step: number; kind: "destroy-domain"; domain: number }
  | { step: number; kind: "spurious"; domain: number; port?: number }
  | { step: number; kind: "overflow"; handle: number };

/**
 * Checks a fault plan as `MemoryXen` takes it.
 *
 * @param value The plan.
 * @param ops The operations `fail` may name (default: a handle's).
 * @returns The same plan, checked.
 * @throws {EventChannelError} `EINVAL` naming the field (`argument`, such as
 * `faults.spurious[0].step`) of the first mistake.
 *
 * @example
 * ```ts
 * import { checkFaults } from "./faults.ts";
 * import assert from "node:assert/strict";
 * checkFaults({ delay: { steps: 3 } });
 * assert.throws(
 *   () => checkFaults({ fail: [{ op: "notify", call: 0, errno: "ENOMEM" }] }),
 *   /faults\.fail\[0\]\.call/,
 * );
 * ```
 */
export function checkFaults(
  value: unknown,
  ops: readonly string[] = FAULTABLE_OPS,
): FaultOptions {
  const fail = (argument: string, got: unknown, detail: string): never => {
    throw new EventChannelError("faults", "EINVAL", {
      argument,
      value: typeof got === "object" ? undefined : got,
      detail,
    });
  };
  const object = (path: string, v: unknown, keys: string[]) => {
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      fail(path, v, "expected an object");
    }
    for (const key of Object.keys(v as object)) {
      if (!keys.includes(key)) {
        fail(
          `${path}.${key}`,
          key,
          `unknown key (expected ${keys.join(", ")})`,
        );
      }
    }
    return v as Record<string, unknown>;
  };
  const int = (path: string, v: unknown, min: number, max: number) => {
    if (
      !Number.isSafeInteger(v) || (v as number) < min || (v as number) > max
    ) {
      fail(path, v, `expected an integer from ${min} to ${max}`);
    }
  };
  const list = (path: string, v: unknown): unknown[] => {
    if (!Array.isArray(v)) fail(path, v, "expected an array");
    if ((v as unknown[]).length > FAULT_LIMITS.entries) {
      fail(path, undefined, `more than ${FAULT_LIMITS.entries} entries`);
    }
    return v as unknown[];
  };
  const MAX = Number.MAX_SAFE_INTEGER;
  const root = object("faults", value, [
    "destroyDomain",
    "spurious",
    "delay",
    "overflow",
    "fail",
  ]);
  if (root.destroyDomain !== undefined) {
    list("faults.destroyDomain", root.destroyDomain).forEach((e, i) => {
      const p = `faults.destroyDomain[${i}]`;
      const o = object(p, e, ["step", "domain"]);
      int(`${p}.step`, o.step, 1, MAX);
      int(`${p}.domain`, o.domain, 1, 0x7fef);
    });
  }
  if (root.spurious !== undefined) {
    list("faults.spurious", root.spurious).forEach((e, i) => {
      const p = `faults.spurious[${i}]`;
      const o = object(p, e, ["step", "domain", "port"]);
      int(`${p}.step`, o.step, 1, MAX);
      int(`${p}.domain`, o.domain, 0, 0x7fef);
      if (o.port !== undefined) int(`${p}.port`, o.port, 1, 0xffff_ffff);
    });
  }
  if (root.delay !== undefined) {
    const o = object("faults.delay", root.delay, ["steps", "vcpus", "domains"]);
    int("faults.delay.steps", o.steps, 1, FAULT_LIMITS.delay);
    if (o.vcpus !== undefined) {
      list("faults.delay.vcpus", o.vcpus).forEach((v, i) =>
        int(`faults.delay.vcpus[${i}]`, v, 0, 4095)
      );
    }
    if (o.domains !== undefined) {
      list("faults.delay.domains", o.domains).forEach((v, i) =>
        int(`faults.delay.domains[${i}]`, v, 0, 0x7fef)
      );
    }
  }
  if (root.overflow !== undefined) {
    list("faults.overflow", root.overflow).forEach((e, i) => {
      const p = `faults.overflow[${i}]`;
      const o = object(p, e, ["step", "handle"]);
      int(`${p}.step`, o.step, 1, MAX);
      int(`${p}.handle`, o.handle, 0, MAX);
    });
  }
  if (root.fail !== undefined) {
    list("faults.fail", root.fail).forEach((e, i) => {
      const p = `faults.fail[${i}]`;
      const o = object(p, e, ["op", "call", "errno", "domain"]);
      if (typeof o.op !== "string" || !ops.includes(o.op)) {
        fail(`${p}.op`, o.op, `expected one of ${ops.join(", ")}`);
      }
      int(`${p}.call`, o.call, 1, MAX);
      if (o.domain !== undefined) int(`${p}.domain`, o.domain, 0, 0x7fef);
      if (!["ENOMEM", "ENOSPC", "EAGAIN"].includes(o.errno as string)) {
        fail(`${p}.errno`, o.errno, "expected ENOMEM, ENOSPC or EAGAIN");
      }
    });
  }
  return value as FaultOptions;
}

/**
 * Injects a fault plan into one host. `MemoryXen` drives it: it counts
 * steps through the host's linter, sees every domain created and every
 * device opened.
 *
 * @example
 * ```ts
 * import { FaultInjector } from "./faults.ts";
 * import { Hypervisor } from "./hypervisor/hypervisor.ts";
 * import assert from "node:assert/strict";
 * const xen = new Hypervisor();
 * xen.createDomain({ domain: 0, privileged: true });
 * const port = xen.allocUnbound(0, 0, 0);
 * const faults = new FaultInjector(xen, {
 *   spurious: [{ step: 1, domain: 0 }],
 * }, 7, () => {});
 * faults.onStep(1);
 * assert.deepEqual(faults.log(), [{ step: 1, kind: "spurious", domain: 0, port }]);
 * ```
 */
export class FaultInjector implements DeviceObserver {
  readonly #xen: Hypervisor;
  readonly #random: () => number;
  readonly #destroy: (domain: number) => void;
  /** Scheduled faults by ascending step, stable; `#next` is the first due. */
  readonly #schedule: Scheduled[];
  #next = 0;
  #step = 0;
  readonly #delay: FaultOptions["delay"];
  readonly #held = new Map<number, Held>();
  /** The held key being released now (-1: none; -2: every one). */
  #releasing = -1;
  readonly #devices = new Map<number, ObservedDevice>();
  /** Per op (and calling domain, for hypercalls): call → errno. */
  readonly #fail = new Map<string, Map<number, FaultErrno>>();
  /** Whether hypercall failures are to be injected (from the first step). */
  #hypercallFaults = false;
  readonly #calls = new Map<string, number>();
  readonly #log: InjectedFault[] = [];
  #unlogged = 0;

  /**
   * A fault plan for a host.
   *
   * @param xen The host's hypervisor.
   * @param options The plan (checked here).
   * @param seed The scheduler's seed (any integer, taken modulo 2³²).
   * @param destroy Destroys a domain as the host does (guest included).
   * @param ops The operations `fail` may name (default: a handle's).
   */
  constructor(
    xen: Hypervisor,
    options: FaultOptions,
    seed: number,
    destroy: (domain: number) => void,
    ops?: readonly string[],
  ) {
    checkFaults(options, ops);
    if (!Number.isSafeInteger(seed)) {
      throw new EventChannelError("faults", "EINVAL", {
        argument: "seed",
        value: seed,
        detail: "expected an integer",
      });
    }
    this.#xen = xen;
    this.#random = prng(seed);
    this.#destroy = destroy;
    const schedule: Scheduled[] = [];
    for (const f of options.destroyDomain ?? []) {
      schedule.push({ step: f.step, kind: "destroy-domain", domain: f.domain });
    }
    for (const f of options.spurious ?? []) {
      schedule.push({
        step: f.step,
        kind: "spurious",
        domain: f.domain,
        port: f.port,
      });
    }
    for (const f of options.overflow ?? []) {
      schedule.push({ step: f.step, kind: "overflow", handle: f.handle });
    }
    // Array.prototype.sort is stable: same-step faults act in plan order.
    this.#schedule = schedule.sort((a, b) => a.step - b.step);
    this.#delay = options.delay;
    for (const f of options.fail ?? []) {
      const key = f.op.startsWith("EVTCHNOP_")
        ? `${f.op.slice(9)}@${f.domain ?? "*"}`
        : f.op;
      let calls = this.#fail.get(key);
      if (calls === undefined) this.#fail.set(key, calls = new Map());
      calls.set(f.call, f.errno);
      if (key !== f.op) this.#hypercallFaults = true;
    }
  }

  /**
   * What was injected so far, in order (the first
   * {@linkcode FAULT_LIMITS}`.log` entries).
   *
   * @returns A copy.
   */
  log(): InjectedFault[] {
    return this.#log.map((f) => ({ ...f }));
  }

  /** Entries left out of {@linkcode FaultInjector.log} beyond its bound. */
  get unlogged(): number {
    return this.#unlogged;
  }

  #record(fault: InjectedFault): void {
    if (this.#log.length < FAULT_LIMITS.log) this.#log.push(fault);
    else this.#unlogged++;
  }

  /**
   * The host is about to run its operation number `step`: due deliveries
   * reach their vCPUs, then the faults scheduled for the step act.
   *
   * @param step The step.
   */
  onStep = (step: number): void => {
    this.#step = step;
    if (this.#hypercallFaults && this.#xen.faults === undefined) {
      // From the first step on: the kernels' boots so far do not count.
      this.#xen.faults = {
        before: (op, domain) => this.#hypercall(op, domain),
      };
    }
    if (this.#held.size > 0) this.#release((h) => h.until <= step);
    const schedule = this.#schedule;
    while (this.#next < schedule.length && schedule[this.#next].step <= step) {
      const f = schedule[this.#next++];
      if (f.step !== step) continue;
      if (f.kind === "destroy-domain") this.#destroyDomain(f.domain);
      else if (f.kind === "spurious") this.#spurious(f.domain, f.port);
      else this.#overflow(f.handle);
    }
  };

  /**
   * A domain was created (and its guest booted): its upcalls go through
   * the delay, if one applies.
   *
   * @param d The domain.
   */
  domainCreated(d: Domain): void {
    const delay = this.#delay;
    const original = d.upcall;
    if (delay === undefined || original === undefined) return;
    if (delay.domains !== undefined && !delay.domains.includes(d.id)) return;
    const vcpus = delay.vcpus;
    d.upcall = (vcpu) => {
      const key = d.id * 4096 + vcpu;
      const delayed = vcpus === undefined ? vcpu !== 0 : vcpus.includes(vcpu);
      if (!delayed || this.#releasing === key || this.#releasing === -2) {
        original(vcpu);
        return;
      }
      if (this.#held.has(key)) return; // events accumulate meanwhile
      const until = this.#step + 1 +
        Math.floor(this.#random() * delay.steps);
      this.#held.set(key, { domain: d, vcpu, until });
      this.#record({
        step: this.#step,
        kind: "delay",
        domain: d.id,
        vcpu,
        until,
      });
    };
  }

  /** Releases held deliveries that `due` selects, earliest first. */
  #release(due: (h: Held) => boolean, enough?: () => boolean): void {
    const ready = [...this.#held].filter(([, h]) => due(h))
      .sort(([, a], [, b]) => a.until - b.until);
    for (const [key, h] of ready) {
      if (enough?.()) return;
      this.#held.delete(key);
      this.#record({
        step: this.#step,
        kind: "release",
        domain: h.domain.id,
        vcpu: h.vcpu,
      });
      // A domain destroyed meanwhile takes no upcall.
      if (this.#xen.domain(h.domain.id) !== h.domain) continue;
      this.#releasing = key;
      try {
        h.domain.kick(h.vcpu);
      } finally {
        this.#releasing = -1;
      }
    }
  }

  /**
   * A device was opened.
   *
   * @param handle Its number.
   * @param device The device.
   */
  opened(handle: number, device: ObservedDevice): void {
    this.#devices.set(handle, device);
  }

  /**
   * A program waits on a device: time passes, held deliveries reach their
   * vCPUs, earliest first, until the device has something to read.
   *
   * @param device The device.
   */
  idle(device: ObservedDevice): void {
    if (this.#held.size === 0) return;
    this.#release(() => true, () => device.queued > 0 || device.overflowed);
  }

  /**
   * Called by a device before each faultable operation: the errno to fail
   * it with, if this call is one to fail.
   *
   * @param op The operation.
   * @param handle The device's handle number (none for a scenario's step).
   * @returns The errno, or `undefined` to run it.
   */
  failure(op: string, handle?: number): FaultErrno | undefined {
    const errno = this.#count(op);
    if (errno !== undefined) {
      // The failing operation is the next step.
      const step = this.#step + 1;
      this.#record(
        handle === undefined
          ? { step, kind: "fail", op, errno }
          : { step, kind: "fail", handle, op, errno },
      );
    }
    return errno;
  }

  /** The hypervisor's fault hook: 0, or the errno of a call to fail. */
  #hypercall(op: string, domain: number): number {
    const any = this.#count(`${op}@*`);
    const mine = this.#count(`${op}@${domain}`);
    const errno = any ?? mine;
    if (errno === undefined) return 0;
    this.#record({
      step: this.#step,
      kind: "fail",
      domain,
      op: `EVTCHNOP_${op}`,
      errno,
    });
    return ERRNO[errno];
  }

  /** Counts a call of `key`; the errno if this call is one to fail. */
  #count(key: string): FaultErrno | undefined {
    const calls = this.#fail.get(key);
    if (calls === undefined) return undefined;
    const call = (this.#calls.get(key) ?? 0) + 1;
    this.#calls.set(key, call);
    return calls.get(call);
  }

  #destroyDomain(domain: number): void {
    if (this.#xen.domain(domain) === undefined) {
      this.#record({
        step: this.#step,
        kind: "destroy-domain",
        domain,
        skipped: "no such domain",
      });
      return;
    }
    this.#record({ step: this.#step, kind: "destroy-domain", domain });
    this.#destroy(domain);
  }

  #spurious(domain: number, port: number | undefined): void {
    const d = this.#xen.domain(domain);
    const fault: InjectedFault = { step: this.#step, kind: "spurious", domain };
    if (d === undefined) {
      this.#record({ ...fault, skipped: "no such domain" });
      return;
    }
    if (port === undefined) {
      const usable = inspectPorts(d).filter((r) => !r.xen);
      if (usable.length === 0) {
        this.#record({ ...fault, skipped: "no port in use" });
        return;
      }
      port = usable[Math.floor(this.#random() * usable.length)].port;
    }
    const row = inspectPort(d, port);
    if (row === undefined || row.xen || row.state === "reserved") {
      this.#record({ ...fault, port, skipped: "port not in use" });
      return;
    }
    this.#record({ ...fault, port });
    d.setPending(port, row.vcpu);
  }

  #overflow(handle: number): void {
    const device = this.#devices.get(handle);
    const fault: InjectedFault = { step: this.#step, kind: "overflow", handle };
    const ports = device?.ports ?? [];
    if (device === undefined || ports.length === 0) {
      this.#record({ ...fault, skipped: "handle has no port bound" });
      return;
    }
    const port = ports[Math.floor(this.#random() * ports.length)];
    const domain = device.guest.domain;
    const d = this.#xen.domain(domain);
    if (d === undefined) {
      this.#record({ ...fault, domain, port, skipped: "no such domain" });
      return;
    }
    this.#record({ ...fault, domain, port });
    // Each round lifts the EOI mask as an unmask would and fires the port
    // again: one more ring entry, until one finds the ring full.
    this.#releasing = -2;
    try {
      for (let n = device.ringSize + 1; n > 0 && !device.overflowed; n--) {
        device.guest.lateEoi(port);
        d.setPending(port, inspectPort(d, port)!.vcpu);
      }
    } finally {
      this.#releasing = -1;
    }
  }
}
