// What the machine running the linux tests offers, decided once when tests
// are registered (never with a runtime skip, which deno test counts as a
// pass).

import { linuxDeviceStatus } from "../../backends/linux/mod.ts";

/** Whether /dev/ptmx opens: an fd that polls not-readable until written. */
export function ptyAvailable(): boolean {
  return linuxDeviceStatus({ path: "/dev/ptmx" }).available;
}

/** `/dev/xen/evtchn` status. */
export const evtchn = linuxDeviceStatus();

/** `/dev/xen/privcmd` status. */
export const privcmd = linuxDeviceStatus({ path: "/dev/xen/privcmd" });

/**
 * A test name with the reason it is ignored appended, when it is.
 *
 * @param name The test's name.
 * @param status The availability it depends on.
 * @returns The name, maybe with ` [ignored: reason]`.
 */
export function gated(
  name: string,
  status: { available: boolean; reason?: string },
): string {
  return status.available ? name : `${name} [ignored: ${status.reason}]`;
}
