/**
 * Error numbers shared by Xen's public ABI and Linux x86.
 *
 * Xen's `xen/include/public/errno.h` uses the same values as Linux x86, so one
 * table serves both the hypervisor model and the device layer.
 *
 * @module
 */

/**
 * Errno values by name: Xen `xen/include/public/errno.h`, Linux
 * `include/uapi/asm-generic/errno-base.h` and `errno.h`.
 *
 * @example Look up a number
 * ```ts
 * import { ERRNO } from "./errno.ts";
 * import assert from "node:assert/strict";
 * assert.equal(ERRNO.EINVAL, 22);
 * ```
 */
export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  EINVAL: 22,
  ENOTTY: 25,
  EFBIG: 27,
  ENOSPC: 28,
  ESPIPE: 29,
  ENOSYS: 38,
  EOPNOTSUPP: 95,
  EISCONN: 106,
  ENOTCONN: 107,
} as const;

/**
 * The name of an errno this module knows, such as `"EINVAL"`.
 *
 * @example
 * ```ts
 * import type { ErrnoName } from "./errno.ts";
 * const code: ErrnoName = "ENOSPC";
 * ```
 */
export type ErrnoName = keyof typeof ERRNO;

const NAMES_BY_NUMBER: ReadonlyMap<number, ErrnoName> = new Map(
  (Object.entries(ERRNO) as [ErrnoName, number][]).map(([k, v]) => [v, k]),
);

/**
 * The errno name for a number, or `"E<number>"` when this module does not know
 * it (a real system can return any errno).
 *
 * @param errno A positive errno number.
 * @returns Its symbolic name.
 *
 * @example
 * ```ts
 * import { errnoName } from "./errno.ts";
 * import assert from "node:assert/strict";
 * assert.equal(errnoName(107), "ENOTCONN");
 * assert.equal(errnoName(200), "E200");
 * ```
 */
export function errnoName(errno: number): string {
  return NAMES_BY_NUMBER.get(errno) ?? `E${errno}`;
}
