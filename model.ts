/**
 * The model behind the `memory` backend, for those who build on it: Xen
 * 4.17's event-channel subsystem (`Hypervisor`, its domains and the 2-level
 * and FIFO ABIs laid out in guest memory), Linux 6.1's event handling
 * (`LinuxGuest`, its kernel profile) and `/dev/xen/evtchn`
 * (`MemoryEvtchnDevice`). Import it as `@evtchn/evtchn/model`. Programs that
 * only use event channels need `mod.ts` (`MemoryXen` and the handle) alone:
 * these classes follow the Xen and Linux sources they model and change with
 * them.
 *
 * @example Xen's own checks, one hypercall at a time
 * ```ts
 * import { checkInvariants, Hypervisor } from "./model.ts";
 * import assert from "node:assert/strict";
 * const xen = new Hypervisor();
 * xen.createDomain({ domain: 1 });
 * const port = xen.allocUnbound(1, 1, 0);
 * assert.equal(xen.status(1, 1, port).status, "unbound");
 * assert.deepEqual(checkInvariants(xen), []);
 * ```
 *
 * @module
 */

export {
  checkInvariants,
  checkOpArgs,
  defaultDom0Pirqs,
  defaultProfile,
  type DefaultProfileOptions,
  type Domain,
  type DomainInfo,
  type DomainOptions,
  dumpLines,
  type DumpRow,
  dumpRow,
  type EcsName,
  type EventAbi,
  EVTCHN_OPS,
  type EvtchnOp,
  type FaultHook,
  FifoAbi,
  hostDumpRows,
  Hypervisor,
  inspectDomain,
  inspectDomains,
  inspectPort,
  inspectPorts,
  type KernelEventAbi,
  type KernelProfile,
  Linter,
  LinuxGuest,
  type LinuxGuestOptions,
  MemoryEvtchnDevice,
  OP_ARG_MAX,
  type OpArg,
  type OpArgType,
  type OpResult,
  type PortInfo,
  profileFromSnapshot,
  SharedInfo,
  TwoLevelAbi,
} from "./backends/memory/mod.ts";
