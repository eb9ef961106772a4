// Property tests: random operation sequences over several domains and vCPUs;
// invariants hold after every step and a failed step changes nothing.

import assert from "node:assert/strict";
import fc from "npm:fast-check@3.23.2";
import { EventChannelError } from "../../mod.ts";
import { checkInvariants, FifoAbi, Hypervisor } from "../../model.ts";
import { FifoConsumer } from "../../backends/memory/hypervisor/guest_fifo.ts";
import { channelStatus } from "../../backends/memory/hypervisor/hypervisor.ts";

const DOMAINS = [0, 1, 2, 3];
const domId = fc.constantFrom(...DOMAINS, 9, 0x7ff0);
const port = fc.oneof(
  fc.integer({ min: 0, max: 70 }),
  fc.constantFrom(127, 128, 4095, 4096, 2 ** 32 - 1, -1, 2 ** 32, 0.5),
);
const vcpu = fc.oneof(fc.integer({ min: 0, max: 2 }), fc.constant(2 ** 31));
const virq = fc.oneof(fc.integer({ min: 0, max: 25 }), fc.constant(-1));
const caller = fc.constantFrom(...DOMAINS);

type Step = { op: string; caller: number; a: number; b: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ op: fc.constant("alloc_unbound"), caller, a: domId, b: domId }),
  fc.record({ op: fc.constant("bind_interdomain"), caller, a: domId, b: port }),
  fc.record({ op: fc.constant("bind_virq"), caller, a: virq, b: vcpu }),
  fc.record({
    op: fc.constant("bind_ipi"),
    caller,
    a: vcpu,
    b: fc.constant(0),
  }),
  fc.record({
    op: fc.constant("bind_pirq"),
    caller,
    a: fc.integer({ min: 0, max: 4 }),
    b: fc.constant(0),
  }),
  fc.record({ op: fc.constant("close"), caller, a: port, b: fc.constant(0) }),
  fc.record({ op: fc.constant("send"), caller, a: port, b: fc.constant(0) }),
  fc.record({ op: fc.constant("status"), caller, a: domId, b: port }),
  fc.record({ op: fc.constant("bind_vcpu"), caller, a: port, b: vcpu }),
  fc.record({ op: fc.constant("unmask"), caller, a: port, b: fc.constant(0) }),
  fc.record({ op: fc.constant("reset"), caller, a: domId, b: fc.constant(0) }),
  fc.record({ op: fc.constant("raise_virq"), caller, a: virq, b: vcpu }),
  fc.record({ op: fc.constant("mask"), caller, a: port, b: fc.constant(0) }),
  fc.record({ op: fc.constant("consume"), caller, a: vcpu, b: fc.constant(0) }),
  fc.record({
    op: fc.constant("init_control"),
    caller,
    a: vcpu,
    b: fc.constantFrom(0, 8, 64, 4024, 4028, 4032),
  }),
  fc.record({
    op: fc.constant("expand_array"),
    caller,
    a: fc.constant(0),
    b: fc.constant(0),
  }),
  fc.record({
    op: fc.constant("set_priority"),
    caller,
    a: port,
    b: fc.integer({ min: 0, max: 17 }),
  }),
);

function apply(xen: Hypervisor, s: Step): void {
  const { caller: c, a, b } = s;
  switch (s.op) {
    case "alloc_unbound":
      xen.allocUnbound(c, a, b);
      return;
    case "bind_interdomain":
      xen.bindInterdomain(c, a, b);
      return;
    case "bind_virq":
      xen.bindVirq(c, a, b);
      return;
    case "bind_ipi":
      xen.bindIpi(c, a);
      return;
    case "bind_pirq":
      xen.bindPirq(c, a);
      return;
    case "close":
      xen.close(c, a);
      return;
    case "send":
      xen.send(c, a);
      return;
    case "status":
      xen.status(c, a, b);
      return;
    case "bind_vcpu":
      xen.bindVcpu(c, a, b);
      return;
    case "unmask":
      xen.unmask(c, a);
      return;
    case "reset":
      xen.reset(c, a);
      return;
    case "raise_virq":
      xen.raiseVirq(c, a, b);
      return;
    case "init_control":
      xen.initControl(c, xen.domain(c)!.allocGuestPage(), b, a);
      return;
    case "expand_array":
      xen.expandArray(c, xen.domain(c)!.allocGuestPage());
      return;
    case "set_priority":
      xen.setPriority(c, a, b);
      return;
    case "mask": { // the guest masks a port in shared memory
      const d = xen.domain(c)!;
      if (Number.isInteger(a) && a >= 0 && a < 4096) d.abi.mask(a);
      return;
    }
    case "consume": { // a guest upcall that handles and clears each port
      const d = xen.domain(c)!;
      if (!(Number.isInteger(a) && a >= 0 && a < d.vcpus)) return;
      if (d.abi instanceof FifoAbi) {
        const fifo = d.abi;
        new FifoConsumer(fifo, d.vcpus).handleEvents(a, (p) => {
          fifo.clearPending(p);
        });
        return;
      }
      d.sharedInfo.exchangeUpcallPending(a, 0);
      d.sharedInfo.takeSelector(a);
      const lo = d.sharedInfo.takenLow, hi = d.sharedInfo.takenHigh;
      for (let w = 0; w < 64; w++) {
        if (!((w < 32 ? lo >>> w : hi >>> (w - 32)) & 1)) continue;
        for (let i = 2 * w; i < 2 * w + 2; i++) {
          d.sharedInfo.pending[i] &= d.sharedInfo.mask[i];
        }
      }
      return;
    }
  }
}

interface Observed {
  id: number;
  ports: ReturnType<typeof channelStatus>[];
  active: number;
  shared: number[];
  abi: string;
  guest: number[][];
}

/** Everything a guest or `status` can observe, for before/after comparison. */
function snapshot(xen: Hypervisor): Observed[] {
  return xen.domainIds.map((id) => {
    const d = xen.domain(id)!;
    const ports = [];
    for (let p = 0; p < d.validEvtchns; p++) ports.push(channelStatus(d, p));
    return {
      id,
      ports,
      active: d.activeEvtchns,
      shared: Array.from(d.sharedInfo.bytes),
      abi: d.abi.name,
      guest: [...d.guestPages.values()].map((page) => Array.from(page)),
    };
  });
}

function host(): Hypervisor {
  const xen = new Hypervisor();
  xen.createDomain({ domain: 0, privileged: true, vcpus: 2 });
  xen.createDomain({ domain: 1, vcpus: 2, maxEvtchnPort: 100 });
  xen.createDomain({ domain: 2, vcpus: 1, paused: true });
  xen.createDomain({ domain: 3, vcpus: 2, target: 2 });
  xen.grantPirq(1, 2);
  return xen;
}

Deno.test("random operation sequences keep the model consistent", () => {
  fc.assert(
    fc.property(fc.array(step, { maxLength: 120 }), (steps) => {
      const xen = host();
      for (const [i, s] of steps.entries()) {
        const before = snapshot(xen);
        try {
          apply(xen, s);
        } catch (error) {
          assert.ok(
            error instanceof EventChannelError,
            `step ${i} ${s.op} threw ${error}`,
          );
          // Xen keeps a storage bucket it allocated before a later check
          // failed (alloc_unbound's EPERM, bind_interdomain's EINVAL): the
          // new ports read as closed. Nothing else may move.
          const after = snapshot(xen);
          for (const [k, d] of after.entries()) {
            const old = before[k];
            if (d.ports.length !== old.ports.length) {
              assert.ok(
                ["alloc_unbound", "bind_interdomain"].includes(s.op),
                `step ${i} ${s.op} changed port storage`,
              );
              assert.ok(
                d.ports.slice(old.ports.length).every((x) =>
                  x.status === "closed"
                ),
              );
            }
            assert.deepEqual(
              {
                ...d,
                ports: d.ports.slice(0, old.ports.length),
                // the test itself hands the op a fresh guest page
                guest: d.guest.slice(0, old.guest.length),
              },
              old,
              `step ${i} ${
                JSON.stringify(s)
              } failed with ${error.code} but changed state`,
            );
          }
        }
        const broken = checkInvariants(xen);
        assert.deepEqual(broken, [], `after step ${i} ${JSON.stringify(s)}`);
      }
    }),
    { seed: 20261125, numRuns: 300 },
  );
});
