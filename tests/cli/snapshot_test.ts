// `evtchn snapshot` on the memory backend: the modelled dom0's table, and a
// model booted from a real host's snapshot (committed from the project's VM)
// giving that snapshot back.

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { parseHostSnapshot } from "../../mod.ts";
import { cli } from "./_run.ts";

const HOST_9P = fileURLToPath(
  new URL("../fixtures/hosts/fifo-2vcpu-9p.json", import.meta.url),
);

Deno.test("snapshot: the modelled dom0, port by port", async () => {
  const { code, stdout, stderr } = await cli("--backend", "memory", "snapshot");
  assert.equal(code, 0, stderr);
  const lines = stdout.trim().split("\n");
  assert.match(lines[0], /^dom0 on Xen .*FIFO ABI, 2 vCPUs, 1024 channels/);
  // the table evtchn sim prints, as xl debug-keys e does (? = not known)
  assert.equal(lines[1], "Event channel information for domain 0:");
  assert.match(
    lines[3],
    /^ {7}1 \[\?\/\?\/\?\]: s=5 n=0 x=\? v=0 +virq VIRQ_TIMER$/,
  );
  assert.match(
    lines.at(-1)!,
    /^24 ports in use; per vCPU: vcpu0 12, vcpu1 12$/,
  );
});

Deno.test("snapshot --host FILE --json boots the model from a real host", async () => {
  const { code, stdout, stderr } = await cli(
    "--backend",
    "memory",
    "snapshot",
    "--host",
    HOST_9P,
    "--json",
  );
  assert.equal(code, 0, stderr);
  const real = parseHostSnapshot(await Deno.readTextFile(HOST_9P));
  const model = parseHostSnapshot(stdout);
  assert.equal(model.version, 1);
  assert.deepEqual(model.ports, real.ports);
  assert.equal(model.validPorts, real.validPorts);
  assert.equal(model.nrChannels, real.nrChannels);
});

Deno.test("snapshot --host with a bad snapshot names the field (exit 1)", async () => {
  const bad = await Deno.makeTempFile({ suffix: ".json" });
  try {
    await Deno.writeTextFile(
      bad,
      JSON.stringify({ format: "evtchn-host", version: 7 }),
    );
    const { code, stderr } = await cli(
      "--backend",
      "memory",
      "snapshot",
      "--host",
      bad,
    );
    assert.equal(code, 1);
    assert.match(stderr, /snapshot: version.*EINVAL/);
  } finally {
    await Deno.remove(bad);
  }
});

Deno.test("snapshot rejects positionals (exit 2)", async () => {
  const { code, stderr } = await cli("--backend", "memory", "snapshot", "x");
  assert.equal(code, 2);
  assert.match(stderr, /Usage: evtchn snapshot/);
});
