// Choosing and opening a backend. `auto` means `linux` when /dev/xen/evtchn
// exists, else `memory`. Importing the linux modules needs no permission;
// libc is opened only when a check or the chosen backend calls it, and only
// where --allow-ffi is granted, so the memory backend never needs it.
//
// On the memory backend the CLI acts for dom0 of a modelled host that also
// runs a domU 1 with Linux, whose handle offers one unbound port to dom0 (the
// way a frontend offers a port to its backend), so that `bind interdomain`
// and `notify --remote` have a peer.

import {
  type EventChannelHandle,
  MemoryXen,
  type MemoryXenOptions,
} from "../mod.ts";
import type { BackendChoice } from "./_args.ts";
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

/** The domU the memory backend creates as a peer. */
export const MEMORY_PEER_DOMAIN = 1;

/** The modelled host behind the memory backend. */
export interface MemoryHost {
  /** The model. */
  xen: MemoryXen;
  /** The peer domain (domU 1). */
  peerDomain: number;
  /** A handle in the peer domain. */
  peer: EventChannelHandle;
  /** The unbound port the peer offers to dom0. */
  offeredPort: number;
}

/** An opened backend: handles come from here and close with it. */
export interface Backend extends AsyncDisposable {
  /** The backend in use. */
  readonly name: "memory" | "linux";
  /** What was asked for. */
  readonly requested: BackendChoice;
  /** Why this one, in words. */
  readonly why: string;
  /**
   * The domain the handles act in, when known (0 on memory). On linux it is
   * asked of Xen on first use (one privcmd probe), so commands that never
   * show it never open privcmd.
   */
  readonly domain: number | undefined;
  /** The modelled host (memory only). */
  readonly memory: MemoryHost | undefined;
  /** Opens a handle; it is closed with the backend. */
  open(): Promise<EventChannelHandle>;
  /** Closes every handle opened here. */
  close(): Promise<void>;
}

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

/**
 * Decides which backend `choice` means here.
 *
 * @param choice What was asked for.
 * @returns The backend and why.
 */
export function resolveBackend(
  choice: BackendChoice,
): { name: "memory" | "linux"; why: string } {
  if (choice !== "auto") return { name: choice, why: "asked for" };
  switch (presence(EVTCHN_DEVICE)) {
    case "present":
      return { name: "linux", why: `${EVTCHN_DEVICE} exists` };
    case "absent":
      return { name: "memory", why: `${EVTCHN_DEVICE} does not exist` };
    case "no-access":
      return {
        name: "linux",
        why: `${EVTCHN_DEVICE} exists (but this process may not open it)`,
      };
    default:
      return {
        name: "memory",
        why: `cannot look for ${EVTCHN_DEVICE} without --allow-ffi`,
      };
  }
}

/**
 * Opens the backend `choice` means.
 *
 * @param choice What was asked for.
 * @param options Memory host options.
 * @returns The backend; dispose of it to close its handles.
 */
export function openBackend(
  choice: BackendChoice,
  options: MemoryXenOptions = {},
): Backend {
  const { name, why } = resolveBackend(choice);
  const handles: EventChannelHandle[] = [];
  let memory: MemoryHost | undefined;
  if (name === "memory") {
    const xen = new MemoryXen(options);
    xen.createDomain({ domain: MEMORY_PEER_DOMAIN });
    const peer = xen.open(MEMORY_PEER_DOMAIN);
    handles.push(peer);
    memory = {
      xen,
      peerDomain: MEMORY_PEER_DOMAIN,
      peer,
      offeredPort: peer.bindUnboundPort(0),
    };
  }
  let domain: number | undefined;
  let domainKnown = false;
  const close = async (): Promise<void> => {
    await Promise.all(handles.map((handle) => handle.close()));
  };
  return {
    name,
    requested: choice,
    why,
    get domain(): number | undefined {
      if (!domainKnown) {
        domain = name === "memory" ? 0 : linuxDomain();
        domainKnown = true;
      }
      return domain;
    },
    memory,
    async open(): Promise<EventChannelHandle> {
      let handle: EventChannelHandle;
      if (memory !== undefined) {
        handle = memory.xen.open(0);
      } else {
        const linux = await import("../backends/linux/mod.ts");
        handle = linux.openLinuxHandle();
      }
      handles.push(handle);
      return handle;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/**
 * Words for the domain a backend acts in.
 *
 * @param backend The backend.
 * @returns Such as `dom0` or `this domain`.
 */
export function domainLabel(backend: Backend): string {
  return backend.domain === undefined ? "this domain" : `dom${backend.domain}`;
}
