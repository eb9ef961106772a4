/**
 * x86's page size, which bounds what Xen maps of a guest frame and what
 * Linux's `/dev/xen/evtchn` moves per `read()` or `write()`.
 *
 * @module
 */

/**
 * `PAGE_SIZE` on x86 (Xen's `xen/arch/x86/include/asm/page.h`, Linux's
 * `arch/x86/include/asm/page_types.h`): 4 KiB.
 *
 * @example
 * ```ts
 * import { PAGE_SIZE } from "./page.ts";
 * import assert from "node:assert/strict";
 * assert.equal(PAGE_SIZE, 4096);
 * ```
 */
export const PAGE_SIZE = 4096;
