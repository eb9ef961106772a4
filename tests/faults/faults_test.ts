// Fault injection on the memory backend: each fault breaks a minimal program
// that assumes it never happens and leaves a correct one working; the same
// plan and seed reproduce a run bit for bit; bad plans are refused.

import assert from "node:assert/strict";
import {
  assertNoFindings,
  type EventChannelHandle,
  type FaultOptions,
  MemoryXen,
  VIRQ,
} from "../../mod.ts";
import { assertErrno } from "../_assert.ts";

/** dom0 offers, domU 1 binds; the bind-time event drained and unmasked. */
function channel(
  dom0: EventChannelHandle,
  domU: EventChannelHandle,
): { offered: number; port: number } {
  const offered = dom0.bindUnboundPort(1);
  const port = domU.bindInterdomain(0, offered);
  assert.equal(domU.poll(), port);
  domU.unmask(port);
  return { offered, port };
}

Deno.test("faults: destroy a peer domain at a step", async (t) => {
  const plan: FaultOptions = { destroyDomain: [{ step: 6, domain: 1 }] };

  await t.step("buggy: keeps notifying the dead peer (lint sees it)", () => {
    const xen = new MemoryXen({
      faults: { destroyDomain: [{ step: 7, domain: 1 }] },
      lint: true,
    });
    xen.createDomain({ domain: 1 });
    using dom0 = xen.open(0); // 1
    using domU = xen.open(1); // 2
    const { offered } = channel(dom0, domU); // 3..6
    dom0.notify(offered); // 7: domain 1 is destroyed just before
    assert.deepEqual(xen.injectedFaults(), [
      { step: 7, kind: "destroy-domain", domain: 1 },
    ]);
    assert.equal(xen.hypercalls(0).status(0, offered).status, "unbound");
    assert.deepEqual(
      xen.findings().map((f) => [f.code, f.step]),
      [["notify-unbound-peer", 7]],
    );
  });

  await t.step("correct: VIRQ_DOM_EXC, status, stop talking", () => {
    const xen = new MemoryXen({ faults: plan, lint: true });
    xen.createDomain({ domain: 1 });
    {
      using dom0 = xen.open(0); // 1
      using domU = xen.open(1); // 2
      const exc = dom0.bindVirq(VIRQ.DOM_EXC); // 3
      const offered = dom0.bindUnboundPort(1); // 4
      const port = domU.bindInterdomain(0, offered); // 5
      assert.equal(dom0.poll(), exc); // 6: destroyed first; DOM_EXC fired
      dom0.unmask(exc);
      const status = xen.hypercalls(0).status(0, offered);
      assert.deepEqual(status, { status: "unbound", vcpu: 0, remoteDomain: 1 });
      dom0.unbind(offered);
      dom0.unbind(exc);
      assert.ok(port > 0);
      // domU's handle goes with its domain: no leaked-port for it.
    }
    assertNoFindings(xen, { final: true });
  });

  await t.step("a domain gone already is skipped and logged", () => {
    const xen = new MemoryXen({ faults: plan });
    xen.createDomain({ domain: 1 });
    xen.destroyDomain(1);
    const h = xen.open(0);
    for (let i = 0; i < 6; i++) h.poll();
    h.close();
    assert.deepEqual(xen.injectedFaults(), [{
      step: 6,
      kind: "destroy-domain",
      domain: 1,
      skipped: "no such domain",
    }]);
  });
});

Deno.test("faults: spurious events", async (t) => {
  await t.step("buggy: takes every event for a message", () => {
    const xen = new MemoryXen({
      faults: { spurious: [{ step: 6, domain: 1 }] },
      seed: 1,
    });
    xen.createDomain({ domain: 1 });
    using dom0 = xen.open(0);
    using domU = xen.open(1);
    const { port } = channel(dom0, domU);
    // A program that counts events as messages counts one nobody sent.
    let messages = 0;
    for (let p = domU.poll(); p !== undefined; p = domU.poll()) {
      messages++;
      domU.unmask(p);
    }
    const [fault] = xen.injectedFaults();
    assert.equal(fault.kind, "spurious");
    assert.equal(fault.domain, 1);
    if (fault.port === port) assert.equal(messages, 1);
  });

  await t.step("correct: an event is a hint, the state is the truth", () => {
    const xen = new MemoryXen({
      faults: { spurious: [{ step: 7, domain: 1 }] },
      seed: 1,
      lint: true,
    });
    xen.createDomain({ domain: 1 });
    {
      using dom0 = xen.open(0);
      using domU = xen.open(1);
      const { port, offered } = channel(dom0, domU);
      const queue: number[] = []; // what the peer really sent
      // The program reads its queue on every event, whatever caused it.
      for (let i = 0; i < 3; i++) {
        for (let p = domU.poll(); p !== undefined; p = domU.poll()) {
          domU.unmask(p);
          queue.length = 0;
        }
      }
      assert.equal(queue.length, 0);
      domU.unbind(port);
      dom0.unbind(offered);
    }
    assert.equal(xen.injectedFaults().length, 1);
    assertNoFindings(xen, { final: true });
  });

  await t.step("a chosen port, the same for the same seed", () => {
    const run = (seed: number) => {
      const xen = new MemoryXen({
        faults: { spurious: [{ step: 3, domain: 0 }, { step: 4, domain: 0 }] },
        seed,
      });
      using h = xen.open(0);
      h.poll();
      h.poll();
      h.poll();
      return xen.injectedFaults();
    };
    assert.deepEqual(run(42), run(42));
    const ports = new Set<number | undefined>();
    for (let seed = 0; seed < 20; seed++) {
      for (const f of run(seed)) ports.add(f.port);
    }
    assert.ok(ports.size > 1, "the seed chooses among dom0's ports");
  });

  await t.step("named port: delivered to its handle once", async () => {
    const xen = new MemoryXen({ lint: true, faults: { spurious: [] } });
    xen.createDomain({ domain: 1 });
    using dom0 = xen.open(0);
    using domU = xen.open(1);
    const { port, offered } = channel(dom0, domU);
    const named = new MemoryXen({
      faults: { spurious: [{ step: 6, domain: 1, port }] },
    });
    named.createDomain({ domain: 1 });
    using a = named.open(0);
    using b = named.open(1);
    const c = channel(a, b);
    assert.equal(c.port, port);
    assert.equal(await b.next(), port); // step 6: nobody notified
    b.unmask(port);
    assert.equal(b.poll(), undefined);
    assert.deepEqual(named.injectedFaults(), [
      { step: 6, kind: "spurious", domain: 1, port },
    ]);
    dom0.unbind(offered);
    domU.unbind(port);
  });
});

Deno.test("faults: delayed cross-vCPU delivery", async (t) => {
  const faults: FaultOptions = { delay: { steps: 5, vcpus: [0, 1] } };

  await t.step("buggy: polls once right after the notify", () => {
    const xen = new MemoryXen({ faults, seed: 3 });
    using a = xen.open(0);
    using b = xen.open(0);
    const offered = a.bindUnboundPort(0);
    const port = b.bindInterdomain(0, offered);
    let seen = 0;
    for (let i = 0; i < 10 && seen === 0; i++) {
      if (b.poll() === port) seen = i + 1;
    }
    // The bind-time event reaches the vCPU only some polls later.
    assert.ok(seen > 1, `seen at poll ${seen}`);
    const [held, released] = xen.injectedFaults();
    assert.equal(held.kind, "delay");
    assert.equal(released.kind, "release");
    assert.equal(released.step, held.until);
  });

  await t.step("correct: waits for the event", async () => {
    const xen = new MemoryXen({ faults, seed: 3, lint: true });
    {
      await using a = xen.open(0);
      await using b = xen.open(0);
      const offered = a.bindUnboundPort(0);
      const port = b.bindInterdomain(0, offered);
      assert.equal(await b.next(), port); // waiting lets the vCPU run
      b.unmask(port);
      for (let i = 0; i < 20; i++) {
        a.notify(offered);
        assert.equal(await b.next(), port);
        b.unmask(port);
      }
      b.unbind(port);
      a.unbind(offered);
    }
    assertNoFindings(xen, { final: true });
    assert.ok(xen.injectedFaults().some((f) => f.kind === "release"));
  });

  await t.step("the seed decides the delays", () => {
    const run = (seed: number) => {
      const xen = new MemoryXen({ faults, seed });
      using a = xen.open(0);
      using b = xen.open(0);
      const offered = a.bindUnboundPort(0);
      const port = b.bindInterdomain(0, offered);
      const seen: number[] = [];
      for (let i = 0; i < 200; i++) {
        if (i % 3 === 0) a.notify(offered);
        const p = b.poll();
        if (p !== undefined) {
          seen.push(i);
          b.unmask(p);
        }
      }
      assert.ok(port > 0);
      return JSON.stringify([seen, xen.injectedFaults(), xen.ports(0)]);
    };
    assert.equal(run(11), run(11));
    assert.notEqual(run(11), run(12));
  });
});

Deno.test("faults: forced ring overflow", async (t) => {
  await t.step("buggy: does not expect EFBIG", () => {
    const xen = new MemoryXen({
      faults: { overflow: [{ step: 6, handle: 1 }] },
      lint: true,
    });
    using a = xen.open(0); // handle 0
    using b = xen.open(0); // handle 1
    const offered = a.bindUnboundPort(0);
    const port = b.bindInterdomain(0, offered);
    assert.equal(b.poll(), port); // 5
    assertErrno(() => b.poll(), "read", "EFBIG"); // 6: overflowed first
    const [fault] = xen.injectedFaults();
    assert.deepEqual(fault, {
      step: 6,
      kind: "overflow",
      handle: 1,
      domain: 0,
      port,
    });
    const [finding] = xen.findings();
    assert.equal(finding.code, "ring-overflow");
    assert.equal(finding.dropped, 1);
  });

  await t.step("correct: on EFBIG, reset, unmask, rescan", async () => {
    const xen = new MemoryXen({
      faults: { overflow: [{ step: 7, handle: 1 }] },
      lint: true,
    });
    {
      await using a = xen.open(0);
      await using b = xen.open(0);
      const offered = a.bindUnboundPort(0);
      const port = b.bindInterdomain(0, offered);
      let events = 0;
      for (let i = 0; i < 5; i++) {
        try {
          const p = b.poll();
          if (p !== undefined) {
            events++;
            b.unmask(p);
          }
        } catch {
          b.reset(); // EFBIG: start over, every port may have fired
          b.unmask(port);
        }
        a.notify(offered);
      }
      assert.ok(events >= 3);
      b.unbind(port);
      a.unbind(offered);
    }
    const codes = xen.findings({ final: true }).map((f) => f.code);
    assert.deepEqual(codes, ["ring-overflow"], "only the injected overflow");
  });

  await t.step("a handle without ports is skipped", () => {
    const xen = new MemoryXen({
      faults: { overflow: [{ step: 2, handle: 0 }] },
    });
    using h = xen.open(0);
    h.poll();
    assert.equal(xen.injectedFaults()[0].skipped, "handle has no port bound");
  });
});

Deno.test("faults: an operation fails at its Nth call", async (t) => {
  await t.step("buggy: no retry, the port is never bound", () => {
    const xen = new MemoryXen({
      faults: { fail: [{ op: "bind_unbound_port", call: 2, errno: "ENOMEM" }] },
    });
    using h = xen.open(0);
    const first = h.bindUnboundPort(0);
    const before = xen.ports(0);
    const e = assertErrno(
      () => h.bindUnboundPort(0),
      "bind_unbound_port",
      "ENOMEM",
    );
    assert.match(e.message, /injected fault/);
    assert.deepEqual(xen.ports(0), before, "nothing changed");
    assert.equal(h.bindUnboundPort(0), first + 1, "the third call works");
    assert.deepEqual(xen.injectedFaults(), [
      {
        step: 3,
        kind: "fail",
        handle: 0,
        op: "bind_unbound_port",
        errno: "ENOMEM",
      },
    ]);
  });

  await t.step("correct: retries EAGAIN and ENOMEM", () => {
    const xen = new MemoryXen({
      faults: {
        fail: [
          { op: "notify", call: 1, errno: "EAGAIN" },
          { op: "bind_interdomain", call: 1, errno: "ENOSPC" },
        ],
      },
    });
    using a = xen.open(0);
    using b = xen.open(0);
    const offered = a.bindUnboundPort(0);
    const retry = <T>(f: () => T): T => {
      for (let i = 0;; i++) {
        try {
          return f();
        } catch (error) {
          if (i === 3) throw error;
        }
      }
    };
    const port = retry(() => b.bindInterdomain(0, offered));
    assert.equal(b.poll(), port);
    b.unmask(port);
    retry(() => a.notify(offered));
    assert.equal(b.poll(), port);
  });
});

Deno.test("faults: bad plans are refused with EINVAL naming the field", () => {
  const bad: [unknown, RegExp][] = [
    [{ destroyDomain: [{ step: 1, domain: 0 }] }, /destroyDomain\[0\]\.domain/],
    [{ spurious: [{ step: 0, domain: 1 }] }, /spurious\[0\]\.step/],
    [{ delay: { steps: 0 } }, /delay\.steps/],
    [{ overflow: "x" }, /faults\.overflow/],
    [{ fail: [{ op: "read", call: 1, errno: "ENOMEM" }] }, /fail\[0\]\.op/],
    [{ fail: [{ op: "notify", call: 1, errno: "EIO" }] }, /fail\[0\]\.errno/],
    [{ storm: [] }, /faults\.storm/],
    [[], /faults/],
  ];
  for (const [faults, where] of bad) {
    const e = assertErrno(
      () => new MemoryXen({ faults: faults as FaultOptions }),
      "faults",
      "EINVAL",
    );
    assert.match(e.message, where);
  }
  assertErrno(
    () => new MemoryXen({ faults: {}, seed: 0.5 }),
    "faults",
    "EINVAL",
  );
});

Deno.test("faults: a hypercall fails at its Nth call (Xen's dispatcher)", async (t) => {
  await t.step("buggy: takes a notify for delivered", () => {
    const xen = new MemoryXen({
      faults: { fail: [{ op: "EVTCHNOP_send", call: 1, errno: "ENOMEM" }] },
    });
    using a = xen.open(0);
    using b = xen.open(0);
    const offered = a.bindUnboundPort(0);
    const port = b.bindInterdomain(0, offered);
    assert.equal(b.poll(), port);
    b.unmask(port);
    a.notify(offered); // Linux ignores EVTCHNOP_send's result: lost
    assert.equal(b.poll(), undefined);
    assert.deepEqual(xen.injectedFaults(), [
      {
        step: 7,
        kind: "fail",
        domain: 0,
        op: "EVTCHNOP_send",
        errno: "ENOMEM",
      },
    ]);
  });

  await t.step("correct: a refused allocation leaves no trace, retried", () => {
    const xen = new MemoryXen({
      faults: {
        fail: [{
          op: "EVTCHNOP_alloc_unbound",
          call: 1,
          errno: "ENOSPC",
          domain: 0,
        }],
      },
    });
    using h = xen.open(0);
    const before = xen.ports(0);
    assertErrno(() => h.bindUnboundPort(0), "bind_unbound_port", "ENOSPC");
    assert.deepEqual(xen.ports(0), before);
    const port = h.bindUnboundPort(0);
    assert.equal(xen.port(0, port)?.state, "unbound");
  });
});

Deno.test("faults: every fault at once reproduces bit for bit from the seed", () => {
  const faults: FaultOptions = {
    destroyDomain: [{ step: 150, domain: 2 }],
    spurious: [{ step: 20, domain: 0 }, { step: 40, domain: 1 }],
    delay: { steps: 7 },
    overflow: [{ step: 90, handle: 1 }],
    fail: [
      { op: "notify", call: 5, errno: "EAGAIN" },
      { op: "EVTCHNOP_send", call: 9, errno: "ENOMEM" },
    ],
  };
  const run = (seed: number): string => {
    const xen = new MemoryXen({ faults, seed, lint: true });
    xen.createDomain({ domain: 1, vcpus: 2 });
    xen.createDomain({ domain: 2, vcpus: 2 });
    const trace: unknown[] = [];
    const handles = [xen.open(0), xen.open(1), xen.open(2)];
    const links: [number, number, number, number][] = [];
    for (const [from, to] of [[0, 1], [1, 2], [2, 0], [0, 2]]) {
      const offered = handles[from].bindUnboundPort(to);
      links.push([
        from,
        offered,
        to,
        handles[to].bindInterdomain(from, offered),
      ]);
    }
    for (let i = 0; i < 200; i++) {
      const [from, offered, to] = links[i % links.length];
      try {
        handles[from].notify(offered);
        const p = handles[to].poll();
        if (p !== undefined) handles[to].unmask(p);
        trace.push(p ?? null);
      } catch (error) {
        trace.push(String(error));
        if (String(error).includes("EFBIG")) handles[to].reset();
      }
    }
    for (const h of handles) h.close();
    return JSON.stringify([
      trace,
      xen.injectedFaults(),
      xen.findings({ final: true }),
      xen.domains().map((d) => xen.ports(d.id)),
    ]);
  };
  const first = run(2026);
  assert.equal(run(2026), first);
  assert.notEqual(run(2027), first);
});
