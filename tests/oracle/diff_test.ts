// Differential runs: reproducible generation, agreement of two memory
// instances, and shrinking of a divergence to a small trace.

import assert from "node:assert/strict";
import fc from "npm:fast-check@3.23.2";
import {
  formatTrace,
  generateSteps,
  memoryBackend,
  OP_TABLE,
  OPS,
  type OracleHandle,
  parseTrace,
  replayTrace,
  runDiff,
  runSideBySide,
  shrinkList,
} from "../../oracle/mod.ts";
import { EventChannelError } from "../../mod.ts";
import { brief, delegate, fakeBackend } from "./_helpers.ts";

Deno.test("the same seed gives the same sequence; another seed another", () => {
  const a = generateSteps(42, 300);
  assert.deepEqual(a, generateSteps(42, 300));
  assert.notDeepEqual(a, generateSteps(43, 300));
  assert.deepEqual(generateSteps(42, 100), a.slice(0, 100));
  assert.equal(a[0].op, "open");
  assert.deepEqual(generateSteps(42, 0), []);
});

Deno.test("generated sequences cover every op and the bad inputs", () => {
  const steps = Array.from(
    { length: 20 },
    (_, seed) => generateSteps(seed, 300),
  )
    .flat();
  const ops = new Set(steps.map((s) => s.op));
  // Every op the table gives a weight is generated.
  for (const op of OPS.filter((op) => OP_TABLE[op].weight > 0)) {
    assert.ok(ops.has(op as never), `no ${op}`);
  }
  const text = JSON.stringify(steps);
  for (
    const needle of [
      '"abs":70000',
      '"abs":4096',
      '"abs":0}',
      '"virq":24',
      '"abs":32752',
      '"bucketEnd"',
    ]
  ) {
    assert.ok(text.includes(needle), `no ${needle}`);
  }
});

Deno.test("generated sequences are portable and safe on a real dom0", () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0xffff_ffff }), (seed) => {
      for (const step of generateSteps(seed, 400)) {
        if (step.op === "hc.reset") {
          assert.notDeepEqual(step.args.domain, { dom: "local" });
          assert.notDeepEqual(step.args.domain, { abs: 0 });
          assert.notDeepEqual(step.args.domain, { abs: 0x7ff0 });
        }
        const domain = JSON.stringify(step.args.domain);
        if (
          step.op === "hc.status" &&
          (domain === '{"dom":"local"}' || domain === '{"abs":32752}')
        ) {
          // dom0's storage grows over a boot: no bucket edges there
          assert.ok(!("bucketEnd" in (step.args.port as object)));
        }
        const remote = JSON.stringify(step.args.remote_domain);
        if (
          step.op === "bind_interdomain" &&
          (remote === '{"dom":"local"}' || remote === '{"abs":32752}')
        ) {
          // dom0's own ports: only the trace's, or none a kernel holds
          const port = step.args.remote_port as Record<string, number>;
          assert.ok(!("bucketEnd" in port));
          if ("abs" in port) assert.ok([0, 4096, 70000].includes(port.abs));
        }
      }
    }),
    { numRuns: 50 },
  );
});

Deno.test("memory agrees with a fresh memory instance on random sequences", async () => {
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 0, max: 0xffff_ffff }), async (seed) => {
      const run = await runSideBySide(
        generateSteps(seed, 150),
        memoryBackend(),
        memoryBackend(),
      );
      assert.equal(run.divergence, undefined, JSON.stringify(run.divergence));
      assert.equal(run.reference.length, 150);
    }),
    { numRuns: 25 },
  );
});

Deno.test("runDiff: a fixed seed is reproducible and agrees", async () => {
  const one = await runDiff({ seed: 1234, ops: 400 });
  const two = await runDiff({ seed: 1234, ops: 400 });
  assert.equal(one.agreed, true, one.divergence && brief(one.divergence));
  assert.deepEqual(one.steps, two.steps);
  assert.equal(one.minimal, undefined);
});

Deno.test("shrinkList finds exactly what a monotone test needs", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 60 }).chain((n) =>
        fc.tuple(
          fc.constant(n),
          fc.uniqueArray(fc.integer({ min: 0, max: n - 1 }), {
            minLength: 1,
            maxLength: Math.min(n, 5),
          }),
        )
      ),
      async ([n, needed]) => {
        const items = Array.from({ length: n }, (_, i) => i);
        const { items: shrunk } = await shrinkList(
          items,
          (xs) => Promise.resolve(needed.every((x) => xs.includes(x))),
        );
        assert.deepEqual(shrunk, [...needed].sort((a, b) => a - b));
      },
    ),
    { numRuns: 100 },
  );
});

/**
 * A backend with a planted bug: it forgets IOCTL_EVTCHN_RESTRICT_DOMID, so
 * a restricted handle may still offer ports.
 */
const forgetsRestrict = fakeBackend("forgets-restrict", (handle) => {
  const fake: OracleHandle = delegate(handle);
  fake.restrictDomain = (domain: number) => {
    if (domain === 0 || domain >= 0x7ff0) {
      throw new EventChannelError("restrict_domid", "EINVAL");
    }
  };
  return fake;
});

Deno.test("a planted bug is found and shrunk to a small trace that replays the divergence", async () => {
  let report;
  for (let seed = 1; seed <= 40; seed++) {
    report = await runDiff({ seed, ops: 300, against: forgetsRestrict });
    if (!report.agreed) break;
  }
  assert.ok(
    report !== undefined && !report.agreed,
    "no seed in 1..40 found it",
  );
  assert.ok(report.divergence !== undefined);
  const minimal = report.minimal;
  assert.ok(minimal !== undefined, "not shrunk");
  const steps = minimal.trace.steps;
  // open, restrict, a bind the restriction forbids: nothing else is needed
  assert.ok(
    steps.length <= 4,
    `still ${steps.length} steps:\n${formatTrace(minimal.trace)}`,
  );
  assert.ok(steps.some((s) => s.op === "restrict_domid"));
  assert.ok(
    ["bind_unbound_port", "bind_virq", "bind_interdomain", "restrict_domid"]
      .includes(steps.at(-1)!.op),
  );
  assert.equal(minimal.divergence.i, steps.at(-1)!.i);
  assert.equal(minimal.trace.header?.backend, "forgets-restrict");
  assert.match(minimal.trace.header?.note ?? "", /--seed \d+/);

  // Saved as text, it replays: the model diverges at the last step, the
  // faulty backend agrees with itself.
  const trace = parseTrace(formatTrace(minimal.trace), {
    requireOutcomes: true,
  });
  const onModel = await replayTrace(trace, memoryBackend());
  assert.deepEqual(onModel.divergences.map((d) => d.i), [steps.at(-1)!.i]);
  const onFake = await replayTrace(trace, forgetsRestrict);
  assert.deepEqual(onFake.divergences, []);
});

Deno.test("runDiff stops between two steps on its signal and says so", async () => {
  const controller = new AbortController();
  let seen = 0;
  const report = await runDiff({
    seed: 11,
    ops: 500,
    onStep: (index) => {
      seen = index + 1;
      if (index === 99) controller.abort();
    },
    signal: controller.signal,
  });
  assert.equal(report.interrupted, true);
  assert.equal(seen, 100); // step 100 never started
  assert.equal(report.agreed, true);
});
