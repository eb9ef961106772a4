/**
 * What a Linux system under Xen looks like from Deno, found through the same
 * FFI grant the `linux` backend already needs, so that `--allow-ffi` (even
 * the narrow `--allow-ffi=<libc>`) is enough to tell the truth about it:
 *
 * - whether a device exists and may be opened ({@linkcode probeDevice}:
 *   `access(2)`, where Deno's own `stat` of anything under `/dev` needs
 *   `--allow-all`);
 * - the kernel release ({@linkcode kernelRelease}: `uname(2)`, where
 *   `Deno.osRelease()` needs `--allow-sys`);
 * - the domain's own id ({@linkcode domainId}: a hypercall probe, where
 *   `/proc/xen/capabilities` needs `--allow-all`);
 * - the event ABI ({@linkcode eventAbi}: the device's port limit).
 *
 * @module
 */

import { EventChannelError } from "../../errors.ts";
import type { EventChannelHandle } from "../../handle.ts";
import { DOMID_SELF } from "../../xen/domid.ts";
import { ERRNO, errnoName } from "../../xen/errno.ts";
import {
  acquireLibc,
  cString,
  F_OK,
  libcCandidates,
  R_OK,
  releaseLibc,
  UTSNAME_FIELD,
  UTSNAME_RELEASE,
  UTSNAME_SIZE,
  W_OK,
} from "./_libc.ts";
import type { PrivcmdHypercalls } from "./privcmd.ts";
import { syscalls } from "./_syscall.ts";

// Linux errno values not in the shared table (which lists what Xen and the
// device return): a path component is not a directory; a read-only fs.
const ENOTDIR = 20;
const EROFS = 30;

/**
 * Whether the `--allow-ffi` granted covers a C library this backend would
 * open, asked without prompting. When it is `false`, the functions here
 * (and opening a handle) would fail with `Deno.errors.NotCapable`.
 *
 * @returns `true` when some libc candidate is granted.
 *
 * @example Probe only where FFI is allowed
 * ```ts
 * import { ffiGranted, probeDevice } from "./system.ts";
 * import assert from "node:assert/strict";
 *
 * if (ffiGranted()) {
 *   assert.equal(probeDevice("/nonexistent/xen/evtchn").state, "absent");
 * }
 * ```
 */
export function ffiGranted(): boolean {
  if (Deno.build.os !== "linux") return false;
  return libcCandidates().some((path) =>
    Deno.permissions.querySync({ name: "ffi", path }).state === "granted"
  );
}

/**
 * What {@linkcode probeDevice} found: `present` (exists, and this process
 * may open it read-write), `no-access` (exists, but `EACCES`/`EPERM` for
 * read-write), `absent` (`ENOENT`: not a Xen host, or the module is not
 * loaded), or `error` (another errno, named in `code`).
 *
 * @example Where there is no such file
 * ```ts
 * import { type DeviceState, ffiGranted, probeDevice } from "./system.ts";
 * import assert from "node:assert/strict";
 *
 * const state: DeviceState = "absent";
 * if (ffiGranted()) {
 *   assert.equal(probeDevice("/dev/xen/no-such-device").state, state);
 * } else {
 *   assert.throws(
 *     () => probeDevice("/dev/xen/evtchn"),
 *     Deno.errors.NotCapable,
 *   );
 * }
 * ```
 */
export type DeviceState = "present" | "absent" | "no-access" | "error";

/**
 * The result of {@linkcode probeDevice}.
 *
 * @example A file that opens read-write, and the device where it opens
 * ```ts
 * import { type DeviceProbe, probeDevice } from "./system.ts";
 * import { linuxDeviceStatus } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const present: DeviceProbe = { path: "/dev/null", state: "present" };
 * assert.deepEqual(probeDevice("/dev/null"), present);
 * if (linuxDeviceStatus().available) {
 *   assert.equal(probeDevice("/dev/xen/evtchn").state, "present");
 * }
 * ```
 */
export interface DeviceProbe {
  /** The path looked at. */
  path: string;
  /** What was found. */
  state: DeviceState;
  /** The errno name when a check failed (`ENOENT`, `EACCES`…). */
  code?: string;
}

/**
 * Looks for a device file with `access(2)` through libc: first whether it
 * exists, then whether it may be opened read-write. Opens nothing, binds
 * nothing. Needs only `--allow-ffi` (narrow or not); no `--allow-read`.
 *
 * @param path The device file.
 * @returns What was found.
 * @throws {Deno.errors.NotCapable} without `--allow-ffi` (untouched).
 *
 * @example
 * ```ts
 * import { ffiGranted, probeDevice } from "./system.ts";
 * import assert from "node:assert/strict";
 *
 * if (ffiGranted()) {
 *   assert.deepEqual(probeDevice("/nonexistent"), {
 *     path: "/nonexistent",
 *     state: "absent",
 *     code: "ENOENT",
 *   });
 * }
 * ```
 */
export function probeDevice(path: string): DeviceProbe {
  const libc = acquireLibc();
  try {
    const sys = syscalls(libc);
    const name = cString(path);
    const exists = sys.access(name, F_OK);
    if (exists < 0) {
      const code = -exists;
      return {
        path,
        state: code === ERRNO.ENOENT || code === ENOTDIR
          ? "absent"
          : code === ERRNO.EACCES
          ? "no-access" // a directory on the way may not be searched
          : "error",
        code: errnoName(code),
      };
    }
    const usable = sys.access(name, R_OK | W_OK);
    if (usable < 0) {
      const code = -usable;
      return {
        path,
        state: code === ERRNO.EACCES || code === ERRNO.EPERM ||
            code === EROFS
          ? "no-access"
          : "error",
        code: errnoName(code),
      };
    }
    return { path, state: "present" };
  } finally {
    releaseLibc();
  }
}

/**
 * How the `linux` backend learns why a system call failed, here:
 * `"in-call"` when the kernel's return value carries the errno (x86-64 with
 * the system C library), `"errno"` when it reads libc's `errno` after the
 * call (other architectures, or a library named by `EVTCHN_LIBC`), where the
 * runtime may, rarely, have overwritten it in between.
 *
 * @returns The path the backend takes.
 * @throws {Deno.errors.NotCapable} without `--allow-ffi` (untouched).
 *
 * @example
 * ```ts
 * import { errnoCapture, ffiGranted } from "./system.ts";
 * import assert from "node:assert/strict";
 *
 * if (ffiGranted()) {
 *   assert.ok(["in-call", "errno"].includes(errnoCapture()));
 * }
 * ```
 */
export function errnoCapture(): "in-call" | "errno" {
  const libc = acquireLibc();
  try {
    return syscalls(libc).capture;
  } finally {
    releaseLibc();
  }
}

/**
 * The running kernel's release (`uname -r`), through `uname(2)`: no
 * `--allow-sys` needed.
 *
 * @returns Such as `"6.1.0-28-amd64"`.
 * @throws {EventChannelError} `uname` with its errno (it does not fail on
 * Linux).
 * @throws {Deno.errors.NotCapable} without `--allow-ffi` (untouched).
 *
 * @example
 * ```ts
 * import { ffiGranted, kernelRelease } from "./system.ts";
 * import assert from "node:assert/strict";
 *
 * if (ffiGranted()) assert.match(kernelRelease(), /^\d+\.\d+/);
 * ```
 */
export function kernelRelease(): string {
  const libc = acquireLibc();
  try {
    const buffer = new Uint8Array(UTSNAME_SIZE);
    const result = syscalls(libc).uname(buffer);
    if (result < 0) throw new EventChannelError("uname", -result);
    const field = buffer.subarray(
      UTSNAME_RELEASE,
      UTSNAME_RELEASE + UTSNAME_FIELD,
    );
    const end = field.indexOf(0);
    return new TextDecoder().decode(
      field.subarray(0, end < 0 ? field.length : end),
    );
  } finally {
    releaseLibc();
  }
}

/**
 * The calling domain's own id, asked of Xen: `EVTCHNOP_alloc_unbound` with
 * both `dom` and `remote_dom` = `DOMID_SELF` (Xen stores the caller's real
 * id as the remote end), `EVTCHNOP_status` of that port, then
 * `EVTCHNOP_close`. Allowed in any domain; costs one port for a moment.
 *
 * @param privcmd An open privcmd.
 * @returns The domain id (0 in dom0).
 * @throws {EventChannelError} `alloc_unbound`, `status` or `close` with
 * Xen's errno; `status` with `EINVAL` if the port was not left unbound.
 *
 * @example In a domU of the in-memory model, and where privcmd opens
 * ```ts
 * import { domainId } from "./system.ts";
 * import { linuxDeviceStatus, openPrivcmd } from "./mod.ts";
 * import { MemoryXen } from "../memory/mod.ts";
 * import assert from "node:assert/strict";
 *
 * const model = new MemoryXen();
 * model.createDomain({ domain: 1 });
 * const domU = model.hypercalls(1);
 * const closed: number[] = [];
 * assert.equal(
 *   domainId({
 *     allocUnbound: (domain, remote) => domU.allocUnbound(domain, remote),
 *     status: (domain, port) => domU.status(domain, port),
 *     closePort: (port) => void closed.push(port),
 *   }),
 *   1,
 * );
 * assert.equal(closed.length, 1); // the probe port is given back
 *
 * if (linuxDeviceStatus({ path: "/dev/xen/privcmd" }).available) {
 *   using privcmd = openPrivcmd();
 *   const id = domainId(privcmd);
 *   assert.ok(id < 0x7ff0); // a real id, never DOMID_SELF
 *   // The project's test VM runs them in dom0.
 *   if (Deno.env.get("XENVM") === "1") assert.equal(id, 0);
 * }
 * ```
 */
export function domainId(
  privcmd: Pick<PrivcmdHypercalls, "allocUnbound" | "status" | "closePort">,
): number {
  const port = privcmd.allocUnbound(DOMID_SELF, DOMID_SELF);
  try {
    const status = privcmd.status(DOMID_SELF, port);
    if (status.status !== "unbound") {
      throw new EventChannelError("status", "EINVAL", {
        argument: "port",
        value: port,
        detail: `expected the probe port unbound, found ${status.status}`,
      });
    }
    return status.remoteDomain;
  } finally {
    privcmd.closePort(port);
  }
}

/**
 * The event ABI Linux set up in this domain, from the device's own port
 * limit: `IOCTL_EVTCHN_UNBIND` of port 4095 on a fresh handle is `ENOTCONN`
 * under 2-level (4096 channels) and `EINVAL` under FIFO (1024 ports per
 * event-array page, and a domain holding 4096 ports is not what this
 * probes). Binds nothing.
 *
 * @param handle A handle on `/dev/xen/evtchn` with no port 4095 bound.
 * @returns `"fifo"`, `"2l"`, or `"unknown"`.
 *
 * @example On the in-memory model's devices, and where the real one opens
 * ```ts
 * import { eventAbi } from "./system.ts";
 * import { linuxDeviceStatus, openLinuxHandle } from "./mod.ts";
 * import { MemoryXen } from "../memory/mod.ts";
 * import assert from "node:assert/strict";
 *
 * for (const abi of ["fifo", "2l"] as const) {
 *   await using model = new MemoryXen({ eventAbi: abi }).open(0);
 *   assert.equal(eventAbi(model), abi);
 * }
 * if (linuxDeviceStatus().available) {
 *   await using handle = openLinuxHandle();
 *   assert.ok(["fifo", "2l"].includes(eventAbi(handle)));
 * }
 * ```
 */
export function eventAbi(
  handle: Pick<EventChannelHandle, "unbind">,
): "fifo" | "2l" | "unknown" {
  try {
    handle.unbind(4095);
    return "unknown";
  } catch (error) {
    if (!(error instanceof EventChannelError)) return "unknown";
    return error.code === "ENOTCONN"
      ? "2l"
      : error.code === "EINVAL"
      ? "fifo"
      : "unknown";
  }
}
