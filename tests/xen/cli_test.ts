// The CLI on the linux backend in a real dom0 (the real-Xen stage runs this;
// elsewhere it is ignored with the reason): the commands an operator runs,
// as subprocesses, against /dev/xen/evtchn.

import assert from "node:assert/strict";
import { linuxDeviceStatus, MemoryXen, parseHostSnapshot } from "../../mod.ts";
import { type CliResult, cliWith } from "../cli/_run.ts";

const device = linuxDeviceStatus();
/** `evtchn --backend linux ARGS` as dom0 runs it (`-A`: Deno wants it for /dev). */
const evtchn = (...args: string[]): Promise<CliResult> =>
  cliWith(["--no-check", "--no-lock", "-A"], "--backend", "linux", ...args);

const test = (name: string, fn: () => Promise<void>): void =>
  Deno.test({
    name: `cli on real Xen: ${name}` +
      (device.available
        ? ""
        : ` [ignored: ${device.reason ?? "no Xen device"}]`),
    ignore: !device.available,
    fn,
  });

test("info reports the linux backend and the devices", async () => {
  const { code, stdout } = await evtchn("info", "--json");
  assert.equal(code, 0);
  const info = JSON.parse(stdout);
  assert.equal(info.version, 1);
  assert.equal(info.backend, "linux");
  assert.equal(info.linux.available, true);
});

test("ping measures round trips over a loopback channel", async () => {
  const { code, stdout, stderr } = await evtchn(
    "ping",
    "--count",
    "50",
    "--json",
  );
  assert.equal(code, 0, stderr);
  const ping = JSON.parse(stdout);
  assert.equal(ping.count, 50);
  const { min, median, p99, max } = ping.latencyUs;
  // min may be 0: dom0's clock (Xen's pvclock, clamped to stay monotonic
  // across vCPUs whose emulated TSCs drift apart under TCG) can stand still
  // across a fast round trip; seen in 3 of 25 runs on a loaded host.
  assert.ok(
    0 <= min && min <= median && median <= p99 && p99 <= max && max > 0,
    JSON.stringify(ping.latencyUs),
  );
});

test("bind virq TIMER is refused with EEXIST (exit 1)", async () => {
  const { code, stderr } = await evtchn("bind", "virq", "TIMER");
  assert.equal(code, 1);
  assert.match(stderr, /bind_virq.*EEXIST/);
});

test("notify of a port the handle does not own is ENOTCONN (exit 1)", async () => {
  const { code, stderr } = await evtchn("notify", "5");
  assert.equal(code, 1);
  assert.match(stderr, /notify.*ENOTCONN/);
});

test("watch binds a VIRQ and ends with a summary", async () => {
  const { code, stdout, stderr } = await evtchn(
    "watch",
    "--virq",
    "DEBUGGER",
    "--timeout",
    "1",
    "--json",
  );
  assert.equal(code, 0, stderr);
  const lines = stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(lines[0].type, "bound");
  assert.equal(lines[0].backend, "linux");
  assert.equal(lines.at(-1).type, "summary");
});

test("snapshot --json describes dom0, and a model booted from it agrees", async () => {
  const { code, stdout, stderr } = await evtchn("snapshot", "--json");
  assert.equal(code, 0, stderr);
  const host = parseHostSnapshot(stdout);
  assert.equal(host.domain, 0);
  assert.match(host.xen, /^4\.17/);
  const timers = host.ports.filter((p) => p.status === "virq" && p.virq === 0);
  assert.equal(timers.length, host.vcpus); // VIRQ_TIMER on every vCPU
  assert.deepEqual(new MemoryXen({ host }).snapshot().ports, host.ports);
});
