/**
 * Built-in scenarios: step lists (without outcomes) that exercise one
 * behaviour each, written so that they replay on any host: ports relative
 * to the trace's first, the peer as `{"dom":"peer"}`, settle delays before
 * reads, and reads whose count is timing marked as such. Recorded on real
 * Xen, they become the fixtures the model is checked against.
 *
 * @module
 */

import { DOMID_SELF } from "../mod.ts";
import type { DomainRef, JsonValue, PortRef, StepInput } from "./trace.ts";

/**
 * A built-in scenario.
 *
 * @example
 * ```ts
 * import { type Scenario, SCENARIOS } from "./scenarios.ts";
 * import assert from "node:assert/strict";
 * const loopback: Scenario | undefined = SCENARIOS.find((s) => s.name === "loopback");
 * assert.ok(loopback !== undefined && loopback.steps.length > 0);
 * ```
 */
export interface Scenario {
  /** Its name, for `oracle record NAME`. */
  name: string;
  /** What it shows, in one line. */
  description: string;
  /** The steps. */
  steps: StepInput[];
}

const L: DomainRef = { dom: "local" };
const P: DomainRef = { dom: "peer" };
const SELF: DomainRef = { abs: DOMID_SELF };
const rel = (k: number): PortRef => ({ rel: k });
const abs = (n: number): PortRef => ({ abs: n });

type Extra = { note?: string; ignore?: string[] };

function step(
  handle: string | undefined,
  op: StepInput["op"],
  args: Record<string, JsonValue>,
  extra: Extra & { timing?: StepInput["timing"] } = {},
): StepInput {
  const s: StepInput = { op, args };
  if (handle !== undefined) s.handle = handle;
  if (extra.timing !== undefined) s.timing = extra.timing;
  if (extra.ignore !== undefined) s.ignore = extra.ignore;
  if (extra.note !== undefined) s.note = extra.note;
  return s;
}

const open = (h: string) => step(h, "open", {});
const close = (h: string, x?: Extra) => step(h, "close", {}, x);
const bindUnbound = (h: string, remote: DomainRef, x?: Extra) =>
  step(h, "bind_unbound_port", { remote_domain: remote }, x);
const bindInter = (h: string, remote: DomainRef, port: PortRef, x?: Extra) =>
  step(h, "bind_interdomain", { remote_domain: remote, remote_port: port }, x);
const bindVirq = (h: string, virq: number, x?: Extra) =>
  step(h, "bind_virq", { virq }, x);
const unbind = (h: string, port: PortRef, x?: Extra) =>
  step(h, "unbind", { port }, x);
const notify = (h: string, port: PortRef, x?: Extra) =>
  step(h, "notify", { port }, x);
const unmask = (h: string, port: PortRef, x?: Extra) =>
  step(h, "unmask", { port }, x);
const reset = (h: string, x?: Extra) => step(h, "reset", {}, x);
const restrict = (h: string, domid: DomainRef, x?: Extra) =>
  step(h, "restrict_domid", { domid }, x);
const read = (
  h: string,
  x: Extra & { timing?: StepInput["timing"] } = {},
) => step(h, "read", {}, x);
const settle = (ms: number, x?: Extra) => step(undefined, "settle", { ms }, x);
const status = (domain: DomainRef, port: PortRef, x?: Extra) =>
  step(undefined, "hc.status", { domain, port }, x);
const alloc = (domain: DomainRef, remote: DomainRef, x?: Extra) =>
  step(undefined, "hc.alloc_unbound", { domain, remote_domain: remote }, x);
const hcReset = (domain: DomainRef, x?: Extra) =>
  step(undefined, "hc.reset", { domain }, x);
/**
 * `hc.status` of a VIRQ port a handle bound. Linux counts it on CPU 0, then
 * moves a global VIRQ to the CPU with the fewest channels (a per-vCPU one
 * stays): `vcpu` depends on every channel the host's kernel holds, which
 * the model reproduces from the recording host's snapshot, so it is
 * compared like every other field.
 */
const virqStatus = (domain: DomainRef, port: PortRef, note?: string) =>
  status(domain, port, note === undefined ? undefined : { note });

/** h0 offers rel 0 to the local domain, h1 connects as rel 1. */
const loopbackPair = (): StepInput[] => [
  open("h0"),
  open("h1"),
  bindUnbound("h0", L),
  bindInter("h1", L, rel(0)),
];

const allocation: Scenario = {
  name: "allocation",
  description:
    "lowest-free port allocation and reuse, unvalidated remote domains, DOMID_SELF, hc.alloc_unbound in dom0 and the peer",
  steps: [
    open("h0"),
    bindUnbound("h0", L, { note: "the trace's first port: rel 0" }),
    bindUnbound("h0", P),
    bindUnbound("h0", { abs: 999 }, {
      note: "Xen does not validate the remote domain",
    }),
    bindUnbound("h0", SELF, {
      note: "remote DOMID_SELF is stored as the caller's id",
    }),
    status(L, rel(0), { note: "6.1 moves new ports to the next vCPU" }),
    status(L, rel(1)),
    status(L, rel(2)),
    status(L, rel(3)),
    unbind("h0", rel(1)),
    status(L, rel(1), { note: "freed: closed, vCPU 0" }),
    bindUnbound("h0", L, { note: "the lowest free port is reused at once" }),
    alloc(L, L, { note: "a dom0 port no handle owns" }),
    status(L, rel(4)),
    alloc(P, L, { note: "the peer's first port" }),
    alloc(P, SELF, { note: "remote DOMID_SELF means the caller (dom0)" }),
    status(P, rel(1)),
    alloc(P, { abs: 999 }),
    status(P, rel(2)),
    alloc({ abs: 999 }, L, { note: "no such domain" }),
    close("h0", { note: "closes every port h0 bound" }),
    status(L, rel(0)),
    status(L, rel(4), { note: "hc.alloc_unbound's port survives the close" }),
  ],
};

const loopback: Scenario = {
  name: "loopback",
  description:
    "a dom0 loopback channel both ways, unbind and rebind of one end, DOMID_SELF loopback, close",
  steps: [
    ...loopbackPair(),
    status(L, rel(0)),
    status(L, rel(1)),
    read("h1", { note: "pending at bind" }),
    unmask("h1", rel(1)),
    notify("h0", rel(0)),
    read("h1"),
    unmask("h1", rel(1)),
    notify("h1", rel(1)),
    read("h0"),
    unmask("h0", rel(0)),
    read("h0"),
    read("h1"),
    unbind("h1", rel(1)),
    status(L, rel(0), { note: "the other end is unbound again" }),
    notify("h0", rel(0), { note: "sent on an unbound port: dropped" }),
    read("h0"),
    bindInter("h1", L, rel(0)),
    read("h1"),
    unmask("h1", rel(1)),
    notify("h0", rel(0)),
    read("h1"),
    unmask("h1", rel(1)),
    bindUnbound("h0", L),
    bindInter("h1", SELF, rel(2), { note: "DOMID_SELF: loopback" }),
    status(L, rel(3)),
    read("h1"),
    unmask("h1", rel(3)),
    close("h0"),
    status(L, rel(1), { note: "h0's close left h1's end unbound" }),
    notify("h1", rel(1)),
    read("h1"),
    close("h1"),
  ],
};

const pendingAfterBind: Scenario = {
  name: "pending-after-bind",
  description:
    "bind_interdomain marks the new port pending once (sends while unbound are dropped); stale ring entries of unbound ports",
  steps: [
    open("h0"),
    open("h1"),
    bindUnbound("h0", L),
    notify("h0", rel(0), { note: "unbound: dropped" }),
    notify("h0", rel(0)),
    read("h1"),
    bindInter("h1", L, rel(0)),
    read("h1", { note: "exactly one entry, nobody notified" }),
    read("h1"),
    read("h0"),
    notify("h1", rel(1)),
    read("h0"),
    unmask("h0", rel(0)),
    unmask("h1", rel(1)),
    read("h1", { note: "nothing pending after unmask" }),
    bindUnbound("h0", L),
    bindInter("h1", L, rel(2)),
    settle(50),
    unbind("h1", rel(3)),
    read("h1", { note: "the unbound port's entry stays in the ring" }),
    status(L, rel(3)),
    status(L, rel(2)),
    close("h0"),
    close("h1"),
  ],
};

const coalescing: Scenario = {
  name: "coalescing",
  description:
    "sends to a masked port coalesce into one delivery on unmask; a burst on an unmasked port (timing-dependent count)",
  steps: [
    ...loopbackPair(),
    read("h1", { note: "pending at bind; rel 1 is now masked" }),
    notify("h0", rel(0)),
    notify("h0", rel(0)),
    notify("h0", rel(0)),
    read("h1", { note: "masked: the sends only set pending" }),
    unmask("h1", rel(1)),
    read("h1", { note: "one entry for three sends" }),
    read("h1"),
    unmask("h1", rel(1)),
    read("h1", { note: "nothing left pending" }),
    unmask("h1", rel(1), { note: "unmasking an enabled port does nothing" }),
    read("h1"),
    notify("h0", rel(0)),
    notify("h0", rel(0)),
    notify("h0", rel(0)),
    notify("h0", rel(0)),
    notify("h0", rel(0)),
    read("h1", {
      timing: "coalesce",
      note: "a burst on an unmasked port: how many merge depends on timing",
    }),
    unmask("h1", rel(1)),
    read("h1", {
      timing: "drain",
      note: "a late send may or may not be delivered again",
    }),
    unmask("h1", rel(1)),
    read("h1"),
    notify("h0", rel(0)),
    read("h1", { note: "one send, one entry" }),
    unmask("h1", rel(1)),
    close("h0"),
    close("h1"),
  ],
};

function overflowSteps(): StepInput[] {
  const steps: StepInput[] = [open("h0"), open("h1")];
  for (let i = 0; i < 64; i++) {
    steps.push(bindUnbound("h0", L));
    steps.push(bindInter("h1", L, rel(2 * i)));
  }
  steps.push(settle(50, {
    note: "h1: 64 ports, a 64-entry ring holding 64 pending-at-bind entries",
  }));
  for (let i = 0; i < 64; i++) steps.push(unmask("h1", rel(2 * i + 1)));
  steps.push(
    notify("h0", rel(0), {
      note: "unmasked before reading: the 65th entry overflows the ring",
    }),
    read("h1", { note: "EFBIG" }),
    read("h1", { note: "sticky until reset" }),
    reset("h1"),
    read("h1", { note: "reset emptied the ring" }),
    notify("h0", rel(0)),
    read("h1", { note: "the lost event left rel 1 masked" }),
    unmask("h1", rel(1)),
    read("h1", { note: "the send while masked is delivered on unmask" }),
    unmask("h1", rel(1)),
    read("h0"),
    close("h0"),
    close("h1"),
  );
  return steps;
}

const overflow: Scenario = {
  name: "overflow",
  description:
    "ring overflow (EFBIG until reset) with 64 ports whose entries are unmasked before being read; reset keeps ports masked",
  steps: overflowSteps(),
};

const restriction: Scenario = {
  name: "restrict",
  description:
    "IOCTL_EVTCHN_RESTRICT_DOMID: bad domids, one-way, forbids unbound and VIRQ binds and other domains, keeps earlier ports",
  steps: [
    open("h0"),
    restrict("h0", { abs: 0 }, { note: "dom0 cannot be chosen" }),
    restrict("h0", SELF, { note: "reserved ids are refused" }),
    restrict("h0", { abs: 0xffff }),
    open("h1"),
    bindUnbound("h1", L),
    restrict("h1", P),
    restrict("h1", P, { note: "one-way" }),
    restrict("h1", { abs: 999 }),
    bindUnbound("h1", P, { note: "restricted handles cannot offer ports" }),
    bindVirq("h1", 6),
    notify("h1", rel(0), { note: "ports bound before stay usable" }),
    alloc(L, L),
    bindInter("h1", L, rel(1), { note: "not the restricted domain" }),
    alloc(P, L),
    bindInter("h1", P, rel(0)),
    read("h1"),
    status(P, rel(0)),
    unmask("h1", rel(2)),
    unbind("h1", rel(0)),
    restrict("h0", { abs: 999 }, {
      note: "earlier refusals did not restrict h0",
    }),
    alloc(P, L),
    bindInter("h0", P, rel(1)),
    bindUnbound("h0", L),
    close("h0"),
    close("h1"),
  ],
};

const ownership: Scenario = {
  name: "ownership",
  description:
    "ports belong to the handle that bound them: notify/unbind from another handle give ENOTCONN, its unmask is ignored",
  steps: [
    ...loopbackPair(),
    notify("h0", rel(1)),
    unbind("h0", rel(1)),
    unmask("h0", rel(1), { note: "ignored, and write() still succeeds" }),
    read("h1"),
    unmask("h0", rel(1), { note: "ignored: rel 1 stays masked" }),
    notify("h0", rel(0)),
    read("h1", { note: "nothing: still masked" }),
    unmask("h1", rel(1)),
    read("h1", { note: "the owner's unmask delivers it" }),
    unmask("h1", rel(1)),
    notify("h1", rel(0)),
    unbind("h1", rel(0)),
    open("h2"),
    notify("h2", rel(0)),
    unbind("h2", rel(1)),
    close("h2"),
    close("h0", { note: "closes rel 0; rel 1 becomes unbound" }),
    status(L, rel(0)),
    status(L, rel(1)),
    notify("h1", rel(1)),
    notify("h0", rel(0), { note: "a closed handle: EBADF" }),
    close("h1"),
  ],
};

const statuses: Scenario = {
  name: "status",
  description:
    "hc.status of every channel type (unbound, interdomain both ends, virq, closed, port 0) and after hc.reset of the peer",
  steps: [
    open("h0"),
    bindUnbound("h0", P),
    status(L, rel(0)),
    alloc(P, L),
    status(P, rel(0)),
    bindInter("h0", P, rel(0)),
    status(L, rel(1)),
    status(P, rel(0)),
    read("h0"),
    unmask("h0", rel(1)),
    bindVirq("h0", 6),
    virqStatus(L, rel(2)),
    virqStatus(SELF, rel(2), "DOMID_SELF is the caller"),
    unbind("h0", rel(0)),
    status(L, rel(0)),
    status(L, abs(0), { note: "port 0 is reserved: reported closed" }),
    status(P, abs(0)),
    hcReset(P, { note: "allowed: the peer is paused" }),
    status(P, rel(0)),
    status(L, rel(1), {
      note: "unbound, waiting for the domain that closed the other end",
    }),
    notify("h0", rel(1)),
    read("h0"),
    status({ abs: 999 }, abs(1)),
    hcReset({ abs: 999 }),
    close("h0"),
    status(L, rel(1)),
    status(L, rel(2)),
  ],
};

function boundsSteps(): StepInput[] {
  const steps: StepInput[] = [
    open("h0"),
    bindUnbound("h0", L),
    // Bucket edges are probed in the peer: it is fresh, so its storage is
    // exactly what this trace allocated. dom0's only grows over a boot (the
    // kernel and every earlier program), so its edges are history.
    alloc(P, L, { note: "the peer's first port (1)" }),
    status(P, { bucketEnd: -1 }, {
      note: "inside the first bucket: never allocated, closed",
    }),
    status(P, { bucketEnd: 0 }, { note: "the first port without storage" }),
    status(P, abs(63)),
    status(P, abs(64)),
  ];
  for (let i = 1; i <= 63; i++) {
    steps.push(alloc(P, L, i === 63 ? { note: "port 64: a new bucket" } : {}));
  }
  steps.push(
    status(P, rel(63)),
    status(P, { bucketEnd: -1 }),
    status(P, { bucketEnd: 0 }),
    hcReset(P, { note: "frees every port of the peer" }),
    status(P, rel(63), { note: "storage never shrinks: closed, not EINVAL" }),
    status(P, { bucketEnd: 0 }),
    unbind("h0", abs(70000), { note: "beyond xen_evtchn_nr_channels()" }),
    unbind("h0", abs(4096)),
    unbind("h0", abs(0xffff_ffff)),
    notify("h0", abs(70000), { note: "notify has no range check" }),
    notify("h0", abs(4096)),
    unmask("h0", abs(70000), { note: "write() ignores what it does not own" }),
    status(L, abs(70000)),
    unbind("h0", abs(0)),
    notify("h0", abs(0)),
    status(L, abs(0)),
    notify("h0", rel(1), { note: "never allocated" }),
    unbind("h0", rel(1)),
    bindInter("h0", L, abs(0)),
    bindInter("h0", L, abs(70000)),
    bindInter("h0", { abs: 999 }, abs(1)),
    close("h0"),
  );
  return steps;
}

const bounds: Scenario = {
  name: "bounds",
  description:
    "ports beyond the bucketed storage (status EINVAL, storage growing by 64 and never shrinking) and beyond the device's limit (unbind EINVAL, notify ENOTCONN)",
  steps: boundsSteps(),
};

const virqs: Scenario = {
  name: "virq",
  description:
    "bind_virq from the device: TIMER and kernel-held VIRQs give EEXIST, a free global VIRQ binds once per domain, VIRQs >= 24",
  steps: [
    open("h0"),
    open("h1"),
    bindVirq("h0", 0, {
      note: "TIMER: the kernel holds it on every vCPU; the device binds vCPU 0",
    }),
    bindVirq("h0", 2, { note: "CONSOLE: dom0's kernel holds it" }),
    bindVirq("h0", 9, { note: "PCPU_STATE: dom0's kernel holds it" }),
    bindVirq("h0", 6, { note: "DEBUGGER: a free global VIRQ" }),
    virqStatus(L, rel(0)),
    bindVirq("h0", 6),
    bindVirq("h1", 6, { note: "one binding per domain, whatever the handle" }),
    notify("h0", rel(0), {
      note: "Xen refuses a send on a VIRQ; the device hides it",
    }),
    read("h0"),
    unbind("h0", rel(0)),
    status(L, rel(0)),
    bindVirq("h1", 6, { note: "free again once unbound" }),
    bindVirq("h1", 24),
    bindVirq("h1", 0x8000_0000),
    bindVirq("h1", 0xffff_ffff),
    bindVirq("h1", 12, { note: "ENOMEM: another free global VIRQ" }),
    virqStatus(L, rel(1)),
    close("h1"),
    bindVirq("h0", 6, { note: "h1's close freed it" }),
    // Last, so that a different answer on a real host shifts no port above.
    bindVirq("h0", 16, {
      note: "MCA: the model's dom0 kernel holds it (xen-mcelog)",
    }),
    bindVirq("h0", 1, {
      note: "DEBUG: free under FIFO; a 2-level dom0 kernel binds it itself",
    }),
    close("h0"),
  ],
};

/**
 * Every built-in scenario, by name: `allocation`, `loopback`,
 * `pending-after-bind`, `coalescing`, `overflow`, `restrict`, `ownership`,
 * `status`, `bounds`, `virq`.
 *
 * @example
 * ```ts
 * import { SCENARIOS } from "./scenarios.ts";
 * import assert from "node:assert/strict";
 * assert.ok(SCENARIOS.some((s) => s.name === "overflow"));
 * ```
 */
export const SCENARIOS: readonly Scenario[] = [
  allocation,
  loopback,
  pendingAfterBind,
  coalescing,
  overflow,
  restriction,
  ownership,
  statuses,
  bounds,
  virqs,
];

/**
 * A built-in scenario by name.
 *
 * @param name The name.
 * @returns The scenario, or `undefined`.
 *
 * @example
 * ```ts
 * import { scenario } from "./scenarios.ts";
 * import assert from "node:assert/strict";
 * assert.equal(scenario("loopback")?.name, "loopback");
 * assert.equal(scenario("nope"), undefined);
 * ```
 */
export function scenario(name: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.name === name);
}
