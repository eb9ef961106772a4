// Lint rule read-would-block: a raw read() of an empty ring without a wait
// for readability first, where Linux would block on a blocking fd
// (libxenevtchn's default, xenevtchn_pending()).

import assert from "node:assert/strict";
import { assertNoFindings, MemoryXen } from "../../mod.ts";

Deno.test("lint: read-would-block", async (t) => {
  await t.step(
    "buggy: read() the ring without waiting, once per handle",
    () => {
      const xen = new MemoryXen({ lint: true });
      using a = xen.open(0); // 1
      using b = xen.open(0); // 2
      const offered = a.bindUnboundPort(0); // 3
      const port = b.bindInterdomain(0, offered); // 4
      const buffer = new Uint8Array(4);
      assert.equal(b.read(buffer), 4); // 5: the bind-time event
      b.unmask(port); // 6
      assert.equal(b.read(buffer), null); // 7: Linux blocks here
      assert.equal(b.read(buffer), null); // 8: and here
      const [f, ...rest] = xen.findings();
      assert.deepEqual(rest, []);
      assert.equal(f.code, "read-would-block");
      assert.equal(f.severity, "warning");
      assert.deepEqual([f.domain, f.handle, f.step, f.count], [0, 1, 7, 2]);
      assert.match(f.message, /first at step 7, 2 times/);
      assert.match(f.hint, /next\(\)|poll\(2\)/);
      b.unbind(port);
      a.unbind(offered);
    },
  );

  await t.step("correct: wait, then read", async () => {
    const xen = new MemoryXen({ lint: true });
    {
      await using a = xen.open(0);
      await using b = xen.open(0);
      const offered = a.bindUnboundPort(0);
      const port = b.bindInterdomain(0, offered);
      const buffer = new Uint8Array(64);
      assert.equal(b.read(buffer), 4); // the bind-time event: data, no wait
      b.unmask(port);
      for (let i = 0; i < 5; i++) {
        const waiting = b.next(); // nothing queued: waits (poll(2))
        a.notify(offered);
        assert.equal(await waiting, port);
        b.unmask(port);
      }
      a.notify(offered);
      assert.equal(await b.next(), port);
      b.unmask(port);
      // poll() is the non-blocking check: never a finding.
      for (let i = 0; i < 5; i++) assert.equal(b.poll(), undefined);
      b.unbind(port);
      a.unbind(offered);
    }
    assertNoFindings(xen, { final: true });
  });

  await t.step("lint off: the same program, no findings, same results", () => {
    const xen = new MemoryXen();
    using h = xen.open(0);
    h.bindUnboundPort(0);
    assert.equal(h.read(new Uint8Array(4)), null);
    assert.deepEqual(xen.findings(), []);
  });
});
