/**
 * `serve()`: a modelled Xen host ({@linkcode MemoryXen}) offered to C
 * programs over a Unix stream socket, one client connection per open
 * `/dev/xen/evtchn`. The protocol is `serve/PROTOCOL.md`; the frames are
 * {@linkcode "./protocol.ts"}.
 *
 * @module
 */

import { type MemoryEvtchnDevice, MemoryXen } from "../backends/memory/mod.ts";
import type { HostSnapshot } from "../host.ts";
import { EventChannelError } from "../errors.ts";
import { ERRNO } from "../xen/errno.ts";
import {
  DOMID_FIRST_RESERVED,
  UNRESTRICTED_DOMID as UNRESTRICTED,
} from "../xen/domid.ts";
import {
  encodeReply,
  HELLO_REPLY_BYTES,
  MAX_PAYLOAD,
  Op,
  PROTOCOL_MAGIC,
  PROTOCOL_VERSION,
  ProtocolError,
  type Request,
  RequestReader,
  ROLE_CONTROL,
  ROLE_WAKE,
  WAKE_OVERFLOW,
  WAKE_PENDING,
} from "./protocol.ts";

/**
 * Where clients and server meet when neither `EVTCHN_SOCKET` nor an explicit
 * path says otherwise (the shim uses the same default).
 */
export const DEFAULT_SOCKET = "/tmp/evtchn.sock";

/**
 * Most clients (open devices) served at once; one more is refused with
 * `ENFILE`, as Linux refuses an open beyond the system's file table.
 */
export const MAX_CLIENTS = 1024;

/**
 * How long a new connection may take to send its HELLO before it is
 * dropped, so that idle connections cannot pile up.
 */
export const HELLO_TIMEOUT_MS = 10_000;

/** Options for {@linkcode serve}. */
export interface ServeOptions {
  /** The socket path (default {@linkcode DEFAULT_SOCKET}). */
  socket?: string;
  /** A host snapshot dom0 boots from (see `MemoryXenOptions.host`). */
  host?: HostSnapshot;
  /** A host to serve instead of a new one (`host`, `lint` are then ignored). */
  xen?: MemoryXen;
  /**
   * Lint mode for every client (`MemoryXenOptions.lint`): read the findings
   * from {@linkcode Server.xen} (`findings()`), for example when it stops.
   */
  lint?: boolean;
  /**
   * Domains to create at start, each running Linux (default `[1]`, the
   * domU the CLI's memory backend also has). A client asking for another
   * domain creates it on its first HELLO.
   */
  domains?: number[];
  /** Stops the server when aborted. */
  signal?: AbortSignal;
  /** One line per client error (default: `console.error`). */
  log?: (line: string) => void;
}

/** A running server. */
export interface Server extends AsyncDisposable {
  /** The socket path it listens on. */
  readonly socket: string;
  /** The modelled host it serves. */
  readonly xen: MemoryXen;
  /** Clients (open devices) connected now. */
  readonly clients: number;
  /** Settles once the server has stopped and every client is closed. */
  readonly finished: Promise<void>;
  /** Stops listening, closes every client (their ports unbound). */
  close(): Promise<void>;
}

/** One client: one open device in one domain. */
interface Session {
  id: number;
  domain: number;
  device: MemoryEvtchnDevice;
  control: Deno.Conn;
  wake: Deno.Conn | undefined;
  token: bigint;
  /** Readiness bytes written to the wake connection and not yet drained. */
  sent: number;
  /** Writes to the wake connection, in order. */
  wakeTail: Promise<void>;
  restrict: number;
  closed: boolean;
}

/**
 * Starts serving a modelled host on a Unix socket. A stale socket file (no
 * one listening) is replaced; a live one is an error.
 *
 * @param options Socket, host, domains, stop signal, logger.
 * @returns The server, listening.
 * @throws {EventChannelError} `open` `EADDRINUSE` when a server already
 * listens there.
 *
 * @example Serve, then stop
 * ```ts
 * import { serve } from "./server.ts";
 * import assert from "node:assert/strict";
 * const dir = await Deno.makeTempDir();
 * await using server = await serve({ socket: `${dir}/evtchn.sock` });
 * assert.equal(server.clients, 0);
 * assert.ok(server.xen.guest(1)); // domU 1 is there for clients
 * await server.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function serve(options: ServeOptions = {}): Promise<Server> {
  const path = options.socket ?? DEFAULT_SOCKET;
  const log = options.log ?? ((line: string) => console.error(line));
  const xen = options.xen ??
    new MemoryXen({ host: options.host, lint: options.lint });
  for (const domain of options.domains ?? [1]) {
    if (xen.hypervisor.domain(domain) === undefined) {
      xen.createDomain({ domain });
    }
  }
  await removeStale(path);
  const listener = Deno.listen({ transport: "unix", path });
  const sessions = new Map<number, Session>();
  const byToken = new Map<bigint, Session>();
  const pending = new Set<Deno.Conn>();
  const tasks = new Set<Promise<void>>();
  let nextId = 1;
  let stopping = false;

  const track = (task: Promise<void>): void => {
    tasks.add(task);
    task.finally(() => tasks.delete(task));
  };

  const closeSession = (session: Session): void => {
    if (session.closed) return;
    session.closed = true;
    sessions.delete(session.id);
    byToken.delete(session.token);
    session.device.close();
    closeQuietly(session.control);
    if (session.wake !== undefined) closeQuietly(session.wake);
  };

  const sendWake = (session: Session): void => {
    const wake = session.wake;
    if (wake === undefined || session.closed) return;
    const device = session.device;
    const target = (device.queued > 0 ? 1 : 0) + (device.overflowed ? 1 : 0);
    if (target <= session.sent) return;
    const bytes = target - session.sent === 2
      ? new Uint8Array([WAKE_PENDING, WAKE_OVERFLOW])
      : new Uint8Array([session.sent === 0 ? WAKE_PENDING : WAKE_OVERFLOW]);
    session.sent = target;
    session.wakeTail = session.wakeTail.then(() => writeAll(wake, bytes))
      .catch(() => {/* the control connection's end closes it */});
  };

  const execute = (session: Session, request: Request): {
    result: number;
    payload?: Uint8Array;
  } => {
    const device = session.device;
    switch (request.op) {
      case Op.BIND_VIRQ:
        if (session.restrict !== UNRESTRICTED) return { result: -ERRNO.EACCES };
        return { result: device.bindVirq(request.u32(0)) };
      case Op.BIND_INTERDOMAIN: {
        const remote = request.u32(0);
        // The kernel compares the whole u32 with the restriction, then
        // passes its low 16 bits to Xen as a domid_t.
        if (session.restrict !== UNRESTRICTED && session.restrict !== remote) {
          return { result: -ERRNO.EACCES };
        }
        return {
          result: device.bindInterdomain(remote & 0xffff, request.u32(4)),
        };
      }
      case Op.BIND_UNBOUND_PORT:
        if (session.restrict !== UNRESTRICTED) return { result: -ERRNO.EACCES };
        return { result: device.bindUnboundPort(request.u32(0) & 0xffff) };
      case Op.UNBIND:
        device.unbind(request.u32(0));
        return { result: 0 };
      case Op.NOTIFY:
        device.notify(request.u32(0));
        return { result: 0 };
      case Op.RESET:
        device.reset();
        return { result: 0 };
      case Op.RESTRICT_DOMID: {
        const domid = request.u16(0);
        device.restrictDomain(domid);
        session.restrict = domid;
        return { result: 0 };
      }
      case Op.READ: {
        const count = Math.min(request.u32(0), MAX_PAYLOAD);
        const buffer = new Uint8Array(count & ~3);
        const n = device.read(buffer);
        if (n === null) return { result: -ERRNO.EAGAIN };
        return { result: n, payload: buffer.subarray(0, n) };
      }
      case Op.WRITE:
        return { result: device.write(request.payload) };
      default:
        throw new ProtocolError(`op ${request.op} out of place`);
    }
  };

  /** Runs one request and answers it; false when the session must end. */
  const answer = async (
    session: Session,
    request: Request,
  ): Promise<boolean> => {
    if (request.op === Op.HELLO) {
      throw new ProtocolError("second HELLO");
    }
    if (request.op === Op.CLOSE) {
      closeSession(session);
      return false;
    }
    if (session.wake === undefined) {
      throw new ProtocolError(`op ${request.op} before the wake connection`);
    }
    let reply: { result: number; payload?: Uint8Array };
    try {
      reply = execute(session, request);
    } catch (error) {
      if (!(error instanceof EventChannelError)) throw error;
      reply = { result: -error.errno };
    }
    // The ring can only shrink by this client's own read, reset or close;
    // it grows by anyone's notify (its own, a peer's, a loopback's).
    const device = session.device;
    const target = (device.queued > 0 ? 1 : 0) + (device.overflowed ? 1 : 0);
    let drain = 0;
    if (target < session.sent) {
      drain = session.sent - target;
      session.sent = target;
    }
    const tails: Promise<void>[] = [];
    for (const other of sessions.values()) {
      const before = other.sent;
      sendWake(other);
      if (other.sent !== before || other === session) {
        tails.push(other.wakeTail);
      }
    }
    // Readiness first: a peer's fd is readable before the notify returns,
    // and the bytes this client is told to drain are already there.
    await Promise.all(tails);
    await writeAll(
      session.control,
      encodeReply(request.op, reply.result, drain, reply.payload),
    );
    return true;
  };

  const describe = (session: Session): string =>
    `client ${session.id} (dom${session.domain})`;

  const serveControl = async (
    conn: Deno.Conn,
    reader: RequestReader,
    hello: Request,
  ): Promise<void> => {
    const value = hello.u64(8);
    const fail = async (errno: number): Promise<void> => {
      await writeAll(conn, encodeReply(Op.HELLO, -errno, 0)).catch(() => {});
      closeQuietly(conn);
    };
    if (value >= BigInt(DOMID_FIRST_RESERVED)) {
      await fail(ERRNO.EINVAL);
      return;
    }
    if (sessions.size >= MAX_CLIENTS) {
      log(`evtchn serve: refused a client: ${MAX_CLIENTS} clients already`);
      await fail(ERRNO.ENFILE);
      return;
    }
    const domain = Number(value);
    let device: MemoryEvtchnDevice;
    try {
      if (xen.hypervisor.domain(domain) === undefined) {
        xen.createDomain({ domain });
      }
      // The host's own device: lint and faults observe it as a handle's.
      device = xen.openDevice(domain);
    } catch (error) {
      await fail(error instanceof EventChannelError ? error.errno : ERRNO.EIO);
      return;
    }
    const token = randomToken(byToken);
    const session: Session = {
      id: nextId++,
      domain,
      device,
      control: conn,
      wake: undefined,
      token,
      sent: 0,
      wakeTail: Promise.resolve(),
      restrict: UNRESTRICTED,
      closed: false,
    };
    sessions.set(session.id, session);
    byToken.set(token, session);
    const payload = new Uint8Array(HELLO_REPLY_BYTES);
    const view = new DataView(payload.buffer);
    view.setUint16(0, PROTOCOL_VERSION, true);
    view.setUint32(4, domain, true);
    view.setBigUint64(8, token, true);
    try {
      await writeAll(conn, encodeReply(Op.HELLO, 0, 0, payload));
      for (;;) {
        const request = await readRequest(conn, reader);
        if (request === undefined) break; // EOF: the process exited
        if (!await answer(session, request)) break;
      }
    } catch (error) {
      if (!session.closed && !stopping) {
        log(`evtchn serve: ${describe(session)}: ${reason(error)}`);
      }
    } finally {
      closeSession(session);
    }
  };

  const serveWake = async (
    conn: Deno.Conn,
    reader: RequestReader,
    hello: Request,
  ): Promise<void> => {
    const session = byToken.get(hello.u64(8));
    if (session === undefined || session.wake !== undefined) {
      await writeAll(conn, encodeReply(Op.HELLO, -ERRNO.EPROTO, 0))
        .catch(() => {});
      closeQuietly(conn);
      log("evtchn serve: a wake connection with an unknown token");
      return;
    }
    byToken.delete(session.token);
    try {
      await writeAll(conn, encodeReply(Op.HELLO, 0, 0));
    } catch {
      closeQuietly(conn);
      return;
    }
    session.wake = conn;
    sendWake(session);
    // Nothing more may come this way; EOF or data ends only this stream,
    // the control connection's end closes the device.
    try {
      if (await readRequest(conn, reader) !== undefined) {
        throw new ProtocolError("data on the wake connection");
      }
    } catch (error) {
      if (!session.closed && !stopping) {
        log(`evtchn serve: ${describe(session)}: ${reason(error)}`);
        closeSession(session);
      }
    }
  };

  const accept = async (conn: Deno.Conn): Promise<void> => {
    pending.add(conn);
    const reader = new RequestReader();
    let hello: Request | undefined;
    const timer = setTimeout(() => closeQuietly(conn), HELLO_TIMEOUT_MS);
    try {
      hello = await readRequest(conn, reader);
      if (hello === undefined) {
        closeQuietly(conn);
        return;
      }
      if (hello.op !== Op.HELLO) throw new ProtocolError("no HELLO first");
      if (hello.u32(0) !== PROTOCOL_MAGIC) {
        throw new ProtocolError("not an evtchn client (bad magic)");
      }
      const version = hello.u16(4);
      if (version !== PROTOCOL_VERSION) {
        log(
          `evtchn serve: refused a client speaking protocol ${version} (this is ${PROTOCOL_VERSION})`,
        );
        const payload = new Uint8Array(HELLO_REPLY_BYTES);
        new DataView(payload.buffer).setUint16(0, PROTOCOL_VERSION, true);
        await writeAll(conn, encodeReply(Op.HELLO, -ERRNO.EPROTO, 0, payload))
          .catch(() => {});
        closeQuietly(conn);
        return;
      }
    } catch (error) {
      if (!stopping) log(`evtchn serve: new connection: ${reason(error)}`);
      closeQuietly(conn);
      return;
    } finally {
      clearTimeout(timer);
      pending.delete(conn);
    }
    if (stopping) {
      closeQuietly(conn);
      return;
    }
    const role = hello.u16(6);
    if (role === ROLE_CONTROL) return await serveControl(conn, reader, hello);
    if (role === ROLE_WAKE) return await serveWake(conn, reader, hello);
    log(`evtchn serve: new connection: unknown role ${role}`);
    closeQuietly(conn);
  };

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      stopping = true;
      options.signal?.removeEventListener("abort", onAbort);
      closeQuietly(listener);
      for (const conn of pending) closeQuietly(conn);
      for (const session of [...sessions.values()]) closeSession(session);
      await acceptLoop;
      while (tasks.size > 0) await Promise.allSettled([...tasks]);
      await Deno.remove(path).catch(() => {});
    })();
    return closing;
  };
  const onAbort = (): void => void close();

  const acceptLoop = (async () => {
    try {
      for await (const conn of listener) {
        if (stopping) {
          closeQuietly(conn);
          continue;
        }
        track(accept(conn));
      }
    } catch (error) {
      if (!stopping) log(`evtchn serve: listener: ${reason(error)}`);
    }
  })();

  if (options.signal?.aborted) await close();
  options.signal?.addEventListener("abort", onAbort, { once: true });

  return {
    socket: path,
    xen,
    get clients() {
      return sessions.size;
    },
    get finished() {
      return acceptLoop.then(async () => {
        await close();
      });
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** Reads until one whole request, or `undefined` at a clean EOF. */
async function readRequest(
  conn: Deno.Conn,
  reader: RequestReader,
): Promise<Request | undefined> {
  for (;;) {
    const request = reader.next();
    if (request !== undefined) return request;
    const n = await conn.read(reader.space());
    if (n === null) {
      if (reader.pendingBytes() > 0) {
        throw new ProtocolError("connection ended inside a frame");
      }
      return undefined;
    }
    reader.commit(n);
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let at = 0;
  while (at < bytes.length) at += await conn.write(bytes.subarray(at));
}

function closeQuietly(closer: { close(): void }): void {
  try {
    closer.close();
  } catch { /* already closed */ }
}

function reason(error: unknown): string {
  if (error instanceof ProtocolError) return `protocol error: ${error.message}`;
  if (error instanceof Deno.errors.BrokenPipe) return "connection lost";
  if (error instanceof Deno.errors.ConnectionReset) return "connection lost";
  if (error instanceof Deno.errors.BadResource) return "connection closed";
  return error instanceof Error ? error.message : String(error);
}

function randomToken(taken: Map<bigint, Session>): bigint {
  const bytes = new BigUint64Array(1);
  do crypto.getRandomValues(bytes); while (
    bytes[0] === 0n || taken.has(bytes[0])
  );
  return bytes[0];
}

/**
 * Removes a socket file nobody listens on, so a crashed server does not
 * block the next; refuses to take over a live one.
 */
async function removeStale(path: string): Promise<void> {
  let conn: Deno.Conn;
  try {
    conn = await Deno.connect({ transport: "unix", path });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    if (error instanceof Deno.errors.ConnectionRefused) {
      await Deno.remove(path);
      return;
    }
    throw error;
  }
  conn.close();
  throw new EventChannelError("open", "EADDRINUSE", {
    argument: "socket",
    value: path,
    detail: "an evtchn server already listens there",
  });
}
