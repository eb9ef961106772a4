// Lint mode on the memory backend: each rule fires on a minimal buggy program
// and stays silent on the correct one; the model's behaviour is the same with
// lint on and off; findings print as a table and as JSON.

import assert from "node:assert/strict";
import {
  assertNoFindings,
  type EventChannelHandle,
  type FindingCode,
  formatFindings,
  MemoryXen,
  VIRQ,
} from "../../mod.ts";
import { defineConformance } from "../conformance/suite.ts";
import { memoryConformanceEnv } from "../conformance/memory_env.ts";

function codes(xen: MemoryXen, final = false): FindingCode[] {
  return xen.findings({ final }).map((f) => f.code);
}

/** A loopback channel on one handle, its first event drained and unmasked. */
function loopback(h: EventChannelHandle): { a: number; b: number } {
  const a = h.bindUnboundPort(0);
  const b = h.bindInterdomain(0, a);
  assert.equal(h.poll(), b);
  h.unmask(b);
  return { a, b };
}

Deno.test("lint: forgotten-unmask", async (t) => {
  await t.step("buggy: read and never unmasked, once per occurrence", () => {
    const xen = new MemoryXen({ lint: { unmaskWithin: 5 } });
    using h = xen.open(0);
    const { a, b } = loopback(h);
    h.notify(a);
    assert.deepEqual(codes(xen), []);
    assert.equal(h.poll(), b); // handled, but no unmask
    for (let i = 0; i < 10; i++) h.poll();
    const [f, ...rest] = xen.findings();
    assert.deepEqual(rest, []);
    assert.equal(f.code, "forgotten-unmask");
    assert.equal(f.severity, "error");
    assert.equal(f.domain, 0);
    assert.equal(f.port, b);
    assert.equal(f.handle, 0);
    assert.equal(f.step, 6); // open, bind, bind, poll, unmask, notify
    assert.match(f.message, /not unmasked 5 operations later/);
    assert.match(f.hint, /unmask/);
    // Unmasked late, then forgotten again: a second occurrence.
    h.unmask(b);
    h.notify(a);
    for (let i = 0; i < 10; i++) h.poll();
    assert.deepEqual(codes(xen), ["forgotten-unmask", "forgotten-unmask"]);
    h.unmask(b);
    h.unbind(b);
    h.unbind(a);
  });

  await t.step("buggy: the default window is 1000 operations", () => {
    const xen = new MemoryXen({ lint: true });
    using h = xen.open(0);
    const { a, b } = loopback(h);
    h.notify(a); // step 6: delivered
    for (let i = 0; i < 1000; i++) h.poll(); // steps 7..1006
    assert.deepEqual(codes(xen), []);
    h.poll(); // step 1007: 1001 operations later
    assert.deepEqual(codes(xen), ["forgotten-unmask"]);
    h.unmask(b);
    h.unbind(b);
    h.unbind(a);
  });

  await t.step("correct: unmasked after each event", async () => {
    const xen = new MemoryXen({ lint: { unmaskWithin: 2 } });
    {
      await using h = xen.open(0);
      const { a, b } = loopback(h);
      for (let i = 0; i < 100; i++) {
        h.notify(a);
        assert.equal(await h.next(), b);
        h.unmask(b);
      }
      // Unbinding a delivered port also ends its window.
      h.notify(a);
      h.unbind(b);
      h.unbind(a);
      for (let i = 0; i < 10; i++) h.poll();
    }
    assertNoFindings(xen, { final: true });
  });

  await t.step("unmaskWithin must be a positive integer", () => {
    assert.throws(
      () => new MemoryXen({ lint: { unmaskWithin: 0 } }),
      RangeError,
    );
    assert.throws(
      () => new MemoryXen({ lint: { unmaskWithin: 1.5 } }),
      RangeError,
    );
  });
});

Deno.test("lint: notify-unbound-peer", async (t) => {
  await t.step("buggy: notify before the peer binds", () => {
    const xen = new MemoryXen({ lint: true });
    xen.createDomain({ domain: 1 });
    using dom0 = xen.open(0);
    const offered = dom0.bindUnboundPort(1);
    dom0.notify(offered);
    const [f] = xen.findings();
    assert.equal(f.code, "notify-unbound-peer");
    assert.equal(f.port, offered);
    assert.equal(f.domain, 0);
    assert.equal(f.step, 3);
    assert.match(f.message, /domain 1/);
    dom0.unbind(offered);
    assert.equal(xen.findings().length, 1);
  });

  await t.step("buggy: notify after the peer closed its end", () => {
    const xen = new MemoryXen({ lint: true });
    xen.createDomain({ domain: 1 });
    using dom0 = xen.open(0);
    using domU = xen.open(1);
    const offered = dom0.bindUnboundPort(1);
    const port = domU.bindInterdomain(0, offered);
    domU.unbind(port);
    dom0.notify(offered);
    assert.deepEqual(codes(xen), ["notify-unbound-peer"]);
    dom0.unbind(offered);
  });

  await t.step("correct: notify once the peer has bound", async () => {
    const xen = new MemoryXen({ lint: true });
    xen.createDomain({ domain: 1 });
    {
      await using dom0 = xen.open(0);
      await using domU = xen.open(1);
      const offered = dom0.bindUnboundPort(1);
      const port = domU.bindInterdomain(0, offered);
      assert.equal(await domU.next(), port);
      domU.unmask(port);
      dom0.notify(offered);
      assert.equal(await domU.next(), port);
      domU.unmask(port);
      domU.unbind(port);
      dom0.unbind(offered);
    }
    assertNoFindings(xen, { final: true });
  });
});

Deno.test("lint: ring-overflow", async (t) => {
  await t.step("buggy: unmasked without reading, ring fills", () => {
    const xen = new MemoryXen({ lint: true });
    using h = xen.open(0);
    const a = h.bindUnboundPort(0);
    const b = h.bindInterdomain(0, a); // 1 entry queued
    for (let i = 0; i < 70; i++) {
      h.unmask(b); // no read: the entry stays in the ring
      h.notify(a);
    }
    assert.throws(() => h.poll(), /EFBIG/);
    const [f, ...rest] = xen.findings();
    assert.deepEqual(rest, []);
    assert.equal(f.code, "ring-overflow");
    assert.equal(f.dropped, 71 - 64);
    assert.match(f.message, /7 events dropped/);
    // After a reset, a new overflow is a new finding.
    h.reset();
    for (let i = 0; i < 65; i++) {
      h.unmask(b);
      h.notify(a);
    }
    assert.deepEqual(
      xen.findings().map((x) => [x.code, x.dropped]),
      [["ring-overflow", 7], ["ring-overflow", 1]],
    );
    h.reset();
    h.unbind(b);
    h.unbind(a);
  });

  await t.step("correct: read then unmask", () => {
    const xen = new MemoryXen({ lint: true });
    {
      using h = xen.open(0);
      const { a, b } = loopback(h);
      for (let i = 0; i < 200; i++) {
        h.notify(a);
        assert.equal(h.poll(), b);
        h.unmask(b);
      }
      h.unbind(b);
      h.unbind(a);
    }
    assertNoFindings(xen, { final: true });
  });
});

Deno.test("lint: stale-pending", async (t) => {
  await t.step("buggy: closed with an event pending, then reallocated", () => {
    const xen = new MemoryXen({ lint: true });
    using h = xen.open(0);
    const { a, b } = loopback(h);
    h.notify(a);
    assert.equal(h.poll(), b); // masked until unmasked
    h.notify(a); // pending behind the mask
    h.unbind(b); // Xen clears the pending bit: the event is gone
    assert.deepEqual(codes(xen), []);
    const again = h.bindUnboundPort(0);
    assert.equal(again, b);
    const [f] = xen.findings();
    assert.equal(f.code, "stale-pending");
    assert.equal(f.port, b);
    assert.equal(f.step, 10);
    assert.match(f.message, /closed at step 9/);
    h.unbind(again);
    h.unbind(a);
  });

  await t.step("buggy: reallocated by a hypercall", () => {
    const xen = new MemoryXen({ lint: true });
    using h = xen.open(0);
    const { a, b } = loopback(h);
    h.notify(a);
    h.poll();
    h.notify(a);
    h.unbind(b);
    assert.equal(xen.hypercalls(0).allocUnbound(0, 0), b);
    const [f] = xen.findings();
    assert.equal(f.code, "stale-pending");
    assert.equal(f.handle, undefined);
    h.unbind(a);
  });

  await t.step("correct: drained before unbinding", () => {
    const xen = new MemoryXen({ lint: true });
    {
      using h = xen.open(0);
      const { a, b } = loopback(h);
      h.notify(a);
      assert.equal(h.poll(), b);
      h.notify(a);
      h.unmask(b); // the pending event is delivered
      assert.equal(h.poll(), b);
      h.unmask(b);
      h.unbind(b);
      assert.equal(h.bindUnboundPort(0), b);
      h.unbind(b);
      h.unbind(a);
    }
    assertNoFindings(xen, { final: true });
  });
});

Deno.test("lint: leaked-port and unclosed-handle", async (t) => {
  await t.step("buggy: closed with ports bound", () => {
    const xen = new MemoryXen({ lint: true });
    const h = xen.open(0);
    const a = h.bindUnboundPort(0);
    const v = h.bindVirq(VIRQ.DEBUGGER);
    h.close();
    assert.deepEqual(
      xen.findings().map((f) => [f.code, f.port, f.handle]),
      [["leaked-port", a, 0], ["leaked-port", v, 0]],
    );
  });

  await t.step("buggy: a handle never closed", () => {
    const xen = new MemoryXen({ lint: true });
    xen.createDomain({ domain: 1 });
    xen.open(0).close();
    const h = xen.open(1);
    assert.deepEqual(codes(xen), []);
    const final = xen.findings({ final: true });
    assert.deepEqual(final.map((f) => [f.code, f.domain, f.handle]), [[
      "unclosed-handle",
      1,
      1,
    ]]);
    assert.match(final[0].message, /opened at step 3/);
    // Asking again gives the same, not twice as many.
    assert.deepEqual(xen.findings({ final: true }), final);
    assert.throws(
      () => assertNoFindings(xen, { final: true }),
      /1 lint finding:\n.*unclosed-handle/s,
    );
    assertNoFindings(xen);
    h.close();
    assertNoFindings(xen, { final: true });
  });

  await t.step("correct: unbound, then closed", async () => {
    const xen = new MemoryXen({ lint: true });
    {
      await using h = xen.open(0);
      const a = h.bindUnboundPort(0);
      h.unbind(a);
    }
    assertNoFindings(xen, { final: true });
  });
});

Deno.test("lint: paused-target", async (t) => {
  await t.step("buggy: notify to a paused or dying domain", () => {
    const xen = new MemoryXen({ lint: true });
    xen.createDomain({ domain: 1 });
    using dom0 = xen.open(0);
    using domU = xen.open(1);
    const offered = domU.bindUnboundPort(0);
    const port = dom0.bindInterdomain(1, offered);
    dom0.poll();
    dom0.unmask(port);
    xen.hypervisor.setPaused(1, true);
    dom0.notify(port);
    const [f] = xen.findings();
    assert.equal(f.code, "paused-target");
    assert.equal(f.port, port);
    assert.equal(f.domain, 0);
    assert.match(f.message, /domain 1, which is paused/);
    xen.hypervisor.setPaused(1, false);
    xen.hypervisor.domain(1)!.dying = true; // midway through destruction
    dom0.notify(port);
    assert.match(xen.findings()[1].message, /being destroyed/);
    xen.hypervisor.domain(1)!.dying = false;
    domU.poll();
    domU.unmask(offered);
    dom0.unbind(port);
    domU.unbind(offered);
  });

  await t.step("correct: notify to a running domain", () => {
    const xen = new MemoryXen({ lint: true });
    xen.createDomain({ domain: 1, paused: true });
    {
      using dom0 = xen.open(0);
      using domU = xen.open(1);
      xen.hypervisor.setPaused(1, false);
      const offered = domU.bindUnboundPort(0);
      const port = dom0.bindInterdomain(1, offered);
      assert.equal(dom0.poll(), port);
      dom0.unmask(port);
      dom0.notify(port);
      assert.equal(domU.poll(), offered);
      domU.unmask(offered);
      dom0.unbind(port);
      domU.unbind(offered);
    }
    assertNoFindings(xen, { final: true });
  });
});

Deno.test("lint: off and on, the model behaves the same", async (t) => {
  /** A program full of mistakes; returns everything it observed. */
  function buggy(xen: MemoryXen): unknown[] {
    const seen: unknown[] = [];
    const attempt = (f: () => unknown) => {
      try {
        seen.push(f());
      } catch (error) {
        seen.push(String(error));
      }
    };
    xen.createDomain({ domain: 1 });
    const dom0 = xen.open(0);
    const domU = xen.open(1);
    const offered = dom0.bindUnboundPort(1);
    attempt(() => dom0.notify(offered));
    const port = domU.bindInterdomain(0, offered);
    const a = domU.bindUnboundPort(1);
    const b = domU.bindInterdomain(1, a);
    for (let i = 0; i < 80; i++) {
      domU.unmask(b);
      domU.unmask(port);
      attempt(() => domU.notify(a));
      attempt(() => dom0.notify(offered));
    }
    attempt(() => domU.poll());
    domU.reset();
    attempt(() => domU.poll());
    domU.unbind(b);
    attempt(() => domU.bindUnboundPort(0));
    attempt(() => xen.hypercalls(0).allocUnbound(1, 0));
    attempt(() => xen.hypercalls(0).status(1, port));
    dom0.close();
    seen.push(xen.snapshot(0), xen.snapshot(1));
    domU.close();
    return seen;
  }
  await t.step("same observations", () => {
    const off = new MemoryXen();
    const on = new MemoryXen({ lint: { unmaskWithin: 3 } });
    assert.deepEqual(buggy(on), buggy(off));
    assert.deepEqual(off.findings({ final: true }), []);
    assert.deepEqual([...new Set(codes(on))].sort(), [
      "forgotten-unmask",
      "leaked-port",
      "notify-unbound-peer",
      "ring-overflow",
    ]);
    // Steps count every device operation and hypercall, in order.
    const steps = on.findings().map((f) => f.step);
    assert.deepEqual(steps, [...steps].sort((x, y) => x - y));
  });
});

Deno.test("lint: formatFindings and assertNoFindings", async (t) => {
  const xen = new MemoryXen({ lint: true });
  xen.createDomain({ domain: 1 });
  const dom0 = xen.open(0);
  const offered = dom0.bindUnboundPort(1);
  dom0.notify(offered);
  dom0.close();

  await t.step("table", () => {
    const lines = formatFindings(xen.findings({ final: true })).split("\n");
    assert.match(
      lines[0],
      /^STEP +SEVERITY +CODE +DOM +HANDLE +PORT +MESSAGE$/,
    );
    assert.match(
      lines[1],
      new RegExp(`^3 +error +notify-unbound-peer +0 +0 +${offered} +notify`),
    );
    assert.match(lines[2], /^ +hint: notify only after the peer has bound/);
    assert.match(
      lines[3],
      new RegExp(`^4 +warning +leaked-port .* ${offered}`),
    );
    assert.equal(lines.length, 5);
  });

  await t.step("json", () => {
    const findings = xen.findings();
    const text = formatFindings(findings, "json");
    assert.deepEqual(JSON.parse(text), findings);
    assert.equal(text.split("\n").length, findings.length + 2);
    assert.equal(formatFindings([], "json"), "[]");
  });

  await t.step("assertNoFindings names every finding", () => {
    assert.throws(
      () => assertNoFindings(xen),
      (error: Error) =>
        error.name === "AssertionError" &&
        /^2 lint findings:\n/.test(error.message) &&
        /notify-unbound-peer/.test(error.message) &&
        /leaked-port/.test(error.message),
    );
    assertNoFindings(new MemoryXen({ lint: true }), { final: true });
    assertNoFindings(new MemoryXen()); // lint off: never any
  });
});

// The conformance suite, unchanged, on hosts in lint mode (a fresh one per
// case, as tests/conformance/memory_test.ts does): lint changes
// nothing the program sees (its findings are the suite's deliberate misuses).
{
  /** Conformance case → the finding codes it left. */
  const seen = new Map<string, string[]>();
  const { env, current } = memoryConformanceEnv({ lint: true }, {
    name: "memory fifo, lint on",
    afterEach: (name) => {
      const found = current()?.findings({ final: true }) ?? [];
      const codes = found.map((f) => f.code);
      if (codes.length > 0) seen.set(name, [...new Set(codes)].sort());
    },
  });
  defineConformance(env);
  Deno.test("lint on the conformance suite: findings only where a case misuses the API on purpose", () => {
    assert.deepEqual(Object.fromEntries(seen), {
      // closes a handle while a task waits on its bound port
      "closing a handle ends a waiting task": ["leaked-port"],
      // binds 520 channels before handling any: past the default window of
      // 1000 operations between a delivery and its unmask
      "many ports: 520 channels, 1040 ports": ["forgotten-unmask"],
      // reads an empty ring without waiting, to check read's answer
      "read and write edge cases": ["read-would-block"],
      // overflows the ring to check EFBIG
      "ring overflow gives EFBIG until reset": ["ring-overflow"],
      // notifies a port whose peer it just unbound, to check the drop
      "unbind leaves the peer unbound and it can be bound again": [
        "notify-unbound-peer",
      ],
    });
  });
}
