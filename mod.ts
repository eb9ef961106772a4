/**
 * Xen event channels for Deno: one interface, `EventChannelHandle` (the shape
 * of libxenevtchn and `/dev/xen/evtchn`), with two backends: `memory`, a
 * faithful model of Xen 4.17's event-channel subsystem and Linux 6.1's evtchn
 * driver that runs anywhere, and `linux`, Deno FFI on a real Xen host's
 * `/dev/xen/evtchn` (and `/dev/xen/privcmd` for dom0 hypercalls).
 *
 * Importing this module needs no permissions; only opening the `linux`
 * backend needs `--allow-ffi`. The model's own classes (`Hypervisor`,
 * `LinuxGuest`, …) are behind a second entry point, `./model.ts`
 * (`@evtchn/evtchn/model`), so that they can follow Xen and Linux without
 * breaking programs that use event channels.
 *
 * @example A loopback channel in a modelled dom0
 * ```ts
 * import { MemoryXen } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const xen = new MemoryXen();
 * await using server = xen.open(0);
 * await using client = xen.open(0);
 * const offered = server.bindUnboundPort(0);
 * const port = client.bindInterdomain(0, offered);
 * assert.equal(await client.next(), port); // Xen marks it pending at bind
 * client.unmask(port);
 * server.notify(offered);
 * assert.equal(await client.next(), port);
 * client.unmask(port);
 * ```
 *
 * @module
 */

export { EventChannelHandle, type WaitOptions } from "./handle.ts";
export {
  PEER_WATCH_MAX_PORTS,
  type PeerGone,
  PeerWatch,
  type PeerWatchOptions,
} from "./liveness.ts";
export type { EventChannelDevice } from "./device.ts";
export { MAX_PORTS_PER_CALL, MAX_SYNC_WAIT_MS } from "./device.ts";
export { EventChannelError, type EventChannelErrorOptions } from "./errors.ts";
export type { ChannelStatus, Dom0Hypercalls } from "./hypercalls.ts";
export {
  assertNoFindings,
  type DomainInfo,
  type EcsName,
  type Finding,
  type FindingCode,
  type FindingSeverity,
  formatFindings,
  type HasFindings,
  type KernelInfo,
  type LintOptions,
  type MemoryDomainOptions,
  MemoryXen,
  type MemoryXenOptions,
  type PortInfo,
} from "./backends/memory/mod.ts";
export {
  type CreateDomainOptions,
  type HypercallBufferKind,
  type LinuxDeviceStatus,
  linuxDeviceStatus,
  type LinuxDeviceStatusOptions,
  openLinuxHandle,
  type OpenLinuxHandleOptions,
  openPrivcmd,
  PrivcmdHypercalls,
  type PrivcmdOptions,
  snapshotHost,
  type SnapshotOptions,
  type XenVersion,
} from "./backends/linux/mod.ts";
export {
  checkHostSnapshot,
  HOST_SNAPSHOT_FORMAT,
  HOST_SNAPSHOT_VERSION,
  type HostPort,
  type HostSnapshot,
  parseHostSnapshot,
} from "./host.ts";
export type {
  FaultErrno,
  FaultOptions,
  InjectedFault,
} from "./backends/memory/mod.ts";
export { ERRNO, type ErrnoName, errnoName } from "./xen/errno.ts";
export {
  DOMID_FIRST_RESERVED,
  DOMID_INVALID,
  DOMID_MAX,
  DOMID_SELF,
} from "./xen/domid.ts";
export {
  isGlobalVirq,
  NR_VIRQS,
  parseVirq,
  VIRQ,
  type VirqName,
  virqName,
} from "./xen/virq.ts";
export {
  type ChannelStatusName,
  EVTCHN_2L_NR_CHANNELS,
  EVTCHN_FIFO_EVENT_WORDS_PER_PAGE,
  EVTCHN_FIFO_NR_CHANNELS,
  EVTCHNOP,
  type EvtchnOpName,
  EVTCHNS_PER_BUCKET,
  EVTCHNSTAT,
  FIFO_PRIORITY,
  XL_DEFAULT_MAX_EVTCHN_PORT,
} from "./xen/event_channel.ts";
