// `evtchn oracle record` and `evtchn oracle scenarios`.

import { noMorePositionals, UsageError } from "../_args.ts";
import { onInterrupt, STOP_SIGNALS } from "../_interrupt.ts";
import { EXIT_OK, type Output } from "../_output.ts";
import {
  formatTrace,
  recordSteps,
  scenario,
  SCENARIOS,
  type StepInput,
} from "../../oracle/mod.ts";
import { chooseBackend, LONG, readTrace, writeOutput } from "./_io.ts";

/**
 * Runs a built-in scenario, or the steps of a trace, on a backend and writes
 * the trace to stdout or `out`.
 *
 * @param positionals `[SCENARIO | FILE | -]`.
 * @param options `--backend`, `--out`.
 * @param out Where to print.
 * @param usage The usage line(s), for errors.
 * @returns 0, or 130/143 when a signal stopped it (the steps run so far are
 * written).
 */
export async function record(
  positionals: string[],
  options: { backend?: string; out?: string },
  out: Output,
  usage: string,
): Promise<number> {
  if (positionals.length !== 1) {
    throw new UsageError(
      "record needs one SCENARIO, FILE or - (see: evtchn oracle scenarios)",
      usage,
    );
  }
  const source = positionals[0];
  // Caught from the start: a signal while a long input is read still ends
  // in a partial (here: empty) recording and 130/143, not a silent kill.
  using interrupt = onInterrupt(STOP_SIGNALS);
  let steps: StepInput[];
  let name: string | undefined;
  let note: string | undefined;
  const builtIn = source === "-" ? undefined : scenario(source);
  if (builtIn !== undefined) {
    steps = builtIn.steps;
    name = builtIn.name;
  } else {
    const { trace, label } = await readTrace(source, false, usage);
    steps = trace.steps;
    note = `steps from ${label}`;
  }
  if (steps.length >= LONG) {
    out.note(`evtchn oracle: recording ${steps.length} steps`);
  }
  const trace = await recordSteps(
    steps,
    chooseBackend(options.backend, usage),
    {
      scenario: name,
      note,
      signal: interrupt.signal,
    },
  );
  const status = interrupt.exitCode ?? EXIT_OK;
  if (status !== EXIT_OK) {
    console.error(
      `evtchn oracle: interrupted: recorded ${trace.steps.length} of ${steps.length} steps`,
    );
  }
  const text = formatTrace(trace);
  if (options.out === undefined) {
    console.log(text.trimEnd());
    return status;
  }
  await writeOutput(options.out, text, usage);
  const backend = trace.header!.backend;
  if (out.json) {
    out.document({
      command: "record",
      source,
      backend,
      steps: trace.steps.length,
      out: options.out,
    });
  } else {
    out.line(
      `recorded ${trace.steps.length} steps of ${source} on ${backend} to ${options.out}`,
    );
  }
  return status;
}

/**
 * Lists the built-in scenarios.
 *
 * @param positionals Nothing.
 * @param out Where to print.
 * @param usage The usage line(s), for errors.
 * @returns 0.
 */
export function listScenarios(
  positionals: string[],
  out: Output,
  usage: string,
): number {
  noMorePositionals(positionals, usage);
  if (out.json) {
    out.document({
      command: "scenarios",
      scenarios: SCENARIOS.map((s) => ({
        name: s.name,
        description: s.description,
        steps: s.steps.length,
      })),
    });
    return EXIT_OK;
  }
  const width = Math.max(...SCENARIOS.map((s) => s.name.length));
  for (const s of SCENARIOS) {
    out.line(`${s.name.padEnd(width)}  ${s.description}`);
  }
  return EXIT_OK;
}
