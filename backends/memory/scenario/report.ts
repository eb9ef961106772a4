/**
 * A scenario run as a person reads it: each step's call and outcome, the
 * count of failures, each live domain's `xl debug-keys e` table, the model's
 * invariants, and in lint or fault mode the findings and the faults
 * injected. Colour is the caller's (`paint`).
 *
 * @example
 * ```ts
 * import { reportLines } from "./report.ts";
 * import assert from "node:assert/strict";
 * const lines = reportLines({
 *   name: "empty",
 *   domains: [{ id: 0, privileged: true }],
 *   outcomes: [],
 *   tables: [{ id: 0, ports: [] }],
 *   invariants: [],
 * }, (_style, text) => text);
 * assert.equal(lines[0], "scenario empty");
 * assert.ok(lines.includes("model invariants: hold"));
 * ```
 *
 * @module
 */

import type { Finding } from "../lint.ts";
import { formatFindings } from "../lint.ts";
import type { InjectedFault } from "../faults.ts";
import { dumpLines, type DumpRow, maxOf } from "../hypervisor/dump.ts";
import type { StepOutcome } from "./runner.ts";

/** A style the caller may paint text in. */
export type Style = "bold" | "red" | "green" | "yellow" | "dim";

/** What a report shows. */
export interface ReportInput {
  /** The scenario's name. */
  name: string;
  /** Its description. */
  description?: string;
  /** Its domains as listed. */
  domains: readonly { id: number; privileged?: boolean }[];
  /** The steps run. */
  outcomes: readonly StepOutcome[];
  /** Each live domain's rows. */
  tables: readonly { id: number; ports: readonly DumpRow[] }[];
  /** Broken invariants. */
  invariants: readonly string[];
  /** Lint's findings, with `--lint`. */
  findings?: readonly Finding[];
  /** The faults injected, when the scenario has faults. */
  faults?: readonly InjectedFault[];
}

/**
 * A step's result in words: `port 3 → $p`, `ok`, or a status.
 *
 * @param o The outcome.
 * @returns The words.
 */
export function describeResult(o: StepOutcome): string {
  const result = o.result;
  if (typeof result === "number") {
    return `port ${result}${o.as === undefined ? "" : ` → $${o.as}`}`;
  }
  if (result === undefined) return "ok";
  const { status, ...rest } = result;
  return [status, ...Object.entries(rest).map(([k, v]) => `${k}=${v}`)]
    .join(" ");
}

/**
 * A step's arguments: `port=$p(3) vcpu=0`.
 *
 * @param o The outcome.
 * @returns The words.
 */
export function describeArgs(o: StepOutcome): string {
  return Object.entries(o.args)
    .filter(([key]) => key !== "caller")
    .map(([key, value]) => {
      const ref = o.refs[key];
      return ref === undefined ? `${key}=${value}` : `${key}=${ref}(${value})`;
    })
    .concat(
      Object.entries(o.refs)
        .filter(([key]) => !(key in o.args))
        .map(([key, ref]) => `${key}=${ref}`),
    )
    .join(" ");
}

function outcomeText(
  o: StepOutcome,
  paint: (style: Style, text: string) => string,
): string {
  if (o.outcome === "ok") {
    const text = paint(o.failed ? "red" : "green", describeResult(o));
    return o.failed ? text + paint("red", ` (expected ${o.expect})`) : text;
  }
  if (o.outcome === "skipped") return paint("red", `skipped: ${o.skipped}`);
  const e = o.error!;
  const expected = o.expect === e.code;
  let text = paint(expected ? "yellow" : "red", e.code) +
    (expected ? " (expected)" : "") + paint("dim", ` ${e.message}`);
  if (!expected && o.expect !== undefined) {
    text += paint("red", ` (expected ${o.expect})`);
  }
  return text;
}

function faultText(f: InjectedFault): string {
  const parts = Object.entries(f)
    .filter(([key]) => key !== "step" && key !== "kind" && key !== "skipped")
    .map(([key, value]) => `${key}=${value}`);
  const skipped = f.skipped === undefined ? "" : ` (skipped: ${f.skipped})`;
  return `  step ${f.step}: ${f.kind} ${parts.join(" ")}${skipped}`.trimEnd();
}

/**
 * The report's lines.
 *
 * @param r What to show.
 * @param paint Paints text in a style (identity for plain text).
 * @returns The lines, without newlines.
 */
export function reportLines(
  r: ReportInput,
  paint: (style: Style, text: string) => string,
): string[] {
  const lines: string[] = [];
  lines.push(
    `${paint("bold", `scenario ${r.name}`)}${
      r.description === undefined ? "" : `: ${r.description}`
    }`,
  );
  lines.push(
    `domains: ${
      r.domains.map((d) => `d${d.id}${d.privileged ? " (privileged)" : ""}`)
        .join(", ")
    }`,
  );
  lines.push("");
  const calls = r.outcomes.map((o) => `${o.op} ${describeArgs(o)}`.trimEnd());
  const width = maxOf(calls, (c) => c.length);
  const byWidth = Math.max(2, maxOf(r.outcomes, (o) => o.by.length));
  const indexWidth = String(r.outcomes.length).length;
  r.outcomes.forEach((o, i) => {
    lines.push(
      `${String(o.index).padStart(indexWidth)}  ${o.by.padEnd(byWidth)}  ${
        calls[i].padEnd(width)
      }  ${outcomeText(o, paint)}`,
    );
  });
  let failed = 0;
  for (const o of r.outcomes) if (o.failed) failed++;
  lines.push("");
  lines.push(
    `${r.outcomes.length} steps, ${
      failed === 0 ? "none failed" : paint("red", `${failed} failed`)
    }`,
  );
  for (const d of r.tables) {
    lines.push("", `Event channel information for domain ${d.id}:`);
    lines.push("    port [p/m/s]", ...dumpLines(d.ports));
  }
  lines.push("");
  if (r.invariants.length === 0) {
    lines.push("model invariants: hold");
  } else {
    lines.push(
      paint("red", `model invariants broken (${r.invariants.length}):`),
    );
    for (const v of r.invariants) lines.push(`  ${v}`);
  }
  if (r.faults !== undefined) {
    lines.push("", `faults injected: ${r.faults.length}`);
    for (const f of r.faults) lines.push(faultText(f));
  }
  if (r.findings !== undefined) {
    lines.push("", `lint: ${r.findings.length} finding(s)`);
    if (r.findings.length > 0) lines.push(formatFindings(r.findings));
  }
  return lines;
}
