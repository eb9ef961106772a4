/**
 * Takes a {@linkcode HostSnapshot} of the domain this process runs in (dom0):
 * an `EVTCHNOP_status` scan of every port up to Xen's storage edge through
 * privcmd, the event ABI from `EVTCHNOP_set_priority`, the kernel's channel
 * limit from `IOCTL_EVTCHN_UNBIND` on an empty `/dev/xen/evtchn`, and the
 * versions. Nothing is bound or changed. Take it while no other program
 * holds ports through the device: every unbound port is taken to be the
 * kernel's own, without an IRQ (xenstore's in a dom0 without xenstored).
 *
 * @module
 */

import { EventChannelError } from "../../errors.ts";
import {
  HOST_SNAPSHOT_FORMAT,
  HOST_SNAPSHOT_VERSION,
  type HostPort,
  type HostSnapshot,
} from "../../host.ts";
import { DOMID_SELF } from "../../xen/domid.ts";
import {
  EVTCHN_2L_NR_CHANNELS,
  EVTCHN_FIFO_EVENT_WORDS_PER_PAGE,
  EVTCHN_FIFO_NR_CHANNELS,
  FIFO_PRIORITY,
} from "../../xen/event_channel.ts";
import { VIRQ } from "../../xen/virq.ts";
import { EventChannelHandle } from "../../handle.ts";
import { LinuxEvtchnDevice } from "./device.ts";
import { PrivcmdHypercalls, type PrivcmdOptions } from "./privcmd.ts";
import { kernelRelease } from "./system.ts";

/**
 * Options for {@linkcode snapshotHost}.
 *
 * @example Devices that cannot be opened fail the snapshot with their errno
 * ```ts
 * import { snapshotHost, type SnapshotOptions } from "./snapshot.ts";
 * import { linuxDeviceStatus } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const absent: SnapshotOptions = {
 *   privcmd: { path: "/dev/xen/no-such-device" },
 * };
 * await assert.rejects(snapshotHost(absent), {
 *   name: "EventChannelError",
 *   op: "open",
 *   code: "ENOENT",
 *   value: "/dev/xen/no-such-device",
 * });
 *
 * const options: SnapshotOptions = {
 *   evtchnPath: "/dev/xen/evtchn",
 *   privcmd: { buffer: "anonymous" },
 * };
 * if (linuxDeviceStatus({ path: "/dev/xen/privcmd" }).available) {
 *   const host = await snapshotHost(options);
 *   assert.equal(host.domain, 0);
 *   assert.ok(host.nrChannels >= host.validPorts);
 * }
 * ```
 */
export interface SnapshotOptions {
  /** The event-channel device (default `/dev/xen/evtchn`). */
  evtchnPath?: string;
  /** How privcmd is opened. */
  privcmd?: PrivcmdOptions;
}

/**
 * Snapshots this domain's event channels (see the module documentation).
 * Needs root in dom0 and `--allow-ffi` (the kernel release comes from
 * `uname(2)`).
 *
 * @param options Device paths.
 * @returns The snapshot (asynchronously: the probe handle closes first).
 * @throws {EventChannelError} when privcmd or the device cannot be opened,
 * or a status call fails for another reason than the storage edge.
 *
 * @example Only in a dom0
 * ```ts
 * import { snapshotHost } from "./snapshot.ts";
 * import { linuxDeviceStatus } from "./mod.ts";
 * import assert from "node:assert/strict";
 * const privcmd = linuxDeviceStatus({ path: "/dev/xen/privcmd" });
 * if (privcmd.available) {
 *   const host = await snapshotHost();
 *   assert.ok(host.ports.some((p) => p.status === "virq" && p.virq === 0));
 * } else {
 *   await assert.rejects(
 *     snapshotHost({ privcmd: { path: "/dev/xen/privcmd" } }),
 *     { name: "EventChannelError", op: "open", code: privcmd.code },
 *   );
 * }
 * ```
 */
export async function snapshotHost(
  options: SnapshotOptions = {},
): Promise<HostSnapshot> {
  using xen = new PrivcmdHypercalls(options.privcmd);
  const ports: HostPort[] = [];
  let validPorts = 1;
  // Port 0 is reserved; the scan stops at the first EINVAL, Xen's
  // `port_is_valid` edge, which storage growth keeps a multiple of 64.
  for (let port = 1; port < EVTCHN_FIFO_NR_CHANNELS; port++) {
    let status;
    try {
      status = xen.status(DOMID_SELF, port);
    } catch (error) {
      if (error instanceof EventChannelError && error.code === "EINVAL") break;
      throw error;
    }
    validPorts = port + 1;
    if (status.status !== "closed") ports.push({ port, ...status });
  }
  const version = xen.xenVersion();
  const abi = eventAbi(xen, ports);
  return {
    format: HOST_SNAPSHOT_FORMAT,
    version: HOST_SNAPSHOT_VERSION,
    xen: `${version.major}.${version.minor}${version.extra}`,
    kernel: kernelRelease(),
    domain: 0,
    abi,
    // The kernel binds VIRQ_TIMER on every online vCPU at its bring-up.
    vcpus: Math.max(
      1,
      ports.filter((p) => p.status === "virq" && p.virq === VIRQ.TIMER).length,
    ),
    nrChannels: abi === "2l"
      ? EVTCHN_2L_NR_CHANNELS
      : await nrFifoChannels(options.evtchnPath),
    validPorts,
    ports,
  };
}

/**
 * The event ABI, from `EVTCHNOP_set_priority` with an out-of-range priority
 * on a port the kernel holds: `ENOSYS` under 2-level, a refusal of the
 * argument under FIFO. Changes nothing either way.
 */
function eventAbi(xen: PrivcmdHypercalls, ports: HostPort[]): "fifo" | "2l" {
  try {
    xen.setPriority(ports[0]?.port ?? 1, FIFO_PRIORITY.MIN + 1);
  } catch (error) {
    if (error instanceof EventChannelError && error.code === "ENOSYS") {
      return "2l";
    }
    if (error instanceof EventChannelError) return "fifo";
    throw error;
  }
  throw new EventChannelError("snapshot", "EINVAL", {
    detail: "EVTCHNOP_set_priority accepted priority 16",
  });
}

/**
 * `xen_evtchn_nr_channels()` under FIFO: `IOCTL_EVTCHN_UNBIND` refuses a
 * port at or beyond it with `EINVAL` and answers `ENOTCONN` below it on an
 * fd that holds nothing, so the first refused page edge is the limit.
 */
async function nrFifoChannels(path: string | undefined): Promise<number> {
  await using device = new EventChannelHandle(new LinuxEvtchnDevice({ path }));
  let pages = 1;
  while (pages * EVTCHN_FIFO_EVENT_WORDS_PER_PAGE < EVTCHN_FIFO_NR_CHANNELS) {
    try {
      device.unbind(pages * EVTCHN_FIFO_EVENT_WORDS_PER_PAGE);
    } catch (error) {
      if (error instanceof EventChannelError && error.code === "EINVAL") break;
      if (!(error instanceof EventChannelError && error.code === "ENOTCONN")) {
        throw error;
      }
    }
    pages++;
  }
  return pages * EVTCHN_FIFO_EVENT_WORDS_PER_PAGE;
}
