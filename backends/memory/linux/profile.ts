/**
 * The modelled Linux 6.1 kernel's profile: everything the model knows about
 * what the kernel itself holds and decides, in one place. Boot ports (per
 * vCPU and global, with their vCPUs), `xen_evtchn_nr_channels()` per event
 * ABI, the placement rule for new ports (`select_target_cpu` in
 * `drivers/xen/events/events_base.c`), which ports the kernel counts in
 * `channels_on_cpu`, and the `/dev/xen/evtchn` ring sizing
 * (`drivers/xen/evtchn.c`). `LinuxGuest`, the device model, the oracle's
 * generator and the host snapshot all read it from here.
 *
 * A profile is either the default one, which reproduces the project's
 * reference dom0 (Debian 6.1 on Xen 4.17 under QEMU, no extra devices), or
 * one built from a {@linkcode HostSnapshot} of a real host.
 *
 * @module
 */

import type { HostPort, HostSnapshot } from "../../../host.ts";
import { EVTCHN_FIFO_EVENT_WORDS_PER_PAGE } from "../../../xen/event_channel.ts";
import { isGlobalVirq, VIRQ } from "../../../xen/virq.ts";

/** The kernel's event ABI: FIFO, or 2-level (`xen.fifo_events=0`). */
export type KernelEventAbi = "fifo" | "2l";

/**
 * `/dev/xen/evtchn` ring sizing (evtchn.c `evtchn_resize_ring`): empty
 * until the first bind, then 64 entries, doubling whenever the fd holds
 * more ports than entries, up to 2^17.
 */
export const EVTCHN_RING = { FIRST: 64, MAX: 1 << 17 } as const;

/**
 * What the modelled kernel holds at boot and how big its event array is.
 *
 * @example
 * ```ts
 * import { defaultProfile } from "./profile.ts";
 * import assert from "node:assert/strict";
 * const profile = defaultProfile({ eventAbi: "fifo", vcpus: 2, dom0: true });
 * assert.equal(profile.ports[0].port, 1);
 * ```
 */
export interface KernelProfile {
  /** Where it came from: the default rules, or a host snapshot. */
  source: "default" | "snapshot";
  /** The kernel's event ABI. */
  eventAbi: KernelEventAbi;
  /** Online vCPUs. */
  vcpus: number;
  /**
   * The kernel's own ports at boot, ascending, with their states and vCPUs.
   * Each has an IRQ and is counted in `channels_on_cpu` on its vCPU
   * (xenstore's unbound port too: xenbus binds its IRQ at init).
   */
  ports: readonly HostPort[];
  /**
   * FIFO event-array pages set up at boot (a real dom0's grows with its
   * history; the model also grows it as ports are bound).
   */
  eventArrayPages: number;
  /** Xen's port storage edge at boot (`valid_evtchns`), at least 64. */
  validPorts: number;
}

/**
 * Options for {@linkcode defaultProfile}.
 *
 * @example A one-vCPU domU under 2-level: the per-vCPU ports only
 * ```ts
 * import { defaultProfile, type DefaultProfileOptions } from "./profile.ts";
 * import assert from "node:assert/strict";
 *
 * const options: DefaultProfileOptions = {
 *   eventAbi: "2l",
 *   vcpus: 1,
 *   dom0: false,
 * };
 * const profile = defaultProfile(options);
 * // VIRQ_TIMER, two IPIs, VIRQ_DEBUG (2-level only), two more IPIs.
 * assert.deepEqual(
 *   profile.ports.map((p) => p.status),
 *   ["virq", "ipi", "ipi", "virq", "ipi", "ipi"],
 * );
 * assert.equal(profile.eventAbi, "2l");
 * assert.equal(profile.validPorts, 64);
 * ```
 */
export interface DefaultProfileOptions {
  /** The event ABI. */
  eventAbi: KernelEventAbi;
  /** Online vCPUs. */
  vcpus: number;
  /** Whether the kernel is the control domain's (binds the dom0 extras). */
  dom0: boolean;
}

/**
 * PIRQs the reference dom0 binds for its devices, in binding order: the
 * ACPI SCI (9), then the legacy ISA lines 12, 1 and 8 (PS/2 mouse and
 * keyboard, RTC).
 */
const REFERENCE_DOM0_GSI_PIRQS = [9, 12, 1, 8] as const;
/** MSI PIRQs the reference dom0 binds (QEMU's q35 devices). */
const REFERENCE_DOM0_MSI_PIRQS = 4;
/**
 * Xen hands MSI PIRQs out from the top of dom0's PIRQ space down
 * (`get_free_pirq`); on the reference host that space is 208 per vCPU
 * (the first MSI PIRQ seen is 207 with one vCPU, 415 with two).
 */
const REFERENCE_DOM0_PIRQS_PER_VCPU = 208;

/**
 * dom0's PIRQ space (`nr_pirqs`) in the default profile.
 *
 * @param vcpus dom0's vCPUs.
 * @returns The number of PIRQs.
 *
 * @example
 * ```ts
 * import { defaultDom0Pirqs } from "./profile.ts";
 * import assert from "node:assert/strict";
 * assert.equal(defaultDom0Pirqs(2), 416);
 * ```
 */
export function defaultDom0Pirqs(vcpus: number): number {
  return REFERENCE_DOM0_PIRQS_PER_VCPU * vcpus;
}

/**
 * The default kernel profile: the reference dom0's, as snapshotted on the
 * project's VM (Debian 6.1.0-57 on Xen 4.17.7 under QEMU q35, one and two
 * vCPUs, both ABIs, no extra devices), or a plain domU's.
 *
 * Per vCPU, in vCPU order: VIRQ_TIMER, then the IPIs (reschedule, call
 * function, VIRQ_DEBUG here under 2-level only, call function single, IRQ
 * work, and with more than one vCPU the spinlock kick, which the boot CPU
 * binds before VIRQ_DEBUG), each counted on its own CPU. In dom0 then, in binding order: xenstore's port (unbound,
 * with its IRQ), VIRQ_PCPU_STATE, the ACPI SCI's PIRQ, VIRQ_MCA,
 * VIRQ_CONSOLE (which stays on CPU 0: the console's IRQ is never
 * rebalanced), the legacy PIRQs and the MSI PIRQs from the top of the PIRQ
 * space down; all but the console placed by {@linkcode selectTargetCpu} as
 * they were bound. With two vCPUs this leaves both CPUs 12 channels each
 * (13 under 2-level), so the first user port goes to vCPU 1.
 *
 * @param options ABI, vCPUs and whether it is dom0.
 * @returns The profile.
 *
 * @example The reference dom0's first free port
 * ```ts
 * import { defaultProfile } from "./profile.ts";
 * import assert from "node:assert/strict";
 * const fifo = defaultProfile({ eventAbi: "fifo", vcpus: 2, dom0: true });
 * assert.equal(fifo.ports.at(-1)!.port, 24); // first user port 25
 * const twoLevel = defaultProfile({ eventAbi: "2l", vcpus: 2, dom0: true });
 * assert.equal(twoLevel.ports.at(-1)!.port, 26); // first user port 27
 * ```
 */
export function defaultProfile(options: DefaultProfileOptions): KernelProfile {
  const { eventAbi, vcpus } = options;
  const ports: HostPort[] = [];
  const counts = new Uint32Array(vcpus);
  let next = 1;
  const add = (port: HostPort): void => {
    ports.push(port);
    counts[port.vcpu]++;
  };
  for (let vcpu = 0; vcpu < vcpus; vcpu++) {
    // The spinlock kick exists only with more than one vCPU; the boot CPU
    // binds it before VIRQ_DEBUG, the others after their other IPIs.
    const kick = vcpus > 1 ? 1 : 0;
    const early = 2 + (vcpu === 0 ? kick : 0),
      late = 2 + (vcpu === 0 ? 0 : kick);
    add({ port: next++, status: "virq", virq: VIRQ.TIMER, vcpu });
    for (let i = 0; i < early; i++) add({ port: next++, status: "ipi", vcpu });
    if (eventAbi === "2l") {
      add({ port: next++, status: "virq", virq: VIRQ.DEBUG, vcpu });
    }
    for (let i = 0; i < late; i++) add({ port: next++, status: "ipi", vcpu });
  }
  if (options.dom0) {
    // Counted on CPU 0 at IRQ setup, then moved to the emptiest CPU.
    const place = (): number => {
      counts[0]++;
      const cpu = selectTargetCpu(counts, vcpus);
      counts[0]--;
      return cpu;
    };
    add({ port: next++, status: "unbound", remoteDomain: 0, vcpu: place() });
    add({ port: next++, status: "virq", virq: VIRQ.PCPU_STATE, vcpu: place() });
    const [sci, ...legacy] = REFERENCE_DOM0_GSI_PIRQS;
    add({ port: next++, status: "pirq", pirq: sci, vcpu: place() });
    add({ port: next++, status: "virq", virq: VIRQ.MCA, vcpu: place() });
    add({ port: next++, status: "virq", virq: VIRQ.CONSOLE, vcpu: 0 });
    for (const pirq of legacy) {
      add({ port: next++, status: "pirq", pirq, vcpu: place() });
    }
    const top = defaultDom0Pirqs(vcpus) - 1;
    for (let i = 0; i < REFERENCE_DOM0_MSI_PIRQS; i++) {
      add({ port: next++, status: "pirq", pirq: top - i, vcpu: place() });
    }
  }
  return {
    source: "default",
    eventAbi,
    vcpus,
    ports,
    eventArrayPages: 1,
    validPorts: storageFor(next - 1),
  };
}

/**
 * The profile of a snapshotted host: its ports as they were, its event
 * array's size and its port storage.
 *
 * @param snapshot A checked snapshot (`parseHostSnapshot`).
 * @returns The profile.
 *
 * @example
 * ```ts
 * import { profileFromSnapshot } from "./profile.ts";
 * import assert from "node:assert/strict";
 * const profile = profileFromSnapshot({
 *   format: "evtchn-host",
 *   version: 1,
 *   xen: "4.17.7",
 *   kernel: "6.1.0-57-amd64",
 *   domain: 0,
 *   abi: "fifo",
 *   vcpus: 1,
 *   nrChannels: 2048,
 *   validPorts: 128,
 *   ports: [{ port: 1, status: "virq", virq: 0, vcpu: 0 }],
 * });
 * assert.equal(profile.eventArrayPages, 2);
 * ```
 */
export function profileFromSnapshot(snapshot: HostSnapshot): KernelProfile {
  return {
    source: "snapshot",
    eventAbi: snapshot.abi,
    vcpus: snapshot.vcpus,
    ports: snapshot.ports,
    eventArrayPages: snapshot.abi === "fifo"
      ? snapshot.nrChannels / EVTCHN_FIFO_EVENT_WORDS_PER_PAGE
      : 1,
    validPorts: Math.max(snapshot.validPorts, storageFor(0)),
  };
}

/**
 * `select_target_cpu` (events_base.c): the online CPU with the fewest
 * channels, the lowest on a tie. Linux counts a new port on CPU 0 before it
 * asks (`bind_evtchn_to_cpu(evtchn, 0, false)` at IRQ setup), so callers
 * pass counts that include it.
 *
 * @param counts `channels_on_cpu`, one per vCPU.
 * @param online Online CPUs (the first `online` entries).
 * @returns The CPU.
 *
 * @example
 * ```ts
 * import { selectTargetCpu } from "./profile.ts";
 * import assert from "node:assert/strict";
 * assert.equal(selectTargetCpu(new Uint32Array([8, 7]), 2), 1);
 * assert.equal(selectTargetCpu(new Uint32Array([8, 8]), 2), 0);
 * ```
 */
export function selectTargetCpu(counts: Uint32Array, online: number): number {
  let best = 0;
  for (let cpu = 1; cpu < online; cpu++) {
    if (counts[cpu] < counts[best]) best = cpu;
  }
  return best;
}

/**
 * Whether Xen lets the kernel move a port of this state to another vCPU
 * (`EVTCHNOP_bind_vcpu`): not IPIs, not per-vCPU VIRQs (TIMER, DEBUG,
 * XENOPROF, XENPMU). Such ports stay counted where they were bound.
 *
 * @param port A port's state.
 * @returns Whether `bind_vcpu` accepts it.
 *
 * @example
 * ```ts
 * import { movable } from "./profile.ts";
 * import assert from "node:assert/strict";
 * assert.equal(movable({ status: "virq", virq: 1 }), false); // VIRQ_DEBUG
 * assert.equal(movable({ status: "virq", virq: 3 }), true); // VIRQ_DOM_EXC
 * ```
 */
export function movable(
  port: { status: string; virq?: number },
): boolean {
  if (port.status === "ipi") return false;
  if (port.status === "virq") return isGlobalVirq(port.virq!);
  return true;
}

/** Xen's storage after allocating up to `port`: whole buckets of 64. */
function storageFor(port: number): number {
  return (Math.floor(port / 64) + 1) * 64;
}
