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
 * `include/uapi/asm-generic/errno-base.h` and `errno.h`. Every errno of
 * `errno-base.h` (1–34), and those of `errno.h` that the calls made here
 * (open, ioctl, read, write, poll, mmap of the Xen devices, the loader) can
 * give, so that none is printed as a bare number. Aliases (`EWOULDBLOCK` =
 * `EAGAIN`, `EDEADLOCK` = `EDEADLK`, `ENOTSUP` = `EOPNOTSUPP`) are left out:
 * each number has one name.
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
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  ENOEXEC: 8,
  EBADF: 9,
  ECHILD: 10,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  ENOTBLK: 15,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ENOTTY: 25,
  ETXTBSY: 26,
  EFBIG: 27,
  ENOSPC: 28,
  ESPIPE: 29,
  EROFS: 30,
  EMLINK: 31,
  EPIPE: 32,
  EDOM: 33,
  ERANGE: 34,
  EDEADLK: 35,
  ENAMETOOLONG: 36,
  ENOLCK: 37,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ELOOP: 40,
  ENODATA: 61,
  ETIME: 62,
  ENOLINK: 67,
  EPROTO: 71,
  EOVERFLOW: 75,
  EBADFD: 77,
  EILSEQ: 84,
  ERESTART: 85,
  EUSERS: 87,
  ENOTSOCK: 88,
  EOPNOTSUPP: 95,
  EADDRINUSE: 98,
  ENOBUFS: 105,
  EISCONN: 106,
  ENOTCONN: 107,
  ETIMEDOUT: 110,
  ECONNREFUSED: 111,
  EALREADY: 114,
  EINPROGRESS: 115,
  ESTALE: 116,
  EDQUOT: 122,
  ECANCELED: 125,
} as const;

/**
 * The name of an errno this module knows, such as `"EINVAL"`.
 *
 * @example A name gives the number, and the number the name
 * ```ts
 * import { ERRNO, type ErrnoName, errnoName } from "./errno.ts";
 * import { EventChannelError } from "../errors.ts";
 * import assert from "node:assert/strict";
 *
 * const code: ErrnoName = "ENOSPC";
 * assert.equal(ERRNO[code], 28);
 * assert.equal(errnoName(ERRNO[code]), code);
 * assert.equal(new EventChannelError("alloc_unbound", code).errno, 28);
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
 * assert.equal(errnoName(21), "EISDIR");
 * assert.equal(errnoName(200), "E200");
 * ```
 */
export function errnoName(errno: number): string {
  return NAMES_BY_NUMBER.get(errno) ?? `E${errno}`;
}
