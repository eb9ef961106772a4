// The model's hot path, shared by the benchmarks: a domain with `ports`
// interdomain channels to dom0 running the modelled Linux kernel, and one
// send → deliver (upcall, scan, mask, clear) → unmask cycle.

import { Hypervisor, LinuxGuest } from "../mod.ts";

/** A cycle to run repeatedly, and what it touches. */
export interface Cycle {
  run(): void;
  delivered(): number;
}

/**
 * Builds a host with `domains` domains (dom0 plus domUs), `ports` bound
 * late-EOI ports in dom0 (each an interdomain channel from a domU), and
 * returns a cycle that sends on the last channel and unmasks it.
 */
export function makeCycle(ports: number, domains: number): Cycle {
  const xen = new Hypervisor();
  xen.createDomain({ domain: 0, privileged: true, vcpus: 2 });
  for (let id = 1; id < Math.max(domains, 2); id++) {
    xen.createDomain({ domain: id, maxEvtchnPort: 4095 });
  }
  const linux = new LinuxGuest(xen, 0, { bootPorts: false });
  let delivered = 0;
  const onEvent = () => {
    delivered++;
  };
  let senderDomain = 1, senderPort = 0, receiverPort = 0;
  for (let i = 0; i < ports; i++) {
    const domU = 1 + (i % (Math.max(domains, 2) - 1));
    const offered = xen.allocUnbound(domU, domU, 0);
    const local = xen.bindInterdomain(0, domU, offered);
    linux.bindLateEoi(local, onEvent);
    linux.lateEoi(local);
    senderDomain = domU;
    senderPort = offered;
    receiverPort = local;
  }
  delivered = 0;
  return {
    run(): void {
      xen.send(senderDomain, senderPort);
      linux.lateEoi(receiverPort);
    },
    delivered: () => delivered,
  };
}
