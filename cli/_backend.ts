// Choosing and opening a backend. `auto` means `linux` when /dev/xen/evtchn
// exists, else `memory`. The linux backend is imported only when chosen, so
// the memory backend never needs --allow-ffi.
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

/** Where Linux puts the event-channel device. */
export const EVTCHN_DEVICE = "/dev/xen/evtchn";
/** Where Linux puts the hypercall device. */
export const PRIVCMD_DEVICE = "/dev/xen/privcmd";
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
  /** The domain the handles act in, when known (0 on memory). */
  readonly domain: number | undefined;
  /** The modelled host (memory only). */
  readonly memory: MemoryHost | undefined;
  /** Opens a handle; it is closed with the backend. */
  open(): Promise<EventChannelHandle>;
  /** Closes every handle opened here. */
  close(): Promise<void>;
}

/** What a path check found: present, absent, or unknown without permission. */
export type Presence = "present" | "absent" | "unknown";

/**
 * Whether a path exists, without prompting: `unknown` when `--allow-read`
 * does not cover it.
 *
 * @param path The path.
 * @returns What was found.
 */
export function presence(path: string): Presence {
  if (Deno.permissions.querySync({ name: "read", path }).state !== "granted") {
    return "unknown";
  }
  try {
    Deno.statSync(path);
    return "present";
  } catch {
    return "absent";
  }
}

/**
 * The domain this Linux system runs in when it can tell: 0 in dom0
 * (`control_d` in /proc/xen/capabilities), else `undefined`.
 *
 * @returns The domain, or `undefined`.
 */
export function linuxDomain(): number | undefined {
  if (presence(XEN_CAPABILITIES) !== "present") return undefined;
  try {
    const text = Deno.readTextFileSync(XEN_CAPABILITIES);
    return text.includes("control_d") ? 0 : undefined;
  } catch {
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
    default:
      return {
        name: "memory",
        why: `cannot look for ${EVTCHN_DEVICE} without --allow-read`,
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
  const close = async (): Promise<void> => {
    await Promise.all(handles.map((handle) => handle.close()));
  };
  return {
    name,
    requested: choice,
    why,
    domain: name === "memory" ? 0 : linuxDomain(),
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
