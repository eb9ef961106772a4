// Looking at the Linux system the CLI runs on, without prompting for a
// permission: whether Xen's device files exist and may be opened, and which
// domain this is. `auto` backend choice (_backend.ts) and `evtchn info` ask
// these questions; they are kept apart from opening a backend because they
// never bind anything. libc is opened only where --allow-ffi is granted, so
// the memory backend never needs it.

import { EventChannelError } from "../errors.ts";
import { domainId, ffiGranted, probeDevice } from "../backends/linux/system.ts";
import {
  DEFAULT_PRIVCMD_PATH,
  PrivcmdHypercalls,
} from "../backends/linux/privcmd.ts";
import { DEFAULT_EVTCHN_PATH } from "../backends/linux/device.ts";

/** Where Linux puts the event-channel device (the linux backend's default). */
export const EVTCHN_DEVICE: string = DEFAULT_EVTCHN_PATH;
/** Where Linux puts the hypercall device (the linux backend's default). */
export const PRIVCMD_DEVICE: string = DEFAULT_PRIVCMD_PATH;
/** Lists `control_d` in dom0 (xenfs). */
export const XEN_CAPABILITIES = "/proc/xen/capabilities";

/**
 * What a device check found: `present` (exists and may be opened),
 * `no-access` (exists, but this process may not open it: not root, or not in
 * the device's group), `absent` (no such file), or `unknown` (the check
 * itself was not permitted).
 */
export type Presence = "present" | "absent" | "no-access" | "unknown";

/** A device check, with how it was made and, when needed, what to do. */
export interface PresenceReport {
  /** What was found. */
  state: Presence;
  /** How: libc's `access(2)` through the FFI grant, Deno's `stat`, or not at all. */
  via: "libc" | "stat" | "none";
  /** A sentence for anything but a plain `present` or `absent`. */
  detail?: string;
}

/** Why a device check was not possible, naming the flags that allow it. */
export const UNKNOWN_DETAIL =
  "not checked: Deno's own stat of /dev needs --allow-all; grant " +
  "--allow-ffi instead (the check then goes through libc, and --allow-ffi " +
  "is all the linux backend needs)";

/** What to do about a device that exists but may not be opened. */
export const NO_ACCESS_DETAIL =
  "present, but this process may not open it read-write: run as root, or " +
  "give your user the device's group";

/**
 * Checks a device file without prompting: through libc (`access(2)`) where
 * `--allow-ffi` is granted (narrow or not), else with Deno's `stat` where
 * the permissions allow it (under `/dev` only `--allow-all` does), else
 * `unknown` with the flags that would allow the check.
 *
 * @param path The device file.
 * @returns What was found and how.
 */
export function checkDevice(path: string): PresenceReport {
  if (ffiGranted()) {
    try {
      const probe = probeDevice(path);
      switch (probe.state) {
        case "present":
        case "absent":
          return { state: probe.state, via: "libc" };
        case "no-access":
          return {
            state: "no-access",
            via: "libc",
            detail: `${NO_ACCESS_DETAIL} (${probe.code})`,
          };
        default:
          return {
            state: "unknown",
            via: "libc",
            detail: `access(2) failed with ${probe.code}`,
          };
      }
    } catch (error) {
      // EVTCHN_LIBC names a library that does not load: say so, then try
      // Deno's own check.
      if (!(error instanceof EventChannelError)) throw error;
      const fallback = statDevice(path);
      return {
        ...fallback,
        detail: [fallback.detail, error.message].filter(Boolean).join("; "),
      };
    }
  }
  return statDevice(path);
}

function statDevice(path: string): PresenceReport {
  if (Deno.permissions.querySync({ name: "read", path }).state !== "granted") {
    return { state: "unknown", via: "none", detail: UNKNOWN_DETAIL };
  }
  try {
    Deno.statSync(path);
    return { state: "present", via: "stat" };
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      return { state: "absent", via: "stat" };
    }
    if (error instanceof Deno.errors.PermissionDenied) {
      return { state: "no-access", via: "stat", detail: NO_ACCESS_DETAIL };
    }
    // NotCapable: Deno wants --allow-all for /dev, whatever --allow-read says.
    return { state: "unknown", via: "none", detail: UNKNOWN_DETAIL };
  }
}

/**
 * Whether a device file exists, without prompting (see
 * {@linkcode checkDevice}).
 *
 * @param path The path.
 * @returns What was found.
 */
export function presence(path: string): Presence {
  return checkDevice(path).state;
}

/**
 * The domain this Linux system runs in when it can tell: asked of Xen
 * through privcmd where `--allow-ffi` is granted (works in any domain, as
 * root), else `control_d` in /proc/xen/capabilities (readable only with
 * `--allow-all`) gives 0, else `undefined`.
 *
 * @returns The domain, or `undefined`.
 */
export function linuxDomain(): number | undefined {
  if (ffiGranted() && presence(PRIVCMD_DEVICE) === "present") {
    try {
      using privcmd = new PrivcmdHypercalls();
      return domainId(privcmd);
    } catch {
      // Not permitted or refused: try the xenfs file.
    }
  }
  try {
    const text = Deno.readTextFileSync(XEN_CAPABILITIES);
    return text.includes("control_d") ? 0 : undefined;
  } catch {
    // Absent, or NotCapable (Deno wants --allow-all for /proc).
    return undefined;
  }
}
