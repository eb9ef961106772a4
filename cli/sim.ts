/**
 * `evtchn sim`: run a scenario (domains and a script of hypervisor
 * operations) on the in-memory Xen model, print each step's outcome and then
 * every domain's channel table in the style of `xl debug-keys e`.
 *
 * @module
 */

import {
  noMorePositionals,
  optionalString,
  parse,
  UsageError,
} from "./_args.ts";
import { JsonSyntaxError, MAX_JSON_DEPTH } from "./_json.ts";
import { onInterrupt, STOP_SIGNALS } from "./_interrupt.ts";
import {
  errorMessage,
  EXIT_FAILURE,
  EXIT_OK,
  Output,
  reportError,
} from "./_output.ts";
import {
  SCENARIO_LIMITS,
  ScenarioError,
  scenarioReference,
} from "../backends/memory/scenario/language.ts";
import { ScenarioRunner } from "../backends/memory/scenario/runner.ts";
import { reportLines } from "../backends/memory/scenario/report.ts";
import { EXAMPLES, listExamples, loadScenario } from "./_scenario.ts";

export { EXAMPLES };

const USAGE = `Usage: evtchn sim FILE|- [--lint] [--strict] [--json]
       evtchn sim --example NAME [--lint] [--strict] [--json]
       evtchn sim --list-examples [--json]`;

/** Help text of `evtchn sim`. */
export const help: string =
  `evtchn sim: run a scenario on the in-memory Xen 4.17 model

${USAGE}

Reads the scenario from FILE ('-': standard input) or a built-in example.
Creates the scenario's domains, runs its steps in order and prints each
step's outcome (its result, or the errno Xen gives), then, for each domain
still alive, its channel table as 'xl debug-keys e' prints it:

    port [p/m/s]: s=STATE n=VCPU x=XEN  d=DOM p=PORT | v=VIRQ | p=PIRQ  NAME

p/m/s are the pending and masked bits and the 2-level selector bit (under
FIFO: B when busy, then the link or -); s= is Xen's internal state number
(1 reserved, 2 unbound, 3 interdomain, 4 pirq, 5 virq, 6 ipi), followed here
by its name. The model's invariants are checked at the end. A failing step
does not stop the run.

OPTIONS:
  --example NAME     Run a built-in scenario (${
    Object.keys(EXAMPLES).join(", ")
  })
  --list-examples    List the built-in scenarios
  --lint             Lint mode: report what loses events (sends nobody
                     hears, pending events closed away, sends to paused
                     or dying domains), as MemoryXen({ lint: true }) does
  --strict           Exit 1 when a step failed, an invariant broke or
                     lint found something
  --json             One JSON document with "version": 1
  -h, --help         Show this help

EXIT: 0, or 1 with --strict when a step failed; 2 for a bad scenario file
(the message gives the line, column and path of the mistake); 130/143 when
SIGINT/SIGTERM stopped it (the steps run so far and the tables are printed).

LIMITS: a file of at most ${
    SCENARIO_LIMITS.bytes / 1024 / 1024
  } MiB, ${SCENARIO_LIMITS.steps} steps, ${SCENARIO_LIMITS.domains} domains, JSON nested at most
${MAX_JSON_DEPTH} levels deep; beyond them, exit 2.

${scenarioReference()}

EXAMPLES:
  evtchn sim --example two-domains
  evtchn sim --example teardown --json
  evtchn sim my_scenario.json --strict`;

/**
 * Runs `evtchn sim`.
 *
 * @param args The arguments after `sim`.
 * @returns The exit status.
 */
export async function run(args: string[]): Promise<number> {
  let file: string | undefined;
  try {
    const { values, positionals, global } = parse(args, {
      example: { type: "string" },
      "list-examples": { type: "boolean" },
      strict: { type: "boolean" },
      lint: { type: "boolean" },
    }, USAGE);
    if (global.help) {
      console.log(help);
      return EXIT_OK;
    }
    if (global.backend === "linux") {
      throw new UsageError(
        "sim runs on the in-memory model only; it takes no --backend linux",
        USAGE,
      );
    }
    const out = new Output(global.json);
    if (values["list-examples"] === true) {
      noMorePositionals(positionals, USAGE);
      listExamples(out);
      return EXIT_OK;
    }
    const example = optionalString(values.example);
    [file] = positionals;
    noMorePositionals(positionals.slice(1), USAGE);
    if ((example === undefined) === (file === undefined)) {
      throw new UsageError(
        "Give a scenario FILE or --example NAME (one of them)",
        USAGE,
      );
    }
    const { scenario, locate } = await loadScenario(
      example === undefined ? { file: file! } : { example },
      USAGE,
    );
    const name = scenario.name ?? example ?? file!;
    const lint = values.lint === true;
    const runner = new ScenarioRunner({ lint, scenario, errorMessage });
    runner.createDomains(scenario.domains, locate);
    using interrupt = onInterrupt(STOP_SIGNALS);
    const total = scenario.steps.length;
    if (total >= 10_000) out.note(`sim: running ${total} steps`);
    const outcomes = await runner.run(scenario.steps, interrupt.signal);
    const stopped = interrupt.exitCode;
    if (stopped !== undefined) {
      out.warn(`interrupted after ${outcomes.length} of ${total} steps`);
    }
    let failed = 0;
    for (const o of outcomes) if (o.failed) failed++;
    const { invariants, domains, findings, faults } = runner.summary();
    if (out.json) {
      out.document({
        scenario: { name, description: scenario.description ?? null },
        ...(stopped === undefined ? {} : { interrupted: true, total }),
        steps: outcomes,
        failed,
        domains,
        invariants,
        ...(faults === undefined ? {} : { faults }),
        ...(findings === undefined ? {} : { findings }),
      });
    } else {
      const lines = reportLines({
        name,
        description: scenario.description,
        domains: scenario.domains,
        outcomes,
        tables: domains,
        invariants,
        findings,
        faults,
      }, (style, text) => out.out.paint(style, text));
      for (const line of lines) out.line(line);
    }
    if (stopped !== undefined) return stopped;
    const bad = failed > 0 || invariants.length > 0 || !!findings?.length;
    return values.strict === true && bad ? EXIT_FAILURE : EXIT_OK;
  } catch (error) {
    const source = file === "-" ? "<stdin>" : file ?? "scenario";
    const hint = "See 'evtchn sim --help' for the scenario format.";
    if (error instanceof JsonSyntaxError) {
      const { line, column } = error.location;
      return reportError(
        new UsageError(`${source}:${line}:${column}: ${error.message}`, hint),
      );
    }
    if (error instanceof ScenarioError) {
      const where = error.location === undefined
        ? source
        : `${source}:${error.location.line}:${error.location.column}`;
      const path = error.path === "" ? "" : ` ${error.path}:`;
      return reportError(
        new UsageError(`${where}:${path} ${error.message}`, hint),
      );
    }
    return reportError(error);
  }
}
