/**
 * `evtchn oracle`: record traces, replay them on a backend, and run seeded
 * differential comparisons between backends. Dispatched from `cli/main.ts`;
 * also runnable on its own:
 *
 * ```sh
 * deno run --allow-read --allow-write cli/oracle_command.ts replay trace.jsonl
 * ```
 *
 * Exit codes: 0 agreement (or a recording made), 1 divergence, 2 usage
 * error, unreadable or malformed input, or a backend that is not available.
 *
 * @module
 */

import { readBoundedInput } from "./_input.ts";
import { parseArgs } from "node:util";
import { onInterrupt, STOP_SIGNALS } from "./_events.ts";
import {
  backendByName,
  type DiffReport,
  type Divergence,
  EnvironmentError,
  formatDivergence,
  formatTrace,
  type OracleBackend,
  parseTrace,
  recordSteps,
  replayTrace,
  runDiff,
  scenario,
  SCENARIOS,
  type StepInput,
  type Trace,
  TRACE_LIMITS,
  TraceParseError,
} from "../oracle/mod.ts";

/**
 * Usage of `evtchn oracle`.
 *
 * @example
 * ```ts
 * import { help } from "./oracle_command.ts";
 * import assert from "node:assert/strict";
 * assert.match(help, /oracle replay/);
 * ```
 */
export const help: string =
  `evtchn oracle - record, replay and compare event-channel traces

Usage:
  evtchn oracle record SCENARIO|FILE|- [--backend memory|linux] [--out FILE] [--json]
  evtchn oracle replay TRACE|- [--backend memory|linux] [--all] [--json]
  evtchn oracle diff [--seed S] [--ops N] [--against memory|linux] [--save FILE]
                     [--max-tests N] [--json]
  evtchn oracle scenarios [--json]

record     Runs a built-in scenario (see "scenarios"), or the steps of a trace
           file (outcomes, if any, are ignored; "-" reads stdin), on a backend
           and writes the trace (JSON Lines) to stdout or --out FILE.
replay     Replays a trace on a backend (default memory: a fresh model with the
           trace's vCPUs and event ABI, and a fresh peer domain) and compares
           every outcome; stops at the first divergence unless --all.
diff       Generates --ops N steps (default 200) from --seed S (default: random,
           printed), runs them on memory and on --against (default: a second,
           fresh memory instance) side by side, and on a divergence shrinks the
           sequence to a minimal one; --save FILE writes it as a trace holding
           the --against backend's outcomes.
scenarios  Lists the built-in scenarios.

Options:
  --backend NAME   memory (default), linux (real /dev/xen/evtchn; needs
                   --allow-ffi, and root in dom0 for hypercalls) or auto
                   (linux where /dev/xen/evtchn exists); for diff, the same
                   as --against
  --out FILE       record: write the trace here instead of stdout
  --all            replay: keep going and report every divergence
  --seed S         diff: the seed (an integer)
  --ops N          diff: how many steps
  --against NAME   diff: the backend compared with memory (memory or linux)
  --save FILE      diff: where to save the minimal diverging trace
  --max-tests N    diff: side-by-side runs shrinking may take (default 2000)
  --json           machine-readable output on stdout
  -h, --help       this text

Exit: 0 agreement, 1 divergence, 2 usage error, bad input (an empty trace
too) or no backend; 130/143 when SIGINT/SIGTERM stopped it (what was found
so far is printed: record writes the steps run, replay the divergences, diff
its seed).
Limits: a trace of at most ${
    TRACE_LIMITS.bytes / 1024 / 1024
  } MiB, ${TRACE_LIMITS.steps} steps,
lines of ${
    TRACE_LIMITS.lineBytes / 1024 / 1024
  } MiB nested at most ${TRACE_LIMITS.depth} deep; --ops at most 100000.
Trace format: oracle/FORMAT.md.`;

/** A failure that ends the command with exit code 2. */
class UsageError extends Error {
  constructor(message: string, readonly extra: Record<string, unknown> = {}) {
    super(message);
  }
}

interface Options {
  backend?: string;
  out?: string;
  all?: boolean;
  seed?: string;
  ops?: string;
  against?: string;
  save?: string;
  "max-tests"?: string;
  json?: boolean;
  help?: boolean;
}

const encoder = new TextEncoder();

/** Steps from which record and replay say on stderr that they started. */
const LONG = 10_000;

/** `--json` documents start with `"version": 1`, as every `evtchn` command's. */
const JSON_VERSION = 1;

function printJson(document: Record<string, unknown>): void {
  print(JSON.stringify({ version: JSON_VERSION, ...document }));
}

function print(text: string): void {
  Deno.stdout.writeSync(
    encoder.encode(text.endsWith("\n") ? text : text + "\n"),
  );
}

function printError(text: string): void {
  Deno.stderr.writeSync(
    encoder.encode(text.endsWith("\n") ? text : text + "\n"),
  );
}

async function readInput(path: string): Promise<string> {
  const limit = TRACE_LIMITS.bytes;
  const what = path === "-" ? "stdin" : path;
  let bytes: Uint8Array | undefined;
  try {
    bytes = await readBoundedInput(path, limit);
  } catch (error) {
    throw new UsageError(`cannot read ${what}: ${(error as Error).message}`);
  }
  if (bytes === undefined) {
    throw new UsageError(
      `${what}: larger than ${limit} bytes, the most a trace may be`,
    );
  }
  return new TextDecoder().decode(bytes);
}

async function writeOutput(path: string, text: string): Promise<void> {
  try {
    await Deno.writeTextFile(path, text);
  } catch (error) {
    throw new UsageError(`cannot write ${path}: ${(error as Error).message}`);
  }
}

function parseTraceText(
  text: string,
  source: string,
  requireOutcomes: boolean,
): Trace {
  try {
    return parseTrace(text, { requireOutcomes });
  } catch (error) {
    if (error instanceof TraceParseError) {
      throw new UsageError(`${source}: ${error.message}`, {
        file: source,
        line: error.line,
        column: error.column,
      });
    }
    throw error;
  }
}

/** `auto` (what `evtchn --backend auto` passes on): linux where the device is. */
function resolveAuto(name: string): string {
  if (name !== "auto") return name;
  try {
    return Deno.statSync("/dev/xen/evtchn").isCharDevice ? "linux" : "memory";
  } catch {
    return "memory";
  }
}

function backend(name: string | undefined): OracleBackend {
  try {
    return backendByName(resolveAuto(name ?? "memory"));
  } catch (error) {
    throw new UsageError(`${(error as Error).message}`);
  }
}

function integer(
  name: string,
  value: string,
  min: number,
  max: number,
): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(
      `--${name} must be an integer in ${min}..${max}, got "${value}"`,
    );
  }
  return n;
}

function noPositionals(command: string, positionals: string[]): void {
  if (positionals.length > 0) {
    throw new UsageError(`${command} takes no argument "${positionals[0]}"`);
  }
}

async function record(
  positionals: string[],
  options: Options,
): Promise<number> {
  if (positionals.length !== 1) {
    throw new UsageError(
      "record needs one SCENARIO, FILE or - (see: evtchn oracle scenarios)",
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
    const label = source === "-" ? "stdin" : source;
    steps = parseTraceText(await readInput(source), label, false).steps;
    note = `steps from ${label}`;
  }
  if (steps.length >= LONG && !options.json) {
    printError(`evtchn oracle: recording ${steps.length} steps`);
  }
  const trace = await recordSteps(steps, backend(options.backend), {
    scenario: name,
    note,
    signal: interrupt.signal,
  });
  const status = interrupt.exitCode ?? 0;
  if (status !== 0) {
    printError(
      `evtchn oracle: interrupted: recorded ${trace.steps.length} of ${steps.length} steps`,
    );
  }
  const text = formatTrace(trace);
  if (options.out === undefined) {
    print(text.trimEnd());
    return status;
  }
  await writeOutput(options.out, text);
  const summary = {
    command: "record",
    source,
    backend: trace.header!.backend,
    steps: trace.steps.length,
    out: options.out,
  };
  print(
    options.json
      ? JSON.stringify({ version: JSON_VERSION, ...summary })
      : `recorded ${trace.steps.length} steps of ${source} on ${summary.backend} to ${options.out}`,
  );
  return status;
}

async function replay(
  positionals: string[],
  options: Options,
): Promise<number> {
  if (positionals.length !== 1) {
    throw new UsageError("replay needs one TRACE or -");
  }
  const source = positionals[0];
  const label = source === "-" ? "stdin" : source;
  using interrupt = onInterrupt(STOP_SIGNALS);
  const trace = parseTraceText(await readInput(source), label, true);
  if (trace.steps.length === 0) {
    // Nothing compared is not agreement: an empty file, or a header alone,
    // is a mistake (a failed recording, the wrong file).
    throw new UsageError(`${label}: trace has no steps`, { file: label });
  }
  if (trace.steps.length >= LONG && !options.json) {
    printError(`evtchn oracle: replaying ${trace.steps.length} steps`);
  }
  const report = await replayTrace(trace, backend(options.backend), {
    all: options.all,
    signal: interrupt.signal,
  });
  const agreed = report.divergences.length === 0;
  const stopped = interrupt.exitCode;
  if (options.json) {
    printJson({
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
  } else if (stopped !== undefined) {
    printIgnored(report.ignored);
    for (const d of report.divergences) print(formatDivergence(d));
    print(
      `interrupted: ${report.replayed}/${report.total} steps of ${label} replayed on ${report.backend}, ${report.divergences.length} divergence(s) so far`,
    );
  } else if (agreed) {
    printIgnored(report.ignored);
    print(
      `agreement: ${report.replayed}/${report.total} steps of ${label} replayed on ${report.backend}`,
    );
  } else {
    printIgnored(report.ignored);
    for (const d of report.divergences) print(formatDivergence(d));
    const n = report.divergences.length;
    print(
      options.all
        ? `${n} divergence${
          n === 1 ? "" : "s"
        } in ${report.total} steps of ${label} on ${report.backend}`
        : `replay of ${label} on ${report.backend} stopped at step ${
          report.divergences[0].i
        } (${report.replayed}/${report.total} steps run; --all to go on)`,
    );
  }
  return stopped ?? (agreed ? 0 : 1);
}

function printIgnored(
  ignored: {
    i: number;
    op: string;
    field: string;
    expected: unknown;
    actual: unknown;
  }[],
): void {
  for (const x of ignored) {
    print(
      `note: step ${x.i} ${x.op}: ${x.field} differs but is not compared (recorded ${
        JSON.stringify(x.expected)
      }, now ${JSON.stringify(x.actual)})`,
    );
  }
}

function divergenceSummary(d: Divergence): Record<string, unknown> {
  return { ...d };
}

async function diff(positionals: string[], options: Options): Promise<number> {
  noPositionals("diff", positionals);
  const seed = options.seed === undefined
    ? crypto.getRandomValues(new Uint32Array(1))[0]
    : integer("seed", options.seed, -(2 ** 53) + 1, 2 ** 53 - 1);
  const ops = options.ops === undefined
    ? 200
    : integer("ops", options.ops, 1, 100_000);
  const maxTests = options["max-tests"] === undefined
    ? undefined
    : integer("max-tests", options["max-tests"], 0, 1_000_000);
  const against = backend(options.against ?? options.backend);
  // runDiff stops between two steps on the signal and disposes both
  // sessions (on linux: closes the handles, destroys the peer domain).
  using interrupt = onInterrupt(STOP_SIGNALS);
  if (ops >= LONG && !options.json) {
    printError(`evtchn oracle: diff of ${ops} ops, seed ${seed}`);
  }
  const report: DiffReport = await runDiff({
    seed,
    ops,
    against,
    maxTests,
    signal: interrupt.signal,
  });
  if (report.interrupted) {
    const what = { command: "diff", seed, ops, interrupted: true };
    if (options.json) printJson(what);
    else {
      print(
        `seed ${seed}, ${ops} ops: interrupted (evtchn oracle diff --seed ${seed} --ops ${ops} reruns it)`,
      );
    }
    return interrupt.exitCode ?? 130;
  }
  let saved: string | undefined;
  if (report.minimal !== undefined && options.save !== undefined) {
    await writeOutput(options.save, formatTrace(report.minimal.trace));
    saved = options.save;
  }
  if (options.json) {
    printJson({
      command: "diff",
      seed,
      ops,
      reference: report.reference,
      against: report.against,
      agreed: report.agreed,
      divergence: report.divergence && divergenceSummary(report.divergence),
      minimal: report.minimal && {
        steps: report.minimal.trace.steps.length,
        tests: report.minimal.tests,
        divergence: divergenceSummary(report.minimal.divergence),
        saved,
      },
    });
  } else {
    const head =
      `seed ${seed}, ${ops} ops, ${report.reference} vs ${report.against}`;
    if (report.agreed) {
      print(`${head}: agreement`);
    } else {
      print(
        `${head}: divergence (expected = ${report.reference}, actual = ${report.against})`,
      );
      print(formatDivergence(report.divergence!));
      if (report.minimal !== undefined) {
        print(
          `shrunk to ${report.minimal.trace.steps.length} steps (${report.minimal.tests} runs):`,
        );
        print(formatDivergence(report.minimal.divergence));
        print(
          saved === undefined
            ? "(--save FILE keeps it as a trace)"
            : `saved to ${saved} (replaying it on ${report.reference} diverges)`,
        );
      }
    }
  }
  return report.agreed ? 0 : 1;
}

function listScenarios(positionals: string[], options: Options): number {
  noPositionals("scenarios", positionals);
  if (options.json) {
    printJson({
      command: "scenarios",
      scenarios: SCENARIOS.map((s) => ({
        name: s.name,
        description: s.description,
        steps: s.steps.length,
      })),
    });
  } else {
    const width = Math.max(...SCENARIOS.map((s) => s.name.length));
    for (const s of SCENARIOS) {
      print(`${s.name.padEnd(width)}  ${s.description}`);
    }
  }
  return 0;
}

/**
 * Runs `evtchn oracle` with its arguments (the words after `oracle`).
 *
 * @param args The arguments, such as `["replay", "trace.jsonl", "--all"]`.
 * @returns The exit code: 0 agreement, 1 divergence, 2 usage error.
 *
 * @example
 * ```ts
 * import { run } from "./oracle_command.ts";
 * import assert from "node:assert/strict";
 * assert.equal(await run(["diff", "--seed", "1", "--ops", "20", "--json"]), 0);
 * ```
 */
export async function run(args: string[]): Promise<number> {
  let json = args.includes("--json");
  try {
    let parsed;
    try {
      parsed = parseArgs({
        args,
        allowPositionals: true,
        strict: true,
        options: {
          backend: { type: "string" },
          out: { type: "string" },
          all: { type: "boolean" },
          seed: { type: "string" },
          ops: { type: "string" },
          against: { type: "string" },
          save: { type: "string" },
          "max-tests": { type: "string" },
          json: { type: "boolean" },
          help: { type: "boolean", short: "h" },
        },
      });
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    const options = parsed.values as Options;
    json = options.json ?? false;
    const [command, ...rest] = parsed.positionals;
    if (options.help || command === "help") {
      print(help);
      return 0;
    }
    const allowed: Record<string, (keyof Options)[]> = {
      record: ["backend", "out"],
      replay: ["backend", "all"],
      diff: ["seed", "ops", "against", "backend", "save", "max-tests"],
      scenarios: [],
    };
    // Own properties only: "constructor" is not a command.
    if (command === undefined || !Object.hasOwn(allowed, command)) {
      throw new UsageError(
        command === undefined
          ? "missing command (record, replay, diff or scenarios)"
          : `unknown command "${command}" (record, replay, diff or scenarios)`,
      );
    }
    for (const key of Object.keys(options) as (keyof Options)[]) {
      if (key !== "json" && !allowed[command].includes(key)) {
        throw new UsageError(`${command} takes no --${key}`);
      }
    }
    switch (command) {
      case "record":
        return await record(rest, options);
      case "replay":
        return await replay(rest, options);
      case "diff":
        return await diff(rest, options);
      default:
        return listScenarios(rest, options);
    }
  } catch (error) {
    if (error instanceof UsageError || error instanceof EnvironmentError) {
      if (json) {
        printJson({
          error: error.message,
          ...(error instanceof UsageError ? error.extra : {}),
        });
      } else {
        printError(`evtchn oracle: ${error.message}`);
        if (error instanceof UsageError) {
          printError("(evtchn oracle --help for usage)");
        }
      }
      return 2;
    }
    throw error;
  }
}

if (import.meta.main) {
  Deno.exit(await run(Deno.args));
}
