// An errno is evidence only for the call that failed. The runner records an
// EventChannelError as a step's outcome only when the error is that step's
// operation's; anything else (an error of a wait, a read, another call) is
// an ORACLE outcome, which never compares equal to what Xen answered. Issue
// 18 saw a bind_interdomain "answer" EAGAIN, which no Xen 4.17 or Linux 6.1
// path gives for that call (tests/xen/errno_test.ts).

import assert from "node:assert/strict";
import { EventChannelError, MemoryXen } from "../../mod.ts";
import { RefContext, StepRunner } from "../../oracle/mod.ts";

/** A runner whose handles and hypercalls throw `error` from every call. */
function throwing(error: EventChannelError): StepRunner {
  const xen = new MemoryXen();
  const fail = (): never => {
    throw error;
  };
  return new StepRunner({
    readSettleMs: 0,
    open: () => {
      const handle = xen.open(0);
      return new Proxy(handle, {
        get: (target, key) =>
          key === "bindInterdomain" || key === "notify"
            ? fail
            : Reflect.get(target, key),
      });
    },
    hypercalls: () => ({ ...xen.hypercalls(0), status: fail }),
    settle: () => Promise.resolve(),
  }, new RefContext(0, 1));
}

Deno.test("runner: an error becomes a step's outcome only when it is that op's", async (t) => {
  const local = { dom: "local" as const };
  await t.step(
    "bind_interdomain failing with its own EINVAL: recorded",
    async () => {
      const runner = throwing(
        new EventChannelError("bind_interdomain", "EINVAL"),
      );
      await runner.run({ handle: "h0", op: "open", args: {} });
      assert.deepEqual(
        await runner.run({
          handle: "h0",
          op: "bind_interdomain",
          args: { remote_domain: local, remote_port: { abs: 70000 } },
        }),
        { error: { code: "EINVAL", errno: 22 } },
      );
    },
  );
  await t.step(
    "bind_interdomain failing with a read's EAGAIN: ORACLE",
    async () => {
      const runner = throwing(new EventChannelError("read", "EAGAIN"));
      await runner.run({ handle: "h0", op: "open", args: {} });
      const outcome = await runner.run({
        handle: "h0",
        op: "bind_interdomain",
        args: { remote_domain: local, remote_port: { abs: 70000 } },
      });
      assert.deepEqual(outcome, {
        error: {
          code: "ORACLE",
          errno: 0,
          message: "bind_interdomain failed with an error of read (EAGAIN)",
        },
      });
    },
  );
  await t.step("hc.status failing with status's ESRCH: recorded", async () => {
    const runner = throwing(new EventChannelError("status", "ESRCH"));
    assert.deepEqual(
      await runner.run({
        op: "hc.status",
        args: { domain: local, port: { abs: 70000 } },
      }),
      { error: { code: "ESRCH", errno: 3 } },
    );
  });
  await t.step("notify failing with an unbind's error: ORACLE", async () => {
    const runner = throwing(new EventChannelError("unbind", "ENOTCONN"));
    await runner.run({ handle: "h0", op: "open", args: {} });
    const outcome = await runner.run({
      handle: "h0",
      op: "notify",
      args: { port: { abs: 70000 } },
    });
    assert.equal("error" in outcome && outcome.error.code, "ORACLE");
  });
});
