/**
 * A failed ioctl as an {@linkcode EventChannelError}: the op, the kernel's
 * (or Xen's) errno, and the argument that errno points at, if any. Shared by
 * the device and privcmd, whose blame rules differ per op.
 *
 * @module
 */

import { EventChannelError } from "../../errors.ts";

/** Which argument an errno blames: its name and value, or none. */
export type Blame = (
  code: number,
) => [argument: string, value: number] | undefined;

/**
 * The error for `op` failing with errno `code`.
 *
 * @param op The operation's name.
 * @param code The errno.
 * @param blame Names the argument at fault for `code`.
 * @returns The error, to throw.
 */
export function refusal(
  op: string,
  code: number,
  blame?: Blame,
): EventChannelError {
  const culprit = blame?.(code);
  return new EventChannelError(
    op,
    code,
    culprit === undefined ? {} : { argument: culprit[0], value: culprit[1] },
  );
}
