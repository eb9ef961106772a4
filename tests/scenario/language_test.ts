// The scenario language's ops against the model's op table (EVTCHN_OPS) and
// the documented format (cli/examples/README.md): the EVTCHNOP entries are
// derived from the table, so these tests catch the two drifting apart (an
// op added, an argument renamed or retyped) and a rename leaking into the
// field names scenario files use.

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  type FieldKind,
  OPS,
  SCENARIO_EXCLUDED_EVTCHNOPS,
  ScenarioError,
  validateScenario,
} from "../../backends/memory/scenario/language.ts";
import { ScenarioRunner } from "../../backends/memory/scenario/runner.ts";
import {
  EVTCHN_OPS,
  type OpArgType,
} from "../../backends/memory/hypervisor/op_table.ts";

const EVTCHNOPS = Object.values(EVTCHN_OPS);
const exposed = EVTCHNOPS.filter((op) => Object.hasOwn(OPS, op.name));

Deno.test("every EVTCHNOP is a scenario op or excluded with a reason", () => {
  for (const op of EVTCHNOPS) {
    const inScenario = Object.hasOwn(OPS, op.name);
    const excluded = Object.hasOwn(SCENARIO_EXCLUDED_EVTCHNOPS, op.name);
    assert.ok(inScenario !== excluded, `${op.name}: in OPS xor excluded`);
  }
  for (const [name, reason] of Object.entries(SCENARIO_EXCLUDED_EVTCHNOPS)) {
    assert.ok(Object.hasOwn(EVTCHN_OPS, name), `${name} is no EVTCHNOP`);
    assert.ok(reason.length > 20, `${name}: a reason, not a placeholder`);
  }
  assert.equal(exposed.length, 12);
});

Deno.test("a scenario EVTCHNOP takes the op table's arguments, in order", () => {
  // A field's kind from its C type; a VIRQ also by name (the scenario's own).
  const kind: Record<OpArgType, FieldKind> = {
    domid_t: "domain",
    evtchn_port_t: "port",
    uint32_t: "int",
    xen_pfn_t: "int",
  };
  for (const op of exposed) {
    const spec = OPS[op.name];
    assert.equal(spec.by, "caller", op.name);
    assert.equal(spec.returns, op.returns, op.name);
    assert.deepEqual(
      Object.entries(spec.fields).map(([name, f]) => `${f.kind} ${name}`),
      op.args.map((a) =>
        `${a.name === "virq" ? "virq" : kind[a.type]} ${a.name}`
      ),
      op.name,
    );
    assert.match(spec.doc, new RegExp(`^EVTCHNOP_${op.name}\\b`));
  }
});

Deno.test("only an EVTCHNOP has a caller", () => {
  for (const [name, spec] of Object.entries(OPS)) {
    assert.equal(spec.by === "caller", Object.hasOwn(EVTCHN_OPS, name), name);
  }
});

Deno.test("ops, fields and defaults are the ones cli/examples/README.md documents", async () => {
  const readme = await Deno.readTextFile(
    fileURLToPath(new URL("../../cli/examples/README.md", import.meta.url)),
  );
  const rows = (header: RegExp): string[][] => {
    const lines = readme.split("\n");
    const start = lines.findIndex((line) => header.test(line));
    assert.ok(start >= 0, `README has a table headed ${header}`);
    const body = lines.slice(start + 2);
    const end = body.findIndex((line) => !line.startsWith("|"));
    return body.slice(0, end).map((line) =>
      line.split("|").slice(1, -1).map((cell) => cell.trim())
    );
  };
  const ops = rows(/^\| op +\| fields +\|/);
  assert.deepEqual(
    ops.map(([op]) => op),
    Object.keys(OPS).map((o) => `\`${o}\``),
  );
  for (const [cell, fields] of ops) {
    const name = cell.slice(1, -1);
    if (name === "create_domain") continue; // "id, and the domain keys above"
    const spec = OPS[name];
    const expected = [
      ...(spec.by === "caller" ? ["caller"] : []),
      ...Object.entries(spec.fields).map(([key, f]) =>
        f.default === undefined ? key : `[${key}=${f.default}]`
      ),
    ];
    assert.equal(fields, expected.join(", "), name);
  }
  const domainKeys = rows(/^\| key +\| default +\|/).map(([key]) => key);
  assert.deepEqual(
    domainKeys,
    Object.keys(OPS.create_domain.fields).map((k) => `\`${k}\``),
  );
});

Deno.test("an excluded EVTCHNOP is an unknown op; defaults make fields optional", () => {
  for (const name of Object.keys(SCENARIO_EXCLUDED_EVTCHNOPS)) {
    assert.throws(
      () => validateScenario({ domains: [], steps: [{ op: name, caller: 0 }] }),
      (e) =>
        e instanceof ScenarioError && e.path === "steps[0].op" &&
        e.message.startsWith(`unknown op '${name}' (expected alloc_unbound, `),
    );
  }
  const steps = [
    { op: "bind_virq", caller: 0, virq: "TIMER" },
    { op: "bind_ipi", caller: 0 },
    { op: "bind_pirq", caller: 0, pirq: 1 },
  ];
  assert.equal(validateScenario({ domains: [], steps }).steps.length, 3);
  assert.throws(
    () =>
      validateScenario({
        domains: [],
        steps: [{ op: "bind_vcpu", caller: 0, port: 1 }],
      }),
    (e) =>
      e instanceof ScenarioError && e.path === "steps[0]" &&
      e.message === "'bind_vcpu' needs 'vcpu'",
  );
});

Deno.test("the runner passes each EVTCHNOP's fields in the op table's order", () => {
  // One argument out of its C type at a time: Xen's EINVAL must name that
  // argument, so a field passed in another's place shows.
  for (const op of exposed) {
    op.args.forEach((bad, i) => {
      const runner = new ScenarioRunner();
      runner.createDomain({ id: 0, privileged: true });
      const step: Record<string, unknown> = { op: op.name, caller: 0 };
      op.args.forEach((a, j) => step[a.name] = j === i ? -1 : 0);
      const outcome = runner.step({ op: op.name, ...step }, 1);
      assert.equal(outcome.outcome, "error", `${op.name} ${bad.name}`);
      assert.equal(outcome.error?.code, "EINVAL", `${op.name} ${bad.name}`);
      assert.equal(outcome.error?.op, op.name);
      assert.match(
        outcome.error!.message,
        new RegExp(`\\b${bad.name}=-1\\b`),
        `${op.name} ${bad.name}`,
      );
    });
  }
});
