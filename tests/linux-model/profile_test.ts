// The kernel profile against real hosts: the default profile must be the
// reference dom0 as snapshotted on the project's VM (committed under
// tests/fixtures/hosts/), a model booted from any snapshot must give it back,
// and new ports must be placed on vCPUs the way Linux 6.1 counts them.

import assert from "node:assert/strict";
import {
  type HostSnapshot,
  MemoryXen,
  parseHostSnapshot,
  VIRQ,
} from "../../mod.ts";
import {
  defaultProfile,
  movable,
  selectTargetCpu,
} from "../../backends/memory/linux/profile.ts";

const HOSTS = new URL("../fixtures/hosts/", import.meta.url);
const host = (name: string): HostSnapshot =>
  parseHostSnapshot(Deno.readTextFileSync(new URL(name, HOSTS)));

/** The reference VM without extra devices, one file per ABI and vCPU count. */
const REFERENCE = [
  ["fifo-2vcpu.json", "fifo", 2],
  ["fifo-1vcpu.json", "fifo", 1],
  ["2l-2vcpu.json", "2l", 2],
  ["2l-1vcpu.json", "2l", 1],
] as const;

Deno.test("default profile: the reference dom0's ports, states and vCPUs", async (t) => {
  for (const [file, eventAbi, vcpus] of REFERENCE) {
    await t.step(file, () => {
      const real = host(file);
      assert.equal(real.abi, eventAbi);
      assert.equal(real.vcpus, vcpus);
      const profile = defaultProfile({ eventAbi, vcpus, dom0: true });
      assert.deepEqual(profile.ports, real.ports);
      const model = new MemoryXen({ eventAbi, vcpus }).snapshot();
      assert.deepEqual(model.ports, real.ports);
      assert.equal(model.validPorts, real.validPorts);
      assert.equal(model.nrChannels, real.nrChannels);
    });
  }
});

Deno.test("a model booted from a snapshot gives the same snapshot back", async (t) => {
  for (const entry of Deno.readDirSync(HOSTS)) {
    await t.step(entry.name, () => {
      const real = host(entry.name);
      const model = new MemoryXen({ host: real }).snapshot();
      assert.deepEqual(
        { ...model, xen: real.xen, kernel: real.kernel },
        real,
      );
    });
  }
  await t.step(
    "a grown host: more storage and event-array pages than ports",
    () => {
      const real = host("fifo-2vcpu.json");
      const grown = { ...real, nrChannels: 3072, validPorts: 448 };
      const model = new MemoryXen({ host: grown }).snapshot();
      assert.equal(model.nrChannels, 3072);
      assert.equal(model.validPorts, 448);
      assert.deepEqual(model.ports, real.ports);
    },
  );
  await t.step("gaps between kernel ports stay free", () => {
    const real = host("fifo-1vcpu.json");
    const sparse = { ...real, ports: real.ports.filter((p) => p.port !== 3) };
    const xen = new MemoryXen({ host: sparse });
    assert.deepEqual(xen.snapshot().ports, sparse.ports);
    using dom0 = xen.open(0);
    assert.equal(dom0.bindUnboundPort(0), 3); // lowest free, as in Xen
  });
});

Deno.test("snapshots that cannot be booted are refused with EINVAL", () => {
  const real = host("fifo-2vcpu.json");
  const cases: [string, unknown][] = [
    ["vcpus", { ...real, vcpus: 0 }],
    ["ports[0].vcpu", { ...real, ports: [{ ...real.ports[0], vcpu: 2 }] }],
    ["ports[1].port", { ...real, ports: [real.ports[1], real.ports[0]] }],
    ["ports[0]", { ...real, ports: [{ ...real.ports[0], extra: 1 }] }],
    ["abi", { ...real, abi: "3l" }],
    ["nrChannels", { ...real, nrChannels: 1000 }],
  ];
  for (const [argument, bad] of cases) {
    assert.throws(
      () => new MemoryXen({ host: bad as HostSnapshot }),
      (e: unknown) =>
        e instanceof Error && "code" in e && e.code === "EINVAL" &&
        "argument" in e && e.argument === argument,
      argument,
    );
  }
});

Deno.test("placement: counted on CPU 0 first, moved only if Xen agrees", async (t) => {
  await t.step("select_target_cpu: fewest channels, lowest on a tie", () => {
    assert.equal(selectTargetCpu(new Uint32Array([13, 12]), 2), 1);
    assert.equal(selectTargetCpu(new Uint32Array([13, 13]), 2), 0);
    assert.equal(selectTargetCpu(new Uint32Array([9, 9, 8, 8]), 4), 2);
    assert.equal(selectTargetCpu(new Uint32Array([9, 1]), 1), 0);
  });
  await t.step("which states bind_vcpu may move", () => {
    assert.equal(movable({ status: "ipi" }), false);
    assert.equal(movable({ status: "virq", virq: VIRQ.TIMER }), false);
    assert.equal(movable({ status: "virq", virq: VIRQ.XENOPROF }), false);
    assert.equal(movable({ status: "virq", virq: VIRQ.DOM_EXC }), true);
    assert.equal(movable({ status: "unbound" }), true);
    assert.equal(movable({ status: "pirq" }), true);
  });
  for (const eventAbi of ["fifo", "2l"] as const) {
    await t.step(`a per-vCPU VIRQ stays counted on CPU 0 (${eventAbi})`, () => {
      const xen = new MemoryXen({ eventAbi, vcpus: 2 });
      const hc = xen.hypercalls(0);
      using dom0 = xen.open(0);
      // Both CPUs hold 12 (13) kernel channels: the first port goes to 1.
      const first = dom0.bindUnboundPort(0);
      assert.equal(hc.status(0, first).vcpu, 1);
      dom0.unbind(first);
      const oprofile = dom0.bindVirq(VIRQ.XENOPROF);
      assert.equal(hc.status(0, oprofile).vcpu, 0); // bind_vcpu refused
      // CPU 0 is one ahead now: 1, 1, then alternating 0, 1, 0.
      const ports = [0, 1, 2, 3, 4].map(() => dom0.bindUnboundPort(0));
      assert.deepEqual(ports.map((p) => hc.status(0, p).vcpu), [1, 1, 0, 1, 0]);
      // Unbinding the VIRQ frees CPU 0's extra count: 0, then 1.
      dom0.unbind(oprofile);
      dom0.unbind(ports[0]);
      const more = [0, 1].map(() => dom0.bindUnboundPort(0));
      assert.deepEqual(more.map((p) => hc.status(0, p).vcpu), [1, 0]);
    });
  }
  await t.step("a global VIRQ moves like any port", () => {
    const xen = new MemoryXen({ vcpus: 2 });
    using dom0 = xen.open(0);
    const port = dom0.bindVirq(VIRQ.DOM_EXC);
    assert.equal(xen.hypercalls(0).status(0, port).vcpu, 1);
  });
  await t.step("one vCPU: everything on vCPU 0", () => {
    const xen = new MemoryXen({ vcpus: 1 });
    using dom0 = xen.open(0);
    const ports = [dom0.bindVirq(VIRQ.XENOPROF), dom0.bindUnboundPort(0)];
    for (const p of ports) assert.equal(xen.hypercalls(0).status(0, p).vcpu, 0);
  });
});
