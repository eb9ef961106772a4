/**
 * `evtchn ping`: round trips over one event channel between two handles,
 * with latency percentiles, throughput and a histogram.
 *
 * @module
 */

import { DOMID_SELF } from "../mod.ts";
import {
  MAX_COUNT,
  noMorePositionals,
  optionalString,
  parse,
  parseInteger,
  UsageError,
} from "./_args.ts";
import { openBackend } from "./_backend.ts";
import { onInterrupt, STOP_SIGNALS } from "./_interrupt.ts";
import {
  type Bucket,
  EVENTS_PER_ROUND_TRIP,
  roundStats,
  type Stats,
  type Throughput,
  throughputOf,
} from "./_ping_stats.ts";
import { bounce, type Bounced, settle } from "./_round_trips.ts";
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

    const bar = out.interactive && !out.json;
    let measured: Bounced;
    try {
      measured = await bounce({
        a,
        aPort,
        b,
        bPort,
        count,
        signal: interrupt.signal,
        progress: bar ? (done) => drawProgress(out, done, count) : undefined,
      });
    } finally {
      if (bar) out.progress("\r\x1b[K");
    }
    const { done, seconds, latencies } = measured;
    const status = interrupt.exitCode ?? EXIT_OK;
    if (done === 0) {
      out.note("ping: interrupted before the first round trip");
      return status;
    }
    const numbers = latencies.stats();
    const buckets = latencies.histogram();
    const throughput = throughputOf(done, seconds);
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
        latencyUs: roundStats(numbers),
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
