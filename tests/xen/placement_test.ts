// vCPU placement of new ports on real Xen, against the model booted from a
// snapshot of the same host: a per-vCPU VIRQ bound through the device (which
// Linux counts on CPU 0 and cannot move), unbound and interdomain ports,
// unbinds, more binds, a global VIRQ; after each phase the whole dom0 status
// table (every port, every field, vCPU included) must be the model's. The
// real-Xen stage runs it under both ABIs with 2 vCPUs, and with 1 vCPU.
// Ignored, with the reason, where there is no Xen device.

import assert from "node:assert/strict";
import {
  type EventChannelHandle,
  type HostSnapshot,
  linuxDeviceStatus,
  MemoryXen,
  openLinuxHandle,
  snapshotHost,
  VIRQ,
} from "../../mod.ts";

const device = linuxDeviceStatus({ path: "/dev/xen/privcmd" });

/** The comparable part of a snapshot (versions differ by design). */
const table = (s: HostSnapshot) => ({
  abi: s.abi,
  vcpus: s.vcpus,
  nrChannels: s.nrChannels,
  validPorts: s.validPorts,
  ports: s.ports,
});

Deno.test({
  name: "placement: every port's vCPU on real Xen equals the model booted " +
    "from this host's snapshot" +
    (device.available ? "" : ` [ignored: ${device.reason ?? "no privcmd"}]`),
  ignore: !device.available,
  async fn(t): Promise<void> {
    const xen = new MemoryXen({ host: await snapshotHost() });
    await using realA = openLinuxHandle();
    await using realB = openLinuxHandle();
    await using modelA = xen.open(0);
    await using modelB = xen.open(0);
    /** Runs `op` on the real pair and the model pair; results must agree. */
    const both = (
      op: (a: EventChannelHandle, b: EventChannelHandle) => number | void,
    ) => {
      const real = op(realA, realB);
      const model = op(modelA, modelB);
      assert.equal(real, model, "the same port on both");
      return real;
    };
    const same = async (phase: string) => {
      assert.deepEqual(
        table(await snapshotHost()),
        table(xen.snapshot()),
        phase,
      );
    };

    await t.step("a per-vCPU VIRQ stays counted on CPU 0", async () => {
      both((a) => a.bindVirq(VIRQ.XENOPROF));
      for (let i = 0; i < 5; i++) both((a) => a.bindUnboundPort(0));
      await same("after VIRQ_XENOPROF and 5 unbound ports");
    });
    await t.step("interdomain loopback channels", async () => {
      for (let i = 0; i < 3; i++) {
        const offered = both((a) => a.bindUnboundPort(0)) as number;
        both((_, b) => b.bindInterdomain(0, offered));
      }
      await same("after 3 loopback channels");
    });
    await t.step("unbinds change the counts, later binds follow", async () => {
      const first = both((a) => a.bindUnboundPort(0)) as number;
      both((a) => a.unbind(first));
      both((a) => a.bindVirq(VIRQ.DOM_EXC)); // global: movable
      for (let i = 0; i < 4; i++) both((_, b) => b.bindUnboundPort(0));
      await same("after unbind, VIRQ_DOM_EXC and 4 more ports");
    });
    await t.step("closing a handle unbinds its ports", async () => {
      await realB.close();
      await modelB.close();
      for (let i = 0; i < 3; i++) both((a) => a.bindUnboundPort(0));
      await same("after closing one handle and 3 more binds");
    });
  },
});
