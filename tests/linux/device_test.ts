// The `linux` backend against a real /dev/xen/evtchn (dom0, or a domU with
// xen-evtchn). Every test is registered with `ignore` and the reason in its
// name when the device is not there.
//
// In the QEMU Xen VM, from the repository root:
//   /work/shared/xen-vm/boot.sh -- <deno> test --no-check --allow-all \
//     --sanitize-ops --sanitize-resources tests/linux/

import assert from "node:assert/strict";
import { openLinuxHandle } from "../../backends/linux/mod.ts";
import { libcUsers } from "../../backends/linux/_libc.ts";
import { VIRQ } from "../../xen/virq.ts";
import { evtchn, gated } from "./_env.ts";
import { assertEvtchnError, nextWithin, settle } from "./_util.ts";

const ignore = !evtchn.available;
// Generous: under QEMU TCG an event on the other vCPU takes a while.
const WAIT = 3000;
const QUIET = 300;

Deno.test({
  name: gated(
    "loopback: bind_unbound_port(0) + bind_interdomain(0, p)",
    evtchn,
  ),
  ignore,
  async fn(t): Promise<void> {
    await using h = openLinuxHandle();
    const a = h.bindUnboundPort(0);
    const b = h.bindInterdomain(0, a);
    assert.notEqual(a, b);
    console.log(`  ports: unbound a=${a}, interdomain b=${b}`);

    await t.step(
      "the new interdomain port is reported once, unasked",
      async () => {
        assert.equal(await nextWithin(h, WAIT), b);
        assert.equal(await nextWithin(h, QUIET), undefined, "only once");
        h.unmask(b);
      },
    );

    await t.step("notify(b) fires a; notify(a) fires b", async () => {
      h.notify(b);
      assert.equal(await nextWithin(h, WAIT), a);
      h.unmask(a);
      h.notify(a);
      assert.equal(await nextWithin(h, WAIT), b);
      h.unmask(b);
    });

    await t.step(
      "a waiter parked in poll(2) is woken by the event",
      async () => {
        const waiter = h.next();
        await settle(100);
        h.notify(a);
        assert.equal(await waiter, b);
        h.unmask(b);
      },
    );

    await t.step("the async iterator yields ports as they come", async () => {
      const controller = new AbortController();
      const seen: number[] = [];
      const loop = (async () => {
        for await (const port of h.ports({ signal: controller.signal })) {
          seen.push(port);
          h.unmask(port);
          if (seen.length === 3) controller.abort();
        }
      })();
      for (let i = 0; i < 3; i++) {
        h.notify(a);
        await settle(50);
      }
      await loop;
      assert.deepEqual(seen, [b, b, b]);
    });

    await t.step(
      "sends while masked merge into one event on unmask",
      async () => {
        h.notify(b);
        assert.equal(await nextWithin(h, WAIT), a); // a is now masked
        h.notify(b);
        h.notify(b);
        h.notify(b);
        assert.equal(await nextWithin(h, QUIET), undefined, "masked: no entry");
        h.unmask(a);
        assert.equal(await nextWithin(h, WAIT), a, "pending re-delivered once");
        assert.equal(await nextWithin(h, QUIET), undefined);
        h.unmask(a);
        h.unmask(a); // unmasking an enabled port does nothing
        assert.equal(await nextWithin(h, QUIET), undefined);
      },
    );

    await t.step("unbind closes both ends' channel", () => {
      h.unbind(b);
      // a is unbound again: notify is accepted (Xen drops the event) and
      // unbinding it works once.
      h.notify(a);
      h.unbind(a);
      assertEvtchnError(() => h.unbind(a), "unbind", "ENOTCONN");
    });
  },
});

Deno.test({
  name: gated("ports belong to the fd that bound them", evtchn),
  ignore,
  async fn(): Promise<void> {
    await using h1 = openLinuxHandle();
    await using h2 = openLinuxHandle();
    const a = h1.bindUnboundPort(0);
    const b = h2.bindInterdomain(0, a);
    assert.equal(await nextWithin(h2, WAIT), b);
    assert.equal(await nextWithin(h1, QUIET), undefined);

    assertEvtchnError(() => h1.notify(b), "notify", "ENOTCONN", {
      argument: "port",
      value: b,
    });
    assertEvtchnError(() => h2.unbind(a), "unbind", "ENOTCONN");
    // A write by another fd is ignored: b stays masked.
    assert.equal(h1.write(new Uint8Array(new Uint32Array([b]).buffer)), 4);
    h1.notify(a);
    assert.equal(await nextWithin(h2, QUIET), undefined, "b still masked");
    h2.unmask(b);
    assert.equal(await nextWithin(h2, WAIT), b);
    h2.unmask(b);
  },
});

Deno.test({
  name: gated("ioctl refusals carry Linux's and Xen's errno", evtchn),
  ignore,
  async fn(t): Promise<void> {
    await using h = openLinuxHandle();

    await t.step(
      "unbind: EINVAL beyond the channel count, else ENOTCONN",
      () => {
        assertEvtchnError(() => h.unbind(0x7fff_ffff), "unbind", "EINVAL", {
          argument: "port",
        });
        assertEvtchnError(() => h.unbind(1), "unbind", "ENOTCONN");
        let at2000: string;
        try {
          h.unbind(2000);
          at2000 = "ok";
        } catch (error) {
          at2000 = (error as { code: string }).code;
        }
        // FIFO dom0: 1024 channels (one page) -> EINVAL; 2-level: 4096 ->
        // ENOTCONN.
        console.log(`  unbind(2000) -> ${at2000}`);
        assert.ok(["EINVAL", "ENOTCONN"].includes(at2000));
      },
    );

    await t.step("notify: ENOTCONN for any port not on this fd", () => {
      assertEvtchnError(() => h.notify(0xffff_ffff), "notify", "ENOTCONN");
      assertEvtchnError(() => h.notify(1), "notify", "ENOTCONN");
    });

    await t.step("bind_interdomain: Xen's EINVAL and ESRCH", () => {
      assertEvtchnError(
        () => h.bindInterdomain(0, 0),
        "bind_interdomain",
        "EINVAL",
        { argument: "remote_port", value: 0 },
      );
      assertEvtchnError(
        () => h.bindInterdomain(0x7fe0, 1),
        "bind_interdomain",
        "ESRCH",
        { argument: "remote_domain", value: 0x7fe0 },
      );
      // An unbound port offered to another domain.
      const offered = h.bindUnboundPort(5);
      assertEvtchnError(
        () => h.bindInterdomain(0, offered),
        "bind_interdomain",
        "EINVAL",
      );
      h.unbind(offered);
    });

    await t.step("bind_virq: EINVAL for >= 24, EEXIST for the timer", () => {
      assertEvtchnError(() => h.bindVirq(24), "bind_virq", "EINVAL", {
        argument: "virq",
        value: 24,
      });
      assertEvtchnError(() => h.bindVirq(VIRQ.TIMER), "bind_virq", "EEXIST");
      const port = h.bindVirq(20); // an unused, global VIRQ number
      assertEvtchnError(() => h.bindVirq(20), "bind_virq", "EEXIST");
      h.unbind(port);
      let debug: string;
      try {
        h.unbind(h.bindVirq(VIRQ.DEBUG));
        debug = "bound";
      } catch (error) {
        debug = (error as { code: string }).code;
      }
      // The kernel holds VIRQ_DEBUG under 2-level only.
      console.log(`  bind_virq(VIRQ_DEBUG) -> ${debug}`);
      assert.ok(["bound", "EEXIST"].includes(debug));
    });

    await t.step("restrict_domid", () => {
      assertEvtchnError(() => h.restrictDomain(0), "restrict_domid", "EINVAL");
      assertEvtchnError(
        () => h.restrictDomain(0x7ff0),
        "restrict_domid",
        "EINVAL",
      );
      const before = h.bindUnboundPort(0);
      h.restrictDomain(5);
      assertEvtchnError(() => h.restrictDomain(6), "restrict_domid", "EACCES");
      assertEvtchnError(
        () => h.bindUnboundPort(5),
        "bind_unbound_port",
        "EACCES",
      );
      assertEvtchnError(() => h.bindVirq(20), "bind_virq", "EACCES");
      assertEvtchnError(
        () => h.bindInterdomain(0, before),
        "bind_interdomain",
        "EACCES",
      );
      h.notify(before); // ports bound before stay usable
      h.unbind(before);
    });
  },
});

Deno.test({
  name: gated("read and write sizes", evtchn),
  ignore,
  async fn(): Promise<void> {
    await using h = openLinuxHandle();
    const a = h.bindUnboundPort(0);
    const b = h.bindInterdomain(0, a);
    await settle(QUIET); // b's forced event is now in the ring
    assert.equal(h.read(new Uint8Array(3)), 0, "under 4 bytes reads 0");
    const buffer = new Uint8Array(8);
    assert.equal(h.read(buffer), 4);
    assert.equal(new DataView(buffer.buffer).getUint32(0, true), b);
    assert.equal(h.read(buffer), null, "empty: EAGAIN becomes null");
    assert.equal(h.write(new Uint8Array(6)), 4, "rounded down to whole ports");
    assert.equal(h.write(new Uint8Array(8192)), 4096, "capped at 4096");
    assert.equal(h.write(new Uint8Array(2)), 0);
    h.unbind(b);
    h.unbind(a);
  },
});

Deno.test({
  name: gated("ring overflow: EFBIG on every read until reset", evtchn),
  ignore,
  async fn(): Promise<void> {
    await using h = openLinuxHandle();
    // 32 loopback pairs = 64 ports: the ring has 64 slots.
    const pairs: [number, number][] = [];
    for (let i = 0; i < 32; i++) {
      const a = h.bindUnboundPort(0);
      pairs.push([a, h.bindInterdomain(0, a)]); // each b fires once
    }
    for (const [, b] of pairs) h.notify(b); // each a fires once: 64 entries
    await settle(500);
    // Unbind one pair (its entries stay in the ring) and bind a new one:
    // still 64 ports, and the new b's event finds the ring full.
    const [a0, b0] = pairs.shift()!;
    h.unbind(b0);
    h.unbind(a0);
    const a = h.bindUnboundPort(0);
    pairs.push([a, h.bindInterdomain(0, a)]);
    await settle(500);

    assertEvtchnError(() => h.read(new Uint8Array(4)), "read", "EFBIG");
    assertEvtchnError(() => h.poll(), "read", "EFBIG", { errno: 27 });
    // poll(2) says POLLERR: the wait ends and the next read throws.
    await assert.rejects(h.next(), { code: "EFBIG" });

    h.reset();
    assert.equal(h.read(new Uint8Array(4)), null, "ring emptied");
    // Ports whose events were dropped stay masked until written.
    const [, bLast] = pairs.at(-1)!;
    h.notify(pairs.at(-1)![0]);
    assert.equal(await nextWithin(h, QUIET), undefined, "still masked");
    h.unmask(bLast);
    assert.equal(await nextWithin(h, WAIT), bLast);
    for (const [pa, pb] of pairs) {
      h.unbind(pb);
      h.unbind(pa);
    }
  },
});

Deno.test({
  name: gated("close while a waiter waits: it ends, nothing leaks", evtchn),
  ignore,
  async fn(t): Promise<void> {
    const users = libcUsers();

    await t.step("next() rejects EBADF, close settles", async () => {
      const h = openLinuxHandle();
      const a = h.bindUnboundPort(0);
      const waiter = h.next();
      const settled = assert.rejects(waiter, { code: "EBADF", op: "read" });
      await settle(100);
      const started = performance.now();
      await h.close();
      await settled;
      assert.ok(performance.now() - started < 900, "woken, not timed out");
      assertEvtchnError(() => h.unbind(a), "unbind", "EBADF");
    });

    await t.step("closing the fd closes its ports in Xen", async () => {
      await using keeper = openLinuxHandle();
      const closing = openLinuxHandle();
      const a = keeper.bindUnboundPort(0);
      const b = closing.bindInterdomain(0, a);
      assert.equal(await nextWithin(closing, WAIT), b);
      const loop = (async () => {
        for await (const _ of closing) { /* nothing comes */ }
      })();
      await settle(50);
      await closing.close();
      await loop;
      // a is unbound again, so another fd can connect to it.
      await using other = openLinuxHandle();
      const c = other.bindInterdomain(0, a);
      assert.equal(await nextWithin(other, WAIT), c);
      other.unbind(c);
      keeper.unbind(a);
    });

    await t.step("abort ends a wait with the signal's reason", async () => {
      await using h = openLinuxHandle();
      const controller = new AbortController();
      const waiter = h.next({ signal: controller.signal });
      const settled = assert.rejects(waiter, { message: "enough" });
      await settle(50);
      controller.abort(new Error("enough"));
      await settled;
    });

    await t.step("libc references are back where they were", () => {
      assert.equal(libcUsers(), users);
    });
  },
});
