// Letting long loops breathe. A loop whose every `await` settles at once
// (the memory backend answers synchronously) runs entirely in microtasks, so
// timers and signal listeners (Ctrl-C) never get a turn. A Pacer tells such
// a loop when to give the event loop one macrotask: every `every` calls, or
// sooner when `ms` have passed, so that an interrupt is seen within tens of
// milliseconds whatever one iteration costs. Private to this package (not
// exported from mod.ts).

/**
 * Counts iterations and says when the loop should yield.
 *
 * @example
 * ```ts
 * import { macrotask, Pacer } from "./pace.ts";
 * import assert from "node:assert/strict";
 * const pacer = new Pacer(4, 1_000_000);
 * let yields = 0;
 * for (let i = 0; i < 12; i++) {
 *   if (pacer.due()) {
 *     yields++;
 *     await macrotask();
 *   }
 * }
 * assert.equal(yields, 3);
 * ```
 */
export class Pacer {
  readonly #every: number;
  readonly #ms: number;
  #count = 0;
  #since = performance.now();

  /**
   * Constructs a pacer.
   *
   * @param every Yield at least every this many iterations.
   * @param ms Yield at least every this many milliseconds (checked every 64
   * iterations, so that the common case reads no clock).
   */
  constructor(every = 4096, ms = 20) {
    this.#every = every;
    this.#ms = ms;
  }

  /**
   * Counts one iteration.
   *
   * @returns Whether the caller should `await macrotask()` now.
   */
  due(): boolean {
    const n = ++this.#count;
    if (n < this.#every && (n & 63) !== 0) return false;
    const now = performance.now();
    if (n < this.#every && now - this.#since < this.#ms) return false;
    this.#count = 0;
    this.#since = now;
    return true;
  }
}

/**
 * A promise that settles in a later macrotask, after the event loop has run
 * timers and signal listeners.
 *
 * @returns Settles on the next turn of the event loop.
 *
 * @example
 * ```ts
 * import { macrotask } from "./pace.ts";
 * import assert from "node:assert/strict";
 * let ran = false;
 * setTimeout(() => ran = true, 0);
 * await macrotask();
 * assert.equal(ran, true);
 * ```
 */
export function macrotask(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}
