/**
 * The FIFO event ABI, following Xen 4.17's `xen/common/event_fifo.c`: event
 * words with P/M/L/B bits and a link in guest pages, per-vCPU control blocks
 * with a READY bitmap and 16 queue heads, Xen's per-queue tails, and the
 * FIFO control ops (`EVTCHNOP_init_control`, `EVTCHNOP_expand_array`, and
 * the FIFO part of `EVTCHNOP_set_priority`).
 *
 * @module
 */

import { EventChannelError } from "../../../errors.ts";
import {
  EVTCHN_FIFO_BIT,
  EVTCHN_FIFO_EVENT_WORDS_PER_PAGE,
  EVTCHN_FIFO_LINK_BITS,
  EVTCHN_FIFO_LINK_MASK,
  EVTCHN_FIFO_NR_CHANNELS,
  FIFO_PRIORITY,
} from "../../../xen/event_channel.ts";
import { PAGE_SIZE } from "../../../xen/page.ts";
import type { Domain } from "./domain.ts";
import type { EventAbi } from "./event_abi.ts";
import * as tables from "./_tables.ts";

// The port table's keys as this module's own constants, which V8 folds
// into optimized code (imported bindings are live: reloaded and checked at
// every use, which more than doubles the cost of a table access).
const NOTIFY_VCPU: typeof tables.NOTIFY_VCPU = tables.NOTIFY_VCPU;

/** Pages of the largest event array (`EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES`). */
export const MAX_EVENT_ARRAY_PAGES = EVTCHN_FIFO_NR_CHANNELS /
  EVTCHN_FIFO_EVENT_WORDS_PER_PAGE;
/** `sizeof(struct evtchn_fifo_control_block)`: ready, rsvd, head[16]. */
export const CONTROL_BLOCK_SIZE = 72;
/** Queues per vCPU, one per priority. */
const QUEUES = FIFO_PRIORITY.MIN + 1;
/** A port's word index in its page, and its page: port & WORD, port >>> SHIFT. */
const WORD = EVTCHN_FIFO_EVENT_WORDS_PER_PAGE - 1;
const SHIFT = 31 - Math.clz32(EVTCHN_FIFO_EVENT_WORDS_PER_PAGE);

const P = 1 << EVTCHN_FIFO_BIT.PENDING;
const M = 1 << EVTCHN_FIFO_BIT.MASKED;
const L = 1 << EVTCHN_FIFO_BIT.LINKED;
const B = 1 << EVTCHN_FIFO_BIT.BUSY;

/**
 * A domain's FIFO state. Pages are the guest's own memory: the event array
 * pages the guest added with `expand_array`, and each vCPU's control block
 * (a `Uint32Array` of 18 words inside a guest page).
 *
 * @example
 * ```ts
 * import { FifoAbi } from "./event_fifo.ts";
 * import assert from "node:assert/strict";
 * const kicked: number[] = [];
 * const fifo = new FifoAbi(1, (v) => kicked.push(v));
 * fifo.mapControlBlock(0, new Uint32Array(18));
 * fifo.addPage(new Uint32Array(1024));
 * fifo.initPort(5); // priority 7
 * fifo.setPending(5, 0);
 * assert.equal(fifo.controlBlock(0)!.at(2 + 7), 5); // HEAD[7] = port 5
 * assert.deepEqual(kicked, [0]);
 * ```
 */
export class FifoAbi implements EventAbi {
  readonly name = "fifo" as const;
  readonly maxChannels: number = EVTCHN_FIFO_NR_CHANNELS;
  /** Event array pages, 1024 words each. */
  readonly pages: Uint32Array[] = [];
  /** `num_evtchns`: ports with an event word. */
  numEvtchns = 0;
  /** Per port: priority (`evtchn->priority`). */
  readonly priority: Uint8Array = new Uint8Array(EVTCHN_FIFO_NR_CHANNELS);
  /** Per port: an event recorded before its word existed (`evtchn->pending`). */
  readonly savedPending: Uint8Array = new Uint8Array(EVTCHN_FIFO_NR_CHANNELS);
  /** Per port: the queue it was last linked on (`fifo_lastq`): vcpu<<8|prio. */
  readonly lastQueue: Uint32Array = new Uint32Array(EVTCHN_FIFO_NR_CHANNELS);
  #controlBlocks: (Uint32Array | undefined)[];
  /** Xen's private tail of each queue, 16 per vCPU. */
  readonly tails: Uint32Array;
  #markEventsPending: (vcpu: number) => void;

  /**
   * FIFO state for every vCPU, no control block mapped, no event array.
   *
   * @param vcpus The domain's vCPUs.
   * @param markEventsPending Xen's `vcpu_mark_events_pending`.
   */
  constructor(vcpus: number, markEventsPending: (vcpu: number) => void) {
    this.#controlBlocks = new Array(vcpus);
    this.tails = new Uint32Array(vcpus * QUEUES);
    this.#markEventsPending = markEventsPending;
  }

  /**
   * Maps a vCPU's control block (`map_control_block`).
   *
   * @param vcpu The vCPU.
   * @param block 18 words: READY, reserved, HEAD[16].
   * @returns 0, or -EINVAL if that vCPU already has one.
   */
  mapControlBlock(vcpu: number, block: Uint32Array): number {
    if (this.#controlBlocks[vcpu] !== undefined) return -22;
    this.#controlBlocks[vcpu] = block;
    return 0;
  }

  /**
   * A vCPU's control block, if mapped.
   *
   * @param vcpu The vCPU.
   * @returns The 18 words.
   */
  controlBlock(vcpu: number): Uint32Array | undefined {
    return this.#controlBlocks[vcpu];
  }

  /**
   * Adds an event array page (`add_page_to_event_array`); returns the first
   * port it covers so the caller can replay saved events, or -ENOSPC.
   *
   * @param page 1024 event words of guest memory.
   * @returns The first new port, or -28.
   */
  addPage(page: Uint32Array): number {
    if (this.pages.length >= MAX_EVENT_ARRAY_PAGES) return -28;
    const first = this.numEvtchns;
    this.pages.push(page);
    this.numEvtchns += EVTCHN_FIFO_EVENT_WORDS_PER_PAGE;
    return first;
  }

  #wordPage(port: number): Uint32Array | undefined {
    return port < this.numEvtchns ? this.pages[port >>> SHIFT] : undefined;
  }

  /**
   * The event word of a port, or `undefined` beyond the event array.
   *
   * @param port The port.
   * @returns The word.
   */
  word(port: number): number | undefined {
    return this.#wordPage(port)?.[port & WORD];
  }

  /** `evtchn_fifo_set_pending`. */
  setPending(port: number, vcpu: number): void {
    const page = this.#wordPage(port);
    if (page === undefined) {
      this.savedPending[port] = 1;
      return;
    }
    const i = port & WORD;
    const block = this.#controlBlocks[vcpu];
    if (block === undefined) return; // no control block: the event is lost
    const priority = this.priority[port];
    const q = vcpu * QUEUES + priority;
    const last = this.lastQueue[port];
    let oldQ = (last >>> 8) * QUEUES + (last & 0xff);
    let linked = true;
    const w = page[i];
    page[i] = w | P;
    if (!(w & M) && !(w & L)) {
      page[i] |= L;
      if (this.tails[oldQ] === port) this.tails[oldQ] = 0;
      if (oldQ !== q) {
        this.lastQueue[port] = (vcpu << 8) | priority;
        oldQ = q;
      }
      linked = false;
      const tail = this.tails[q];
      if (tail !== 0) linked = this.#setLink(tail, port);
      if (!linked) block[2 + priority] = port; // HEAD
      this.tails[q] = port;
    }
    if (!linked) {
      const ready = block[0];
      block[0] = ready | (1 << priority);
      if (!(ready & (1 << priority))) this.#markEventsPending(vcpu);
    }
  }

  /** `evtchn_fifo_set_link`: link the tail to `port` if it is still linked. */
  #setLink(tail: number, port: number): boolean {
    const page = this.#wordPage(tail)!;
    const i = tail & WORD;
    const w = page[i];
    if (!(w & L)) return false;
    page[i] = (w & ~(B | EVTCHN_FIFO_LINK_MASK)) | port;
    return true;
  }

  /** `evtchn_fifo_clear_pending`: P only; L stays until the guest unlinks. */
  clearPending(port: number): void {
    const page = this.#wordPage(port);
    if (page !== undefined) page[port & WORD] &= ~P;
  }

  /** `evtchn_fifo_unmask`: clear M, re-link if pending. */
  unmask(port: number, vcpu: number): void {
    const page = this.#wordPage(port);
    if (page === undefined) return;
    page[port & WORD] &= ~M;
    if (page[port & WORD] & P) this.setPending(port, vcpu);
  }

  /** The guest masks a port: sets M in its event word. */
  mask(port: number): void {
    const page = this.#wordPage(port);
    if (page !== undefined) page[port & WORD] |= M;
  }

  /** `evtchn_fifo_is_pending`. */
  isPending(port: number): boolean {
    const w = this.word(port);
    return w !== undefined && (w & P) !== 0;
  }

  /** `evtchn_fifo_is_masked`: no word counts as masked. */
  isMasked(port: number): boolean {
    const w = this.word(port);
    return w === undefined || (w & M) !== 0;
  }

  /** `evtchn_fifo_is_busy`: still linked in a queue. */
  isBusy(port: number): boolean {
    const w = this.word(port);
    return w !== undefined && (w & L) !== 0;
  }

  /** `evtchn_fifo_init`: every bind resets the priority to the default. */
  initPort(port: number): void {
    this.priority[port] = FIFO_PRIORITY.DEFAULT;
  }
}

/**
 * `evtchn_fifo_init_control` for arguments of their C types: checks the
 * vCPU (`ENOENT`) and the block's place in the page (`EINVAL`), maps the
 * vCPU's control block, and on the first one switches the domain to FIFO
 * (`setup_ports`: 2-level events still pending are kept to be replayed when
 * their event word appears, every priority becomes the default).
 *
 * @param d The calling domain.
 * @param gfn The guest frame holding the block.
 * @param offset The block's byte offset in it.
 * @param vcpu The vCPU.
 * @returns `EVTCHN_FIFO_LINK_BITS`.
 * @throws {EventChannelError} `ENOENT`, `EINVAL`.
 *
 * @example
 * ```ts
 * import { Domain } from "./domain.ts";
 * import { evtchnFifoInitControl } from "./event_fifo.ts";
 * import assert from "node:assert/strict";
 * const d = new Domain({ domain: 1 });
 * assert.equal(evtchnFifoInitControl(d, d.allocGuestPage(), 0, 0), 17);
 * assert.equal(d.abi.name, "fifo");
 * assert.throws(() => evtchnFifoInitControl(d, d.allocGuestPage(), 0, 0));
 * ```
 */
export function evtchnFifoInitControl(
  d: Domain,
  gfn: number,
  offset: number,
  vcpu: number,
): number {
  const op = "init_control";
  if (vcpu >= d.vcpus) {
    throw new EventChannelError(op, "ENOENT", {
      argument: "vcpu",
      value: vcpu,
      detail: `domain ${d.id} has ${d.vcpus} vCPU(s)`,
    });
  }
  if (offset > PAGE_SIZE - CONTROL_BLOCK_SIZE || offset % 8 !== 0) {
    throw new EventChannelError(op, "EINVAL", {
      argument: "offset",
      value: offset,
      detail: "the control block must fit the page, 8-byte aligned",
    });
  }
  const current = d.abi instanceof FifoAbi ? d.abi : undefined;
  if (current?.controlBlock(vcpu) !== undefined) {
    throw new EventChannelError(op, "EINVAL", {
      argument: "vcpu",
      value: vcpu,
      detail: "this vCPU already has a control block",
    });
  }
  const page = mapGuestPage(op, d, gfn, "control_gfn");
  const block = new Uint32Array(
    page.buffer,
    page.byteOffset + offset,
    CONTROL_BLOCK_SIZE / 4,
  );
  let fifo = current;
  if (fifo === undefined) {
    fifo = new FifoAbi(d.vcpus, (v) => d.markEventsPending(v));
    const old = d.abi;
    for (let port = 1; port < old.maxChannels && d.isValid(port); port++) {
      if (old.isPending(port)) fifo.savedPending[port] = 1;
      fifo.priority[port] = FIFO_PRIORITY.DEFAULT;
    }
    d.abi = fifo;
  }
  fifo.mapControlBlock(vcpu, block);
  return EVTCHN_FIFO_LINK_BITS;
}

/**
 * `evtchn_fifo_expand_array` for a guest frame: adds a page of 1024 event
 * words (`add_page_to_event_array`); events recorded for its ports while
 * they had no word are delivered.
 *
 * @param d The calling domain.
 * @param gfn The guest frame.
 * @throws {EventChannelError} `EOPNOTSUPP` (not FIFO), `ENOSPC` (128
 * pages), `EINVAL` (not a frame of the guest).
 *
 * @example
 * ```ts
 * import { Domain } from "./domain.ts";
 * import { evtchnFifoExpandArray } from "./event_fifo.ts";
 * import assert from "node:assert/strict";
 * const d = new Domain({ domain: 1 });
 * assert.throws(() => evtchnFifoExpandArray(d, d.allocGuestPage()), /EOPNOTSUPP/);
 * ```
 */
export function evtchnFifoExpandArray(d: Domain, gfn: number): void {
  const op = "expand_array";
  const fifo = d.abi;
  if (!(fifo instanceof FifoAbi)) {
    throw new EventChannelError(op, "EOPNOTSUPP", {
      detail: "the domain does not use the FIFO ABI",
    });
  }
  if (fifo.pages.length >= MAX_EVENT_ARRAY_PAGES) {
    throw new EventChannelError(op, "ENOSPC", {
      argument: "array_gfn",
      value: gfn,
      detail: `the event array is complete (${EVTCHN_FIFO_NR_CHANNELS} ports)`,
    });
  }
  const first = fifo.addPage(mapGuestPage(op, d, gfn, "array_gfn"));
  for (let port = first; port < fifo.numEvtchns && d.isValid(port); port++) {
    if (fifo.savedPending[port]) {
      fifo.savedPending[port] = 0;
      fifo.setPending(port, d[NOTIFY_VCPU][port]);
    }
  }
}

/**
 * `evtchn_fifo_set_priority`: the FIFO ABI's part of
 * `EVTCHNOP_set_priority`, on a valid, usable port.
 *
 * @param fifo The domain's FIFO state.
 * @param port The port.
 * @param priority A uint32.
 * @throws {EventChannelError} `EINVAL` above `EVTCHN_FIFO_PRIORITY_MIN`.
 *
 * @example
 * ```ts
 * import { evtchnFifoSetPriority, FifoAbi } from "./event_fifo.ts";
 * import assert from "node:assert/strict";
 * const fifo = new FifoAbi(1, () => {});
 * evtchnFifoSetPriority(fifo, 3, 0);
 * assert.equal(fifo.priority[3], 0);
 * assert.throws(() => evtchnFifoSetPriority(fifo, 3, 16), /EINVAL/);
 * ```
 */
export function evtchnFifoSetPriority(
  fifo: FifoAbi,
  port: number,
  priority: number,
): void {
  if (priority > FIFO_PRIORITY.MIN) {
    throw new EventChannelError("set_priority", "EINVAL", {
      argument: "priority",
      value: priority,
      detail: "priorities run from 0 to 15",
    });
  }
  fifo.priority[port] = priority;
}

/** `map_guest_page`: a writable frame of the guest's, or `EINVAL`. */
function mapGuestPage(
  op: string,
  d: Domain,
  gfn: number,
  argument: string,
): Uint32Array {
  const page = d.guestPages.get(gfn);
  if (page === undefined) {
    throw new EventChannelError(op, "EINVAL", {
      argument,
      value: gfn,
      detail: "not a writable page of the guest",
    });
  }
  return page;
}
