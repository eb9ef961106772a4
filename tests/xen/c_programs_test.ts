// Issue 15's proof both ways, in one boot of real Xen: the project's C
// programs (tests/xen/cross_check.c, shim/examples/pingpong.c), linked
// against Debian's libxenevtchn, run in dom0 against the real device, then
// unchanged against `evtchn serve` hosting the model booted from this
// host's snapshot (through the shim's libxenevtchn.so.1 and through the
// preload library). Every line they print must be the same, port numbers
// included (tests/xen/c_programs.sh prints them, timings left out). The
// real-Xen stage runs it under both ABIs. Ignored, with the reason, where
// there is no Xen device, or no gcc and libxen-dev.

import assert from "node:assert/strict";
import { linuxDeviceStatus, snapshotHost } from "../../mod.ts";
import { serve } from "../../serve/mod.ts";
import { buildShim } from "../../tools/shim.ts";

const device = linuxDeviceStatus({ path: "/dev/xen/privcmd" });
const toolchain = (await new Deno.Command("sh", {
  args: ["-c", "command -v gcc >/dev/null && test -f /usr/include/xenevtchn.h"],
}).output()).success;
const why = !device.available
  ? device.reason ?? "no Xen device"
  : !toolchain
  ? "needs gcc and libxen-dev"
  : undefined;

const SCRIPT = new URL("./c_programs.sh", import.meta.url).pathname;

/** Runs c_programs.sh with `env` added; its stdout lines. */
async function programs(
  build: string,
  env: Record<string, string> = {},
): Promise<string[]> {
  const run = await new Deno.Command("bash", {
    args: [SCRIPT, build],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(run.stdout);
  assert.equal(run.code, 0, out + new TextDecoder().decode(run.stderr));
  return out.trimEnd().split("\n");
}

Deno.test({
  name: "C programs: real Xen and evtchn serve (the model booted from this " +
    "host) print the same lines" +
    (why === undefined ? "" : ` [ignored: ${why}]`),
  ignore: why !== undefined,
  async fn(t): Promise<void> {
    const dir = await Deno.makeTempDir({ prefix: "evtchn-c-" });
    try {
      const real = await programs(`${dir}/real`);
      console.log(`  real Xen: ${real.length} lines`);
      // Taken after the real run, which freed every port it bound: the
      // model starts where the next real run would.
      const host = await snapshotHost();
      const built = await buildShim(`${dir}/shim`);
      const socket = `${dir}/evtchn.sock`;
      const server = await serve({ socket, host, log: () => {} });
      try {
        const libDir = built["libxenevtchn.so.1"].replace(/\/[^/]*$/, "");
        const ways: [string, Record<string, string>][] = [
          ["libxenevtchn.so.1", { LD_LIBRARY_PATH: libDir }],
          ["LD_PRELOAD", { LD_PRELOAD: built["libevtchn_preload.so"] }],
        ];
        for (const [how, env] of ways) {
          await t.step(`the same lines through ${how}`, async () => {
            const model = await programs(`${dir}/${how}`, {
              ...env,
              EVTCHN_SOCKET: socket,
            });
            assert.deepEqual(model, real);
          });
        }
      } finally {
        await server.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
