/**
 * `evtchn oracle`: record traces, replay them on a backend, and run seeded
 * differential comparisons between backends. Dispatched from `cli/main.ts`;
 * also runnable on its own:
 *
 * ```sh
 * deno run --allow-read --allow-write cli/oracle_command.ts replay trace.jsonl
 * ```
 *
 * The subcommands live in `cli/oracle/`; this file parses the command line
 * with the other commands' helpers and reports errors the way they do (on
 * stderr; exit 1 when an operation failed, 2 for usage or bad input).
 *
 * @module
 */

import { type Options, parse, UsageError } from "./_args.ts";
import { EXIT_OK, Output, reportError } from "./_output.ts";
import { TRACE_LIMITS } from "../oracle/mod.ts";
import { diff } from "./oracle/diff.ts";
import { listScenarios, record } from "./oracle/record.ts";
import { replay } from "./oracle/replay.ts";

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

Exit: 0 agreement, 1 divergence or a failed operation (a backend that is
not available), 2 usage error or bad input (an empty trace too); 130/143 when SIGINT/SIGTERM stopped it (what was found
so far is printed: record writes the steps run, replay the divergences, diff
its seed).
Limits: a trace of at most ${
    TRACE_LIMITS.bytes / 1024 / 1024
  } MiB, ${TRACE_LIMITS.steps} steps,
lines of ${
    TRACE_LIMITS.lineBytes / 1024 / 1024
  } MiB nested at most ${TRACE_LIMITS.depth} deep; --ops at most 100000.
Trace format: oracle/FORMAT.md.`;

const USAGE = "Usage: evtchn oracle record|replay|diff|scenarios [ARGS...]\n" +
  "Run 'evtchn oracle --help' for the options.";

/** Each subcommand's own options (besides the global ones). */
const SUBCOMMANDS = {
  record: { backend: true, out: true },
  replay: { backend: true, all: true },
  diff: {
    seed: true,
    ops: true,
    against: true,
    backend: true,
    save: true,
    "max-tests": true,
  },
  scenarios: {},
} as const satisfies Record<string, Record<string, true>>;

const OPTIONS = {
  out: { type: "string" },
  all: { type: "boolean" },
  seed: { type: "string" },
  ops: { type: "string" },
  against: { type: "string" },
  save: { type: "string" },
  "max-tests": { type: "string" },
} as const satisfies Options;

/**
 * Runs `evtchn oracle` with its arguments (the words after `oracle`).
 *
 * @param args The arguments, such as `["replay", "trace.jsonl", "--all"]`.
 * @returns The exit code: 0 agreement, 1 divergence or failure, 2 usage.
 *
 * @example
 * ```ts
 * import { run } from "./oracle_command.ts";
 * import assert from "node:assert/strict";
 * assert.equal(await run(["diff", "--seed", "1", "--ops", "20", "--json"]), 0);
 * ```
 */
export async function run(args: string[]): Promise<number> {
  try {
    const { values, positionals, global } = parse(args, OPTIONS, USAGE);
    const [command, ...rest] = positionals;
    if (global.help || command === "help") {
      console.log(help);
      return EXIT_OK;
    }
    // Own properties only: "constructor" is not a command.
    if (command === undefined || !Object.hasOwn(SUBCOMMANDS, command)) {
      throw new UsageError(
        command === undefined
          ? "missing command (record, replay, diff or scenarios)"
          : `unknown command "${command}" (record, replay, diff or scenarios)`,
        USAGE,
      );
    }
    const own: Record<string, true> =
      SUBCOMMANDS[command as keyof typeof SUBCOMMANDS];
    for (const key of Object.keys(values)) {
      if (key !== "json" && key !== "help" && !Object.hasOwn(own, key)) {
        throw new UsageError(`${command} takes no --${key}`, USAGE);
      }
    }
    const out = new Output(global.json);
    const options = values as Record<string, string & boolean>;
    switch (command) {
      case "record":
        return await record(rest, options, out, USAGE);
      case "replay":
        return await replay(rest, options, out, USAGE);
      case "diff":
        return await diff(rest, options, out, USAGE);
      default:
        return listScenarios(rest, out, USAGE);
    }
  } catch (error) {
    // A backend that cannot start here (an EnvironmentError: no device, no
    // permission) is an operation that failed (1), as in every command.
    return reportError(error);
  }
}

if (import.meta.main) {
  Deno.exitCode = await run(Deno.args);
}
