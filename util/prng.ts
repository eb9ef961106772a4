// The project's one seeded pseudo-random generator. Private to this package
// (not exported from mod.ts; the oracle re-exports it as `prng`).

/**
 * mulberry32: a small, fast, seedable PRNG giving floats in [0, 1). Every
 * seeded generator of the project (differential steps, fuzzers, fault
 * injection) uses it, so a failure replays from its seed.
 *
 * @param seed Any integer (taken modulo 2³²).
 * @returns The generator.
 *
 * @example
 * ```ts
 * import { prng } from "./prng.ts";
 * import assert from "node:assert/strict";
 * const [a, b] = [prng(7), prng(7)];
 * assert.equal(a(), b());
 * assert.ok(a() >= 0 && a() < 1);
 * ```
 */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
