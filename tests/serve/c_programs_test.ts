// Unmodified C programs against `evtchn serve`: tests/xen/cross_check.c and
// shim/examples/pingpong.c, linked against Debian's libxenevtchn and run
// with shim's libxenevtchn.so.1 (LD_LIBRARY_PATH) or with the real library
// redirected by libevtchn_preload.so (LD_PRELOAD); plus the errno a client
// sees when the server is absent or goes away.

import assert from "node:assert/strict";
import { MemoryXen } from "../../mod.ts";
import {
  dirOf,
  NO_TOOLCHAIN,
  removeShim,
  runProgram,
  shim,
  startServer,
} from "./_shim.ts";

const ignore = NO_TOOLCHAIN !== undefined;
const name = (what: string): string =>
  ignore ? `${what} [ignored: ${NO_TOOLCHAIN}]` : what;

/** The lines pingpong prints in loopback mode on real Xen (tests/xen/c_programs.sh). */
const LOOPBACK_LINES = [
  "pingpong: peer dom0 (loopback), 5 rounds",
  "open with unknown flag: EINVAL",
  "fdopen with a flag: EINVAL",
  "bind_virq DEBUGGER: ok",
  "bind_virq DEBUGGER again, other handle: EEXIST",
  "bind_virq 24: EINVAL",
  "bind_virq TIMER (the kernel's): EEXIST",
  "notify the VIRQ port: ok",
  "notify it from the other handle: ENOTCONN",
  "unbind it from the other handle: ENOTCONN",
  "unbind the VIRQ port: ok",
  "unbind it again: ENOTCONN",
  "bind_virq DEBUGGER after unbind: ok",
  "close the handle holding it: ok",
  "bind_virq DEBUGGER after close: ok",
  "unbind: ok",
  "poll an empty handle: ok",
  "pending, O_NONBLOCK, nothing pending: EAGAIN",
  "restrict to dom0: EINVAL",
  "restrict to the peer domU: ok",
  "restrict again: EACCES",
  "restricted: bind_virq: EACCES",
  "restricted: bind_unbound_port: EACCES",
  "restricted: bind_interdomain to another domain: EACCES",
  "restricted: bind_interdomain to an absent domain: ESRCH",
  "bind_interdomain to the peer's offer: ok",
  "bind it twice: EINVAL",
  "poll after bind_interdomain: ok",
  "pending after bind_interdomain: ok",
  "poll after taking it: ok",
  "ping-pong rounds: 5 of 5",
  "peer exited cleanly: ok",
  "notify after the peer exited: ok",
  "poll after that notify: ok",
  "unbind our port: ok",
  "pingpong: ok",
];

Deno.test({
  name: name("C programs against evtchn serve"),
  ignore,
  sanitizeResources: true,
  sanitizeOps: true,
  async fn(t): Promise<void> {
    const built = await shim();
    const libDir = dirOf(built["libxenevtchn.so.1"]);
    const preload = built["libevtchn_preload.so"];
    try {
      await using s = await startServer();
      const viaLibrary = { LD_LIBRARY_PATH: libDir, EVTCHN_SOCKET: s.socket };
      const viaPreload = { LD_PRELOAD: preload, EVTCHN_SOCKET: s.socket };

      for (
        const [how, env] of [["libxenevtchn.so.1", viaLibrary], [
          "LD_PRELOAD",
          viaPreload,
        ]] as const
      ) {
        await t.step(`cross_check a2b and pingpong (${how})`, async () => {
          for (const mode of ["a2b", "pingpong"]) {
            const run = await runProgram(
              built.cross_check,
              ["300", mode, "20"],
              env,
            );
            assert.equal(run.code, 0, run.stderr);
            const result = JSON.parse(run.stdout);
            assert.equal(result.mode, mode);
            assert.equal(result.iterations, 300);
            assert.equal(result.initial_pending, result.port_b);
            assert.notEqual(result.port_a, result.port_b);
          }
          assert.equal(s.server.clients, 0); // every handle closed
        });

        await t.step(`pingpong, dom0 loopback (${how})`, async () => {
          const run = await runProgram(built.pingpong, ["0", "5"], env);
          assert.equal(run.code, 0, run.stdout + run.stderr);
          assert.deepEqual(run.stdout.trimEnd().split("\n"), LOOPBACK_LINES);
        });

        await t.step(`pingpong, dom0 and domU 1 (${how})`, async () => {
          const run = await runProgram(built.pingpong, ["1", "50"], env);
          assert.equal(run.code, 0, run.stdout + run.stderr);
          const lines = run.stdout.trimEnd().split("\n");
          assert.equal(lines[0], "pingpong: peer domU, 50 rounds");
          assert.ok(lines.includes("ping-pong rounds: 50 of 50"));
          assert.ok(!lines.some((l) => l.includes("FAIL")), run.stdout);
          assert.equal(lines.at(-1), "pingpong: ok");
        });
      }

      await t.step(
        "tests/xen/c_programs.sh prints what it printed on real Xen",
        async () => {
          const script =
            new URL("../xen/c_programs.sh", import.meta.url).pathname;
          const expected = await Deno.readTextFile(
            new URL("./fixtures/c_programs.real.txt", import.meta.url),
          );
          const out = await Deno.makeTempDir({ prefix: "evtchn-c-programs-" });
          try {
            const run = await runProgram("bash", [script, out], viaLibrary);
            assert.equal(run.code, 0, run.stdout + run.stderr);
            assert.deepEqual(run.stdout.split("\n"), expected.split("\n"));
          } finally {
            await Deno.remove(out, { recursive: true });
          }
        },
      );

      await t.step("a peer that exits leaves no port behind", () => {
        const xen = s.server.xen;
        for (const domain of [0, 1]) {
          const before = xen.snapshot(domain).ports.length;
          // Only the kernels' own ports remain: a fresh model has as many.
          const fresh = startFresh(domain);
          assert.equal(before, fresh, `dom${domain}`);
        }
      });

      assert.deepEqual(s.log, []); // no client misbehaved
    } finally {
      await removeShim();
    }
  },
});

Deno.test({
  name: name("C client errors: no server (ENOENT), server gone (EIO)"),
  ignore,
  async fn(t): Promise<void> {
    const built = await shim();
    const libDir = dirOf(built["libxenevtchn.so.1"]);
    try {
      await t.step("no server: xenevtchn_open fails ENOENT", async () => {
        const dir = await Deno.makeTempDir();
        try {
          const run = await runProgram(built.cross_check, ["10"], {
            LD_LIBRARY_PATH: libDir,
            EVTCHN_SOCKET: `${dir}/nobody.sock`,
          });
          assert.equal(run.code, 1);
          assert.match(run.stderr, /xenevtchn_open \(A\) \(errno 2:/);
        } finally {
          await Deno.remove(dir, { recursive: true });
        }
      });

      await t.step("bad EVTCHN_DOMAIN: EINVAL", async () => {
        await using s = await startServer();
        const run = await runProgram(built.cross_check, ["10"], {
          LD_LIBRARY_PATH: libDir,
          EVTCHN_SOCKET: s.socket,
          EVTCHN_DOMAIN: "dom1",
        });
        assert.equal(run.code, 1);
        assert.match(run.stderr, /errno 22:/);
      });

      await t.step("server stopped mid-run: the call fails EIO", async () => {
        const s = await startServer();
        const child = new Deno.Command(built.cross_check, {
          args: ["100000000", "pingpong", "0"],
          env: { LD_LIBRARY_PATH: libDir, EVTCHN_SOCKET: s.socket },
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        // wait until it is connected and working
        while (s.server.clients < 2) {
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        await s[Symbol.asyncDispose]();
        const output = await child.output();
        assert.equal(output.code, 1);
        assert.match(new TextDecoder().decode(output.stderr), /errno 5:/);
      });
    } finally {
      await removeShim();
    }
  },
});

/** Ports a freshly booted model holds in a domain (the kernel's own). */
function startFresh(domain: number): number {
  const xen = new MemoryXen();
  if (domain !== 0) xen.createDomain({ domain });
  return xen.snapshot(domain).ports.length;
}
