/**
 * `evtchn ping`: round trips over one event channel between two handles,
 * with latency statistics and a histogram.
 *
 * @module
 */

import { DOMID_SELF, type EventChannelHandle } from "../mod.ts";
import {
  noMorePositionals,
  optionalString,
  parse,
  parseInteger,
  UsageError,
} from "./_args.ts";
import { openBackend } from "./_backend.ts";
import { onInterrupt } from "./_events.ts";
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
Prints min, median, p99 and max round-trip latency in microseconds and a
histogram. Ctrl-C stops early and prints what was measured.

By default both handles are in this domain (a loopback channel: the port is
offered to and connected through DOMID_SELF). With --remote DOM, on the memory
backend only, B is a handle in the modelled domU DOM (only 1 exists).

OPTIONS:
  --count N        Round trips (default 1000)
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
  p99: number;
  max: number;
  mean: number;
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

/** Nearest-rank percentile of sorted samples. */
function percentile(sorted: Float64Array, p: number): number {
  const rank = Math.max(1, Math.ceil(p * sorted.length));
  return sorted[rank - 1];
}

function stats(sorted: Float64Array): Stats {
  let sum = 0;
  for (const x of sorted) sum += x;
  return {
    min: sorted[0],
    median: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    max: sorted[sorted.length - 1],
    mean: sum / sorted.length,
  };
}

/** Power-of-two buckets from the one holding min to the one holding max. */
function histogram(sorted: Float64Array): Bucket[] {
  const exponent = (x: number): number =>
    Math.floor(Math.log2(Math.max(x, 2 ** -10)));
  const low = exponent(sorted[0]);
  const high = exponent(sorted[sorted.length - 1]);
  const buckets: Bucket[] = [];
  for (let e = low; e <= high; e++) {
    buckets.push({ fromUs: 2 ** e, toUs: 2 ** (e + 1), count: 0 });
  }
  for (const x of sorted) buckets[exponent(x) - low].count++;
  return buckets;
}

async function settle(
  handle: EventChannelHandle,
  port: number,
  ms: number,
): Promise<void> {
  // Xen marks a new interdomain port pending at bind: consume that event so
  // that it does not count as the first echo.
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), ms);
  try {
    const seen = await handle.next({ signal: stop.signal });
    handle.unmask(seen);
  } catch (error) {
    if (!stop.signal.aborted) throw error;
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
      : parseInteger(countText, "--count", USAGE);
    if (count < 1) throw new UsageError("--count must be at least 1", USAGE);
    const remoteText = optionalString(values.remote);
    const remote = remoteText === undefined
      ? undefined
      : parseInteger(remoteText, "--remote domain", USAGE);
    const out = new Output(global.json);
    using interrupt = onInterrupt();
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
    await settle(b, bPort, 1000);

    const pair = remote === undefined
      ? "loopback in this domain"
      : `dom0 port ${aPort} <-> dom${remote} port ${bPort}`;
    out.note(
      `ping: ${count} round trips, ${pair} (${backend.name} backend)`,
    );

    const samples = new Float64Array(count);
    const bar = out.interactive && !out.json;
    const step = Math.max(1, Math.floor(count / 100));
    let done = 0;
    try {
      const signal = interrupt.signal;
      // poll() first: next({ signal }) builds an AbortSignal.any per call,
      // which costs more than a memory-backend round trip.
      for (; done < count && !signal.aborted; done++) {
        const start = performance.now();
        a.notify(aPort);
        b.unmask(b.poll() ?? await b.next({ signal }));
        b.notify(bPort);
        a.unmask(a.poll() ?? await a.next({ signal }));
        samples[done] = (performance.now() - start) * 1000;
        if (bar && done % step === 0) drawProgress(out, done, count);
      }
    } catch (error) {
      if (!interrupt.signal.aborted) throw error;
    } finally {
      if (bar) out.progress("\r\x1b[K");
    }
    if (done === 0) {
      out.note("ping: interrupted before the first round trip");
      return EXIT_OK;
    }
    const sorted = samples.slice(0, done).sort();
    const numbers = stats(sorted);
    const buckets = histogram(sorted);
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
        histogram: buckets,
      });
      return EXIT_OK;
    }
    printHuman(out, done, numbers, buckets);
    return EXIT_OK;
  } catch (error) {
    return reportError(error);
  }
}

function printHuman(
  out: Output,
  done: number,
  numbers: Stats,
  buckets: Bucket[],
): void {
  const p = out.out;
  out.line(
    `${p.paint("bold", `${done} round trips`)}, latency in µs: min ${
      formatMicros(numbers.min)
    }  median ${formatMicros(numbers.median)}  p99 ${
      formatMicros(numbers.p99)
    }  max ${formatMicros(numbers.max)}  mean ${formatMicros(numbers.mean)}`,
  );
  const most = Math.max(...buckets.map((b) => b.count));
  const labels = buckets.map((b) => `${b.fromUs}–${b.toUs} µs`);
  const width = Math.max(...labels.map((l) => l.length));
  buckets.forEach((bucket, i) => {
    const bar = "█".repeat(Math.round((bucket.count / most) * 40));
    out.line(
      `  ${labels[i].padStart(width)} │${p.paint("cyan", bar)} ${bucket.count}`,
    );
  });
}
