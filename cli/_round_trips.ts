// The measurement behind `evtchn ping`: bounce one event between two
// handles over a connected interdomain channel and time each round trip.
// It is event-channel work, not command-line handling, so it lives apart
// from ping.ts (which parses, binds, and prints what this measures) and from
// _ping_stats.ts (which only does arithmetic on the times).

import type { EventChannelHandle } from "../mod.ts";
import { macrotask, Pacer } from "../util/pace.ts";
import { Latencies } from "./_ping_stats.ts";

/**
 * Consumes the event Xen marks pending on a new interdomain port at bind,
 * so that it does not count as the first echo; gives up after `ms` (then
 * only unmasks `port`) or when `interrupted` aborts.
 *
 * @param handle The handle that bound interdomain.
 * @param port Its new port.
 * @param ms How long to wait for the pending mark, in milliseconds.
 * @param interrupted Aborted on Ctrl-C.
 * @returns When the port is idle and unmasked.
 */
export async function settle(
  handle: EventChannelHandle,
  port: number,
  ms: number,
  interrupted: AbortSignal,
): Promise<void> {
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), ms);
  const signal = AbortSignal.any([stop.signal, interrupted]);
  try {
    const seen = await handle.next({ signal });
    handle.unmask(seen);
  } catch (error) {
    if (!signal.aborted) throw error;
    handle.unmask(port);
  } finally {
    clearTimeout(timer);
  }
}

/** The two ends of the channel, and when to stop. */
export interface BounceOptions {
  /** Handle A, which notifies first. */
  a: EventChannelHandle;
  /** A's port. */
  aPort: number;
  /** Handle B, which echoes. */
  b: EventChannelHandle;
  /** B's port, connected to A's. */
  bPort: number;
  /** Round trips to make (at most `MAX_COUNT` of _args.ts). */
  count: number;
  /** Aborting it ends the loop early, keeping what was measured. */
  signal: AbortSignal;
  /**
   * Called before round trip `done` (0-based) at most about 100 times in
   * all (every `count / 100` round trips), to draw progress.
   */
  progress?: (done: number) => void;
}

/** What the loop measured. */
export interface Bounced {
  /** Round trips completed. */
  done: number;
  /** Wall time of the loop, seconds. */
  seconds: number;
  /** Their latencies. */
  latencies: Latencies;
}

/**
 * Bounces an event `count` times: A notifies, B waits, unmasks and notifies
 * back, A waits and unmasks; each round trip is timed on its own.
 *
 * @param options The channel, the count and the stop signal.
 * @returns The round trips completed, the time they took, their latencies.
 *
 * @example
 * ```ts
 * import { bounce, settle } from "./_round_trips.ts";
 * import { DOMID_SELF, MemoryXen } from "../mod.ts";
 * import assert from "node:assert/strict";
 * const xen = new MemoryXen();
 * await using a = xen.open(0);
 * await using b = xen.open(0);
 * const aPort = a.bindUnboundPort(DOMID_SELF);
 * const bPort = b.bindInterdomain(DOMID_SELF, aPort);
 * const signal = new AbortController().signal;
 * await settle(b, bPort, 1000, signal);
 * const result = await bounce({ a, aPort, b, bPort, count: 5, signal });
 * assert.equal(result.done, 5);
 * assert.equal(result.latencies.count, 5);
 * ```
 */
export async function bounce(options: BounceOptions): Promise<Bounced> {
  const { a, aPort, b, bPort, count, signal, progress } = options;
  const latencies = new Latencies();
  const step = Math.max(1, Math.floor(count / 100));
  // On the memory backend every wait below settles at once: without a
  // macrotask now and then, SIGINT would never be delivered.
  const pacer = new Pacer();
  let done = 0;
  const began = performance.now();
  try {
    // poll() first: next({ signal }) builds an AbortSignal.any per call,
    // which costs more than a memory-backend round trip.
    for (; done < count && !signal.aborted; done++) {
      if (pacer.due()) {
        await macrotask();
        if (signal.aborted) break;
      }
      const start = performance.now();
      a.notify(aPort);
      b.unmask(b.poll() ?? await b.next({ signal }));
      b.notify(bPort);
      a.unmask(a.poll() ?? await a.next({ signal }));
      latencies.add((performance.now() - start) * 1000);
      if (progress !== undefined && done % step === 0) progress(done);
    }
  } catch (error) {
    if (!signal.aborted) throw error;
  }
  return { done, seconds: (performance.now() - began) / 1000, latencies };
}
