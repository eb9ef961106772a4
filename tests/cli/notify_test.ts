import assert from "node:assert/strict";
import { memory, offeredPort } from "./_run.ts";

Deno.test("notify PORT on a fresh handle exits 1 with ENOTCONN, as Linux does", async () => {
  const { code, stdout, stderr } = await memory("notify", "5");
  assert.equal(code, 1);
  assert.equal(stdout, "");
  assert.match(stderr, /^error: notify: port=5 .*\(ENOTCONN, errno 107\)\n/);
  assert.match(stderr, /hint: .*--remote DOM --port PORT/);
});

Deno.test("notify --remote DOM --port P binds, sends and the peer sees it", async () => {
  const port = await offeredPort();
  const { code, stdout, stderr } = await memory(
    "notify",
    "--remote",
    "1",
    "--port",
    String(port),
    "--json",
  );
  assert.equal(code, 0, stderr);
  const result = JSON.parse(stdout);
  assert.equal(result.version, 1);
  assert.equal(result.remoteDomain, 1);
  assert.equal(result.remotePort, port);
  assert.equal(result.peerReceived, port);
  assert.equal(typeof result.localPort, "number");
});

Deno.test("notify errors", async (t) => {
  await t.step("a non-number port is a usage error (2)", async () => {
    const { code, stderr } = await memory("notify", "five");
    assert.equal(code, 2);
    assert.match(stderr, /^error: Invalid port 'five'/);
  });
  await t.step("a port beyond uint32 is Xen's EINVAL (1)", async () => {
    const { code, stderr } = await memory("notify", "4294967296");
    assert.equal(code, 1);
    assert.match(stderr, /^error: notify: .*EINVAL/);
  });
  await t.step("missing port (2)", async () => {
    const { code, stderr } = await memory("notify");
    assert.equal(code, 2);
    assert.match(stderr, /^error: Missing PORT/);
  });
  await t.step("PORT and --remote together (2)", async () => {
    const { code } = await memory(
      "notify",
      "5",
      "--remote",
      "1",
      "--port",
      "8",
    );
    assert.equal(code, 2);
  });
  await t.step("--remote without --port (2)", async () => {
    const { code, stderr } = await memory("notify", "--remote", "1");
    assert.equal(code, 2);
    assert.match(stderr, /^error: Missing --port PORT/);
  });
  await t.step("a port not offered (1, EINVAL)", async () => {
    const { code, stderr } = await memory(
      "notify",
      "--remote",
      "1",
      "--port",
      "2",
    );
    assert.equal(code, 1);
    assert.match(stderr, /^error: bind_interdomain: .*EINVAL/);
  });
});
