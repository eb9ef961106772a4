/**
 * Facts of Xen's event-channel ABI: op numbers, status codes and port-space
 * limits, from `xen/include/public/event_channel.h` and
 * `xen/include/xen/sched.h` (Xen 4.17).
 *
 * @module
 */

/**
 * `EVTCHNOP_*` command numbers (public event_channel.h).
 *
 * @example
 * ```ts
 * import { EVTCHNOP } from "./event_channel.ts";
 * import assert from "node:assert/strict";
 * assert.equal(EVTCHNOP.status, 5);
 * ```
 */
export const EVTCHNOP = {
  bind_interdomain: 0,
  bind_virq: 1,
  bind_pirq: 2,
  close: 3,
  send: 4,
  status: 5,
  alloc_unbound: 6,
  bind_ipi: 7,
  bind_vcpu: 8,
  unmask: 9,
  reset: 10,
  init_control: 11,
  expand_array: 12,
  set_priority: 13,
  reset_cont: 14,
} as const;

/** The name of an `EVTCHNOP_*` operation, such as `"alloc_unbound"`. */
export type EvtchnOpName = keyof typeof EVTCHNOP;

/**
 * `EVTCHNSTAT_*` values reported by `EVTCHNOP_status` (public
 * event_channel.h).
 *
 * @example
 * ```ts
 * import { EVTCHNSTAT } from "./event_channel.ts";
 * import assert from "node:assert/strict";
 * assert.equal(EVTCHNSTAT.interdomain, 2);
 * ```
 */
export const EVTCHNSTAT = {
  closed: 0,
  unbound: 1,
  interdomain: 2,
  pirq: 3,
  virq: 4,
  ipi: 5,
} as const;

/** A channel's state as `EVTCHNOP_status` names it. */
export type ChannelStatusName = keyof typeof EVTCHNSTAT;

/**
 * Ports under the 2-level ABI for a 64-bit guest: 64 words of 64 bits
 * (event_channel.h `EVTCHN_2L_NR_CHANNELS`).
 *
 * @example
 * ```ts
 * import { EVTCHN_2L_NR_CHANNELS } from "./event_channel.ts";
 * import assert from "node:assert/strict";
 * assert.equal(EVTCHN_2L_NR_CHANNELS, 4096);
 * ```
 */
export const EVTCHN_2L_NR_CHANNELS = 4096;

/**
 * Bits of a FIFO event word's link field (event_channel.h
 * `EVTCHN_FIFO_LINK_BITS`), which `EVTCHNOP_init_control` returns.
 *
 * @example
 * ```ts
 * import { EVTCHN_FIFO_LINK_BITS } from "./event_channel.ts";
 * import assert from "node:assert/strict";
 * assert.equal(EVTCHN_FIFO_LINK_BITS, 17);
 * ```
 */
export const EVTCHN_FIFO_LINK_BITS = 17;

/**
 * Ports under the FIFO ABI: 2^17 (event_channel.h
 * `EVTCHN_FIFO_NR_CHANNELS`, `1 << EVTCHN_FIFO_LINK_BITS`).
 *
 * @example
 * ```ts
 * import { EVTCHN_FIFO_NR_CHANNELS } from "./event_channel.ts";
 * import assert from "node:assert/strict";
 * assert.equal(EVTCHN_FIFO_NR_CHANNELS, 131072);
 * ```
 */
export const EVTCHN_FIFO_NR_CHANNELS = 1 << EVTCHN_FIFO_LINK_BITS;

/**
 * Bit numbers of a FIFO event word (event_channel.h
 * `EVTCHN_FIFO_PENDING`, `_MASKED`, `_LINKED`, `_BUSY`).
 *
 * @example
 * ```ts
 * import { EVTCHN_FIFO_BIT } from "./event_channel.ts";
 * import assert from "node:assert/strict";
 * assert.equal(EVTCHN_FIFO_BIT.PENDING, 31);
 * ```
 */
export const EVTCHN_FIFO_BIT = {
  PENDING: 31,
  MASKED: 30,
  LINKED: 29,
  BUSY: 28,
} as const;

/**
 * The link field of a FIFO event word, bits 0-16 (event_channel.h
 * `EVTCHN_FIFO_LINK_MASK`).
 *
 * @example
 * ```ts
 * import { EVTCHN_FIFO_LINK_MASK } from "./event_channel.ts";
 * import assert from "node:assert/strict";
 * assert.equal(EVTCHN_FIFO_LINK_MASK, 0x1ffff);
 * ```
 */
export const EVTCHN_FIFO_LINK_MASK = (1 << EVTCHN_FIFO_LINK_BITS) - 1;

/**
 * Event words, so ports, per page of a FIFO event array: a 4 KiB page of
 * 32-bit words (event_channel.h `EVTCHN_FIFO_EVENT_WORDS_PER_PAGE`). Linux's
 * `xen_evtchn_nr_channels()` under FIFO is the array's pages times this.
 *
 * @example
 * ```ts
 * import { EVTCHN_FIFO_EVENT_WORDS_PER_PAGE } from "./event_channel.ts";
 * import assert from "node:assert/strict";
 * assert.equal(EVTCHN_FIFO_EVENT_WORDS_PER_PAGE, 1024);
 * ```
 */
export const EVTCHN_FIFO_EVENT_WORDS_PER_PAGE = 1024;

/**
 * Ports per bucket of Xen's per-domain port storage: a page divided by the
 * 64-byte `struct evtchn` (sched.h `EVTCHNS_PER_BUCKET`). A domain's valid
 * port range grows by this many when allocation first reaches a new bucket.
 *
 * @example
 * ```ts
 * import { EVTCHNS_PER_BUCKET } from "./event_channel.ts";
 * import assert from "node:assert/strict";
 * assert.equal(EVTCHNS_PER_BUCKET, 64);
 * ```
 */
export const EVTCHNS_PER_BUCKET = 64;

/**
 * Default `max_evtchn_port` of an xl-created guest (xl.cfg
 * `max_event_channels` = 1023); dom0 is created with no limit of its own.
 *
 * @example
 * ```ts
 * import { XL_DEFAULT_MAX_EVTCHN_PORT } from "./event_channel.ts";
 * import assert from "node:assert/strict";
 * assert.equal(XL_DEFAULT_MAX_EVTCHN_PORT, 1023);
 * ```
 */
export const XL_DEFAULT_MAX_EVTCHN_PORT = 1023;

/**
 * FIFO priorities: 0 is the highest, 15 the lowest, 7 the default
 * (event_channel.h `EVTCHN_FIFO_PRIORITY_*`).
 *
 * @example
 * ```ts
 * import { FIFO_PRIORITY } from "./event_channel.ts";
 * import assert from "node:assert/strict";
 * assert.equal(FIFO_PRIORITY.DEFAULT, 7);
 * ```
 */
export const FIFO_PRIORITY = { MAX: 0, DEFAULT: 7, MIN: 15 } as const;
