// `evtchn oracle replay`.

import { UsageError } from "../_args.ts";
import { onInterrupt, STOP_SIGNALS } from "../_interrupt.ts";
import { EXIT_FAILURE, EXIT_OK, type Output } from "../_output.ts";
import { formatDivergence, replayTrace } from "../../oracle/mod.ts";
import { chooseBackend, LONG, readTrace } from "./_io.ts";

/**
 * Replays a trace on a backend and compares every outcome.
 *
 * @param positionals `[TRACE | -]`.
 * @param options `--backend`, `--all`.
 * @param out Where to print.
 * @param usage The usage line(s), for errors.
 * @returns 0 agreement, 1 divergence, 130/143 when a signal stopped it.
 */
export async function replay(
  positionals: string[],
  options: { backend?: string; all?: boolean },
  out: Output,
  usage: string,
): Promise<number> {
  if (positionals.length !== 1) {
    throw new UsageError("replay needs one TRACE or -", usage);
  }
  using interrupt = onInterrupt(STOP_SIGNALS);
  const { trace, label } = await readTrace(positionals[0], true, usage);
  if (trace.steps.length === 0) {
    // Nothing compared is not agreement: an empty file, or a header alone,
    // is a mistake (a failed recording, the wrong file).
    throw new UsageError(`${label}: trace has no steps`, usage);
  }
  if (trace.steps.length >= LONG) {
    out.note(`evtchn oracle: replaying ${trace.steps.length} steps`);
  }
  const report = await replayTrace(
    trace,
    chooseBackend(options.backend, usage),
    { all: options.all, signal: interrupt.signal },
  );
  const agreed = report.divergences.length === 0;
  const stopped = interrupt.exitCode;
  if (out.json) {
    out.document({
      command: "replay",
      trace: label,
      recordedOn: trace.header?.backend,
      backend: report.backend,
      total: report.total,
      replayed: report.replayed,
      agreed,
      interrupted: stopped !== undefined,
      divergences: report.divergences,
      ignored: report.ignored,
    });
    return stopped ?? (agreed ? EXIT_OK : EXIT_FAILURE);
  }
  for (const x of report.ignored) {
    out.line(
      `note: step ${x.i} ${x.op}: ${x.field} differs but is not compared (recorded ${
        JSON.stringify(x.expected)
      }, now ${JSON.stringify(x.actual)})`,
    );
  }
  for (const d of report.divergences) out.line(formatDivergence(d));
  const n = report.divergences.length;
  const on = `${label} replayed on ${report.backend}`;
  out.line(
    stopped !== undefined
      ? `interrupted: ${report.replayed}/${report.total} steps of ${on}, ${n} divergence(s) so far`
      : agreed
      ? `agreement: ${report.replayed}/${report.total} steps of ${on}`
      : options.all
      ? `${n} divergence${
        n === 1 ? "" : "s"
      } in ${report.total} steps of ${label} on ${report.backend}`
      : `replay of ${label} on ${report.backend} stopped at step ${
        report.divergences[0].i
      } (${report.replayed}/${report.total} steps run; --all to go on)`,
  );
  return stopped ?? (agreed ? EXIT_OK : EXIT_FAILURE);
}
