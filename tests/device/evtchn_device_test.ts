// The modelled Linux 6.1 evtchn driver and guest kernel, beyond what the
// conformance suite can see through a real device: ring sizes, the channel
// limit under each ABI, where new ports are bound, and facts observed on the
// project's real-Xen VM.

import assert from "node:assert/strict";
import {
  type EventChannelDevice,
  EventChannelError,
  EventChannelHandle,
  MemoryXen,
  VIRQ,
} from "../../mod.ts";
import { MemoryEvtchnDevice } from "../../model.ts";
import { assertErrno } from "../_assert.ts";

Deno.test("first user port: 25 under FIFO, 27 under 2-level (real dom0, 2 vCPUs)", async () => {
  for (const [eventAbi, first] of [["fifo", 25], ["2l", 27]] as const) {
    const xen = new MemoryXen({ eventAbi });
    await using h = xen.open(0);
    assert.equal(h.bindUnboundPort(0), first, eventAbi);
  }
});

Deno.test("the kernel holds VIRQ_DEBUG under 2-level only", async () => {
  const fifo = new MemoryXen({ eventAbi: "fifo" });
  await using a = fifo.open(0);
  assert.ok(a.bindVirq(VIRQ.DEBUG) > 0);
  const twoLevel = new MemoryXen({ eventAbi: "2l" });
  await using b = twoLevel.open(0);
  assertErrno(() => b.bindVirq(VIRQ.DEBUG), "bind_virq", "EEXIST");
});

Deno.test("unbind is bounded by the kernel's channel count", async (t) => {
  await t.step("FIFO: event-array pages × 1024 (EINVAL at 2000)", async () => {
    const xen = new MemoryXen({ eventAbi: "fifo" });
    await using h = xen.open(0);
    assert.equal(xen.guest(0)!.nrChannels, 1024);
    assertErrno(() => h.unbind(2000), "unbind", "EINVAL");
    assertErrno(() => h.unbind(1000), "unbind", "ENOTCONN");
  });
  await t.step("2-level: 4096 (ENOTCONN at 2000)", async () => {
    const xen = new MemoryXen({ eventAbi: "2l" });
    await using h = xen.open(0);
    assert.equal(xen.guest(0)!.nrChannels, 4096);
    assertErrno(() => h.unbind(2000), "unbind", "ENOTCONN");
    assertErrno(() => h.unbind(4096), "unbind", "EINVAL");
  });
  await t.step("FIFO grows the event array as ports are bound", async () => {
    const xen = new MemoryXen({ eventAbi: "fifo" });
    await using h = xen.open(0);
    for (let i = 0; i < 1100; i++) h.bindUnboundPort(0);
    assert.equal(xen.guest(0)!.nrChannels, 2048);
  });
});

Deno.test("new ports go to the vCPU with the fewest channels, ties to 0", async () => {
  const xen = new MemoryXen();
  const hc = xen.hypercalls(0);
  await using a = xen.open(0);
  await using b = xen.open(0);
  const offered = a.bindUnboundPort(0);
  const local = b.bindInterdomain(0, offered);
  // As on the real VM: the kernel leaves vCPU 0 one channel ahead.
  assert.equal(hc.status(0, offered).vcpu, 1, "first goes to vCPU 1");
  assert.equal(hc.status(0, local).vcpu, 0, "a tie goes to vCPU 0");
  b.unbind(local);
  const again = b.bindInterdomain(0, offered);
  assert.equal(hc.status(0, again).vcpu, 0, "not round-robin: a tie again");
  assert.equal(hc.status(0, a.bindVirq(6)).vcpu, 1);
  assert.equal(hc.status(0, a.bindVirq(12)).vcpu, 0);
});

Deno.test("the ring: 64 entries at the first bind, doubling as ports grow", () => {
  const xen = new MemoryXen();
  const device = new MemoryEvtchnDevice(xen.guest(0)!);
  assert.equal(device.ringSize, 0);
  device.bindUnboundPort(0);
  assert.equal(device.ringSize, 64);
  for (let i = 1; i < 64; i++) device.bindUnboundPort(0);
  assert.equal(device.ringSize, 64);
  device.bindUnboundPort(0);
  assert.equal(device.ringSize, 128);
  for (const port of device.ports) device.unbind(port);
  assert.equal(device.ringSize, 128, "never shrinks");
  device.close();
});

Deno.test("stale entries of unbound ports stay in the ring", async () => {
  const xen = new MemoryXen();
  await using a = xen.open(0);
  await using b = xen.open(0);
  const offered = a.bindUnboundPort(0);
  const port = b.bindInterdomain(0, offered);
  b.unbind(port); // its pending-at-bind entry is still queued
  assert.equal(b.poll(), port);
  assert.equal(b.poll(), undefined);
});

Deno.test("closing a handle closes its ports in Xen; peers become unbound", async () => {
  const xen = new MemoryXen();
  xen.createDomain({ domain: 1 });
  const hc = xen.hypercalls(0);
  await using domU = xen.open(1);
  const dom0 = xen.open(0);
  const offered = domU.bindUnboundPort(0);
  const port = dom0.bindInterdomain(1, offered);
  await dom0.close();
  assert.equal(hc.status(0, port).status, "closed");
  assert.deepEqual(hc.status(1, offered), {
    status: "unbound",
    vcpu: hc.status(1, offered).vcpu,
    remoteDomain: 0,
  });
});

Deno.test("restrict: the 32-bit domain is compared before truncation", async () => {
  const xen = new MemoryXen();
  xen.createDomain({ domain: 3 });
  await using domU = xen.open(3);
  await using h = xen.open(0);
  const offered = domU.bindUnboundPort(0);
  h.restrictDomain(3);
  assertErrno(() => h.bindVirq(VIRQ.DEBUGGER), "bind_virq", "EACCES");
  assert.ok(h.bindInterdomain(3, offered) > 0);
});

Deno.test("destroying a peer domain leaves dom0's port unbound", async () => {
  const xen = new MemoryXen();
  xen.createDomain({ domain: 4 });
  const hc = xen.hypercalls(0);
  await using dom0 = xen.open(0);
  const domU = xen.open(4);
  const offered = domU.bindUnboundPort(0);
  const port = dom0.bindInterdomain(4, offered);
  xen.destroyDomain(4);
  await domU.close(); // its kernel is gone; closing must not throw
  assert.equal(hc.status(0, port).status, "unbound");
  dom0.notify(port); // dropped, like Xen
  assertErrno(() => hc.status(4, offered), "status", "ESRCH");
});

/** The same device without its one-port `readPort`/`writePort`. */
function withoutFastPath(device: MemoryEvtchnDevice): EventChannelDevice {
  return {
    backend: device.backend,
    bindUnboundPort: (d) => device.bindUnboundPort(d),
    bindInterdomain: (d, p) => device.bindInterdomain(d, p),
    bindVirq: (v) => device.bindVirq(v),
    unbind: (p) => device.unbind(p),
    notify: (p) => device.notify(p),
    reset: () => device.reset(),
    restrictDomain: (d) => device.restrictDomain(d),
    read: (b) => device.read(b),
    write: (b) => device.write(b),
    readPorts: (p) => device.readPorts(p),
    writePorts: (p, n) => device.writePorts(p, n),
    readableSync: (t) => device.readableSync(t),
    readable: (s) => device.readable(s),
    close: () => device.close(),
  };
}

Deno.test("poll and unmask: the one-port path and the 4-byte buffer path agree", () => {
  for (const eventAbi of ["fifo", "2l"] as const) {
    // Two identical hosts; dom0's receiving handle reads its device directly
    // on one and through read/write buffers on the other.
    const run = (direct: boolean): string[] => {
      const xen = new MemoryXen({ eventAbi });
      xen.createDomain({ domain: 1 });
      const device = new MemoryEvtchnDevice(xen.guest(0)!);
      const b = new EventChannelHandle(
        direct ? device : withoutFastPath(device),
      );
      const a = xen.open(1);
      const log: string[] = [];
      const step = (what: string, f: () => unknown): void => {
        try {
          log.push(`${what} ${JSON.stringify(f() ?? null)}`);
        } catch (error) {
          assert.ok(error instanceof EventChannelError);
          log.push(`${what} ${error.op} ${error.code}`);
        }
      };
      const ports: number[] = [], locals: number[] = [];
      for (let i = 0; i < 70; i++) {
        const offered = a.bindUnboundPort(0);
        ports.push(offered);
        const local = b.bindInterdomain(1, offered);
        locals.push(local);
        log.push(`bind ${local}`);
      }
      let seed = 7;
      const next = (n: number): number => {
        seed = (seed * 1103515245 + 12345) >>> 0;
        return (seed >>> 16) % n; // the high bits: the low ones cycle
      };
      for (let i = 0; i < 5000; i++) {
        const pick = next(10);
        if (pick < 3) step("notify", () => a.notify(ports[next(ports.length)]));
        // Phases of 1024 steps without reads let the ring fill up.
        else if (pick < 6 && (i >> 10) % 2 === 1) step("poll", () => b.poll());
        else if (pick < 9) {
          // Mostly its own ports, read or not (an unmask before the read
          // lets the port fire again: the ring can overflow).
          const port = next(4) ? locals[next(locals.length)] : next(200);
          step("unmask", () => b.unmask(port));
        } else if (next(100) === 0) step("reset", () => b.reset());
        else step("queued", () => device.queued);
      }
      void a.close();
      void b.close();
      return log;
    };
    const direct = run(true), buffered = run(false);
    assert.ok(direct.some((line) => line.endsWith("EFBIG")), "overflowed");
    assert.deepEqual(direct, buffered, eventAbi);
  }
});
