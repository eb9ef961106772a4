/**
 * The guest's side of the FIFO ABI: how Linux 6.1's
 * `drivers/xen/events/events_fifo.c` takes the READY word and walks each
 * queue from the highest priority, unlinking one event at a time.
 *
 * @module
 */

import type { FifoAbi } from "../hypervisor/event_fifo.ts";
import {
  EVTCHN_FIFO_BIT,
  EVTCHN_FIFO_EVENT_WORDS_PER_PAGE,
  EVTCHN_FIFO_LINK_MASK,
  FIFO_PRIORITY,
} from "../../../xen/event_channel.ts";

const P = 1 << EVTCHN_FIFO_BIT.PENDING;
const M = 1 << EVTCHN_FIFO_BIT.MASKED;
const L = 1 << EVTCHN_FIFO_BIT.LINKED;
/** Queues per vCPU, one per priority (`EVTCHN_FIFO_MAX_QUEUES`). */
const QUEUES = FIFO_PRIORITY.MIN + 1;
/** A port's word index in its page, and its page: port & WORD, port >>> SHIFT. */
const WORD = EVTCHN_FIFO_EVENT_WORDS_PER_PAGE - 1;
const SHIFT = 31 - Math.clz32(EVTCHN_FIFO_EVENT_WORDS_PER_PAGE);

/**
 * Linux's FIFO upcall (`__evtchn_fifo_handle_events`, `consume_one_event`):
 * exchange READY with 0; while any bit is set take the lowest (highest
 * priority), take the queue's head (Linux's own copy, or HEAD from the
 * control block when it reached the tail last time), clear LINKED and the
 * link, and hand the port on if it is pending and unmasked.
 *
 * @example
 * ```ts
 * import { FifoAbi } from "../hypervisor/event_fifo.ts";
 * import { FifoConsumer } from "./events_fifo.ts";
 * import assert from "node:assert/strict";
 * const fifo = new FifoAbi(1, () => {});
 * fifo.mapControlBlock(0, new Uint32Array(18));
 * fifo.addPage(new Uint32Array(1024));
 * for (const port of [9, 3, 5]) fifo.setPending(port, 0);
 * fifo.priority[5] = 0; // only later queueing is affected
 * const seen: number[] = [];
 * new FifoConsumer(fifo, 1).handleEvents(0, (port) => {
 *   fifo.clearPending(port);
 *   seen.push(port);
 * });
 * assert.deepEqual(seen, [9, 3, 5]); // one queue, in arrival order
 * ```
 */
export class FifoConsumer {
  #fifo: FifoAbi;
  #heads: Uint32Array;

  /**
   * A consumer for one guest, with Linux's per-CPU queue heads.
   *
   * @param fifo The domain's FIFO state.
   * @param vcpus The domain's vCPUs.
   */
  constructor(fifo: FifoAbi, vcpus: number) {
    this.#fifo = fifo;
    this.#heads = new Uint32Array(vcpus * QUEUES);
  }

  /**
   * One upcall on `vcpu`.
   *
   * @param vcpu The vCPU.
   * @param handle Called per pending, unmasked port; it must clear P.
   */
  handleEvents(vcpu: number, handle: (port: number) => void): void {
    const block = this.#fifo.controlBlock(vcpu);
    if (block === undefined) return;
    let ready = block[0];
    block[0] = 0;
    while (ready !== 0) {
      ready = this.#consumeOne(vcpu, block, ready, handle) | block[0];
      block[0] = 0;
    }
  }

  /**
   * `consume_one_event` on the highest-priority ready queue; returns the
   * READY bits still to visit.
   */
  #consumeOne(
    vcpu: number,
    block: Uint32Array,
    ready: number,
    handle: (port: number) => void,
  ): number {
    const priority = 31 - Math.clz32(ready & -ready);
    const q = vcpu * QUEUES + priority;
    const heads = this.#heads;
    const port = heads[q] !== 0 ? heads[q] : block[2 + priority];
    const page = this.#fifo.pages[port >>> SHIFT];
    const i = port & WORD;
    const w = page[i];
    const cleared = w & ~(L | EVTCHN_FIFO_LINK_MASK); // clear_linked
    page[i] = cleared;
    const next = w & EVTCHN_FIFO_LINK_MASK;
    if ((cleared & (P | M)) === P) handle(port);
    heads[q] = next; // after the handler, as Linux does
    return next === 0 ? ready & ~(1 << priority) : ready;
  }
}
