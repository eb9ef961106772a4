// The `linux` backend's conformance cases (tests/conformance/linux_test.ts),
// run unchanged in a Deno subprocess whose "libc" is libevtchn_preload.so
// (EVTCHN_LIBC): its open("/dev/xen/evtchn"), ioctl, read, write, poll and
// close reach `evtchn serve`'s dom0. The dom0-hypercall cases need privcmd,
// which serve does not offer: they are ignored there, with their reason.

import assert from "node:assert/strict";
import { NO_TOOLCHAIN, removeShim, shim, startServer } from "./_shim.ts";

const ignore = NO_TOOLCHAIN !== undefined;

Deno.test({
  name: ignore
    ? `linux conformance through the preload library [ignored: ${NO_TOOLCHAIN}]`
    : "linux conformance through the preload library",
  ignore,
  async fn(): Promise<void> {
    const built = await shim();
    try {
      await using s = await startServer();
      const suite = new URL("../conformance/linux_test.ts", import.meta.url)
        .pathname;
      const output = await new Deno.Command(Deno.execPath(), {
        args: [
          "test",
          "--no-check",
          "--allow-all",
          "--sanitize-ops",
          "--sanitize-resources",
          suite,
        ],
        env: {
          EVTCHN_LIBC: built["libevtchn_preload.so"],
          EVTCHN_SOCKET: s.socket,
          NO_COLOR: "1",
        },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(output.stdout);
      assert.equal(
        output.code,
        0,
        text + new TextDecoder().decode(output.stderr),
      );
      const summary = text.match(
        /ok \| (\d+) passed \| 0 failed \| (\d+) ignored/,
      );
      assert.ok(summary, text);
      // Every case ran and passed but those that need what serve does not
      // offer (/dev/xen/privcmd): each of those says so in its name.
      const ignored = text.split("\n").filter((l) => / \.\.\. ignored/.test(l));
      assert.equal(Number(summary[2]), ignored.length, text);
      for (const line of ignored) assert.match(line, /privcmd/, line);
      assert.ok(Number(summary[1]) >= 17, text);
      assert.match(text, /ring overflow gives EFBIG until reset \.\.\. ok/);
      assert.equal(s.server.clients, 0);
      assert.deepEqual(s.log, []);
    } finally {
      await removeShim();
    }
  },
});
