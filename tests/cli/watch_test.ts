import assert from "node:assert/strict";
import { cli, jsonLines, memory } from "./_run.ts";

Deno.test("watch --simulate 5 --count 5 --json gives 5 event lines and a summary", async () => {
  const { code, stdout, stderr } = await memory(
    "watch",
    "--simulate",
    "5",
    "--count",
    "5",
    "--interval",
    "5",
    "--json",
  );
  assert.equal(code, 0, stderr);
  const lines = jsonLines(stdout);
  for (const line of lines) assert.equal(line.version, 1);
  const [bound, ...rest] = lines;
  assert.equal(bound.type, "bound");
  const events = rest.filter((l) => l.type === "event");
  const summaries = rest.filter((l) => l.type === "summary");
  assert.equal(events.length, 5);
  assert.equal(summaries.length, 1);
  assert.equal(lines.at(-1)!.type, "summary");
  const port = (bound.ports as { port: number }[])[0].port;
  assert.deepEqual(events.map((e) => e.port), [port, port, port, port, port]);
  assert.deepEqual(events.map((e) => e.count), [1, 2, 3, 4, 5]);
  const [summary] = summaries;
  assert.equal(summary.reason, "count");
  assert.equal(summary.total, 5);
  assert.deepEqual(
    (summary.ports as { port: number; events: number }[]).map((
      p,
    ) => [p.port, p.events]),
    [[port, 5]],
  );
});

Deno.test("watch human lines carry ISO timestamps and end with per-port counts", async () => {
  const { code, stdout } = await memory(
    "watch",
    "--virq",
    "DOM_EXC",
    "--simulate",
    "3",
    "--interval",
    "5",
  );
  assert.equal(code, 0);
  const events = stdout.split("\n").filter((l) => /^\d{4}-\d\d-\d\dT/.test(l));
  assert.equal(events.length, 3);
  assert.match(stdout, /^summary: 3 events in [\d.]+ s \(count reached\)$/m);
  assert.match(stdout, /^ {2}port +\d+ +virq VIRQ_DOM_EXC +0$/m);
  assert.match(
    stdout,
    /^ {2}port +\d+ +interdomain dom1:\d+ \(simulated peer\) +3$/m,
  );
});

Deno.test("watch --timeout ends with a summary, exit 0", async () => {
  const { code, stdout } = await memory(
    "watch",
    "--virq",
    "DOM_EXC",
    "--unbound",
    "1",
    "--timeout",
    "0.2",
    "--json",
  );
  assert.equal(code, 0);
  const lines = jsonLines(stdout);
  assert.equal((lines[0].ports as unknown[]).length, 2);
  assert.equal(lines.at(-1)!.reason, "timeout");
});

Deno.test("watch errors", async (t) => {
  await t.step("nothing to watch (2)", async () => {
    const { code, stderr } = await memory("watch");
    assert.equal(code, 2);
    assert.match(stderr, /^error: Nothing to watch/);
  });
  await t.step("bad --interdomain (2)", async () => {
    const { code, stderr } = await memory("watch", "--interdomain", "1-8");
    assert.equal(code, 2);
    assert.match(
      stderr,
      /^error: Invalid --interdomain '1-8': expected DOM:PORT/,
    );
  });
  await t.step("--simulate needs the memory backend (2)", async () => {
    const { code, stderr } = await cli(
      "--backend",
      "linux",
      "watch",
      "--simulate",
      "1",
    );
    assert.equal(code, 2);
    assert.match(stderr, /--simulate needs the memory backend/);
  });
  await t.step("a VIRQ the kernel holds (1)", async () => {
    const { code, stderr } = await memory("watch", "--virq", "TIMER");
    assert.equal(code, 1);
    assert.match(stderr, /^error: bind_virq: .*EEXIST/);
  });
});
