/**
 * The guest's side of the 2-level ABI: how Linux 6.1's upcall handler
 * (`drivers/xen/events/events_2l.c`, `evtchn_2l_handle_events`) walks the
 * selector and the pending words, so that delivery order is realistic.
 *
 * @module
 */

import type { Domain } from "./domain.ts";

/** Bits per `xen_ulong_t` word on x86_64. */
const WORD_BITS = 64;

/**
 * Lowest set bit at or above `from` in the 64-bit value `(hi << 32) | lo`.
 *
 * @returns The bit index, or -1.
 */
function firstBitFrom(lo: number, hi: number, from: number): number {
  if (from < 32) {
    const l = (lo & (-1 << from)) >>> 0;
    if (l !== 0) return 31 - Math.clz32(l & -l);
    from = 32;
  }
  if (from >= WORD_BITS) return -1;
  const h = (hi & (-1 << (from - 32))) >>> 0;
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
 * import { Hypervisor } from "./hypervisor.ts";
 * import { TwoLevelConsumer } from "./guest_2l.ts";
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
  #domain: Domain;
  #wordIdx: Uint8Array;
  #bitIdx: Uint8Array;

  /**
   * A consumer for one guest, its scan position at the start.
   *
   * @param domain The guest's domain.
   */
  constructor(domain: Domain) {
    this.#domain = domain;
    this.#wordIdx = new Uint8Array(domain.vcpus);
    this.#bitIdx = new Uint8Array(domain.vcpus);
  }

  /**
   * One upcall on `vcpu`: clear `evtchn_upcall_pending`, take the selector,
   * and hand each pending, unmasked port to `handle`.
   *
   * @param vcpu The vCPU taking the upcall.
   * @param handle Called per port.
   */
  handleEvents(vcpu: number, handle: (port: number) => void): void {
    const info = this.#domain.sharedInfo;
    info.exchangeUpcallPending(vcpu, 0);
    info.takeSelector(vcpu);
    let selLo = info.takenLow, selHi = info.takenHigh;
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
      // Linux reads the word once (`active_evtchns`), then walks its bits.
      const lo = (info.pending[2 * wordIdx] & ~info.mask[2 * wordIdx]) >>> 0;
      const hi = (info.pending[2 * wordIdx + 1] &
        ~info.mask[2 * wordIdx + 1]) >>> 0;
      let bitIdx = wordIdx === startWord && i === 0 ? startBit : 0;
      do {
        const bit = firstBitFrom(lo, hi, bitIdx);
        if (bit < 0) break;
        handle(wordIdx * WORD_BITS + bit);
        bitIdx = (bit + 1) % WORD_BITS;
        this.#wordIdx[vcpu] = bitIdx ? wordIdx : (wordIdx + 1) % WORD_BITS;
        this.#bitIdx[vcpu] = bitIdx;
      } while (bitIdx !== 0);
      // Scan the starting word twice; every other word once.
      if (wordIdx !== startWord || i !== 0) {
        if (wordIdx < 32) selLo = (selLo & ~(1 << wordIdx)) >>> 0;
        else selHi = (selHi & ~(1 << (wordIdx - 32))) >>> 0;
      }
      wordIdx = (wordIdx + 1) % WORD_BITS;
    }
  }
}
