/**
 * The guest's side of the 2-level ABI: how Linux 6.1's upcall handler
 * (`drivers/xen/events/events_2l.c`, `evtchn_2l_handle_events`) walks the
 * selector and the pending words, so that delivery order is realistic.
 *
 * @module
 */

import type { Domain } from "../hypervisor/domain.ts";
import type { SharedInfo } from "../hypervisor/shared_info.ts";

/** Bits per `xen_ulong_t` word on x86_64. */
const WORD_BITS = 64;

/**
 * Lowest set bit at or above `from` in the 64-bit value `(hi << 32) | lo`.
 *
 * @returns The bit index, or -1.
 */
function firstBitFrom(lo: number, hi: number, from: number): number {
  // Signed 32-bit arithmetic throughout (no `>>> 0`): the values stay
  // small integers for the JIT, and `x & -x` isolates the lowest bit either
  // way.
  if (from < 32) {
    const l = lo & (-1 << from);
    if (l !== 0) return 31 - Math.clz32(l & -l);
    from = 32;
  }
  if (from >= WORD_BITS) return -1;
  const h = hi & (-1 << (from - 32));
  return h !== 0 ? 63 - Math.clz32(h & -h) : -1;
}

/**
 * Linux's per-CPU scan: it resumes after the last port it handled
 * (`current_word_idx`, `current_bit_idx`) so one busy port cannot starve the
 * rest, and it scans the starting word twice, first its upper part.
 *
 * The handler is called for each port that is pending and unmasked; it must
 * clear the port's pending bit (Linux's ack does, after masking for a
 * late-EOI port). Ports of other vCPUs sharing a word are handled too, as a
 * single-CPU Linux would (Linux filters by its per-CPU binding mask).
 *
 * @example
 * ```ts
 * import { Hypervisor } from "../hypervisor/hypervisor.ts";
 * import { TwoLevelConsumer } from "./events_2l.ts";
 * import assert from "node:assert/strict";
 * const xen = new Hypervisor();
 * const d = xen.createDomain({ domain: 1 });
 * const a = xen.bindIpi(1, 0), b = xen.bindIpi(1, 0);
 * xen.send(1, b);
 * xen.send(1, a);
 * const seen: number[] = [];
 * new TwoLevelConsumer(d).handleEvents(0, (port) => {
 *   d.sharedInfo.pending[port >>> 5] &= ~(1 << (port & 31));
 *   seen.push(port);
 * });
 * assert.deepEqual(seen, [a, b]);
 * ```
 */
export class TwoLevelConsumer {
  #info: SharedInfo;
  #words: Uint32Array;
  #pending: Uint32Array;
  #mask: Uint32Array;
  /** Per vCPU: Linux's `current_word_idx` and `current_bit_idx`. */
  #wordIdx: Uint8Array;
  #bitIdx: Uint8Array;

  /**
   * A consumer for one guest, its scan position at the start.
   *
   * @param domain The guest's domain.
   */
  constructor(domain: Domain) {
    this.#info = domain.sharedInfo;
    this.#words = domain.sharedInfo.words;
    this.#pending = domain.sharedInfo.pending;
    this.#mask = domain.sharedInfo.mask;
    this.#wordIdx = new Uint8Array(domain.vcpus);
    this.#bitIdx = new Uint8Array(domain.vcpus);
  }

  /**
   * One upcall on `vcpu`, after the caller cleared `evtchn_upcall_pending`
   * (`__xen_evtchn_do_upcall` does): take the selector and hand each
   * pending, unmasked port to `handle`.
   *
   * @param vcpu The vCPU taking the upcall.
   * @param handle Called per port.
   */
  handleEvents(vcpu: number, handle: (port: number) => void): void {
    // xchg(&vcpu_info->evtchn_pending_sel, 0), in place (no call to
    // SharedInfo.takeSelector, whose result fields cost a store each).
    const words = this.#words, at = this.#info.selectorIndex(vcpu, 0);
    const selLo = words[at] | 0, selHi = words[at + 1] | 0;
    words[at] = 0;
    words[at + 1] = 0;
    // One word pending, the common case. The loop of `#handleWords` would
    // scan it from the saved position and, as the starting word, once more
    // from bit 0 (after finding no other word); else once from bit 0. The
    // same scans, without the searches.
    if (
      selHi === 0
        ? (selLo & (selLo - 1)) === 0
        : selLo === 0 && (selHi & (selHi - 1)) === 0
    ) {
      if ((selLo | selHi) === 0) return;
      const word = selHi === 0
        ? 31 - Math.clz32(selLo)
        : 63 - Math.clz32(selHi);
      if (word === this.#wordIdx[vcpu]) {
        this.#scanWord(vcpu, word, this.#bitIdx[vcpu], handle);
      }
      this.#scanWord(vcpu, word, 0, handle);
      return;
    }
    this.#handleWords(vcpu, selLo, selHi, handle);
  }

  /** `evtchn_2l_handle_events`' loop over the selector's words. */
  #handleWords(
    vcpu: number,
    selLo: number,
    selHi: number,
    handle: (port: number) => void,
  ): void {
    const startWord = this.#wordIdx[vcpu];
    const startBit = this.#bitIdx[vcpu];
    let wordIdx = startWord;
    for (let i = 0; (selLo | selHi) !== 0; i++) {
      const word = firstBitFrom(selLo, selHi, wordIdx);
      if (word < 0) {
        wordIdx = 0; // wrap to the beginning
        continue;
      }
      wordIdx = word;
      this.#scanWord(
        vcpu,
        wordIdx,
        wordIdx === startWord && i === 0 ? startBit : 0,
        handle,
      );
      // Scan the starting word twice; every other word once.
      if (wordIdx !== startWord || i !== 0) {
        if (wordIdx < 32) selLo &= ~(1 << wordIdx);
        else selHi &= ~(1 << (wordIdx - 32));
      }
      wordIdx = (wordIdx + 1) & (WORD_BITS - 1);
    }
  }

  /**
   * Hands the pending, unmasked ports of one word to `handle`, from bit
   * `from` up, and moves the scan position past each.
   */
  #scanWord(
    vcpu: number,
    word: number,
    from: number,
    handle: (port: number) => void,
  ): void {
    // Linux reads the word once (`active_evtchns`), then walks its set
    // bits upwards from `from`, up to bit 63.
    const i = 2 * word, pending = this.#pending, mask = this.#mask;
    let lo = pending[i] & ~mask[i], hi = pending[i + 1] & ~mask[i + 1];
    if (from < 32) lo &= -1 << from;
    else {
      lo = 0;
      hi &= -1 << (from - 32);
    }
    while ((lo | hi) !== 0) {
      let bit: number;
      if (lo !== 0) {
        bit = 31 - Math.clz32(lo & -lo);
        lo &= lo - 1;
      } else {
        bit = 63 - Math.clz32(hi & -hi);
        hi &= hi - 1;
      }
      handle(word * WORD_BITS + bit);
      const next = (bit + 1) & (WORD_BITS - 1);
      this.#wordIdx[vcpu] = next !== 0 ? word : (word + 1) & (WORD_BITS - 1);
      this.#bitIdx[vcpu] = next;
    }
  }
}
