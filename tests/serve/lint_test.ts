// Lint mode through `evtchn serve` (issue 16): C programs' clients are
// linted as handles are. cross_check (a correct program: it unbinds what
// it binds) leaves no finding; pingpong, which does the wrong things on
// purpose to check their errnos (closes a handle that holds a VIRQ port,
// notifies after its peer exited, reads an empty non-blocking fd), leaves
// exactly those findings; and without --lint nothing is recorded.

import assert from "node:assert/strict";
import { serve } from "../../serve/mod.ts";
import { dirOf, NO_TOOLCHAIN, removeShim, runProgram, shim } from "./_shim.ts";

const ignore = NO_TOOLCHAIN !== undefined;

/** The finding codes a program leaves on a fresh server, sorted. */
async function codes(
  program: string,
  args: string[],
  lint: boolean,
): Promise<string[]> {
  const built = await shim();
  const dir = await Deno.makeTempDir({ prefix: "evtchn-lint-" });
  const socket = `${dir}/evtchn.sock`;
  const server = await serve({ socket, lint, log: () => {} });
  try {
    const run = await runProgram(built[program], args, {
      LD_LIBRARY_PATH: dirOf(built["libxenevtchn.so.1"]),
      EVTCHN_SOCKET: socket,
    });
    assert.equal(run.code, 0, run.stdout + run.stderr);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
  return server.xen.findings({ final: true }).map((f) => f.code).sort();
}

Deno.test({
  name: "serve --lint: C programs are linted like handles" +
    (ignore ? ` [ignored: ${NO_TOOLCHAIN}]` : ""),
  ignore,
  async fn(t): Promise<void> {
    try {
      await steps(t);
    } finally {
      await removeShim();
    }
  },
});

async function steps(t: Deno.TestContext): Promise<void> {
  await t.step("cross_check, a correct program: no finding", async () => {
    assert.deepEqual(
      await codes("cross_check", ["50", "a2b", "5"], true),
      [],
    );
  });
  await t.step("pingpong's deliberate mistakes: their findings", async () => {
    assert.deepEqual(await codes("pingpong", ["0", "3"], true), [
      "leaked-port",
      "leaked-port",
      "notify-unbound-peer",
      "read-would-block",
      "read-would-block",
    ]);
  });
  await t.step("without --lint: nothing recorded", async () => {
    assert.deepEqual(await codes("pingpong", ["0", "3"], false), []);
  });
}
