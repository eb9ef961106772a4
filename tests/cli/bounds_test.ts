// Counts and durations have documented upper bounds, checked when the
// command line is parsed: a usage error (exit 2), never a RangeError, an
// 8 GB allocation, or a timer that overflows into "at once" with Node's
// TimeoutOverflowWarning.

import assert from "node:assert/strict";
import { memory } from "./_run.ts";

/** Runs a command that must be refused as a usage error naming `what`. */
async function refused(args: string[], what: RegExp): Promise<void> {
  const r = await memory(...args);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, what);
  assert.doesNotMatch(r.stderr, /TimeoutOverflowWarning|RangeError|\n\s+at /);
  assert.equal(r.stdout, "");
}

Deno.test("bounds: counts", async (t) => {
  await t.step("ping --count above 10^8", () =>
    refused(
      ["ping", "--count", "100000001"],
      /Invalid --count '100000001': too large \(at most 100000000\)/,
    ));
  await t.step("ping --count beyond any integer", () =>
    refused(
      ["ping", "--count", "9".repeat(400)],
      /Invalid --count '9{40}…': expected a non-negative integer/,
    ));
  await t.step("watch --count and --simulate above 10^8", async () => {
    await refused(
      ["watch", "--virq", "DOM_EXC", "--count", "100000001"],
      /--count .*at most 100000000/,
    );
    await refused(
      ["watch", "--simulate", "100000001"],
      /--simulate .*at most 100000000/,
    );
  });
});

Deno.test("bounds: timers", async (t) => {
  await t.step("watch --interval of 2^31 ms", () =>
    refused(
      ["watch", "--simulate", "1", "--interval", String(2 ** 31)],
      /--interval '2147483648': too large \(at most 2147483647\)/,
    ));
  await t.step("watch --timeout of 2^31 ms", () =>
    refused(
      ["watch", "--virq", "DOM_EXC", "--timeout", "2147484"],
      /--timeout '2147484': too long \(at most 2147483 s/,
    ));
  await t.step("bind --timeout in exponent form", () =>
    refused(
      ["bind", "virq", "DOM_EXC", "--timeout", "1e9"],
      /--timeout '1e9': expected seconds/,
    ));
  await t.step("bind --timeout far beyond", () =>
    refused(
      ["bind", "virq", "DOM_EXC", "--timeout", "99999999999"],
      /--timeout '99999999999': too long/,
    ));
  await t.step(
    "the largest --interval is a real wait, no warning",
    async () => {
      const r = await memory(
        "watch",
        "--simulate",
        "1",
        "--interval",
        String(2 ** 31 - 1),
        "--timeout",
        "0.2",
      );
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stderr, /TimeoutOverflowWarning/);
      // Before: the overflowing timer fired at once and the event came.
      assert.match(r.stdout, /^summary: 0 events in .* \(timed out\)$/m);
    },
  );
});
