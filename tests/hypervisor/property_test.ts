// Property tests: random operation sequences over several domains and vCPUs;
// invariants hold after every step and a failed step changes nothing. The
// hypercalls are every op of the model's op table (EVTCHN_OPS), issued
// through its dispatcher; beside them the guest raises VIRQs, masks ports
// and takes upcalls in its own memory.

import assert from "node:assert/strict";
import { propertyRuns } from "../_seed.ts";
import fc from "npm:fast-check@3.23.2";
import { EventChannelError } from "../../mod.ts";
import {
  checkInvariants,
  EVTCHN_OPS,
  FifoAbi,
  Hypervisor,
  type OpArgType,
} from "../../model.ts";
import type { EvtchnOpName } from "../../mod.ts";
import { FifoConsumer } from "../../backends/memory/linux/events_fifo.ts";
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
/** A fresh page of the caller's, handed to the op by `apply`. */
const FRESH_PAGE = -2;

/**
 * Values for an argument of the op table, by its field name where the
 * plausible range is narrow, else by its C type: a new op or field in the
 * table is exercised without a change here.
 */
const BY_NAME: Record<string, fc.Arbitrary<number>> = {
  virq,
  vcpu,
  pirq: fc.integer({ min: 0, max: 4 }),
  flags: fc.constantFrom(0, 1),
  offset: fc.constantFrom(0, 8, 64, 4024, 4028, 4032),
  priority: fc.integer({ min: 0, max: 17 }),
};
const BY_TYPE: Record<OpArgType, fc.Arbitrary<number>> = {
  domid_t: domId,
  evtchn_port_t: port,
  uint32_t: fc.oneof(fc.integer({ min: 0, max: 70 }), fc.constant(-1)),
  xen_pfn_t: fc.constant(FRESH_PAGE),
};

type Step = { op: string; caller: number; args: number[] };

/** What the guest does in its own memory, beside the hypercalls. */
const GUEST_STEPS: Record<string, fc.Arbitrary<number>[]> = {
  raise_virq: [virq, vcpu],
  mask: [port],
  consume: [vcpu],
};

const step: fc.Arbitrary<Step> = fc.oneof(
  ...Object.values(EVTCHN_OPS).map((op) =>
    fc.record({
      op: fc.constant<string>(op.name),
      caller,
      args: fc.tuple(...op.args.map((a) => BY_NAME[a.name] ?? BY_TYPE[a.type])),
    })
  ),
  ...Object.entries(GUEST_STEPS).map(([op, args]) =>
    fc.record({ op: fc.constant(op), caller, args: fc.tuple(...args) })
  ),
);

function apply(xen: Hypervisor, s: Step): void {
  const { caller: c, args } = s;
  const [a, b] = args;
  if (Object.hasOwn(EVTCHN_OPS, s.op)) {
    const op = EVTCHN_OPS[s.op as EvtchnOpName];
    const resolved = args.map((v, i) =>
      op.args[i].type === "xen_pfn_t" && v === FRESH_PAGE
        ? xen.domain(c)!.allocGuestPage()
        : v
    );
    xen.hypercall(c, op.name, resolved);
    return;
  }
  switch (s.op) {
    case "raise_virq":
      xen.raiseVirq(c, a, b);
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
    default:
      throw new Error(`no such step ${s.op}`);
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
    propertyRuns(300),
  );
});
