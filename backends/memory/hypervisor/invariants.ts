/**
 * Consistency checks of the hypervisor model, callable after any operation.
 * No Xen source file holds these: they are the rules that Xen's
 * `event_channel.c`, `event_2l.c` and `event_fifo.c` keep between them
 * (and Xen `ASSERT`s in places), written out so that tests can check them.
 *
 * @module
 */

import { NR_VIRQS } from "../../../xen/virq.ts";
import { isGlobalVirq } from "../../../xen/virq.ts";
import { EVTCHNS_PER_BUCKET } from "../../../xen/event_channel.ts";
import { ECS } from "./domain.ts";
import type { Hypervisor } from "./hypervisor.ts";
import {
  IRQ,
  NOTIFY_VCPU,
  REMOTE_DOMAIN,
  REMOTE_PORT,
  STATE,
} from "./_tables.ts";

/**
 * Every broken invariant of the model, as sentences; empty when consistent.
 *
 * Checked: port 0 reserved; storage bucket-granular and within the ABI;
 * no port in use above `max_evtchn_port`; the active count; interdomain peers
 * point at each other; VIRQ and PIRQ tables agree with the ports; notify vCPUs
 * exist; free ports are not pending; a pending, unmasked port is on its way
 * to the guest (2-level: its selector bit is set on some vCPU; FIFO: it is
 * linked in a queue), so no event is lost.
 *
 * @param xen The model.
 * @returns The violations.
 *
 * @example
 * ```ts
 * import { Hypervisor } from "./hypervisor.ts";
 * import { checkInvariants } from "./invariants.ts";
 * import assert from "node:assert/strict";
 * const xen = new Hypervisor();
 * xen.createDomain({ domain: 1 });
 * xen.bindIpi(1, 0);
 * assert.deepEqual(checkInvariants(xen), []);
 * ```
 */
export function checkInvariants(xen: Hypervisor): string[] {
  const errors: string[] = [];
  for (const id of xen.domainIds) {
    const d = xen.domain(id)!;
    const say = (port: number, what: string) =>
      errors.push(`dom${id} port ${port}: ${what}`);
    if (d[STATE][0] !== ECS.RESERVED) say(0, "port 0 is not reserved");
    if (d.validEvtchns % EVTCHNS_PER_BUCKET !== 0) {
      say(d.validEvtchns, "valid_evtchns is not bucket-granular");
    }
    if (d.validEvtchns > Math.max(d.maxEvtchns, EVTCHNS_PER_BUCKET)) {
      say(d.validEvtchns, "storage beyond the ABI's ports");
    }
    let active = 0;
    for (let port = 1; port < d.validEvtchns; port++) {
      const state = d[STATE][port];
      if (state === ECS.FREE) {
        if (d.abi.isPending(port)) say(port, "free but pending");
        continue;
      }
      active++;
      if (port > d.maxEvtchnPort) say(port, "in use above max_evtchn_port");
      if (d[NOTIFY_VCPU][port] >= d.vcpus) say(port, "notify vCPU missing");
      if (state === ECS.INTERDOMAIN) {
        const rd = xen.domain(d[REMOTE_DOMAIN][port]);
        const rport = d[REMOTE_PORT][port];
        if (rd === undefined) say(port, "peer domain gone");
        else if (
          rd[STATE][rport] !== ECS.INTERDOMAIN ||
          rd[REMOTE_DOMAIN][rport] !== id || rd[REMOTE_PORT][rport] !== port
        ) say(port, `peer dom${rd.id} port ${rport} does not point back`);
      } else if (state === ECS.VIRQ) {
        const virq = d[IRQ][port];
        const vcpu = isGlobalVirq(virq) ? 0 : d[NOTIFY_VCPU][port];
        if (d.virqPort(virq, vcpu) !== port) say(port, "VIRQ table disagrees");
      } else if (state === ECS.PIRQ) {
        if (d.pirqToPort.get(d[IRQ][port]) !== port) {
          say(port, "PIRQ table disagrees");
        }
      }
      if (
        d.isUsable(port) && d.abi.isPending(port) && !d.abi.isMasked(port) &&
        !(d.abi.name === "2l"
          ? selectedAnywhere(xen, id, port)
          : d.abi.isBusy(port))
      ) say(port, "pending and unmasked but not queued: event lost");
    }
    if (active !== d.activeEvtchns) {
      errors.push(
        `dom${id}: active_evtchns ${d.activeEvtchns}, ports in use ${active}`,
      );
    }
    for (let v = 0; v < d.vcpus; v++) {
      for (let virq = 0; virq < NR_VIRQS; virq++) {
        const port = d.virqPort(virq, v);
        if (
          port !== 0 && (d[STATE][port] !== ECS.VIRQ || d[IRQ][port] !== virq)
        ) say(port, `VIRQ ${virq} slot on vCPU ${v} points at a non-VIRQ`);
      }
    }
    for (const [pirq, port] of d.pirqToPort) {
      if (d[STATE][port] !== ECS.PIRQ || d[IRQ][port] !== pirq) {
        say(port, `PIRQ ${pirq} points at a non-PIRQ`);
      }
    }
  }
  return errors;
}

function selectedAnywhere(xen: Hypervisor, id: number, port: number): boolean {
  const d = xen.domain(id)!;
  for (let v = 0; v < d.vcpus; v++) {
    if (d.sharedInfo.selectorBit(v, port >>> 6)) return true;
  }
  return false;
}
