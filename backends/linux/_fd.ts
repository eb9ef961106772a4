/**
 * Opening device files, with the kernel's errno turned into
 * {@linkcode EventChannelError} on the spot.
 *
 * @module
 */

import { EventChannelError } from "../../errors.ts";
import { ERRNO } from "../../xen/errno.ts";
import { cString } from "./_libc.ts";
import type { Syscalls } from "./_syscall.ts";

/** What an `open` failure says beyond the errno, by errno. */
function openDetail(code: number, what: string, module: string): string {
  switch (code) {
    case ERRNO.ENOENT:
      return `no ${what}: this needs a Xen host (dom0, or a domU with the ` +
        `${module} module loaded) and --allow-ffi`;
    case ERRNO.EACCES:
    case ERRNO.EPERM:
      return `no access to ${what}: run as root or grant access to the device`;
    case ERRNO.ENODEV:
    case 6: // ENXIO
      return `${what} has no driver: the kernel is not running on Xen`;
    default:
      return `cannot open ${what}`;
  }
}

/**
 * `open(path, flags)`, throwing `EventChannelError("open", errno)` with the
 * path as the argument.
 *
 * @param sys The system calls.
 * @param path The file.
 * @param flags `O_*` flags.
 * @param what Names the device in the error detail.
 * @param module The kernel module that provides the device.
 * @returns The fd.
 */
export function openFile(
  sys: Syscalls,
  path: string,
  flags: number,
  what: string = path,
  module = "xen-evtchn",
): number {
  const fd = sys.open(cString(path), flags);
  if (fd < 0) {
    const code = -fd;
    throw new EventChannelError("open", code, {
      argument: "path",
      value: path,
      detail: openDetail(code, what, module),
    });
  }
  return fd;
}
