/**
 * A host snapshot: what one domain's Linux kernel holds in Xen's event
 * channels at one moment (every port's `EVTCHNOP_status`, the event ABI,
 * the kernel's channel limit, the vCPUs), with the versions it came from.
 * `evtchn snapshot` takes one on a real dom0 (`snapshotHost()` in the
 * `linux` backend); `new MemoryXen({ host })` boots a model whose dom0
 * holds the same ports, in the same states, on the same vCPUs, so that port
 * numbers and vCPU choices agree with that host from the first bind.
 *
 * @module
 */

import { EventChannelError } from "./errors.ts";
import type { ChannelStatus } from "./hypercalls.ts";
import { EVTCHN_FIFO_NR_CHANNELS, EVTCHNSTAT } from "./xen/event_channel.ts";
import { DOMID_MAX } from "./xen/domid.ts";
import { NR_VIRQS } from "./xen/virq.ts";

/** The `format` field of every snapshot. */
export const HOST_SNAPSHOT_FORMAT = "evtchn-host";
/** The snapshot format's version; a reader refuses any other. */
export const HOST_SNAPSHOT_VERSION = 1;
/**
 * The most vCPUs a snapshot may describe: Linux's `channels_on_cpu` and the
 * model keep one count per vCPU, and Xen 4.17 x86 caps a PV guest at 8192
 * (`HVM_MAX_VCPUS` is 128; PV dom0s with more are not seen).
 */
export const HOST_MAX_VCPUS = 8192;
/** Largest snapshot text accepted, in bytes (a full FIFO dom0 is ~10 MB). */
export const HOST_SNAPSHOT_MAX_BYTES = 16 * 1024 * 1024;

/**
 * One port the snapshotted domain holds: its number and its
 * `EVTCHNOP_status` (never `closed`: free ports are left out).
 *
 * @example
 * ```ts
 * import type { HostPort } from "./host.ts";
 * import { MemoryXen } from "./mod.ts";
 * import assert from "node:assert/strict";
 * const ports: readonly HostPort[] = new MemoryXen().snapshot().ports;
 * assert.ok(ports.some((p) => p.status === "virq"));
 * ```
 */
export type HostPort =
  & { port: number }
  & Exclude<ChannelStatus, { status: "closed" }>;

/**
 * A host snapshot (see the module documentation). Ports are listed in
 * ascending order; every port from 1 to `validPorts - 1` that is not
 * listed is free.
 *
 * @example
 * ```ts
 * import { type HostSnapshot, parseHostSnapshot } from "./host.ts";
 * import assert from "node:assert/strict";
 * const host: HostSnapshot = {
 *   format: "evtchn-host",
 *   version: 1,
 *   xen: "4.17.7",
 *   kernel: "6.1.0-57-amd64",
 *   domain: 0,
 *   abi: "fifo",
 *   vcpus: 1,
 *   nrChannels: 1024,
 *   validPorts: 64,
 *   ports: [{ port: 1, status: "virq", virq: 0, vcpu: 0 }],
 * };
 * assert.deepEqual(parseHostSnapshot(JSON.stringify(host)), host);
 * ```
 */
export interface HostSnapshot {
  /** Always {@linkcode HOST_SNAPSHOT_FORMAT}. */
  format: typeof HOST_SNAPSHOT_FORMAT;
  /** Always {@linkcode HOST_SNAPSHOT_VERSION}. */
  version: typeof HOST_SNAPSHOT_VERSION;
  /** The hypervisor's version (`XENVER_version` and extraversion). */
  xen: string;
  /** The kernel release (`uname -r`). */
  kernel: string;
  /** The domain the snapshot describes (0 for dom0). */
  domain: number;
  /** The kernel's event ABI. */
  abi: "fifo" | "2l";
  /** The domain's online vCPUs. */
  vcpus: number;
  /**
   * `xen_evtchn_nr_channels()`: 4096 under 2-level; under FIFO the event
   * array's pages × 1024, which grows with what was ever bound since boot.
   */
  nrChannels: number;
  /**
   * Xen's port storage edge (`valid_evtchns`): `EVTCHNOP_status` answers
   * every port below it and refuses the rest with `EINVAL`.
   */
  validPorts: number;
  /** Every port in use, ascending. */
  ports: HostPort[];
}

/** The states a port in use can be in: every `EVTCHNSTAT_*` but closed. */
const STATES = new Set(
  Object.keys(EVTCHNSTAT).filter((name) => name !== "closed"),
);

/**
 * Reads a snapshot written by `evtchn snapshot --json` (or
 * `JSON.stringify` of a {@linkcode HostSnapshot}), checking every field.
 * Linear in the text's size; the text is bounded by
 * {@linkcode HOST_SNAPSHOT_MAX_BYTES}.
 *
 * @param text The JSON text.
 * @returns The snapshot.
 * @throws {EventChannelError} `snapshot` with `EINVAL`, naming the field.
 *
 * @example
 * ```ts
 * import { parseHostSnapshot } from "./host.ts";
 * import { EventChannelError } from "./errors.ts";
 * import assert from "node:assert/strict";
 * assert.throws(
 *   () => parseHostSnapshot('{"format":"evtchn-host","version":2}'),
 *   (e: unknown) => e instanceof EventChannelError && e.code === "EINVAL",
 * );
 * ```
 */
export function parseHostSnapshot(text: string): HostSnapshot {
  if (text.length > HOST_SNAPSHOT_MAX_BYTES) {
    bad("text", `longer than ${HOST_SNAPSHOT_MAX_BYTES} bytes`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    bad("text", `not JSON: ${(error as Error).message}`);
  }
  return checkHostSnapshot(value);
}

/**
 * Checks that a value is a {@linkcode HostSnapshot}: the right format and
 * version, numbers in range, ports ascending, below `validPorts`, each with
 * exactly the fields its state has.
 *
 * @param value Anything.
 * @returns The same value, typed.
 * @throws {EventChannelError} `snapshot` with `EINVAL`, naming the field.
 *
 * @example
 * ```ts
 * import { checkHostSnapshot } from "./host.ts";
 * import assert from "node:assert/strict";
 * assert.throws(() => checkHostSnapshot([]), /snapshot/);
 * ```
 */
export function checkHostSnapshot(value: unknown): HostSnapshot {
  const s = record(value, "snapshot");
  if (s.format !== HOST_SNAPSHOT_FORMAT) {
    bad("format", `must be "${HOST_SNAPSHOT_FORMAT}"`);
  }
  if (s.version !== HOST_SNAPSHOT_VERSION) {
    bad("version", `must be ${HOST_SNAPSHOT_VERSION}`);
  }
  for (const key of ["xen", "kernel"]) {
    if (typeof s[key] !== "string" || (s[key] as string).length > 256) {
      bad(key, "must be a string of at most 256 characters");
    }
  }
  if (s.abi !== "fifo" && s.abi !== "2l") bad("abi", 'must be "fifo" or "2l"');
  uint(s.domain, "domain", DOMID_MAX);
  const vcpus = uint(s.vcpus, "vcpus", HOST_MAX_VCPUS);
  if (vcpus < 1) bad("vcpus", "must be at least 1");
  const nr = uint(s.nrChannels, "nrChannels", EVTCHN_FIFO_NR_CHANNELS);
  if (nr < 1024 || nr % 1024 !== 0) {
    bad("nrChannels", "must be a positive multiple of 1024");
  }
  const valid = uint(s.validPorts, "validPorts", EVTCHN_FIFO_NR_CHANNELS);
  if (!Array.isArray(s.ports)) bad("ports", "must be an array");
  let last = 0;
  for (const [i, item] of (s.ports as unknown[]).entries()) {
    const where = `ports[${i}]`;
    const p = record(item, where);
    const port = uint(p.port, `${where}.port`, valid - 1);
    if (port <= last) bad(`${where}.port`, "ports must be ascending, from 1");
    last = port;
    if (typeof p.status !== "string" || !STATES.has(p.status)) {
      bad(`${where}.status`, "must be unbound, interdomain, pirq, virq or ipi");
    }
    uint(p.vcpu, `${where}.vcpu`, vcpus - 1);
    const fields = FIELDS[p.status as keyof typeof FIELDS];
    for (const [field, max] of fields) uint(p[field], `${where}.${field}`, max);
    if (Object.keys(p).length !== fields.length + 3) {
      bad(
        where,
        `a ${p.status} port has port, status, vcpu and ${
          fields.map(([f]) => f).join(", ") || "nothing else"
        }`,
      );
    }
  }
  return value as HostSnapshot;
}

/** The fields each state has besides port, status and vcpu, and their bounds. */
const FIELDS = {
  unbound: [["remoteDomain", DOMID_MAX]],
  interdomain: [["remoteDomain", DOMID_MAX], ["remotePort", 0xffff_ffff]],
  pirq: [["pirq", 0xffff_ffff]],
  virq: [["virq", NR_VIRQS - 1]],
  ipi: [],
} as const satisfies Record<string, readonly (readonly [string, number])[]>;

function record(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    bad(where, "must be an object");
  }
  return value as Record<string, unknown>;
}

function uint(value: unknown, where: string, max: number): number {
  if (
    !Number.isInteger(value) || (value as number) < 0 || (value as number) > max
  ) {
    bad(where, `must be an integer from 0 to ${max}`);
  }
  return value as number;
}

function bad(argument: string, detail: string): never {
  throw new EventChannelError("snapshot", "EINVAL", { argument, detail });
}
