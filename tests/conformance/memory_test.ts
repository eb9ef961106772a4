// The conformance suite on the memory backend: dom0 and a domU running Linux,
// each with its own handles.

import { MemoryXen, VIRQ } from "../../mod.ts";
import { defineConformance } from "./suite.ts";

let xen = new MemoryXen();

defineConformance({
  name: "memory",
  ignore: false,
  setup() {
    xen = new MemoryXen();
    xen.createDomain({ domain: 1, vcpus: 2 });
    xen.createDomain({ domain: 7, linux: false, paused: true });
  },
  open: () => xen.open(0),
  localDomain: 0,
  openPeer: () => xen.open(1),
  peerDomain: 1,
  settle: () => Promise.resolve(),
  hypercalls: () => xen.hypercalls(0),
  secondDomain: () => 7,
  freeVirq: VIRQ.DEBUGGER,
});

defineConformance({
  name: "memory loopback",
  ignore: false,
  open: () => xen.open(0),
  localDomain: 0,
  openPeer: () => xen.open(0),
  peerDomain: 0,
  settle: () => Promise.resolve(),
  hypercalls: () => xen.hypercalls(0),
  freeVirq: VIRQ.TBUF,
});
