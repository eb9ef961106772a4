/**
 * The `memory` backend: Xen's event-channel subsystem and Linux's
 * `/dev/xen/evtchn` driver, modelled in memory. No permissions needed.
 *
 * @example
 * ```ts
 * import { MemoryXen } from "./mod.ts";
 * import assert from "node:assert/strict";
 * const xen = new MemoryXen();
 * xen.createDomain({ domain: 1 });
 * await using dom0 = xen.open(0);
 * await using domU = xen.open(1);
 * const offered = domU.bindUnboundPort(0);
 * const port = dom0.bindInterdomain(1, offered);
 * assert.equal(dom0.poll(), port); // pending right after bind
 * ```
 *
 * @module
 */

import { EventChannelHandle } from "../../handle.ts";
import {
  type Dom0Hypercalls,
  refuseControlDomainReset,
} from "../../hypercalls.ts";
import { EventChannelError } from "../../errors.ts";
import type { Domain, DomainOptions } from "./hypervisor/domain.ts";
import { Hypervisor } from "./hypervisor/hypervisor.ts";
import { MemoryEvtchnDevice } from "./evtchn_device.ts";
import { LinuxGuest } from "./linux_guest.ts";
import {
  type DomainInfo,
  inspectDomains,
  inspectPort,
  inspectPorts,
  type PortInfo,
} from "./hypervisor/inspect.ts";
import { type Finding, Linter, type LintOptions } from "./lint.ts";
import {
  FaultInjector,
  type FaultOptions,
  type InjectedFault,
} from "./faults.ts";
import { ObservedDevice } from "./_observed_device.ts";
import { DOMID_SELF } from "../../xen/domid.ts";
import {
  checkHostSnapshot,
  HOST_SNAPSHOT_FORMAT,
  HOST_SNAPSHOT_VERSION,
  type HostPort,
  type HostSnapshot,
} from "../../host.ts";
import {
  defaultDom0Pirqs,
  type KernelProfile,
  profileFromSnapshot,
} from "./linux/profile.ts";

export { type FaultHook, Hypervisor } from "./hypervisor/hypervisor.ts";
export {
  checkOpArgs,
  EVTCHN_OPS,
  type EvtchnOp,
  OP_ARG_MAX,
  type OpArg,
  type OpArgType,
  type OpResult,
} from "./hypervisor/op_table.ts";
export type { EcsName } from "./hypervisor/domain.ts";
export {
  type DomainInfo,
  inspectDomain,
  inspectDomains,
  inspectPort,
  inspectPorts,
  type PortInfo,
} from "./hypervisor/inspect.ts";
export { checkInvariants } from "./hypervisor/invariants.ts";
export {
  dumpLines,
  type DumpRow,
  dumpRow,
  hostDumpRows,
} from "./hypervisor/dump.ts";
export type { Domain, DomainOptions } from "./hypervisor/domain.ts";
export type { EventAbi } from "./hypervisor/event_abi.ts";
export { TwoLevelAbi } from "./hypervisor/event_2l.ts";
export { FifoAbi } from "./hypervisor/event_fifo.ts";
export { SharedInfo } from "./hypervisor/shared_info.ts";
export { LinuxGuest, type LinuxGuestOptions } from "./linux_guest.ts";
export { MemoryEvtchnDevice } from "./evtchn_device.ts";
export type { FaultErrno, FaultOptions, InjectedFault } from "./faults.ts";
export {
  assertNoFindings,
  type Finding,
  type FindingCode,
  type FindingSeverity,
  formatFindings,
  type HasFindings,
  Linter,
  type LintOptions,
} from "./lint.ts";
export {
  defaultDom0Pirqs,
  defaultProfile,
  type DefaultProfileOptions,
  type KernelEventAbi,
  type KernelProfile,
  profileFromSnapshot,
} from "./linux/profile.ts";

/** Options for a modelled domain with its Linux kernel. */
export interface MemoryDomainOptions extends DomainOptions {
  /** Boot a Linux guest in it (needed to open handles). Default true. */
  linux?: boolean;
  /** Bind the kernel's own ports at boot, as Linux does. Default true. */
  bootPorts?: boolean;
  /** The guest kernel's event ABI: `"fifo"` (default) or `"2l"`. */
  eventAbi?: "fifo" | "2l";
  /** What the guest kernel holds at boot (default: the reference profile). */
  profile?: KernelProfile;
}

/**
 * What a modelled Linux guest kernel reports about its event handling.
 *
 * @example
 * ```ts
 * import { MemoryXen } from "./mod.ts";
 * import assert from "node:assert/strict";
 * const info = new MemoryXen({ eventAbi: "2l", vcpus: 1 }).kernel(0)!;
 * assert.deepEqual(info, { domain: 0, abi: "2l", vcpus: 1, nrChannels: 4096 });
 * ```
 */
export interface KernelInfo {
  /** The guest's domain. */
  readonly domain: number;
  /** The event ABI the kernel set up (`xen.fifo_events`). */
  readonly abi: "fifo" | "2l";
  /** The kernel's online vCPUs. */
  readonly vcpus: number;
  /**
   * `xen_evtchn_nr_channels()`: 4096 under 2-level, event-array pages ×
   * 1024 under FIFO (it grows as ports are bound).
   */
  readonly nrChannels: number;
}

/** Options for {@linkcode MemoryXen}. */
export interface MemoryXenOptions {
  /** dom0's vCPUs (default 2, like the project's real-Xen VM). */
  vcpus?: number;
  /** Bind dom0 kernel's own ports at boot. Default true. */
  bootPorts?: boolean;
  /**
   * Event ABI of every Linux guest: `"fifo"` (default, as Linux 6.1 on Xen
   * 4.17) or `"2l"` (as with `xen.fifo_events=0`).
   */
  eventAbi?: "fifo" | "2l";
  /**
   * A snapshot of a real host (`evtchn snapshot --json`, `snapshotHost()`):
   * dom0 boots with that host's vCPUs, event ABI and kernel ports, in the
   * same states on the same vCPUs, its event array and port storage as
   * large, so that port numbers and vCPU choices agree with that host from
   * the first bind. Overrides `vcpus` and `eventAbi`.
   */
  host?: HostSnapshot;
  /**
   * Lint mode: the model runs exactly as Xen does and, beside it, records
   * what the program did that loses or strands events (a port never
   * unmasked, a notify nobody hears, ring overflow, a pending event closed
   * away, ports and handles left open, notifies to a paused domain); read
   * them with {@linkcode MemoryXen.findings}. `true` or the rules' limits.
   * Off by default, and then free.
   */
  lint?: boolean | LintOptions;
  /**
   * Fault injection: peer domains destroyed, spurious events, delayed
   * cross-vCPU delivery, forced ring overflow, failing operations, each at a
   * chosen step (see `FaultOptions`); what was injected is in
   * {@linkcode MemoryXen.injectedFaults}. Off by default, and then free.
   */
  faults?: FaultOptions;
  /** The fault scheduler's seed: the same seed, the same run. Default 0. */
  seed?: number;
}

/**
 * A modelled Xen host: the hypervisor with a privileged dom0 running Linux,
 * more domains on request, and `/dev/xen/evtchn` handles in any domain
 * running Linux.
 *
 * @example dom0 allocates for a domU through the hypercall level
 * ```ts
 * import { MemoryXen } from "./mod.ts";
 * import assert from "node:assert/strict";
 * const xen = new MemoryXen();
 * xen.createDomain({ domain: 3 });
 * const port = xen.hypercalls(0).allocUnbound(3, 0);
 * assert.equal(xen.hypercalls(0).status(3, port).status, "unbound");
 * ```
 */
export class MemoryXen {
  /** The hypervisor model. */
  readonly hypervisor: Hypervisor = new Hypervisor();
  #guests = new Map<number, LinuxGuest>();
  #eventAbi: "fifo" | "2l";
  #lint: Linter | undefined;
  #faults: FaultInjector | undefined;

  /**
   * Boots the host with dom0.
   *
   * @param options dom0's vCPUs and boot ports.
   */
  constructor(options: MemoryXenOptions = {}) {
    const lint = options.lint !== undefined && options.lint !== false;
    if (options.faults !== undefined) {
      this.#faults = new FaultInjector(
        this.hypervisor,
        options.faults,
        options.seed ?? 0,
        (domain) => this.destroyDomain(domain),
      );
    }
    if (lint || this.#faults !== undefined) {
      this.#lint = new Linter(
        this.hypervisor,
        options.lint === true || !lint ? {} : options.lint as LintOptions,
        { record: lint, onStep: this.#faults?.onStep },
      );
    }
    const host = options.host === undefined
      ? undefined
      : checkHostSnapshot(options.host);
    const profile = host === undefined ? undefined : profileFromSnapshot(host);
    this.#eventAbi = profile?.eventAbi ?? options.eventAbi ?? "fifo";
    const vcpus = profile?.vcpus ?? options.vcpus ?? 2;
    // dom0's PIRQ space: the reference host's, or as large as a snapshot's
    // PIRQs need (Xen hands MSI PIRQs out from its top).
    let nrPirqs = defaultDom0Pirqs(vcpus);
    for (const p of profile?.ports ?? []) {
      if (p.status === "pirq") nrPirqs = Math.max(nrPirqs, p.pirq + 1);
    }
    this.createDomain({
      domain: 0,
      privileged: true,
      vcpus,
      bootPorts: options.bootPorts,
      profile,
      nrPirqs,
    });
  }

  /**
   * Creates a domain, by default running Linux.
   *
   * @param options The domain and its guest.
   * @returns The domain's model.
   */
  createDomain(options: MemoryDomainOptions): Domain {
    const domain = this.hypervisor.createDomain(options);
    if (options.linux ?? true) {
      this.#guests.set(
        domain.id,
        new LinuxGuest(this.hypervisor, domain.id, {
          bootPorts: options.bootPorts,
          eventAbi: options.eventAbi ?? this.#eventAbi,
          profile: options.profile,
        }),
      );
    }
    this.#faults?.domainCreated(domain);
    return domain;
  }

  /**
   * Destroys a domain (Xen's teardown; peers become unbound).
   *
   * @param domain The domain id.
   */
  destroyDomain(domain: number): void {
    this.hypervisor.destroyDomain(domain);
    this.#guests.delete(domain);
  }

  /**
   * The Linux guest of a domain.
   *
   * @param domain The domain id.
   * @returns The guest, or `undefined` when the domain runs none.
   */
  guest(domain: number): LinuxGuest | undefined {
    return this.#guests.get(domain);
  }

  /**
   * Every live domain, by ascending id: a read-only copy of what the model
   * holds (vCPUs, event ABI, port storage and use, limits, pause).
   *
   * @returns Frozen rows.
   *
   * @example
   * ```ts
   * import { MemoryXen } from "./mod.ts";
   * import assert from "node:assert/strict";
   * const xen = new MemoryXen();
   * xen.createDomain({ domain: 5, vcpus: 1, linux: false });
   * const [dom0, dom5] = xen.domains();
   * assert.deepEqual([dom0.id, dom0.privileged, dom0.abi], [0, true, "fifo"]);
   * assert.deepEqual([dom5.id, dom5.vcpus, dom5.abi], [5, 1, "2l"]);
   * assert.throws(() => (dom5 as { vcpus: number }).vcpus = 9);
   * ```
   */
  domains(): readonly DomainInfo[] {
    return inspectDomains(this.hypervisor);
  }

  /**
   * A domain's ports in use, ascending, as `xl debug-keys e` lists them:
   * state, notify vCPU, pending, masked, the 2-level selector bit or the
   * FIFO word's LINKED/BUSY/link and priority, and the remote end, VIRQ or
   * PIRQ. Rows are copies: later operations do not change them.
   *
   * @param domain The domain id.
   * @returns Frozen rows.
   * @throws {EventChannelError} `ESRCH` for a domain that does not exist.
   *
   * @example A channel from dom0's point of view
   * ```ts
   * import { MemoryXen } from "./mod.ts";
   * import assert from "node:assert/strict";
   * const xen = new MemoryXen({ bootPorts: false });
   * xen.createDomain({ domain: 1, bootPorts: false });
   * using dom0 = xen.open(0);
   * using domU = xen.open(1);
   * const offered = domU.bindUnboundPort(0);
   * const port = dom0.bindInterdomain(1, offered);
   * const [row] = xen.ports(0);
   * assert.equal(row.port, port);
   * assert.equal(row.state, "interdomain");
   * assert.deepEqual([row.remoteDomain, row.remotePort], [1, offered]);
   * // Xen set it pending at bind; the kernel took the event, masked the
   * // port until the program unmasks it, and cleared pending.
   * assert.deepEqual([row.pending, row.masked], [false, true]);
   * assert.equal(row.fifo?.priority, 7); // FIFO's default
   * dom0.unmask(dom0.poll()!);
   * assert.equal(xen.port(0, port)?.masked, false);
   * assert.equal(row.masked, true); // rows are copies
   * ```
   */
  ports(domain: number): readonly PortInfo[] {
    return inspectPorts(this.#domain("ports", domain));
  }

  /**
   * One port's row, as in {@linkcode MemoryXen.ports}.
   *
   * @param domain The domain id.
   * @param port The port.
   * @returns The row, or `undefined` for a free port or one beyond the
   * domain's port storage.
   * @throws {EventChannelError} `ESRCH` for a domain that does not exist.
   *
   * @example
   * ```ts
   * import { MemoryXen } from "./mod.ts";
   * import assert from "node:assert/strict";
   * const xen = new MemoryXen({ eventAbi: "2l" });
   * const port = xen.hypercalls(0).allocUnbound(0, 0);
   * assert.equal(xen.port(0, port)?.state, "unbound");
   * assert.equal(xen.port(0, port)?.selector, false);
   * assert.equal(xen.port(0, 100_000), undefined);
   * ```
   */
  port(domain: number, port: number): PortInfo | undefined {
    return inspectPort(this.#domain("port", domain), port);
  }

  /**
   * What a domain's Linux kernel reports about its event handling.
   *
   * @param domain The domain id (default dom0).
   * @returns Frozen facts, or `undefined` when the domain runs no Linux.
   *
   * @example FIFO's channel count grows with the event array
   * ```ts
   * import { MemoryXen } from "./mod.ts";
   * import assert from "node:assert/strict";
   * const xen = new MemoryXen({ vcpus: 2 });
   * assert.equal(xen.kernel(0)?.abi, "fifo");
   * assert.equal(xen.kernel(0)?.nrChannels, 1024); // one event-array page
   * assert.equal(xen.kernel(7), undefined);
   * ```
   */
  kernel(domain = 0): KernelInfo | undefined {
    const guest = this.#guests.get(domain);
    if (guest === undefined) return undefined;
    return Object.freeze({
      domain,
      abi: guest.eventAbi,
      vcpus: guest.vcpus,
      nrChannels: guest.nrChannels,
    });
  }

  #domain(op: string, domain: number): Domain {
    const d = Number.isInteger(domain)
      ? this.hypervisor.domain(domain)
      : undefined;
    if (d === undefined) {
      throw new EventChannelError(op, "ESRCH", {
        argument: "domain",
        value: domain,
        detail: "no such domain",
      });
    }
    return d;
  }

  /**
   * Opens `/dev/xen/evtchn` in a domain running Linux.
   *
   * @param domain The domain id (default dom0).
   * @returns A handle.
   * @throws {EventChannelError} `ENOENT` when the domain runs no Linux.
   */
  open(domain = 0): EventChannelHandle {
    return new EventChannelHandle(this.openDevice(domain));
  }

  /**
   * Opens `/dev/xen/evtchn` in a domain running Linux as the bare device
   * model, for a program that speaks the device's own interface rather
   * than a handle's (`evtchn serve` relays each client's ioctls, reads and
   * writes to one). Lint mode and fault injection observe it exactly as
   * they observe a handle's device.
   *
   * @param domain The domain id (default dom0).
   * @returns The device.
   * @throws {EventChannelError} `ENOENT` when the domain runs no Linux.
   *
   * @example
   * ```ts
   * import { MemoryXen } from "./mod.ts";
   * import assert from "node:assert/strict";
   * const xen = new MemoryXen({ lint: true });
   * const device = xen.openDevice(0);
   * const port = device.bindUnboundPort(0);
   * device.close(); // the port is still bound: lint notices
   * assert.deepEqual(xen.findings().map((f) => [f.code, f.port]), [
   *   ["leaked-port", port],
   * ]);
   * ```
   */
  openDevice(domain = 0): MemoryEvtchnDevice {
    const guest = this.#guests.get(domain);
    if (guest === undefined) {
      throw new EventChannelError("open", "ENOENT", {
        argument: "domain",
        value: domain,
        detail: "no Linux guest with /dev/xen/evtchn in that domain",
      });
    }
    const lint = this.#lint;
    return lint === undefined
      ? new MemoryEvtchnDevice(guest)
      : new ObservedDevice(guest, lint, this.#faults);
  }

  /**
   * A snapshot of a domain running Linux, as `snapshotHost()` takes one on
   * a real host: every port's status up to the storage edge, the event ABI,
   * the kernel's channel limit and the vCPUs. A model booted from a
   * snapshot gives that snapshot back.
   *
   * @param domain The domain (default dom0).
   * @returns The snapshot.
   * @throws {EventChannelError} `ENOENT` when the domain runs no Linux.
   *
   * @example The same host, twice
   * ```ts
   * import { MemoryXen } from "./mod.ts";
   * import assert from "node:assert/strict";
   * const host = new MemoryXen({ eventAbi: "2l" }).snapshot();
   * assert.deepEqual(new MemoryXen({ host }).snapshot(), host);
   * ```
   */
  snapshot(domain = 0): HostSnapshot {
    const guest = this.#guests.get(domain);
    if (guest === undefined) {
      throw new EventChannelError("snapshot", "ENOENT", {
        argument: "domain",
        value: domain,
        detail: "no Linux guest in that domain",
      });
    }
    const d = this.hypervisor.domain(domain)!;
    const ports: HostPort[] = [];
    for (let port = 1; port < d.validEvtchns; port++) {
      const status = this.hypervisor.status(domain, domain, port);
      if (status.status !== "closed") ports.push({ port, ...status });
    }
    return {
      format: HOST_SNAPSHOT_FORMAT,
      version: HOST_SNAPSHOT_VERSION,
      xen: "4.17 (model)",
      kernel: "6.1 (model)",
      domain,
      abi: guest.eventAbi,
      vcpus: d.vcpus,
      nrChannels: guest.nrChannels,
      validPorts: d.validEvtchns,
      ports,
    };
  }

  /**
   * Lint mode's findings (empty unless the host was made with `lint`), in
   * the order found. With `final: true`, handles never closed are reported
   * too (`unclosed-handle`): ask so at the end of the program.
   *
   * @param options `final`: the program has ended.
   * @returns The findings; print them with `formatFindings`.
   *
   * @example A notify before the peer has bound
   * ```ts
   * import { formatFindings, MemoryXen } from "./mod.ts";
   * import assert from "node:assert/strict";
   * const xen = new MemoryXen({ lint: true });
   * xen.createDomain({ domain: 1 });
   * using dom0 = xen.open(0);
   * const offered = dom0.bindUnboundPort(1);
   * dom0.notify(offered); // domU 1 has not bound yet: Xen drops it
   * const [finding] = xen.findings();
   * assert.equal(finding.code, "notify-unbound-peer");
   * assert.equal(finding.port, offered);
   * assert.equal(finding.step, 3); // open, bind, notify
   * assert.match(formatFindings([finding]), /notify-unbound-peer/);
   * assert.equal(xen.findings({ final: true }).at(-1)?.code, "unclosed-handle");
   * ```
   */
  findings(options: { final?: boolean } = {}): Finding[] {
    return this.#lint?.findings(options) ?? [];
  }

  /**
   * The faults injected so far (empty unless the host was made with
   * `faults`), in order: the same plan and seed give the same list.
   *
   * @returns A copy.
   */
  injectedFaults(): InjectedFault[] {
    return this.#faults?.log() ?? [];
  }

  /**
   * The dom0-level hypercalls, issued as `caller`.
   *
   * @param caller The calling domain (default dom0).
   * @returns The hypercalls.
   */
  hypercalls(caller = 0): Dom0Hypercalls {
    const xen = this.hypervisor;
    const lint = this.#lint;
    if (lint !== undefined) {
      return {
        status: (domain, port) => {
          lint.op();
          return xen.status(caller, domain, port);
        },
        allocUnbound: (domain, remote) => {
          lint.op();
          const port = xen.allocUnbound(caller, domain, remote);
          lint.allocated(
            undefined,
            domain === DOMID_SELF ? caller : domain,
            port,
          );
          return port;
        },
        reset: (domain) => {
          lint.op();
          refuseControlDomainReset(caller, domain);
          xen.reset(caller, domain);
        },
      };
    }
    return {
      status: (domain, port) => xen.status(caller, domain, port),
      allocUnbound: (domain, remote) =>
        xen.allocUnbound(caller, domain, remote),
      reset: (domain) => {
        refuseControlDomainReset(caller, domain);
        xen.reset(caller, domain);
      },
    };
  }
}
