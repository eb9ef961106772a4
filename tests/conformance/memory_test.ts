// The conformance suite on the memory backend: dom0 and a domU running Linux,
// each with its own handles, under each event ABI.

import { MemoryXen, VIRQ } from "../../mod.ts";
import { defineConformance } from "./suite.ts";

for (const eventAbi of ["fifo", "2l"] as const) {
  let xen: MemoryXen | undefined;
  /** The case's modelled host, booted on first use; each case gets its own. */
  const host = (): MemoryXen => {
    if (xen === undefined) {
      xen = new MemoryXen({ eventAbi });
      xen.createDomain({ domain: 1, vcpus: 2 });
      xen.createDomain({ domain: 7, linux: false, paused: true });
    }
    return xen;
  };
  /** The toolstack's part for the liveness case: a domain to destroy. */
  const domains = {
    create: () => host().createDomain({ domain: 9, linux: false }).id,
    destroy: (domain: number) => host().destroyDomain(domain),
  };

  defineConformance({
    name: `memory ${eventAbi}`,
    ignore: false,
    open: () => host().open(0),
    localDomain: 0,
    localVcpus: host().kernel(0)!.vcpus,
    openPeer: () => host().open(1),
    peerDomain: 1,
    settle: () => Promise.resolve(),
    hypercalls: () => host().hypercalls(0),
    secondDomain: () => (host(), 7),
    freeVirq: VIRQ.DEBUGGER,
    domains,
    beforeEach: () => {
      xen = undefined;
    },
  });

  defineConformance({
    name: `memory ${eventAbi} loopback`,
    ignore: false,
    open: () => host().open(0),
    localDomain: 0,
    localVcpus: host().kernel(0)!.vcpus,
    openPeer: () => host().open(0),
    peerDomain: 0,
    settle: () => Promise.resolve(),
    hypercalls: () => host().hypercalls(0),
    secondDomain: () => (host(), 7),
    freeVirq: VIRQ.TBUF,
    domains,
    beforeEach: () => {
      xen = undefined;
    },
  });
}
