// dom0_smoke.ts - a tiny Deno test for the real-Xen harness: proves that the host's
// Deno runs in dom0, that node: built-ins resolve offline there, and (in dom0,
// where boot.sh sets XENVM=1) that the event-channel device is present.
// Not named *_test.ts on purpose: run explicitly, e.g.
//   tests/xen/boot.sh --deno -- deno test --no-check -A tests/xen/dom0_smoke.ts
// (-A: Deno wants --allow-all for anything under /dev)
import { ok, strictEqual } from "node:assert/strict";

Deno.test("node:assert/strict works", () => {
  strictEqual(1 + 1, 2);
});

Deno.test({
  name: "dom0 has /dev/xen/evtchn",
  ignore: Deno.env.get("XENVM") !== "1",
  fn(): void {
    ok(
      Deno.statSync("/dev/xen/evtchn").isCharDevice,
      "/dev/xen/evtchn is not a char device",
    );
  },
});
