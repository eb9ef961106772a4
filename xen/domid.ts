/**
 * Reserved domain ids, from Xen's `xen/include/public/xen.h`.
 *
 * @module
 */

/**
 * "The calling domain" wherever Xen resolves a `domid_t` (xen.h `DOMID_SELF`).
 *
 * @example
 * ```ts
 * import { DOMID_SELF } from "./domid.ts";
 * import assert from "node:assert/strict";
 * assert.equal(DOMID_SELF, 0x7ff0);
 * ```
 */
export const DOMID_SELF = 0x7ff0;

/**
 * First id that is not an ordinary domain (xen.h `DOMID_FIRST_RESERVED`).
 *
 * @example
 * ```ts
 * import { DOMID_FIRST_RESERVED } from "./domid.ts";
 * import assert from "node:assert/strict";
 * assert.equal(DOMID_FIRST_RESERVED, 0x7ff0);
 * ```
 */
export const DOMID_FIRST_RESERVED = 0x7ff0;

/**
 * The pseudo-domain of I/O memory (xen.h `DOMID_IO`): never a domain that
 * owns event channels.
 *
 * @example
 * ```ts
 * import { DOMID_IO } from "./domid.ts";
 * import assert from "node:assert/strict";
 * assert.equal(DOMID_IO, 0x7ff1);
 * ```
 */
export const DOMID_IO = 0x7ff1;

/**
 * Xen itself as a pseudo-domain (xen.h `DOMID_XEN`): never in the domain
 * hash, so `EVTCHNOP_*` naming it answers ESRCH.
 *
 * @example
 * ```ts
 * import { DOMID_XEN } from "./domid.ts";
 * import assert from "node:assert/strict";
 * assert.equal(DOMID_XEN, 0x7ff2);
 * ```
 */
export const DOMID_XEN = 0x7ff2;

/**
 * The "no domain" id (xen.h `DOMID_INVALID`).
 *
 * @example
 * ```ts
 * import { DOMID_INVALID } from "./domid.ts";
 * import assert from "node:assert/strict";
 * assert.equal(DOMID_INVALID, 0x7ff4);
 * ```
 */
export const DOMID_INVALID = 0x7ff4;

/**
 * What `/dev/xen/evtchn` holds while no domain restriction is set: Linux's
 * `UNRESTRICTED_DOMID` (`(domid_t)-1`, drivers/xen/evtchn.c).
 *
 * @example
 * ```ts
 * import { UNRESTRICTED_DOMID } from "./domid.ts";
 * import assert from "node:assert/strict";
 * assert.equal(UNRESTRICTED_DOMID, 0xffff);
 * ```
 */
export const UNRESTRICTED_DOMID = 0xffff;

/**
 * Largest value of a `domid_t` (uint16 in xen.h).
 *
 * @example
 * ```ts
 * import { DOMID_MAX } from "./domid.ts";
 * import assert from "node:assert/strict";
 * assert.equal(DOMID_MAX, 0xffff);
 * ```
 */
export const DOMID_MAX = 0xffff;
