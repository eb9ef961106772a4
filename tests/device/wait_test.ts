// The handle's synchronous wait (nextSync) and batch path (drain,
// unmaskAll) on the memory backend: what they return, what they refuse, and
// that they leave the device as poll/unmask would.

import assert from "node:assert/strict";
import {
  EventChannelError,
  type EventChannelHandle,
  MemoryXen,
} from "../../mod.ts";
import { MAX_PORTS_PER_CALL, MAX_SYNC_WAIT_MS } from "../../device.ts";
import { assertErrno } from "../_assert.ts";

/** Two dom0 handles and `n` loopback channels, bind-time events consumed. */
function pairs(
  n: number,
  eventAbi: "fifo" | "2l" = "fifo",
): {
  xen: MemoryXen;
  a: EventChannelHandle;
  b: EventChannelHandle;
  offered: number[];
  local: number[];
} {
  const xen = new MemoryXen({ eventAbi });
  const a = xen.open(0);
  const b = xen.open(0);
  const offered: number[] = [];
  const local: number[] = [];
  for (let i = 0; i < n; i++) {
    offered.push(a.bindUnboundPort(0));
    local.push(b.bindInterdomain(0, offered[i]));
  }
  for (let port = b.poll(); port !== undefined; port = b.poll()) {
    b.unmask(port);
  }
  return { xen, a, b, offered, local };
}

Deno.test("nextSync returns what is pending, else undefined at once", async (t) => {
  for (const eventAbi of ["fifo", "2l"] as const) {
    await t.step(eventAbi, async () => {
      const { a, b, offered, local } = pairs(2, eventAbi);
      await using _a = a;
      await using _b = b;
      assert.equal(b.nextSync(), undefined);
      assert.equal(b.nextSync(0), undefined);
      // The model cannot block: the longest timeout returns at once.
      assert.equal(b.nextSync(MAX_SYNC_WAIT_MS), undefined);
      a.notify(offered[1]);
      a.notify(offered[0]);
      assert.equal(b.nextSync(5), local[1]);
      assert.equal(b.nextSync(), local[0]);
      assert.equal(b.nextSync(5), undefined, "each event once");
      a.notify(offered[0]);
      assert.equal(b.nextSync(5), undefined, "masked until unmasked");
      b.unmask(local[0]);
      assert.equal(b.nextSync(5), local[0], "pending while masked fires");
      b.unmask(local[0]);
    });
  }
});

Deno.test("nextSync refuses a bad timeout with EINVAL, reading nothing", async () => {
  const { a, b, offered, local } = pairs(1);
  await using _a = a;
  await using _b = b;
  a.notify(offered[0]);
  for (
    const bad of [-1, 1.5, MAX_SYNC_WAIT_MS + 1, NaN, Infinity, "5", null]
  ) {
    const error = assertErrno(
      () => b.nextSync(bad as number),
      "read",
      "EINVAL",
    );
    assert.equal(error.argument, "timeout");
    assert.equal(error.value, bad);
  }
  assert.equal(b.poll(), local[0], "the event is still there");
  b.unmask(local[0]);
});

Deno.test("drain takes every pending port in firing order; unmaskAll re-enables them", async () => {
  const { a, b, offered, local } = pairs(5);
  await using _a = a;
  await using _b = b;
  const ports = new Uint32Array(8);
  assert.equal(b.drain(ports), 0);
  const order = [3, 0, 4, 1];
  for (const i of order) a.notify(offered[i]);
  const n = b.drain(ports);
  assert.equal(n, 4);
  assert.deepEqual([...ports.subarray(0, n)], order.map((i) => local[i]));
  assert.equal(b.drain(ports), 0, "taken once");
  for (const i of order) a.notify(offered[i]);
  assert.equal(b.drain(ports), 0, "all masked until unmasked");
  b.unmaskAll(ports, n);
  // Xen re-raises an event that was sent while masked when it is unmasked.
  assert.equal(b.drain(ports), 4);
  b.unmaskAll(ports, 4);
  a.notify(offered[2]);
  assert.equal(b.drain(ports, 100), 1, "a timeout changes nothing pending");
  assert.equal(ports[0], local[2]);
  b.unmaskAll(ports.subarray(0, 1));
  assert.equal(b.drain(ports, MAX_SYNC_WAIT_MS), 0, "memory: no waiting");
});

Deno.test("drain stops at the array's length and at 1024 ports", async () => {
  const count = MAX_PORTS_PER_CALL + 76;
  const { a, b, offered, local } = pairs(count);
  await using _a = a;
  await using _b = b;
  for (const port of offered) a.notify(port);
  const three = new Uint32Array(3);
  assert.equal(b.drain(three), 3);
  assert.deepEqual([...three], local.slice(0, 3));
  assert.equal(b.drain(new Uint32Array(0)), 0, "an empty array takes none");
  const all = new Uint32Array(count);
  assert.equal(b.drain(all), MAX_PORTS_PER_CALL, "one read: 1024 at most");
  assert.deepEqual([...all.subarray(0, 4)], local.slice(3, 7));
  const rest = new Uint32Array(count);
  assert.equal(b.drain(rest), count - 3 - MAX_PORTS_PER_CALL);
  assert.equal(b.drain(rest), 0);
  // unmaskAll over more than 1024 ports: every one is re-enabled.
  b.unmaskAll(Uint32Array.from(local));
  for (const port of offered) a.notify(port);
  let seen = 0;
  for (let n = b.drain(all); n > 0; n = b.drain(all)) {
    seen += n;
    b.unmaskAll(all, n);
  }
  assert.equal(seen, count);
});

Deno.test("unmaskAll ignores ports the handle does not own", async () => {
  const { a, b, offered, local } = pairs(1);
  await using _a = a;
  await using _b = b;
  a.notify(offered[0]);
  assert.equal(b.poll(), local[0]);
  b.unmaskAll(Uint32Array.of(offered[0], 0, 0xffff_ffff, 123_456));
  a.notify(offered[0]);
  assert.equal(b.poll(), undefined, "still masked");
  b.unmaskAll(Uint32Array.of(local[0]));
  a.notify(offered[0]);
  assert.equal(b.poll(), local[0]);
  b.unmask(local[0]);
});

Deno.test("drain and unmaskAll refuse bad arguments, changing nothing", async (t) => {
  const { a, b, offered, local } = pairs(1);
  await using _a = a;
  await using _b = b;
  a.notify(offered[0]);
  await t.step("ports that are not a Uint32Array: EFAULT", () => {
    for (const bad of [new Uint8Array(4), [0], new Int32Array(1), null, 7]) {
      const read = assertErrno(
        () => b.drain(bad as unknown as Uint32Array),
        "read",
        "EFAULT",
      );
      assert.equal(read.argument, "ports");
      const write = assertErrno(
        () => b.unmaskAll(bad as unknown as Uint32Array),
        "write",
        "EFAULT",
      );
      assert.equal(write.argument, "ports");
    }
  });
  await t.step("a detached array: EFAULT", () => {
    const ports = new Uint32Array(4);
    structuredClone(ports.buffer, { transfer: [ports.buffer] });
    assertErrno(() => b.drain(ports), "read", "EFAULT");
    assertErrno(() => b.unmaskAll(ports), "write", "EFAULT");
  });
  await t.step("a bad timeout: EINVAL", () => {
    const ports = new Uint32Array(4);
    for (const bad of [-1, 0.5, MAX_SYNC_WAIT_MS + 1, "1"]) {
      const error = assertErrno(
        () => b.drain(ports, bad as number),
        "read",
        "EINVAL",
      );
      assert.equal(error.argument, "timeout");
    }
  });
  await t.step("a bad count: EINVAL", () => {
    const ports = Uint32Array.of(local[0], local[0]);
    for (const bad of [-1, 1.5, 3, NaN, "1"]) {
      const error = assertErrno(
        () => b.unmaskAll(ports, bad as number),
        "write",
        "EINVAL",
      );
      assert.equal(error.argument, "count");
    }
  });
  await t.step("the event is still pending, and still masked after", () => {
    const ports = new Uint32Array(4);
    assert.equal(b.drain(ports), 1);
    assert.equal(ports[0], local[0]);
    b.unmaskAll(ports, 0); // zero ports: nothing
    a.notify(offered[0]);
    assert.equal(b.drain(ports), 0);
    b.unmaskAll(ports, 1);
    assert.equal(b.drain(ports), 1, "the notify sent while masked");
    b.unmaskAll(ports, 1);
  });
});

Deno.test("after a ring overflow: EFBIG from drain and nextSync until reset", async () => {
  const { a, b, offered, local } = pairs(1);
  await using _a = a;
  await using _b = b;
  // Unmasking without reading re-arms the port: each notify queues another
  // entry, and the 65th finds the 64-entry ring full.
  for (let i = 0; i < 65; i++) {
    a.notify(offered[0]);
    b.unmask(local[0]);
  }
  assertErrno(() => b.drain(new Uint32Array(4)), "read", "EFBIG");
  assertErrno(() => b.nextSync(), "read", "EFBIG");
  assertErrno(() => b.nextSync(10), "read", "EFBIG");
  b.reset();
  assert.equal(b.drain(new Uint32Array(4)), 0);
  assert.equal(b.nextSync(), undefined);
});

Deno.test("a closed handle: EBADF from nextSync, drain and unmaskAll", async () => {
  const { a, b } = pairs(1);
  await using _a = a;
  await b.close();
  assertErrno(() => b.nextSync(), "read", "EBADF");
  assertErrno(() => b.nextSync(10), "read", "EBADF");
  assertErrno(() => b.drain(new Uint32Array(1)), "read", "EBADF");
  assertErrno(() => b.unmaskAll(new Uint32Array(1)), "write", "EBADF");
});

Deno.test("drain/unmaskAll and poll/unmask leave the same state (random sequence)", () => {
  for (const eventAbi of ["fifo", "2l"] as const) {
    const run = (batch: boolean): string[] => {
      const { a, b, offered } = pairs(40, eventAbi);
      const log: string[] = [];
      let seed = 11;
      const next = (n: number): number => {
        seed = (seed * 1103515245 + 12345) >>> 0;
        return (seed >>> 16) % n;
      };
      const ports = new Uint32Array(16);
      for (let i = 0; i < 3000; i++) {
        const pick = next(10);
        try {
          if (pick < 5) a.notify(offered[next(offered.length)]);
          else {
            // Take up to 16 pending ports and unmask all but one of them.
            let taken: number[];
            if (batch) {
              const n = b.drain(ports);
              taken = [...ports.subarray(0, n)];
              if (n > 1) b.unmaskAll(ports, n - 1);
            } else {
              taken = [];
              for (let k = 0; k < 16; k++) {
                const port = b.poll();
                if (port === undefined) break;
                taken.push(port);
              }
              for (const port of taken.slice(0, -1)) b.unmask(port);
            }
            log.push(taken.join(","));
          }
        } catch (error) {
          assert.ok(error instanceof EventChannelError);
          log.push(`${error.op} ${error.code}`);
          b.reset();
        }
      }
      void a.close();
      void b.close();
      return log;
    };
    assert.deepEqual(run(true), run(false), eventAbi);
  }
});
