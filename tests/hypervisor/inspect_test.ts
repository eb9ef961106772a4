// The inspection API (MemoryXen.domains/ports/port/kernel, inspect*): rows
// agree with EVTCHNOP_status and with the ABI's own bits, are frozen copies,
// and unknown domains are refused with a typed error.

import assert from "node:assert/strict";
import { EventChannelError, MemoryXen } from "../../mod.ts";
import { inspectPorts } from "../../model.ts";

for (const eventAbi of ["2l", "fifo"] as const) {
  Deno.test(`${eventAbi}: port rows agree with EVTCHNOP_status`, () => {
    const xen = new MemoryXen({ eventAbi });
    xen.createDomain({ domain: 1, vcpus: 2 });
    using dom0 = xen.open(0);
    using domU = xen.open(1);
    const offered = domU.bindUnboundPort(0);
    const port = dom0.bindInterdomain(1, offered);
    domU.bindUnboundPort(0);
    dom0.bindVirq(3); // VIRQ_DOM_EXC is free in the reference dom0
    const hc = xen.hypercalls(0);
    for (const id of [0, 1]) {
      const rows = xen.ports(id);
      assert.ok(rows.length > 0);
      for (const row of rows) {
        const status = hc.status(id, row.port);
        assert.equal(row.vcpu, status.vcpu);
        const state = row.state === "unbound" || row.state === "interdomain" ||
            row.state === "virq" || row.state === "pirq" || row.state === "ipi"
          ? row.state
          : "closed";
        assert.equal(status.status, state, `dom${id} port ${row.port}`);
        if ("remoteDomain" in status) {
          assert.equal(row.remoteDomain, status.remoteDomain);
        }
        if ("remotePort" in status) {
          assert.equal(row.remotePort, status.remotePort);
        }
        if ("virq" in status) assert.equal(row.virq, status.virq);
        if ("pirq" in status) assert.equal(row.pirq, status.pirq);
        assert.equal(row.selector === null, eventAbi === "fifo");
        assert.ok(Object.isFrozen(row));
      }
    }
    assert.deepEqual(
      xen.port(0, port),
      xen.ports(0).find((r) => r.port === port),
    );
    assert.deepEqual(
      xen.ports(0),
      inspectPorts(xen.hypervisor.domain(0)!),
    );
    assert.deepEqual(xen.domains().map((d) => [d.id, d.abi]), [
      [0, eventAbi],
      [1, eventAbi],
    ]);
    assert.equal(xen.kernel(1)?.vcpus, 2);
  });
}

Deno.test("unknown domains are refused with ESRCH, bad ports give no row", () => {
  const xen = new MemoryXen();
  for (const bad of [1, -1, 0.5, 0x7ff0, NaN]) {
    assert.throws(
      () => xen.ports(bad),
      (e) => e instanceof EventChannelError && e.code === "ESRCH",
    );
    assert.throws(
      () => xen.port(bad, 1),
      (e) => e instanceof EventChannelError && e.code === "ESRCH",
    );
  }
  for (const bad of [-1, 0.5, 2 ** 32, NaN, 1e9]) {
    assert.equal(xen.port(0, bad), undefined);
  }
  assert.equal(xen.kernel(3), undefined);
});
