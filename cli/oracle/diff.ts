// `evtchn oracle diff`.

import { noMorePositionals, parseInteger, UsageError } from "../_args.ts";
import { onInterrupt, STOP_SIGNALS } from "../_interrupt.ts";
import { EXIT_FAILURE, EXIT_OK, type Output } from "../_output.ts";
import { formatDivergence, formatTrace, runDiff } from "../../oracle/mod.ts";
import { chooseBackend, LONG, writeOutput } from "./_io.ts";

/** The most steps one differential run may generate. */
export const MAX_DIFF_OPS = 100_000;
/** The most side-by-side runs shrinking may take. */
export const MAX_SHRINK_TESTS = 1_000_000;

/**
 * Generates a seeded sequence, runs it on the model and on another backend
 * side by side, and shrinks a divergence to a minimal sequence.
 *
 * @param positionals Nothing.
 * @param options `--seed`, `--ops`, `--against`/`--backend`, `--save`,
 * `--max-tests`.
 * @param out Where to print.
 * @param usage The usage line(s), for errors.
 * @returns 0 agreement, 1 divergence, 130/143 when a signal stopped it.
 */
export async function diff(
  positionals: string[],
  options: {
    seed?: string;
    ops?: string;
    against?: string;
    backend?: string;
    save?: string;
    "max-tests"?: string;
  },
  out: Output,
  usage: string,
): Promise<number> {
  noMorePositionals(positionals, usage);
  const seed = options.seed === undefined
    ? crypto.getRandomValues(new Uint32Array(1))[0]
    : parseInteger(options.seed, "--seed", usage);
  const ops = options.ops === undefined
    ? 200
    : parseInteger(options.ops, "--ops", usage, MAX_DIFF_OPS);
  if (ops < 1) throw new UsageError("Invalid --ops '0': at least 1", usage);
  const maxTests = options["max-tests"] === undefined
    ? undefined
    : parseInteger(
      options["max-tests"],
      "--max-tests",
      usage,
      MAX_SHRINK_TESTS,
    );
  const against = chooseBackend(options.against ?? options.backend, usage);
  // runDiff stops between two steps on the signal and disposes both
  // sessions (on linux: closes the handles, destroys the peer domain).
  using interrupt = onInterrupt(STOP_SIGNALS);
  if (ops >= LONG) out.note(`evtchn oracle: diff of ${ops} ops, seed ${seed}`);
  const report = await runDiff({
    seed,
    ops,
    against,
    maxTests,
    signal: interrupt.signal,
  });
  if (report.interrupted) {
    if (out.json) {
      out.document({ command: "diff", seed, ops, interrupted: true });
    } else {
      out.line(
        `seed ${seed}, ${ops} ops: interrupted (evtchn oracle diff --seed ${seed} --ops ${ops} reruns it)`,
      );
    }
    return interrupt.exitCode ?? 130;
  }
  let saved: string | undefined;
  if (report.minimal !== undefined && options.save !== undefined) {
    await writeOutput(options.save, formatTrace(report.minimal.trace), usage);
    saved = options.save;
  }
  if (out.json) {
    out.document({
      command: "diff",
      seed,
      ops,
      reference: report.reference,
      against: report.against,
      agreed: report.agreed,
      divergence: report.divergence,
      minimal: report.minimal && {
        steps: report.minimal.trace.steps.length,
        tests: report.minimal.tests,
        divergence: report.minimal.divergence,
        saved,
      },
    });
    return report.agreed ? EXIT_OK : EXIT_FAILURE;
  }
  const head =
    `seed ${seed}, ${ops} ops, ${report.reference} vs ${report.against}`;
  if (report.agreed) {
    out.line(`${head}: agreement`);
    return EXIT_OK;
  }
  out.line(
    `${head}: divergence (expected = ${report.reference}, actual = ${report.against})`,
  );
  out.line(formatDivergence(report.divergence!));
  if (report.minimal !== undefined) {
    out.line(
      `shrunk to ${report.minimal.trace.steps.length} steps (${report.minimal.tests} runs):`,
    );
    out.line(formatDivergence(report.minimal.divergence));
    out.line(
      saved === undefined
        ? "(--save FILE keeps it as a trace)"
        : `saved to ${saved} (replaying it on ${report.reference} diverges)`,
    );
  }
  return EXIT_FAILURE;
}
