/**
 * Linux's `<xen/evtchn.h>` and `<xen/privcmd.h>` ioctls, and the Xen
 * `event_channel.h` argument structs the privcmd hypercalls carry, as request
 * codes (`bigint`, for ioctl's `unsigned long`) and byte offsets
 * (little-endian, x86-64). Pure data and pure functions: nothing here touches
 * FFI, so the layouts are testable anywhere.
 *
 * @module
 */

import type { ChannelStatus } from "../../hypercalls.ts";
import { EVTCHNOP, EVTCHNSTAT } from "../../xen/event_channel.ts";

// <asm-generic/ioctl.h>: nr 8 bits @0, type 8 bits @8, size 14 bits @16,
// dir 2 bits @30.
/** `_IOC_NONE`: the direction of every evtchn and privcmd ioctl. */
export const IOC_NONE = 0;

/**
 * `_IOC(dir, type, nr, size)`.
 *
 * @param dir `_IOC_NONE`, `_IOC_WRITE` (1) or `_IOC_READ` (2).
 * @param type The ioctl letter, such as `"E"`.
 * @param nr The command number.
 * @param size `sizeof` the argument struct.
 * @returns The request code.
 */
export function ioc(
  dir: number,
  type: string,
  nr: number,
  size: number,
): bigint {
  return (BigInt(dir) << 30n) | (BigInt(size) << 16n) |
    (BigInt(type.charCodeAt(0)) << 8n) | BigInt(nr);
}

// <xen/evtchn.h> argument structs (every field a u32 unless noted).

/** `struct ioctl_evtchn_bind_virq { unsigned int virq; }`. */
export const BIND_VIRQ = { size: 4, virq: 0 } as const;
/**
 * `struct ioctl_evtchn_bind_interdomain { unsigned int remote_domain,
 * remote_port; }`.
 */
export const BIND_INTERDOMAIN = {
  size: 8,
  remote_domain: 0,
  remote_port: 4,
} as const;
/** `struct ioctl_evtchn_bind_unbound_port { unsigned int remote_domain; }`. */
export const BIND_UNBOUND_PORT = { size: 4, remote_domain: 0 } as const;
/** `struct ioctl_evtchn_unbind { unsigned int port; }`. */
export const UNBIND = { size: 4, port: 0 } as const;
/** `struct ioctl_evtchn_notify { unsigned int port; }`. */
export const NOTIFY = { size: 4, port: 0 } as const;
/** `struct ioctl_evtchn_restrict_domid { domid_t domid; }` (u16). */
export const RESTRICT_DOMID = { size: 2, domid: 0 } as const;

/** `IOCTL_EVTCHN_BIND_VIRQ` = `_IOC(_IOC_NONE, 'E', 0, 4)`. */
export const IOCTL_EVTCHN_BIND_VIRQ: bigint = ioc(
  IOC_NONE,
  "E",
  0,
  BIND_VIRQ.size,
);
/** `IOCTL_EVTCHN_BIND_INTERDOMAIN` = `_IOC(_IOC_NONE, 'E', 1, 8)`. */
export const IOCTL_EVTCHN_BIND_INTERDOMAIN: bigint = ioc(
  IOC_NONE,
  "E",
  1,
  BIND_INTERDOMAIN.size,
);
/** `IOCTL_EVTCHN_BIND_UNBOUND_PORT` = `_IOC(_IOC_NONE, 'E', 2, 4)`. */
export const IOCTL_EVTCHN_BIND_UNBOUND_PORT: bigint = ioc(
  IOC_NONE,
  "E",
  2,
  BIND_UNBOUND_PORT.size,
);
/** `IOCTL_EVTCHN_UNBIND` = `_IOC(_IOC_NONE, 'E', 3, 4)`. */
export const IOCTL_EVTCHN_UNBIND: bigint = ioc(IOC_NONE, "E", 3, UNBIND.size);
/** `IOCTL_EVTCHN_NOTIFY` = `_IOC(_IOC_NONE, 'E', 4, 4)`. */
export const IOCTL_EVTCHN_NOTIFY: bigint = ioc(IOC_NONE, "E", 4, NOTIFY.size);
/** `IOCTL_EVTCHN_RESET` = `_IOC(_IOC_NONE, 'E', 5, 0)`. */
export const IOCTL_EVTCHN_RESET: bigint = ioc(IOC_NONE, "E", 5, 0);
/** `IOCTL_EVTCHN_RESTRICT_DOMID` = `_IOC(_IOC_NONE, 'E', 6, 2)`. */
export const IOCTL_EVTCHN_RESTRICT_DOMID: bigint = ioc(
  IOC_NONE,
  "E",
  6,
  RESTRICT_DOMID.size,
);

// <xen/privcmd.h>
/** `struct privcmd_hypercall { __u64 op; __u64 arg[5]; }` (48 bytes). */
export const PRIVCMD_HYPERCALL = { size: 48, op: 0, arg: 8 } as const;
/** `IOCTL_PRIVCMD_HYPERCALL` = `_IOC(_IOC_NONE, 'P', 0, 48)`. */
export const IOCTL_PRIVCMD_HYPERCALL: bigint = ioc(
  IOC_NONE,
  "P",
  0,
  PRIVCMD_HYPERCALL.size,
);

// Xen public xen.h hypercall numbers.
/** `__HYPERVISOR_xen_version`. */
export const HYPERVISOR_XEN_VERSION = 17;
/** `__HYPERVISOR_event_channel_op`. */
export const HYPERVISOR_EVENT_CHANNEL_OP = 32;
/** `__HYPERVISOR_domctl`. */
export const HYPERVISOR_DOMCTL = 36;

// Xen public version.h
/** `XENVER_VERSION`: returns `(major << 16) | minor`. */
export const XENVER_VERSION = 0;
/** `XENVER_EXTRAVERSION`: fills `char[16]`. */
export const XENVER_EXTRAVERSION = 1;
/** `sizeof(xen_extraversion_t)`. */
export const XEN_EXTRAVERSION_LEN = 16;

// Xen public event_channel.h structs (domid_t u16, evtchn_port_t u32).

/**
 * `struct evtchn_status` (24 bytes): `domid_t dom` @0, pad @2,
 * `evtchn_port_t port` @4, `uint32_t status` @8 (out), `uint32_t vcpu` @12
 * (out), `union u` @16 (out): `unbound.dom` u16 @16; `interdomain.dom` u16
 * @16, `interdomain.port` u32 @20; `pirq` u32 @16; `virq` u32 @16.
 */
export const EVTCHN_STATUS = {
  size: 24,
  dom: 0,
  port: 4,
  status: 8,
  vcpu: 12,
  u: 16,
  unbound_dom: 16,
  interdomain_dom: 16,
  interdomain_port: 20,
  pirq: 16,
  virq: 16,
} as const;

/**
 * `struct evtchn_alloc_unbound` (8 bytes): `domid_t dom` @0,
 * `domid_t remote_dom` @2, `evtchn_port_t port` @4 (out).
 */
export const EVTCHN_ALLOC_UNBOUND = {
  size: 8,
  dom: 0,
  remote_dom: 2,
  port: 4,
} as const;

/** `struct evtchn_close` (4 bytes): `evtchn_port_t port` @0. */
export const EVTCHN_CLOSE = { size: 4, port: 0 } as const;

/** `struct evtchn_reset` (2 bytes): `domid_t dom` @0. */
export const EVTCHN_RESET = { size: 2, dom: 0 } as const;
/** `struct evtchn_set_priority { evtchn_port_t port; uint32_t priority; }`. */
export const EVTCHN_SET_PRIORITY = { size: 8, port: 0, priority: 4 } as const;

/**
 * Fills the 48-byte `struct privcmd_hypercall`.
 *
 * @param out The struct, as six u64.
 * @param op The hypercall number.
 * @param args Up to five arguments.
 */
export function encodeHypercall(
  out: BigUint64Array,
  op: number,
  args: readonly bigint[],
): void {
  out.fill(0n);
  out[0] = BigInt(op);
  for (let i = 0; i < args.length && i < 5; i++) out[1 + i] = args[i];
}

/**
 * Fills `struct evtchn_status` with its inputs; the rest is zeroed.
 *
 * @param view At least 24 bytes.
 * @param dom The domain.
 * @param port The port.
 */
export function encodeStatus(view: DataView, dom: number, port: number): void {
  for (let i = 0; i < EVTCHN_STATUS.size; i += 4) view.setUint32(i, 0, true);
  view.setUint16(EVTCHN_STATUS.dom, dom, true);
  view.setUint32(EVTCHN_STATUS.port, port, true);
}

const STATUS_NAMES = new Map<number, keyof typeof EVTCHNSTAT>(
  (Object.entries(EVTCHNSTAT) as [keyof typeof EVTCHNSTAT, number][]).map((
    [name, value],
  ) => [value, name]),
);

/**
 * Decodes the outputs of `struct evtchn_status`, reading from `u` only the
 * members the state owns.
 *
 * @param view The struct after the call.
 * @returns The status, or `undefined` for a status code Xen 4.17 lacks.
 */
export function decodeStatus(view: DataView): ChannelStatus | undefined {
  const code = view.getUint32(EVTCHN_STATUS.status, true);
  const vcpu = view.getUint32(EVTCHN_STATUS.vcpu, true);
  switch (STATUS_NAMES.get(code)) {
    case "closed":
      return { status: "closed", vcpu };
    case "unbound":
      return {
        status: "unbound",
        vcpu,
        remoteDomain: view.getUint16(EVTCHN_STATUS.unbound_dom, true),
      };
    case "interdomain":
      return {
        status: "interdomain",
        vcpu,
        remoteDomain: view.getUint16(EVTCHN_STATUS.interdomain_dom, true),
        remotePort: view.getUint32(EVTCHN_STATUS.interdomain_port, true),
      };
    case "pirq":
      return {
        status: "pirq",
        vcpu,
        pirq: view.getUint32(EVTCHN_STATUS.pirq, true),
      };
    case "virq":
      return {
        status: "virq",
        vcpu,
        virq: view.getUint32(EVTCHN_STATUS.virq, true),
      };
    case "ipi":
      return { status: "ipi", vcpu };
    default:
      return undefined;
  }
}

/**
 * Fills `struct evtchn_alloc_unbound` with its inputs; `port` is zeroed.
 *
 * @param view At least 8 bytes.
 * @param dom The domain that gets the port.
 * @param remoteDom The domain allowed to connect.
 */
export function encodeAllocUnbound(
  view: DataView,
  dom: number,
  remoteDom: number,
): void {
  view.setUint16(EVTCHN_ALLOC_UNBOUND.dom, dom, true);
  view.setUint16(EVTCHN_ALLOC_UNBOUND.remote_dom, remoteDom, true);
  view.setUint32(EVTCHN_ALLOC_UNBOUND.port, 0, true);
}

/**
 * Fills `struct evtchn_reset`.
 *
 * @param view At least 2 bytes.
 * @param dom The domain.
 */
export function encodeReset(view: DataView, dom: number): void {
  view.setUint16(EVTCHN_RESET.dom, dom, true);
}

/** `EVTCHNOP_*` numbers used through privcmd. */
export const OPS = {
  close: EVTCHNOP.close,
  status: EVTCHNOP.status,
  alloc_unbound: EVTCHNOP.alloc_unbound,
  reset: EVTCHNOP.reset,
  set_priority: EVTCHNOP.set_priority,
} as const;
