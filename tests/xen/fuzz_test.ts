// The real-Xen fuzz stage: seeded hostile inputs through the `linux` backend
// (`openLinuxHandle()`, /dev/xen/evtchn) and privcmd (`openPrivcmd()`) in
// dom0. tests/robustness/fuzz_test.ts fuzzes the model; this sends the same
// kind of abuse to the real kernel driver and hypervisor: bad ports (0,
// beyond every limit, the kernel's, another handle's, closed ones, 2^32-1),
// bad domains (DOMID_SELF, 999, DOMID_XEN, 0xffff), bad VIRQs (>= 24, the
// kernel's TIMER), reads and writes of odd sizes and odd buffers (0..7 bytes,
// 4097, offset views, SharedArrayBuffer, detached), closed handles, several
// waiters at once, close during a parked wait, and privcmd status /
// alloc_unbound / reset with bad arguments.
//
// Every input must end in success or an EventChannelError naming the
// operation with the errno Linux/Xen give (predicted exactly where the rule
// is simple), a refusal must leave the port it named as it was (an
// EVTCHNOP_status of it), and a full status scan every SCAN_EVERY steps must
// equal the table this test expects. At the end: the same open fds as before,
// the same dom0 port table as before (snapshotHost), and a loopback round
// trip still works (dom0 is alive).
//
// Safety: never resets dom0 (PrivcmdHypercalls.reset refuses it anyway),
// never closes or unbinds a port it did not make, never binds to the
// kernel's unbound ports, and restricts only its own dedicated handle.
//
// Environment (bounds in brackets): EVTCHN_FUZZ_SEED [0..2^32-1, default
// 20261211], EVTCHN_FUZZ_COUNT hostile inputs [1..200000, default 20000;
// about 4 ms each under QEMU TCG, so 200000 is ~15 min]. The seed is printed
// on failure. Ignored, with the reason in the name, where there is no Xen
// device.

import assert from "node:assert/strict";
import { prng } from "../../oracle/mod.ts";
import { envInteger } from "./_env.ts";
import {
  DOMID_SELF,
  EventChannelError,
  type EventChannelHandle,
  type HostPort,
  linuxDeviceStatus,
  openLinuxHandle,
  openPrivcmd,
  type PrivcmdHypercalls,
  snapshotHost,
} from "../../mod.ts";
import { DOMID_INVALID, DOMID_IO, DOMID_XEN } from "../../xen/domid.ts";

const evtchn = linuxDeviceStatus();
const privcmd = linuxDeviceStatus({ path: "/dev/xen/privcmd" });
const available = evtchn.available && privcmd.available;
const reason = evtchn.available ? privcmd.reason : evtchn.reason;

const SEED = envInteger("EVTCHN_FUZZ_SEED", 20261211, 0, 0xffff_ffff);
const COUNT = envInteger("EVTCHN_FUZZ_COUNT", 20_000, 1, 200_000);
/** The bound of every wait: an event crosses vCPUs in tens of ms under TCG. */
const WAIT_MS = 5000;
/** Steps between full status scans of dom0 (~150 hypercalls each). */
const SCAN_EVERY = 500;
/** Transient ports a handle keeps before unbinding its oldest. */
const MAX_TRANSIENT = 6;
/** Problems recorded before the run stops early (the first ones matter). */
const MAX_PROBLEMS = 20;

/** Values the argument checks must refuse before any ioctl (EINVAL). */
const NOT_UINT = [
  -1,
  -0.5,
  0.5,
  NaN,
  Infinity,
  -Infinity,
  2 ** 32,
  2 ** 53,
  "7",
  null,
  undefined,
  {},
  7n,
] as unknown as number[];

/** A port-shaped number (uint32) or not. */
function isUint32(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 0 &&
    value <= 0xffff_ffff;
}

function isDomid(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 0 &&
    value <= 0xffff;
}

/** One port's status, with or without its vCPU, as a comparable string. */
function statusKey(status: object, withVcpu: boolean): string {
  const entries = Object.entries(status).filter(([k]) =>
    k !== "port" && (withVcpu || k !== "vcpu")
  );
  entries.sort(([x], [y]) => (x < y ? -1 : 1));
  return JSON.stringify(entries);
}

interface Slot {
  name: string;
  handle: EventChannelHandle;
  /** Ports this handle owns now. */
  owned: Set<number>;
  /** Every port it ever owned: entries of unbound ports stay in the ring. */
  ever: Set<number>;
  /** Owned ports the fuzz may unbind (oldest first). */
  transient: number[];
  /** Restricted to domain 999 (IOCTL_EVTCHN_RESTRICT_DOMID). */
  restricted: boolean;
}

interface Expected {
  key: string;
  /** Kernel ports are compared with their vCPU; ours without (Linux picks). */
  withVcpu: boolean;
}

type Outcome =
  | { ok: true; value: unknown }
  | { ok: false; error: unknown };

function attempt(fn: () => unknown): Outcome {
  try {
    return { ok: true, value: fn() };
  } catch (error) {
    return { ok: false, error };
  }
}

function describe(value: unknown): string {
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "object" && value !== null) return "{}";
  return String(value);
}

function fdCount(): number {
  return [...Deno.readDirSync("/proc/self/fd")].length;
}

/** Resolves true when `promise` settles within `ms`, false otherwise. */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test({
  name:
    `real-Xen fuzz: ${COUNT} hostile inputs through the linux backend and ` +
    `privcmd, seed ${SEED}: typed errors, no state change on refusal, no ` +
    `leaked fds or ports, dom0 alive` +
    (available ? "" : ` [ignored: ${reason ?? "no Xen device"}]`),
  ignore: !available,
  async fn(): Promise<void> {
    const rand = prng(SEED);
    const pick = <T>(list: readonly T[]): T =>
      list[Math.floor(rand() * list.length)];

    // Warm up every path whose first use might open something lazily (libc,
    // privcmd's buffer, a parked poll on the blocking pool), so the fd count
    // below is the steady one.
    {
      using xen = openPrivcmd();
      xen.status(DOMID_SELF, 1);
      await using h = openLinuxHandle();
      const port = h.bindUnboundPort(0);
      await assert.rejects(
        h.next({ signal: AbortSignal.timeout(50) }),
        { name: "TimeoutError" },
      );
      h.unbind(port);
    }
    const before = await snapshotHost();
    const fdsBefore = fdCount();
    const abi = before.abi === "fifo" ? "FIFO" : "2-level";
    const nrChannels = before.nrChannels;

    const problems: string[] = [];
    let step = 0; // every operation, hostile or not
    let inputs = 0; // hostile inputs
    let untyped = 0;
    let crashes = 0; // waits past their bound (hangs, lost wake-ups)
    let wrong = 0; // typed, but the wrong op/errno/result or a state change
    let accepted = 0;
    let refused = 0;
    let overflows = 0;
    let scans = 0;
    const problem = (kind: "untyped" | "crash" | "wrong", text: string) => {
      if (kind === "untyped") untyped++;
      else if (kind === "crash") crashes++;
      else wrong++;
      if (problems.length < MAX_PROBLEMS) {
        problems.push(`#${step} (input ${inputs}) ${kind}: ${text}`);
      }
    };

    using xen = openPrivcmd();
    const closedXen = openPrivcmd();
    closedXen.close();

    // The table this test expects dom0 to have: the kernel's ports as they
    // were, plus ours as Xen reported them right after each change.
    const expected = new Map<number, Expected>();
    const kernel = new Set<number>();
    for (const p of before.ports) {
      expected.set(p.port, { key: statusKey(p, true), withVcpu: true });
      kernel.add(p.port);
    }
    const kernelUnbound = new Set(
      before.ports.filter((p) => p.status === "unbound").map((p) => p.port),
    );
    const closedPorts: number[] = [];

    /** Re-reads one of our ports after a change we made to it. */
    const refresh = (port: number): void => {
      const status = xen.status(DOMID_SELF, port);
      if (status.status === "closed") {
        if (expected.delete(port)) closedPorts.push(port);
        if (closedPorts.length > 32) closedPorts.shift();
      } else {expected.set(port, {
          key: statusKey(status, false),
          withVcpu: false,
        });}
    };
    /** The interdomain peer in dom0 of one of our ports, if it has one. */
    const peerOf = (port: number): number | undefined => {
      const entry = expected.get(port);
      if (entry === undefined || entry.withVcpu) return undefined;
      const fields = Object.fromEntries(JSON.parse(entry.key));
      return fields.status === "interdomain" && fields.remoteDomain === 0
        ? fields.remotePort
        : undefined;
    };
    /** A refusal must leave the port it named as it was. */
    const unchanged = (port: unknown, what: string): void => {
      if (!isUint32(port) || port > 0xffff) return;
      const outcome = attempt(() => xen.status(DOMID_SELF, port));
      const want = expected.get(port);
      if (!outcome.ok) {
        const error = outcome.error;
        if (!(error instanceof EventChannelError)) {
          problem("untyped", `status(${port}) after ${what}: ${error}`);
        } else if (error.code !== "EINVAL" || want !== undefined) {
          problem("wrong", `status(${port}) after ${what}: ${error.message}`);
        }
        return;
      }
      const status = outcome.value as { status: string };
      const got = status.status === "closed"
        ? undefined
        : statusKey(status, want?.withVcpu ?? false);
      if (got !== want?.key) {
        problem(
          "wrong",
          `${what} was refused but port ${port} changed: ${
            want?.key ?? "closed"
          } -> ${got ?? "closed"}`,
        );
      }
    };
    /** The whole dom0 table against the expected one. */
    const scan = (label: string): void => {
      scans++;
      const seen = new Set<number>();
      for (let port = 1; port < nrChannels; port++) {
        const outcome = attempt(() => xen.status(DOMID_SELF, port));
        if (!outcome.ok) {
          const error = outcome.error;
          if (error instanceof EventChannelError && error.code === "EINVAL") {
            break; // Xen's storage edge
          }
          problem("untyped", `scan ${label}: status(${port}): ${error}`);
          return;
        }
        const status = outcome.value as { status: string };
        if (status.status === "closed") continue;
        seen.add(port);
        const want = expected.get(port);
        const got = statusKey(status, want?.withVcpu ?? false);
        if (want === undefined) {
          problem("wrong", `scan ${label}: port ${port} leaked: ${got}`);
        } else if (got !== want.key) {
          problem(
            "wrong",
            `scan ${label}: port ${port} is ${got}, expected ${want.key}`,
          );
        }
      }
      for (const port of expected.keys()) {
        if (!seen.has(port)) {
          problem(
            "wrong",
            `scan ${label}: port ${port} vanished (${expected.get(port)!.key})`,
          );
        }
      }
    };

    const open = (name: string): Slot => ({
      name,
      handle: openLinuxHandle(),
      owned: new Set(),
      ever: new Set(),
      transient: [],
      restricted: false,
    });
    const adopt = (slot: Slot, port: number, transient: boolean): void => {
      if (expected.has(port)) {
        problem("wrong", `${slot.name} got port ${port}, which is in use`);
      }
      slot.owned.add(port);
      slot.ever.add(port);
      if (transient) slot.transient.push(port);
      refresh(port);
      if (!expected.has(port)) {
        problem("wrong", `${slot.name} bound port ${port} but Xen says closed`);
      }
    };
    /** A valid unbind of one of our ports; its peer becomes unbound. */
    const release = (slot: Slot, port: number): void => {
      const peer = peerOf(port);
      step++;
      const outcome = attempt(() => slot.handle.unbind(port));
      if (!outcome.ok) {
        problem(
          "wrong",
          `${slot.name}.unbind(${port}) of its own port: ${outcome.error}`,
        );
        return;
      }
      slot.owned.delete(port);
      slot.transient = slot.transient.filter((p) => p !== port);
      refresh(port);
      if (peer !== undefined) refresh(peer);
      if (expected.has(port)) problem("wrong", `unbind(${port}) left it open`);
    };

    const A = open("A");
    const B = open("B");
    const R = open("R");
    const C = open("C"); // closed below: every method must say EBADF
    const slots = [A, B, R];
    const a = A.handle.bindUnboundPort(0);
    adopt(A, a, false);
    const b = B.handle.bindInterdomain(0, a);
    adopt(B, b, false);
    refresh(a);
    const offered999 = A.handle.bindUnboundPort(999); // for a domain that is not there
    adopt(A, offered999, false);
    const r = R.handle.bindUnboundPort(0);
    adopt(R, r, false);
    R.handle.restrictDomain(999);
    R.restricted = true;
    await C.handle.close();

    // Domains that must not exist: check, so that no refused call can
    // touch a real domain (a zombie from an earlier test, say).
    const absent = [999, 0x7fef, DOMID_IO, DOMID_XEN, DOMID_INVALID, 0xffff]
      .filter((dom) => {
        const outcome = attempt(() => xen.status(dom, 1));
        return !outcome.ok && outcome.error instanceof EventChannelError &&
          outcome.error.code === "ESRCH";
      });
    assert.ok(
      absent.includes(999) && absent.includes(0xffff),
      `absent domains: ${absent}`,
    );
    const domains: number[] = [0, DOMID_SELF, ...absent];
    const kernelPorts = [...kernel];
    const fixedBad = [
      0,
      before.validPorts,
      before.validPorts + 1,
      nrChannels - 1,
      nrChannels,
      nrChannels + 1,
      4095,
      4096,
      0xffff,
      0x10000,
      0x7fff_ffff,
      0x8000_0000,
      0xffff_fffe,
      0xffff_ffff,
    ];
    const ownerOf = (port: number): Slot | undefined =>
      slots.find((slot) => slot.owned.has(port));

    /** A port that is wrong for most callers. */
    const badPort = (): number => {
      const x = rand();
      if (x < 0.1) return pick(NOT_UINT);
      if (x < 0.35) return pick(fixedBad);
      if (x < 0.55) return pick(kernelPorts);
      if (x < 0.65 && closedPorts.length > 0) return pick(closedPorts);
      if (x < 0.9) {
        const slot = pick(slots);
        return pick([...slot.owned]);
      }
      return Math.floor(rand() * (nrChannels + 64));
    };
    const badDomain = (): number =>
      rand() < 0.15 ? pick(NOT_UINT) : pick(domains);
    /** Any handle but the port's owner (notify/unbind must then refuse). */
    const actorFor = (port: number): Slot => {
      const owner = isUint32(port) ? ownerOf(port) : undefined;
      const others = slots.filter((slot) => slot !== owner);
      return pick(others);
    };

    const checkRefusal = (
      what: string,
      outcome: Outcome,
      op: string,
      codes: readonly string[],
    ): boolean => {
      if (outcome.ok) {
        problem(
          "wrong",
          `${what} succeeded (${
            describe(outcome.value)
          }), expected ${op} ${codes}`,
        );
        return false;
      }
      const error = outcome.error;
      if (!(error instanceof EventChannelError)) {
        problem("untyped", `${what} threw ${error}`);
        return false;
      }
      refused++;
      if (
        error.op !== op || !codes.includes(error.code) || !(error.errno > 0)
      ) {
        problem("wrong", `${what}: ${error.message}, expected ${op} ${codes}`);
        return false;
      }
      return true;
    };
    /** Success (then `onOk`) or a typed refusal with one of `codes`. */
    const either = (
      what: string,
      outcome: Outcome,
      op: string,
      codes: readonly string[],
      onOk: (value: unknown) => void,
    ): void => {
      if (outcome.ok) {
        accepted++;
        onOk(outcome.value);
      } else checkRefusal(what, outcome, op, codes);
    };

    // ------------------------------------------------------------ the inputs

    const badPortOp = (): void => {
      const port = badPort();
      const actor = actorFor(port);
      const kind = pick(["unbind", "notify", "unmask"] as const);
      const what = `${actor.name}.${kind}(${describe(port)})`;
      const outcome = attempt(() => actor.handle[kind](port));
      if (!isUint32(port)) {
        if (checkRefusal(what, outcome, kind, ["EINVAL"])) {
          const error = (outcome as { error: EventChannelError }).error;
          if (error.argument !== "port") {
            problem("wrong", `${what}: blames ${error.argument}`);
          }
        }
        return;
      }
      if (kind === "unmask") {
        // Linux ignores ports the fd does not own.
        if (outcome.ok) accepted++;
        else checkRefusal(what, outcome, "unmask", []);
      } else if (kind === "unbind") {
        checkRefusal(what, outcome, "unbind", [
          port >= nrChannels ? "EINVAL" : "ENOTCONN",
        ]);
      } else checkRefusal(what, outcome, "notify", ["ENOTCONN"]);
      unchanged(port, what);
    };

    const badDomainOp = (): void => {
      const actor = pick(slots);
      const dom = badDomain();
      if (rand() < 0.4) {
        const what = `${actor.name}.bindUnboundPort(${describe(dom)})`;
        const outcome = attempt(() => actor.handle.bindUnboundPort(dom));
        if (!isDomid(dom)) {
          checkRefusal(what, outcome, "bind_unbound_port", ["EINVAL"]);
        } else if (actor.restricted) {
          checkRefusal(what, outcome, "bind_unbound_port", ["EACCES"]);
        } else {
          either(what, outcome, "bind_unbound_port", [
            "ESRCH",
            "EINVAL",
            "EPERM",
          ], (port) => {
            adopt(actor, port as number, true);
          });
        }
        return;
      }
      // Never a kernel unbound port (that would connect to the kernel's own
      // channel); anything else, ours included, is fair.
      let port = badPort();
      if (isUint32(port) && kernelUnbound.has(port)) port = offered999;
      const what = `${actor.name}.bindInterdomain(${describe(dom)}, ${
        describe(port)
      })`;
      const outcome = attempt(() => actor.handle.bindInterdomain(dom, port));
      if (!isDomid(dom) || !isUint32(port)) {
        checkRefusal(what, outcome, "bind_interdomain", ["EINVAL"]);
      } else if (actor.restricted && dom !== 999) {
        checkRefusal(what, outcome, "bind_interdomain", ["EACCES"]);
      } else {
        either(what, outcome, "bind_interdomain", [
          "EINVAL",
          "ESRCH",
          "EPERM",
          "EACCES",
        ], (local) => {
          adopt(actor, local as number, true);
          refresh(port); // its peer: now interdomain
        });
        if (!outcome.ok) unchanged(port, what);
      }
    };

    const badVirqOp = (): void => {
      const actor = pick(slots);
      const virq = rand() < 0.15 ? pick(NOT_UINT) : pick([
        0,
        1,
        2,
        3,
        6,
        20,
        23,
        24,
        25,
        31,
        32,
        255,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_ffff,
      ]);
      const what = `${actor.name}.bindVirq(${describe(virq)})`;
      const outcome = attempt(() => actor.handle.bindVirq(virq));
      if (!isUint32(virq)) {
        return void checkRefusal(what, outcome, "bind_virq", ["EINVAL"]);
      }
      if (actor.restricted) {
        return void checkRefusal(what, outcome, "bind_virq", ["EACCES"]);
      }
      if (virq >= 24) {
        return void checkRefusal(what, outcome, "bind_virq", ["EINVAL"]);
      }
      const held = [...expected.values()].some((e) => {
        const fields = Object.fromEntries(JSON.parse(e.key));
        return fields.status === "virq" && fields.virq === virq;
      });
      if (held) {
        return void checkRefusal(what, outcome, "bind_virq", ["EEXIST"]);
      }
      either(what, outcome, "bind_virq", ["EINVAL", "EEXIST"], (port) => {
        adopt(actor, port as number, true);
      });
    };

    const restrictOp = (): void => {
      // Only R may ever be restricted for real; A and B get invalid domains.
      const actor = rand() < 0.5 ? R : pick([A, B]);
      const dom = actor === R
        ? badDomain()
        : pick([0, DOMID_SELF, DOMID_XEN, DOMID_INVALID, 0xffff, ...NOT_UINT]);
      const what = `${actor.name}.restrictDomain(${describe(dom)})`;
      const outcome = attempt(() => actor.handle.restrictDomain(dom));
      // Linux checks "already restricted" (EACCES) before the domain
      // (EINVAL); the handle refuses a non-uint16 before either.
      const code = !isDomid(dom)
        ? "EINVAL"
        : actor.restricted
        ? "EACCES"
        : "EINVAL";
      checkRefusal(what, outcome, "restrict_domid", [code]);
    };

    const SIZES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 4095, 4096, 4097, 8192];
    /**
     * A buffer for read/write: a Uint8Array of an odd size over odd memory,
     * or something that is not one. `refuse` is what the handle must answer
     * (EFAULT, argument "buffer": a detached buffer or a non-Uint8Array is
     * what a bad pointer is to read(2)), or undefined when it must go to the
     * device.
     */
    const makeBuffer = (): {
      view: Uint8Array;
      kind: string;
      refuse?: "EFAULT";
    } => {
      const size = pick(SIZES);
      const kind = pick(
        [
          "plain",
          "offset",
          "shared",
          "detached",
          "shrunk",
          "out of bounds",
          "not a Uint8Array",
        ] as const,
      );
      if (kind === "plain") return { view: new Uint8Array(size), kind };
      if (kind === "shared") {
        return { view: new Uint8Array(new SharedArrayBuffer(size)), kind };
      }
      if (kind === "offset") {
        const offset = 1 + Math.floor(rand() * 7);
        return {
          view: new Uint8Array(
            new ArrayBuffer(size + offset + 3),
            offset,
            size,
          ),
          kind: `offset ${offset}`,
        };
      }
      if (kind === "shrunk" || kind === "out of bounds") {
        // A resizable buffer made smaller after the view was taken: a
        // length-tracking view shrinks with it; a fixed view past the new
        // end is out of bounds (length 0) but not detached.
        const buffer = new ArrayBuffer(size + 8, { maxByteLength: size + 16 });
        const view = kind === "shrunk"
          ? new Uint8Array(buffer)
          : new Uint8Array(buffer, 4, size);
        buffer.resize(kind === "shrunk" ? Math.floor(size / 2) : 2);
        return { view, kind };
      }
      if (kind === "not a Uint8Array") {
        const other = pick([
          new Uint32Array(2),
          new Uint8ClampedArray(8),
          new DataView(new ArrayBuffer(8)),
          new ArrayBuffer(8),
          [1, 2, 3, 4],
          "abcd",
          null,
          undefined,
          8,
        ]);
        return {
          view: other as unknown as Uint8Array,
          kind: other?.constructor?.name ?? String(other),
          refuse: "EFAULT",
        };
      }
      const buffer = new ArrayBuffer(size);
      const view = new Uint8Array(buffer);
      buffer.transfer(); // detaches: the view now has length 0
      return { view, kind, refuse: "EFAULT" };
    };
    const readWriteOp = (): void => {
      const actor = pick(slots);
      const { view, kind, refuse } = makeBuffer();
      const write = rand() < 0.45;
      const what = `${actor.name}.${write ? "write" : "read"}(${
        view?.byteLength ?? "-"
      } bytes, ${kind})`;
      if (refuse !== undefined) {
        const outcome = attempt(() =>
          write ? actor.handle.write(view) : actor.handle.read(view)
        );
        if (checkRefusal(what, outcome, write ? "write" : "read", [refuse])) {
          const error = (outcome as { error: EventChannelError }).error;
          if (error.argument !== "buffer") {
            problem("wrong", `${what}: blames ${error.argument}`);
          }
        }
        return;
      }
      const whole = view.byteLength & ~3;
      if (write) {
        if (view.byteLength >= 4) { // a detached buffer has no DataView
          const data = new DataView(
            view.buffer,
            view.byteOffset,
            view.byteLength,
          );
          const own = [...actor.owned];
          for (let k = 0; k + 4 <= view.byteLength && k < 64; k += 4) {
            data.setUint32(
              k,
              rand() < 0.5 ? pick(own) : (rand() * 2 ** 32) >>> 0,
              true,
            );
          }
        }
        const outcome = attempt(() => actor.handle.write(view));
        if (!outcome.ok) return void checkRefusal(what, outcome, "write", []);
        accepted++;
        if (outcome.value !== Math.min(whole, 4096)) {
          problem(
            "wrong",
            `${what} = ${outcome.value}, expected ${Math.min(whole, 4096)}`,
          );
        }
        return;
      }
      const outcome = attempt(() => actor.handle.read(view));
      if (!outcome.ok) {
        if (checkRefusal(what, outcome, "read", ["EFBIG"])) {
          overflows++; // the ring overflowed (notify/unmask without reads)
          actor.handle.reset();
        }
        return;
      }
      accepted++;
      const n = outcome.value;
      if (whole === 0) {
        if (n !== 0) problem("wrong", `${what} = ${describe(n)}, expected 0`);
        return;
      }
      if (n === null) return; // nothing pending: EAGAIN
      if (
        typeof n !== "number" || n < 4 || n % 4 !== 0 ||
        n > Math.min(whole, 4096)
      ) {
        return void problem("wrong", `${what} = ${describe(n)}`);
      }
      const data = new DataView(view.buffer, view.byteOffset, n);
      for (let k = 0; k < n; k += 4) {
        const port = data.getUint32(k, true);
        if (!actor.ever.has(port)) {
          problem(
            "wrong",
            `${what} returned port ${port}, never ${actor.name}'s`,
          );
        }
      }
    };

    const closedOps: [string, (h: EventChannelHandle) => unknown][] = [
      ["bind_unbound_port", (h) => h.bindUnboundPort(0)],
      ["bind_interdomain", (h) => h.bindInterdomain(0, a)],
      ["bind_virq", (h) => h.bindVirq(20)],
      ["unbind", (h) => h.unbind(a)],
      ["notify", (h) => h.notify(a)],
      ["unmask", (h) => h.unmask(b)],
      ["reset", (h) => h.reset()],
      ["restrict_domid", (h) => h.restrictDomain(5)],
      ["read", (h) => h.read(new Uint8Array(4))],
      ["write", (h) => h.write(new Uint8Array(4))],
      ["read", (h) => h.poll()],
    ];
    const closedXenOps: [string, (x: PrivcmdHypercalls) => unknown][] = [
      ["status", (x) => x.status(0, 1)],
      ["alloc_unbound", (x) => x.allocUnbound(0, 0)],
      ["reset", (x) => x.reset(999)],
      ["close", (x) => x.closePort(1)],
    ];
    const closedOp = async (): Promise<void> => {
      const x = rand();
      if (x < 0.6) {
        const [op, call] = pick(closedOps);
        checkRefusal(
          `closed handle: ${op}`,
          attempt(() => call(C.handle)),
          op,
          ["EBADF"],
        );
      } else if (x < 0.8) {
        const [op, call] = pick(closedXenOps);
        checkRefusal(
          `closed privcmd: ${op}`,
          attempt(() => call(closedXen)),
          op,
          ["EBADF"],
        );
      } else if (x < 0.95) {
        const settled = await C.handle.next().then(
          (value): Outcome => ({ ok: true, value }),
          (error): Outcome => ({ ok: false, error }),
        );
        checkRefusal("closed handle: next()", settled, "read", ["EBADF"]);
      } else {
        // Closing again is harmless; iterating a closed handle ends at once.
        await C.handle.close();
        for await (const port of C.handle) {
          problem("wrong", `closed handle yielded ${port}`);
        }
        accepted++;
      }
    };

    const BAD_OPTIONS = [
      "x",
      5,
      null,
      true,
      { signal: "s" },
      { signal: {} },
      { signal: 5 },
      { signal: null },
      { signal: new AbortController() },
    ];
    const badOptionsOp = async (): Promise<void> => {
      // Wait options that are not { signal?: AbortSignal }: EINVAL before
      // anything waits (so a bad one can never park a poll or hang), on a
      // closed handle too.
      const slot = pick([...slots, C]);
      const options = pick(BAD_OPTIONS) as never;
      const what = `${slot.name}.next(${JSON.stringify(options) ?? options})`;
      if (rand() < 0.7) {
        const settled = await slot.handle.next(options).then(
          (value): Outcome => ({ ok: true, value }),
          (error): Outcome => ({ ok: false, error }),
        );
        checkRefusal(what, settled, "next", ["EINVAL"]);
      } else {
        checkRefusal(
          what.replace(".next", ".ports"),
          attempt(() => slot.handle.ports(options)),
          "ports",
          ["EINVAL"],
        );
      }
    };

    const privcmdOp = (): void => {
      const x = rand();
      const dom = badDomain();
      const self = isDomid(dom) && (dom === 0 || dom === DOMID_SELF);
      if (x < 0.5) {
        const port = badPort();
        const what = `status(${describe(dom)}, ${describe(port)})`;
        const outcome = attempt(() => xen.status(dom, port));
        if (!isDomid(dom) || !isUint32(port)) {
          return void checkRefusal(what, outcome, "status", ["EINVAL"]);
        }
        if (!self) return void checkRefusal(what, outcome, "status", ["ESRCH"]);
        // dom0 itself: Xen's answer must be the expected one.
        if (outcome.ok) {
          accepted++;
          const status = outcome.value as { status: string };
          const want = expected.get(port);
          const got = status.status === "closed"
            ? undefined
            : statusKey(status, want?.withVcpu ?? false);
          if (got !== want?.key) {
            problem("wrong", `${what} = ${got}, expected ${want?.key}`);
          }
        } else if (
          checkRefusal(what, outcome, "status", ["EINVAL"]) &&
          expected.has(port)
        ) {
          problem("wrong", `${what}: EINVAL for a port in use`);
        }
      } else if (x < 0.8) {
        const remote = rand() < 0.5 ? badDomain() : pick(domains);
        const what = `alloc_unbound(${describe(dom)}, ${describe(remote)})`;
        const outcome = attempt(() => xen.allocUnbound(dom, remote));
        if (!isDomid(dom) || !isDomid(remote)) {
          return void checkRefusal(what, outcome, "alloc_unbound", ["EINVAL"]);
        }
        if (!self) {
          return void checkRefusal(what, outcome, "alloc_unbound", ["ESRCH"]);
        }
        either(what, outcome, "alloc_unbound", ["EINVAL", "EPERM"], (value) => {
          // A dom0 port no fd owns: ours to close at once, through privcmd.
          const port = value as number;
          if (expected.has(port)) {
            problem("wrong", `${what} = ${port}, which is in use`);
          }
          refresh(port);
          if (!expected.has(port)) {
            problem("wrong", `${what} = ${port}, closed`);
          }
          step++;
          const closed = attempt(() => xen.closePort(port));
          if (!closed.ok) {
            problem("wrong", `close(${port}) of our alloc: ${closed.error}`);
          }
          refresh(port);
        });
      } else {
        const what = `reset(${describe(dom)})`;
        const outcome = attempt(() => xen.reset(dom));
        // dom0/DOMID_SELF are refused before Xen; the rest do not exist.
        checkRefusal(what, outcome, "reset", [
          !isDomid(dom) ? "EINVAL" : self ? "EPERM" : "ESRCH",
        ]);
      }
    };

    /** Reads a handle's ring empty; an overflow is reset. */
    const drain = (slot: Slot): void => {
      const buffer = new Uint8Array(256);
      for (let k = 0; k < 64; k++) {
        const outcome = attempt(() => slot.handle.read(buffer));
        if (!outcome.ok) {
          if (
            checkRefusal(`${slot.name}.read (drain)`, outcome, "read", [
              "EFBIG",
            ])
          ) {
            overflows++;
            slot.handle.reset();
            continue;
          }
          return;
        }
        if (outcome.value === null) return;
      }
    };
    /** Unmasks every port a handle owns (one write). */
    const unmaskAll = (slot: Slot): void => {
      const own = [...slot.owned];
      const data = new Uint8Array(own.length * 4);
      const view = new DataView(data.buffer);
      own.forEach((port, k) => view.setUint32(k * 4, port, true));
      slot.handle.write(data);
    };

    /** notify -> first waiter woken (ms), with the poll parked first or not. */
    const delays = { parked: [] as number[], unparked: [] as number[] };
    const waitersOp = async (): Promise<void> => {
      // Several waiters on B (which gets the event) and on A (which gets
      // none), each bounded; one notify; then the rest are aborted.
      drain(A);
      drain(B);
      unmaskAll(A);
      unmaskAll(B);
      const stop = new AbortController();
      const marker = new Error("fuzz: enough");
      const onB = 1 + Math.floor(rand() * 3);
      const onA = Math.floor(rand() * 3);
      const preAborted = rand() < 0.2;
      let gotOne!: () => void;
      const got = new Promise<void>((resolve) => (gotOne = resolve));
      const waiters = [...Array(onB).fill(B), ...Array(onA).fill(A)].map(
        (slot: Slot) => {
          const aborted = preAborted && rand() < 0.5;
          const signal = aborted ? AbortSignal.abort(marker) : AbortSignal.any([
            stop.signal,
            AbortSignal.timeout(WAIT_MS + 1000),
          ]);
          return {
            slot,
            aborted,
            settled: slot.handle.next({ signal }).then(
              (value): Outcome => {
                gotOne();
                return { ok: true, value };
              },
              (error): Outcome => ({ ok: false, error }),
            ),
          };
        },
      );
      const yielded = rand() < 0.5;
      if (yielded) await new Promise((resolve) => setTimeout(resolve, 0));
      step++;
      const sent = performance.now();
      A.handle.notify(a);
      // Every waiter on B aborted before it started: nobody can get it.
      const canGet = waiters.some((w) => w.slot === B && !w.aborted);
      const delivered = canGet && await within(got, WAIT_MS);
      if (delivered) {
        (yielded ? delays.parked : delays.unparked).push(
          performance.now() - sent,
        );
      }
      stop.abort(marker);
      const outcomes = await Promise.all(waiters.map((w) => w.settled));
      const fulfilled = outcomes.filter((o) => o.ok).length;
      if (!delivered && canGet) {
        problem(
          "crash",
          `waiters: notify(${a}) never reached ${onB} waiter(s) on B within ${WAIT_MS} ms`,
        );
      }
      outcomes.forEach((outcome, k) => {
        const { slot } = waiters[k];
        if (outcome.ok) {
          const port = outcome.value as number;
          if (!slot.ever.has(port)) {
            problem("wrong", `waiter on ${slot.name} got port ${port}`);
          }
          slot.handle.unmask(port);
        } else if (outcome.error !== marker) {
          if (
            outcome.error instanceof EventChannelError &&
            outcome.error.code === "EFBIG"
          ) {
            overflows++;
            slot.handle.reset();
          } else if (!(outcome.error instanceof EventChannelError)) {
            problem("untyped", `waiter on ${slot.name}: ${outcome.error}`);
          } else {problem(
              "wrong",
              `waiter on ${slot.name}: ${outcome.error.message}`,
            );}
        }
      });
      if (fulfilled > 0) accepted++;
    };

    const closeDuringWaitOp = async (): Promise<void> => {
      const D = open("D");
      const ports: number[] = [];
      for (let k = Math.floor(rand() * 3); k > 0; k--) {
        const port = D.handle.bindUnboundPort(0);
        ports.push(port);
        adopt(D, port, false);
      }
      const signal = rand() < 0.5
        ? AbortSignal.timeout(WAIT_MS + 1000)
        : undefined;
      const waiters = Array.from(
        { length: 1 + Math.floor(rand() * 2) },
        () =>
          D.handle.next({ signal }).then(
            (value): Outcome => ({ ok: true, value }),
            (error): Outcome => ({ ok: false, error }),
          ),
      );
      // Half the time the poll(2) is parked on the blocking pool first.
      if (rand() < 0.5) await new Promise((resolve) => setTimeout(resolve, 0));
      step++;
      const closing = D.handle.close();
      if (!(await within(closing, WAIT_MS))) {
        return void problem(
          "crash",
          `close() during a wait did not settle in ${WAIT_MS} ms`,
        );
      }
      for (const settled of waiters) {
        checkRefusal("next() across close()", await settled, "read", ["EBADF"]);
      }
      checkRefusal(
        "unbind after close",
        attempt(() => D.handle.unbind(ports[0] ?? 1)),
        "unbind",
        ["EBADF"],
      );
      // Closing the fd closed its ports in Xen.
      for (const port of ports) {
        refresh(port);
        if (expected.has(port)) {
          problem("wrong", `port ${port} outlived its closed handle`);
        }
      }
    };

    /** Valid traffic between the hostile inputs: events for reads to find. */
    const trafficOp = (): void => {
      const x = rand();
      const slot = pick(slots);
      if (x < 0.3) A.handle.notify(a);
      else if (x < 0.45) B.handle.notify(b);
      else if (x < 0.55) R.handle.notify(r); // unbound: Xen drops it
      else if (x < 0.8) slot.handle.unmask(pick([...slot.owned]));
      else if (x < 0.85) slot.handle.reset();
      else if (slot.transient.length > 0) release(slot, slot.transient[0]);
    };

    const hostile: [number, () => void | Promise<void>][] = [
      [26, badPortOp],
      [14, badDomainOp],
      [8, badVirqOp],
      [3, restrictOp],
      [22, readWriteOp],
      [6, closedOp],
      [2, badOptionsOp],
      [16, privcmdOp],
      [1.5, waitersOp],
      [0.5, closeDuringWaitOp],
    ];
    const total = hostile.reduce((sum, [w]) => sum + w, 0);
    const chooseHostile = (): () => void | Promise<void> => {
      let x = rand() * total;
      for (const [w, op] of hostile) if ((x -= w) < 0) return op;
      return hostile[0][1];
    };

    /** Time per kind of input, for the report (TCG makes each ioctl slow). */
    const costs = new Map<string, { count: number; ms: number }>();
    const started = performance.now();
    let iteration = 0;
    try {
      while (inputs < COUNT && problems.length < MAX_PROBLEMS) {
        step++;
        iteration++;
        if (rand() < 0.12) {
          const outcome = attempt(trafficOp);
          if (!outcome.ok) {
            problem("wrong", `valid traffic failed: ${outcome.error}`);
          }
        } else {
          inputs++;
          const op = chooseHostile();
          const t0 = performance.now();
          try {
            const pending = op();
            if (pending instanceof Promise) await pending;
          } catch (error) {
            problem(
              error instanceof EventChannelError ? "wrong" : "untyped",
              `${op.name}: ${error instanceof Error ? error.stack : error}`,
            );
          }
          const cost = costs.get(op.name) ?? { count: 0, ms: 0 };
          cost.count++;
          cost.ms += performance.now() - t0;
          costs.set(op.name, cost);
          // Keep the transient population small and varied.
          for (const slot of slots) {
            while (slot.transient.length > MAX_TRANSIENT) {
              release(slot, slot.transient[0]);
            }
          }
        }
        if (iteration % SCAN_EVERY === 0) scan(`at step ${step}`);
      }
      for (const slot of slots) {
        while (slot.transient.length > 0) release(slot, slot.transient[0]);
      }
      scan("after the fuzz");
    } finally {
      for (const slot of slots) await slot.handle.close();
    }
    const seconds = (performance.now() - started) / 1000;

    // dom0 is alive: a fresh loopback pair still carries an event.
    {
      await using one = openLinuxHandle();
      await using two = openLinuxHandle();
      const x = one.bindUnboundPort(0);
      const y = two.bindInterdomain(0, x);
      assert.equal(await two.next({ signal: AbortSignal.timeout(WAIT_MS) }), y);
      two.unmask(y);
      one.notify(x);
      assert.equal(await two.next({ signal: AbortSignal.timeout(WAIT_MS) }), y);
      two.unmask(y);
    }

    xen.close();
    const after = await snapshotHost();
    const fdsAfter = fdCount();
    const portKey = (p: HostPort) => `${p.port}:${statusKey(p, true)}`;
    const beforePorts = new Set(before.ports.map(portKey));
    const afterPorts = new Set(after.ports.map(portKey));
    const portLeaks = [...afterPorts].filter((p) => !beforePorts.has(p));
    const portLosses = [...beforePorts].filter((p) => !afterPorts.has(p));
    const leaks = Math.abs(fdsAfter - fdsBefore) + portLeaks.length +
      portLosses.length;

    console.log(
      `real-Xen fuzz: ${inputs} inputs, ${crashes} crashes, ${untyped} untyped ` +
        `errors, ${leaks} leaks (${abi}, ${seconds.toFixed(1)} s)`,
    );
    console.log(
      `  seed ${SEED}: ${step} operations (${inputs} hostile), ${refused} typed ` +
        `refusals, ${accepted} accepted, ${wrong} wrong outcomes, ${overflows} ` +
        `ring overflows, ${scans} full scans; fds ${fdsBefore} -> ${fdsAfter}; ` +
        `dom0 ports ${before.ports.length} -> ${after.ports.length} ` +
        `(storage edge ${before.validPorts} -> ${after.validPorts})`,
    );
    console.log(
      "  time per kind: " +
        [...costs].map(([name, { count, ms }]) =>
          `${name.replace(/Op$/, "")} ${count}× ${(ms / count).toFixed(2)} ms`
        ).join(", "),
    );
    const spread = (list: number[]): string => {
      if (list.length === 0) return "none";
      const sorted = [...list].sort((x, y) => x - y);
      const at = (q: number) => sorted[Math.floor(q * (sorted.length - 1))];
      return `n=${sorted.length} min ${at(0).toFixed(1)} median ${
        at(0.5).toFixed(1)
      } p90 ${at(0.9).toFixed(1)} max ${at(1).toFixed(1)} ms, ${
        sorted.filter((d) => d >= 900).length
      } >= 900 ms`;
    };
    console.log(
      `  waiters woken after notify: poll parked first: ${
        spread(delays.parked)
      }; not yet parked: ${spread(delays.unparked)}`,
    );
    const failed = problems.length > 0 || leaks > 0 || inputs < COUNT;
    if (failed) {
      console.error(
        `real-Xen fuzz FAILED with EVTCHN_FUZZ_SEED=${SEED} EVTCHN_FUZZ_COUNT=${COUNT}:\n  ` +
          [
            ...problems,
            ...portLeaks.map((p) => `leaked port ${p}`),
            ...portLosses.map((p) => `lost port ${p}`),
          ].join("\n  "),
      );
    }
    assert.deepEqual(problems, [], `seed ${SEED}`);
    assert.equal(inputs, COUNT, `seed ${SEED}`);
    assert.equal(fdsAfter, fdsBefore, `leaked fds, seed ${SEED}`);
    assert.deepEqual(
      after.ports,
      before.ports,
      `dom0 port table changed, seed ${SEED}`,
    );
    assert.ok(refused > COUNT / 2, `only ${refused} refusals`);
  },
});
