// Choosing and opening a backend. `auto` means `linux` when /dev/xen/evtchn
// exists, else `memory`. Importing the linux modules needs no permission;
// libc is opened only when a check or the chosen backend calls it, and only
// where --allow-ffi is granted, so the memory backend never needs it. What
// the checks look at is in _linux_host.ts, the modelled host the memory
// backend acts in is in _memory_host.ts: this file only decides between them
// and hands out handles.

import type { EventChannelHandle, MemoryXenOptions } from "../mod.ts";
import type { BackendChoice } from "./_args.ts";
import { EVTCHN_DEVICE, linuxDomain, presence } from "./_linux_host.ts";
import { createMemoryHost, type MemoryHost } from "./_memory_host.ts";

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
    memory = createMemoryHost(options);
    handles.push(memory.peer);
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
