// Where `evtchn sim` gets its scenarios: the built-in examples
// (cli/examples/), a file or standard input (bounded, parsed with line and
// column for every path); and the examples' listing.

import { readBoundedInput } from "./_input.ts";
import { type JsonLocation, parseLocatedJson } from "./_json.ts";
import { UsageError } from "./_args.ts";
import type { Output } from "./_output.ts";
import {
  type Scenario,
  SCENARIO_LIMITS,
  ScenarioError,
  validateScenario,
} from "../backends/memory/scenario/language.ts";
import twoDomains from "./examples/two_domains.json" with { type: "json" };
import teardown from "./examples/teardown.json" with { type: "json" };
import linuxDom0 from "./examples/linux_dom0.json" with { type: "json" };
import pirq from "./examples/pirq.json" with { type: "json" };

/** Built-in scenarios, by name (their files are in `cli/examples/`). */
export const EXAMPLES: Record<string, unknown> = {
  "two-domains": twoDomains,
  "teardown": teardown,
  "linux-dom0": linuxDom0,
  "pirq": pirq,
};

/**
 * Loads and checks a scenario.
 *
 * @param source A file (`-`: stdin) or a built-in example's name.
 * @param usage The command's usage, for an unknown example.
 * @returns The scenario, and where its paths are in the file.
 * @throws {UsageError} For an unknown example.
 * @throws {ScenarioError} For a file too large or a bad scenario.
 */
export async function loadScenario(
  source: { file: string } | { example: string },
  usage: string,
): Promise<{ scenario: Scenario; locate?: (path: string) => JsonLocation }> {
  if ("example" in source) {
    // Own properties only: "--example constructor" is not an example.
    const value = Object.hasOwn(EXAMPLES, source.example)
      ? EXAMPLES[source.example]
      : undefined;
    if (value === undefined) {
      throw new UsageError(
        `Unknown example '${source.example}': expected ${
          Object.keys(EXAMPLES).join(", ")
        }`,
        usage,
      );
    }
    return { scenario: validateScenario(value) };
  }
  const limit = SCENARIO_LIMITS.bytes;
  const bytes = await readBoundedInput(source.file, limit);
  if (bytes === undefined) {
    throw new ScenarioError(
      "",
      `larger than ${limit} bytes, the most a scenario file may be`,
    );
  }
  const parsed = parseLocatedJson(new TextDecoder().decode(bytes));
  return {
    scenario: validateScenario(parsed.value, parsed.locate),
    locate: parsed.locate,
  };
}

/**
 * Lists the built-in scenarios.
 *
 * @param out Where to.
 */
export function listExamples(out: Output): void {
  const list = Object.entries(EXAMPLES).map(([name, value]) => {
    const s = value as Scenario;
    return {
      name,
      description: s.description ?? "",
      domains: s.domains.length,
      steps: s.steps.length,
    };
  });
  if (out.json) {
    out.document({ examples: list });
    return;
  }
  const width = Math.max(...list.map((e) => e.name.length));
  for (const e of list) {
    out.line(
      `${out.out.paint("bold", e.name.padEnd(width))}  ${e.description}`,
    );
  }
}
