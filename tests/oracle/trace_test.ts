// The trace format: parsing, formatting, references and comparison.

import assert from "node:assert/strict";
import fc from "npm:fast-check@3.23.2";
import {
  checkStep,
  compareOutcomes,
  formatTrace,
  generateSteps,
  parseTrace,
  RefContext,
  RefError,
  type StepInput,
  toSteps,
  TraceParseError,
} from "../../oracle/mod.ts";

const HEADER =
  '{"type":"header","version":1,"backend":"memory","xen":"4.17 (model)","kernel":"6.1 (model)","abi":"fifo","vcpus":2,"recorded":"2025-01-01T00:00:00.000Z"}';
const OPEN =
  '{"type":"step","i":0,"handle":"h0","op":"open","args":{},"outcome":{"ok":null}}';

function parseError(text: string, requireOutcomes = true): TraceParseError {
  try {
    parseTrace(text, { requireOutcomes });
  } catch (error) {
    assert.ok(error instanceof TraceParseError, String(error));
    return error;
  }
  assert.fail("expected a TraceParseError");
}

Deno.test("parseTrace reads a header and steps, skipping blank lines", () => {
  const trace = parseTrace(`${HEADER}\n\n${OPEN}\n`, { requireOutcomes: true });
  assert.equal(trace.header?.backend, "memory");
  assert.equal(trace.header?.vcpus, 2);
  assert.equal(trace.steps.length, 1);
  assert.deepEqual(trace.lines, [3]);
});

Deno.test("parse errors name the line", async (t) => {
  const cases: [string, string, number, RegExp][] = [
    ["not JSON", `${HEADER}\n${OPEN}\n{"type":"step",`, 3, /not JSON/],
    [
      "unknown op",
      `${OPEN}\n{"i":1,"op":"bind_foo","args":{}}`,
      2,
      /unknown op "bind_foo"/,
    ],
    [
      "missing handle",
      `{"op":"notify","args":{"port":{"rel":0}}}`,
      1,
      /needs a "handle"/,
    ],
    [
      "handle on a hypercall",
      `{"op":"hc.reset","handle":"h0","args":{"domain":{"dom":"peer"}}}`,
      1,
      /takes no "handle"/,
    ],
    [
      "missing argument",
      `{"op":"unbind","handle":"h0","args":{}}`,
      1,
      /needs argument "port"/,
    ],
    [
      "extra argument",
      `{"op":"reset","handle":"h0","args":{"port":1}}`,
      1,
      /has no argument "port"/,
    ],
    [
      "bad port reference",
      `{"op":"unbind","handle":"h0","args":{"port":{"rel":"x"}}}`,
      1,
      /bad port reference/,
    ],
    [
      "bad domain reference",
      `{"op":"bind_unbound_port","handle":"h0","args":{"remote_domain":{"dom":"self"}}}`,
      1,
      /bad domain reference/,
    ],
    [
      "negative VIRQ",
      `{"op":"bind_virq","handle":"h0","args":{"virq":-1}}`,
      1,
      /virq/,
    ],
    [
      "timing on a notify",
      `{"op":"notify","handle":"h0","args":{"port":1},"timing":"coalesce"}`,
      1,
      /only to read/,
    ],
    [
      "unknown key",
      `{"op":"reset","handle":"h0","args":{},"outcom":{"ok":null}}`,
      1,
      /unknown key "outcom"/,
    ],
    ["late header", `${OPEN}\n${HEADER}`, 2, /first line/],
    [
      "bad version",
      HEADER.replace('"version":1', '"version":2'),
      1,
      /version 2/,
    ],
    ["index going back", `${OPEN}\n${OPEN}`, 2, /does not follow/],
    [
      "bad outcome",
      `{"op":"reset","handle":"h0","args":{},"outcome":{"error":{"code":"EINVAL"}}}`,
      1,
      /bad error outcome/,
    ],
    [
      "missing outcome",
      `${OPEN}\n{"op":"reset","handle":"h0","args":{}}`,
      2,
      /has no "outcome"/,
    ],
    ["a step that is not an object", `[1,2]`, 1, /must be an object/],
  ];
  for (const [name, text, line, message] of cases) {
    await t.step(name, () => {
      const error = parseError(text);
      assert.equal(error.line, line, error.message);
      assert.match(error.message, new RegExp(`^line ${line}, column \\d+: `));
      assert.ok(error.column >= 1, error.message);
      assert.match(error.message, message);
    });
  }
});

Deno.test("steps without outcomes parse when outcomes are not required", () => {
  const trace = parseTrace(
    '{"op":"open","handle":"h0"}\n{"op":"unbind","handle":"h0","args":{"port":70000}}\n',
  );
  assert.equal(trace.steps[0].i, 0);
  assert.equal(trace.steps[1].i, 1);
  assert.deepEqual(trace.steps[1].args, { port: { abs: 70000 } });
});

Deno.test("a bare integer is an absolute reference", () => {
  const step = checkStep(
    {
      op: "bind_interdomain",
      handle: "h0",
      args: { remote_domain: 999, remote_port: 3 },
    },
    0,
  );
  assert.ok(typeof step !== "string", String(step));
  assert.deepEqual(step.args, {
    remote_domain: { abs: 999 },
    remote_port: { abs: 3 },
  });
});

Deno.test("formatTrace and parseTrace round-trip any generated sequence", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 0xffff_ffff }),
      fc.integer({ min: 0, max: 120 }),
      fc.boolean(),
      (seed, count, coalesceReads) => {
        const steps = toSteps(
          generateSteps(seed, count, { coalesceReads }),
        );
        steps.forEach((step, i) => {
          step.outcome = i % 3 === 0
            ? { ok: { rel: i } }
            : { error: { code: "EINVAL", errno: 22 } };
        });
        const text = formatTrace({ steps });
        const back = parseTrace(text, { requireOutcomes: true });
        assert.deepEqual(back.steps, steps);
        assert.equal(formatTrace({ steps: back.steps }), text);
      },
    ),
    { numRuns: 60 },
  );
});

Deno.test("RefContext: rel from the first allocation, abs otherwise", () => {
  const refs = new RefContext(0, () => 7);
  assert.throws(() => refs.port("local", { rel: 0 }), RefError);
  assert.throws(() => refs.port("local", { bucketEnd: 0 }), RefError);
  refs.allocated("local", 27);
  refs.allocated("local", 28);
  assert.equal(refs.port("local", { rel: 1 }), 28);
  assert.equal(refs.port("local", { abs: 4096 }), 4096);
  assert.equal(refs.port("local", { bucketEnd: 0 }), 64);
  assert.equal(refs.port("local", { bucketEnd: -1 }), 63);
  assert.deepEqual(refs.encodePort("local", 30), { rel: 3 });
  assert.deepEqual(refs.encodePort("local", 26), { abs: 26 });
  assert.deepEqual(refs.encodePort("local", 70000), { abs: 70000 });
  assert.equal(refs.peerIfCreated, undefined);
  assert.deepEqual(refs.encodeDomain(7), { abs: 7 });
  assert.equal(refs.domain({ dom: "peer" }), 7);
  assert.deepEqual(refs.encodeDomain(7), { dom: "peer" });
  assert.deepEqual(refs.encodeDomain(0), { dom: "local" });
  assert.equal(refs.spaceOf(0x7ff0), "local");
  assert.equal(refs.spaceOf(7), "peer");
});

Deno.test("RefContext: encoding then resolving a port gives it back", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 3000 }),
      fc.integer({ min: 0, max: 0xffff_ffff }),
      (base, port) => {
        const refs = new RefContext(0, 1);
        refs.allocated("local", base);
        assert.equal(refs.port("local", refs.encodePort("local", port)), port);
      },
    ),
  );
});

Deno.test("compareOutcomes", async (t) => {
  const step = (op: StepInput["op"], timing?: StepInput["timing"]) => {
    const s: StepInput = { handle: "h0", op, args: {} };
    if (timing) s.timing = timing;
    return s;
  };
  const einval = { error: { code: "EINVAL", errno: 22 } };
  await t.step("errors by code", () => {
    assert.equal(compareOutcomes(step("unbind"), einval, einval), undefined);
    assert.match(
      compareOutcomes(step("unbind"), einval, {
        error: { code: "ENOTCONN", errno: 107 },
      })!,
      /expected EINVAL, got ENOTCONN/,
    );
    assert.match(compareOutcomes(step("unbind"), einval, { ok: null })!, /ok/);
  });
  await t.step("results regardless of key order", () => {
    assert.equal(
      compareOutcomes(
        step("reset"),
        { ok: { status: "closed", vcpu: 0 } },
        { ok: { vcpu: 0, status: "closed" } },
      ),
      undefined,
    );
  });
  await t.step("reads as multisets, sets or not at all", () => {
    const a = { ok: [{ rel: 1 }, { rel: 2 }] };
    const b = { ok: [{ rel: 2 }, { rel: 1 }] };
    const c = { ok: [{ rel: 1 }, { rel: 2 }, { rel: 2 }] };
    assert.equal(compareOutcomes(step("read"), a, b), undefined);
    assert.match(compareOutcomes(step("read"), a, c)!, /multiset/);
    assert.equal(compareOutcomes(step("read", "coalesce"), a, c), undefined);
    assert.match(
      compareOutcomes(step("read", "coalesce"), a, { ok: [{ rel: 1 }] })!,
      /set/,
    );
    assert.equal(
      compareOutcomes(step("read", "drain"), a, { ok: [] }),
      undefined,
    );
    assert.ok(compareOutcomes(step("read", "drain"), a, einval));
  });
});

Deno.test("ignore: listed result fields are not compared", () => {
  const step = checkStep({
    op: "hc.status",
    args: { domain: { dom: "local" }, port: { rel: 0 } },
    ignore: ["vcpu"],
  }, 0);
  assert.ok(typeof step !== "string", String(step));
  assert.equal(
    compareOutcomes(
      step,
      { ok: { status: "virq", vcpu: 0, virq: 6 } },
      { ok: { status: "virq", vcpu: 1, virq: 6 } },
    ),
    undefined,
  );
  assert.ok(compareOutcomes(
    step,
    { ok: { status: "virq", vcpu: 0, virq: 6 } },
    { ok: { status: "virq", vcpu: 0, virq: 7 } },
  ));
  assert.match(
    String(checkStep({ op: "reset", handle: "h0", ignore: "vcpu" }, 0)),
    /"ignore" must be a list/,
  );
});
