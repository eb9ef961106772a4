// `evtchn oracle` as a program: cli/oracle_command.ts run standalone.

import assert from "node:assert/strict";
import { parseTrace } from "../../oracle/mod.ts";
import { help, run } from "../../cli/oracle_command.ts";
import { runCli } from "./_helpers.ts";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "oracle_cli_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("record a scenario, then replay it: exit 0", async () => {
  await withTempDir(async (dir) => {
    const out = `${dir}/loopback.memory.jsonl`;
    const recorded = await runCli(["record", "loopback", "--out", out]);
    assert.equal(recorded.code, 0, recorded.stderr);
    assert.match(recorded.stdout, /recorded \d+ steps of loopback on memory/);
    const trace = parseTrace(await Deno.readTextFile(out), {
      requireOutcomes: true,
    });
    assert.equal(trace.header?.scenario, "loopback");

    const replayed = await runCli(["replay", out]);
    assert.equal(replayed.code, 0, replayed.stdout + replayed.stderr);
    assert.match(replayed.stdout, /^agreement: (\d+)\/\1 steps/);

    const json = await runCli(["replay", out, "--json"]);
    assert.equal(json.code, 0);
    const report = JSON.parse(json.stdout);
    assert.equal(report.version, 1);
    assert.equal(report.agreed, true);
    assert.equal(report.backend, "memory");
    assert.deepEqual(report.divergences, []);
  });
});

Deno.test("record to stdout, and from a trace without outcomes on stdin", async () => {
  const recorded = await runCli(["record", "bounds"]);
  assert.equal(recorded.code, 0, recorded.stderr);
  const trace = parseTrace(recorded.stdout, { requireOutcomes: true });
  assert.equal(trace.header?.backend, "memory");

  const steps = [
    '{"op":"open","handle":"h0"}',
    '{"op":"unbind","handle":"h0","args":{"port":70000}}',
    '{"op":"notify","handle":"h0","args":{"port":70000},"note":"no range check"}',
  ].join("\n");
  const fromStdin = await runCli(["record", "-"], steps);
  assert.equal(fromStdin.code, 0, fromStdin.stderr);
  const lines = fromStdin.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(lines.length, 4);
  assert.deepEqual(lines[2].outcome, { error: { code: "EINVAL", errno: 22 } });
  assert.deepEqual(lines[3].outcome, {
    error: { code: "ENOTCONN", errno: 107 },
  });
  assert.equal(lines[3].note, "no range check");

  const replayed = await runCli(["replay", "-"], fromStdin.stdout);
  assert.equal(replayed.code, 0, replayed.stdout + replayed.stderr);
});

Deno.test("an altered trace: exit 1 naming the step", async () => {
  await withTempDir(async (dir) => {
    const out = `${dir}/ownership.memory.jsonl`;
    assert.equal((await runCli(["record", "ownership", "--out", out])).code, 0);
    const lines = (await Deno.readTextFile(out)).trimEnd().split("\n");
    // the first ENOTCONN (h0 notifying h1's port) made to succeed
    const at = lines.findIndex((l) => l.includes('"ENOTCONN"'));
    const step = JSON.parse(lines[at]);
    step.outcome = { ok: null };
    lines[at] = JSON.stringify(step);
    await Deno.writeTextFile(out, lines.join("\n") + "\n");

    const replayed = await runCli(["replay", out]);
    assert.equal(replayed.code, 1, replayed.stderr);
    assert.match(
      replayed.stdout,
      new RegExp(
        `divergence at step ${step.i} \\(line ${at + 1}\\): h0 notify`,
      ),
    );
    assert.match(replayed.stdout, /expected: ok null/);
    assert.match(replayed.stdout, /actual: +error ENOTCONN \(107\)/);
    assert.match(replayed.stdout, /steps that led there:/);
    assert.match(replayed.stdout, new RegExp(`stopped at step ${step.i}`));

    const json = await runCli(["replay", out, "--all", "--json"]);
    assert.equal(json.code, 1);
    const report = JSON.parse(json.stdout);
    assert.equal(report.agreed, false);
    assert.equal(report.divergences.length, 1);
    assert.equal(report.divergences[0].i, step.i);
    assert.equal(report.divergences[0].line, at + 1);
    assert.equal(report.replayed, report.total);
  });
});

Deno.test("a malformed trace: exit 2 naming the line", async (t) => {
  const good =
    '{"type":"step","i":0,"handle":"h0","op":"open","args":{},"outcome":{"ok":null}}';
  const cases: [string, string, number][] = [
    ["broken JSON", `${good}\n\n{"type":"step","i":1,`, 3],
    [
      "unknown op",
      `${good}\n{"type":"step","i":1,"op":"frobnicate","args":{},"outcome":{"ok":null}}`,
      2,
    ],
    [
      "no outcome",
      `${good}\n{"type":"step","i":1,"handle":"h0","op":"reset","args":{}}`,
      2,
    ],
  ];
  for (const [name, text, line] of cases) {
    await t.step(name, async () => {
      const replayed = await runCli(["replay", "-"], text);
      assert.equal(replayed.code, 2);
      assert.match(
        replayed.stderr,
        new RegExp(`stdin: line ${line}, column \\d+: `),
      );
      // Errors go to stderr in every mode, as every command's do.
      const json = await runCli(["replay", "-", "--json"], text);
      assert.equal(json.code, 2);
      assert.equal(json.stdout, "");
      assert.match(
        json.stderr,
        new RegExp(`stdin: line ${line}, column [1-9]\\d*: `),
      );
    });
  }
  await t.step("record of a malformed file", async () => {
    const recorded = await runCli(["record", "-"], '{"op":"open"}');
    assert.equal(recorded.code, 2);
    assert.match(
      recorded.stderr,
      /line 1, column 2: op open needs a "handle"/,
    );
  });
});

Deno.test("diff with a fixed seed: reproducible, agreement, exit 0", async () => {
  const args = ["diff", "--seed", "99", "--ops", "250", "--json"];
  const one = await runCli(args);
  const two = await runCli(args);
  assert.equal(one.code, 0, one.stderr);
  assert.equal(one.stdout, two.stdout);
  const report = JSON.parse(one.stdout);
  assert.deepEqual(
    [report.seed, report.ops, report.reference, report.against, report.agreed],
    [99, 250, "memory", "memory", true],
  );
  const text = await runCli(["diff", "--seed", "99", "--ops", "250"]);
  assert.equal(text.code, 0);
  assert.equal(
    text.stdout.trim(),
    "seed 99, 250 ops, memory vs memory: agreement",
  );
});

Deno.test("usage errors: exit 2", async (t) => {
  const cases: [string[], RegExp][] = [
    [[], /missing command/],
    [["frob"], /unknown command "frob"/],
    [["replay"], /replay needs one TRACE/],
    [["replay", "/nonexistent/trace.jsonl"], /cannot read \/nonexistent/],
    [
      ["record", "no-such-scenario-or-file"],
      /cannot read no-such-scenario-or-file/,
    ],
    [["record", "loopback", "--backend", "qemu"], /Invalid --backend 'qemu'/],
    [["diff", "--seed", "x"], /Invalid --seed 'x'/],
    [["diff", "--ops", "0"], /Invalid --ops '0'/],
    [["diff", "--all"], /diff takes no --all/],
    [["replay", "t", "--bogus"], /bogus/],
    [["scenarios", "extra"], /Unexpected argument 'extra'/],
  ];
  for (const [args, message] of cases) {
    await t.step(args.join(" ") || "(nothing)", async () => {
      const result = await runCli(args);
      assert.equal(result.code, 2, result.stdout);
      assert.match(result.stderr, message);
    });
  }
});

Deno.test("scenarios and help", async () => {
  const listed = await runCli(["scenarios", "--json"]);
  assert.equal(listed.code, 0);
  const document = JSON.parse(listed.stdout);
  assert.equal(document.version, 1);
  const names = document.scenarios.map((s: { name: string }) => s.name);
  assert.deepEqual(names, [
    "allocation",
    "loopback",
    "pending-after-bind",
    "coalescing",
    "overflow",
    "restrict",
    "ownership",
    "status",
    "bounds",
    "virq",
  ]);
  const helped = await runCli(["--help"]);
  assert.equal(helped.code, 0);
  assert.equal(helped.stdout.trim(), help);
});

Deno.test("run() in-process, as cli/main.ts calls it (global options first)", async () => {
  assert.equal(
    await run([
      "--backend",
      "memory",
      "diff",
      "--seed",
      "5",
      "--ops",
      "30",
      "--json",
    ]),
    0,
  );
  assert.equal(await run(["--json", "diff", "--ops", "oops"]), 2);
});
