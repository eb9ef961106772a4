// serve/PROTOCOL.md from a raw Deno client: handshake, one request per
// operation, readiness bytes on the wake connection, and what misbehaving
// clients get (one log line, their connection closed, others served on).

import assert from "node:assert/strict";
import {
  decodeReplyHeader,
  encodeHello,
  encodeRequest,
  Op,
  PROTOCOL_VERSION,
  REPLY_HEADER,
  type ReplyHeader,
  ROLE_CONTROL,
  ROLE_WAKE,
  WAKE_OVERFLOW,
  WAKE_PENDING,
} from "../../serve/mod.ts";
import { ERRNO } from "../../xen/errno.ts";
import { startServer } from "./_shim.ts";

/** A raw client: one device, its two connections. */
class RawClient {
  /** Readiness bytes received and not yet drained. */
  readonly held: number[] = [];
  #pump: Promise<void>;

  constructor(readonly control: Deno.Conn, readonly wake: Deno.Conn) {
    // One reader for the wake stream, for the client's whole life: Deno
    // cannot peek, so the bytes are kept here until a reply drains them.
    this.#pump = (async () => {
      const buffer = new Uint8Array(16);
      for (;;) {
        const n = await wake.read(buffer);
        if (n === null) return;
        this.held.push(...buffer.subarray(0, n));
      }
    })().catch(() => {});
  }

  static async open(socket: string, domain = 0): Promise<RawClient> {
    const control = await Deno.connect({ transport: "unix", path: socket });
    await control.write(
      encodeRequest(Op.HELLO, encodeHello(ROLE_CONTROL, BigInt(domain))),
    );
    const hello = await readReply(control);
    assert.equal(hello.result, 0);
    const token = new DataView(hello.payload.buffer).getBigUint64(8, true);
    const wake = await Deno.connect({ transport: "unix", path: socket });
    await wake.write(encodeRequest(Op.HELLO, encodeHello(ROLE_WAKE, token)));
    assert.equal((await readReply(wake)).result, 0);
    return new RawClient(control, wake);
  }

  async call(
    op: number,
    ...args: number[]
  ): Promise<{ result: number; drain: number; payload: Uint8Array }> {
    const payload = new Uint8Array(args.length * 4);
    const view = new DataView(payload.buffer);
    args.forEach((a, i) => view.setUint32(i * 4, a, true));
    await this.control.write(encodeRequest(op, payload));
    const reply = await readReply(this.control);
    assert.equal(reply.op, op);
    // the bytes to drain were written before the reply: they are here
    // or on their way
    for (let i = 0; i < 100 && this.held.length < reply.drain; i++) {
      await sleep(5);
    }
    assert.ok(this.held.length >= reply.drain, "drained bytes never came");
    this.held.splice(0, reply.drain);
    return reply;
  }

  /** Readiness bytes waiting on the wake connection. */
  async waiting(): Promise<number[]> {
    await sleep(30);
    return [...this.held];
  }

  async close(): Promise<void> {
    this.control.close();
    this.wake.close();
    await this.#pump;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function readExactly(conn: Deno.Conn, n: number): Promise<Uint8Array> {
  const buffer = new Uint8Array(n);
  let at = 0;
  while (at < n) {
    const got = await conn.read(buffer.subarray(at));
    if (got === null) throw new Error("EOF");
    at += got;
  }
  return buffer;
}

async function readReply(
  conn: Deno.Conn,
): Promise<ReplyHeader & { payload: Uint8Array }> {
  const header = decodeReplyHeader(await readExactly(conn, REPLY_HEADER));
  const payload = await readExactly(conn, header.length);
  return { ...header, payload };
}

/** Resolves once the connection is closed by the server (EOF). */
async function closedByServer(conn: Deno.Conn): Promise<boolean> {
  const buffer = new Uint8Array(64);
  try {
    while ((await conn.read(buffer)) !== null) { /* discard */ }
  } catch { /* reset counts as closed */ }
  return true;
}

Deno.test("serve protocol", async (t) => {
  await using s = await startServer();

  await t.step("binds, notify, readiness bytes, read, write", async () => {
    const a = await RawClient.open(s.socket);
    const b = await RawClient.open(s.socket, 1);
    try {
      const offered = (await b.call(Op.BIND_UNBOUND_PORT, 0)).result;
      assert.ok(offered > 0);
      const local = (await a.call(Op.BIND_INTERDOMAIN, 1, offered)).result;
      assert.ok(local > 0);
      // Xen marks the new local port pending: one readiness byte on a's wake
      assert.deepEqual(await a.waiting(), [WAKE_PENDING]);
      const read = await a.call(Op.READ, 4096);
      assert.equal(read.result, 4);
      assert.equal(read.drain, 1); // the ring is empty again
      assert.equal(new DataView(read.payload.buffer).getUint32(0, true), local);
      assert.equal((await a.call(Op.READ, 8)).result, -ERRNO.EAGAIN);
      const unmask = new Uint8Array(4);
      new DataView(unmask.buffer).setUint32(0, local, true);
      await a.control.write(encodeRequest(Op.WRITE, unmask));
      assert.equal((await readReply(a.control)).result, 4);
      assert.equal((await b.call(Op.NOTIFY, offered)).result, 0);
      assert.equal((await a.call(Op.READ, 3)).result, 0); // < one port
      assert.equal((await a.call(Op.RESET)).drain, 1);
      assert.equal((await a.call(Op.NOTIFY, 99999)).result, -ERRNO.ENOTCONN);
      assert.equal((await a.call(Op.BIND_VIRQ, 24)).result, -ERRNO.EINVAL);
      assert.equal(
        (await a.call(Op.RESTRICT_DOMID, 0)).result,
        -ERRNO.EINVAL,
      );
    } finally {
      await a.close();
      await b.close();
    }
  });

  await t.step("ring overflow: a second readiness byte", async () => {
    const a = await RawClient.open(s.socket);
    const b = await RawClient.open(s.socket);
    try {
      // One port, its 64-entry ring: each notify queues it, each write
      // re-enables it without reading; the 65th event finds the ring full.
      const port = (await a.call(Op.BIND_UNBOUND_PORT, 0)).result;
      const peer = (await b.call(Op.BIND_INTERDOMAIN, 0, port)).result;
      for (let i = 0; i < 65; i++) {
        assert.equal((await b.call(Op.NOTIFY, peer)).result, 0);
        assert.equal((await a.call(Op.WRITE, port)).result, 4);
      }
      assert.deepEqual(await a.waiting(), [WAKE_PENDING, WAKE_OVERFLOW]);
      assert.equal((await a.call(Op.READ, 4)).result, -ERRNO.EFBIG);
      assert.equal((await a.call(Op.RESET)).drain, 2);
    } finally {
      await a.close();
      await b.close();
    }
  });

  await t.step(
    "a client that vanishes is closed like a process exit",
    async () => {
      const a = await RawClient.open(s.socket);
      const port = (await a.call(Op.BIND_UNBOUND_PORT, 0)).result;
      assert.equal(
        s.server.xen.hypercalls(0).status(0, port).status,
        "unbound",
      );
      await a.close(); // no CLOSE: as a crash
      for (let i = 0; i < 100 && s.server.clients > 0; i++) {
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.equal(s.server.clients, 0);
      assert.equal(s.server.xen.hypercalls(0).status(0, port).status, "closed");
    },
  );

  await t.step("CLOSE unbinds before the connection ends", async () => {
    const a = await RawClient.open(s.socket);
    const port = (await a.call(Op.BIND_UNBOUND_PORT, 0)).result;
    await a.control.write(encodeRequest(Op.CLOSE));
    assert.ok(await closedByServer(a.control));
    assert.equal(s.server.xen.hypercalls(0).status(0, port).status, "closed");
    await a.close();
  });

  await t.step(
    "version mismatch: EPROTO and the server's version",
    async () => {
      const conn = await Deno.connect({ transport: "unix", path: s.socket });
      await conn.write(
        encodeRequest(Op.HELLO, encodeHello(ROLE_CONTROL, 0n, 99)),
      );
      const reply = await readReply(conn);
      assert.equal(reply.result, -ERRNO.EPROTO);
      assert.equal(
        new DataView(reply.payload.buffer).getUint16(0, true),
        PROTOCOL_VERSION,
      );
      assert.ok(await closedByServer(conn));
      conn.close();
      assert.match(s.log.pop() ?? "", /protocol 99/);
    },
  );

  await t.step(
    "garbage, huge and early requests: closed, one log line each",
    async () => {
      const survivor = await RawClient.open(s.socket);
      const cases: [string, Uint8Array, RegExp][] = [
        [
          "garbage",
          new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"),
          /reserved|unknown op/,
        ],
        [
          "huge",
          new Uint8Array([Op.WRITE, 0, 0, 0, 0, 0, 0, 0x40]),
          /payload of 1073741824 bytes/,
        ],
        ["no HELLO", encodeRequest(Op.NOTIFY, new Uint8Array(4)), /no HELLO/],
      ];
      for (const [what, bytes, pattern] of cases) {
        const conn = await Deno.connect({ transport: "unix", path: s.socket });
        await conn.write(bytes);
        assert.ok(await closedByServer(conn), what);
        conn.close();
        assert.equal(s.log.length, 1, what);
        assert.match(s.log.pop()!, pattern, what);
      }
      // a request before the wake connection is attached
      const control = await Deno.connect({ transport: "unix", path: s.socket });
      await control.write(
        encodeRequest(Op.HELLO, encodeHello(ROLE_CONTROL, 0n)),
      );
      assert.equal((await readReply(control)).result, 0);
      await control.write(encodeRequest(Op.RESET));
      assert.ok(await closedByServer(control));
      control.close();
      assert.match(s.log.pop() ?? "", /before the wake connection/);
      // a wake connection with a made-up token
      const wake = await Deno.connect({ transport: "unix", path: s.socket });
      await wake.write(encodeRequest(Op.HELLO, encodeHello(ROLE_WAKE, 42n)));
      assert.equal((await readReply(wake)).result, -ERRNO.EPROTO);
      wake.close();
      assert.match(s.log.pop() ?? "", /unknown token/);
      // the others were served throughout
      assert.ok((await survivor.call(Op.BIND_UNBOUND_PORT, 0)).result > 0);
      await survivor.close();
    },
  );

  await t.step("a domain id beyond the domU range: EINVAL", async () => {
    const conn = await Deno.connect({ transport: "unix", path: s.socket });
    await conn.write(
      encodeRequest(Op.HELLO, encodeHello(ROLE_CONTROL, 0x7ff0n)),
    );
    assert.equal((await readReply(conn)).result, -ERRNO.EINVAL);
    assert.ok(await closedByServer(conn));
    conn.close();
  });

  await t.step("a live socket is not taken over", async () => {
    const { serve } = await import("../../serve/mod.ts");
    await assert.rejects(
      serve({ socket: s.socket }),
      (e: Error) => e.message.includes("EADDRINUSE"),
    );
    await sleep(20); // the server sees the probe's connection come and go
  });
});
