import assert from "node:assert/strict";
import { cli } from "./_run.ts";

const COMMANDS = ["info", "bind", "notify", "watch", "ping", "sim", "oracle"];

Deno.test("evtchn --help prints the commands on stdout and exits 0", async (t) => {
  for (const flag of ["--help", "-h"]) {
    await t.step(flag, async () => {
      const { code, stdout, stderr } = await cli(flag);
      assert.equal(code, 0);
      assert.equal(stderr, "");
      assert.match(stdout, /^evtchn \d+\.\d+\.\d+: /);
      for (const command of COMMANDS) {
        assert.match(stdout, new RegExp(`^  ${command} `, "m"));
      }
      assert.match(stdout, /EXIT CODES: 0 ok, 1 operation error, 2 usage/);
    });
  }
  await t.step("help COMMAND", async () => {
    const { code, stdout, stderr } = await cli("help", "sim");
    assert.equal(code, 0);
    assert.equal(stderr, "");
    assert.match(stdout, /^evtchn sim: /);
  });
});

Deno.test("evtchn COMMAND --help prints its help on stdout and exits 0", async (t) => {
  for (const command of COMMANDS) {
    await t.step(command, async () => {
      const { code, stdout, stderr } = await cli(command, "--help");
      assert.equal(code, 0, stderr);
      assert.equal(stderr, "");
      assert.match(stdout, new RegExp(`evtchn ${command}`));
      assert.match(stdout, /Usage:/i);
    });
  }
});

Deno.test("evtchn --version prints the version", async () => {
  const { code, stdout } = await cli("--version");
  assert.equal(code, 0);
  assert.match(stdout, /^evtchn \d+\.\d+\.\d+\n$/);
});

Deno.test("evtchn usage errors exit 2 with one line and the usage on stderr", async (t) => {
  await t.step("no command: help on stderr", async () => {
    const { code, stdout, stderr } = await cli();
    assert.equal(code, 2);
    assert.equal(stdout, "");
    assert.match(stderr, /COMMANDS:/);
  });
  await t.step("unknown command", async () => {
    const { code, stdout, stderr } = await cli("frobnicate");
    assert.equal(code, 2);
    assert.equal(stdout, "");
    const [first, second] = stderr.split("\n");
    assert.equal(first, "error: Unknown command 'frobnicate'");
    assert.match(second, /^Usage: evtchn /);
  });
  await t.step("unknown global option", async () => {
    const { code, stdout, stderr } = await cli("--frob", "info");
    assert.equal(code, 2);
    assert.equal(stdout, "");
    assert.match(stderr, /^error: Unknown option '--frob'\nUsage: /);
  });
  await t.step("unknown command option", async () => {
    const { code, stderr } = await cli("info", "--frob");
    assert.equal(code, 2);
    assert.match(stderr, /^error: Unknown option '--frob'\nUsage: evtchn info/);
  });
  await t.step("bad --backend", async () => {
    const { code, stderr } = await cli("--backend", "xenstore", "info");
    assert.equal(code, 2);
    assert.match(stderr, /^error: Invalid --backend 'xenstore'/);
  });
  await t.step("--backend without a value", async () => {
    const { code, stderr } = await cli("--backend");
    assert.equal(code, 2);
    assert.match(stderr, /^error: .*--backend.* missing/);
  });
});

Deno.test("global options work before and after the command", async () => {
  const before = await cli("--json", "--backend", "memory", "info");
  const after = await cli("info", "--backend=memory", "--json");
  assert.equal(before.code, 0);
  assert.equal(after.code, 0);
  assert.equal(JSON.parse(before.stdout).backend, "memory");
  assert.equal(JSON.parse(after.stdout).backend, "memory");
});
