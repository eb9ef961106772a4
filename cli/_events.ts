// The event loop of `bind` and `watch`: wait for the next pending port,
// print it, unmask it; stop on SIGINT (an abort signal from _interrupt.ts),
// after --count events or --timeout seconds; then print per-port counts.

import { EventChannelError, type EventChannelHandle } from "../mod.ts";
import { type Output, padStart } from "./_output.ts";
import { macrotask, Pacer } from "../util/pace.ts";

/** A port the command bound, and how to describe it. */
export interface Binding {
  /** The local port. */
  port: number;
  /** Short label, such as `virq VIRQ_DOM_EXC` or `interdomain dom1:8`. */
  label: string;
  /** The binding as JSON fields. */
  json: Record<string, unknown>;
}

/** Why streaming ended. */
export type StopReason = "count" | "timeout" | "interrupted";

/** Options for {@linkcode streamEvents}. */
export interface StreamOptions {
  /** Stop after this many events in all. */
  count?: number;
  /** Stop after this many seconds. */
  timeoutSeconds?: number;
  /** Called after each event was printed and unmasked. */
  onEvent?: (port: number) => void;
  /**
   * Aborting it ends the stream as interrupted (see `onInterrupt` in
   * _interrupt.ts).
   */
  signal?: AbortSignal;
}

/** What streaming saw. */
export interface StreamSummary {
  /** Why it ended. */
  reason: StopReason;
  /** Events in all. */
  total: number;
  /** Events per port. */
  perPort: Map<number, number>;
  /** Milliseconds from start to end. */
  durationMs: number;
}

/**
 * Prints the bindings: one `bound` JSON line, or one human line each.
 *
 * @param out Where to print.
 * @param bindings The bindings.
 * @param context JSON fields for the `bound` line (backend, domain).
 */
export function printBound(
  out: Output,
  bindings: Binding[],
  context: Record<string, unknown>,
): void {
  if (out.json) {
    out.record({
      type: "bound",
      ...context,
      ports: bindings.map((b) => ({ port: b.port, ...b.json })),
    });
    return;
  }
  for (const b of bindings) {
    out.line(`bound port ${out.out.paint("cyan", String(b.port))}: ${b.label}`);
  }
}

/**
 * Streams events of a handle until `signal` (SIGINT), `count` or
 * `timeoutSeconds`,
 * printing each (human line with an ISO timestamp, or a JSON line) and
 * unmasking it. A ring overflow (`EFBIG`) is reported, the ring reset and
 * every bound port unmasked, and streaming goes on.
 *
 * @param handle The handle.
 * @param bindings Its bindings, for labels and recovery.
 * @param out Where to print.
 * @param options When to stop.
 * @returns What was seen.
 */
export async function streamEvents(
  handle: EventChannelHandle,
  bindings: Binding[],
  out: Output,
  options: StreamOptions = {},
): Promise<StreamSummary> {
  const labels = new Map(bindings.map((b) => [b.port, b.label]));
  const perPort = new Map<number, number>(bindings.map((b) => [b.port, 0]));
  const stop = new AbortController();
  let reason: StopReason | undefined;
  const end = (why: StopReason): void => {
    reason ??= why;
    stop.abort();
  };
  const onAbort = (): void => end("interrupted");
  if (options.signal?.aborted) end("interrupted");
  options.signal?.addEventListener("abort", onAbort);
  const timer = options.timeoutSeconds === undefined
    ? undefined
    : setTimeout(() => end("timeout"), options.timeoutSeconds * 1000);
  const started = performance.now();
  let total = 0;
  // A flood of events already queued is answered without a macrotask; the
  // pacer lets SIGINT and the timeout in.
  const pacer = new Pacer();
  try {
    if (options.count === 0) end("count");
    while (!stop.signal.aborted) {
      if (pacer.due()) {
        await macrotask();
        if (stop.signal.aborted) break;
      }
      let port: number;
      try {
        port = await handle.next({ signal: stop.signal });
      } catch (error) {
        if (stop.signal.aborted) break;
        if (error instanceof EventChannelError && error.code === "EFBIG") {
          out.warn("the event ring overflowed: events were lost; resetting");
          handle.reset();
          for (const b of bindings) handle.unmask(b.port);
          continue;
        }
        throw error;
      }
      total++;
      const seen = (perPort.get(port) ?? 0) + 1;
      perPort.set(port, seen);
      const label = labels.get(port) ?? "?";
      const time = new Date().toISOString();
      if (out.json) {
        out.record({ type: "event", time, port, binding: label, count: seen });
      } else {
        const p = out.out;
        out.line(
          `${p.paint("dim", time)}  port ${
            p.paint("cyan", padStart(port, 4))
          }  ${label}  #${seen}`,
        );
      }
      handle.unmask(port);
      options.onEvent?.(port);
      if (options.count !== undefined && total >= options.count) end("count");
    }
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    if (timer !== undefined) clearTimeout(timer);
  }
  return {
    reason: reason ?? "interrupted",
    total,
    perPort,
    durationMs: performance.now() - started,
  };
}

/**
 * Prints the summary: a `summary` JSON line, or a per-port table.
 *
 * @param out Where to print.
 * @param bindings The bindings.
 * @param summary What was seen.
 */
export function printSummary(
  out: Output,
  bindings: Binding[],
  summary: StreamSummary,
): void {
  const labels = new Map(bindings.map((b) => [b.port, b.label]));
  const ports = [...summary.perPort].sort(([a], [b]) => a - b);
  if (out.json) {
    out.record({
      type: "summary",
      reason: summary.reason,
      total: summary.total,
      durationMs: Math.round(summary.durationMs),
      ports: ports.map(([port, events]) => ({
        port,
        binding: labels.get(port) ?? "?",
        events,
      })),
    });
    return;
  }
  const p = out.out;
  const seconds = (summary.durationMs / 1000).toFixed(2);
  const why = {
    count: "count reached",
    timeout: "timed out",
    interrupted: "interrupted",
  }[summary.reason];
  out.line(
    `${p.paint("bold", "summary:")} ${summary.total} event${
      summary.total === 1 ? "" : "s"
    } in ${seconds} s (${why})`,
  );
  const width = Math.max(
    0,
    ...ports.map(([port]) => (labels.get(port) ?? "?").length),
  );
  for (const [port, events] of ports) {
    const label = (labels.get(port) ?? "?").padEnd(width);
    out.line(`  port ${padStart(port, 4)}  ${label} ${padStart(events, 6)}`);
  }
}
