// Recording and replaying on the in-memory backend: one determinism check
// over every built-in scenario; an altered trace diverges where it was
// altered; a program recorded through the wrappers replays.

import assert from "node:assert/strict";
import {
  formatDivergence,
  formatTrace,
  memoryBackend,
  parseTrace,
  Recorder,
  recordingHandle,
  recordSteps,
  replayTrace,
  SCENARIOS,
  type Trace,
} from "../../oracle/mod.ts";
import { MemoryXen } from "../../mod.ts";
import { brief, brokenSteps, readPorts } from "./_helpers.ts";

// The one model-vs-model check: the model is deterministic, so a scenario
// recorded on it replays on a fresh model with no divergence. It can only
// fail on nondeterminism, a step the oracle cannot run, or a trace that
// does not survive its text form; what the model answers is checked against
// real Xen by the recorded fixtures (fixtures_test.ts), not here.
Deno.test("determinism: every scenario on both ABIs records, round-trips through text and replays on a fresh model", async (t) => {
  for (const abi of ["fifo", "2l"] as const) {
    for (const s of SCENARIOS) {
      await t.step(`${s.name} (${abi})`, async () => {
        const trace = await recordSteps(s.steps, memoryBackend(), {
          scenario: s.name,
          abi,
        });
        assert.equal(trace.header?.abi, abi);
        assert.equal(trace.steps.length, s.steps.length);
        assert.deepEqual(
          brokenSteps(trace),
          [],
          "steps the oracle could not run",
        );
        const parsed = parseTrace(formatTrace(trace), {
          requireOutcomes: true,
        });
        assert.deepEqual(parsed.steps, trace.steps);
        const report = await replayTrace(parsed, memoryBackend(), {
          all: true,
        });
        assert.deepEqual(
          report.divergences.map(brief),
          [],
          report.divergences.map(formatDivergence).join("\n"),
        );
        assert.equal(report.replayed, s.steps.length);
      });
    }
  }
});

// What the scenarios are for, on the model whose delivery path works (the
// 2-level one; see the report for the FIFO model): each shows its behaviour.
Deno.test("scenarios show what they claim (2l model)", async (t) => {
  const record = (name: string): Promise<Trace> =>
    recordSteps(
      SCENARIOS.find((s) => s.name === name)!.steps,
      memoryBackend(),
      {
        abi: "2l",
      },
    );
  const codes = (trace: Trace) =>
    trace.steps.map((s) =>
      s.outcome && "error" in s.outcome ? s.outcome.error.code : "ok"
    );
  await t.step(
    "overflow: EFBIG twice, then reset empties the ring",
    async () => {
      const trace = await record("overflow");
      const reads = trace.steps.filter((s) =>
        s.op === "read" && s.handle === "h1"
      );
      assert.deepEqual(reads.map((s) => codes({ steps: [s] })[0]), [
        "EFBIG",
        "EFBIG",
        "ok",
        "ok",
        "ok",
      ]);
      assert.deepEqual(readPorts(reads[2].outcome), []);
      assert.deepEqual(readPorts(reads[3].outcome), []);
      assert.deepEqual(readPorts(reads[4].outcome), [{ rel: 1 }]);
    },
  );
  await t.step("bounds: bucket edge and device limit", async () => {
    const trace = await record("bounds");
    const by = (pred: (args: string) => boolean, op: string) =>
      trace.steps.filter((s) => s.op === op && pred(JSON.stringify(s.args)))
        .map((s) => codes({ steps: [s] })[0]);
    assert.deepEqual(by((a) => a.includes("bucketEnd"), "hc.status"), [
      "ok", // 63
      "EINVAL", // 64
      "ok", // 127, after port 64 was allocated
      "EINVAL", // 128
      "EINVAL", // 128, after the reset
    ]);
    assert.deepEqual(by((a) => a.includes('"rel":63'), "hc.status"), [
      "ok",
      "ok",
    ]);
    assert.deepEqual(by((a) => a.includes("70000"), "unbind"), ["EINVAL"]);
    assert.deepEqual(by((a) => a.includes("70000"), "notify"), ["ENOTCONN"]);
  });
  await t.step("virq: TIMER EEXIST, a free global VIRQ once", async () => {
    const trace = await record("virq");
    assert.deepEqual(codes(trace).slice(2, 9), [
      "EEXIST",
      "EEXIST",
      "EEXIST",
      "ok",
      "ok",
      "EEXIST",
      "EEXIST",
    ]);
  });
  await t.step("coalescing: one entry for three masked sends", async () => {
    const trace = await record("coalescing");
    const noted = trace.steps.find((s) =>
      s.note === "one entry for three sends"
    );
    assert.deepEqual(readPorts(noted?.outcome), [{ rel: 1 }]);
  });
  await t.step("pending-after-bind: one entry without a notify", async () => {
    const trace = await record("pending-after-bind");
    const noted = trace.steps.find((s) =>
      s.note === "exactly one entry, nobody notified"
    );
    assert.deepEqual(readPorts(noted?.outcome), [{ rel: 1 }]);
  });
});

Deno.test("an altered outcome is reported at its step, with context", async () => {
  const loopback = SCENARIOS.find((s) => s.name === "loopback")!;
  const trace = parseTrace(
    formatTrace(await recordSteps(loopback.steps, memoryBackend())),
    { requireOutcomes: true },
  );
  const target = trace.steps.findIndex((s) => s.op === "unbind");
  trace.steps[target].outcome = { error: { code: "ENOTCONN", errno: 107 } };
  const report = await replayTrace(trace, memoryBackend());
  assert.equal(report.divergences.length, 1);
  const d = report.divergences[0];
  assert.equal(d.i, trace.steps[target].i);
  assert.equal(d.op, "unbind");
  assert.equal(d.handle, "h1");
  assert.equal(d.line, target + 2); // the header is line 1
  assert.deepEqual(d.expected, { error: { code: "ENOTCONN", errno: 107 } });
  assert.deepEqual(d.actual, { ok: null });
  assert.ok(d.context.length > 0);
  assert.ok(d.context.every((s) => s.i < d.i));
  assert.ok(d.context.some((s) => s.op === "bind_interdomain"));
  assert.equal(report.replayed, target + 1, "stops at the first divergence");
  assert.match(
    formatDivergence(d),
    /divergence at step \d+ \(line \d+\): h1 unbind/,
  );
});

Deno.test("--all counts every divergence", async () => {
  const ownership = SCENARIOS.find((s) => s.name === "ownership")!;
  const trace = await recordSteps(ownership.steps, memoryBackend());
  const enotconn = trace.steps.filter((s) =>
    s.outcome && "error" in s.outcome && s.outcome.error.code === "ENOTCONN"
  );
  assert.ok(enotconn.length >= 4);
  for (const s of enotconn) s.outcome = { ok: null };
  const report = await replayTrace(trace, memoryBackend(), { all: true });
  assert.deepEqual(
    report.divergences.map((d) => d.i),
    enotconn.map((s) => s.i),
  );
  assert.equal(report.replayed, trace.steps.length);
});

Deno.test("a rel port before any allocation is an ORACLE outcome, not a crash", async () => {
  const trace = await recordSteps([
    { handle: "h0", op: "open", args: {} },
    { handle: "h0", op: "notify", args: { port: { rel: 0 } } },
    { handle: "h9", op: "reset", args: {} },
    { handle: "h0", op: "open", args: {} },
  ], memoryBackend());
  const codes = trace.steps.map((s) =>
    s.outcome && "error" in s.outcome ? s.outcome.error.code : "ok"
  );
  assert.deepEqual(codes, ["ok", "ORACLE", "ORACLE", "ORACLE"]);
  const report = await replayTrace(trace, memoryBackend());
  assert.equal(report.divergences.length, 0);
});

Deno.test("a program recorded through Recorder wrappers replays", async () => {
  const xen = new MemoryXen({ vcpus: 2 });
  xen.createDomain({ domain: 1, linux: false, paused: true });
  const recorder = new Recorder({ localDomain: 0, peerDomain: 1 });
  const hc = recorder.hypercalls(xen.hypercalls(0));
  const server = recordingHandle(xen.open(0), recorder);
  const client = recorder.handle(xen.open(0));
  const offered = server.bindUnboundPort(0);
  const port = client.bindInterdomain(0, offered);
  assert.deepEqual(await client.drain(), [port]);
  client.unmask(port);
  server.notify(offered);
  assert.deepEqual(await client.drain(), [port]);
  assert.throws(() => server.notify(port), /ENOTCONN/);
  assert.throws(() => server.unbind(70000), /EINVAL/);
  const peerPort = hc.allocUnbound(1, 0);
  const status = hc.status(1, peerPort);
  assert.equal(status.status, "unbound");
  const remote = client.bindInterdomain(1, peerPort);
  assert.equal(hc.status(0, remote).status, "interdomain");
  hc.reset(1);
  await server.close();
  await client.close();

  const trace = recorder.trace();
  assert.deepEqual(trace.steps.map((s) => s.op), [
    "open",
    "open",
    "bind_unbound_port",
    "bind_interdomain",
    "read",
    "unmask",
    "notify",
    "read",
    "notify",
    "unbind",
    "hc.alloc_unbound",
    "hc.status",
    "bind_interdomain",
    "hc.status",
    "hc.reset",
    "close",
    "close",
  ]);
  assert.deepEqual(trace.steps[3].args, {
    remote_domain: { dom: "local" },
    remote_port: { rel: 0 },
  });
  assert.deepEqual(trace.steps[9].args, { port: { abs: 70000 } });
  assert.deepEqual(trace.steps[12].args, {
    remote_domain: { dom: "peer" },
    remote_port: { rel: 0 },
  });
  const text = recorder.toJsonl();
  const report = await replayTrace(
    parseTrace(text, { requireOutcomes: true }),
    memoryBackend(),
  );
  assert.deepEqual(report.divergences.map(brief), []);
});

Deno.test("fields a step ignores are reported, not counted", async () => {
  const virq = SCENARIOS.find((s) => s.name === "virq")!;
  const trace = await recordSteps(virq.steps, memoryBackend());
  // The built-in scenarios compare every field; a user's trace may still
  // mark one not to compare.
  const status = trace.steps.find((s) =>
    s.op === "hc.status" && s.outcome !== undefined && "ok" in s.outcome
  )!;
  status.ignore = ["vcpu"];
  assert.ok(status.outcome && "ok" in status.outcome);
  const ok = status.outcome.ok as { vcpu: number };
  const recorded = ok.vcpu === 0 ? 1 : 0;
  status.outcome = { ok: { ...ok, vcpu: recorded } };
  const report = await replayTrace(trace, memoryBackend());
  assert.deepEqual(report.divergences, []);
  assert.deepEqual(report.ignored, [{
    i: status.i,
    op: "hc.status",
    field: "vcpu",
    expected: recorded,
    actual: ok.vcpu,
  }]);
});
