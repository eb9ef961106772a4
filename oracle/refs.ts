/**
 * Turning a trace's port and domain references into numbers on one host,
 * and numbers back into references, so that a trace recorded where the
 * kernel holds ports 1–26 replays where it holds 1–13.
 *
 * @module
 */

import { DOMID_SELF } from "../mod.ts";
import type { DomainRef, JsonValue, PortRef } from "./trace.ts";

/** Xen's port storage grows in buckets of this many ports. */
const BUCKET = 64;
/**
 * Ports at or above this are written `abs` when a program's own numbers are
 * encoded (the 2-level ABI's limit; a FIFO dom0's device limit is lower).
 */
const ABS_FROM = 4096;

/**
 * A reference the oracle cannot turn into a number on this run (a `rel`
 * port before the trace allocated any in that domain, say). Steps that hit
 * one get the outcome code `ORACLE`.
 *
 * @example
 * ```ts
 * import { RefError } from "./refs.ts";
 * import assert from "node:assert/strict";
 * const error = new RefError("no base yet");
 * assert.ok(error instanceof Error);
 * assert.equal(error.message, "no base yet");
 * ```
 */
export class RefError extends Error {
  /**
   * Creates the error.
   *
   * @param message What cannot be resolved.
   */
  constructor(message: string) {
    super(message);
    this.name = "RefError";
  }
}

interface PortSpace {
  base?: number;
  max?: number;
}

/**
 * The mapping between references and numbers for one run: the local
 * domain's id, the peer's (created on first use), and per domain the first
 * port the trace allocated there.
 *
 * @example
 * ```ts
 * import { RefContext } from "./refs.ts";
 * import assert from "node:assert/strict";
 * const refs = new RefContext(0, 1);
 * refs.allocated("local", 27);
 * assert.equal(refs.port("local", { rel: 2 }), 29);
 * assert.deepEqual(refs.encodePort("local", 28), { rel: 1 });
 * assert.deepEqual(refs.encodePort("local", 70000), { abs: 70000 });
 * ```
 */
export class RefContext {
  /** The local domain's id. */
  readonly local: number;
  #createPeer: () => number;
  #peer: number | undefined;
  #spaces = new Map<string, PortSpace>();

  /**
   * Creates the mapping for one run.
   *
   * @param local The local domain's id.
   * @param peer The peer domain's id, or a function that makes the peer,
   * called once, on the first reference to it.
   */
  constructor(local: number, peer: number | (() => number)) {
    this.local = local;
    if (typeof peer === "number") {
      this.#peer = peer;
      this.#createPeer = () => peer;
    } else {
      this.#createPeer = peer;
    }
  }

  /** The peer's id, creating the peer now if needed. */
  peer(): number {
    this.#peer ??= this.#createPeer();
    return this.#peer;
  }

  /** The peer's id if it exists yet. */
  get peerIfCreated(): number | undefined {
    return this.#peer;
  }

  /**
   * A domain reference as a number.
   *
   * @param ref The reference.
   * @returns The id.
   */
  domain(ref: DomainRef): number {
    if ("abs" in ref) return ref.abs;
    return ref.dom === "local" ? this.local : this.peer();
  }

  /**
   * The port space of a domain id (`DOMID_SELF` is the local domain).
   *
   * @param domain The id.
   * @returns Its space.
   */
  spaceOf(domain: number): string {
    if (domain === this.local || domain === DOMID_SELF) return "local";
    if (domain === this.#peer) return "peer";
    return `dom${domain}`;
  }

  /**
   * A port reference as a number, in a domain's space.
   *
   * @param space The space.
   * @param ref The reference.
   * @returns The port.
   * @throws {RefError} when the space has no base (or no ports) yet.
   */
  port(space: string, ref: PortRef): number {
    if ("abs" in ref) return ref.abs;
    const s = this.#spaces.get(space);
    if ("rel" in ref) {
      if (s?.base === undefined) {
        throw new RefError(
          `{"rel":${ref.rel}} in ${space} before the trace allocated a port there`,
        );
      }
      const port = s.base + ref.rel;
      if (port < 0) throw new RefError(`{"rel":${ref.rel}} is below port 0`);
      return port;
    }
    if (s?.max === undefined) {
      throw new RefError(
        `{"bucketEnd":${ref.bucketEnd}} in ${space} before any port was seen there`,
      );
    }
    const port = Math.ceil((s.max + 1) / BUCKET) * BUCKET + ref.bucketEnd;
    if (port < 0) {
      throw new RefError(`{"bucketEnd":${ref.bucketEnd}} is below port 0`);
    }
    return port;
  }

  /**
   * Notes a port the trace just allocated; the first one in a space becomes
   * its base.
   *
   * @param space The space.
   * @param port The port.
   */
  allocated(space: string, port: number): void {
    const s = this.#space(space);
    s.base ??= port;
    this.seen(space, port);
  }

  /**
   * Notes a port that exists in a space (for `bucketEnd`).
   *
   * @param space The space.
   * @param port The port.
   */
  seen(space: string, port: number): void {
    const s = this.#space(space);
    if (s.max === undefined || port > s.max) s.max = port;
  }

  #space(space: string): PortSpace {
    let s = this.#spaces.get(space);
    if (s === undefined) this.#spaces.set(space, s = {});
    return s;
  }

  /**
   * A port number as a reference: `rel` from the space's base when it has
   * one and the port is at or above it and below 4096 (or was seen), `abs`
   * otherwise.
   *
   * @param space The space.
   * @param port The port.
   * @returns The reference.
   */
  encodePort(space: string, port: number): PortRef {
    const s = this.#spaces.get(space);
    if (
      s?.base !== undefined && port >= s.base &&
      (port < ABS_FROM || (s.max !== undefined && port <= s.max))
    ) {
      return { rel: port - s.base };
    }
    return { abs: port };
  }

  /**
   * A domain id as a reference.
   *
   * @param domain The id.
   * @returns `local`, `peer`, or `abs`.
   */
  encodeDomain(domain: number): DomainRef {
    if (domain === this.local) return { dom: "local" };
    if (domain === this.#peer) return { dom: "peer" };
    return { abs: domain };
  }

  /**
   * An `EVTCHNOP_status` result with its domain and port encoded.
   *
   * @param status The result.
   * @returns JSON for the trace.
   */
  encodeStatus(status: Record<string, unknown>): JsonValue {
    const out: Record<string, JsonValue> = {};
    for (const [key, value] of Object.entries(status)) {
      out[key] = value as JsonValue;
    }
    if (typeof status.remoteDomain === "number") {
      out.remoteDomain = this.encodeDomain(status.remoteDomain);
    }
    if (
      typeof status.remotePort === "number" &&
      typeof status.remoteDomain === "number"
    ) {
      const space = this.spaceOf(status.remoteDomain);
      this.seen(space, status.remotePort);
      out.remotePort = this.encodePort(space, status.remotePort);
    }
    return out;
  }
}
