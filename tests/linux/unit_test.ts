// The `linux` backend's tests that run on any Linux machine: ioctl codes,
// struct layouts, errno plumbing on ordinary device files, the wait/close
// machinery, library loading and permissions.
//
// deno test --sanitize-ops --sanitize-resources --allow-read --allow-ffi \
//   --allow-env tests/linux/

import assert from "node:assert/strict";
import {
  BIND_INTERDOMAIN,
  decodeStatus,
  encodeAllocUnbound,
  encodeHypercall,
  encodeReset,
  encodeStatus,
  EVTCHN_ALLOC_UNBOUND,
  EVTCHN_STATUS,
  IOCTL_EVTCHN_BIND_INTERDOMAIN,
  IOCTL_EVTCHN_BIND_UNBOUND_PORT,
  IOCTL_EVTCHN_BIND_VIRQ,
  IOCTL_EVTCHN_NOTIFY,
  IOCTL_EVTCHN_RESET,
  IOCTL_EVTCHN_RESTRICT_DOMID,
  IOCTL_EVTCHN_UNBIND,
  IOCTL_PRIVCMD_HYPERCALL,
  PRIVCMD_HYPERCALL,
} from "../../backends/linux/_evtchn_h.ts";
import {
  encodeCreateDomain,
  encodeDestroyDomain,
  encodeMaxVcpus,
  XEN_DOMCTL_CREATEDOMAIN,
  XEN_DOMCTL_INTERFACE_VERSION_4_17,
  XEN_DOMCTL_STRUCT,
} from "../../backends/linux/_domctl_h.ts";
import { libcCandidates, libcUsers } from "../../backends/linux/_libc.ts";
import {
  linuxDeviceStatus,
  LinuxEvtchnDevice,
  openLinuxHandle,
  openPrivcmd,
} from "../../backends/linux/mod.ts";
import { ptyAvailable } from "./_env.ts";
import { assertEvtchnError } from "./_util.ts";

Deno.test("ioctl request codes equal <xen/evtchn.h> and <xen/privcmd.h>", () => {
  assert.equal(IOCTL_EVTCHN_BIND_VIRQ, 0x00044500n);
  assert.equal(IOCTL_EVTCHN_BIND_INTERDOMAIN, 0x00084501n);
  assert.equal(IOCTL_EVTCHN_BIND_UNBOUND_PORT, 0x00044502n);
  assert.equal(IOCTL_EVTCHN_UNBIND, 0x00044503n);
  assert.equal(IOCTL_EVTCHN_NOTIFY, 0x00044504n);
  assert.equal(IOCTL_EVTCHN_RESET, 0x00004505n);
  assert.equal(IOCTL_EVTCHN_RESTRICT_DOMID, 0x00024506n);
  assert.equal(IOCTL_PRIVCMD_HYPERCALL, 0x00305000n);
});

Deno.test("struct layouts", async (t) => {
  await t.step("ioctl_evtchn_bind_interdomain is two u32", () => {
    assert.deepEqual(BIND_INTERDOMAIN, {
      size: 8,
      remote_domain: 0,
      remote_port: 4,
    });
  });

  await t.step("privcmd_hypercall: op then arg[5], 48 bytes", () => {
    const call = new BigUint64Array(PRIVCMD_HYPERCALL.size / 8);
    call.fill(7n);
    encodeHypercall(call, 32, [5n, 0x1000n]);
    assert.deepEqual([...call], [32n, 5n, 0x1000n, 0n, 0n, 0n]);
  });

  await t.step("evtchn_status inputs, zeroed outputs", () => {
    const bytes = new Uint8Array(24).fill(0xaa);
    encodeStatus(new DataView(bytes.buffer), 0x7ff0, 27);
    assert.deepEqual(
      [...bytes],
      [0xf0, 0x7f, 0, 0, 27, 0, 0, 0, ...new Array(16).fill(0)],
    );
    assert.equal(EVTCHN_STATUS.size, 24);
  });

  await t.step("evtchn_status outputs decode per state", () => {
    const view = new DataView(new ArrayBuffer(24));
    const fill = (status: number, vcpu: number, u: number[]): DataView => {
      encodeStatus(view, 0, 0);
      view.setUint32(8, status, true);
      view.setUint32(12, vcpu, true);
      u.forEach((b, i) => view.setUint8(16 + i, b));
      return view;
    };
    assert.deepEqual(decodeStatus(fill(0, 0, [])), {
      status: "closed",
      vcpu: 0,
    });
    assert.deepEqual(decodeStatus(fill(1, 1, [5, 0, 0xee, 0xee])), {
      status: "unbound",
      vcpu: 1,
      remoteDomain: 5,
    });
    assert.deepEqual(
      decodeStatus(fill(2, 0, [1, 0, 0xee, 0xee, 0x2c, 0x01, 0, 0])),
      { status: "interdomain", vcpu: 0, remoteDomain: 1, remotePort: 300 },
    );
    assert.deepEqual(decodeStatus(fill(3, 0, [9, 0, 0, 0])), {
      status: "pirq",
      vcpu: 0,
      pirq: 9,
    });
    assert.deepEqual(decodeStatus(fill(4, 1, [0, 0, 0, 0])), {
      status: "virq",
      vcpu: 1,
      virq: 0,
    });
    assert.deepEqual(decodeStatus(fill(5, 1, [])), { status: "ipi", vcpu: 1 });
    assert.equal(decodeStatus(fill(6, 0, [])), undefined);
  });

  await t.step("evtchn_alloc_unbound and evtchn_reset", () => {
    const bytes = new Uint8Array(8).fill(0xaa);
    const view = new DataView(bytes.buffer);
    encodeAllocUnbound(view, 0x7ff0, 1);
    assert.deepEqual([...bytes], [0xf0, 0x7f, 1, 0, 0, 0, 0, 0]);
    assert.equal(EVTCHN_ALLOC_UNBOUND.port, 4);
    encodeReset(view, 3);
    assert.deepEqual([...bytes.subarray(0, 2)], [3, 0]);
  });

  await t.step("xen_domctl for Xen 4.17 (interface 0x15)", () => {
    assert.equal(XEN_DOMCTL_INTERFACE_VERSION_4_17, 0x15);
    assert.equal(XEN_DOMCTL_STRUCT.size, 144);
    assert.equal(XEN_DOMCTL_CREATEDOMAIN.end - XEN_DOMCTL_STRUCT.u, 64);
    const bytes = new Uint8Array(144).fill(0xaa);
    const view = new DataView(bytes.buffer);
    const handle = new Uint8Array(16).map((_, i) => i + 1);
    encodeCreateDomain(view, {
      domain: 0,
      maxVcpus: 1,
      maxEvtchnPort: 1023,
      handle,
    });
    const u32 = (offset: number): number => view.getUint32(offset, true);
    const i32 = (offset: number): number => view.getInt32(offset, true);
    assert.equal(u32(0), 1); // cmd = XEN_DOMCTL_createdomain
    assert.equal(u32(4), 0x15); // interface_version
    assert.equal(view.getUint16(8, true), 0); // domain: Xen picks
    assert.equal(u32(16), 0); // ssidref
    assert.deepEqual([...bytes.subarray(20, 36)], [...handle]);
    assert.equal(u32(36), 0); // flags: PV
    assert.equal(u32(44), 1); // max_vcpus
    assert.equal(u32(48), 1023); // max_evtchn_port
    assert.equal(i32(52), -1); // max_grant_frames: default
    assert.equal(i32(56), -1); // max_maptrack_frames: default
    assert.equal(u32(60), 1); // grant_opts: version 1
    assert.equal(u32(72), 0); // arch.emulation_flags
    assert.ok(bytes.subarray(80).every((b) => b === 0), "rest of u zeroed");

    encodeMaxVcpus(view, 7, 2);
    assert.deepEqual([u32(0), u32(4), view.getUint16(8, true), u32(16)], [
      15,
      0x15,
      7,
      2,
    ]);
    encodeDestroyDomain(view, 7);
    assert.deepEqual([u32(0), view.getUint16(8, true), u32(16)], [2, 7, 0]);
  });
});

Deno.test("opening a path that does not exist", async (t) => {
  await t.step("evtchn: EventChannelError open ENOENT", () => {
    const error = assertEvtchnError(
      () => openLinuxHandle({ path: "/nonexistent/xen/evtchn" }),
      "open",
      "ENOENT",
      { errno: 2, argument: "path", value: "/nonexistent/xen/evtchn" },
    );
    assert.match(error.message, /Xen host/);
    assert.match(error.message, /--allow-ffi/);
  });

  await t.step("privcmd: EventChannelError open ENOENT", () => {
    assertEvtchnError(
      () => openPrivcmd({ path: "/nonexistent/xen/privcmd" }),
      "open",
      "ENOENT",
    );
  });

  await t.step("hypercall buffer device required but absent", () => {
    if (linuxDeviceStatus({ path: "/dev/xen/hypercall" }).available) return;
    assertEvtchnError(
      () => openPrivcmd({ path: "/dev/null", buffer: "device" }),
      "open",
      "ENOENT",
      { value: "/dev/xen/hypercall" },
    );
  });

  await t.step("no libc reference is left behind", () => {
    assert.equal(libcUsers(), 0);
  });
});

Deno.test("real errno from the kernel (on /dev/null, which has no ioctls)", async (t) => {
  await using handle = openLinuxHandle({ path: "/dev/null" });
  assert.equal(handle.backend, "linux");
  await t.step("every ioctl gives ENOTTY with its op name", () => {
    assertEvtchnError(
      () => handle.bindUnboundPort(0),
      "bind_unbound_port",
      "ENOTTY",
    );
    assertEvtchnError(
      () => handle.bindInterdomain(0, 1),
      "bind_interdomain",
      "ENOTTY",
    );
    assertEvtchnError(() => handle.bindVirq(3), "bind_virq", "ENOTTY");
    assertEvtchnError(() => handle.unbind(1), "unbind", "ENOTTY");
    assertEvtchnError(() => handle.notify(1), "notify", "ENOTTY");
    assertEvtchnError(() => handle.reset(), "reset", "ENOTTY");
    assertEvtchnError(
      () => handle.restrictDomain(1),
      "restrict_domid",
      "ENOTTY",
    );
  });
  await t.step("read and write go straight through", () => {
    assert.equal(handle.read(new Uint8Array(8)), 0); // EOF
    assert.equal(handle.write(new Uint8Array(6)), 6);
    assert.equal(handle.poll(), undefined);
  });
  await t.step("validation happens before the device", () => {
    assertEvtchnError(() => handle.notify(-1), "notify", "EINVAL", {
      argument: "port",
    });
  });
});

Deno.test("a closed handle refuses every method with EBADF", async () => {
  const handle = openLinuxHandle({ path: "/dev/null" });
  const before = libcUsers();
  await handle.close();
  assert.equal(libcUsers(), before - 1);
  assert.equal(handle.closed, true);
  const calls: [string, () => unknown][] = [
    ["bind_unbound_port", () => handle.bindUnboundPort(0)],
    ["bind_interdomain", () => handle.bindInterdomain(0, 1)],
    ["bind_virq", () => handle.bindVirq(0)],
    ["unbind", () => handle.unbind(1)],
    ["notify", () => handle.notify(1)],
    ["reset", () => handle.reset()],
    ["restrict_domid", () => handle.restrictDomain(1)],
    ["read", () => handle.read(new Uint8Array(4))],
    ["write", () => handle.write(new Uint8Array(4))],
    ["read", () => handle.poll()],
    ["unmask", () => handle.unmask(1)],
  ];
  for (const [op, call] of calls) assertEvtchnError(call, op, "EBADF");
  await assert.rejects(handle.next(), { name: "EventChannelError" });
  assert.equal(await handle.close(), undefined, "close is idempotent");
});

Deno.test("a closed device refuses every method with EBADF", async () => {
  const device = new LinuxEvtchnDevice({ path: "/dev/null" });
  await device.close();
  assert.equal(device.closed, true);
  assertEvtchnError(() => device.notify(1), "notify", "EBADF");
  assertEvtchnError(() => device.read(new Uint8Array(4)), "read", "EBADF");
  assertEvtchnError(() => device.write(new Uint8Array(4)), "write", "EBADF");
  await device.readable(new AbortController().signal); // resolves at once
});

Deno.test("readable resolves at once on a readable fd", async () => {
  await using handle = openLinuxHandle({ path: "/dev/zero" });
  const device = new LinuxEvtchnDevice({ path: "/dev/zero" });
  try {
    await device.readable(new AbortController().signal);
  } finally {
    await device.close();
  }
  assert.equal(handle.poll(), 0); // /dev/zero reads zeros: port 0
});

const pty = ptyAvailable();
Deno.test({
  name: `waiting on an fd that never becomes readable (a pty master)${
    pty ? "" : " [ignored: /dev/ptmx cannot be opened]"
  }`,
  ignore: !pty,
  async fn(t): Promise<void> {
    await t.step("close wakes the waiter, which ends with EBADF", async () => {
      const handle = openLinuxHandle({ path: "/dev/ptmx" });
      const waiter = handle.next();
      const started = performance.now();
      await new Promise((resolve) => setTimeout(resolve, 50));
      const closed = handle.close();
      await assert.rejects(waiter, {
        name: "EventChannelError",
        code: "EBADF",
      });
      await closed;
      assert.ok(performance.now() - started < 900, "woken, not timed out");
    });

    await t.step("the async iterator ends on close", async () => {
      const handle = openLinuxHandle({ path: "/dev/ptmx" });
      const seen: number[] = [];
      const loop = (async () => {
        for await (const port of handle) seen.push(port);
      })();
      await new Promise((resolve) => setTimeout(resolve, 20));
      await handle.close();
      await loop;
      assert.deepEqual(seen, []);
    });

    await t.step("several waiters share one poll and all end", async () => {
      const handle = openLinuxHandle({ path: "/dev/ptmx" });
      const waiters = Promise.allSettled([
        handle.next(),
        handle.next(),
        handle.next(),
      ]);
      await new Promise((resolve) => setTimeout(resolve, 20));
      await handle.close();
      for (const result of await waiters) {
        assert.equal(result.status, "rejected");
        assert.equal(result.reason.code, "EBADF");
      }
    });

    await t.step(
      "abort ends one wait; the last leaving stops the poll",
      async () => {
        const handle = openLinuxHandle({ path: "/dev/ptmx" });
        const controller = new AbortController();
        const waiter = handle.next({ signal: controller.signal });
        await new Promise((resolve) => setTimeout(resolve, 20));
        controller.abort(new Error("stop"));
        await assert.rejects(waiter, { message: "stop" });
        // The poll was woken and has ended, so close releases synchronously.
        await new Promise((resolve) => setTimeout(resolve, 100));
        const users = libcUsers();
        void handle.close();
        assert.equal(libcUsers(), users - 1, "released without awaiting");
      },
    );

    await t.step("a pre-aborted signal never parks a poll", async () => {
      const handle = openLinuxHandle({ path: "/dev/ptmx" });
      const users = libcUsers();
      await assert.rejects(
        handle.next({ signal: AbortSignal.abort(new Error("early")) }),
        { message: "early" },
      );
      handle[Symbol.dispose]();
      assert.equal(libcUsers(), users - 1);
    });

    await t.step("the wait outlives the poll timeout", async () => {
      const handle = openLinuxHandle({ path: "/dev/ptmx" });
      const waiter = handle.next();
      const settled = assert.rejects(waiter, { code: "EBADF" });
      await new Promise((resolve) => setTimeout(resolve, 1300));
      await handle.close();
      await settled;
    });
  },
});

Deno.test("privcmd plumbing on /dev/null with an anonymous locked page", async (t) => {
  using xen = openPrivcmd({ path: "/dev/null", buffer: "anonymous" });
  assert.equal(xen.buffer, "anonymous");
  await t.step("the hypercall ioctl fails with the kernel's errno", () => {
    assertEvtchnError(() => xen.status(0, 1), "status", "ENOTTY");
    assertEvtchnError(
      () => xen.allocUnbound(0x7ff0, 0),
      "alloc_unbound",
      "ENOTTY",
    );
    assertEvtchnError(() => xen.reset(1), "reset", "ENOTTY");
  });
  await t.step("arguments are checked first", () => {
    assertEvtchnError(() => xen.status(0x10000, 1), "status", "EINVAL", {
      argument: "dom",
    });
    assertEvtchnError(() => xen.status(0, 2 ** 32), "status", "EINVAL", {
      argument: "port",
    });
    assertEvtchnError(
      () => xen.allocUnbound(0, -1),
      "alloc_unbound",
      "EINVAL",
      {
        argument: "remote_dom",
      },
    );
  });
  await t.step(
    "reset of dom0 or DOMID_SELF is refused without a hypercall",
    () => {
      assertEvtchnError(() => xen.reset(0), "reset", "EPERM");
      assertEvtchnError(() => xen.reset(0x7ff0), "reset", "EPERM");
      assertEvtchnError(() => xen.destroyDomain(0), "destroydomain", "EPERM");
    },
  );
  await t.step("closed: EBADF", () => {
    xen.close();
    assertEvtchnError(() => xen.status(0, 1), "status", "EBADF");
    xen.close();
  });
});

Deno.test("library resolution", async (t) => {
  await t.step(
    "EVTCHN_LIBC is the only candidate, and a bad one is an error",
    () => {
      const previous = Deno.env.get("EVTCHN_LIBC");
      Deno.env.set("EVTCHN_LIBC", "/nonexistent/libc.so.6");
      try {
        assert.deepEqual(libcCandidates(), ["/nonexistent/libc.so.6"]);
        assertEvtchnError(
          () => openLinuxHandle({ path: "/dev/null" }),
          "dlopen",
          "ENOENT",
          { argument: "EVTCHN_LIBC", value: "/nonexistent/libc.so.6" },
        );
        assert.equal(libcUsers(), 0);
      } finally {
        if (previous === undefined) Deno.env.delete("EVTCHN_LIBC");
        else Deno.env.set("EVTCHN_LIBC", previous);
      }
    },
  );
  await t.step("the soname is the last resort", () => {
    assert.equal(libcCandidates().at(-1), "libc.so.6");
  });
});

Deno.test({
  name: "without --allow-ffi: NotCapable, untouched; status says why",
  permissions: { ffi: false, read: true, env: true },
  fn(): void {
    assert.throws(
      () => openLinuxHandle({ path: "/dev/null" }),
      Deno.errors.NotCapable,
    );
    assert.throws(() => openPrivcmd(), Deno.errors.NotCapable);
    assert.deepEqual(linuxDeviceStatus(), {
      available: false,
      reason: "--allow-ffi not granted",
    });
    assert.equal(libcUsers(), 0);
  },
});

Deno.test("linuxDeviceStatus never throws", () => {
  const missing = linuxDeviceStatus({ path: "/nonexistent/xen/evtchn" });
  assert.deepEqual(missing, {
    available: false,
    reason: "/nonexistent/xen/evtchn: ENOENT",
    code: "ENOENT",
  });
  assert.deepEqual(linuxDeviceStatus({ path: "/dev/null" }), {
    available: true,
  });
  assert.equal(libcUsers(), 0);
});
