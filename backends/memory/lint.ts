/**
 * Lint mode for the `memory` backend: beside a model that keeps running
 * exactly as Xen would, a {@linkcode Linter} records what a program did that
 * loses or strands events on a real host, where Xen says nothing. Turned on
 * with `new MemoryXen({ lint: true })`; read with `MemoryXen.findings()`,
 * printed with {@linkcode formatFindings}, asserted with
 * {@linkcode assertNoFindings}.
 *
 * @example A port read and never unmasked
 * ```ts
 * import { assertNoFindings, MemoryXen } from "../../mod.ts";
 * import assert from "node:assert/strict";
 * const xen = new MemoryXen({ lint: { unmaskWithin: 2 } });
 * {
 *   using h = xen.open(0);
 *   const a = h.bindUnboundPort(0);
 *   h.bindInterdomain(0, a); // pending at bind: delivered, now masked
 *   h.poll();
 *   h.poll();
 *   h.poll(); // two operations later, still not unmasked
 * }
 * assert.deepEqual(xen.findings().map((f) => f.code), [
 *   "forgotten-unmask",
 *   "leaked-port",
 *   "leaked-port",
 * ]);
 * assert.throws(() => assertNoFindings(xen), /forgotten-unmask/);
 * ```
 *
 * @module
 */

import { AssertionError } from "node:assert";
import { ECS } from "./hypervisor/domain.ts";
import type { Hypervisor } from "./hypervisor/hypervisor.ts";

/** The rules lint mode checks. */
export type FindingCode =
  | "forgotten-unmask"
  | "notify-unbound-peer"
  | "ring-overflow"
  | "stale-pending"
  | "leaked-port"
  | "unclosed-handle"
  | "paused-target"
  | "read-would-block";

/** How bad a finding is: `"error"` loses events, `"warning"` may. */
export type FindingSeverity = "error" | "warning";

/**
 * One thing a program did wrong, where and when.
 *
 * @example
 * ```ts
 * import type { Finding } from "./lint.ts";
 * import assert from "node:assert/strict";
 * const f: Finding = {
 *   code: "leaked-port",
 *   severity: "warning",
 *   domain: 0,
 *   port: 9,
 *   handle: 1,
 *   step: 4,
 *   message: "port 9 still bound when handle 1 was closed",
 *   hint: "unbind it before closing the handle",
 * };
 * assert.equal(f.code, "leaked-port");
 * ```
 */
export interface Finding {
  /** The rule. */
  code: FindingCode;
  /** `"error"` or `"warning"`. */
  severity: FindingSeverity;
  /** The domain whose program did it. */
  domain: number;
  /** The port, where one is concerned. */
  port?: number;
  /** The handle (numbered 0, 1, … in the order opened on this host). */
  handle?: number;
  /** The operation that caused it (1 = the host's first operation). */
  step: number;
  /** What happened. */
  message: string;
  /** What to do about it. */
  hint: string;
  /** `ring-overflow`: events dropped so far in this overflow. */
  dropped?: number;
  /** `read-would-block`: how many such reads this handle made. */
  count?: number;
}

/** Lint options, as `MemoryXen`'s `lint` option takes them. */
export interface LintOptions {
  /**
   * Operations after a port's delivery to a handle's ring within which the
   * program must unmask it (`forgotten-unmask`). Default 1000.
   */
  unmaskWithin?: number;
}

/** A delivered port waiting for its unmask. */
interface Fired {
  handle: number;
  domain: number;
  port: number;
  step: number;
  done: boolean;
}

/** What the linter keeps of an open handle. */
interface OpenHandle {
  domain: number;
  step: number;
  fired: Map<number, Fired>;
  overflow: Finding | undefined;
  /** A readiness wait (`readable`) since the last read that gave entries. */
  waited: boolean;
  /** This handle's `read-would-block` finding, counted on. */
  blocked: Finding | undefined;
}

/**
 * What else watches a host's operations: fault injection counts steps with
 * the linter, and a host with faults but no lint records no findings.
 */
export interface LinterHooks {
  /** Record findings (default true). */
  record?: boolean;
  /** Called at the start of every operation, with its step number. */
  onStep?: (step: number) => void;
}

/**
 * The lint state of one host. A device calls its hooks only when lint is
 * on; every hook that is an operation of the program advances
 * {@linkcode Linter.step}.
 *
 * @example
 * ```ts
 * import { Linter } from "./lint.ts";
 * import { Hypervisor } from "./hypervisor/hypervisor.ts";
 * import assert from "node:assert/strict";
 * const xen = new Hypervisor();
 * xen.createDomain({ domain: 0, privileged: true });
 * const linter = new Linter(xen);
 * const h = linter.opened(0);
 * linter.op();
 * linter.closed(h, 0, [5]);
 * assert.equal(linter.findings()[0].code, "leaked-port");
 * ```
 */
export class Linter {
  /** Operations so far. */
  step = 0;
  readonly #xen: Hypervisor;
  readonly #within: number;
  readonly #findings: Finding[] = [];
  readonly #handles = new Map<number, OpenHandle>();
  #nextHandle = 0;
  /** Delivered ports in delivery order, checked from the head. */
  #queue: Fired[] = [];
  #head = 0;
  /** Per domain, ports closed with their pending bit set. */
  readonly #closedPending = new Map<number, Map<number, number>>();
  readonly #record: boolean;
  readonly #onStep: ((step: number) => void) | undefined;

  /**
   * A linter for one host.
   *
   * @param xen The hypervisor whose state the rules look at.
   * @param options The limits.
   * @param hooks Whether to record findings, and who else counts steps.
   */
  constructor(
    xen: Hypervisor,
    options: LintOptions = {},
    hooks: LinterHooks = {},
  ) {
    const within = options.unmaskWithin ?? 1000;
    if (!Number.isSafeInteger(within) || within < 1) {
      throw new RangeError(
        `lint.unmaskWithin must be a positive integer, got ${within}`,
      );
    }
    this.#xen = xen;
    this.#within = within;
    this.#record = hooks.record ?? true;
    this.#onStep = hooks.onStep;
  }

  /**
   * The findings so far; with `final`, also every handle still open.
   *
   * @param options `final: true` at the end of a program.
   * @returns A copy, in the order found.
   */
  findings(options: { final?: boolean } = {}): Finding[] {
    const all = this.#findings.map((f) => ({ ...f }));
    if (options.final && this.#record) {
      for (const [handle, h] of this.#handles) {
        if (this.#xen.domain(h.domain) === undefined) continue;
        all.push({
          code: "unclosed-handle",
          severity: "warning",
          domain: h.domain,
          handle,
          step: this.step,
          message:
            `handle ${handle} (domain ${h.domain}), opened at step ${h.step}, was never closed`,
          hint: "close it, or open it with `using`/`await using`",
        });
      }
    }
    return all;
  }

  #add(finding: Finding): Finding {
    if (this.#record) this.#findings.push(finding);
    return finding;
  }

  /**
   * One operation of the program: counts it, lets fault injection act
   * before it runs, and checks the unmask window.
   */
  op(): void {
    const step = ++this.step;
    this.#onStep?.(step);
    const queue = this.#queue;
    while (this.#head < queue.length) {
      const f = queue[this.#head];
      if (!f.done && step - f.step <= this.#within) break;
      this.#head++;
      if (f.done) continue;
      f.done = true;
      this.#handles.get(f.handle)?.fired.delete(f.port);
      this.#add({
        code: "forgotten-unmask",
        severity: "error",
        domain: f.domain,
        port: f.port,
        handle: f.handle,
        step: f.step,
        message: `port ${f.port} was delivered to handle ${f.handle} at ` +
          `step ${f.step} and still not unmasked ${this.#within} ` +
          "operations later: it gets no more events",
        hint: "unmask the port (handle.unmask(port)) after handling each event",
      });
    }
    if (this.#head > 1024 && this.#head * 2 > queue.length) {
      this.#queue = queue.slice(this.#head);
      this.#head = 0;
    }
  }

  /**
   * A handle was opened.
   *
   * @param domain Its domain.
   * @returns Its number.
   */
  opened(domain: number): number {
    const handle = this.#nextHandle++;
    this.#handles.set(handle, {
      domain,
      step: this.step,
      fired: new Map(),
      overflow: undefined,
      waited: false,
      blocked: undefined,
    });
    return handle;
  }

  /** The number of the handle opened last (-1 before the first). */
  get lastHandle(): number {
    return this.#nextHandle - 1;
  }

  /**
   * The handle waits for its ring to become readable (`poll(2)` on the
   * device, the handle's `next()` and async iterator).
   *
   * @param handle The handle.
   */
  waiting(handle: number): void {
    const h = this.#handles.get(handle);
    if (h !== undefined) h.waited = true;
  }

  /**
   * The raw `read()` of a handle returned entries or found the ring empty.
   * Empty, with no readiness wait since the last read that gave entries, is
   * `read-would-block`: on a blocking file descriptor (libxenevtchn's
   * default, `xenevtchn_pending`) Linux's `evtchn_read` sleeps there until
   * an event comes, forever if this program is the one to send it.
   *
   * @param handle The handle.
   * @param empty Whether the ring was empty (`EAGAIN` here).
   */
  read(handle: number, empty: boolean): void {
    const h = this.#handles.get(handle);
    if (h === undefined) return;
    if (!empty) {
      h.waited = false;
      return;
    }
    if (h.waited) return;
    const b = h.blocked;
    if (b !== undefined) {
      b.count = (b.count ?? 1) + 1;
      b.message = blockMessage(handle, b.step, b.count);
      return;
    }
    h.blocked = this.#add({
      code: "read-would-block",
      severity: "warning",
      domain: h.domain,
      handle,
      step: this.step,
      message: blockMessage(handle, this.step, 1),
      hint: "wait for the handle first (await handle.next(), or poll(2) " +
        "the fd before xenevtchn_pending()), or open the fd O_NONBLOCK " +
        "and handle EAGAIN",
      count: 1,
    });
  }

  /**
   * A port fired into a handle's ring and is masked until written back.
   *
   * @param handle The handle.
   * @param port The port.
   */
  delivered(handle: number, port: number): void {
    const h = this.#handles.get(handle);
    if (h === undefined || h.fired.has(port)) return;
    const f: Fired = {
      handle,
      domain: h.domain,
      port,
      step: this.step,
      done: false,
    };
    h.fired.set(port, f);
    this.#queue.push(f);
  }

  /**
   * The program unmasked (wrote back) a delivered port.
   *
   * @param handle The handle.
   * @param port The port.
   */
  unmasked(handle: number, port: number): void {
    const h = this.#handles.get(handle);
    const f = h?.fired.get(port);
    if (f === undefined) return;
    f.done = true;
    h!.fired.delete(port);
  }

  /**
   * An event was dropped: the handle's ring was full.
   *
   * @param handle The handle.
   * @param port The port whose event was lost.
   */
  dropped(handle: number, port: number): void {
    const h = this.#handles.get(handle);
    if (h === undefined) return;
    const o = h.overflow;
    if (o !== undefined) {
      o.dropped = (o.dropped ?? 0) + 1;
      o.message = overflowMessage(handle, o.dropped);
      return;
    }
    h.overflow = this.#add({
      code: "ring-overflow",
      severity: "error",
      domain: h.domain,
      port,
      handle,
      step: this.step,
      message: overflowMessage(handle, 1),
      hint: "read the ring more often and unmask after each event; " +
        "after EFBIG, reset the handle and rescan the ports' state",
      dropped: 1,
    });
  }

  /**
   * The handle's ring was reset: a later overflow is a new one.
   *
   * @param handle The handle.
   */
  ringReset(handle: number): void {
    const h = this.#handles.get(handle);
    if (h !== undefined) h.overflow = undefined;
  }

  /**
   * The program notified a port it owns: is anyone listening?
   *
   * @param handle The handle, or `undefined` for an `EVTCHNOP_send` issued
   * directly (a scenario's step).
   * @param domain The sending domain.
   * @param port The port.
   */
  notified(handle: number | undefined, domain: number, port: number): void {
    const d = this.#xen.domain(domain);
    if (d === undefined || port >= d.validEvtchns) return;
    const state = d.portState(port);
    if (state === ECS.UNBOUND) {
      this.#add({
        code: "notify-unbound-peer",
        severity: "error",
        domain,
        port,
        handle,
        step: this.step,
        message: `${
          handle === undefined ? "send" : "notify"
        } on port ${port}, whose remote end (domain ${
          d.portRemoteDomain(port)
        }) is not bound or was closed: Xen drops the event silently`,
        hint: "notify only after the peer has bound (e.g. after its " +
          "first event or a handshake in xenstore); check for a peer that " +
          "went away",
      });
      return;
    }
    const target = state === ECS.INTERDOMAIN
      ? d.portRemoteDomain(port)
      : domain;
    const rd = this.#xen.domain(target);
    if (rd !== undefined && (rd.pauseCount > 0 || rd.dying)) {
      this.#add({
        code: "paused-target",
        severity: "warning",
        domain,
        port,
        handle,
        step: this.step,
        message: `${
          handle === undefined ? "send" : "notify"
        } on port ${port} to domain ${target}, which is ${
          rd.dying ? "being destroyed" : "paused"
        }: nothing will handle it until it runs`,
        hint: "wait for the domain to be unpaused, or watch VIRQ_DOM_EXC " +
          "and stop talking to a dying peer",
      });
    }
  }

  /**
   * A port is about to be closed (unbind or handle close, or an
   * `EVTCHNOP_close` issued directly).
   *
   * @param handle The handle, if a handle held it.
   * @param domain The port's domain.
   * @param port The port.
   */
  unbinding(handle: number | undefined, domain: number, port: number): void {
    if (handle !== undefined) this.unmasked(handle, port);
    const d = this.#xen.domain(domain);
    if (
      d !== undefined && port < d.validEvtchns &&
      d.portState(port) !== ECS.FREE &&
      d.abi.isPending(port)
    ) {
      let ports = this.#closedPending.get(domain);
      if (ports === undefined) {
        this.#closedPending.set(domain, ports = new Map());
      }
      ports.set(port, this.step);
    }
  }

  /**
   * A port was allocated in a domain (by a handle or a hypercall).
   *
   * @param handle The handle, if a handle bound it.
   * @param domain The domain.
   * @param port The port.
   */
  allocated(handle: number | undefined, domain: number, port: number): void {
    const ports = this.#closedPending.get(domain);
    const closedAt = ports?.get(port);
    if (closedAt === undefined) return;
    ports!.delete(port);
    this.#add({
      code: "stale-pending",
      severity: "error",
      domain,
      port,
      handle,
      step: this.step,
      message: `port ${port} was closed at step ${closedAt} with an event ` +
        "pending and has now been reallocated: that event is lost",
      hint: "drain and handle a port's pending events before unbinding it",
    });
  }

  /**
   * A handle was closed with these ports still bound.
   *
   * @param handle The handle.
   * @param domain The handle's domain.
   * @param ports The ports it still held.
   */
  closed(handle: number, domain: number, ports: number[]): void {
    // A handle in a destroyed domain went with it: nothing leaked.
    const gone = this.#xen.domain(domain) === undefined;
    for (const port of gone ? [] : ports) {
      this.#add({
        code: "leaked-port",
        severity: "warning",
        domain,
        port,
        handle,
        step: this.step,
        message: `port ${port} was still bound when handle ${handle} ` +
          "was closed",
        hint: "unbind every port before closing its handle",
      });
    }
    const h = this.#handles.get(handle);
    if (h !== undefined) { for (const f of h.fired.values()) f.done = true; }
    this.#handles.delete(handle);
  }
}

function blockMessage(handle: number, step: number, count: number): string {
  return `handle ${handle} read an empty ring without waiting for it to ` +
    `be readable (first at step ${step}${
      count === 1 ? "" : `, ${count} times`
    }): on a blocking fd Linux would block in read() here`;
}

function overflowMessage(handle: number, dropped: number): string {
  return `the ring of handle ${handle} overflowed (EFBIG): ${dropped} ` +
    `event${dropped === 1 ? "" : "s"} dropped`;
}

/**
 * Prints findings as a table (one line each, columns aligned) or as JSON.
 *
 * @param findings The findings.
 * @param format `"table"` (default) or `"json"` (an array, one finding a line).
 * @returns The text, without a final newline.
 *
 * @example
 * ```ts
 * import { formatFindings } from "./lint.ts";
 * import assert from "node:assert/strict";
 * const findings = [{
 *   code: "leaked-port" as const,
 *   severity: "warning" as const,
 *   domain: 0,
 *   port: 9,
 *   handle: 1,
 *   step: 4,
 *   message: "port 9 was still bound when handle 1 was closed",
 *   hint: "unbind every port before closing its handle",
 * }];
 * const table = formatFindings(findings);
 * assert.match(table.split("\n")[0], /^STEP +SEVERITY +CODE +DOM +HANDLE +PORT +MESSAGE/);
 * assert.match(table, /leaked-port +0 +1 +9 +port 9 was still bound/);
 * assert.match(table, /hint: unbind every port/);
 * assert.deepEqual(JSON.parse(formatFindings(findings, "json")), findings);
 * assert.equal(formatFindings([]), "no findings");
 * ```
 */
export function formatFindings(
  findings: readonly Finding[],
  format: "table" | "json" = "table",
): string {
  if (format === "json") {
    if (findings.length === 0) return "[]";
    return "[\n" + findings.map((f) => JSON.stringify(f)).join(",\n") + "\n]";
  }
  if (findings.length === 0) return "no findings";
  const rows = [
    ["STEP", "SEVERITY", "CODE", "DOM", "HANDLE", "PORT", "MESSAGE"],
    ...findings.map((f) => [
      String(f.step),
      f.severity,
      f.code,
      String(f.domain),
      f.handle === undefined ? "-" : String(f.handle),
      f.port === undefined ? "-" : String(f.port),
      f.message,
    ]),
  ];
  const widths = rows[0].map((_, i) =>
    Math.max(...rows.map((row) => row[i].length))
  );
  const pad = " ".repeat(widths.slice(0, 6).reduce((a, b) => a + b + 2, 0));
  const lines: string[] = [];
  rows.forEach((row, i) => {
    lines.push(
      row.map((cell, c) => c === 6 ? cell : cell.padEnd(widths[c])).join("  "),
    );
    if (i > 0) lines.push(`${pad}hint: ${findings[i - 1].hint}`);
  });
  return lines.join("\n");
}

/** Anything that reports findings, as `MemoryXen` does. */
export interface HasFindings {
  /** The findings; with `final`, also what is still open. */
  findings(options?: { final?: boolean }): Finding[];
}

/**
 * Fails (throws an `AssertionError` listing them as a table) when a host in
 * lint mode has findings. With `final: true`, handles still open count too:
 * call it so after the handles' scope has ended.
 *
 * @param xen The host (`new MemoryXen({ lint: true })`).
 * @param options `final`: also report handles never closed.
 * @throws {AssertionError} When there are findings.
 *
 * @example
 * ```ts
 * import { assertNoFindings, MemoryXen } from "../../mod.ts";
 * import assert from "node:assert/strict";
 * const xen = new MemoryXen({ lint: true });
 * {
 *   await using h = xen.open(0);
 *   const a = h.bindUnboundPort(0);
 *   const b = h.bindInterdomain(0, a);
 *   assert.equal(await h.next(), b);
 *   h.unmask(b);
 *   h.unbind(b);
 *   h.unbind(a);
 * }
 * assertNoFindings(xen, { final: true });
 * const leaky = new MemoryXen({ lint: true });
 * leaky.open(0);
 * assert.throws(() => assertNoFindings(leaky, { final: true }), /unclosed-handle/);
 * ```
 */
export function assertNoFindings(
  xen: HasFindings,
  options: { final?: boolean } = {},
): void {
  const findings = xen.findings(options);
  if (findings.length === 0) return;
  throw new AssertionError({
    message: `${findings.length} lint finding${
      findings.length === 1 ? "" : "s"
    }:\n${formatFindings(findings)}`,
  });
}
