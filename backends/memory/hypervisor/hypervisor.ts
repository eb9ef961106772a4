/**
 * Xen 4.17's event-channel subsystem, modelled (`xen/common/event_channel.c`):
 * the domains' port tables and every `EVTCHNOP_*` operation issued by a
 * calling domain, with Xen's checks in Xen's order and Xen's errno values,
 * over many domains and vCPUs. The op vocabulary and the C-type checks of
 * the arguments are in `op_table.ts`, `do_event_channel_op`'s switch; the
 * FIFO ABI's control ops are in `event_fifo.ts`, as in `event_fifo.c`.
 *
 * @module
 */

import { checkUint, isUint32, UINT32_MAX } from "../../../util/validate.ts";
import { EventChannelError } from "../../../errors.ts";
import type { ChannelStatus } from "../../../hypercalls.ts";
import {
  DOMID_FIRST_RESERVED,
  DOMID_MAX,
  DOMID_SELF,
} from "../../../xen/domid.ts";
import type { ErrnoName } from "../../../xen/errno.ts";
import type { EvtchnOpName } from "../../../xen/event_channel.ts";
import { isGlobalVirq, NR_VIRQS, VIRQ } from "../../../xen/virq.ts";
import { Domain, type DomainOptions, ECS } from "./domain.ts";
import {
  evtchnFifoExpandArray,
  evtchnFifoInitControl,
  evtchnFifoSetPriority,
  FifoAbi,
} from "./event_fifo.ts";
import { checkOpArgs, EVTCHN_OPS, type EvtchnOp } from "./op_table.ts";
import * as tables from "./_tables.ts";

// The port table's keys as this module's own constants, which V8 folds
// into optimized code (imported bindings are live: reloaded and checked at
// every use, which more than doubles the cost of a table access).
const IRQ: typeof tables.IRQ = tables.IRQ;
const NOTIFY_VCPU: typeof tables.NOTIFY_VCPU = tables.NOTIFY_VCPU;
const REMOTE_DOMAIN: typeof tables.REMOTE_DOMAIN = tables.REMOTE_DOMAIN;
const REMOTE_PORT: typeof tables.REMOTE_PORT = tables.REMOTE_PORT;
const STATE: typeof tables.STATE = tables.STATE;
const VIRQ_TO_PORT: typeof tables.VIRQ_TO_PORT = tables.VIRQ_TO_PORT;
const XEN_CONSUMER: typeof tables.XEN_CONSUMER = tables.XEN_CONSUMER;

const ERRNO_NAME: Record<number, ErrnoName> = {
  [-22]: "EINVAL",
  [-28]: "ENOSPC",
  [-12]: "ENOMEM",
};

/**
 * The hook a fault-injection layer installs on {@linkcode Hypervisor.faults}:
 * asked once per `EVTCHNOP_*` call, after the calling domain is found and
 * before Xen checks or changes anything, whether that call should fail.
 *
 * @example Every bind_ipi of domain 1 fails for want of memory
 * ```ts
 * import { Hypervisor } from "./hypervisor.ts";
 * import assert from "node:assert/strict";
 * const xen = new Hypervisor();
 * xen.createDomain({ domain: 1 });
 * xen.faults = {
 *   before: (op, domain) => op === "bind_ipi" && domain === 1 ? 12 : 0,
 * };
 * assert.throws(() => xen.bindIpi(1, 0), /ENOMEM/);
 * xen.faults = undefined;
 * assert.equal(xen.bindIpi(1, 0), 1); // nothing was allocated before
 * ```
 */
export interface FaultHook {
  /**
   * Whether the call should fail.
   *
   * @param op The op (`EVTCHNOP_` dropped, lower case).
   * @param domain The calling domain.
   * @returns 0 to let the op run, or a positive errno (`ERRNO.ENOMEM`, …)
   * to make it fail with that errno and no effect.
   */
  before(op: EvtchnOpName, domain: number): number;
}

/**
 * The hypervisor model. Each operation takes the calling domain first (the
 * `current->domain` of a hypercall) and then the fields of the op's argument
 * struct from `xen/include/public/event_channel.h`.
 *
 * Arguments are checked against their C types first (`domid_t` is 16 bits,
 * ports, VIRQs and vCPUs 32 bits); a value no C caller could pass is refused
 * with `EINVAL`. Every refusal is an {@linkcode EventChannelError} carrying the
 * op, the argument to blame and Xen's errno, and leaves the model as it was,
 * except where Xen itself keeps a side effect (a port storage bucket
 * allocated before a later check failed).
 *
 * The C-type checks are the op table's (`op_table.ts`); each op's method
 * runs them once, then the op's handler, an `evtchn*` method with Xen's own
 * checks and effects. The modelled Linux kernel and `/dev/xen/evtchn`, whose
 * arguments already have their types, call the handlers directly, as Linux
 * calls Xen. {@linkcode Hypervisor.faults} is asked once per op either way.
 *
 * @example Two domains connected
 * ```ts
 * import { Hypervisor } from "./hypervisor.ts";
 * import assert from "node:assert/strict";
 * const xen = new Hypervisor();
 * xen.createDomain({ domain: 0, privileged: true });
 * xen.createDomain({ domain: 1 });
 * const offered = xen.allocUnbound(1, 0x7ff0, 0); // domU offers to dom0
 * const local = xen.bindInterdomain(0, 1, offered);
 * assert.deepEqual(xen.status(0, 1, offered), {
 *   status: "interdomain",
 *   vcpu: 0,
 *   remoteDomain: 0,
 *   remotePort: local,
 * });
 * ```
 */
export class Hypervisor {
  // Indexed by domain id: a lookup per hypercall must not depend on how many
  // domains exist.
  #domains: (Domain | undefined)[] = new Array(DOMID_FIRST_RESERVED);
  #ids = new Set<number>();
  #globalVirqHandlers = new Map<number, number>();
  /** Notifications delivered to Xen-attached ports (`xen_consumer`). */
  xenNotifications = 0;

  /**
   * Creates a domain.
   *
   * @param options Id, privilege, vCPUs, port limit.
   * @returns The domain's model.
   * @throws {EventChannelError} `EEXIST` if the id is taken, `EINVAL` for a
   * reserved id or a bad count.
   */
  createDomain(options: DomainOptions): Domain {
    const op = "create_domain";
    const id = checkUint(
      op,
      "domain",
      options.domain,
      DOMID_FIRST_RESERVED - 1,
    );
    checkUint(op, "vcpus", options.vcpus ?? 1, 4096);
    if ((options.vcpus ?? 1) < 1) {
      throw new EventChannelError(op, "EINVAL", {
        argument: "vcpus",
        value: options.vcpus,
      });
    }
    if (options.maxEvtchnPort !== undefined) {
      checkUint(op, "max_evtchn_port", options.maxEvtchnPort, UINT32_MAX);
    }
    if (this.#domains[id] !== undefined) {
      throw new EventChannelError(op, "EEXIST", {
        argument: "domain",
        value: id,
      });
    }
    const domain = new Domain({ ...options, domain: id });
    this.#domains[id] = domain;
    this.#ids.add(id);
    return domain;
  }

  /**
   * Destroys a domain as `domain_kill` → `evtchn_destroy` does: it is marked
   * dying (allocations fail with `EINVAL`), every port from the top down to 1
   * is closed, Xen-attached ones included, so each interdomain peer becomes
   * unbound with the dead domain as its remote; VIRQ_DOM_EXC is raised to its
   * handler; then the id is gone (`ESRCH`).
   *
   * @param domain The domain id.
   * @throws {EventChannelError} `ESRCH` for an unknown domain.
   */
  destroyDomain(domain: number): void {
    const d = this.#lookup("destroy_domain", "domain", domain, -1);
    d.dying = true;
    for (let port = d.validEvtchns - 1; port > 0; port--) {
      this.#close(d, port, false);
    }
    for (const [virq, handler] of this.#globalVirqHandlers) {
      if (handler === d.id) this.#globalVirqHandlers.delete(virq);
    }
    d.upcall = undefined;
    this.#domains[d.id] = undefined;
    this.#ids.delete(d.id);
    this.sendGlobalVirq(VIRQ.DOM_EXC);
  }

  /**
   * A domain's model, for inspection and for the guest side.
   *
   * @param domain The domain id.
   * @returns The domain, or `undefined`.
   */
  domain(domain: number): Domain | undefined {
    return this.#domains[domain];
  }

  /** Ids of all live domains, ascending. */
  get domainIds(): number[] {
    return [...this.#ids].sort((a, b) => a - b);
  }

  /**
   * Sets or clears the toolstack's pause (`controller_pause_count`), which
   * `reset` of another domain requires.
   *
   * @param domain The domain id.
   * @param paused Whether paused.
   */
  setPaused(domain: number, paused: boolean): void {
    this.#lookup("pause", "domain", domain, -1).pauseCount = paused ? 1 : 0;
  }

  /**
   * The fault-injection hook ({@linkcode FaultHook}): asked once per
   * `EVTCHNOP_*` call, whichever way it came (a checked method, `hypercall`,
   * or a modelled kernel calling the `evtchn*` handlers). `undefined`, the
   * default, costs one comparison per op.
   */
  faults: FaultHook | undefined = undefined;

  // ------------------------------------------------------------ helpers

  /**
   * Entry of every handler: `current->domain` (a caller that is not a
   * domain is `ESRCH`), then the one fault-injection hook point.
   */
  #enter(op: EvtchnOpName, caller: number): Domain {
    // Small enough to be inlined into every handler; the rare cases apart.
    const d = this.#domains[caller];
    if (d === undefined || this.faults !== undefined) {
      this.#enterSlowly(op, caller, d);
    }
    return d!;
  }

  #enterSlowly(op: EvtchnOpName, caller: number, d: Domain | undefined): void {
    if (d === undefined) {
      throw new EventChannelError(op, "ESRCH", {
        argument: "caller",
        value: caller,
        detail: "no such calling domain",
      });
    }
    const errno = this.faults!.before(op, d.id);
    if (errno !== 0) {
      throw new EventChannelError(op, errno, { detail: "injected fault" });
    }
  }

  /** `rcu_lock_domain_by_any_id`: DOMID_SELF is the caller; misses are ESRCH. */
  #lookup(op: string, argument: string, dom: number, caller: number): Domain {
    checkUint(op, argument, dom, DOMID_MAX);
    return this.#domainArg(op, argument, dom, caller);
  }

  /** {@linkcode Hypervisor.#lookup} of a `domid_t` already checked. */
  #domainArg(
    op: string,
    argument: string,
    dom: number,
    caller: number,
  ): Domain {
    const d = this.#domains[dom === DOMID_SELF && caller >= 0 ? caller : dom];
    if (d === undefined) {
      throw new EventChannelError(op, "ESRCH", { argument, value: dom });
    }
    return d;
  }

  /** XSM dummy policy `XSM_TARGET`: self, device model, or control domain. */
  #target(op: string, src: Domain, tgt: Domain, argument: string): void {
    if (src === tgt || src.target === tgt.id || src.privileged) return;
    throw new EventChannelError(op, "EPERM", {
      argument,
      value: tgt.id,
      detail: `domain ${src.id} has no rights over domain ${tgt.id}`,
    });
  }

  #allocate(op: string, d: Domain, argument: string): number {
    const port = d.allocatePort();
    if (port < 0) {
      throw new EventChannelError(op, ERRNO_NAME[port], {
        argument,
        value: d.id,
        detail: port === -28
          ? `no free port at or below ${
            Math.min(d.maxEvtchnPort, d.maxEvtchns - 1)
          }`
          : "domain is dying",
      });
    }
    return port;
  }

  /** `port_is_valid` of a port that is a uint32: `EINVAL` beyond storage. */
  #validPort(op: string, d: Domain, port: number): void {
    if (!(port < d.validEvtchns)) throw beyondStorage(op, d, port);
  }

  /** `domain_vcpu` of a uint32: `ENOENT` for a vCPU the domain lacks. */
  #vcpu(op: string, d: Domain, vcpu: number): number {
    if (vcpu >= d.vcpus) {
      throw new EventChannelError(op, "ENOENT", {
        argument: "vcpu",
        value: vcpu,
        detail: `domain ${d.id} has ${d.vcpus} vCPU(s)`,
      });
    }
    return vcpu;
  }

  // ------------------------------------------------- do_event_channel_op

  /**
   * `do_event_channel_op`: any op of the table by name, its arguments in
   * the order of its argument struct's fields
   * ({@linkcode EVTCHN_OPS}`[op].args`). Checks each against its C type,
   * then runs Xen's handler. The named methods (`allocUnbound`, `send`, …)
   * do the same for one op each.
   *
   * @param caller The calling domain.
   * @param op The op's name.
   * @param args Its arguments.
   * @returns A port (`bind_*`, `alloc_unbound`), the status (`status`),
   * `link_bits` (`init_control`), or `undefined`.
   * @throws {EventChannelError} `ENOSYS` for an op Xen does not have;
   * `EINVAL` for an argument out of its C type; the op's own refusals.
   *
   * @example
   * ```ts
   * import { Hypervisor } from "./hypervisor.ts";
   * import assert from "node:assert/strict";
   * const xen = new Hypervisor();
   * xen.createDomain({ domain: 1 });
   * const port = xen.hypercall(1, "bind_ipi", [0]) as number;
   * assert.deepEqual(xen.hypercall(1, "status", [0x7ff0, port]), {
   *   status: "ipi",
   *   vcpu: 0,
   * });
   * assert.throws(() => xen.hypercall(1, "send", [-1]), /EINVAL/);
   * ```
   */
  hypercall(
    caller: number,
    op: EvtchnOpName,
    args: readonly number[],
  ): number | ChannelStatus | undefined {
    const spec: EvtchnOp | undefined = Object.hasOwn(EVTCHN_OPS, op)
      ? EVTCHN_OPS[op]
      : undefined;
    if (spec === undefined) {
      throw new EventChannelError(String(op), "ENOSYS", {
        detail: "no such EVTCHNOP",
      });
    }
    checkOpArgs(spec, args[0], args[1], args[2]);
    return spec.run(this, caller, args) ?? undefined;
  }

  // ------------------------------------- operations, checked (the C types)

  /**
   * `EVTCHNOP_alloc_unbound` (6): a port in `dom` that `remoteDom` may bind.
   * `remoteDom` is stored unchecked; DOMID_SELF there means the caller.
   *
   * @param caller The calling domain.
   * @param dom Where to allocate (DOMID_SELF allowed).
   * @param remoteDom Who may connect.
   * @returns The new port.
   * @throws {EventChannelError} `ESRCH`, `ENOSPC`, `EINVAL` (dying), `EPERM`.
   */
  allocUnbound(caller: number, dom: number, remoteDom: number): number {
    checkOpArgs(EVTCHN_OPS.alloc_unbound, dom, remoteDom);
    return this.evtchnAllocUnbound(caller, dom, remoteDom);
  }

  /**
   * `EVTCHNOP_bind_interdomain` (0): connects to `remotePort` of
   * `remoteDom`, which must be unbound and offered to the caller. The new
   * local port is always set pending.
   *
   * @param caller The calling domain.
   * @param remoteDom The remote domain (DOMID_SELF for loopback).
   * @param remotePort The remote, unbound port.
   * @returns The new local port.
   * @throws {EventChannelError} `ESRCH`, `ENOSPC`, `EINVAL`.
   */
  bindInterdomain(
    caller: number,
    remoteDom: number,
    remotePort: number,
  ): number {
    checkOpArgs(EVTCHN_OPS.bind_interdomain, remoteDom, remotePort);
    return this.evtchnBindInterdomain(caller, remoteDom, remotePort);
  }

  /**
   * `EVTCHNOP_bind_virq` (1).
   *
   * @param caller The calling domain.
   * @param virq The VIRQ (< 24).
   * @param vcpu The vCPU; must be 0 for a global VIRQ.
   * @returns The new port.
   * @throws {EventChannelError} `EINVAL`, `ENOENT`, `EEXIST`, `ENOSPC`.
   */
  bindVirq(caller: number, virq: number, vcpu: number): number {
    checkOpArgs(EVTCHN_OPS.bind_virq, virq, vcpu);
    return this.evtchnBindVirq(caller, virq, vcpu);
  }

  /**
   * `EVTCHNOP_bind_pirq` (2): binds a physical IRQ the domain may use
   * (PV rules: `pirq_access_permitted`; the control domain may use any).
   *
   * @param caller The calling domain.
   * @param pirq The PIRQ.
   * @param flags `BIND_PIRQ__WILL_SHARE` (1) or 0.
   * @returns The new port.
   * @throws {EventChannelError} `EINVAL`, `EPERM`, `EEXIST`, `ENOSPC`.
   */
  bindPirq(caller: number, pirq: number, flags = 0): number {
    checkOpArgs(EVTCHN_OPS.bind_pirq, pirq, flags);
    return this.evtchnBindPirq(caller, pirq, flags);
  }

  /**
   * `EVTCHNOP_bind_ipi` (7).
   *
   * @param caller The calling domain.
   * @param vcpu The vCPU to notify.
   * @returns The new port.
   * @throws {EventChannelError} `ENOENT`, `ENOSPC`.
   */
  bindIpi(caller: number, vcpu: number): number {
    checkOpArgs(EVTCHN_OPS.bind_ipi, vcpu);
    return this.evtchnBindIpi(caller, vcpu);
  }

  /**
   * `EVTCHNOP_close` (3). Closing one end of an interdomain channel leaves the
   * other end unbound, waiting for the closer's domain.
   *
   * @param caller The calling domain.
   * @param port The port.
   * @throws {EventChannelError} `EINVAL` for an invalid, free, reserved or
   * Xen-attached port.
   */
  close(caller: number, port: number): void {
    checkOpArgs(EVTCHN_OPS.close, port);
    this.evtchnClose(caller, port);
  }

  /**
   * `EVTCHNOP_send` (4): interdomain → the peer's port is set pending on its
   * notify vCPU; IPI → the port itself; unbound → silently dropped.
   *
   * @param caller The calling domain.
   * @param port The local port.
   * @throws {EventChannelError} `EINVAL` for other states.
   */
  send(caller: number, port: number): void {
    // The table's check of `evtchn_port_t`, inline on the hot path.
    if (!isUint32(port)) checkOpArgs(EVTCHN_OPS.send, port);
    this.evtchnSend(caller, port);
  }

  /**
   * `EVTCHNOP_status` (5).
   *
   * @param caller The calling domain.
   * @param dom The domain whose port to report (DOMID_SELF allowed).
   * @param port The port.
   * @returns The state, notify vCPU and the state's fields.
   * @throws {EventChannelError} `ESRCH`, `EINVAL` (checked before
   * privilege), `EACCES` (Xen-attached), `EPERM`.
   */
  status(caller: number, dom: number, port: number): ChannelStatus {
    checkOpArgs(EVTCHN_OPS.status, dom, port);
    return this.evtchnStatus(caller, dom, port);
  }

  /**
   * `EVTCHNOP_bind_vcpu` (8): changes the notify vCPU of a global VIRQ,
   * unbound, interdomain or PIRQ port; an event already pending stays where
   * it was signalled.
   *
   * @param caller The calling domain.
   * @param port The port.
   * @param vcpu The new vCPU.
   * @throws {EventChannelError} `ENOENT` (vCPU, checked first), `EINVAL`.
   */
  bindVcpu(caller: number, port: number, vcpu: number): void {
    checkOpArgs(EVTCHN_OPS.bind_vcpu, port, vcpu);
    this.evtchnBindVcpu(caller, port, vcpu);
  }

  /**
   * `EVTCHNOP_unmask` (9): clears the mask and re-delivers a pending event.
   * A no-op that still succeeds on free, reserved or Xen-attached ports.
   *
   * @param caller The calling domain.
   * @param port The port.
   * @throws {EventChannelError} `EINVAL` for an invalid port.
   */
  unmask(caller: number, port: number): void {
    // The table's check of `evtchn_port_t`, inline on the hot path.
    if (!isUint32(port)) checkOpArgs(EVTCHN_OPS.unmask, port);
    this.evtchnUnmask(caller, port);
  }

  /**
   * `EVTCHNOP_reset` (10): closes every port of `dom` (Xen-attached ones
   * excepted), as the guest would; peers become unbound.
   *
   * @param caller The calling domain.
   * @param dom The domain (DOMID_SELF allowed).
   * @throws {EventChannelError} `ESRCH`, `EPERM`, `EINVAL` (another domain
   * not paused by the toolstack).
   */
  reset(caller: number, dom: number): void {
    checkOpArgs(EVTCHN_OPS.reset, dom);
    this.evtchnReset(caller, dom, false);
  }

  /**
   * `EVTCHNOP_reset_cont` (14): resumes a preempted reset. The model's resets
   * always complete, so after the checks of `reset` this gives `EBUSY`.
   *
   * @param caller The calling domain.
   * @param dom The domain.
   * @throws {EventChannelError} As `reset`, then `EBUSY`.
   */
  resetCont(caller: number, dom: number): void {
    checkOpArgs(EVTCHN_OPS.reset_cont, dom);
    this.evtchnReset(caller, dom, true);
  }

  /**
   * `EVTCHNOP_init_control` (11): maps a vCPU's FIFO control block at
   * `offset` in guest frame `gfn`. The first success switches the domain to
   * the FIFO ABI: every vCPU gets empty queues, pending 2-level events are
   * kept for replay, priorities become 7.
   *
   * @param caller The calling domain.
   * @param gfn A writable guest frame.
   * @param offset Byte offset of the 72-byte block, 8-byte aligned.
   * @param vcpu The vCPU.
   * @returns `link_bits` (17).
   * @throws {EventChannelError} `ENOENT`, `EINVAL`.
   */
  initControl(
    caller: number,
    gfn: number,
    offset: number,
    vcpu: number,
  ): number {
    checkOpArgs(EVTCHN_OPS.init_control, gfn, offset, vcpu);
    return this.evtchnInitControl(caller, gfn, offset, vcpu);
  }

  /**
   * `EVTCHNOP_expand_array` (12): adds a guest page of 1024 event words;
   * events recorded for its ports while they had no word are delivered.
   *
   * @param caller The calling domain.
   * @param gfn A writable guest frame.
   * @throws {EventChannelError} `EOPNOTSUPP` (not FIFO), `ENOSPC` (128
   * pages), `EINVAL` (bad frame).
   */
  expandArray(caller: number, gfn: number): void {
    checkOpArgs(EVTCHN_OPS.expand_array, gfn);
    this.evtchnExpandArray(caller, gfn);
  }

  /**
   * `EVTCHNOP_set_priority` (13).
   *
   * @param caller The calling domain.
   * @param port The port.
   * @param priority 0 (highest) to 15 (lowest).
   * @throws {EventChannelError} `EINVAL`, `ENOSYS` (2-level), `EACCES`.
   */
  setPriority(caller: number, port: number, priority: number): void {
    checkOpArgs(EVTCHN_OPS.set_priority, port, priority);
    this.evtchnSetPriority(caller, port, priority);
  }

  // ------------------------- operations, unchecked: Xen's handlers proper
  //
  // Each takes arguments that already have their C types (the table's
  // checks ran, or a modelled kernel computed them: Linux calls Xen here),
  // makes Xen's checks in Xen's order and has Xen's effects. Same refusals
  // as the checked methods otherwise.

  /**
   * `evtchn_alloc_unbound`, for arguments of the right C types.
   *
   * @param caller The calling domain.
   * @param dom A `domid_t`.
   * @param remoteDom A `domid_t`.
   * @returns The new port.
   */
  evtchnAllocUnbound(caller: number, dom: number, remoteDom: number): number {
    const op = "alloc_unbound";
    const c = this.#enter(op, caller);
    const d = this.#domainArg(op, "dom", dom, caller);
    const port = this.#allocate(op, d, "dom");
    if (!(c === d || c.target === d.id || c.privileged)) {
      d.releaseUnusedPort(port);
      this.#target(op, c, d, "dom");
    }
    d[STATE][port] = ECS.UNBOUND;
    d[REMOTE_DOMAIN][port] = remoteDom === DOMID_SELF ? c.id : remoteDom;
    d[NOTIFY_VCPU][port] = 0;
    d.abi.initPort(port);
    return port;
  }

  /**
   * `evtchn_bind_interdomain`, for arguments of the right C types.
   *
   * @param caller The calling domain.
   * @param remoteDom A `domid_t`.
   * @param remotePort A uint32.
   * @returns The new local port.
   */
  evtchnBindInterdomain(
    caller: number,
    remoteDom: number,
    remotePort: number,
  ): number {
    const op = "bind_interdomain";
    const ld = this.#enter(op, caller);
    const rd = this.#domainArg(op, "remote_dom", remoteDom, caller);
    const lport = this.#allocate(op, ld, "local_port");
    if (
      !rd.isValid(remotePort) || rd[STATE][remotePort] !== ECS.UNBOUND ||
      rd[REMOTE_DOMAIN][remotePort] !== ld.id
    ) {
      ld.releaseUnusedPort(lport);
      throw new EventChannelError(op, "EINVAL", {
        argument: "remote_port",
        value: remotePort,
        detail: rd.isValid(remotePort)
          ? `not an unbound port offered to domain ${ld.id}`
          : `beyond domain ${rd.id}'s port storage`,
      });
    }
    ld[STATE][lport] = ECS.INTERDOMAIN;
    ld[REMOTE_DOMAIN][lport] = rd.id;
    ld[REMOTE_PORT][lport] = remotePort;
    ld[NOTIFY_VCPU][lport] = 0;
    ld.abi.initPort(lport);
    rd[STATE][remotePort] = ECS.INTERDOMAIN;
    rd[REMOTE_DOMAIN][remotePort] = ld.id;
    rd[REMOTE_PORT][remotePort] = lport;
    // Xen: "We may have lost notifications on the remote unbound port."
    ld.setPending(lport, ld[NOTIFY_VCPU][lport]);
    return lport;
  }

  /**
   * `evtchn_bind_virq`, for arguments of the right C types.
   *
   * @param caller The calling domain.
   * @param virq A uint32.
   * @param vcpu A uint32.
   * @returns The new port.
   */
  evtchnBindVirq(caller: number, virq: number, vcpu: number): number {
    const op = "bind_virq";
    const d = this.#enter(op, caller);
    if (virq >= NR_VIRQS) {
      throw new EventChannelError(op, "EINVAL", {
        argument: "virq",
        value: virq,
        detail: `VIRQ must be below ${NR_VIRQS}`,
      });
    }
    if (isGlobalVirq(virq) && vcpu !== 0) {
      throw new EventChannelError(op, "EINVAL", {
        argument: "vcpu",
        value: vcpu,
        detail: "a global VIRQ is bound on vCPU 0",
      });
    }
    this.#vcpu(op, d, vcpu);
    if (d.virqPort(virq, vcpu) !== 0) {
      throw new EventChannelError(op, "EEXIST", {
        argument: "virq",
        value: virq,
        detail: `already bound to port ${d.virqPort(virq, vcpu)}`,
      });
    }
    const port = this.#allocate(op, d, "port");
    d[STATE][port] = ECS.VIRQ;
    d[NOTIFY_VCPU][port] = vcpu;
    d[IRQ][port] = virq;
    d.abi.initPort(port);
    d[VIRQ_TO_PORT][vcpu * NR_VIRQS + virq] = port;
    return port;
  }

  /**
   * `evtchn_bind_pirq`, for arguments of the right C types.
   *
   * @param caller The calling domain.
   * @param pirq A uint32.
   * @param _flags A uint32.
   * @returns The new port.
   */
  evtchnBindPirq(caller: number, pirq: number, _flags: number): number {
    // BIND_PIRQ__WILL_SHARE changes nothing the model shows.
    const op = "bind_pirq";
    const d = this.#enter(op, caller);
    if (pirq >= d.nrPirqs) {
      throw new EventChannelError(op, "EINVAL", {
        argument: "pirq",
        value: pirq,
        detail: `domain has ${d.nrPirqs} PIRQs`,
      });
    }
    if (!d.privileged && !d.pirqAccess.has(pirq)) {
      throw new EventChannelError(op, "EPERM", {
        argument: "pirq",
        value: pirq,
        detail: "PIRQ not granted to this domain",
      });
    }
    if (d.pirqToPort.has(pirq)) {
      throw new EventChannelError(op, "EEXIST", {
        argument: "pirq",
        value: pirq,
      });
    }
    const port = this.#allocate(op, d, "port");
    d[STATE][port] = ECS.PIRQ;
    d[IRQ][port] = pirq;
    d[NOTIFY_VCPU][port] = 0;
    d.abi.initPort(port);
    d.pirqToPort.set(pirq, port);
    return port;
  }

  /**
   * `evtchn_bind_ipi`, for a uint32 vCPU.
   *
   * @param caller The calling domain.
   * @param vcpu A uint32.
   * @returns The new port.
   */
  evtchnBindIpi(caller: number, vcpu: number): number {
    const op = "bind_ipi";
    const d = this.#enter(op, caller);
    this.#vcpu(op, d, vcpu);
    const port = this.#allocate(op, d, "port");
    d[STATE][port] = ECS.IPI;
    d[NOTIFY_VCPU][port] = vcpu;
    d.abi.initPort(port);
    return port;
  }

  /**
   * `EVTCHNOP_close` for a uint32 port.
   *
   * @param caller The calling domain.
   * @param port A uint32.
   */
  evtchnClose(caller: number, port: number): void {
    const op = "close";
    const d = this.#enter(op, caller);
    this.#validPort(op, d, port);
    const rc = this.#close(d, port, true);
    if (rc !== 0) {
      throw new EventChannelError(op, "EINVAL", {
        argument: "port",
        value: port,
        detail: d[XEN_CONSUMER][port] ? "port is Xen's" : "port is not bound",
      });
    }
  }

  /** `evtchn_close`; returns 0 or -EINVAL. */
  #close(d: Domain, port: number, guest: boolean): number {
    if (guest && d[XEN_CONSUMER][port]) return -22;
    switch (d[STATE][port]) {
      case ECS.FREE:
      case ECS.RESERVED:
        return -22;
      case ECS.PIRQ:
        d.pirqToPort.delete(d[IRQ][port]);
        break;
      case ECS.VIRQ: {
        const virq = d[IRQ][port];
        const vcpu = isGlobalVirq(virq) ? 0 : d[NOTIFY_VCPU][port];
        d[VIRQ_TO_PORT][vcpu * NR_VIRQS + virq] = 0;
        break;
      }
      case ECS.INTERDOMAIN: {
        const rd = this.#domains[d[REMOTE_DOMAIN][port]]!;
        const rport = d[REMOTE_PORT][port];
        d.free(port);
        rd[STATE][rport] = ECS.UNBOUND;
        rd[REMOTE_DOMAIN][rport] = d.id;
        rd[REMOTE_PORT][rport] = 0;
        return 0;
      }
    }
    d.free(port);
    return 0;
  }

  /**
   * `evtchn_send` for a uint32 port.
   *
   * @param caller The calling domain.
   * @param port A uint32.
   */
  evtchnSend(caller: number, port: number): void {
    const d = this.#enter("send", caller);
    if (
      !(port < d.validEvtchns && d[XEN_CONSUMER][port] === 0 &&
        this.#send(d, port) === 0)
    ) throw sendRefused(d, port);
  }

  /**
   * `EVTCHNOP_send` as a guest kernel issues it when it ignores the result
   * (Linux's `notify_remote_via_evtchn`): the same effects as
   * {@linkcode Hypervisor.send}, without building an error. Nothing is
   * assumed of the arguments: a caller that is not a domain gives -3
   * (`-ESRCH`), a port that is not a valid, guest-owned, sending port -22
   * (`-EINVAL`), and then nothing changes. An injected fault gives its
   * negated errno.
   *
   * @param caller The calling domain.
   * @param port The local port.
   * @returns 0, or Xen's negative errno.
   */
  sendQuiet(caller: number, port: number): number {
    const d = this.#domains[caller];
    if (d === undefined) return -3;
    if (this.faults !== undefined) {
      const errno = this.faults.before("send", d.id);
      if (errno !== 0) return -errno;
    }
    if (
      !isUint32(port) || port >= d.validEvtchns || d[XEN_CONSUMER][port] !== 0
    ) return -22;
    return this.#send(d, port);
  }

  /** `evtchn_send` past the checks of its argument: 0 or -EINVAL. */
  #send(d: Domain, port: number): number {
    const state = d[STATE][port];
    if (state === ECS.INTERDOMAIN) {
      const rd = this.#domains[d[REMOTE_DOMAIN][port]]!;
      const rport = d[REMOTE_PORT][port];
      if (rd[XEN_CONSUMER][rport]) this.xenNotifications++;
      // evtchn_port_set_pending: the peer's end is interdomain and not
      // Xen's, so usable.
      else rd.abi.setPending(rport, rd[NOTIFY_VCPU][rport]);
      return 0;
    }
    if (state === ECS.IPI) {
      d.setPending(port, d[NOTIFY_VCPU][port]);
      return 0;
    }
    return state === ECS.UNBOUND ? 0 : -22;
  }

  /**
   * `evtchn_status` for a `domid_t` and a uint32 port.
   *
   * @param caller The calling domain.
   * @param dom A `domid_t`.
   * @param port A uint32.
   * @returns The status.
   */
  evtchnStatus(caller: number, dom: number, port: number): ChannelStatus {
    const op = "status";
    const c = this.#enter(op, caller);
    const d = this.#domainArg(op, "dom", dom, caller);
    this.#validPort(op, d, port);
    if (d[XEN_CONSUMER][port]) {
      throw new EventChannelError(op, "EACCES", {
        argument: "port",
        value: port,
        detail: "port is Xen's",
      });
    }
    this.#target(op, c, d, "dom");
    return channelStatus(d, port);
  }

  /**
   * `evtchn_bind_vcpu` for a uint32 port and vCPU.
   *
   * @param caller The calling domain.
   * @param port A uint32.
   * @param vcpu A uint32.
   */
  evtchnBindVcpu(caller: number, port: number, vcpu: number): void {
    const op = "bind_vcpu";
    const d = this.#enter(op, caller);
    this.#vcpu(op, d, vcpu);
    this.#validPort(op, d, port);
    const state = d[STATE][port];
    const movable = !d[XEN_CONSUMER][port] &&
      (state === ECS.UNBOUND || state === ECS.INTERDOMAIN ||
        state === ECS.PIRQ ||
        (state === ECS.VIRQ && isGlobalVirq(d[IRQ][port])));
    if (!movable) {
      throw new EventChannelError(op, "EINVAL", {
        argument: "port",
        value: port,
        detail: "this channel type cannot change vCPU",
      });
    }
    d[NOTIFY_VCPU][port] = vcpu;
  }

  /**
   * `evtchn_unmask` for a uint32 port.
   *
   * @param caller The calling domain.
   * @param port A uint32.
   */
  evtchnUnmask(caller: number, port: number): void {
    const d = this.#enter("unmask", caller);
    if (!(port < d.validEvtchns)) throw beyondStorage("unmask", d, port);
    if (d.isUsable(port)) d.abi.unmask(port, d[NOTIFY_VCPU][port]);
  }

  /**
   * `evtchn_reset` (`EVTCHNOP_reset`, and `EVTCHNOP_reset_cont` when
   * `resuming`) for a `domid_t`.
   *
   * @param caller The calling domain.
   * @param dom A `domid_t`.
   * @param resuming Whether it is `reset_cont`.
   */
  evtchnReset(caller: number, dom: number, resuming: boolean): void {
    const op = resuming ? "reset_cont" : "reset";
    const c = this.#enter(op, caller);
    const d = this.#domainArg(op, "dom", dom, caller);
    this.#target(op, c, d, "dom");
    if (d !== c && d.pauseCount === 0) {
      throw new EventChannelError(op, "EINVAL", {
        argument: "dom",
        value: dom,
        detail: "the domain must be paused by the toolstack",
      });
    }
    if (resuming) {
      throw new EventChannelError(op, "EBUSY", {
        argument: "dom",
        value: dom,
        detail: "no reset in progress",
      });
    }
    for (
      let port = 1;
      d.isValid(port) && d.activeEvtchns > d.xenEvtchns;
      port++
    ) {
      this.#close(d, port, true);
    }
    d.useTwoLevel(); // a completed reset drops FIFO state
  }

  /**
   * `evtchn_fifo_init_control` (`event_fifo.ts`) for a frame and uint32s.
   *
   * @param caller The calling domain.
   * @param gfn A guest frame number.
   * @param offset A uint32.
   * @param vcpu A uint32.
   * @returns `link_bits`.
   */
  evtchnInitControl(
    caller: number,
    gfn: number,
    offset: number,
    vcpu: number,
  ): number {
    const d = this.#enter("init_control", caller);
    return evtchnFifoInitControl(d, gfn, offset, vcpu);
  }

  /**
   * `evtchn_fifo_expand_array` (`event_fifo.ts`) for a frame.
   *
   * @param caller The calling domain.
   * @param gfn A guest frame number.
   */
  evtchnExpandArray(caller: number, gfn: number): void {
    evtchnFifoExpandArray(this.#enter("expand_array", caller), gfn);
  }

  /**
   * `evtchn_set_priority` for uint32s: `port_is_valid` here, then
   * `evtchn_port_set_priority` (no such op under 2-level: `ENOSYS`; the port
   * unbound: `EACCES`), then the FIFO ABI's own check (`event_fifo.ts`).
   *
   * @param caller The calling domain.
   * @param port A uint32.
   * @param priority A uint32.
   */
  evtchnSetPriority(caller: number, port: number, priority: number): void {
    const op = "set_priority";
    const d = this.#enter(op, caller);
    this.#validPort(op, d, port);
    const fifo = d.abi;
    if (!(fifo instanceof FifoAbi)) {
      throw new EventChannelError(op, "ENOSYS", {
        detail: "the 2-level ABI has no priorities",
      });
    }
    if (!d.isUsable(port)) {
      throw new EventChannelError(op, "EACCES", {
        argument: "port",
        value: port,
        detail: "port is not bound",
      });
    }
    evtchnFifoSetPriority(fifo, port, priority);
  }

  // ---------------------------------------------------- the outside world

  /**
   * Raises a VIRQ in a domain: a per-vCPU VIRQ on `vcpu`
   * (`send_guest_vcpu_virq`), a global one through vCPU 0's binding to the
   * port's notify vCPU (`send_guest_global_virq`). Nothing happens if the
   * VIRQ is not bound.
   *
   * @param domain The domain.
   * @param virq The VIRQ.
   * @param vcpu The vCPU, for per-vCPU VIRQs.
   */
  raiseVirq(domain: number, virq: number, vcpu = 0): void {
    const op = "raise_virq";
    const d = this.#lookup(op, "domain", domain, -1);
    checkUint(op, "virq", virq, NR_VIRQS - 1);
    this.#vcpu(op, d, checkUint(op, "vcpu", vcpu, UINT32_MAX));
    if (isGlobalVirq(virq)) {
      const port = d.virqPort(virq, 0);
      if (port !== 0) d.setPending(port, d[NOTIFY_VCPU][port]);
    } else {
      const port = d.virqPort(virq, vcpu);
      if (port !== 0) d.setPending(port, vcpu);
    }
  }

  /**
   * `send_global_virq`: raises a global VIRQ in its handler domain, or in the
   * hardware domain (dom0) when none is set.
   *
   * @param virq A global VIRQ.
   */
  sendGlobalVirq(virq: number): void {
    const handler = this.#globalVirqHandlers.get(virq) ?? 0;
    if (this.#domains[handler] !== undefined) this.raiseVirq(handler, virq);
  }

  /**
   * Makes a domain the handler of a global VIRQ
   * (`XEN_DOMCTL_set_virq_handler`).
   *
   * @param virq A global VIRQ.
   * @param domain The handler.
   */
  setGlobalVirqHandler(virq: number, domain: number): void {
    const op = "set_virq_handler";
    checkUint(op, "virq", virq, NR_VIRQS - 1);
    this.#lookup(op, "domain", domain, -1);
    this.#globalVirqHandlers.set(virq, domain);
  }

  /**
   * Grants a domain access to a physical IRQ (`irq_permit_access`).
   *
   * @param domain The domain.
   * @param pirq The PIRQ.
   */
  grantPirq(domain: number, pirq: number): void {
    const d = this.#lookup("grant_pirq", "domain", domain, -1);
    d.pirqAccess.add(checkUint("grant_pirq", "pirq", pirq, d.nrPirqs - 1));
  }

  /**
   * A physical interrupt fires: if the domain bound `pirq`, its port is set
   * pending on its notify vCPU (`send_guest_pirq`).
   *
   * @param domain The domain.
   * @param pirq The PIRQ.
   */
  assertPirq(domain: number, pirq: number): void {
    const d = this.#lookup("assert_pirq", "domain", domain, -1);
    const port = d.pirqToPort.get(pirq);
    if (port !== undefined) d.setPending(port, d[NOTIFY_VCPU][port]);
  }

  /**
   * A port whose local end Xen itself consumes
   * (`alloc_unbound_xen_event_channel`, used by ioreq servers and
   * vm_event): the guest may not close, send on or move it.
   *
   * @param domain The domain holding the port.
   * @param remoteDom The domain allowed to bind to it.
   * @returns The port.
   */
  allocXenChannel(domain: number, remoteDom: number): number {
    const op = "alloc_xen_channel";
    const d = this.#lookup(op, "domain", domain, -1);
    checkUint(op, "remote_dom", remoteDom, DOMID_MAX);
    const port = this.#allocate(op, d, "domain");
    d[STATE][port] = ECS.UNBOUND;
    d[REMOTE_DOMAIN][port] = remoteDom;
    d[XEN_CONSUMER][port] = 1;
    d.xenEvtchns++;
    d.abi.initPort(port);
    return port;
  }
}

/**
 * Why `EVTCHNOP_send` refused a port (nothing changed), in Xen's order of
 * checks. Out of `evtchnSend`, which stays small enough to inline.
 */
function sendRefused(d: Domain, port: number): EventChannelError {
  if (!(port < d.validEvtchns)) return beyondStorage("send", d, port);
  return new EventChannelError("send", "EINVAL", {
    argument: "port",
    value: port,
    detail: d[XEN_CONSUMER][port]
      ? "port is Xen's"
      : "only interdomain, IPI and unbound ports can send",
  });
}

/** The refusal of a port beyond a domain's storage (`port_is_valid`). */
function beyondStorage(
  op: string,
  d: Domain,
  port: number,
): EventChannelError {
  return new EventChannelError(op, "EINVAL", {
    argument: "port",
    value: port,
    detail: `beyond the domain's port storage (${d.validEvtchns})`,
  });
}

/**
 * What `EVTCHNOP_status` reports for a valid port of a domain.
 *
 * @param d The domain.
 * @param port A valid port.
 * @returns The status.
 *
 * @example
 * ```ts
 * import { Domain } from "./domain.ts";
 * import { channelStatus } from "./hypervisor.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual(channelStatus(new Domain({ domain: 1 }), 0), {
 *   status: "closed",
 *   vcpu: 0,
 * });
 * ```
 */
export function channelStatus(d: Domain, port: number): ChannelStatus {
  const vcpu = d[NOTIFY_VCPU][port];
  switch (d[STATE][port]) {
    case ECS.UNBOUND:
      return { status: "unbound", vcpu, remoteDomain: d[REMOTE_DOMAIN][port] };
    case ECS.INTERDOMAIN:
      return {
        status: "interdomain",
        vcpu,
        remoteDomain: d[REMOTE_DOMAIN][port],
        remotePort: d[REMOTE_PORT][port],
      };
    case ECS.PIRQ:
      return { status: "pirq", vcpu, pirq: d[IRQ][port] };
    case ECS.VIRQ:
      return { status: "virq", vcpu, virq: d[IRQ][port] };
    case ECS.IPI:
      return { status: "ipi", vcpu };
    default:
      return { status: "closed", vcpu };
  }
}
