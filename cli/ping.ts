/**
 * `evtchn ping`: round trips over one event channel between two handles,
 * with latency percentiles, throughput and a histogram.
 *
 * @module
 */

import { prng } from "../oracle/mod.ts";
import { DOMID_SELF, type EventChannelHandle } from "../mod.ts";
import {
  MAX_COUNT,
  noMorePositionals,
  optionalString,
  parse,
  parseInteger,
  UsageError,
} from "./_args.ts";
import { openBackend } from "./_backend.ts";
import { onInterrupt, STOP_SIGNALS } from "./_events.ts";
import { macrotask, Pacer } from "../util/pace.ts";
import {
  EXIT_OK,
  formatMicros,
  Output,
  padStart,
  reportError,
} from "./_output.ts";

const USAGE = "Usage: evtchn ping [--count N] [--remote DOM] [OPTIONS]";

/** Help text of `evtchn ping`. */
export const help: string = `evtchn ping: measure event-channel round trips

${USAGE}

Connects two handles with one interdomain channel and bounces an event N
times: A notifies, B waits, unmasks and notifies back, A waits and unmasks.
Prints round-trip latency in microseconds (min, median, p90, p99, p99.9,
max, mean), the throughput (round trips and events per second over the
whole run: two events per round trip, one each way) and a histogram. Ctrl-C (SIGINT) or SIGTERM stops early, prints what was measured
and exits 130 or 143. Memory stays bounded: percentiles beyond 65,536 round
trips come from a uniform random sample of that size (min, max, mean and the
histogram count every round trip).

By default both handles are in this domain (a loopback channel: the port is
offered to and connected through DOMID_SELF). With --remote DOM, on the memory
backend only, B is a handle in the modelled domU DOM (only 1 exists).

OPTIONS:
  --count N        Round trips (default 1000, at most 100000000)
  --remote DOM     Memory backend: B runs in domU DOM instead of dom0
  --backend NAME   memory, linux or auto (linux when /dev/xen/evtchn exists)
  --json           One JSON document with "version": 1 and the numbers
  -h, --help       Show this help

A progress bar is drawn on stderr when it is a terminal.

EXAMPLES:
  evtchn ping --count 10000
  evtchn --backend memory ping --remote 1 --json`;

/** Latency statistics in microseconds. */
interface Stats {
  min: number;
  median: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

/** Events carried by one round trip: A to B, then B to A. */
const EVENTS_PER_ROUND_TRIP = 2;

/** Throughput over the measured loop. */
interface Throughput {
  /** Wall time of the loop, seconds. */
  seconds: number;
  roundTripsPerSecond: number;
  eventsPerSecond: number;
}

interface Bucket {
  fromUs: number;
  toUs: number;
  count: number;
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

/** Streaming latency statistics in bounded memory. */
class Latencies {
  count = 0;
  #min = Infinity;
  #max = -Infinity;
  #sum = 0;
  readonly #sample = new Float64Array(RESERVOIR);
  readonly #buckets = new Map<number, number>();
  // A fixed seed: the same run gives the same sample.
  readonly #random = prng(0x9e3779b9);

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

  /** Nearest-rank percentiles of the (sampled) latencies. */
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

  /** Power-of-two buckets from the one holding min to the one holding max. */
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

async function settle(
  handle: EventChannelHandle,
  port: number,
  ms: number,
  interrupted: AbortSignal,
): Promise<void> {
  // Xen marks a new interdomain port pending at bind: consume that event so
  // that it does not count as the first echo.
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), ms);
  const signal = AbortSignal.any([stop.signal, interrupted]);
  try {
    const seen = await handle.next({ signal });
    handle.unmask(seen);
  } catch (error) {
    if (!signal.aborted) throw error;
    handle.unmask(port);
  } finally {
    clearTimeout(timer);
  }
}

function drawProgress(out: Output, done: number, total: number): void {
  const width = 30;
  const filled = Math.round((done / total) * width);
  out.progress(
    `\r[${"#".repeat(filled)}${" ".repeat(width - filled)}] ${
      padStart(done, String(total).length)
    }/${total}`,
  );
}

/**
 * Runs `evtchn ping`.
 *
 * @param args The arguments after `ping`.
 * @returns The exit status.
 */
export async function run(args: string[]): Promise<number> {
  try {
    const { values, positionals, global } = parse(args, {
      count: { type: "string" },
      remote: { type: "string" },
    }, USAGE);
    if (global.help) {
      console.log(help);
      return EXIT_OK;
    }
    noMorePositionals(positionals, USAGE);
    const countText = optionalString(values.count);
    const count = countText === undefined
      ? 1000
      : parseInteger(countText, "--count", USAGE, MAX_COUNT);
    if (count < 1) throw new UsageError("--count must be at least 1", USAGE);
    const remoteText = optionalString(values.remote);
    const remote = remoteText === undefined
      ? undefined
      : parseInteger(remoteText, "--remote domain", USAGE);
    const out = new Output(global.json);
    using interrupt = onInterrupt(STOP_SIGNALS);
    await using backend = openBackend(global.backend);
    const memory = backend.memory;
    if (remote !== undefined && memory === undefined) {
      throw new UsageError(
        "--remote needs the memory backend: on a real host the peer domain " +
          "would have to run this program",
        USAGE,
      );
    }
    if (remote !== undefined && remote !== memory!.peerDomain) {
      throw new UsageError(
        `--remote ${remote}: the memory backend models only domU ${
          memory!.peerDomain
        }`,
        USAGE,
      );
    }

    // A offers a port; B connects to it.
    const a = await backend.open();
    const b = remote === undefined ? await backend.open() : memory!.peer;
    const peerDomain = remote ?? DOMID_SELF;
    const aPort = a.bindUnboundPort(peerDomain);
    const bPort = b.bindInterdomain(
      remote === undefined ? DOMID_SELF : 0,
      aPort,
    );
    await settle(b, bPort, 1000, interrupt.signal);

    const pair = remote === undefined
      ? "loopback in this domain"
      : `dom0 port ${aPort} <-> dom${remote} port ${bPort}`;
    out.note(
      `ping: ${count} round trips, ${pair} (${backend.name} backend)`,
    );

    const latencies = new Latencies();
    const bar = out.interactive && !out.json;
    const step = Math.max(1, Math.floor(count / 100));
    // On the memory backend every wait below settles at once: without a
    // macrotask now and then, SIGINT would never be delivered.
    const pacer = new Pacer();
    let done = 0;
    const began = performance.now();
    try {
      const signal = interrupt.signal;
      // poll() first: next({ signal }) builds an AbortSignal.any per call,
      // which costs more than a memory-backend round trip.
      for (; done < count && !signal.aborted; done++) {
        if (pacer.due()) {
          await macrotask();
          if (signal.aborted) break;
        }
        const start = performance.now();
        a.notify(aPort);
        b.unmask(b.poll() ?? await b.next({ signal }));
        b.notify(bPort);
        a.unmask(a.poll() ?? await a.next({ signal }));
        latencies.add((performance.now() - start) * 1000);
        if (bar && done % step === 0) drawProgress(out, done, count);
      }
    } catch (error) {
      if (!interrupt.signal.aborted) throw error;
    } finally {
      if (bar) out.progress("\r\x1b[K");
    }
    const seconds = (performance.now() - began) / 1000;
    const status = interrupt.exitCode ?? EXIT_OK;
    if (done === 0) {
      out.note("ping: interrupted before the first round trip");
      return status;
    }
    const numbers = latencies.stats();
    const buckets = latencies.histogram();
    // The clock may stand still across a very short run (a coarse or
    // clamped clock): no rate rather than an infinite one.
    const rate = (n: number): number =>
      seconds > 0 ? Math.round(n / seconds) : 0;
    const throughput: Throughput = {
      seconds: round3(seconds * 1000) / 1000,
      roundTripsPerSecond: rate(done),
      eventsPerSecond: rate(done * EVENTS_PER_ROUND_TRIP),
    };
    if (out.json) {
      out.document({
        backend: backend.name,
        peer: remote === undefined
          ? { kind: "loopback" }
          : { kind: "domain", domain: remote },
        ports: { a: aPort, b: bPort },
        count: done,
        requested: count,
        interrupted: interrupt.signal.aborted,
        latencyUs: Object.fromEntries(
          Object.entries(numbers).map(([k, v]) => [k, round3(v)]),
        ),
        throughput,
        histogram: buckets,
      });
      return status;
    }
    printHuman(out, done, numbers, throughput, buckets);
    if (interrupt.signal.aborted) {
      out.note(`ping: interrupted after ${done} of ${count} round trips`);
    }
    return status;
  } catch (error) {
    return reportError(error);
  }
}

function printHuman(
  out: Output,
  done: number,
  numbers: Stats,
  throughput: Throughput,
  buckets: Bucket[],
): void {
  const p = out.out;
  out.line(
    `${p.paint("bold", `${done} round trips`)}, latency in µs: min ${
      formatMicros(numbers.min)
    }  median ${formatMicros(numbers.median)}  p90 ${
      formatMicros(numbers.p90)
    }  p99 ${formatMicros(numbers.p99)}  p99.9 ${
      formatMicros(numbers.p999)
    }  max ${formatMicros(numbers.max)}  mean ${formatMicros(numbers.mean)}`,
  );
  out.line(
    `throughput: ${throughput.roundTripsPerSecond} round trips/s = ${throughput.eventsPerSecond} events/s (${EVENTS_PER_ROUND_TRIP} events per round trip) over ${throughput.seconds} s`,
  );
  // reduce, not Math.max(...): no argument list as long as the input.
  const most = buckets.reduce((m, b) => Math.max(m, b.count), 0);
  const labels = buckets.map((b) => `${b.fromUs}–${b.toUs} µs`);
  const width = labels.reduce((m, l) => Math.max(m, l.length), 0);
  buckets.forEach((bucket, i) => {
    const bar = "█".repeat(Math.round((bucket.count / most) * 40));
    out.line(
      `  ${labels[i].padStart(width)} │${p.paint("cyan", bar)} ${bucket.count}`,
    );
  });
}
