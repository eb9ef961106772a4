// The handle's synchronous wait (nextSync) and batch path (drain,
// unmaskAll) on the linux backend. The plumbing is checked anywhere on
// ordinary files (/dev/zero reads zeros: port 0 forever; /dev/null reads
// nothing; a pty master never polls readable); the event-channel behaviour
// on a real /dev/xen/evtchn, registered as ignored (with the reason in the
// name) where there is none. On the project's Xen VM, from the repository
// root:
//   tests/xen/boot.sh --deno -- deno test --no-check --no-lock -A \
//     --sanitize-ops --sanitize-resources tests/linux/wait_test.ts

import assert from "node:assert/strict";
import {
  MAX_PORTS_PER_CALL,
  MAX_SYNC_WAIT_MS,
  openLinuxHandle,
} from "../../backends/linux/mod.ts";
import { evtchn, gated, ptyAvailable } from "./_env.ts";
import { assertEvtchnError } from "./_util.ts";

Deno.test("nextSync and drain read through the fd (/dev/zero: port 0)", async () => {
  await using handle = openLinuxHandle({ path: "/dev/zero" });
  assert.equal(handle.nextSync(), 0);
  assert.equal(handle.nextSync(MAX_SYNC_WAIT_MS), 0, "readable: no wait");
  const ports = new Uint32Array(MAX_PORTS_PER_CALL + 10).fill(7);
  assert.equal(handle.drain(ports), MAX_PORTS_PER_CALL, "one read: 4096 B");
  assert.equal(ports[MAX_PORTS_PER_CALL - 1], 0);
  assert.equal(ports[MAX_PORTS_PER_CALL], 7, "nothing beyond 1024");
  assert.equal(handle.drain(ports.subarray(0, 3), 5), 3);
  assert.equal(handle.drain(new Uint32Array(0)), 0);
});

Deno.test("unmaskAll writes the ports (/dev/null takes anything)", async () => {
  await using handle = openLinuxHandle({ path: "/dev/null" });
  handle.unmaskAll(new Uint32Array(3000)); // three writes of ≤ 1024 ports
  handle.unmaskAll(Uint32Array.of(1, 2, 3), 2);
  handle.unmaskAll(new Uint32Array(4), 0);
  // read(2) at end of file returns 0 bytes: nothing pending.
  assert.equal(handle.nextSync(), undefined);
  assert.equal(handle.drain(new Uint32Array(4)), 0);
});

Deno.test("bad arguments are refused before any system call", async () => {
  await using handle = openLinuxHandle({ path: "/dev/zero" });
  for (const bad of [-1, 2.5, MAX_SYNC_WAIT_MS + 1, "9"]) {
    assertEvtchnError(() => handle.nextSync(bad as number), "read", "EINVAL", {
      argument: "timeout",
    });
    assertEvtchnError(
      () => handle.drain(new Uint32Array(1), bad as number),
      "read",
      "EINVAL",
      { argument: "timeout" },
    );
  }
  for (const bad of [new Uint8Array(4), [1], undefined]) {
    assertEvtchnError(
      () => handle.drain(bad as unknown as Uint32Array),
      "read",
      "EFAULT",
      { argument: "ports" },
    );
    assertEvtchnError(
      () => handle.unmaskAll(bad as unknown as Uint32Array),
      "write",
      "EFAULT",
      { argument: "ports" },
    );
  }
  assertEvtchnError(
    () => handle.unmaskAll(new Uint32Array(2), 3),
    "write",
    "EINVAL",
    { argument: "count" },
  );
});

Deno.test("a closed handle: EBADF from nextSync, drain and unmaskAll", async () => {
  const handle = openLinuxHandle({ path: "/dev/zero" });
  await handle.close();
  assertEvtchnError(() => handle.nextSync(), "read", "EBADF");
  assertEvtchnError(() => handle.nextSync(5), "read", "EBADF");
  assertEvtchnError(() => handle.drain(new Uint32Array(1), 5), "read", "EBADF");
  assertEvtchnError(
    () => handle.unmaskAll(new Uint32Array(1)),
    "write",
    "EBADF",
  );
});

const pty = ptyAvailable();
Deno.test({
  name: `nextSync and drain time out on an fd that never polls readable${
    pty ? "" : " [ignored: /dev/ptmx cannot be opened]"
  }`,
  ignore: !pty,
  async fn(): Promise<void> {
    // A pty master reads EAGAIN and polls not-readable until written: the
    // wait really sleeps in poll(2), on this thread, and gives up.
    await using handle = openLinuxHandle({ path: "/dev/ptmx" });
    assert.equal(handle.nextSync(0), undefined);
    assert.equal(handle.nextSync(20), undefined);
    assert.equal(handle.drain(new Uint32Array(4), 20), 0);
    // The parked async wait and the synchronous one do not share a pollfd.
    const controller = new AbortController();
    const waiting = handle.next({ signal: controller.signal });
    const rejected = assert.rejects(waiting, { name: "AbortError" });
    assert.equal(handle.nextSync(20), undefined);
    controller.abort();
    await rejected;
  },
});

// ------------------------------------------------------------ real Xen only

const ignore = !evtchn.available;

Deno.test({
  name: gated("xen: nextSync takes a loopback event; drain a burst", evtchn),
  ignore,
  async fn(t): Promise<void> {
    await using a = openLinuxHandle();
    await using b = openLinuxHandle();
    const K = 16;
    const offered: number[] = [];
    const local: number[] = [];
    for (let i = 0; i < K; i++) {
      offered.push(a.bindUnboundPort(0));
      local.push(b.bindInterdomain(0, offered[i]));
    }
    const ports = new Uint32Array(64);

    await t.step("the bind-time events, drained and unmasked at once", () => {
      let seen = 0;
      while (seen < K) {
        const n = b.drain(ports, 3000);
        assert.ok(n > 0, `bind-time events: ${seen} of ${K}`);
        for (let i = 0; i < n; i++) assert.ok(local.includes(ports[i]));
        b.unmaskAll(ports, n);
        seen += n;
      }
      assert.equal(b.nextSync(50), undefined, "each once");
    });

    await t.step("nextSync returns the port notified", () => {
      for (const i of [3, 0, K - 1]) {
        a.notify(offered[i]);
        assert.equal(b.nextSync(3000), local[i]);
        b.unmask(local[i]);
      }
    });

    await t.step(
      "masked until unmasked; a notify meanwhile fires after",
      () => {
        a.notify(offered[1]);
        assert.equal(b.nextSync(3000), local[1]);
        a.notify(offered[1]);
        assert.equal(b.nextSync(50), undefined, "masked");
        b.unmaskAll(Uint32Array.of(local[1]));
        assert.equal(b.nextSync(3000), local[1], "re-raised at unmask");
        b.unmask(local[1]);
      },
    );

    await t.step("drain takes a burst in batches; unmaskAll re-arms it", () => {
      for (let round = 0; round < 3; round++) {
        for (const port of offered) a.notify(port);
        const got: number[] = [];
        while (got.length < K) {
          const n = b.drain(ports, 3000);
          assert.ok(n > 0, `round ${round}: ${got.length} of ${K}`);
          got.push(...ports.subarray(0, n));
          b.unmaskAll(ports, n);
        }
        assert.deepEqual(
          [...got].sort((x, y) => x - y),
          [...local].sort((
            x,
            y,
          ) => x - y),
        );
        assert.equal(b.drain(ports, 50), 0, `round ${round}: once each`);
      }
    });

    await t.step("a small array takes part of the burst, in order", () => {
      for (const port of offered.slice(0, 5)) a.notify(port);
      const two = new Uint32Array(2);
      const got: number[] = [];
      while (got.length < 5) {
        const n = b.drain(two, 3000);
        assert.ok(n > 0 && n <= 2);
        got.push(...two.subarray(0, n));
      }
      assert.deepEqual(got.sort((x, y) => x - y), local.slice(0, 5));
      b.unmaskAll(Uint32Array.from(got));
    });

    await t.step("nextSync returns what await next() would", async () => {
      a.notify(offered[2]);
      assert.equal(await b.next(), local[2]);
      b.unmask(local[2]);
      a.notify(offered[2]);
      assert.equal(b.nextSync(3000), local[2]);
      b.unmask(local[2]);
    });
  },
});

Deno.test({
  name: gated(
    "xen: nextSync sleeping in poll(2) is woken by an event from a Worker",
    evtchn,
  ),
  ignore,
  async fn(): Promise<void> {
    await using b = openLinuxHandle();
    // The Worker offers a port, waits for the go, sleeps, then notifies:
    // this thread is blocked in poll(2) meanwhile, so only the event can
    // end the wait before its 5 s.
    const worker = new Worker(
      new URL("./_wait_worker.ts", import.meta.url),
      { type: "module" },
    );
    const messages: unknown[] = [];
    let wake: (() => void) | undefined;
    worker.onmessage = (e) => {
      messages.push(e.data);
      wake?.();
    };
    const message = async (): Promise<unknown> => {
      while (messages.length === 0) {
        await new Promise<void>((r) => (wake = r));
      }
      return messages.shift();
    };
    try {
      const offered = await message() as number;
      const local = b.bindInterdomain(0, offered);
      assert.equal(b.nextSync(3000), local, "the bind-time event");
      b.unmask(local);
      worker.postMessage("go");
      const started = performance.now();
      const port = b.nextSync(5000);
      const waited = performance.now() - started;
      assert.equal(port, local, `woken after ${waited.toFixed(0)} ms`);
      assert.equal(await message(), "sent");
      b.unmask(local);
      worker.postMessage("close");
      assert.equal(await message(), "closed");
    } finally {
      worker.terminate();
    }
  },
});
