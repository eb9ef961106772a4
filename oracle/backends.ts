/**
 * Where the oracle runs steps: a session on one backend, reached only
 * through the module's public API (`MemoryXen` from `mod.ts`, and the
 * `linux` backend's exported functions, imported only when asked for).
 *
 * @module
 */

import {
  type ChannelStatus,
  type Dom0Hypercalls,
  DOMID_SELF,
  type EventChannelHandle,
  type HostSnapshot,
  MemoryXen,
} from "../mod.ts";

/**
 * What the oracle needs of a handle: the device operations of
 * `EventChannelHandle`. A test can hand in anything of this shape (a handle
 * that misbehaves on purpose, say).
 *
 * @example
 * ```ts
 * import type { OracleHandle } from "./backends.ts";
 * import { MemoryXen } from "../mod.ts";
 * import assert from "node:assert/strict";
 * const handle: OracleHandle = new MemoryXen().open(0);
 * assert.ok(handle.bindUnboundPort(0) > 0);
 * await handle.close();
 * ```
 */
export type OracleHandle = Pick<
  EventChannelHandle,
  | "bindUnboundPort"
  | "bindInterdomain"
  | "bindVirq"
  | "unbind"
  | "notify"
  | "unmask"
  | "reset"
  | "restrictDomain"
  | "read"
  | "close"
>;

/**
 * The host a trace was recorded on, for the header.
 *
 * @example
 * ```ts
 * import type { Environment } from "./backends.ts";
 * import { makeHeader } from "./record.ts";
 * import assert from "node:assert/strict";
 * const env: Environment = {
 *   xen: "4.17.7",
 *   kernel: "6.1.0-50-amd64",
 *   abi: "fifo",
 *   vcpus: 2,
 * };
 * assert.equal(makeHeader("linux", env).abi, "fifo");
 * ```
 */
export interface Environment {
  /** Hypervisor version. */
  xen: string;
  /** Kernel release. */
  kernel: string;
  /** Event ABI of the local domain: `fifo`, `2l` or `unknown`. */
  abi: string;
  /** vCPUs of the local domain. */
  vcpus: number;
  /**
   * The local domain's event channels when the session started (a real
   * host's snapshot), from which a model is booted to match it.
   */
  host?: HostSnapshot;
}

/**
 * A failure of the environment rather than an outcome of a step (privcmd
 * cannot be opened, the peer domain cannot be made). It stops the run.
 *
 * @example
 * ```ts
 * import { EnvironmentError } from "./backends.ts";
 * import assert from "node:assert/strict";
 * const error = new EnvironmentError("no /dev/xen/privcmd");
 * assert.ok(error instanceof Error);
 * assert.equal(error.message, "no /dev/xen/privcmd");
 * ```
 */
export class EnvironmentError extends Error {
  /**
   * Creates the error.
   *
   * @param message What is missing.
   * @param options The cause.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "EnvironmentError";
  }
}

/**
 * One run's worth of a backend: a fresh host (or a real one with a fresh
 * peer domain), handles opened on it, and its dom0 hypercalls.
 *
 * @example
 * ```ts
 * import { memoryBackend } from "./backends.ts";
 * import assert from "node:assert/strict";
 * const session = await memoryBackend().start();
 * const handle = session.open();
 * assert.equal(typeof handle.bindUnboundPort(0), "number");
 * await session.dispose();
 * ```
 */
export interface OracleSession {
  /** The backend's name. */
  readonly backend: string;
  /** The id of the domain handles are opened in. */
  readonly localDomain: number;
  /** Milliseconds a `read` waits first when its step names none. */
  readonly readSettleMs: number;
  /** Opens a handle in the local domain. */
  open(): OracleHandle;
  /** dom0 hypercalls (opened on first use). */
  hypercalls(): Dom0Hypercalls;
  /** Creates the peer domain and returns its id (called once per run). */
  createPeer(): number;
  /** Waits for events in flight (a no-op where delivery is synchronous). */
  settle(ms: number): Promise<void>;
  /** Describes the host, for a trace header. */
  environment(): Promise<Environment>;
  /**
   * The local domain's event channels now (every port's status, vCPUs
   * included), for comparing a whole table at the end of a run.
   */
  snapshot(): Promise<HostSnapshot>;
  /** Closes every handle still open, cleans up, releases the host. */
  dispose(): Promise<void>;
}

/**
 * Options for starting a session.
 *
 * @example
 * ```ts
 * import { memoryBackend, type SessionOptions } from "./backends.ts";
 * import assert from "node:assert/strict";
 * const options: SessionOptions = { vcpus: 1 };
 * const session = await memoryBackend().start(options);
 * assert.equal((await session.environment()).vcpus, 1);
 * await session.dispose();
 * ```
 */
export interface SessionOptions {
  /**
   * vCPUs of the modelled dom0 (a trace's header sets it so the model
   * hands ports to vCPUs as the recording host did). Ignored by real hosts.
   */
  vcpus?: number;
  /**
   * Event ABI of the modelled dom0 kernel, `fifo` or `2l` (a trace's header
   * sets it; anything else means the model's default). Ignored by real
   * hosts.
   */
  abi?: string;
  /**
   * A host snapshot to boot the modelled dom0 from (its vCPUs and ABI then
   * win over `vcpus` and `abi`). Ignored by real hosts.
   */
  host?: HostSnapshot;
}

/**
 * A backend the oracle can start sessions on.
 *
 * @example
 * ```ts
 * import { backendByName } from "./backends.ts";
 * import assert from "node:assert/strict";
 * assert.equal(backendByName("memory").name, "memory");
 * ```
 */
export interface OracleBackend {
  /** Its name (`memory`, `linux`, …). */
  readonly name: string;
  /**
   * Starts a fresh session.
   *
   * @param options Session options.
   */
  start(options?: SessionOptions): Promise<OracleSession>;
}

/** Tracks handles so that `dispose` can close what a trace left open. */
class HandleSet {
  #open = new Set<OracleHandle>();
  add<T extends OracleHandle>(handle: T): T {
    this.#open.add(handle);
    const close = handle.close.bind(handle);
    handle.close = () => {
      this.#open.delete(handle);
      return close();
    };
    return handle;
  }
  async closeAll(): Promise<void> {
    const handles = [...this.#open];
    this.#open.clear();
    for (const handle of handles) await handle.close();
  }
}

/**
 * The in-memory backend: every session is a fresh `MemoryXen` (dom0 with
 * its kernel's boot ports, running the event ABI asked for or the model's
 * default), and the peer is domain 1, created paused and without a kernel,
 * like the empty domain a real replay creates.
 *
 * @returns The backend.
 *
 * @example
 * ```ts
 * import { memoryBackend } from "./backends.ts";
 * import assert from "node:assert/strict";
 * const session = await memoryBackend().start({ vcpus: 2 });
 * assert.equal(session.hypercalls().status(0, 0).status, "closed");
 * await session.dispose();
 * ```
 */
export function memoryBackend(): OracleBackend {
  return {
    name: "memory",
    start(options: SessionOptions = {}): Promise<OracleSession> {
      const eventAbi = options.abi === "fifo" || options.abi === "2l"
        ? options.abi
        : undefined;
      const xen = new MemoryXen({
        vcpus: options.vcpus ?? 2,
        eventAbi,
        host: options.host,
      });
      const handles = new HandleSet();
      const session: OracleSession = {
        backend: "memory",
        localDomain: 0,
        readSettleMs: 0,
        open: () => handles.add(xen.open(0)),
        hypercalls: () => xen.hypercalls(0),
        createPeer: () =>
          xen.createDomain({ domain: 1, linux: false, paused: true }).id,
        settle: () => Promise.resolve(),
        environment: () => {
          const host = xen.snapshot(0);
          return Promise.resolve({
            xen: host.xen,
            kernel: host.kernel,
            abi: host.abi,
            vcpus: host.vcpus,
          });
        },
        snapshot: () => Promise.resolve(xen.snapshot(0)),
        dispose: () => handles.closeAll(),
      };
      return Promise.resolve(session);
    },
  };
}

/** The linux backend module's public surface that the oracle uses. */
interface LinuxModule {
  openLinuxHandle(): EventChannelHandle;
  openPrivcmd(): LinuxPrivcmd;
  linuxDeviceStatus(options?: { path?: string }): {
    available: boolean;
    reason?: string;
  };
  kernelRelease(): string;
  snapshotHost(): Promise<HostSnapshot>;
}

/** What `openPrivcmd()` returns, as far as the oracle uses it. */
interface LinuxPrivcmd extends Dom0Hypercalls {
  closePort(port: number): void;
  createDomain(options?: { maxVcpus?: number }): number;
  destroyDomain(domain: number): void;
  xenVersion(): { major: number; minor: number; extra: string };
  close(): void;
}

/** Default wait before a `read` on real Xen: events cross vCPUs by IPI. */
const LINUX_READ_SETTLE_MS = 50;

/**
 * The real backend: `/dev/xen/evtchn` handles in this (dom0) domain and
 * privcmd hypercalls, from `backends/linux/mod.ts`, imported on first
 * start. Each session snapshots dom0's event channels first
 * (`snapshotHost()`, in its environment), so that a model booted from the
 * snapshot holds the same ports on the same vCPUs with the same per-CPU
 * counts, and makes a fresh, paused, empty peer domain on first use,
 * destroyed at the end; ports it allocated in dom0 through
 * `hc.alloc_unbound` (which no handle owns) are closed at the end.
 *
 * @returns The backend.
 *
 * @example Only where the device exists
 * ```ts
 * import { linuxBackend } from "./backends.ts";
 * import assert from "node:assert/strict";
 * assert.equal(linuxBackend().name, "linux");
 * if (Deno.env.get("XENVM") === "1") {
 *   const session = await linuxBackend().start();
 *   assert.equal((await session.environment()).abi.length > 0, true);
 *   await session.dispose();
 * }
 * ```
 */
export function linuxBackend(): OracleBackend {
  return {
    name: "linux",
    async start(): Promise<OracleSession> {
      let linux: LinuxModule;
      try {
        linux = await import("../backends/linux/mod.ts") as LinuxModule;
      } catch (error) {
        throw new EnvironmentError(
          `cannot load the linux backend: ${(error as Error).message}`,
          { cause: error },
        );
      }
      const status = linux.linuxDeviceStatus();
      if (!status.available) {
        throw new EnvironmentError(
          `the linux backend is not available here: ${status.reason}`,
        );
      }
      const session = new LinuxSession(linux);
      await session.begin();
      return session;
    },
  };
}

class LinuxSession implements OracleSession {
  readonly backend = "linux";
  readonly localDomain = 0;
  readonly readSettleMs = LINUX_READ_SETTLE_MS;
  #linux: LinuxModule;
  #handles = new HandleSet();
  #privcmd: LinuxPrivcmd | undefined;
  #peers: number[] = [];
  #localAllocated: number[] = [];
  #host: HostSnapshot | undefined;

  constructor(linux: LinuxModule) {
    this.#linux = linux;
  }

  #cmd(): LinuxPrivcmd {
    if (this.#privcmd === undefined) {
      try {
        this.#privcmd = this.#linux.openPrivcmd();
      } catch (error) {
        throw new EnvironmentError(
          `cannot open privcmd for dom0 hypercalls (run as root in dom0): ${
            (error as Error).message
          }`,
          { cause: error },
        );
      }
    }
    return this.#privcmd;
  }

  open(): OracleHandle {
    return this.#handles.add(this.#linux.openLinuxHandle());
  }

  /**
   * Snapshots the host before the first step. privcmd is needed for it;
   * without privcmd the session runs device steps only and says so in its
   * environment (no snapshot).
   */
  async begin(): Promise<void> {
    try {
      this.#cmd();
    } catch {
      return; // no privcmd: status and snapshots are out of reach
    }
    this.#host = await this.#linux.snapshotHost();
  }

  snapshot(): Promise<HostSnapshot> {
    return this.#linux.snapshotHost();
  }

  hypercalls(): Dom0Hypercalls {
    const local = this.localDomain;
    return {
      status: (domain: number, port: number): ChannelStatus =>
        this.#cmd().status(domain, port),
      allocUnbound: (domain: number, remote: number): number => {
        const port = this.#cmd().allocUnbound(domain, remote);
        if (domain === local || domain === DOMID_SELF) {
          this.#localAllocated.push(port);
        }
        return port;
      },
      reset: (domain: number): void => this.#cmd().reset(domain),
    };
  }

  createPeer(): number {
    let id: number;
    try {
      id = this.#cmd().createDomain({ maxVcpus: 1 });
    } catch (error) {
      if (error instanceof EnvironmentError) throw error;
      throw new EnvironmentError(
        `cannot create the peer domain: ${(error as Error).message}`,
        { cause: error },
      );
    }
    this.#peers.push(id);
    return id;
  }

  settle(ms: number): Promise<void> {
    return ms <= 0
      ? Promise.resolve()
      : new Promise((resolve) => setTimeout(resolve, ms));
  }

  async environment(): Promise<Environment> {
    const host = this.#host;
    if (host !== undefined) {
      return {
        xen: host.xen,
        kernel: host.kernel,
        abi: host.abi,
        vcpus: host.vcpus,
        host,
      };
    }
    let xen = "unknown";
    try {
      const v = this.#cmd().xenVersion();
      xen = `${v.major}.${v.minor}${v.extra}`;
    } catch { /* keep unknown */ }
    return {
      xen,
      kernel: Deno.osRelease(),
      abi: await this.#abi(),
      vcpus: onlineCpus(),
    };
  }

  /**
   * Without privcmd: the device's unbind limit tells the ABI on a small
   * dom0 (4096 channels under 2-level, pages × 1024 under FIFO), so
   * unbinding port 4095 on a fresh handle gives `ENOTCONN` under 2-level
   * and `EINVAL` under FIFO while the event array has fewer than 4 pages.
   */
  async #abi(): Promise<string> {
    const probe = this.#linux.openLinuxHandle();
    try {
      probe.unbind(4095);
      return "unknown";
    } catch (error) {
      const code = (error as { code?: string }).code;
      return code === "ENOTCONN"
        ? "2l"
        : code === "EINVAL"
        ? "fifo"
        : "unknown";
    } finally {
      await probe.close();
    }
  }

  async dispose(): Promise<void> {
    await this.#handles.closeAll();
    const cmd = this.#privcmd;
    if (cmd === undefined) return;
    try {
      // Never a port a handle holds: these were never any handle's.
      for (const port of this.#localAllocated) {
        try {
          cmd.closePort(port);
        } catch { /* already closed */ }
      }
      for (const peer of this.#peers) {
        try {
          cmd.destroyDomain(peer);
        } catch { /* gone */ }
      }
    } finally {
      cmd.close();
    }
  }
}

function onlineCpus(): number {
  try {
    const text = Deno.readTextFileSync("/sys/devices/system/cpu/online").trim();
    let n = 0;
    for (const part of text.split(",")) {
      const [a, b] = part.split("-").map(Number);
      n += b === undefined ? 1 : b - a + 1;
    }
    if (n > 0) return n;
  } catch { /* fall back */ }
  return navigator.hardwareConcurrency;
}

/**
 * A backend by name: `memory` or `linux`.
 *
 * @param name The name.
 * @returns The backend.
 * @throws {RangeError} for another name.
 *
 * @example
 * ```ts
 * import { backendByName } from "./backends.ts";
 * import assert from "node:assert/strict";
 * assert.throws(() => backendByName("qemu"), RangeError);
 * ```
 */
export function backendByName(name: string): OracleBackend {
  if (name === "memory") return memoryBackend();
  if (name === "linux") return linuxBackend();
  throw new RangeError(`unknown backend "${name}" (memory or linux)`);
}
