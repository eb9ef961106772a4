// `evtchn serve` as a command: listening line, a client served, a clean stop
// on SIGTERM (exit 0, socket removed), usage errors.

import assert from "node:assert/strict";
import {
  encodeHello,
  encodeRequest,
  Op,
  ROLE_CONTROL,
} from "../../serve/mod.ts";

const MAIN = new URL("../../cli/main.ts", import.meta.url).pathname;

Deno.test("evtchn serve: listens, serves, stops on SIGTERM", async () => {
  const dir = await Deno.makeTempDir({ prefix: "evtchn-serve-cli-" });
  const socket = `${dir}/s`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "--json", "serve", "--socket", socket],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    const first = await reader.read();
    reader.releaseLock();
    const line = JSON.parse(first.value ?? "{}");
    assert.deepEqual(line, {
      version: 1,
      event: "listening",
      socket,
      domains: [1],
    });
    const conn = await Deno.connect({ transport: "unix", path: socket });
    await conn.write(encodeRequest(Op.HELLO, encodeHello(ROLE_CONTROL, 1n)));
    const reply = new Uint8Array(28);
    let got = 0;
    while (got < reply.length) {
      const n = await conn.read(reply.subarray(got));
      if (n === null) break;
      got += n;
    }
    conn.close();
    assert.equal(got, 28);
    assert.equal(new DataView(reply.buffer).getInt32(4, true), 0);
  } finally {
    child.kill("SIGTERM");
  }
  const status = await child.status;
  await child.stdout.cancel().catch(() => {});
  const stderr = new TextDecoder().decode(
    (await new Response(child.stderr).arrayBuffer()) as ArrayBuffer,
  );
  assert.equal(status.code, 0, stderr);
  await assert.rejects(Deno.stat(socket), Deno.errors.NotFound);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("evtchn serve: usage errors exit 2", async () => {
  for (const args of [["--domain", "0"], ["--domain", "0x7ff0"], ["extra"]]) {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "serve", ...args],
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(output.code, 2, args.join(" "));
  }
});
