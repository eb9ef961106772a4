// The conformance suite on the linux backend: real /dev/xen/evtchn in dom0,
// the peer being dom0 itself through a loopback channel. Registered as ignored,
// with the reason, where there is no device (any machine but a Xen dom0).

import { VIRQ } from "../../mod.ts";
import {
  linuxDeviceStatus,
  openLinuxHandle,
  openPrivcmd,
  type PrivcmdHypercalls,
} from "../../backends/linux/mod.ts";
import { defineConformance } from "./suite.ts";

const device = linuxDeviceStatus();
const privcmd = device.available && (await hasPrivcmd());
/** Real Xen delivers through an interrupt; under QEMU's TCG that takes ms. */
const SETTLE_MS = Number(Deno.env.get("EVTCHN_SETTLE_MS") ?? 30);

let second: number | undefined;
let control: PrivcmdHypercalls | undefined;

async function hasPrivcmd(): Promise<boolean> {
  try {
    await Deno.stat("/dev/xen/privcmd");
    return true;
  } catch {
    return false;
  }
}

defineConformance({
  name: "linux",
  ignore: device.available ? false : device.reason ?? "no /dev/xen/evtchn",
  setup(): void {
    // A second, never-started domain for the dom0 hypercall cases: Xen
    // creates it paused, so EVTCHNOP_reset of it is allowed.
    if (privcmd && Deno.env.get("EVTCHN_CREATE_DOMAIN") === "1") {
      control = openPrivcmd();
      second = control.createDomain({ maxVcpus: 1 });
    }
  },
  open: () => openLinuxHandle(),
  localDomain: 0,
  localVcpus: navigator.hardwareConcurrency,
  openPeer: () => openLinuxHandle(),
  peerDomain: 0,
  settle: () => new Promise((resolve) => setTimeout(resolve, SETTLE_MS)),
  hypercalls: privcmd ? () => openPrivcmd() : undefined,
  secondDomain: privcmd && Deno.env.get("EVTCHN_CREATE_DOMAIN") === "1"
    ? () => second
    : undefined,
  freeVirq: VIRQ.DEBUGGER,
  domains: privcmd && Deno.env.get("EVTCHN_CREATE_DOMAIN") === "1"
    ? {
      create: () => control!.createDomain({ maxVcpus: 1 }),
      destroy: (domain) => control!.destroyDomain(domain),
    }
    : undefined,
  teardown(): void {
    if (control !== undefined && second !== undefined) {
      control.destroyDomain(second);
    }
    control?.close();
  },
});
