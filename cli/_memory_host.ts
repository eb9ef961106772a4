// The modelled host the CLI acts in on the memory backend: dom0 (where the
// CLI's handles live) and a domU 1 running Linux, whose handle offers one
// unbound port to dom0, the way a frontend offers a port to its backend, so
// that `bind interdomain` and `notify --remote` have a peer; and the
// simulated sender `watch --simulate` drives from that domU. Nothing on a
// real host corresponds to it, so it is kept apart from choosing a backend
// (_backend.ts) and from looking at a real one (_linux_host.ts).

import {
  type EventChannelHandle,
  MemoryXen,
  type MemoryXenOptions,
} from "../mod.ts";

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

/**
 * Builds the modelled host: a model, domU {@linkcode MEMORY_PEER_DOMAIN}
 * with a handle, and the port that handle offers to dom0. The caller closes
 * `peer` (the backend does, with its own handles).
 *
 * @param options Options of the model.
 * @returns The host.
 *
 * @example
 * ```ts
 * import { createMemoryHost } from "./_memory_host.ts";
 * import assert from "node:assert/strict";
 * const host = createMemoryHost();
 * await using dom0 = host.xen.open(0);
 * const port = dom0.bindInterdomain(host.peerDomain, host.offeredPort);
 * host.peer.notify(host.offeredPort);
 * assert.equal(dom0.poll(), port);
 * await host.peer.close();
 * ```
 */
export function createMemoryHost(options: MemoryXenOptions = {}): MemoryHost {
  const xen = new MemoryXen(options);
  xen.createDomain({ domain: MEMORY_PEER_DOMAIN });
  const peer = xen.open(MEMORY_PEER_DOMAIN);
  return {
    xen,
    peerDomain: MEMORY_PEER_DOMAIN,
    peer,
    // dom0 (domain 0) is where the CLI's own handles are opened.
    offeredPort: peer.bindUnboundPort(0),
  };
}

/** A channel from the peer domain to a dom0 handle, and its sender. */
export interface SimulatedPeer {
  /** The dom0 port, offered to the peer domain and connected by it. */
  port: number;
  /** The peer domain's end of the channel. */
  peerPort: number;
  /**
   * Notifies `peerPort` `count` times, waiting `intervalMs` before each,
   * until `signal` aborts (a wait in progress ends at once).
   *
   * @param count How many events to send.
   * @param intervalMs Milliseconds before each event.
   * @param signal Stops sending.
   * @returns When the last event is sent or `signal` aborted.
   */
  send(count: number, intervalMs: number, signal: AbortSignal): Promise<void>;
}

/**
 * Has the peer domain connect to a port that `handle` (in dom0) offers it:
 * dom0 binds an unbound port for the peer, then the peer binds interdomain
 * to it (Xen marks the peer's new port pending, not dom0's).
 *
 * @param host The modelled host.
 * @param handle A dom0 handle of `host`.
 * @returns Both ports, and the sender.
 *
 * @example
 * ```ts
 * import { connectSimulatedPeer, createMemoryHost } from "./_memory_host.ts";
 * import assert from "node:assert/strict";
 * const host = createMemoryHost();
 * await using dom0 = host.xen.open(0);
 * const simulated = connectSimulatedPeer(host, dom0);
 * assert.equal(dom0.poll(), undefined);
 * await simulated.send(1, 0, new AbortController().signal);
 * assert.equal(dom0.poll(), simulated.port);
 * await host.peer.close();
 * ```
 */
export function connectSimulatedPeer(
  host: MemoryHost,
  handle: EventChannelHandle,
): SimulatedPeer {
  const port = handle.bindUnboundPort(host.peerDomain);
  const peerPort = host.peer.bindInterdomain(0, port);
  return {
    port,
    peerPort,
    async send(count, intervalMs, signal): Promise<void> {
      for (let i = 0; i < count && !signal.aborted; i++) {
        await delay(intervalMs, signal);
        if (!signal.aborted) host.peer.notify(peerPort);
      }
    },
  };
}

/** Waits `ms`, or less if `signal` aborts first; never rejects. */
function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
