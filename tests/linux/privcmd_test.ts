// dom0 hypercalls through a real /dev/xen/privcmd: EVTCHNOP_status,
// alloc_unbound and reset, plus a throwaway domain made with domctl. Never
// resets dom0. Registered with `ignore` (reason in the name) off dom0.

import assert from "node:assert/strict";
import {
  openLinuxHandle,
  openPrivcmd,
  type PrivcmdHypercalls,
} from "../../backends/linux/mod.ts";
import { DOMID_SELF } from "../../xen/domid.ts";
import { evtchn, gated, privcmd } from "./_env.ts";
import { assertEvtchnError, nextWithin } from "./_util.ts";

const both = evtchn.available && privcmd.available ? { available: true } : {
  available: false,
  reason: evtchn.available ? privcmd.reason : evtchn.reason,
};
const ignore = !both.available;
const WAIT = 3000;

Deno.test({
  name: gated("privcmd: xen_version", both),
  ignore,
  fn(): void {
    using xen = openPrivcmd();
    const version = xen.xenVersion();
    console.log(
      `  Xen ${version.major}.${version.minor}${version.extra} (buffer: ${xen.buffer}, ${xen.path})`,
    );
    assert.equal(version.major, 4);
  },
});

for (const buffer of ["device", "anonymous"] as const) {
  Deno.test({
    name: gated(`privcmd (${buffer} buffer): status of our own ports`, both),
    ignore,
    async fn(t): Promise<void> {
      using xen = openPrivcmd({ buffer });
      assert.equal(xen.buffer, buffer);
      await using h = openLinuxHandle();
      const a = h.bindUnboundPort(0);

      await t.step("unbound", () => {
        const status = xen.status(DOMID_SELF, a);
        assert.equal(status.status, "unbound");
        assert.deepEqual(status, {
          status: "unbound",
          vcpu: status.vcpu,
          remoteDomain: 0,
        });
        assert.deepEqual(xen.status(0, a), status, "dom0 = DOMID_SELF here");
      });

      const b = h.bindInterdomain(0, a);
      await t.step("interdomain, both ends", () => {
        const sa = xen.status(0, a);
        const sb = xen.status(0, b);
        console.log(`  status(0, ${a}) = ${JSON.stringify(sa)}`);
        console.log(`  status(0, ${b}) = ${JSON.stringify(sb)}`);
        assert.deepEqual(sa, {
          status: "interdomain",
          vcpu: sa.vcpu,
          remoteDomain: 0,
          remotePort: b,
        });
        assert.deepEqual(sb, {
          status: "interdomain",
          vcpu: sb.vcpu,
          remoteDomain: 0,
          remotePort: a,
        });
      });

      await t.step("virq", () => {
        const v = h.bindVirq(20);
        const status = xen.status(0, v);
        // Bound on vCPU 0, but Linux may then move its IRQ (affinity) with
        // EVTCHNOP_bind_vcpu, so the vCPU is whatever it chose.
        console.log(`  status(0, ${v}) = ${JSON.stringify(status)}`);
        assert.deepEqual(status, {
          status: "virq",
          vcpu: status.vcpu,
          virq: 20,
        });
        h.unbind(v);
        assert.deepEqual(xen.status(0, v), { status: "closed", vcpu: 0 });
      });

      await t.step(
        "reserved port 0 reports closed; beyond the range EINVAL",
        () => {
          assert.deepEqual(xen.status(0, 0), { status: "closed", vcpu: 0 });
          assertEvtchnError(() => xen.status(0, 1 << 20), "status", "EINVAL", {
            argument: "port",
          });
          assertEvtchnError(() => xen.status(0x7fe0, 1), "status", "ESRCH", {
            argument: "dom",
          });
        },
      );

      await t.step("unbind: the peer becomes unbound, then closed", () => {
        h.unbind(b);
        assert.deepEqual(xen.status(0, a), {
          status: "unbound",
          vcpu: xen.status(0, a).vcpu,
          remoteDomain: 0,
        });
        h.unbind(a);
        assert.deepEqual(xen.status(0, a), { status: "closed", vcpu: 0 });
      });
    },
  });
}

Deno.test({
  name: gated("privcmd: alloc_unbound in dom0 (DOMID_SELF and 0)", both),
  ignore,
  async fn(): Promise<void> {
    using xen = openPrivcmd();
    for (const dom of [DOMID_SELF, 0]) {
      const port = xen.allocUnbound(dom, 0);
      assert.deepEqual(xen.status(0, port), {
        status: "unbound",
        vcpu: 0,
        remoteDomain: 0,
      });
      // The device can connect to it, and unbinding leaves it unbound.
      await using h = openLinuxHandle();
      const local = h.bindInterdomain(0, port);
      assert.equal(await nextWithin(h, WAIT), local);
      assert.deepEqual(xen.status(0, port), {
        status: "interdomain",
        vcpu: 0,
        remoteDomain: 0,
        remotePort: local,
      });
      h.unbind(local);
      assert.equal(xen.status(0, port).status, "unbound");
      xen.closePort(port); // no fd owns it
      assert.deepEqual(xen.status(0, port), { status: "closed", vcpu: 0 });
    }
    assertEvtchnError(
      () => xen.allocUnbound(0x7fe0, 0),
      "alloc_unbound",
      "ESRCH",
      { argument: "dom" },
    );
    assertEvtchnError(() => xen.reset(0x7fe0), "reset", "ESRCH");
    assertEvtchnError(() => xen.reset(0), "reset", "EPERM");
    assertEvtchnError(() => xen.reset(DOMID_SELF), "reset", "EPERM");
  },
});

function withDomain(
  xen: PrivcmdHypercalls,
  options: { maxEvtchnPort?: number } = {},
): number {
  const domain = xen.createDomain(options);
  assert.ok(domain > 0 && domain < DOMID_SELF);
  return domain;
}

Deno.test({
  name: gated("privcmd: a second, never-started domain", both),
  ignore,
  async fn(t): Promise<void> {
    using xen = openPrivcmd();
    await using h = openLinuxHandle();
    const dom = withDomain(xen);
    console.log(`  created domain ${dom}`);
    try {
      let offered = 0;
      let local = 0;
      await t.step("alloc_unbound in it for dom0", () => {
        assert.deepEqual(xen.status(dom, 0), { status: "closed", vcpu: 0 });
        offered = xen.allocUnbound(dom, 0);
        assert.equal(offered, 1, "lowest free port; 0 is reserved");
        assert.deepEqual(xen.status(dom, offered), {
          status: "unbound",
          vcpu: 0,
          remoteDomain: 0,
        });
      });

      await t.step("dom0 binds to it through the device", async () => {
        local = h.bindInterdomain(dom, offered);
        assert.equal(await nextWithin(h, WAIT), local);
        h.unmask(local);
        assert.deepEqual(xen.status(dom, offered), {
          status: "interdomain",
          vcpu: 0,
          remoteDomain: 0,
          remotePort: local,
        });
        const mine = xen.status(0, local);
        assert.equal(mine.status, "interdomain");
        assert.deepEqual(
          mine.status === "interdomain"
            ? [mine.remoteDomain, mine.remotePort]
            : [],
          [dom, offered],
        );
        h.notify(local); // lands as pending in the paused domain
      });

      await t.step("a port offered to another domain is refused", () => {
        const other = xen.allocUnbound(dom, 7);
        assertEvtchnError(
          () => h.bindInterdomain(dom, other),
          "bind_interdomain",
          "EINVAL",
        );
      });

      await t.step("reset closes its ports; dom0's end becomes unbound", () => {
        xen.reset(dom);
        assert.deepEqual(xen.status(dom, offered), {
          status: "closed",
          vcpu: 0,
        });
        const mine = xen.status(0, local);
        assert.deepEqual(mine, {
          status: "unbound",
          vcpu: mine.vcpu,
          remoteDomain: dom,
        });
        h.unbind(local);
      });

      await t.step("destroying it closes the channel", () => {
        const again = xen.allocUnbound(dom, 0);
        local = h.bindInterdomain(dom, again);
        xen.destroyDomain(dom);
        const mine = xen.status(0, local);
        console.log(
          `  after destroydomain: status(0, ${local}) = ${
            JSON.stringify(mine)
          }`,
        );
        assert.equal(mine.status, "unbound");
        let after: string;
        try {
          after = JSON.stringify(xen.status(dom, again));
        } catch (error) {
          after = (error as { code: string }).code;
        }
        console.log(
          `  after destroydomain: status(${dom}, ${again}) -> ${after}`,
        );
        h.unbind(local);
      });
    } finally {
      try {
        xen.destroyDomain(dom);
      } catch { /* already gone */ }
    }
  },
});

Deno.test({
  name: gated("privcmd: max_evtchn_port limits a domain's ports", both),
  ignore,
  fn(): void {
    using xen = openPrivcmd();
    const dom = withDomain(xen, { maxEvtchnPort: 3 });
    try {
      assert.deepEqual(
        [
          xen.allocUnbound(dom, 0),
          xen.allocUnbound(dom, 0),
          xen.allocUnbound(dom, 0),
        ],
        [1, 2, 3],
      );
      assertEvtchnError(
        () => xen.allocUnbound(dom, 0),
        "alloc_unbound",
        "ENOSPC",
      );
    } finally {
      xen.destroyDomain(dom);
    }
  },
});
