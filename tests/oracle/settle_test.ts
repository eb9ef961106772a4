// The runner waits for deliveries in flight before the steps whose outcome
// depends on them (reset, unbind, close), and only then: on real Xen an
// event crosses vCPUs by IPI, and a reset that ran before the event of the
// bind just before it reached the ring would leave that event for a later
// read, where the model had already reset it away (seen on real Xen in a
// differential run, seed 20261127).

import assert from "node:assert/strict";
import { MemoryXen } from "../../mod.ts";
import { RefContext, type StepInput, StepRunner } from "../../oracle/mod.ts";

/** A memory host that logs every wait and the op that followed it. */
function host(): { log: string[]; runner: StepRunner } {
  const xen = new MemoryXen();
  const log: string[] = [];
  return {
    log,
    runner: new StepRunner({
      readSettleMs: 7,
      open: () => xen.open(0),
      hypercalls: () => xen.hypercalls(0),
      settle: (ms: number) => {
        log.push(`settle ${ms}`);
        return Promise.resolve();
      },
    }, new RefContext(0, 1)),
  };
}

const step = (op: StepInput["op"], args: StepInput["args"] = {}): StepInput =>
  op.startsWith("hc.") ? { op, args } : { handle: "h0", op, args };

Deno.test("runner: waits before reset, unbind and close only after a step that may deliver", async (t) => {
  const local = { dom: "local" as const };
  await t.step(
    "bind_interdomain then reset: one wait, before the reset",
    async () => {
      const { log, runner } = host();
      for (
        const s of [
          step("open"),
          step("bind_unbound_port", { remote_domain: local }),
          step("bind_interdomain", {
            remote_domain: local,
            remote_port: { rel: 0 },
          }),
          step("reset"),
          step("reset"), // nothing new in flight: no second wait
        ]
      ) {
        assert.ok("ok" in await runner.run(s), s.op);
        log.push(s.op);
      }
      assert.deepEqual(log, [
        "open",
        "bind_unbound_port",
        "bind_interdomain",
        "settle 7",
        "reset",
        "reset",
      ]);
    },
  );
  await t.step(
    "no event-producing step: unbind, reset and close never wait",
    async () => {
      const { log, runner } = host();
      for (
        const s of [
          step("open"),
          step("bind_unbound_port", { remote_domain: local }),
          step("unbind", { port: { rel: 0 } }),
          step("reset"),
          step("close"),
        ]
      ) {
        await runner.run(s);
        log.push(s.op);
      }
      assert.deepEqual(log, [
        "open",
        "bind_unbound_port",
        "unbind",
        "reset",
        "close",
      ]);
    },
  );
  await t.step("a read's own wait covers what came before it", async () => {
    const { log, runner } = host();
    for (
      const s of [
        step("open"),
        step("notify", { port: { abs: 5 } }),
        step("read"),
        step("reset"),
      ]
    ) {
      await runner.run(s);
      log.push(s.op);
    }
    assert.deepEqual(log, ["open", "notify", "settle 7", "read", "reset"]);
  });
});
