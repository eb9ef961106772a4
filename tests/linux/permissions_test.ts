// The linux backend under the narrow grant the README documents
// (--allow-ffi=<the libc path>), device probing through libc, and what
// happens to a bad EVTCHN_LIBC. Runs on any Linux machine: the devices are
// ordinary files (/dev/null) or missing paths.
//
// deno test --sanitize-ops --sanitize-resources --allow-read --allow-ffi \
//   --allow-env tests/linux/permissions_test.ts

import assert from "node:assert/strict";
import {
  acquireLibc,
  libcCandidates,
  libcUsers,
  releaseLibc,
} from "../../backends/linux/_libc.ts";
import { syscalls } from "../../backends/linux/_syscall.ts";
import {
  domainId,
  eventAbi,
  ffiGranted,
  kernelRelease,
  openLinuxHandle,
  openPrivcmd,
  probeDevice,
} from "../../backends/linux/mod.ts";
import { EventChannelError } from "../../errors.ts";
import type { ChannelStatus } from "../../hypercalls.ts";
import { ptyAvailable } from "./_env.ts";
import { assertEvtchnError } from "./_util.ts";

const linux = Deno.build.os === "linux";
const pty = linux && ptyAvailable();
/** The one C library the narrow grant names (the first existing candidate). */
const LIBC = linux
  ? libcCandidates().find((path) => {
    try {
      return path.startsWith("/") && Deno.statSync(path).isFile;
    } catch {
      return false;
    }
  })
  : undefined;

Deno.test({
  name: "narrow --allow-ffi=<libc>: errno, EAGAIN and privcmd plumbing work" +
    (LIBC === undefined ? " [ignored: no absolute libc path here]" : ""),
  ignore: LIBC === undefined,
  permissions: { ffi: [LIBC ?? "/"], read: true, env: true },
  async fn(t): Promise<void> {
    await t.step(
      "the grant is narrow: Deno's pointer views are refused",
      () => {
        assert.equal(
          Deno.permissions.querySync({ name: "ffi" }).state,
          "prompt",
        );
        assert.throws(
          () => Deno.UnsafePointer.of(new Uint8Array(1)),
          Deno.errors.NotCapable,
        );
        assert.equal(ffiGranted(), true);
      },
    );
    await t.step({
      name: "the errno comes back in-call under the narrow grant too" +
        (Deno.build.arch === "x86_64" ? "" : " [ignored: x86-64 only]"),
      ignore: Deno.build.arch !== "x86_64",
      fn(): void {
        const libc = acquireLibc();
        try {
          assert.equal(syscalls(libc).capture, "in-call");
        } finally {
          releaseLibc();
        }
      },
    });
    await t.step(
      "a failing ioctl reports the kernel's errno (ENOTTY)",
      async () => {
        await using handle = openLinuxHandle({ path: "/dev/null" });
        assertEvtchnError(() => handle.notify(1), "notify", "ENOTTY", {
          errno: 25,
        });
        // A second failure in a row reads errno again, not a cached value.
        assertEvtchnError(() => handle.unbind(1), "unbind", "ENOTTY");
      },
    );
    await t.step({
      name: "an empty nonblocking read is EAGAIN: null, nothing thrown" +
        (pty ? "" : " [ignored: /dev/ptmx cannot be opened]"),
      ignore: !pty,
      async fn(): Promise<void> {
        // A pty master nobody wrote to: read(2) fails with EAGAIN, the path
        // the README's API example died on under the narrow grant.
        await using handle = openLinuxHandle({ path: "/dev/ptmx" });
        assert.equal(handle.read(new Uint8Array(4)), null);
        assert.equal(handle.poll(), undefined);
      },
    });
    await t.step("open of a missing device: ENOENT with the path", () => {
      assertEvtchnError(
        () => openLinuxHandle({ path: "/nonexistent/xen/evtchn" }),
        "open",
        "ENOENT",
        { argument: "path", value: "/nonexistent/xen/evtchn" },
      );
    });
    await t.step(
      "privcmd on /dev/null: the page is copied, errno is ENOTTY",
      () => {
        using xen = openPrivcmd({ path: "/dev/null", buffer: "anonymous" });
        assertEvtchnError(() => xen.status(0, 1), "status", "ENOTTY");
        assertEvtchnError(() => xen.xenVersion(), "xen_version", "ENOTTY");
      },
    );
    await t.step("device probes and the kernel release, through libc", () => {
      assert.equal(probeDevice("/dev/null").state, "present");
      assert.deepEqual(probeDevice("/nonexistent/xen/evtchn"), {
        path: "/nonexistent/xen/evtchn",
        state: "absent",
        code: "ENOENT",
      });
      assert.match(kernelRelease(), /^\d+\.\d+/);
    });
    assert.equal(libcUsers(), 0);
  },
});

// Meaningful only where neither privcmd exists: in dom0 it is ignored with
// "[ignored: off Xen only …]", the one reason the real-Xen stage accepts.
const privcmdAbsent = linux &&
  probeDevice("/dev/xen/privcmd").state === "absent" &&
  probeDevice("/proc/xen/privcmd").state === "absent";
Deno.test({
  name: "openPrivcmd() off Xen names /dev/xen/privcmd, not the xenfs fallback" +
    (!linux
      ? " [ignored: not Linux]"
      : privcmdAbsent
      ? ""
      : " [ignored: off Xen only: privcmd exists here]"),
  ignore: !privcmdAbsent,
  fn(): void {
    const error = assertEvtchnError(() => openPrivcmd(), "open", "ENOENT", {
      argument: "path",
      value: "/dev/xen/privcmd",
    });
    assert.match(error.message, /\/dev\/xen\/privcmd/);
    assert.doesNotMatch(error.message, /\/proc\/xen/);
    assert.equal(libcUsers(), 0);
  },
});

Deno.test({
  name: "a bad EVTCHN_LIBC is a clear error, never silently replaced" +
    (linux ? "" : " [ignored: not Linux]"),
  ignore: !linux,
  async fn(t): Promise<void> {
    const previous = Deno.env.get("EVTCHN_LIBC");
    const withLibc = (value: string, fn: () => void): void => {
      Deno.env.set("EVTCHN_LIBC", value);
      try {
        fn();
      } finally {
        if (previous === undefined) Deno.env.delete("EVTCHN_LIBC");
        else Deno.env.set("EVTCHN_LIBC", previous);
      }
      assert.equal(libcUsers(), 0);
    };
    await t.step("missing file: dlopen ENOENT naming EVTCHN_LIBC", () => {
      withLibc("/nonexistent/libc.so.6", () => {
        const error = assertEvtchnError(
          () => openLinuxHandle({ path: "/dev/null" }),
          "dlopen",
          "ENOENT",
          { argument: "EVTCHN_LIBC", value: "/nonexistent/libc.so.6" },
        );
        assert.match(error.message, /unset EVTCHN_LIBC/);
      });
    });
    await t.step("not a C library: dlopen EINVAL", () => {
      withLibc("/dev/null", () => {
        assertEvtchnError(
          () => openPrivcmd({ path: "/dev/null" }),
          "dlopen",
          "EINVAL",
          { argument: "EVTCHN_LIBC", value: "/dev/null" },
        );
      });
    });
    await t.step("the device probe reports it the same way", () => {
      withLibc("/nonexistent/libc.so.6", () => {
        assert.throws(
          () => probeDevice("/dev/null"),
          (error: unknown) =>
            error instanceof EventChannelError && error.op === "dlopen",
        );
      });
    });
  },
});

Deno.test({
  name: "EVTCHN_LIBC outside a narrow --allow-ffi: EACCES naming the flag" +
    (LIBC === undefined ? " [ignored: no absolute libc path here]" : ""),
  ignore: LIBC === undefined,
  permissions: { ffi: [LIBC ?? "/"], read: true, env: true },
  fn(): void {
    const previous = Deno.env.get("EVTCHN_LIBC");
    Deno.env.set("EVTCHN_LIBC", "/opt/other/libc.so.6");
    try {
      const error = assertEvtchnError(
        () => openLinuxHandle({ path: "/dev/null" }),
        "dlopen",
        "EACCES",
        { argument: "EVTCHN_LIBC" },
      );
      assert.match(error.message, /--allow-ffi=\/opt\/other\/libc\.so\.6/);
    } finally {
      if (previous === undefined) Deno.env.delete("EVTCHN_LIBC");
      else Deno.env.set("EVTCHN_LIBC", previous);
    }
    assert.equal(libcUsers(), 0);
  },
});

Deno.test("domainId and eventAbi read Xen's and the device's answers", async (t) => {
  await t.step("domainId: the remote end Xen stored for DOMID_SELF", () => {
    const calls: string[] = [];
    const fake = {
      allocUnbound(dom: number, remote: number): number {
        calls.push(`alloc ${dom} ${remote}`);
        return 30;
      },
      status(dom: number, port: number): ChannelStatus {
        calls.push(`status ${dom} ${port}`);
        return { status: "unbound" as const, vcpu: 0, remoteDomain: 0 };
      },
      closePort(port: number): void {
        calls.push(`close ${port}`);
      },
    };
    assert.equal(domainId(fake), 0);
    assert.deepEqual(calls, [
      "alloc 32752 32752",
      "status 32752 30",
      "close 30",
    ]);
  });
  await t.step("eventAbi: ENOTCONN is 2-level, EINVAL is FIFO", () => {
    const refusing = (code: "ENOTCONN" | "EINVAL" | "EBADF") => ({
      unbind(): void {
        throw new EventChannelError("unbind", code);
      },
    });
    assert.equal(eventAbi(refusing("ENOTCONN")), "2l");
    assert.equal(eventAbi(refusing("EINVAL")), "fifo");
    assert.equal(eventAbi(refusing("EBADF")), "unknown");
  });
});
