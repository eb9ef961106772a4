import assert from "node:assert/strict";
import { cliWith, memory } from "./_run.ts";

Deno.test("info --json reports backend, devices, Deno, permissions and domain", async () => {
  const { code, stdout, stderr } = await memory("info", "--json");
  assert.equal(code, 0, stderr);
  assert.equal(stderr, "");
  const info = JSON.parse(stdout);
  assert.equal(info.version, 1);
  assert.equal(Object.keys(info)[0], "version");
  assert.equal(info.backend, "memory");
  assert.equal(info.requested, "memory");
  assert.equal(info.domain, 0);
  assert.equal(info.deno.deno, Deno.version.deno);
  assert.deepEqual(Object.keys(info.devices).sort(), [
    "/dev/xen/evtchn",
    "/dev/xen/privcmd",
  ]);
  for (const state of Object.values(info.devices)) {
    assert.ok(["present", "absent", "unknown"].includes(state as string));
  }
  assert.equal(info.permissions.read, "granted");
  assert.equal(info.permissions.ffi, "prompt");
  assert.equal(info.linux.available, false);
  assert.equal(info.linux.reason, "--allow-ffi not granted");
  assert.deepEqual(info.memory.domains, [0, 1]);
  assert.equal(info.memory.peerDomain, 1);
  assert.equal(typeof info.memory.offeredPort, "number");
});

Deno.test("info prints a human summary", async () => {
  const { code, stdout, stderr } = await memory("info");
  assert.equal(code, 0, stderr);
  assert.match(stdout, /^backend +memory \(asked for\)$/m);
  assert.match(stdout, /^acts for +dom0/m);
  assert.match(stdout, /^devices +\/dev\/xen\/evtchn/m);
  assert.match(
    stdout,
    /^permissions +read granted, write prompt, ffi prompt, env granted$/m,
  );
});

const x86Linux = Deno.build.os === "linux" && Deno.build.arch === "x86_64";

Deno.test({
  name: "info with --allow-ffi says how a failed call's errno is learnt" +
    (x86Linux ? "" : " [ignored: the in-call path is x86-64 Linux only]"),
  ignore: !x86Linux,
  async fn(): Promise<void> {
    const flags = ["--allow-read", "--allow-ffi"];
    const json = await cliWith(flags, "--backend", "memory", "info", "--json");
    assert.equal(json.code, 0, json.stderr);
    assert.equal(JSON.parse(json.stdout).linux.errno, "in-call");
    const text = await cliWith(flags, "--backend", "memory", "info");
    assert.equal(text.code, 0, text.stderr);
    assert.match(
      text.stdout,
      /^errno +in-call \(the kernel's return value\)$/m,
    );
  },
});
