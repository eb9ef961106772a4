/**
 * `evtchn serve` as an API: a modelled Xen host offered to unmodified C
 * programs (through `shim/`'s `libxenevtchn.so.1` or `LD_PRELOAD` library)
 * over a Unix socket. The wire protocol is described in `serve/PROTOCOL.md`.
 *
 * @example Serve a host with dom0 and domU 1
 * ```ts
 * import { serve } from "./mod.ts";
 * import assert from "node:assert/strict";
 * const dir = await Deno.makeTempDir();
 * const stop = new AbortController();
 * const server = await serve({ socket: `${dir}/s`, signal: stop.signal });
 * assert.equal(server.socket, `${dir}/s`);
 * stop.abort();
 * await server.finished;
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */

export {
  DEFAULT_SOCKET,
  HELLO_TIMEOUT_MS,
  MAX_CLIENTS,
  serve,
  type ServeOptions,
  type Server,
} from "./server.ts";
export {
  decodeReplyHeader,
  encodeHello,
  encodeReply,
  encodeRequest,
  MAX_PAYLOAD,
  Op,
  type OpCode,
  PROTOCOL_MAGIC,
  PROTOCOL_VERSION,
  ProtocolError,
  REPLY_HEADER,
  type ReplyHeader,
  Request,
  REQUEST_HEADER,
  RequestReader,
  ROLE_CONTROL,
  ROLE_WAKE,
  WAKE_OVERFLOW,
  WAKE_PENDING,
} from "./protocol.ts";
