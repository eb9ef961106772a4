/**
 * A domain's shared-info page and vCPU info blocks, laid out byte for byte as
 * Xen's public `xen.h` has them on x86_64, so that the 2-level ABI works on
 * the very bits a guest sees.
 *
 * @module
 */

/** `sizeof(struct vcpu_info)` on x86_64 (public xen.h). */
const VCPU_INFO_SIZE = 64;
/** `XEN_LEGACY_MAX_VCPUS` on x86: vCPU info slots inside shared_info. */
const LEGACY_VCPUS = 32;
/** `offsetof(struct shared_info, evtchn_pending)` on x86_64. */
const PENDING_OFFSET = 2048;
/** `offsetof(struct shared_info, evtchn_mask)` on x86_64. */
const MASK_OFFSET = 2560;
/** `sizeof(struct shared_info)` on x86_64, up to the arch part. */
const SHARED_INFO_SIZE = 3136;

/**
 * Shared info plus vCPU info. vCPUs below 32 use the slots inside shared info;
 * later ones get blocks after it, as if registered with
 * `VCPUOP_register_vcpu_info`.
 *
 * @example
 * ```ts
 * import { SharedInfo } from "./shared_info.ts";
 * import assert from "node:assert/strict";
 * const info = new SharedInfo(2);
 * info.pending[0] |= 1 << 5;
 * assert.equal(info.bytes[2048], 1 << 5); // evtchn_pending, little-endian
 * ```
 */
export class SharedInfo {
  /** The raw bytes. */
  readonly bytes: Uint8Array;
  /** `evtchn_pending[64]` as 128 little-endian 32-bit halves. */
  readonly pending: Uint32Array;
  /** `evtchn_mask[64]` as 128 little-endian 32-bit halves. */
  readonly mask: Uint32Array;
  /**
   * The raw bytes as little-endian 32-bit words, for a guest's upcall to
   * take its selector in place (see {@linkcode SharedInfo.selectorIndex}).
   */
  readonly words: Uint32Array;
  #words: Uint32Array;
  /** Per vCPU: byte offset of its vcpu_info, and 32-bit index of its selector. */
  #infoAt: Uint32Array;
  #selectorAt: Uint32Array;

  /**
   * Zeroed, as Xen clears shared info at domain creation: every port
   * unmasked, nothing pending.
   *
   * @param vcpus The number of vCPUs.
   */
  constructor(vcpus: number) {
    const extra = Math.max(0, vcpus - LEGACY_VCPUS) * VCPU_INFO_SIZE;
    const buffer = new ArrayBuffer(SHARED_INFO_SIZE + extra);
    this.bytes = new Uint8Array(buffer);
    this.#words = this.words = new Uint32Array(buffer);
    this.pending = new Uint32Array(buffer, PENDING_OFFSET, 128);
    this.mask = new Uint32Array(buffer, MASK_OFFSET, 128);
    this.#infoAt = new Uint32Array(vcpus);
    this.#selectorAt = new Uint32Array(vcpus);
    for (let v = 0; v < vcpus; v++) {
      this.#infoAt[v] = this.vcpuInfoOffset(v);
      this.#selectorAt[v] = (this.#infoAt[v] + 8) >>> 2;
    }
  }

  /**
   * Byte offset of vCPU `vcpu`'s `struct vcpu_info`.
   *
   * @param vcpu The vCPU.
   * @returns The offset into {@linkcode SharedInfo.bytes}.
   */
  vcpuInfoOffset(vcpu: number): number {
    return vcpu < LEGACY_VCPUS
      ? vcpu * VCPU_INFO_SIZE
      : SHARED_INFO_SIZE + (vcpu - LEGACY_VCPUS) * VCPU_INFO_SIZE;
  }

  /**
   * `evtchn_upcall_pending` of a vCPU.
   *
   * @param vcpu The vCPU.
   * @returns 0 or 1.
   */
  upcallPending(vcpu: number): number {
    return this.bytes[this.#infoAt[vcpu]];
  }

  /**
   * Sets `evtchn_upcall_pending`.
   *
   * @param vcpu The vCPU.
   * @param value 0 or 1.
   * @returns The previous value.
   */
  exchangeUpcallPending(vcpu: number, value: number): number {
    const at = this.#infoAt[vcpu];
    const old = this.bytes[at];
    this.bytes[at] = value;
    return old;
  }

  /**
   * `evtchn_upcall_mask` of a vCPU (the guest's interrupt flag).
   *
   * @param vcpu The vCPU.
   * @returns 0 or 1.
   */
  upcallMask(vcpu: number): number {
    return this.bytes[this.#infoAt[vcpu] + 1];
  }

  /**
   * Sets `evtchn_upcall_mask`.
   *
   * @param vcpu The vCPU.
   * @param value 0 or 1.
   */
  setUpcallMask(vcpu: number, value: number): void {
    this.bytes[this.#infoAt[vcpu] + 1] = value;
  }

  /**
   * Index into the 32-bit view of the half of `evtchn_pending_sel` that holds
   * selector bit `word`.
   *
   * @param vcpu The vCPU.
   * @param word The selector bit (a pending word index, 0..63).
   * @returns The index.
   */
  selectorIndex(vcpu: number, word: number): number {
    return this.#selectorAt[vcpu] + (word >>> 5);
  }

  /**
   * Test-and-set of selector bit `word` on `vcpu`.
   *
   * @param vcpu The vCPU.
   * @param word The selector bit.
   * @returns Whether it was already set.
   */
  testAndSetSelector(vcpu: number, word: number): boolean {
    const i = this.#selectorAt[vcpu] + (word >>> 5);
    const bit = 1 << (word & 31);
    const was = (this.#words[i] & bit) !== 0;
    this.#words[i] |= bit;
    return was;
  }

  /**
   * Whether selector bit `word` is set on `vcpu`.
   *
   * @param vcpu The vCPU.
   * @param word The selector bit.
   * @returns Whether set.
   */
  selectorBit(vcpu: number, word: number): boolean {
    return (this.#words[this.selectorIndex(vcpu, word)] &
      (1 << (word & 31))) !== 0;
  }

  /**
   * Exchanges `evtchn_pending_sel` with 0, as a guest's upcall does. The old
   * value is left in {@linkcode SharedInfo.takenLow} and
   * {@linkcode SharedInfo.takenHigh} (no allocation on the hot path).
   *
   * @param vcpu The vCPU.
   */
  takeSelector(vcpu: number): void {
    const i = this.selectorIndex(vcpu, 0);
    this.takenLow = this.#words[i];
    this.takenHigh = this.#words[i + 1];
    this.#words[i] = 0;
    this.#words[i + 1] = 0;
  }

  /** Low 32 bits of the selector last taken by `takeSelector`. */
  takenLow = 0;
  /** High 32 bits of the selector last taken by `takeSelector`. */
  takenHigh = 0;
}
