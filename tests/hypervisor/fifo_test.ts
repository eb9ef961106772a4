// The FIFO ABI of the model (xen/common/event_fifo.c): init_control,
// expand_array, set_priority, event words, queues, and the switch back to
// 2-level on reset; and both ABIs giving the same deliveries.

import assert from "node:assert/strict";
import { propertyRuns } from "../_seed.ts";
import fc from "npm:fast-check@3.23.2";
import { DOMID_SELF } from "../../mod.ts";
import {
  checkInvariants,
  type FifoAbi,
  Hypervisor,
  LinuxGuest,
} from "../../model.ts";
import { FifoConsumer } from "../../backends/memory/linux/events_fifo.ts";
import { EVTCHN_FIFO_BIT as FIFO_BIT } from "../../xen/event_channel.ts";
import { assertErrno } from "../_assert.ts";

const P = 1 << FIFO_BIT.PENDING,
  M = 1 << FIFO_BIT.MASKED,
  L = 1 << FIFO_BIT.LINKED;

/** Domain 1 (2 vCPUs) switched to FIFO with one event array page. */
function fifoHost(): { xen: Hypervisor; fifo: FifoAbi } {
  const xen = new Hypervisor();
  xen.createDomain({ domain: 0, privileged: true });
  const d = xen.createDomain({ domain: 1, vcpus: 2, maxEvtchnPort: 4095 });
  assert.equal(xen.initControl(1, d.allocGuestPage(), 0, 0), 17);
  xen.initControl(1, d.allocGuestPage(), 64, 1);
  xen.expandArray(1, d.allocGuestPage());
  return { xen, fifo: d.abi as FifoAbi };
}

Deno.test("init_control", async (t) => {
  await t.step("switches the domain to FIFO on the first success", () => {
    const xen = new Hypervisor();
    const d = xen.createDomain({ domain: 1, vcpus: 2 });
    assert.equal(d.abi.name, "2l");
    assert.equal(d.maxEvtchns, 4096);
    xen.initControl(1, d.allocGuestPage(), 0, 1);
    assert.equal(d.abi.name, "fifo");
    assert.equal(d.maxEvtchns, 131072);
    assert.deepEqual(checkInvariants(xen), []);
  });
  await t.step("ENOENT, then EINVAL for offset, frame, second block", () => {
    const xen = new Hypervisor();
    const d = xen.createDomain({ domain: 1, vcpus: 2 });
    const gfn = d.allocGuestPage();
    assertErrno(() => xen.initControl(1, gfn, 0, 2), "init_control", "ENOENT");
    assertErrno(
      () => xen.initControl(1, gfn, 4096 - 72 + 8, 0),
      "init_control",
      "EINVAL",
    );
    assertErrno(() => xen.initControl(1, gfn, 4, 0), "init_control", "EINVAL");
    assertErrno(() => xen.initControl(1, 0x99, 0, 0), "init_control", "EINVAL");
    assert.equal(d.abi.name, "2l", "failures do not switch");
    xen.initControl(1, gfn, 4024, 0);
    assertErrno(() => xen.initControl(1, gfn, 0, 0), "init_control", "EINVAL");
  });
  await t.step("2-level pending events are replayed when words appear", () => {
    const xen = new Hypervisor();
    const d = xen.createDomain({ domain: 1 });
    const ipi = xen.bindIpi(1, 0);
    xen.send(1, ipi);
    xen.initControl(1, d.allocGuestPage(), 0, 0);
    const fifo = d.abi as FifoAbi;
    assert.equal(fifo.savedPending[ipi], 1);
    assert.equal(fifo.isPending(ipi), false, "no event word yet");
    xen.expandArray(1, d.allocGuestPage());
    assert.equal(fifo.isPending(ipi), true);
    assert.equal(fifo.controlBlock(0)![2 + 7], ipi, "queued at priority 7");
  });
});

Deno.test("expand_array", async (t) => {
  await t.step("EOPNOTSUPP under 2-level", () => {
    const xen = new Hypervisor();
    const d = xen.createDomain({ domain: 1 });
    assertErrno(
      () => xen.expandArray(1, d.allocGuestPage()),
      "expand_array",
      "EOPNOTSUPP",
    );
  });
  await t.step("EINVAL for a bad frame, ENOSPC after 128 pages", () => {
    const { xen, fifo } = fifoHost();
    const d = xen.domain(1)!;
    assertErrno(() => xen.expandArray(1, 0x5), "expand_array", "EINVAL");
    while (fifo.pages.length < 128) xen.expandArray(1, d.allocGuestPage());
    assert.equal(fifo.numEvtchns, 131072);
    assertErrno(
      () => xen.expandArray(1, d.allocGuestPage()),
      "expand_array",
      "ENOSPC",
    );
  });
});

Deno.test("set_priority", async (t) => {
  await t.step("ENOSYS under 2-level, EINVAL beyond storage", () => {
    const xen = new Hypervisor();
    xen.createDomain({ domain: 1 });
    const p = xen.bindIpi(1, 0);
    assertErrno(() => xen.setPriority(1, p, 3), "set_priority", "ENOSYS");
    assertErrno(() => xen.setPriority(1, 64, 3), "set_priority", "EINVAL");
  });
  await t.step("EACCES on free ports, EINVAL above 15", () => {
    const { xen } = fifoHost();
    assertErrno(() => xen.setPriority(1, 5, 3), "set_priority", "EACCES");
    assertErrno(() => xen.setPriority(1, 0, 3), "set_priority", "EACCES");
    const p = xen.bindIpi(1, 0);
    assertErrno(() => xen.setPriority(1, p, 16), "set_priority", "EINVAL");
    xen.setPriority(1, p, 15);
  });
  await t.step("higher priority is consumed first; bind resets to 7", () => {
    const { xen, fifo } = fifoHost();
    const low = xen.bindIpi(1, 0), high = xen.bindIpi(1, 0);
    xen.setPriority(1, high, 0);
    xen.send(1, low);
    xen.send(1, high);
    const block = fifo.controlBlock(0)!;
    assert.equal(block[0], (1 << 0) | (1 << 7), "READY bits 0 and 7");
    const seen: number[] = [];
    new FifoConsumer(fifo, 2).handleEvents(0, (port) => {
      fifo.clearPending(port);
      seen.push(port);
    });
    assert.deepEqual(seen, [high, low]);
    xen.close(1, high);
    assert.equal(xen.bindIpi(1, 0), high);
    assert.equal(fifo.priority[high], 7);
  });
});

Deno.test("FIFO event words and queues", async (t) => {
  await t.step("set pending links the port: HEAD, READY, one upcall", () => {
    const { xen, fifo } = fifoHost();
    const d = xen.domain(1)!;
    let upcalls = 0;
    d.upcall = () => upcalls++;
    const a = xen.bindIpi(1, 0), b = xen.bindIpi(1, 0);
    xen.send(1, a);
    xen.send(1, b);
    xen.send(1, a); // coalesced: already pending and linked
    assert.equal(fifo.word(a)! & (P | L), P | L);
    assert.equal(fifo.word(a)! & 0x1ffff, b, "a links to b");
    assert.equal(fifo.controlBlock(0)![2 + 7], a, "HEAD is a");
    assert.equal(upcalls, 1, "only the new head raised an upcall");
    assert.deepEqual(checkInvariants(xen), []);
  });
  await t.step("masked: only P; unmask links it", () => {
    const { xen, fifo } = fifoHost();
    const p = xen.bindIpi(1, 1);
    fifo.mask(p);
    xen.send(1, p);
    assert.equal(fifo.word(p)! & (P | M | L), P | M);
    assert.equal(fifo.controlBlock(1)![0], 0);
    xen.unmask(1, p);
    assert.equal(fifo.word(p)! & (P | M | L), P | L);
    assert.equal(fifo.controlBlock(1)![2 + 7], p);
  });
  await t.step("a port that moved queue leaves its old tail behind", () => {
    const { xen, fifo } = fifoHost();
    const a = xen.bindIpi(1, 0), b = xen.bindIpi(1, 0);
    const consume = () =>
      new FifoConsumer(fifo, 2).handleEvents(0, (port) => {
        fifo.clearPending(port);
      });
    xen.send(1, a); // queue (vCPU 0, priority 7), a is its tail
    consume(); // unlinked by the guest; Xen's tail still names a
    assert.equal(fifo.tails[7], a);
    xen.setPriority(1, a, 3);
    xen.send(1, a); // re-queued on priority 3: the old queue forgets a
    assert.equal(fifo.tails[7], 0);
    assert.equal(fifo.tails[3], a);
    assert.equal(fifo.lastQueue[a], (0 << 8) | 3);
    xen.send(1, b); // priority 7 starts afresh: b is HEAD[7]
    assert.equal(fifo.controlBlock(0)![2 + 7], b);
    assert.equal(fifo.word(a)! & 0x1ffff, 0, "a does not link to b");
    assert.deepEqual(checkInvariants(xen), []);
  });
  await t.step("a vCPU without a control block loses the event", () => {
    const xen = new Hypervisor();
    const d = xen.createDomain({ domain: 1, vcpus: 2 });
    xen.initControl(1, d.allocGuestPage(), 0, 0);
    xen.expandArray(1, d.allocGuestPage());
    const p = xen.bindIpi(1, 1);
    xen.send(1, p);
    assert.equal((d.abi as FifoAbi).isPending(p), false);
  });
  await t.step("ports beyond the event array keep the event for later", () => {
    const { xen, fifo } = fifoHost();
    for (let i = 1; i < 1030; i++) xen.allocUnbound(1, DOMID_SELF, 1);
    const a = xen.allocUnbound(1, DOMID_SELF, 1);
    const b = xen.bindInterdomain(1, DOMID_SELF, a);
    assert.ok(b >= 1024);
    assert.equal(fifo.savedPending[b], 1);
    assert.equal(fifo.isMasked(b), true, "no word reads as masked");
    xen.expandArray(1, xen.domain(1)!.allocGuestPage());
    assert.equal(fifo.isPending(b), true);
  });
  await t.step("a freed port still linked is busy: allocation skips it", () => {
    const { xen, fifo } = fifoHost();
    const a = xen.bindIpi(1, 0);
    xen.send(1, a);
    xen.close(1, a);
    assert.equal(fifo.word(a)! & (P | L), L, "free clears P, not L");
    assert.equal(fifo.isBusy(a), true);
    const next = xen.bindIpi(1, 0);
    assert.notEqual(next, a);
    // the guest consumes the queue: the port is no longer busy
    new FifoConsumer(fifo, 2).handleEvents(0, () => {});
    assert.equal(fifo.isBusy(a), false);
    assert.equal(xen.bindIpi(1, 0), a);
  });
  await t.step("FIFO ports reach beyond 4096 (dom0 has no lower limit)", () => {
    const xen = new Hypervisor();
    const d = xen.createDomain({ domain: 0, privileged: true });
    xen.initControl(0, d.allocGuestPage(), 0, 0);
    for (let i = 1; i < 5000; i++) xen.allocUnbound(0, 0, 0);
    assert.equal(d.validEvtchns, 5056);
    assert.equal(xen.status(0, 0, 4999).status, "unbound");
    assert.deepEqual(checkInvariants(xen), []);
  });
  await t.step("a completed reset switches back to 2-level", () => {
    const { xen } = fifoHost();
    xen.bindIpi(1, 0);
    xen.reset(1, 1);
    const d = xen.domain(1)!;
    assert.equal(d.abi.name, "2l");
    assert.equal(d.maxEvtchns, 4096);
    assertErrno(
      () => xen.expandArray(1, d.allocGuestPage()),
      "expand_array",
      "EOPNOTSUPP",
    );
  });
});

Deno.test("both ABIs deliver the same events for the same steps", () => {
  type Op = { kind: "send" | "eoi" | "consume-late"; index: number };
  const op: fc.Arbitrary<Op> = fc.record({
    kind: fc.constantFrom("send", "eoi", "consume-late"),
    index: fc.integer({ min: 0, max: 11 }),
  });
  fc.assert(
    fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
      const outcomes = (["fifo", "2l"] as const).map((eventAbi) => {
        const xen = new Hypervisor();
        xen.createDomain({ domain: 0, privileged: true, vcpus: 2 });
        xen.createDomain({ domain: 1, vcpus: 2 });
        const linux = new LinuxGuest(xen, 0, { eventAbi, bootPorts: false });
        const delivered: number[][] = [];
        let batch: number[] = [];
        const senders: number[] = [], receivers: number[] = [];
        for (let i = 0; i < 12; i++) {
          const offered = xen.allocUnbound(1, 1, 0);
          const local = xen.bindInterdomain(0, 1, offered);
          linux.bindBalanced(local, (port) => batch.push(port), true);
          senders.push(offered);
          receivers.push(local);
        }
        for (const { kind, index } of ops) {
          batch = [];
          if (kind === "send") xen.send(1, senders[index]);
          else linux.lateEoi(receivers[index]);
          delivered.push(batch.sort((a, b) => a - b));
          assert.deepEqual(checkInvariants(xen), []);
        }
        return delivered;
      });
      assert.deepEqual(outcomes[0], outcomes[1]);
    }),
    propertyRuns(200),
  );
});
