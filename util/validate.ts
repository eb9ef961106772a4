// Argument checks shared by the front layers: the device handle, the model's
// hypercall dispatcher and the privcmd hypercalls. Private to this package
// (not exported from mod.ts).

import { EventChannelError } from "../errors.ts";

/** Largest `uint32_t`, the C type of every port, VIRQ and vCPU argument. */
export const UINT32_MAX = 0xffff_ffff;

/**
 * Whether `value` is a uint32 number: what {@linkcode checkUint} accepts with
 * `max` = `UINT32_MAX`, tested without a call into it (no coercion: the
 * `typeof` comes first).
 */
export function isUint32(value: unknown): value is number {
  return typeof value === "number" && value >>> 0 === value;
}

/**
 * Returns `value` if it is an integer in `[0, max]`; otherwise throws
 * `EventChannelError` with `EINVAL` naming `op` and `argument`.
 */
export function checkUint(
  op: string,
  argument: string,
  value: unknown,
  max: number,
): number {
  if (
    typeof value === "number" && Number.isInteger(value) && value >= 0 &&
    value <= max
  ) {
    return value;
  }
  const detail = typeof value !== "number"
    ? `expected a number, got ${typeof value}`
    : !Number.isInteger(value)
    ? "not an integer"
    : `out of range 0..${max}`;
  throw new EventChannelError(op, "EINVAL", { argument, value, detail });
}
