/**
 * Peer liveness for interdomain channels: learn that the remote end of a
 * port went away, the way Qubes' agents and xenstored do, on either
 * backend. Xen says nothing on the port itself when a peer domain dies: its
 * `evtchn_destroy` just leaves each of the peer's interdomain ports unbound
 * (`evtchn_close`), then `domain_kill` raises VIRQ_DOM_EXC in the control
 * domain. So a {@linkcode PeerWatch} binds VIRQ_DOM_EXC on a handle and, on
 * each of its events, asks `EVTCHNOP_status` about every watched port: one
 * that is no longer interdomain with its peer has lost it. Checking on a
 * timer as well ({@linkcode PeerWatch.check}) also catches a peer that only
 * closed its end, which raises no VIRQ.
 *
 * @example A domU destroyed under an open channel
 * ```ts
 * import { MemoryXen, PeerWatch } from "./mod.ts";
 * import assert from "node:assert/strict";
 * const xen = new MemoryXen();
 * xen.createDomain({ domain: 1 });
 * await using dom0 = xen.open(0);
 * await using domU = xen.open(1);
 * using watch = new PeerWatch(dom0, xen.hypercalls(0));
 * const offered = dom0.bindUnboundPort(1);
 * const port = domU.bindInterdomain(0, offered);
 * watch.watch(offered, 1);
 * assert.deepEqual(watch.check(), []); // connected, alive
 * xen.destroyDomain(1);
 * const event = await dom0.next();
 * assert.equal(event, watch.virqPort);
 * assert.deepEqual(watch.handle(event), [{ port: offered, remoteDomain: 1, status: "unbound" }]);
 * assert.ok(port > 0);
 * ```
 *
 * @module
 */

import type { EventChannelHandle } from "./handle.ts";
import type { ChannelStatusName } from "./xen/event_channel.ts";
import type { Dom0Hypercalls } from "./hypercalls.ts";
import { EventChannelError } from "./errors.ts";
import { VIRQ } from "./xen/virq.ts";
import { checkUint } from "./util/validate.ts";
import { DOMID_MAX } from "./xen/domid.ts";

/** A watched port whose remote end went away. */
export interface PeerGone {
  /** The local port (now unbound or closed). */
  port: number;
  /** The peer domain it was connected to. */
  remoteDomain: number;
  /** What `EVTCHNOP_status` says of the port now. */
  status: ChannelStatusName;
}

/** Options for {@linkcode PeerWatch}. */
export interface PeerWatchOptions {
  /** The handle's domain, as `EVTCHNOP_status` names it. Default 0 (dom0). */
  localDomain?: number;
}

/** Most ports one watch holds (a bound on `check`'s work per event). */
export const PEER_WATCH_MAX_PORTS = 65_536;

/**
 * Watches interdomain ports of a control domain for peers that go away.
 * Binds VIRQ_DOM_EXC on the handle at construction (a global VIRQ: only one
 * binder in the domain, so `EEXIST` where xenstored or another watcher holds
 * it; then call {@linkcode PeerWatch.check} on a timer instead, as Qubes
 * does every 10 s).
 *
 * @example Without the VIRQ: check on a timer
 * ```ts
 * import { MemoryXen, PeerWatch } from "./mod.ts";
 * import assert from "node:assert/strict";
 * const xen = new MemoryXen();
 * xen.createDomain({ domain: 2 });
 * using h = xen.open(0);
 * using peer = xen.open(2);
 * using watch = new PeerWatch(h, xen.hypercalls(0));
 * const port = h.bindUnboundPort(2);
 * watch.watch(port, 2);
 * peer.bindInterdomain(0, port);
 * assert.deepEqual(watch.check(), []); // seen connected
 * peer.close(); // the peer closed its end: no VIRQ, but status tells
 * assert.deepEqual(watch.check(), [{ port, remoteDomain: 2, status: "unbound" }]);
 * assert.deepEqual(watch.check(), []); // reported once
 * ```
 */
export class PeerWatch implements Disposable {
  /** The port VIRQ_DOM_EXC arrives on. */
  readonly virqPort: number;
  readonly #handle: EventChannelHandle;
  readonly #hypercalls: Dom0Hypercalls;
  readonly #local: number;
  /** Watched port → its peer domain. */
  readonly #ports = new Map<number, number>();
  /** Watched ports not yet seen connected: unbound is not yet a loss. */
  readonly #offered = new Set<number>();
  #closed = false;

  /**
   * Binds VIRQ_DOM_EXC on `handle`.
   *
   * @param handle A handle in the control domain; its events include the
   * VIRQ's, which the program passes to {@linkcode PeerWatch.handle}.
   * @param hypercalls The control domain's hypercalls (`MemoryXen`'s
   * `hypercalls(0)`, or `openPrivcmd()` on a real host).
   * @param options The handle's domain.
   * @throws {EventChannelError} `EEXIST` (op `bind_virq`) when VIRQ_DOM_EXC
   * is bound already in the domain; `EINVAL` (op `peer_watch`) for a bad
   * `localDomain`.
   */
  constructor(
    handle: EventChannelHandle,
    hypercalls: Dom0Hypercalls,
    options: PeerWatchOptions = {},
  ) {
    this.#local = checkUint(
      "peer_watch",
      "localDomain",
      options.localDomain ?? 0,
      DOMID_MAX,
    );
    this.#handle = handle;
    this.#hypercalls = hypercalls;
    this.virqPort = handle.bindVirq(VIRQ.DOM_EXC);
  }

  /** Ports watched, ascending. */
  get ports(): number[] {
    return [...this.#ports.keys()].sort((a, b) => a - b);
  }

  /**
   * Watches a local interdomain port, or one offered and not yet bound
   * (unbound now: it counts as alive until a check has seen it connected,
   * since `EVTCHNOP_status` tells "not yet bound" and "bound, then left"
   * apart only by what was seen in between).
   *
   * @param port The local port.
   * @param remoteDomain The peer domain it is (or will be) connected to.
   * @throws {EventChannelError} `EINVAL` (op `peer_watch`) for a bad
   * argument or beyond {@linkcode PEER_WATCH_MAX_PORTS}; `EBADF` once
   * closed; what `status` throws.
   */
  watch(port: number, remoteDomain: number): void {
    this.#open();
    checkUint("peer_watch", "port", port, 0xffff_ffff);
    checkUint("peer_watch", "remoteDomain", remoteDomain, DOMID_MAX);
    if (!this.#ports.has(port) && this.#ports.size >= PEER_WATCH_MAX_PORTS) {
      throw new EventChannelError("peer_watch", "EINVAL", {
        argument: "port",
        value: port,
        detail: `a watch holds at most ${PEER_WATCH_MAX_PORTS} ports`,
      });
    }
    const s = this.#hypercalls.status(this.#local, port);
    if (s.status === "unbound") this.#offered.add(port);
    else this.#offered.delete(port);
    this.#ports.set(port, remoteDomain);
  }

  /**
   * Stops watching a port.
   *
   * @param port The port.
   */
  unwatch(port: number): void {
    this.#ports.delete(port);
    this.#offered.delete(port);
  }

  /**
   * Asks `EVTCHNOP_status` about every watched port and returns those
   * whose peer went away (no longer interdomain with it; an offered port
   * still unbound for its peer counts as alive). Each is reported once:
   * it is no longer watched afterwards.
   *
   * @returns The ports lost, ascending.
   * @throws {EventChannelError} What `status` throws (`EBADF` once closed).
   */
  check(): PeerGone[] {
    this.#open();
    const gone: PeerGone[] = [];
    for (const port of this.ports) {
      const remoteDomain = this.#ports.get(port)!;
      const s = this.#hypercalls.status(this.#local, port);
      const alive = "remoteDomain" in s && s.remoteDomain === remoteDomain &&
        (s.status === "interdomain" || (s.status === "unbound" &&
          this.#offered.has(port)));
      if (alive) {
        if (s.status === "interdomain") this.#offered.delete(port);
        continue;
      }
      this.#ports.delete(port);
      this.#offered.delete(port);
      gone.push({ port, remoteDomain, status: s.status });
    }
    return gone;
  }

  /**
   * Handles an event of the handle: for VIRQ_DOM_EXC, unmasks it and checks
   * the watched ports; any other port is not the watch's.
   *
   * @param port A port the handle reported.
   * @returns The ports lost (for VIRQ_DOM_EXC), else an empty list.
   */
  handle(port: number): PeerGone[] {
    if (port !== this.virqPort || this.#closed) return [];
    this.#handle.unmask(port);
    return this.check();
  }

  /** Unbinds VIRQ_DOM_EXC (unless the handle is closed already). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.#handle.closed) this.#handle.unbind(this.virqPort);
  }

  /** Same as {@linkcode PeerWatch.close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  #open(): void {
    if (this.#closed) {
      throw new EventChannelError("peer_watch", "EBADF", {
        detail: "the watch is closed",
      });
    }
  }
}
