/**
 * The wire protocol between `evtchn serve` and its C clients (the
 * libxenevtchn shim and the `LD_PRELOAD` library in `shim/`): frame layout,
 * operation codes, bounds, and an incremental frame reader. The prose
 * description, which the C side follows, is `serve/PROTOCOL.md`; every
 * number here is defined there too.
 *
 * All integers are little-endian.
 *
 * @example Encode a request and read it back
 * ```ts
 * import { encodeRequest, Op, RequestReader } from "./protocol.ts";
 * import assert from "node:assert/strict";
 * const frame = encodeRequest(Op.NOTIFY, new Uint8Array([7, 0, 0, 0]));
 * const reader = new RequestReader();
 * reader.push(frame);
 * const request = reader.next();
 * assert.equal(request?.op, Op.NOTIFY);
 * assert.equal(request?.u32(0), 7);
 * ```
 *
 * @module
 */

/** Protocol version spoken here; a HELLO with another is refused `EPROTO`. */
export const PROTOCOL_VERSION = 1;

/** The HELLO payload's first four bytes, `"EVCH"` read as a u32. */
export const PROTOCOL_MAGIC = 0x48435645;

/** Bytes of a request header: op u8, 3 zero bytes, payload length u32. */
export const REQUEST_HEADER = 8;

/**
 * Bytes of a reply header: op u8, drain u8, 2 zero bytes, result i32,
 * payload length u32.
 */
export const REPLY_HEADER = 12;

/**
 * Largest payload of any frame: a `write()` of one page of ports, or a
 * `read()` reply of one page (`PAGE_SIZE`, the cap of `evtchn_read` and
 * `evtchn_write` in Linux's drivers/xen/evtchn.c).
 */
export const MAX_PAYLOAD = 4096;

/** Bytes of the HELLO request payload. */
export const HELLO_REQUEST_BYTES = 16;

/** Bytes of the HELLO reply payload on a control connection. */
export const HELLO_REPLY_BYTES = 16;

/** HELLO `role`: the connection carries requests (one open device). */
export const ROLE_CONTROL = 0;

/** HELLO `role`: the connection carries readiness bytes to the client. */
export const ROLE_WAKE = 1;

/**
 * Readiness byte: the ring holds at least one port. Present, unread, on the
 * wake connection exactly while the ring is non-empty.
 */
export const WAKE_PENDING = 0x01;

/**
 * Readiness byte after {@linkcode WAKE_PENDING}: the ring overflowed
 * (`poll` reports `POLLERR` on Linux then; reads fail `EFBIG`).
 */
export const WAKE_OVERFLOW = 0x02;

/** Operation codes: one per ioctl, `read`, `write` and `close`. */
export const Op = {
  /** Handshake: version, role, domain or wake token. */
  HELLO: 1,
  /** `IOCTL_EVTCHN_BIND_VIRQ`: u32 virq. */
  BIND_VIRQ: 2,
  /** `IOCTL_EVTCHN_BIND_INTERDOMAIN`: u32 remote_domain, u32 remote_port. */
  BIND_INTERDOMAIN: 3,
  /** `IOCTL_EVTCHN_BIND_UNBOUND_PORT`: u32 remote_domain. */
  BIND_UNBOUND_PORT: 4,
  /** `IOCTL_EVTCHN_UNBIND`: u32 port. */
  UNBIND: 5,
  /** `IOCTL_EVTCHN_NOTIFY`: u32 port. */
  NOTIFY: 6,
  /** `IOCTL_EVTCHN_RESET`: no payload. */
  RESET: 7,
  /** `IOCTL_EVTCHN_RESTRICT_DOMID`: u16 domid, u16 zero. */
  RESTRICT_DOMID: 8,
  /** `read()`: u32 count; the reply carries the ports read. */
  READ: 9,
  /** `write()`: the bytes written (at most one page). */
  WRITE: 10,
  /** `close()` of the last descriptor: unbind everything, then EOF. */
  CLOSE: 11,
} as const;

/** An operation code. */
export type OpCode = typeof Op[keyof typeof Op];

/** Payload length each operation must carry (`WRITE`: 0 to 4096). */
export const PAYLOAD_BYTES: Readonly<Record<number, number | undefined>> = {
  [Op.HELLO]: HELLO_REQUEST_BYTES,
  [Op.BIND_VIRQ]: 4,
  [Op.BIND_INTERDOMAIN]: 8,
  [Op.BIND_UNBOUND_PORT]: 4,
  [Op.UNBIND]: 4,
  [Op.NOTIFY]: 4,
  [Op.RESET]: 0,
  [Op.RESTRICT_DOMID]: 4,
  [Op.READ]: 4,
  [Op.WRITE]: undefined,
  [Op.CLOSE]: 0,
};

/** Why a byte stream is not this protocol. */
export class ProtocolError extends Error {
  /**
   * @param message What was wrong, in one line.
   */
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

/** One decoded request. */
export class Request {
  /** The operation code. */
  readonly op: number;
  /** The payload (a view into the reader's buffer: use before the next read). */
  readonly payload: Uint8Array;
  #view: DataView;

  /**
   * @param op The operation code.
   * @param payload The payload bytes.
   */
  constructor(op: number, payload: Uint8Array) {
    this.op = op;
    this.payload = payload;
    this.#view = new DataView(
      payload.buffer,
      payload.byteOffset,
      payload.byteLength,
    );
  }

  /**
   * A little-endian u32 of the payload.
   *
   * @param offset Byte offset.
   * @returns The value.
   */
  u32(offset: number): number {
    return this.#view.getUint32(offset, true);
  }

  /**
   * A little-endian u16 of the payload.
   *
   * @param offset Byte offset.
   * @returns The value.
   */
  u16(offset: number): number {
    return this.#view.getUint16(offset, true);
  }

  /**
   * A little-endian u64 of the payload.
   *
   * @param offset Byte offset.
   * @returns The value.
   */
  u64(offset: number): bigint {
    return this.#view.getBigUint64(offset, true);
  }
}

/**
 * Splits a byte stream into requests, checking each header before its
 * payload is awaited: a bad op, nonzero reserved bytes or a length beyond
 * its op's bound is a {@linkcode ProtocolError} at once, so a client never
 * makes the server buffer more than one header and {@linkcode MAX_PAYLOAD}.
 *
 * @example A header that lies about its length
 * ```ts
 * import { ProtocolError, RequestReader } from "./protocol.ts";
 * import assert from "node:assert/strict";
 * const reader = new RequestReader();
 * reader.push(new Uint8Array([10, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f]));
 * assert.throws(() => reader.next(), ProtocolError);
 * ```
 */
export class RequestReader {
  #buffer = new Uint8Array(REQUEST_HEADER + MAX_PAYLOAD);
  #start = 0;
  #end = 0;

  /** Free bytes at the end of the buffer, where the next read goes. */
  space(): Uint8Array {
    this.#compact();
    return this.#buffer.subarray(this.#end);
  }

  /**
   * Records that `n` bytes were read into {@linkcode RequestReader.space}.
   *
   * @param n The byte count.
   */
  commit(n: number): void {
    this.#end += n;
  }

  /** Bytes received and not yet returned as a request. */
  pendingBytes(): number {
    return this.#end - this.#start;
  }

  /**
   * Appends bytes (for tests and small inputs).
   *
   * @param bytes The bytes.
   * @throws {ProtocolError} When they do not fit one frame's bound.
   */
  push(bytes: Uint8Array): void {
    const space = this.space();
    if (bytes.length > space.length) {
      throw new ProtocolError("more data than one frame may hold");
    }
    space.set(bytes);
    this.commit(bytes.length);
  }

  /**
   * The next whole request, or `undefined` until more bytes arrive.
   *
   * @returns The request.
   * @throws {ProtocolError} For a malformed header.
   */
  next(): Request | undefined {
    const available = this.#end - this.#start;
    if (available < REQUEST_HEADER) return undefined;
    const b = this.#buffer;
    const at = this.#start;
    const op = b[at];
    if (b[at + 1] !== 0 || b[at + 2] !== 0 || b[at + 3] !== 0) {
      throw new ProtocolError(`request header: reserved bytes not zero`);
    }
    const length = (b[at + 4] | (b[at + 5] << 8) | (b[at + 6] << 16) |
      (b[at + 7] << 24)) >>> 0;
    if (!Object.hasOwn(PAYLOAD_BYTES, op)) {
      throw new ProtocolError(`unknown op ${op}`);
    }
    const want = PAYLOAD_BYTES[op];
    if (want === undefined ? length > MAX_PAYLOAD : length !== want) {
      throw new ProtocolError(
        `op ${op}: payload of ${length} bytes (${
          want === undefined ? `at most ${MAX_PAYLOAD}` : `must be ${want}`
        })`,
      );
    }
    if (available < REQUEST_HEADER + length) return undefined;
    const payload = b.subarray(
      at + REQUEST_HEADER,
      at + REQUEST_HEADER + length,
    );
    this.#start += REQUEST_HEADER + length;
    return new Request(op, payload);
  }

  /** Moves unread bytes to the front once the consumed part is large. */
  #compact(): void {
    if (this.#start === 0) return;
    this.#buffer.copyWithin(0, this.#start, this.#end);
    this.#end -= this.#start;
    this.#start = 0;
  }
}

/**
 * Encodes a request frame (the server never sends one; for tests and tools).
 *
 * @param op The operation code.
 * @param payload The payload, at most {@linkcode MAX_PAYLOAD} bytes.
 * @returns The frame.
 */
export function encodeRequest(
  op: number,
  payload: Uint8Array = new Uint8Array(0),
): Uint8Array {
  if (payload.length > MAX_PAYLOAD) {
    throw new RangeError(`payload over ${MAX_PAYLOAD} bytes`);
  }
  const frame = new Uint8Array(REQUEST_HEADER + payload.length);
  const view = new DataView(frame.buffer);
  view.setUint8(0, op);
  view.setUint32(4, payload.length, true);
  frame.set(payload, REQUEST_HEADER);
  return frame;
}

/**
 * Encodes a reply frame.
 *
 * @param op The request's operation code.
 * @param result The result (≥ 0), or minus the errno.
 * @param drain Readiness bytes the client must now consume (0 to 2).
 * @param payload The payload, at most {@linkcode MAX_PAYLOAD} bytes.
 * @returns The frame.
 *
 * @example
 * ```ts
 * import { decodeReplyHeader, encodeReply, Op } from "./protocol.ts";
 * import assert from "node:assert/strict";
 * const frame = encodeReply(Op.BIND_VIRQ, -22, 0);
 * assert.deepEqual(decodeReplyHeader(frame), {
 *   op: Op.BIND_VIRQ,
 *   drain: 0,
 *   result: -22,
 *   length: 0,
 * });
 * ```
 */
export function encodeReply(
  op: number,
  result: number,
  drain: number,
  payload: Uint8Array = new Uint8Array(0),
): Uint8Array {
  const frame = new Uint8Array(REPLY_HEADER + payload.length);
  const view = new DataView(frame.buffer);
  view.setUint8(0, op);
  view.setUint8(1, drain);
  view.setInt32(4, result, true);
  view.setUint32(8, payload.length, true);
  frame.set(payload, REPLY_HEADER);
  return frame;
}

/** A reply header, decoded. */
export interface ReplyHeader {
  /** The request's operation code. */
  op: number;
  /** Readiness bytes to consume. */
  drain: number;
  /** Result, or minus the errno. */
  result: number;
  /** Payload bytes that follow. */
  length: number;
}

/**
 * Decodes a reply header (for tests and tools).
 *
 * @param frame At least {@linkcode REPLY_HEADER} bytes.
 * @returns The header.
 */
export function decodeReplyHeader(frame: Uint8Array): ReplyHeader {
  const view = new DataView(frame.buffer, frame.byteOffset, REPLY_HEADER);
  return {
    op: view.getUint8(0),
    drain: view.getUint8(1),
    result: view.getInt32(4, true),
    length: view.getUint32(8, true),
  };
}

/**
 * Encodes a HELLO request payload.
 *
 * @param role {@linkcode ROLE_CONTROL} or {@linkcode ROLE_WAKE}.
 * @param value The domain (control) or the token (wake).
 * @param version The protocol version (default this one).
 * @returns The 16-byte payload.
 */
export function encodeHello(
  role: number,
  value: bigint,
  version: number = PROTOCOL_VERSION,
): Uint8Array {
  const payload = new Uint8Array(HELLO_REQUEST_BYTES);
  const view = new DataView(payload.buffer);
  view.setUint32(0, PROTOCOL_MAGIC, true);
  view.setUint16(4, version, true);
  view.setUint16(6, role, true);
  view.setBigUint64(8, value, true);
  return payload;
}
