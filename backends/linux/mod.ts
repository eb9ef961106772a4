/**
 * The `linux` backend: real Xen event channels through Linux's
 * `/dev/xen/evtchn` (and `/dev/xen/privcmd` for dom0 hypercalls), with Deno
 * FFI on libc.
 *
 * Permissions: `--allow-ffi` (or the narrow
 * `--allow-ffi=/lib/x86_64-linux-gnu/libc.so.6`: nothing here needs
 * `Deno.UnsafePointer`), and `--allow-env` only to honour `EVTCHN_LIBC`, the
 * path of another C library (which is then the only one tried). No
 * `--allow-read`: the devices are opened through libc. Importing this module
 * needs nothing; libc is opened by the first handle and closed with the last.
 * Without `--allow-ffi`, opening throws Deno's own
 * `Deno.errors.NotCapable`, untouched (it names the missing flag);
 * {@linkcode linuxDeviceStatus} reports it without throwing.
 *
 * @example Probe, then use the device when there is one
 * ```ts
 * import { linuxDeviceStatus, openLinuxHandle } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const status = linuxDeviceStatus();
 * if (status.available) {
 *   await using handle = openLinuxHandle();
 *   const port = handle.bindUnboundPort(0);
 *   handle.unbind(port);
 * } else {
 *   assert.equal(typeof status.reason, "string");
 * }
 * ```
 *
 * @module
 */

import { EventChannelError } from "../../errors.ts";
import { EventChannelHandle } from "../../handle.ts";
import { DEFAULT_EVTCHN_PATH, LinuxEvtchnDevice } from "./device.ts";
import { openFile } from "./_fd.ts";
import { syscalls } from "./_syscall.ts";
import {
  acquireLibc,
  O_CLOEXEC,
  O_NONBLOCK,
  O_RDWR,
  releaseLibc,
} from "./_libc.ts";
import { PrivcmdHypercalls, type PrivcmdOptions } from "./privcmd.ts";

// The shared types this backend's API names, re-exported so that this entry
// point documents on its own.
export type { EventChannelDevice } from "../../device.ts";
export { MAX_PORTS_PER_CALL, MAX_SYNC_WAIT_MS } from "../../device.ts";
export type { EventChannelHandle, WaitOptions } from "../../handle.ts";
export type { ChannelStatus, Dom0Hypercalls } from "../../hypercalls.ts";
export { LinuxEvtchnDevice } from "./device.ts";
export type { LinuxEvtchnDeviceOptions } from "./device.ts";
export { PrivcmdHypercalls } from "./privcmd.ts";
export {
  type DeviceProbe,
  type DeviceState,
  domainId,
  errnoCapture,
  eventAbi,
  ffiGranted,
  kernelRelease,
  probeDevice,
} from "./system.ts";
export { snapshotHost, type SnapshotOptions } from "./snapshot.ts";
export type { HostPort, HostSnapshot } from "../../host.ts";
export type {
  CreateDomainOptions,
  HypercallBufferKind,
  PrivcmdOptions,
  XenVersion,
} from "./privcmd.ts";

/**
 * Options for {@linkcode openLinuxHandle}.
 *
 * @example The path is the one file opened, named when it cannot be
 * ```ts
 * import {
 *   linuxDeviceStatus,
 *   openLinuxHandle,
 *   type OpenLinuxHandleOptions,
 * } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const absent: OpenLinuxHandleOptions = { path: "/dev/xen/no-such-device" };
 * assert.throws(() => openLinuxHandle(absent), {
 *   name: "EventChannelError",
 *   op: "open",
 *   code: "ENOENT",
 *   value: "/dev/xen/no-such-device",
 * });
 *
 * const options: OpenLinuxHandleOptions = { path: "/dev/xen/evtchn" };
 * if (linuxDeviceStatus(options).available) {
 *   await using handle = openLinuxHandle(options);
 *   assert.equal(handle.backend, "linux");
 * }
 * ```
 */
export interface OpenLinuxHandleOptions {
  /** The device file; `/dev/xen/evtchn` when omitted. */
  path?: string;
}

/**
 * Opens `/dev/xen/evtchn` as an {@linkcode EventChannelHandle}. Close it with
 * `await handle.close()` or `await using`: the promise settles once a
 * waiting `poll(2)` has returned and the fds are closed.
 *
 * @param options The device path.
 * @returns A handle on the `linux` backend.
 * @throws {EventChannelError} `open` with the real errno: `ENOENT` where
 * there is no device (not a Xen host), `EACCES` without access.
 * @throws {Deno.errors.NotCapable} without `--allow-ffi` (untouched).
 *
 * @example Open where there is a device
 * ```ts
 * import { linuxDeviceStatus, openLinuxHandle } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const status = linuxDeviceStatus();
 * if (status.available) {
 *   await using handle = openLinuxHandle();
 *   assert.equal(handle.backend, "linux");
 * } else {
 *   // ENOENT where there is no Xen, EACCES without access.
 *   assert.throws(() => openLinuxHandle(), {
 *     name: "EventChannelError",
 *     op: "open",
 *     code: status.code,
 *   });
 * }
 * ```
 */
export function openLinuxHandle(
  options: OpenLinuxHandleOptions = {},
): EventChannelHandle {
  return new EventChannelHandle(new LinuxEvtchnDevice(options));
}

/**
 * Opens `/dev/xen/privcmd` for dom0 event-channel hypercalls.
 *
 * @param options The device path and where hypercall arguments live.
 * @returns The hypercalls; dispose of them (`using`) when done.
 * @throws {EventChannelError} `open` (`ENOENT` when not on Xen) or `mmap`.
 * @throws {Deno.errors.NotCapable} without `--allow-ffi` (untouched).
 *
 * @example Status of a fresh port, only where privcmd exists
 * ```ts
 * import { linuxDeviceStatus, openPrivcmd } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const privcmd = linuxDeviceStatus({ path: "/dev/xen/privcmd" });
 * if (privcmd.available) {
 *   using xen = openPrivcmd();
 *   const port = xen.allocUnbound(0x7ff0, 0);
 *   assert.equal(xen.status(0x7ff0, port).status, "unbound");
 *   xen.closePort(port);
 * } else {
 *   assert.throws(() => openPrivcmd({ path: "/dev/xen/privcmd" }), {
 *     name: "EventChannelError",
 *     op: "open",
 *     code: privcmd.code,
 *   });
 * }
 * ```
 */
export function openPrivcmd(options: PrivcmdOptions = {}): PrivcmdHypercalls {
  return new PrivcmdHypercalls(options);
}

/**
 * What {@linkcode linuxDeviceStatus} found.
 *
 * @example What an absent device gives, on any host
 * ```ts
 * import { type LinuxDeviceStatus, linuxDeviceStatus } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const expected: LinuxDeviceStatus = {
 *   available: false,
 *   reason: "/dev/xen/no-such-device: ENOENT",
 *   code: "ENOENT",
 * };
 * assert.deepEqual(
 *   linuxDeviceStatus({ path: "/dev/xen/no-such-device" }),
 *   expected,
 * );
 * ```
 */
export interface LinuxDeviceStatus {
  /** Whether the device can be opened here, now. */
  available: boolean;
  /** Why not, when it cannot. */
  reason?: string;
  /**
   * The errno name when opening failed (`ENOENT`: no such device, `EACCES`:
   * no access); absent when the device opened or libc did not load.
   */
  code?: string;
}

/**
 * Options for {@linkcode linuxDeviceStatus}.
 *
 * @example Probe privcmd: the status foretells what opening it does
 * ```ts
 * import {
 *   linuxDeviceStatus,
 *   type LinuxDeviceStatusOptions,
 *   openPrivcmd,
 * } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const options: LinuxDeviceStatusOptions = { path: "/dev/xen/privcmd" };
 * const privcmd = linuxDeviceStatus(options);
 * if (privcmd.available) {
 *   using xen = openPrivcmd(options);
 *   assert.equal(xen.path, "/dev/xen/privcmd");
 * } else {
 *   // ENOENT where there is no Xen, EACCES when not root.
 *   assert.equal(privcmd.reason, `/dev/xen/privcmd: ${privcmd.code}`);
 *   assert.throws(() => openPrivcmd(options), {
 *     name: "EventChannelError",
 *     op: "open",
 *     code: privcmd.code,
 *   });
 * }
 * ```
 */
export interface LinuxDeviceStatusOptions {
  /** The device file; `/dev/xen/evtchn` when omitted. */
  path?: string;
}

/**
 * Whether the `linux` backend can work here: libc loads (`--allow-ffi` is
 * granted) and the device opens read-write. Never throws; opening and
 * closing the device binds nothing.
 *
 * @param options The device path.
 * @returns `{ available: true }`, or `false` with a reason.
 *
 * @example Decide a test's `ignore` when it is registered
 * ```ts
 * import { linuxDeviceStatus, openLinuxHandle } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const status = linuxDeviceStatus();
 * // Never throws: a reason exactly when the device cannot be used.
 * assert.equal(status.reason === undefined, status.available);
 * assert.equal(linuxDeviceStatus({ path: "/dev/xen/none" }).code, "ENOENT");
 * Deno.test({
 *   name: `evtchn device${status.available ? "" : ` [ignored: ${status.reason}]`}`,
 *   ignore: !status.available,
 *   async fn() {
 *     await using handle = openLinuxHandle();
 *     const port = handle.bindUnboundPort(0);
 *     handle.unbind(port);
 *     assert.throws(() => handle.unbind(port), { code: "ENOTCONN" });
 *   },
 * });
 * ```
 */
export function linuxDeviceStatus(
  options: LinuxDeviceStatusOptions = {},
): LinuxDeviceStatus {
  const path = options.path ?? DEFAULT_EVTCHN_PATH;
  if (Deno.build.os !== "linux") {
    return { available: false, reason: `not Linux (${Deno.build.os})` };
  }
  let libc;
  try {
    libc = acquireLibc();
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) {
      return { available: false, reason: "--allow-ffi not granted" };
    }
    return { available: false, reason: (error as Error).message };
  }
  try {
    const fd = openFile(
      syscalls(libc),
      path,
      O_RDWR | O_CLOEXEC | O_NONBLOCK,
      path,
    );
    libc.close(fd);
    return { available: true };
  } catch (error) {
    if (error instanceof EventChannelError) {
      return {
        available: false,
        reason: `${path}: ${error.code}`,
        code: error.code,
      };
    }
    return { available: false, reason: String(error) };
  } finally {
    releaseLibc();
  }
}
