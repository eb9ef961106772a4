// Robustness: 100,000 fuzzed bad inputs against the memory backend, at the
// device level and at the hypercall level. Every refusal must be an
// EventChannelError naming the operation, nothing else may be thrown, the
// model must stay consistent, and a refused call must change nothing.

import assert from "node:assert/strict";
import { prng } from "../../oracle/mod.ts";
import {
  EventChannelError,
  type EventChannelHandle,
  MemoryXen,
} from "../../mod.ts";
import { checkInvariants, EVTCHN_OPS, FifoAbi } from "../../model.ts";

const RUNS = 100_000;

const BAD_NUMBERS = [
  -1,
  -0.5,
  0.5,
  NaN,
  Infinity,
  -Infinity,
  2 ** 32,
  2 ** 32 + 1,
  2 ** 53,
  Number.MAX_VALUE,
  "7",
  null,
  undefined,
  {},
  7n,
] as unknown as number[];

/** A number that is wrong for most arguments, or a plausible-looking one. */
function badValue(rand: () => number, top: number): number {
  const r = rand();
  if (r < 0.45) return BAD_NUMBERS[Math.floor(rand() * BAD_NUMBERS.length)];
  if (r < 0.6) return 0x10000 + Math.floor(rand() * 0xffff);
  if (r < 0.8) return top + Math.floor(rand() * 200_000);
  return Math.floor(rand() * top);
}

/** A cheap fingerprint of everything observable in the model. */
function fingerprint(xen: MemoryXen): number {
  let h = 2166136261;
  const mix = (v: number) => {
    h = Math.imul(h ^ v, 16777619);
  };
  for (const id of xen.hypervisor.domainIds) {
    const d = xen.hypervisor.domain(id)!;
    mix(id);
    mix(d.validEvtchns);
    mix(d.activeEvtchns);
    for (let p = 0; p < d.validEvtchns; p++) {
      mix(d.portState(p));
      mix(d.portNotifyVcpu(p));
      mix(d.portRemoteDomain(p));
      mix(d.portRemotePort(p));
      mix(d.portIrq(p));
    }
    for (const byte of d.sharedInfo.bytes) mix(byte);
    if (d.abi instanceof FifoAbi) {
      for (const page of d.abi.pages) for (const w of page) mix(w);
    }
  }
  return h >>> 0;
}

Deno.test(`${RUNS} fuzzed bad inputs: typed errors, no change, no leak`, async () => {
  const rand = prng(0x5eed);
  const xen = new MemoryXen();
  xen.createDomain({ domain: 1, vcpus: 2 });
  xen.createDomain({ domain: 2, linux: false, paused: true });
  const hc = xen.hypercalls(1); // an unprivileged caller: EPERM paths too
  const dom0 = xen.hypercalls(0);
  const handles: EventChannelHandle[] = [xen.open(0), xen.open(1)];
  const closed = xen.open(0);
  const mine = handles[0].bindUnboundPort(1);
  const theirs = handles[1].bindInterdomain(0, mine);
  handles[1].poll();
  await closed.close();

  const calls: [string, (h: EventChannelHandle, v: number) => unknown][] = [
    ["bind_unbound_port", (h, v) => h.bindUnboundPort(v)],
    ["bind_interdomain", (h, v) => h.bindInterdomain(v, mine)],
    ["bind_interdomain", (h, v) => h.bindInterdomain(0, v)],
    ["bind_virq", (h, v) => h.bindVirq(v)],
    ["unbind", (h, v) => h.unbind(v)],
    ["notify", (h, v) => h.notify(v)],
    ["unmask", (h, v) => h.unmask(v)],
    ["restrict_domid", (h, v) => h.restrictDomain(v)],
  ];
  const HANDLE_CALLS = calls.length; // these use a handle
  calls.push(
    ["status", (_h, v) => hc.status(1, v)],
    ["status", (_h, v) => hc.status(v, 1)],
    ["alloc_unbound", (_h, v) => hc.allocUnbound(v, 0)],
    ["alloc_unbound", (_h, v) => hc.allocUnbound(0, v)],
    ["reset", (_h, v) => dom0.reset(v)],
    ["reset", (_h, v) => hc.reset(v)],
  );
  // Every op of the model's table, each argument in turn fuzzed, the others
  // plausible: issued by the unprivileged domain 1 through the dispatcher.
  const plausible: Record<string, number> = {
    dom: 1,
    remote_dom: 0,
    port: theirs,
    remote_port: mine,
    vcpu: 0,
    priority: 7,
  };
  for (const spec of Object.values(EVTCHN_OPS)) {
    spec.args.forEach((_, fuzzed) => {
      calls.push([spec.name, (_h, v) => {
        const args = spec.args.map((a, i) =>
          i === fuzzed ? v : plausible[a.name] ?? 0
        );
        const result = xen.hypervisor.hypercall(1, spec.name, args);
        // A port it made is domain 1's (the only domain 1 may allocate
        // in): close it again so the run keeps probing a small state.
        if (spec.returns === "port") xen.hypervisor.close(1, result as number);
        return spec.returns;
      }]);
    });
  }
  let refused = 0, accepted = 0;
  for (let i = 0; i < RUNS; i++) {
    const which = Math.floor(rand() * calls.length);
    const [op, call] = calls[which];
    const useClosed = which < HANDLE_CALLS && rand() < 0.05;
    const handle = useClosed ? closed : handles[Math.floor(rand() * 2)];
    const value = badValue(rand, 4096);
    const before = fingerprint(xen);
    try {
      const result = call(handle, value);
      accepted++;
      // A plausible value may be accepted; undo what it bound so the run
      // keeps probing refusals on a small state.
      if (typeof result === "number" && op.startsWith("bind")) {
        try {
          handle.unbind(result);
        } catch {
          xen.hypervisor.close(op === "bind_ipi" ? 1 : 0, result);
        }
      } else if (op === "alloc_unbound" && typeof result === "number") {
        xen.hypervisor.close(0, result);
      }
    } catch (error) {
      refused++;
      assert.ok(
        error instanceof EventChannelError,
        `#${i} ${op}(${String(value)}) threw ${error}`,
      );
      assert.ok(error.errno > 0 && error.code.startsWith("E"));
      if (!useClosed) assert.equal(error.op, op, error.message);
      else assert.equal(error.code, "EBADF");
      assert.equal(
        fingerprint(xen),
        before,
        `#${i} ${op}(${
          String(value)
        }) refused (${error.code}) but changed state`,
      );
    }
    if (i % 1000 === 0) assert.deepEqual(checkInvariants(xen.hypervisor), []);
  }
  assert.deepEqual(checkInvariants(xen.hypervisor), []);
  assert.ok(refused > RUNS / 2, `only ${refused} of ${RUNS} were refused`);
  assert.ok(accepted > 0);
  for (const h of handles) await h.close();
});
