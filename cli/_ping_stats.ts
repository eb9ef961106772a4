// The numbers `evtchn ping` reports: round-trip latency percentiles, a
// power-of-two histogram and throughput. They are arithmetic on measured
// times, with no event channel or command line in them, so they live apart
// from ping.ts (which binds, measures and prints) and can be checked alone.
// Memory stays bounded whatever --count is: see RESERVOIR.

import { prng } from "../util/prng.ts";

/** Latency statistics in microseconds. */
export interface Stats {
  /** Fastest round trip. */
  min: number;
  /** 50th percentile (nearest rank). */
  median: number;
  /** 90th percentile. */
  p90: number;
  /** 99th percentile. */
  p99: number;
  /** 99.9th percentile. */
  p999: number;
  /** Slowest round trip. */
  max: number;
  /** Arithmetic mean over every round trip. */
  mean: number;
}

/** One histogram bucket: round trips that took [fromUs, toUs) µs. */
export interface Bucket {
  /** Lower bound (a power of two), inclusive. */
  fromUs: number;
  /** Upper bound (twice `fromUs`), exclusive. */
  toUs: number;
  /** Round trips in the bucket. */
  count: number;
}

/** Events carried by one round trip: A to B, then B to A. */
export const EVENTS_PER_ROUND_TRIP = 2;

/** Throughput over the measured loop. */
export interface Throughput {
  /** Wall time of the loop, seconds. */
  seconds: number;
  /** Round trips per second, rounded. */
  roundTripsPerSecond: number;
  /** Events per second ({@linkcode EVENTS_PER_ROUND_TRIP} per round trip). */
  eventsPerSecond: number;
}

/** Rounds to three decimals (nanoseconds, for microseconds). */
function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/**
 * Samples kept for the median and p99: up to this many round trips the
 * percentiles are exact; beyond, they come from a uniform random sample of
 * this size (Vitter's algorithm R), so memory stays at 512 KiB whatever
 * --count is. min, max, mean and the histogram are always exact.
 */
const RESERVOIR = 65_536;

/** The power-of-two bucket of a latency (µs), clamped below at 2⁻¹⁰. */
function exponent(x: number): number {
  return Math.floor(Math.log2(Math.max(x, 2 ** -10)));
}

/**
 * Streaming latency statistics in bounded memory: percentiles from at most
 * 65,536 samples (exact up to that many round trips), min, max, mean and
 * histogram over every one.
 *
 * @example
 * ```ts
 * import { Latencies } from "./_ping_stats.ts";
 * import assert from "node:assert/strict";
 * const latencies = new Latencies();
 * for (const us of [3, 5, 9, 40]) latencies.add(us);
 * const stats = latencies.stats();
 * assert.equal(stats.min, 3);
 * assert.equal(stats.median, 5);
 * assert.equal(stats.p90, 40);
 * assert.equal(stats.mean, 14.25);
 * assert.deepEqual(latencies.histogram().map((b) => b.count), [1, 1, 1, 0, 1]);
 * ```
 */
export class Latencies {
  /** Round trips added so far. */
  count = 0;
  #min = Infinity;
  #max = -Infinity;
  #sum = 0;
  readonly #sample = new Float64Array(RESERVOIR);
  readonly #buckets = new Map<number, number>();
  // A fixed seed: the same run gives the same sample.
  readonly #random = prng(0x9e3779b9);

  /**
   * Adds one round trip.
   *
   * @param us Its latency in microseconds.
   */
  add(us: number): void {
    const n = this.count++;
    if (us < this.#min) this.#min = us;
    if (us > this.#max) this.#max = us;
    this.#sum += us;
    const e = exponent(us);
    this.#buckets.set(e, (this.#buckets.get(e) ?? 0) + 1);
    if (n < RESERVOIR) {
      this.#sample[n] = us;
    } else {
      const j = Math.floor(this.#random() * (n + 1));
      if (j < RESERVOIR) this.#sample[j] = us;
    }
  }

  /**
   * Nearest-rank percentiles of the (sampled) latencies.
   *
   * @returns The statistics; call after at least one {@linkcode add}.
   */
  stats(): Stats {
    const sorted = this.#sample.slice(0, Math.min(this.count, RESERVOIR))
      .sort();
    const percentile = (p: number): number =>
      sorted[Math.max(1, Math.ceil(p * sorted.length)) - 1];
    return {
      min: this.#min,
      median: percentile(0.5),
      p90: percentile(0.9),
      p99: percentile(0.99),
      p999: percentile(0.999),
      max: this.#max,
      mean: this.#sum / this.count,
    };
  }

  /**
   * Power-of-two buckets from the one holding min to the one holding max.
   *
   * @returns The buckets, empty ones included.
   */
  histogram(): Bucket[] {
    const buckets: Bucket[] = [];
    for (let e = exponent(this.#min); e <= exponent(this.#max); e++) {
      buckets.push({
        fromUs: 2 ** e,
        toUs: 2 ** (e + 1),
        count: this.#buckets.get(e) ?? 0,
      });
    }
    return buckets;
  }
}

/**
 * Statistics rounded to nanoseconds (three decimals), for JSON output.
 *
 * @param stats The statistics.
 * @returns The same fields, in the same order, rounded.
 *
 * @example
 * ```ts
 * import { roundStats } from "./_ping_stats.ts";
 * import assert from "node:assert/strict";
 * const s = { min: 1.23456, median: 2, p90: 3, p99: 4, p999: 5, max: 6, mean: 3.5 };
 * assert.equal(roundStats(s).min, 1.235);
 * ```
 */
export function roundStats(stats: Stats): Stats {
  return Object.fromEntries(
    Object.entries(stats).map(([k, v]) => [k, round3(v)]),
  ) as unknown as Stats;
}

/**
 * Throughput of `roundTrips` round trips in `seconds`. A clock that stood
 * still across a very short run (coarse or clamped) gives rates of 0 rather
 * than infinite ones.
 *
 * @param roundTrips Round trips completed.
 * @param seconds Wall time they took.
 * @returns Seconds rounded to microseconds, rates to whole numbers.
 *
 * @example
 * ```ts
 * import { throughputOf } from "./_ping_stats.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual(throughputOf(1000, 0.5), {
 *   seconds: 0.5,
 *   roundTripsPerSecond: 2000,
 *   eventsPerSecond: 4000,
 * });
 * assert.equal(throughputOf(10, 0).roundTripsPerSecond, 0);
 * ```
 */
export function throughputOf(roundTrips: number, seconds: number): Throughput {
  const rate = (n: number): number => seconds > 0 ? Math.round(n / seconds) : 0;
  return {
    seconds: round3(seconds * 1000) / 1000,
    roundTripsPerSecond: rate(roundTrips),
    eventsPerSecond: rate(roundTrips * EVENTS_PER_ROUND_TRIP),
  };
}
