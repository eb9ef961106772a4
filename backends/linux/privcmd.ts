/**
 * dom0 hypercalls through Linux's `/dev/xen/privcmd`: `EVTCHNOP_status`,
 * `EVTCHNOP_alloc_unbound` and `EVTCHNOP_reset` on any domain (what
 * libxenctrl's `xc_evtchn_*` do), plus the few domctls needed to make an
 * empty test domain.
 *
 * `IOCTL_PRIVCMD_HYPERCALL` passes a pointer to the op struct straight to
 * Xen, which reads it from the caller's address space. So the struct lives
 * in "hypercall-safe" memory, as libxencall arranges it: a page mapped from
 * `/dev/xen/hypercall` (kernel pages, always present), or, without that
 * device, an anonymous `MAP_LOCKED` page marked `MADV_DONTFORK`.
 *
 * @module
 */

import { EventChannelError } from "../../errors.ts";
import { checkUint, UINT32_MAX } from "../../util/validate.ts";
import {
  type ChannelStatus,
  type Dom0Hypercalls,
  refuseControlDomainReset,
} from "../../hypercalls.ts";
import {
  DOMID_FIRST_RESERVED,
  DOMID_MAX,
  DOMID_SELF,
} from "../../xen/domid.ts";
import {
  decodeStatus,
  encodeAllocUnbound,
  encodeHypercall,
  encodeReset,
  encodeStatus,
  EVTCHN_ALLOC_UNBOUND,
  EVTCHN_CLOSE,
  EVTCHN_SET_PRIORITY,
  HYPERVISOR_DOMCTL,
  HYPERVISOR_EVENT_CHANNEL_OP,
  HYPERVISOR_XEN_VERSION,
  IOCTL_PRIVCMD_HYPERCALL,
  OPS,
  PRIVCMD_HYPERCALL,
  XEN_EXTRAVERSION_LEN,
  XENVER_EXTRAVERSION,
  XENVER_VERSION,
} from "./_evtchn_h.ts";
import {
  encodeCreateDomain,
  encodeDestroyDomain,
  encodeMaxVcpus,
  XEN_DOMCTL_INTERFACE_VERSION_4_17,
  XEN_DOMCTL_STRUCT,
} from "./_domctl_h.ts";
import { PAGE_SIZE } from "../../xen/page.ts";
import { openFile } from "./_fd.ts";
import { type Blame, refusal } from "./_refusal.ts";
import { type Syscalls, syscalls } from "./_syscall.ts";
import {
  acquireLibc,
  type Libc,
  MADV_DONTFORK,
  MAP_ANONYMOUS,
  MAP_LOCKED,
  MAP_PRIVATE,
  MAP_SHARED,
  O_CLOEXEC,
  O_RDWR,
  PROT_READ,
  PROT_WRITE,
  releaseLibc,
} from "./_libc.ts";
import { ERRNO } from "../../xen/errno.ts";

/** Where Linux puts the privcmd device. */
export const DEFAULT_PRIVCMD_PATH = "/dev/xen/privcmd";
/** The older xenfs location of privcmd, tried when the default is absent. */
export const LEGACY_PRIVCMD_PATH = "/proc/xen/privcmd";
/** Linux's hypercall-buffer device (`privcmd-buf.c`). */
export const HYPERCALL_BUFFER_PATH = "/dev/xen/hypercall";

const PAGE_BYTES = BigInt(PAGE_SIZE);
const PRIVCMD_MODULE = "xen-privcmd";

/**
 * Where the op structs live: a `/dev/xen/hypercall` page or an anonymous
 * locked one.
 *
 * @example What `buffer: "auto"` (the default) settles on
 * ```ts
 * import { type HypercallBufferKind, PrivcmdHypercalls } from "./privcmd.ts";
 * import { linuxDeviceStatus } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const privcmd = linuxDeviceStatus({ path: "/dev/xen/privcmd" });
 * if (privcmd.available) {
 *   const expected: HypercallBufferKind =
 *     linuxDeviceStatus({ path: "/dev/xen/hypercall" }).available
 *       ? "device"
 *       : "anonymous";
 *   using xen = new PrivcmdHypercalls();
 *   assert.equal(xen.buffer, expected);
 * } else {
 *   // Refused at open, before any buffer is chosen.
 *   const kind: HypercallBufferKind = "device";
 *   assert.throws(
 *     () => new PrivcmdHypercalls({ path: "/dev/xen/privcmd", buffer: kind }),
 *     { name: "EventChannelError", op: "open", code: privcmd.code },
 *   );
 * }
 * ```
 */
export type HypercallBufferKind = "device" | "anonymous";

/**
 * Options for {@linkcode PrivcmdHypercalls}.
 *
 * @example An explicit path is the only one tried
 * ```ts
 * import { PrivcmdHypercalls, type PrivcmdOptions } from "./privcmd.ts";
 * import { linuxDeviceStatus } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const absent: PrivcmdOptions = { path: "/dev/xen/no-such-device" };
 * assert.throws(() => new PrivcmdHypercalls(absent), {
 *   name: "EventChannelError",
 *   op: "open",
 *   code: "ENOENT",
 *   value: "/dev/xen/no-such-device",
 * });
 *
 * const options: PrivcmdOptions = {
 *   path: "/dev/xen/privcmd",
 *   buffer: "anonymous",
 * };
 * if (linuxDeviceStatus(options).available) {
 *   using xen = new PrivcmdHypercalls(options);
 *   assert.equal(xen.path, "/dev/xen/privcmd");
 *   assert.equal(xen.buffer, "anonymous");
 * }
 * ```
 */
export interface PrivcmdOptions {
  /**
   * The privcmd device; `/dev/xen/privcmd` (then `/proc/xen/privcmd`) when
   * omitted.
   */
  path?: string;
  /**
   * Where op structs live: `"device"` maps `/dev/xen/hypercall`,
   * `"anonymous"` an anonymous `MAP_LOCKED` page; `"auto"` (the default)
   * tries the device first, as libxencall does.
   */
  buffer?: HypercallBufferKind | "auto";
}

/**
 * Options for {@linkcode PrivcmdHypercalls.createDomain}.
 *
 * @example A domain with ports 1 to 3 only, made from dom0
 * ```ts
 * import { type CreateDomainOptions, PrivcmdHypercalls } from "./privcmd.ts";
 * import { domainId, linuxDeviceStatus } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const options: CreateDomainOptions = { maxEvtchnPort: 3, maxVcpus: 1 };
 * const privcmd = linuxDeviceStatus({ path: "/dev/xen/privcmd" });
 * if (!privcmd.available) {
 *   // No domain can be made without privcmd: opening it is refused.
 *   assert.throws(() => new PrivcmdHypercalls({ path: "/dev/xen/privcmd" }), {
 *     name: "EventChannelError",
 *     op: "open",
 *     code: privcmd.code,
 *   });
 * } else {
 *   using xen = new PrivcmdHypercalls();
 *   if (domainId(xen) !== 0) {
 *     // Only the control domain may make domains.
 *     assert.throws(() => xen.createDomain(options), { op: "createdomain" });
 *   } else {
 *     const domain = xen.createDomain(options);
 *     try {
 *       // Port 0 is reserved; ports above max_evtchn_port are refused.
 *       const ports = [1, 2, 3].map(() => xen.allocUnbound(domain, 0));
 *       assert.deepEqual(ports, [1, 2, 3]);
 *       assert.throws(() => xen.allocUnbound(domain, 0), { code: "ENOSPC" });
 *     } finally {
 *       xen.destroyDomain(domain);
 *     }
 *   }
 * }
 * ```
 */
export interface CreateDomainOptions {
  /** The id to take; Xen picks a free one when omitted. */
  domain?: number;
  /** `max_evtchn_port`; 1023 (xl's default) when omitted. */
  maxEvtchnPort?: number;
  /** vCPUs to create (paused, never started); 1 when omitted. */
  maxVcpus?: number;
}

/**
 * The running hypervisor's version, from `__HYPERVISOR_xen_version`.
 *
 * @example The project's VM runs Xen 4.17.7
 * ```ts
 * import { PrivcmdHypercalls, type XenVersion } from "./privcmd.ts";
 * import { linuxDeviceStatus } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const privcmd = linuxDeviceStatus({ path: "/dev/xen/privcmd" });
 * if (privcmd.available) {
 *   using xen = new PrivcmdHypercalls();
 *   const version: XenVersion = xen.xenVersion();
 *   assert.ok(version.major >= 4);
 *   if (Deno.env.get("XENVM") === "1") {
 *     assert.deepEqual(version, { major: 4, minor: 17, extra: ".7" });
 *   }
 * } else {
 *   // No hypervisor to ask without privcmd: opening it is refused.
 *   assert.throws(() => new PrivcmdHypercalls({ path: "/dev/xen/privcmd" }), {
 *     name: "EventChannelError",
 *     op: "open",
 *     code: privcmd.code,
 *   });
 * }
 * ```
 */
export interface XenVersion {
  /** Such as 4. */
  major: number;
  /** Such as 17. */
  minor: number;
  /** Such as `".7"` (`XENVER_EXTRAVERSION`; may carry a vendor suffix). */
  extra: string;
}

/**
 * Event-channel hypercalls of a control domain through `/dev/xen/privcmd`,
 * as a {@linkcode Dom0Hypercalls}. Failures are
 * {@linkcode EventChannelError}s with the op's name (`"status"`,
 * `"alloc_unbound"`, `"reset"`) and Xen's own errno. Arguments are checked
 * first (domains uint16, ports uint32) with `EINVAL`.
 *
 * `reset` refuses dom0 and `DOMID_SELF` (with `EPERM`, before any
 * hypercall): resetting the calling domain closes its kernel's own ports.
 *
 * @example A port offered by dom0 to itself, where privcmd exists
 * ```ts
 * import { PrivcmdHypercalls } from "./privcmd.ts";
 * import { linuxDeviceStatus } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const privcmd = linuxDeviceStatus({ path: "/dev/xen/privcmd" });
 * if (privcmd.available) {
 *   using xen = new PrivcmdHypercalls();
 *   const port = xen.allocUnbound(0x7ff0, 0);
 *   assert.deepEqual(xen.status(0x7ff0, port), {
 *     status: "unbound",
 *     vcpu: 0,
 *     remoteDomain: 0,
 *   });
 *   xen.closePort(port); // no fd owns it: close it here
 * } else {
 *   assert.throws(() => new PrivcmdHypercalls({ path: "/dev/xen/privcmd" }), {
 *     name: "EventChannelError",
 *     op: "open",
 *     code: privcmd.code,
 *   });
 * }
 * ```
 */
export class PrivcmdHypercalls implements Dom0Hypercalls, Disposable {
  /** The privcmd device opened. */
  readonly path: string;
  /** Where the op structs live. */
  readonly buffer: HypercallBufferKind;

  #libc: Libc;
  /** The calls whose failure is reported (errno comes back in-call). */
  #sys: Syscalls;
  #fd: number;
  #bufferFd = -1;
  // The hypercall-safe page, by address only. Op structs are built in
  // #view (our own memory) and copied to and from the page around each
  // hypercall with libc's memcpy: a view straight onto the page would need
  // Deno.UnsafePointerView, which the narrow --allow-ffi=<libc> refuses.
  #pageAddress: bigint;
  #view = new DataView(new ArrayBuffer(PAGE_SIZE));
  #call = new BigUint64Array(PRIVCMD_HYPERCALL.size / 8);
  #closed = false;

  /**
   * Opens privcmd and maps one page of hypercall-safe memory.
   *
   * @param options Device path and buffer kind.
   * @throws {EventChannelError} `open` (`ENOENT` when not on Xen, `EACCES`
   * when not root), or `mmap` with its errno.
   * @throws {Deno.errors.NotCapable} without `--allow-ffi` (untouched).
   */
  constructor(options: PrivcmdOptions = {}) {
    const libc = acquireLibc();
    const sys = syscalls(libc);
    let fd = -1;
    try {
      let path = options.path ?? DEFAULT_PRIVCMD_PATH;
      try {
        fd = openFile(
          sys,
          path,
          O_RDWR | O_CLOEXEC,
          `privcmd device ${path}`,
          PRIVCMD_MODULE,
        );
      } catch (error) {
        if (
          options.path !== undefined || !(error instanceof EventChannelError) ||
          error.errno !== ERRNO.ENOENT
        ) throw error;
        try {
          fd = openFile(
            sys,
            LEGACY_PRIVCMD_PATH,
            O_RDWR | O_CLOEXEC,
            `privcmd device ${LEGACY_PRIVCMD_PATH}`,
            PRIVCMD_MODULE,
          );
        } catch (legacy) {
          // Neither exists: report the device Linux creates today, not the
          // old xenfs fallback that was tried last.
          if (
            legacy instanceof EventChannelError &&
            legacy.errno === ERRNO.ENOENT
          ) throw error;
          throw legacy;
        }
        path = LEGACY_PRIVCMD_PATH;
      }
      this.path = path;
      const kind = options.buffer ?? "auto";
      let page: bigint | undefined;
      let deviceError: unknown;
      if (kind !== "anonymous") {
        try {
          page = this.#mapDevice(libc, sys);
        } catch (error) {
          if (kind === "device") throw error;
          deviceError = error;
        }
      }
      this.buffer = page === undefined ? "anonymous" : "device";
      page ??= mapAnonymous(libc, sys, deviceError);
      this.#pageAddress = page;
    } catch (error) {
      if (this.#bufferFd >= 0) libc.close(this.#bufferFd);
      if (fd >= 0) libc.close(fd);
      releaseLibc();
      throw error;
    }
    this.#libc = libc;
    this.#sys = sys;
    this.#fd = fd;
  }

  #mapDevice(libc: Libc, sys: Syscalls): bigint {
    this.#bufferFd = openFile(
      sys,
      HYPERCALL_BUFFER_PATH,
      O_RDWR | O_CLOEXEC,
      `hypercall buffer device ${HYPERCALL_BUFFER_PATH}`,
      PRIVCMD_MODULE,
    );
    const page = sys.mmap(
      PAGE_BYTES,
      PROT_READ | PROT_WRITE,
      MAP_SHARED,
      this.#bufferFd,
      0n,
    );
    if (page < 0n) {
      const code = Number(-page);
      libc.close(this.#bufferFd);
      this.#bufferFd = -1;
      throw new EventChannelError("mmap", code, {
        argument: "path",
        value: HYPERCALL_BUFFER_PATH,
      });
    }
    return page;
  }

  #live(op: string): void {
    if (this.#closed) {
      throw new EventChannelError(op, "EBADF", { detail: "privcmd is closed" });
    }
  }

  /**
   * Issues one hypercall; a negative result throws with Xen's errno.
   *
   * @returns The (non-negative) result.
   */
  #hypercall(
    op: string,
    number: number,
    args: readonly bigint[],
    blame?: Blame,
  ): number {
    encodeHypercall(this.#call, number, args);
    const libc = this.#libc;
    libc.copyToAddress(this.#pageAddress, this.#view, PAGE_BYTES);
    const result = this.#sys.ioctl(
      this.#fd,
      IOCTL_PRIVCMD_HYPERCALL,
      this.#call,
    );
    // Xen's answer (OUT fields, or what it left on failure) back into our
    // view; the error came back in the result itself.
    const code = -result;
    libc.copyFromAddress(this.#view, this.#pageAddress, PAGE_BYTES);
    if (result < 0) throw refusal(op, code, blame);
    return result;
  }

  #eventChannelOp(
    op: keyof typeof OPS,
    blame: Blame,
  ): void {
    this.#hypercall(op, HYPERVISOR_EVENT_CHANNEL_OP, [
      BigInt(OPS[op]),
      this.#pageAddress,
    ], blame);
  }

  /**
   * `EVTCHNOP_status` of `port` in `domain`.
   *
   * @param domain The domain (`DOMID_SELF` = 0x7ff0 for the caller).
   * @param port The port.
   * @returns Its state.
   * @throws {EventChannelError} `status`: `ESRCH` for no such domain,
   * `EINVAL` for a port beyond the domain's valid range, `EPERM` when the
   * caller may not look.
   */
  status(domain: number, port: number): ChannelStatus {
    const op = "status";
    this.#live(op);
    const dom = checkUint(op, "dom", domain, DOMID_MAX);
    checkUint(op, "port", port, UINT32_MAX);
    encodeStatus(this.#view, dom, port);
    this.#eventChannelOp(
      op,
      (code) => code === ERRNO.EINVAL ? ["port", port] : ["dom", dom],
    );
    const status = decodeStatus(this.#view);
    if (status === undefined) {
      throw new EventChannelError(op, "EINVAL", {
        detail: `unknown status code ${this.#view.getUint32(8, true)}`,
      });
    }
    return status;
  }

  /**
   * `EVTCHNOP_alloc_unbound`: a new port in `domain` that `remoteDomain` may
   * connect to.
   *
   * @param domain The domain getting the port (`DOMID_SELF` for the caller).
   * @param remoteDomain The domain allowed to connect.
   * @returns The port.
   * @throws {EventChannelError} `alloc_unbound`: `ESRCH`, `EPERM`, `ENOSPC`.
   */
  allocUnbound(domain: number, remoteDomain: number): number {
    const op = "alloc_unbound";
    this.#live(op);
    const dom = checkUint(op, "dom", domain, DOMID_MAX);
    const remote = checkUint(op, "remote_dom", remoteDomain, DOMID_MAX);
    encodeAllocUnbound(this.#view, dom, remote);
    // Xen looks up only `dom`; `remote_dom` is stored unchecked.
    this.#eventChannelOp(op, () => ["dom", dom]);
    return this.#view.getUint32(EVTCHN_ALLOC_UNBOUND.port, true);
  }

  /**
   * `EVTCHNOP_close` of one of the **calling** domain's own ports: for
   * cleaning up a port made with `allocUnbound(DOMID_SELF, …)`, which no
   * device fd owns. Never pass a port the kernel or another fd holds.
   *
   * @param port The caller's port.
   * @throws {EventChannelError} `close`: `EINVAL` for an invalid port.
   */
  closePort(port: number): void {
    const op = "close";
    this.#live(op);
    checkUint(op, "port", port, UINT32_MAX);
    this.#view.setUint32(EVTCHN_CLOSE.port, port, true);
    this.#eventChannelOp(op, () => ["port", port]);
  }

  /**
   * `EVTCHNOP_reset`: closes every port of `domain`. Refuses dom0 and
   * `DOMID_SELF` without a hypercall.
   *
   * @param domain Any other domain.
   * @throws {EventChannelError} `reset`: `EPERM` for dom0/`DOMID_SELF`
   * (refused here), `ESRCH`, or Xen's errno.
   */
  reset(domain: number): void {
    const op = "reset";
    this.#live(op);
    const dom = checkUint(op, "dom", domain, DOMID_MAX);
    // privcmd issues hypercalls as the domain it runs in: dom0.
    refuseControlDomainReset(0, dom);
    encodeReset(this.#view, dom);
    this.#eventChannelOp(op, () => ["dom", dom]);
  }

  /**
   * `EVTCHNOP_set_priority` of one of the **calling** domain's own ports
   * (FIFO only). With a priority beyond `FIFO_PRIORITY.MIN` it changes
   * nothing and tells the domain's event ABI apart: 2-level refuses with
   * `ENOSYS`, FIFO with `EINVAL` (or `EACCES` for a port not bound).
   *
   * @param port The caller's port.
   * @param priority 0 (highest) to 15 (lowest).
   * @throws {EventChannelError} `set_priority`: `EINVAL` for an invalid
   * port or priority, `EACCES` for a port not bound, `ENOSYS` under the
   * 2-level ABI.
   */
  setPriority(port: number, priority: number): void {
    const op = "set_priority";
    this.#live(op);
    checkUint(op, "port", port, UINT32_MAX);
    checkUint(op, "priority", priority, UINT32_MAX);
    this.#view.setUint32(EVTCHN_SET_PRIORITY.port, port, true);
    this.#view.setUint32(EVTCHN_SET_PRIORITY.priority, priority, true);
    this.#eventChannelOp(
      op,
      (code) => code === ERRNO.EINVAL ? ["priority", priority] : undefined,
    );
  }

  /**
   * The hypervisor's version (`XENVER_VERSION`, `XENVER_EXTRAVERSION`).
   *
   * @returns Major, minor and the extra string.
   */
  xenVersion(): XenVersion {
    const op = "xen_version";
    this.#live(op);
    const version = this.#hypercall(op, HYPERVISOR_XEN_VERSION, [
      BigInt(XENVER_VERSION),
      0n,
    ]);
    new Uint8Array(this.#view.buffer, 0, XEN_EXTRAVERSION_LEN).fill(0);
    this.#hypercall(op, HYPERVISOR_XEN_VERSION, [
      BigInt(XENVER_EXTRAVERSION),
      this.#pageAddress,
    ]);
    const bytes = new Uint8Array(this.#view.buffer, 0, XEN_EXTRAVERSION_LEN);
    const end = bytes.indexOf(0);
    const extra = new TextDecoder().decode(
      bytes.slice(0, end < 0 ? XEN_EXTRAVERSION_LEN : end),
    );
    return { major: version >>> 16, minor: version & 0xffff, extra };
  }

  #domctl(op: string, domain: number): number {
    this.#hypercall(
      op,
      HYPERVISOR_DOMCTL,
      [this.#pageAddress],
      (code) =>
        code === ERRNO.EACCES
          ? ["interface_version", XEN_DOMCTL_INTERFACE_VERSION_4_17]
          : ["domain", domain],
    );
    return this.#view.getUint16(XEN_DOMCTL_STRUCT.domain, true);
  }

  /**
   * Creates an empty PV domain that is never started (`XEN_DOMCTL_createdomain`
   * then `XEN_DOMCTL_max_vcpus`): a peer for interdomain channels and a safe
   * target for `reset`. Speaks Xen 4.17's domctl interface (0x15) only;
   * another Xen refuses it with `EACCES`. Remove it with
   * {@linkcode PrivcmdHypercalls.destroyDomain}.
   *
   * @param options Id, port limit, vCPUs.
   * @returns The new domain's id.
   * @throws {EventChannelError} `createdomain` / `max_vcpus` with Xen's
   * errno (`EEXIST` for a taken id, `EACCES` for another Xen version).
   */
  createDomain(options: CreateDomainOptions = {}): number {
    const op = "createdomain";
    this.#live(op);
    const wanted = options.domain ?? 0;
    checkUint(op, "domain", wanted, DOMID_FIRST_RESERVED - 1);
    const maxVcpus = checkUint(op, "max_vcpus", options.maxVcpus ?? 1, 128);
    const maxEvtchnPort = checkUint(
      op,
      "max_evtchn_port",
      options.maxEvtchnPort ?? 1023,
      UINT32_MAX,
    );
    const handle = crypto.getRandomValues(new Uint8Array(16));
    encodeCreateDomain(this.#view, {
      domain: wanted,
      maxVcpus,
      maxEvtchnPort,
      handle,
    });
    const domain = this.#domctl(op, wanted);
    try {
      encodeMaxVcpus(this.#view, domain, maxVcpus);
      this.#domctl("max_vcpus", domain);
    } catch (error) {
      encodeDestroyDomain(this.#view, domain);
      try {
        this.#domctl("destroydomain", domain);
      } catch { /* keep the first error */ }
      throw error;
    }
    return domain;
  }

  /**
   * Destroys a domain (`XEN_DOMCTL_destroydomain`); its ports close and
   * interdomain peers become unbound. Refuses dom0 and `DOMID_SELF`.
   *
   * @param domain The domain.
   * @throws {EventChannelError} `destroydomain`: `ESRCH`, `EPERM`.
   */
  destroyDomain(domain: number): void {
    const op = "destroydomain";
    this.#live(op);
    const dom = checkUint(op, "domain", domain, DOMID_MAX);
    if (dom === 0 || dom === DOMID_SELF) {
      throw new EventChannelError(op, "EPERM", {
        argument: "domain",
        value: dom,
        detail: "refusing to destroy the control domain",
      });
    }
    encodeDestroyDomain(this.#view, dom);
    this.#domctl(op, dom);
  }

  /** Whether {@linkcode PrivcmdHypercalls.close} has been called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Unmaps the page, closes the fds and gives libc back. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#libc.munmap(this.#pageAddress, PAGE_BYTES);
    if (this.#bufferFd >= 0) this.#libc.close(this.#bufferFd);
    this.#libc.close(this.#fd);
    this.#bufferFd = -1;
    this.#fd = -1;
    releaseLibc();
  }

  /** Same as {@linkcode PrivcmdHypercalls.close} (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }
}

function mapAnonymous(
  libc: Libc,
  sys: Syscalls,
  deviceError: unknown,
): bigint {
  const page = sys.mmap(
    PAGE_BYTES,
    PROT_READ | PROT_WRITE,
    MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED,
    -1,
    0n,
  );
  if (page < 0n) {
    throw new EventChannelError("mmap", Number(-page), {
      detail: "anonymous MAP_LOCKED page for hypercall arguments",
      cause: deviceError,
    });
  }
  // Like libxencall: a fork must not leave the child sharing (or the parent
  // copy-on-write faulting) the page Xen reads.
  libc.madvise(page, PAGE_BYTES, MADV_DONTFORK);
  return page;
}
