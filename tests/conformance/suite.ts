// The conformance suite: one set of cases written against the public
// interface, run unchanged against every backend by a small runner that
// supplies the environment (who the peer is, how long events take).

import assert from "node:assert/strict";
import {
  type Dom0Hypercalls,
  EventChannelError,
  type EventChannelHandle,
  PeerWatch,
  VIRQ,
} from "../../mod.ts";
import { assertErrno, assertRejectsErrno } from "../_assert.ts";

/** A vCPU a status may name: an integer below the domain's vCPU count. */
function assertVcpu(vcpu: number, vcpus: number): void {
  assert.ok(
    Number.isInteger(vcpu) && vcpu >= 0 && vcpu < vcpus,
    `vcpu ${vcpu} of ${vcpus}`,
  );
}

/** What a backend's runner provides. */
export interface ConformanceEnv {
  /** Shown in test names. */
  name: string;
  /** A reason to register every case as ignored, or `false` to run them. */
  ignore: false | string;
  /** Called once before the cases run (e.g. to boot a model). */
  setup?(): Promise<void> | void;
  /** Opens a handle in the local domain (dom0). */
  open(): EventChannelHandle;
  /** The local domain's id as the peer names it. */
  localDomain: number;
  /** How many vCPUs the local domain has (a port's `vcpu` is below it). */
  localVcpus: number;
  /** Opens a handle in the peer domain (dom0 itself on a real host). */
  openPeer(): EventChannelHandle;
  /** The peer domain's id as the local domain names it. */
  peerDomain: number;
  /** Lets asynchronous deliveries land (real Xen) before checking absence. */
  settle(): Promise<void>;
  /** dom0 hypercalls, when the backend offers them. */
  hypercalls?: () => Dom0Hypercalls & { close?(): void };
  /**
   * A second domain that dom0 may allocate in and reset (paused); asked for
   * when the case runs, after `setup`.
   */
  secondDomain?: () => number | undefined;
  /** A global VIRQ nobody holds on this host. */
  freeVirq: number;
  /**
   * Creates a (paused, never started) domain and destroys it: the
   * toolstack's part, for the peer liveness case (privcmd's domctls on a
   * real host).
   */
  domains?: { create(): number; destroy(domain: number): void };
  /** Called once after the cases. */
  teardown?(): Promise<void> | void;
  /**
   * Called before every case (the memory runners boot a fresh host here).
   */
  beforeEach?(): Promise<void> | void;
  /** Called after every case that passed, with its name (lint checks). */
  afterEach?(name: string): Promise<void> | void;
}

const WAIT_MS = 5000;

/** `handle.next()` that fails the test instead of hanging. */
async function nextPort(h: EventChannelHandle): Promise<number> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), WAIT_MS);
  try {
    return await h.next({ signal: controller.signal });
  } catch (error) {
    if (controller.signal.aborted) {
      throw new Error(`no event within ${WAIT_MS} ms`);
    }
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/** All ports pending after deliveries settle. */
async function drain(
  env: ConformanceEnv,
  h: EventChannelHandle,
): Promise<number[]> {
  await env.settle();
  const ports: number[] = [];
  for (let p = h.poll(); p !== undefined; p = h.poll()) ports.push(p);
  return ports;
}

interface Pair {
  server: EventChannelHandle;
  client: EventChannelHandle;
  /** The server's port, offered to the peer. */
  offered: number;
  /** The client's port. */
  port: number;
  [Symbol.asyncDispose](): Promise<void>;
}

/** A connected channel: local `server` offers, peer `client` binds. */
async function connect(env: ConformanceEnv): Promise<Pair> {
  const server = env.open();
  const client = env.openPeer();
  const offered = server.bindUnboundPort(env.peerDomain);
  const port = client.bindInterdomain(env.localDomain, offered);
  assert.equal(await nextPort(client), port, "pending right after bind");
  client.unmask(port);
  return {
    server,
    client,
    offered,
    port,
    async [Symbol.asyncDispose](): Promise<void> {
      // Unbind before closing, as a tidy program does (lint mode reports a
      // port left bound at close); a case may have unbound one already.
      for (const [h, p] of [[client, port], [server, offered]] as const) {
        if (h.closed) continue;
        try {
          h.unbind(p);
        } catch (error) {
          if (!(error instanceof EventChannelError)) throw error;
        }
      }
      await client.close();
      await server.close();
    },
  };
}

/**
 * Registers the conformance cases for one backend.
 *
 * @param env The backend's environment.
 */
export function defineConformance(env: ConformanceEnv): void {
  /**
   * Registers a case; `missing` names a capability this backend lacks, so
   * the case is ignored with that reason rather than left out unseen.
   */
  const test = (
    name: string,
    fn: (t: Deno.TestContext) => Promise<void> | void,
    missing?: string,
  ) => {
    const why: string | undefined = env.ignore || missing;
    Deno.test({
      name: `${env.name}: ${name}${why ? ` [ignored: ${why}]` : ""}`,
      ignore: why !== undefined,
      fn: async (t) => {
        // A fresh host per case where the backend can make one: no case
        // sees what another left behind.
        await env.beforeEach?.();
        await fn(t);
        await env.afterEach?.(name);
      },
    });
  };

  if (env.setup && !env.ignore) {
    Deno.test({
      name: `${env.name}: setup`,
      fn: () => env.setup!(),
      sanitizeOps: false,
      sanitizeResources: false,
    });
  }

  test("allocation and loopback connect", async () => {
    await using pair = await connect(env);
    assert.ok(pair.offered > 0 && pair.port > 0, "port 0 is never handed out");
    if (env.localDomain === env.peerDomain) {
      assert.notEqual(pair.offered, pair.port);
    }
    assert.deepEqual(await drain(env, pair.client), []);
    assert.deepEqual(await drain(env, pair.server), []);
  });

  test("the new port is pending right after bind_interdomain", async () => {
    const server = env.open();
    const client = env.openPeer();
    try {
      const offered = server.bindUnboundPort(env.peerDomain);
      const port = client.bindInterdomain(env.localDomain, offered);
      assert.deepEqual(await drain(env, client), [port]);
      assert.deepEqual(
        await drain(env, server),
        [],
        "the offering side gets nothing",
      );
      client.unbind(port);
      server.unbind(offered);
    } finally {
      await client.close();
      await server.close();
    }
  });

  test("notify both ways", async () => {
    await using pair = await connect(env);
    pair.server.notify(pair.offered);
    assert.equal(await nextPort(pair.client), pair.port);
    pair.client.unmask(pair.port);
    pair.client.notify(pair.port);
    assert.equal(await nextPort(pair.server), pair.offered);
    pair.server.unmask(pair.offered);
    assert.deepEqual(await drain(env, pair.client), []);
    assert.deepEqual(await drain(env, pair.server), []);
  });

  test("notifies while masked coalesce into one delivery after unmask", async () => {
    await using pair = await connect(env);
    pair.server.notify(pair.offered);
    assert.equal(await nextPort(pair.client), pair.port);
    for (let i = 0; i < 5; i++) pair.server.notify(pair.offered);
    assert.deepEqual(await drain(env, pair.client), [], "masked until unmask");
    pair.client.unmask(pair.port);
    assert.deepEqual(await drain(env, pair.client), [pair.port]);
    pair.client.unmask(pair.port);
    assert.deepEqual(await drain(env, pair.client), []);
  });

  test("notify, unbind and unmask of ports the handle does not own", async () => {
    await using pair = await connect(env);
    const stranger = env.open();
    try {
      assertErrno(() => stranger.notify(pair.offered), "notify", "ENOTCONN");
      assertErrno(() => stranger.unbind(pair.offered), "unbind", "ENOTCONN");
      assertErrno(() => stranger.notify(70000), "notify", "ENOTCONN");
      assertErrno(() => stranger.unbind(70000), "unbind", "EINVAL");
      assertErrno(() => pair.server.notify(pair.port), "notify", "ENOTCONN");
      // an unmask from another handle is ignored: the port stays masked
      pair.server.notify(pair.offered);
      assert.equal(await nextPort(pair.client), pair.port);
      stranger.unmask(pair.port);
      pair.server.notify(pair.offered);
      assert.deepEqual(await drain(env, pair.client), []);
      pair.client.unmask(pair.port);
      assert.deepEqual(await drain(env, pair.client), [pair.port]);
      pair.client.unmask(pair.port);
    } finally {
      await stranger.close();
    }
  });

  test("unbind leaves the peer unbound and it can be bound again", async () => {
    await using pair = await connect(env);
    pair.client.unbind(pair.port);
    assertErrno(() => pair.client.notify(pair.port), "notify", "ENOTCONN");
    assertErrno(() => pair.client.unbind(pair.port), "unbind", "ENOTCONN");
    pair.server.notify(pair.offered); // dropped: the port is unbound
    const again = pair.client.bindInterdomain(env.localDomain, pair.offered);
    assert.deepEqual(await drain(env, pair.client), [again]);
    pair.client.unmask(again);
    pair.server.notify(pair.offered);
    assert.equal(await nextPort(pair.client), again);
    pair.client.unmask(again);
    // binding to a port that is already connected fails
    assertErrno(
      () => pair.client.bindInterdomain(env.localDomain, pair.offered),
      "bind_interdomain",
      "EINVAL",
    );
  });

  test("VIRQ binding and EEXIST", async () => {
    const a = env.open();
    const b = env.open();
    try {
      // the kernel holds VIRQ_TIMER on vCPU 0 and the device binds on vCPU 0
      assertErrno(() => a.bindVirq(VIRQ.TIMER), "bind_virq", "EEXIST");
      assertErrno(() => a.bindVirq(24), "bind_virq", "EINVAL");
      const port = a.bindVirq(env.freeVirq);
      assert.ok(port > 0);
      assertErrno(() => b.bindVirq(env.freeVirq), "bind_virq", "EEXIST");
      assertErrno(() => a.bindVirq(env.freeVirq), "bind_virq", "EEXIST");
      a.notify(port); // Xen refuses to send on a VIRQ; Linux hides it
      assert.deepEqual(await drain(env, a), []);
      a.unbind(port);
      const again = b.bindVirq(env.freeVirq);
      b.unbind(again);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test("restrict to one domain", async () => {
    await using pair = await connect(env);
    const h = pair.server;
    assertErrno(() => h.restrictDomain(0), "restrict_domid", "EINVAL");
    assertErrno(() => h.restrictDomain(0x7ff0), "restrict_domid", "EINVAL");
    h.restrictDomain(0x7fef);
    assertErrno(() => h.restrictDomain(5), "restrict_domid", "EACCES");
    assertErrno(() => h.bindUnboundPort(5), "bind_unbound_port", "EACCES");
    assertErrno(() => h.bindVirq(env.freeVirq), "bind_virq", "EACCES");
    assertErrno(
      () => h.bindInterdomain(env.peerDomain, pair.port),
      "bind_interdomain",
      "EACCES",
    );
    // ports bound before the restriction stay usable
    h.notify(pair.offered);
    assert.equal(await nextPort(pair.client), pair.port);
    pair.client.unmask(pair.port);
  });

  test("reset empties the ring; dropped ports stay masked", async () => {
    await using pair = await connect(env);
    pair.server.notify(pair.offered);
    await env.settle();
    pair.client.reset();
    assert.equal(pair.client.poll(), undefined);
    pair.server.notify(pair.offered);
    assert.deepEqual(await drain(env, pair.client), [], "still masked");
    pair.client.unmask(pair.port);
    assert.deepEqual(await drain(env, pair.client), [pair.port]);
    pair.client.unmask(pair.port);
    // reset keeps the bindings
    pair.server.notify(pair.offered);
    assert.equal(await nextPort(pair.client), pair.port);
    pair.client.unmask(pair.port);
  });

  test("read and write edge cases", async () => {
    await using pair = await connect(env);
    const h = pair.client;
    assert.equal(h.read(new Uint8Array(3)), 0, "less than one port reads 0");
    assert.equal(h.read(new Uint8Array(8)), null, "empty ring would block");
    pair.server.notify(pair.offered);
    await env.settle();
    const buffer = new Uint8Array(8);
    assert.equal(h.read(buffer), 4);
    assert.equal(new DataView(buffer.buffer).getUint32(0, true), pair.port);
    assert.equal(h.write(new Uint8Array(0)), 0);
    const six = new Uint8Array(6);
    new DataView(six.buffer).setUint32(0, pair.port, true);
    assert.equal(h.write(six), 4, "rounded down to whole ports");
    assert.equal(h.write(new Uint8Array(8192)), 4096, "capped at a page");
    pair.server.notify(pair.offered);
    assert.equal(await nextPort(h), pair.port, "the 6-byte write unmasked it");
    h.unmask(pair.port);
  });

  test("ring overflow gives EFBIG until reset", async () => {
    await using pair = await connect(env);
    const h = pair.client;
    // Unmasking before reading queues a duplicate entry per delivery; the
    // ring of a handle with one port holds 64.
    for (let i = 0; i < 100; i++) {
      pair.server.notify(pair.offered);
      await env.settle();
      h.unmask(pair.port);
    }
    await env.settle();
    assertErrno(() => h.read(new Uint8Array(4)), "read", "EFBIG");
    assertErrno(() => h.poll(), "read", "EFBIG");
    assert.equal(h.read(new Uint8Array(2)), 0, "a sub-port read is still 0");
    h.reset();
    assert.equal(h.poll(), undefined);
    h.unmask(pair.port);
    pair.server.notify(pair.offered);
    assert.equal(await nextPort(h), pair.port);
    h.unmask(pair.port);
  });

  test("closing a handle ends a waiting task", async () => {
    const h = env.open();
    const port = h.bindUnboundPort(env.peerDomain);
    const waiting = h.next();
    const iterated: number[] = [];
    const iterating = (async () => {
      for await (const p of h) iterated.push(p);
    })();
    // Handle the rejection before closing: a backend whose close settles
    // later (linux: after the parked poll(2) returns) rejects `waiting`
    // first, and an unhandled rejection would fail the whole file.
    const rejected = assertRejectsErrno(() => waiting, "read", "EBADF");
    await env.settle();
    await h.close();
    await rejected;
    await iterating;
    assert.deepEqual(iterated, []);
    assertErrno(() => h.notify(port), "notify", "EBADF");
    assertErrno(() => h.poll(), "read", "EBADF");
    await h.close(); // idempotent
  });

  test("an aborted wait rejects and the handle stays usable", async () => {
    await using pair = await connect(env);
    const controller = new AbortController();
    const waiting = pair.client.next({ signal: controller.signal });
    controller.abort(new Error("stop"));
    await assert.rejects(waiting, /stop/);
    pair.server.notify(pair.offered);
    assert.equal(await nextPort(pair.client), pair.port);
    pair.client.unmask(pair.port);
  });

  test("bad arguments are refused before the backend", async () => {
    await using pair = await connect(env);
    const h = pair.server;
    for (const bad of [-1, 1.5, NaN, 2 ** 32, 2 ** 53]) {
      const e = assertErrno(() => h.notify(bad), "notify", "EINVAL");
      assert.equal(e.argument, "port");
      assertErrno(() => h.unbind(bad), "unbind", "EINVAL");
      assertErrno(() => h.unmask(bad), "unmask", "EINVAL");
      assertErrno(() => h.bindVirq(bad), "bind_virq", "EINVAL");
      assertErrno(
        () => h.bindInterdomain(env.peerDomain, bad),
        "bind_interdomain",
        "EINVAL",
      );
    }
    for (const bad of [-1, 0x10000, 0.5]) {
      const e = assertErrno(
        () => h.bindUnboundPort(bad),
        "bind_unbound_port",
        "EINVAL",
      );
      assert.equal(e.argument, "remote_domain");
      assertErrno(() => h.restrictDomain(bad), "restrict_domid", "EINVAL");
    }
    // nothing changed: the channel still works
    h.notify(pair.offered);
    assert.equal(await nextPort(pair.client), pair.port);
    pair.client.unmask(pair.port);
  });

  test("many ports: 520 channels, 1040 ports", async () => {
    const server = env.open();
    const client = env.openPeer();
    try {
      const pairs: [number, number][] = [];
      for (let i = 0; i < 520; i++) {
        const offered = server.bindUnboundPort(env.peerDomain);
        pairs.push([offered, client.bindInterdomain(env.localDomain, offered)]);
      }
      const first = await drain(env, client);
      assert.deepEqual(
        [...first].sort((a, b) => a - b),
        pairs.map(([, p]) => p).sort((a, b) => a - b),
      );
      for (const [, p] of pairs) client.unmask(p);
      for (const [o] of pairs) server.notify(o);
      const second = await drain(env, client);
      assert.equal(new Set(second).size, 520);
      for (const [, p] of pairs) client.unbind(p);
      for (const [o] of pairs) server.unbind(o);
    } finally {
      await client.close();
      await server.close();
    }
  });

  // The capability manifest: cases that need what a backend may lack.
  const noHypercalls = env.hypercalls === undefined
    ? "this backend offers no dom0 hypercalls (no privcmd)"
    : undefined;
  const noSecondDomain = noHypercalls ??
    (env.secondDomain === undefined
      ? "no second domain (the linux runner makes one with EVTCHN_CREATE_DOMAIN=1)"
      : undefined);
  const hypercalls = (): Dom0Hypercalls & { close?(): void } => {
    if (env.hypercalls === undefined) throw new Error(noHypercalls);
    return env.hypercalls();
  };
  test("dom0 hypercalls: status of every channel type", async () => {
    const hc = hypercalls();
    await using pair = await connect(env);
    const virqHandle = env.open();
    try {
      // Which vCPU the kernel put a port on depends on the host (its vCPUs
      // and how many channels each holds): here it is only checked to be a
      // vCPU, while tests/xen/placement_test.ts compares it exactly with the
      // model booted from the same host's snapshot.
      const { vcpu: pairVcpu, ...pairStatus } = hc.status(
        env.localDomain,
        pair.offered,
      );
      assertVcpu(pairVcpu, env.localVcpus);
      assert.deepEqual(pairStatus, {
        status: "interdomain",
        remoteDomain: env.peerDomain,
        remotePort: pair.port,
      });
      const unbound = pair.server.bindUnboundPort(env.peerDomain);
      const status = hc.status(env.localDomain, unbound);
      assert.equal(status.status, "unbound");
      assert.equal(
        (status as { remoteDomain: number }).remoteDomain,
        env.peerDomain,
      );
      const virq = virqHandle.bindVirq(env.freeVirq);
      // Linux moves it to the CPU with the fewest channels (see above)
      const { vcpu: virqVcpu, ...virqStatus } = hc.status(
        env.localDomain,
        virq,
      );
      assertVcpu(virqVcpu, env.localVcpus);
      assert.deepEqual(virqStatus, { status: "virq", virq: env.freeVirq });
      pair.server.unbind(unbound);
      assert.deepEqual(hc.status(env.localDomain, unbound), {
        status: "closed",
        vcpu: 0,
      });
      // the client's end is now unbound, waiting for the server's domain
      pair.server.unbind(pair.offered);
      const peer = hc.status(env.peerDomain, pair.port);
      assert.equal(peer.status, "unbound");
      assert.equal(
        (peer as { remoteDomain: number }).remoteDomain,
        env.localDomain,
      );
      // storage is bucketed and never shrinks: walking up in steps of
      // 64, the first refused port is a bucket boundary, and the port just
      // below it still reports a state
      const top = Math.max(pair.offered, pair.port, unbound, virq);
      let boundary = -1;
      for (let p = (Math.floor(top / 64) + 1) * 64; p < 1 << 17; p += 64) {
        try {
          hc.status(env.localDomain, p);
        } catch (error) {
          assert.ok(error instanceof EventChannelError);
          assert.equal(error.code, "EINVAL");
          assert.equal(error.op, "status");
          boundary = p;
          break;
        }
      }
      assert.ok(
        boundary > top && boundary % 64 === 0,
        `boundary ${boundary}`,
      );
      assert.ok(hc.status(env.localDomain, boundary - 1).status);
      assertErrno(() => hc.status(0x7ff5, 1), "status", "ESRCH");
      virqHandle.unbind(virq);
    } finally {
      await virqHandle.close();
      hc.close?.();
    }
  }, noHypercalls);

  test(
    "dom0 hypercalls: the control domain may not reset itself (EPERM)",
    () => {
      const hc = hypercalls();
      try {
        assertErrno(() => hc.reset(0), "reset", "EPERM");
        assertErrno(() => hc.reset(0x7ff0), "reset", "EPERM"); // DOMID_SELF
        // nothing was closed: the kernel's timer is still bound
        assert.equal(hc.status(env.localDomain, 1).status, "virq");
      } finally {
        hc.close?.();
      }
    },
    noHypercalls,
  );

  test("dom0 hypercalls: alloc_unbound and reset of a second domain", () => {
    const second = env.secondDomain?.();
    assert.ok(second !== undefined, "the runner created no second domain");
    const hc = hypercalls();
    try {
      const port = hc.allocUnbound(second, env.localDomain);
      assert.deepEqual(hc.status(second, port), {
        status: "unbound",
        vcpu: 0,
        remoteDomain: env.localDomain,
      });
      hc.reset(second);
      assert.deepEqual(hc.status(second, port), {
        status: "closed",
        vcpu: 0,
      });
      assertErrno(
        () => hc.allocUnbound(0x7ff5, 0),
        "alloc_unbound",
        "ESRCH",
      );
    } finally {
      hc.close?.();
    }
  }, noSecondDomain);

  const noDomains = noHypercalls ??
    (env.domains === undefined
      ? "the runner cannot create and destroy a domain (the linux runner can with EVTCHN_CREATE_DOMAIN=1)"
      : undefined);
  test(
    "peer liveness: VIRQ_DOM_EXC and status tell a destroyed peer",
    async () => {
      const hc = hypercalls();
      const h = env.open();
      const domains = env.domains!;
      let peer: number | undefined = domains.create();
      try {
        using watch = new PeerWatch(h, hc, { localDomain: env.localDomain });
        const offered = hc.allocUnbound(peer, env.localDomain);
        const port = h.bindInterdomain(peer, offered);
        assert.equal(await nextPort(h), port, "pending right after bind");
        h.unmask(port);
        watch.watch(port, peer);
        assert.deepEqual(watch.check(), [], "the peer is alive");
        domains.destroy(peer);
        const gone = peer;
        peer = undefined;
        // Xen closes the peer's ports (ours becomes unbound) and raises
        // VIRQ_DOM_EXC in dom0; nothing arrives on the port itself.
        assert.equal(await nextPort(h), watch.virqPort);
        assert.deepEqual(watch.handle(watch.virqPort), [
          { port, remoteDomain: gone, status: "unbound" },
        ]);
        assert.deepEqual(hc.status(env.localDomain, port), {
          status: "unbound",
          vcpu: hc.status(env.localDomain, port).vcpu,
          remoteDomain: gone,
        });
        // Xen may raise VIRQ_DOM_EXC again as the domain's last reference
        // goes; nothing else is pending.
        for (const p of await drain(env, h)) {
          assert.equal(p, watch.virqPort);
          assert.deepEqual(watch.handle(p), []);
        }
        h.unbind(port);
      } finally {
        if (peer !== undefined) domains.destroy(peer);
        await h.close();
        hc.close?.();
      }
    },
    noDomains,
  );

  if (env.teardown && !env.ignore) {
    Deno.test({
      name: `${env.name}: teardown`,
      fn: () => env.teardown!(),
      sanitizeOps: false,
      sanitizeResources: false,
    });
  }
}
