import assert from "node:assert/strict";
import { jsonLines, MAIN, memory, offeredPort, PERMISSIONS } from "./_run.ts";

Deno.test("bind virq DOM_EXC --count 0 binds, prints the port and releases", async (t) => {
  await t.step("human", async () => {
    const { code, stdout, stderr } = await memory(
      "bind",
      "virq",
      "DOM_EXC",
      "--count",
      "0",
    );
    assert.equal(code, 0, stderr);
    assert.match(stdout, /^bound port (\d+): virq VIRQ_DOM_EXC$/m);
    assert.match(stdout, /^summary: 0 events in [\d.]+ s \(count reached\)$/m);
  });
  await t.step("--json, names in any case", async () => {
    const { code, stdout } = await memory(
      "bind",
      "virq",
      "virq_dom_exc",
      "--count",
      "0",
      "--json",
    );
    assert.equal(code, 0);
    const [bound, summary, ...rest] = jsonLines(stdout);
    assert.deepEqual(rest, []);
    assert.equal(bound.version, 1);
    assert.equal(bound.type, "bound");
    const [port] = bound.ports as {
      port: number;
      kind: string;
      virq: number;
    }[];
    assert.equal(port.kind, "virq");
    assert.equal(port.virq, 3);
    assert.equal(summary.type, "summary");
    assert.equal(summary.reason, "count");
    assert.equal(summary.total, 0);
  });
  await t.step("by number", async () => {
    const { code, stdout } = await memory("bind", "virq", "3", "--count", "0");
    assert.equal(code, 0);
    assert.match(stdout, /virq VIRQ_DOM_EXC/);
  });
});

Deno.test("bind virq --timeout ends the wait with a summary, exit 0", async () => {
  const { code, stdout } = await memory(
    "bind",
    "virq",
    "DOM_EXC",
    "--timeout",
    "0.2",
    "--json",
  );
  assert.equal(code, 0);
  const lines = jsonLines(stdout);
  assert.equal(lines.length, 2);
  assert.equal(lines[1].reason, "timeout");
});

Deno.test("bind refusals exit 1 naming op and errno", async (t) => {
  await t.step(
    "VIRQ_TIMER is held by the modelled dom0 kernel: EEXIST",
    async () => {
      const { code, stdout, stderr } = await memory("bind", "virq", "TIMER");
      assert.equal(code, 1);
      assert.equal(stdout, "");
      assert.match(stderr, /^error: bind_virq: .*\(EEXIST, errno 17\)\n$/);
    },
  );
  await t.step("VIRQ 99: EINVAL", async () => {
    const { code, stderr } = await memory("bind", "virq", "99");
    assert.equal(code, 1);
    assert.match(stderr, /^error: bind_virq: .*EINVAL/);
  });
  await t.step("interdomain to a port not offered: EINVAL", async () => {
    const { code, stderr } = await memory(
      "bind",
      "interdomain",
      "--remote",
      "1",
      "--port",
      "1",
    );
    assert.equal(code, 1);
    assert.match(stderr, /^error: bind_interdomain: .*EINVAL/);
  });
  await t.step("interdomain to a missing domain: ESRCH", async () => {
    const { code, stderr } = await memory(
      "bind",
      "interdomain",
      "--remote",
      "7",
      "--port",
      "1",
    );
    assert.equal(code, 1);
    assert.match(stderr, /^error: bind_interdomain: .*ESRCH/);
  });
});

Deno.test("bind usage errors exit 2", async (t) => {
  const cases: [string, string[], RegExp][] = [
    ["no kind", ["bind"], /Missing what to bind/],
    ["unknown kind", ["bind", "pirq", "3"], /Unknown kind 'pirq'/],
    ["unknown VIRQ name", ["bind", "virq", "NOPE"], /Unknown VIRQ 'NOPE'/],
    ["missing VIRQ", ["bind", "virq"], /Missing VIRQ/],
    [
      "missing value",
      ["bind", "unbound", "--remote"],
      /'--remote <value>' argument missing/,
    ],
    ["missing --remote", ["bind", "unbound"], /Missing --remote/],
    [
      "bad domain",
      ["bind", "unbound", "--remote", "dom1"],
      /Invalid --remote domain 'dom1'/,
    ],
    [
      "missing --port",
      ["bind", "interdomain", "--remote", "1"],
      /Missing --port/,
    ],
    [
      "bad --count",
      ["bind", "virq", "DOM_EXC", "--count", "many"],
      /Invalid --count 'many'/,
    ],
    [
      "bad --timeout",
      ["bind", "virq", "DOM_EXC", "--timeout", "1m"],
      /Invalid --timeout '1m'/,
    ],
  ];
  for (const [name, args, message] of cases) {
    await t.step(name, async () => {
      const { code, stdout, stderr } = await memory(...args);
      assert.equal(code, 2, stderr);
      assert.equal(stdout, "");
      const [first, usage] = stderr.split("\n");
      assert.match(first, /^error: /);
      assert.match(first, message);
      assert.match(usage, /^Usage: evtchn bind /);
    });
  }
});

Deno.test("bind interdomain to the port domU 1 offers reports the bind's event", async () => {
  const port = await offeredPort();
  const { code, stdout, stderr } = await memory(
    "bind",
    "interdomain",
    "--remote",
    "1",
    "--port",
    String(port),
    "--count",
    "1",
    "--json",
  );
  assert.equal(code, 0, stderr);
  const [bound, event, summary] = jsonLines(stdout);
  const local = (bound.ports as { port: number }[])[0].port;
  assert.equal(event.type, "event");
  assert.equal(event.port, local);
  assert.ok(!Number.isNaN(Date.parse(event.time as string)));
  assert.equal(summary.total, 1);
});

Deno.test("bind: SIGINT prints the summary and exits 0", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...PERMISSIONS,
      MAIN,
      "--backend",
      "memory",
      "bind",
      "virq",
      "DOM_EXC",
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let stdout = "";
  while (!stdout.includes("bound port")) {
    const { value, done } = await reader.read();
    if (done) break;
    stdout += value;
  }
  child.kill("SIGINT");
  while (true) {
    const { value, done } = await reader.read();
    if (done) break;
    stdout += value;
  }
  const status = await child.status;
  assert.equal(status.code, 0, await stderr);
  assert.match(stdout, /^summary: 0 events in [\d.]+ s \(interrupted\)$/m);
  assert.match(await stderr, /Ctrl-C to stop/);
});
