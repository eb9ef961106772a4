/**
 * The 2-level event ABI, following Xen 4.17's `xen/common/event_2l.c` bit for
 * bit on the shared-info bitmaps.
 *
 * @module
 */

import { EVTCHN_2L_NR_CHANNELS } from "../../../xen/event_channel.ts";
import type { EventAbi } from "./event_abi.ts";
import type { SharedInfo } from "./shared_info.ts";

/**
 * 2-level delivery: `evtchn_pending`/`evtchn_mask` bitmaps in shared info and
 * a per-vCPU selector with one bit per 64-port word.
 *
 * @example
 * ```ts
 * import { SharedInfo } from "./shared_info.ts";
 * import { TwoLevelAbi } from "./event_2l.ts";
 * import assert from "node:assert/strict";
 * const kicked: number[] = [];
 * const info = new SharedInfo(1);
 * const abi = new TwoLevelAbi(info, (v) => kicked.push(v));
 * abi.setPending(70, 0);
 * assert.equal(info.selectorBit(0, 1), true);
 * assert.deepEqual(kicked, [0]);
 * abi.setPending(70, 0); // coalesced: already pending
 * assert.deepEqual(kicked, [0]);
 * ```
 */
export class TwoLevelAbi implements EventAbi {
  readonly name = "2l" as const;
  readonly maxChannels: number = EVTCHN_2L_NR_CHANNELS;
  #info: SharedInfo;
  #words: Uint32Array;
  #pending: Uint32Array;
  #mask: Uint32Array;
  #markEventsPending: (vcpu: number) => void;

  /**
   * 2-level delivery over a domain's shared info.
   *
   * @param info The domain's shared info.
   * @param markEventsPending Xen's `vcpu_mark_events_pending`.
   */
  constructor(info: SharedInfo, markEventsPending: (vcpu: number) => void) {
    this.#info = info;
    this.#words = info.words;
    this.#pending = info.pending;
    this.#mask = info.mask;
    this.#markEventsPending = markEventsPending;
  }

  /** `evtchn_2l_set_pending`. */
  setPending(port: number, vcpu: number): void {
    const i = port >>> 5, bit = 1 << (port & 31);
    const pending = this.#pending[i];
    if (pending & bit) return; // coalesced
    this.#pending[i] = pending | bit;
    if (!(this.#mask[i] & bit)) this.#select(port, vcpu);
  }

  /**
   * Sets the selector bit of `port`'s word on `vcpu` (test-and-set) and,
   * if it was clear, marks events pending there.
   */
  #select(port: number, vcpu: number): void {
    const words = this.#words;
    const at = this.#info.selectorIndex(vcpu, port >>> 6);
    const bit = 1 << ((port >>> 6) & 31), sel = words[at];
    if (sel & bit) return;
    words[at] = sel | bit;
    this.#markEventsPending(vcpu);
  }

  /** `evtchn_2l_clear_pending`. */
  clearPending(port: number): void {
    this.#pending[port >>> 5] &= ~(1 << (port & 31));
  }

  /** `evtchn_2l_unmask`. */
  unmask(port: number, vcpu: number): void {
    const i = port >>> 5, bit = 1 << (port & 31);
    const mask = this.#mask[i];
    if (!(mask & bit)) return; // was not masked: nothing to re-raise
    this.#mask[i] = mask & ~bit;
    if (this.#pending[i] & bit) this.#select(port, vcpu);
  }

  /** `evtchn_2l_is_pending`. */
  isPending(port: number): boolean {
    return port < this.maxChannels &&
      (this.#pending[port >>> 5] & (1 << (port & 31))) !== 0;
  }

  /** `evtchn_2l_is_masked`. */
  isMasked(port: number): boolean {
    return port >= this.maxChannels ||
      (this.#mask[port >>> 5] & (1 << (port & 31))) !== 0;
  }

  /** 2-level ports are never busy. */
  isBusy(_port: number): boolean {
    return false;
  }

  /** 2-level has no per-port init. */
  initPort(_port: number): void {}

  /** The guest sets the port's bit in `evtchn_mask`. */
  mask(port: number): void {
    this.#mask[port >>> 5] |= 1 << (port & 31);
  }
}
