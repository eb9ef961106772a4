// The model's hot path, shared by the benchmarks: dom0 running the modelled
// Linux kernel with `ports` bound late-EOI ports, and one send → deliver
// (upcall, scan or queue walk, mask, clear) → unmask cycle on the last one.

import { type FifoAbi, Hypervisor, LinuxGuest } from "../model.ts";
import { MemoryXen } from "../backends/memory/mod.ts";
import type { EventChannelHandle } from "../handle.ts";
import { FifoConsumer } from "../backends/memory/linux/events_fifo.ts";
import { TwoLevelConsumer } from "../backends/memory/linux/events_2l.ts";

/** A cycle to run repeatedly. */
export interface Cycle {
  /** One send → deliver → unmask. */
  run(): void;
  /** Events delivered so far. */
  delivered(): number;
}

/** What the host looks like. */
export interface CycleOptions {
  /** Ports bound in dom0 (channels from domUs, or loopback in dom0). */
  ports: number;
  /** Domains in all, dom0 included (1 = loopback channels in dom0 only). */
  domains: number;
  /** dom0 kernel's event ABI. */
  eventAbi: "fifo" | "2l";
}

/**
 * Builds the host and returns a cycle on the last channel bound.
 *
 * @param options Ports, domains and ABI.
 * @returns The cycle.
 */
export function makeCycle(options: CycleOptions): Cycle {
  const { ports, domains, eventAbi } = options;
  const xen = new Hypervisor();
  xen.createDomain({ domain: 0, privileged: true, vcpus: 2 });
  for (let id = 1; id < domains; id++) {
    xen.createDomain({ domain: id, maxEvtchnPort: 4095 });
  }
  const linux = new LinuxGuest(xen, 0, { bootPorts: false, eventAbi });
  let delivered = 0;
  const onEvent = (): void => {
    delivered++;
  };
  let sender = 0, senderPort = 0, receiverPort = 0;
  for (let bound = 0; bound < ports;) {
    const domU = domains > 1 ? 1 + (bound % (domains - 1)) : 0;
    const offered = xen.allocUnbound(domU, domU, 0);
    const local = xen.bindInterdomain(0, domU, offered);
    linux.bindBalanced(local, onEvent, true);
    linux.lateEoi(local);
    bound += domU === 0 ? 2 : 1;
    sender = domU;
    senderPort = offered;
    receiverPort = local;
  }
  delivered = 0;
  return {
    run(): void {
      xen.send(sender, senderPort);
      linux.lateEoi(receiverPort);
    },
    delivered: () => delivered,
  };
}

/**
 * The same cycle at the hypercall level, without the Linux guest: EVTCHNOP_send
 * from a domU, dom0's upcall runs the Linux-style consumer of its ABI (which
 * masks and clears the port, as a late-EOI ack does), then EVTCHNOP_unmask.
 *
 * @param options Ports, domains and ABI.
 * @returns The cycle.
 */
export function makeHypercallCycle(options: CycleOptions): Cycle {
  const { ports, domains, eventAbi } = options;
  const xen = new Hypervisor();
  const d0 = xen.createDomain({ domain: 0, privileged: true, vcpus: 2 });
  for (let id = 1; id < Math.max(domains, 2); id++) {
    xen.createDomain({ domain: id, maxEvtchnPort: 4095 });
  }
  if (eventAbi === "fifo") {
    for (let v = 0; v < 2; v++) xen.initControl(0, d0.allocGuestPage(), 0, v);
    for (let p = 0; p < 4; p++) xen.expandArray(0, d0.allocGuestPage());
  }
  let delivered = 0;
  const abi = d0.abi;
  const ack = (port: number): void => {
    abi.mask(port);
    abi.clearPending(port);
    delivered++;
  };
  const consumer = eventAbi === "fifo"
    ? new FifoConsumer(d0.abi as FifoAbi, 2)
    : new TwoLevelConsumer(d0);
  d0.upcall = (vcpu) => {
    d0.sharedInfo.exchangeUpcallPending(vcpu, 0);
    consumer.handleEvents(vcpu, ack);
  };
  let sender = 1, senderPort = 0, receiverPort = 0;
  for (let i = 0; i < ports; i++) {
    sender = 1 + (i % (Math.max(domains, 2) - 1));
    senderPort = xen.allocUnbound(sender, sender, 0);
    receiverPort = xen.bindInterdomain(0, sender, senderPort);
    ack(receiverPort); // Xen marked it pending at bind
    xen.unmask(0, receiverPort);
  }
  delivered = 0;
  return {
    run(): void {
      xen.send(sender, senderPort);
      xen.unmask(0, receiverPort);
    },
    delivered: () => delivered,
  };
}

/**
 * The same round trip through the public API, as a user writes it: `a` and
 * `b` are `EventChannelHandle`s on the `memory` backend, `b` in dom0 holding
 * the receiving end of an interdomain channel from `a` (in a domU, or in dom0
 * for loopback when `domains` is 1), and one run is
 * `a.notify(p); const q = b.poll(); b.unmask(q)`. `ports` channels are bound
 * first (spread over the domUs as {@linkcode makeCycle} does); the round
 * trip runs on the last one.
 *
 * @param options Ports, domains and ABI.
 * @returns The cycle.
 */
export function makePublicCycle(options: CycleOptions): Cycle {
  const { ports, domains, eventAbi } = options;
  const host = new MemoryXen({ eventAbi, bootPorts: false });
  for (let id = 1; id < domains; id++) {
    host.createDomain({ domain: id, maxEvtchnPort: 4095, bootPorts: false });
  }
  const b = host.open(0);
  const senders: EventChannelHandle[] = [host.open(0)];
  for (let id = 1; id < domains; id++) senders.push(host.open(id));
  let a = senders[0], p = 0;
  for (let bound = 0; bound < ports;) {
    const domU = domains > 1 ? 1 + (bound % (domains - 1)) : 0;
    a = senders[domU];
    p = a.bindUnboundPort(0);
    b.bindInterdomain(domU, p);
    // Xen marks the new port pending: take that event and re-enable it.
    b.unmask(b.poll()!);
    bound += domU === 0 ? 2 : 1;
  }
  let delivered = 0;
  const sender = a, port = p;
  return {
    run(): void {
      sender.notify(port);
      const q = b.poll();
      if (q !== undefined) {
        delivered++;
        b.unmask(q);
      }
    },
    delivered: () => delivered,
  };
}
