/**
 * When two outcomes agree: errors by errno name, results as canonical
 * JSON, and `read` results as multisets, sets (`timing: "coalesce"`) or
 * not at all (`timing: "drain"`).
 *
 * @module
 */

import type { HostSnapshot } from "../mod.ts";
import type { JsonValue, Outcome, StepInput } from "./trace.ts";

/** JSON with object keys sorted, so that key order never matters. */
function canonical(value: JsonValue | undefined): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (typeof value === "object" && value !== null) {
    const keys = Object.keys(value).sort();
    return `{${
      keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")
    }}`;
  }
  return JSON.stringify(value) ?? "undefined";
}

/** An object result without the fields a step says not to compare. */
function without(value: JsonValue, ignore: string[] | undefined): JsonValue {
  if (
    ignore === undefined || typeof value !== "object" || value === null ||
    Array.isArray(value)
  ) return value;
  const out: Record<string, JsonValue> = {};
  for (const [k, v] of Object.entries(value)) {
    if (!ignore.includes(k)) out[k] = v;
  }
  return out;
}

/**
 * The fields a step's `ignore` left out of the comparison that do differ:
 * not divergences, but worth a look.
 *
 * @param step The step.
 * @param expected The recorded outcome.
 * @param actual The outcome now.
 * @returns One entry per differing ignored field.
 *
 * @example
 * ```ts
 * import { ignoredDifferences } from "./compare.ts";
 * import assert from "node:assert/strict";
 * const step = { op: "hc.status" as const, args: {}, ignore: ["vcpu"] };
 * assert.deepEqual(
 *   ignoredDifferences(step, { ok: { vcpu: 0 } }, { ok: { vcpu: 1 } }),
 *   [{ field: "vcpu", expected: 0, actual: 1 }],
 * );
 * ```
 */
export function ignoredDifferences(
  step: StepInput,
  expected: Outcome,
  actual: Outcome,
): { field: string; expected: JsonValue; actual: JsonValue }[] {
  if (step.ignore === undefined || !("ok" in expected) || !("ok" in actual)) {
    return [];
  }
  const a = expected.ok, b = actual.ok;
  if (
    typeof a !== "object" || a === null || Array.isArray(a) ||
    typeof b !== "object" || b === null || Array.isArray(b)
  ) return [];
  // Own fields only: an ignored "constructor" must not read Object's.
  const field = (
    o: Record<string, JsonValue>,
    k: string,
  ): JsonValue | undefined => Object.hasOwn(o, k) ? o[k] : undefined;
  return step.ignore.flatMap((k) =>
    canonical(field(a, k)) === canonical(field(b, k)) ? [] : [{
      field: k,
      expected: field(a, k) ?? null,
      actual: field(b, k) ?? null,
    }]
  );
}

/**
 * An outcome in one short line, for reports.
 *
 * @param outcome The outcome.
 * @returns Such as `ok {"rel":0}` or `error ENOTCONN (107)`.
 *
 * @example
 * ```ts
 * import { describeOutcome } from "./compare.ts";
 * import assert from "node:assert/strict";
 * assert.equal(
 *   describeOutcome({ error: { code: "EINVAL", errno: 22 } }),
 *   "error EINVAL (22)",
 * );
 * ```
 */
export function describeOutcome(outcome: Outcome | undefined): string {
  if (outcome === undefined) return "(none)";
  if ("ok" in outcome) return `ok ${canonical(outcome.ok)}`;
  const e = outcome.error;
  return `error ${e.code} (${e.errno})${e.message ? `: ${e.message}` : ""}`;
}

/**
 * Compares what a step produced with what was expected (fields listed in
 * the step's `ignore` left out).
 *
 * @param step The step (its op and `timing` choose the comparison).
 * @param expected The recorded outcome.
 * @param actual The outcome now.
 * @returns `undefined` when they agree, otherwise why not.
 *
 * @example
 * ```ts
 * import { compareOutcomes } from "./compare.ts";
 * import assert from "node:assert/strict";
 * const read = { handle: "h0", op: "read" as const, args: {}, timing: "coalesce" as const };
 * assert.equal(
 *   compareOutcomes(read, { ok: [{ rel: 1 }, { rel: 1 }] }, { ok: [{ rel: 1 }] }),
 *   undefined,
 * );
 * assert.match(
 *   compareOutcomes(read, { ok: [] }, { error: { code: "EFBIG", errno: 27 } })!,
 *   /EFBIG/,
 * );
 * ```
 */
export function compareOutcomes(
  step: StepInput,
  expected: Outcome,
  actual: Outcome,
): string | undefined {
  if ("error" in expected || "error" in actual) {
    if ("error" in expected && "error" in actual) {
      return expected.error.code === actual.error.code
        ? undefined
        : `expected ${expected.error.code}, got ${actual.error.code}`;
    }
    return `expected ${describeOutcome(expected)}, got ${
      describeOutcome(actual)
    }`;
  }
  const want = expected.ok;
  const got = actual.ok;
  if (step.op === "read" && Array.isArray(want) && Array.isArray(got)) {
    if (step.timing === "drain") return undefined;
    let a = want.map(canonical).sort();
    let b = got.map(canonical).sort();
    if (step.timing === "coalesce") {
      a = [...new Set(a)];
      b = [...new Set(b)];
    }
    if (a.length === b.length && a.every((x, i) => x === b[i])) {
      return undefined;
    }
    const kind = step.timing === "coalesce" ? "set" : "multiset";
    return `ports read differ (as a ${kind}): expected [${a.join(",")}], got [${
      b.join(",")
    }]`;
  }
  const a = canonical(without(want, step.ignore));
  const b = canonical(without(got, step.ignore));
  return a === b ? undefined : `expected ok ${a}, got ok ${b}`;
}

/**
 * Compares two snapshots of the local domain's whole port table, port by
 * port and field by field (vCPU included), with the peer domain's id on
 * each side taken as the same domain. Also compares the kernel's channel
 * limit and Xen's port storage.
 *
 * @param expected The reference's snapshot.
 * @param expectedPeer The peer's id on the reference, if it was created.
 * @param actual The other backend's snapshot.
 * @param actualPeer The peer's id there.
 * @returns Why they differ (the first few ports), or `undefined`.
 *
 * @example
 * ```ts
 * import { compareTables } from "./compare.ts";
 * import { MemoryXen } from "../mod.ts";
 * import assert from "node:assert/strict";
 * const host = new MemoryXen().snapshot();
 * assert.equal(compareTables(host, undefined, host, undefined), undefined);
 * const moved = structuredClone(host);
 * moved.ports[0].vcpu = 1;
 * assert.match(compareTables(host, undefined, moved, undefined)!, /port 1/);
 * ```
 */
export function compareTables(
  expected: HostSnapshot,
  expectedPeer: number | undefined,
  actual: HostSnapshot,
  actualPeer: number | undefined,
): string | undefined {
  const problems: string[] = [];
  for (const key of ["abi", "vcpus", "nrChannels", "validPorts"] as const) {
    if (expected[key] !== actual[key]) {
      problems.push(`${key}: expected ${expected[key]}, got ${actual[key]}`);
    }
  }
  const rows = (s: HostSnapshot, peer: number | undefined) => {
    const map = new Map<number, string>();
    for (const p of s.ports) {
      const row: Record<string, unknown> = { ...p };
      if (peer !== undefined && row.remoteDomain === peer) {
        row.remoteDomain = "peer";
      }
      map.set(p.port, JSON.stringify(row, Object.keys(row).sort()));
    }
    return map;
  };
  const a = rows(expected, expectedPeer), b = rows(actual, actualPeer);
  const ports = [...new Set([...a.keys(), ...b.keys()])].sort((x, y) => x - y);
  for (const port of ports) {
    const x = a.get(port) ?? "closed", y = b.get(port) ?? "closed";
    if (x !== y) problems.push(`port ${port}: expected ${x}, got ${y}`);
  }
  if (problems.length === 0) return undefined;
  const shown = problems.slice(0, 5).join("; ");
  return `status table differs at ${problems.length} places: ${shown}` +
    (problems.length > 5 ? "; …" : "");
}
