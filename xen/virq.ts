/**
 * Virtual IRQs, from Xen's `xen/include/public/xen.h` (4.17).
 *
 * @module
 */

/**
 * Number of VIRQs (xen.h `NR_VIRQS`); `bind_virq` refuses any number at or
 * above it with `EINVAL`.
 *
 * @example
 * ```ts
 * import { NR_VIRQS } from "./virq.ts";
 * import assert from "node:assert/strict";
 * assert.equal(NR_VIRQS, 24);
 * ```
 */
export const NR_VIRQS = 24;

/**
 * VIRQ numbers by name (xen.h `VIRQ_*`; 16 is `VIRQ_ARCH_0`, which x86 names
 * `VIRQ_MCA`).
 *
 * @example
 * ```ts
 * import { VIRQ } from "./virq.ts";
 * import assert from "node:assert/strict";
 * assert.equal(VIRQ.DOM_EXC, 3);
 * ```
 */
export const VIRQ = {
  TIMER: 0,
  DEBUG: 1,
  CONSOLE: 2,
  DOM_EXC: 3,
  TBUF: 4,
  DEBUGGER: 6,
  XENOPROF: 7,
  CON_RING: 8,
  PCPU_STATE: 9,
  MEM_EVENT: 10,
  ARGO: 11,
  ENOMEM: 12,
  XENPMU: 13,
  MCA: 16,
} as const;

/** The name of a known VIRQ, such as `"TIMER"`. */
export type VirqName = keyof typeof VIRQ;

/**
 * Whether a VIRQ is global (bound on vCPU 0 only, movable with `bind_vcpu`)
 * rather than per-vCPU. In 4.17 `virq_is_global()` (common/event_channel.c)
 * answers false only for TIMER, DEBUG, XENOPROF and XENPMU; every other number
 * below `NR_VIRQS`, unused ones and the arch range included, is global.
 *
 * @param virq A VIRQ number below {@linkcode NR_VIRQS}.
 * @returns `true` for a global VIRQ.
 *
 * @example
 * ```ts
 * import { isGlobalVirq, VIRQ } from "./virq.ts";
 * import assert from "node:assert/strict";
 * assert.equal(isGlobalVirq(VIRQ.TIMER), false);
 * assert.equal(isGlobalVirq(VIRQ.DOM_EXC), true);
 * ```
 */
export function isGlobalVirq(virq: number): boolean {
  return virq !== VIRQ.TIMER && virq !== VIRQ.DEBUG &&
    virq !== VIRQ.XENOPROF && virq !== VIRQ.XENPMU;
}

/**
 * Resolves a VIRQ given by name (`"DOM_EXC"`, `"VIRQ_DOM_EXC"`, any case) or
 * number (as a number or a decimal string).
 *
 * @param nameOrNumber The VIRQ.
 * @returns Its number, or `undefined` if it names no VIRQ.
 *
 * @example
 * ```ts
 * import { parseVirq } from "./virq.ts";
 * import assert from "node:assert/strict";
 * assert.equal(parseVirq("virq_dom_exc"), 3);
 * assert.equal(parseVirq("9"), 9);
 * assert.equal(parseVirq("NOPE"), undefined);
 * ```
 */
export function parseVirq(nameOrNumber: string | number): number | undefined {
  if (typeof nameOrNumber === "number") return nameOrNumber;
  if (/^\d+$/.test(nameOrNumber)) return Number(nameOrNumber);
  const key = nameOrNumber.toUpperCase().replace(/^VIRQ_/, "");
  return Object.hasOwn(VIRQ, key) ? VIRQ[key as VirqName] : undefined;
}

/**
 * The name of a VIRQ number, such as `"VIRQ_TIMER"`, or `"VIRQ_<n>"`.
 *
 * @param virq The number.
 * @returns The name.
 *
 * @example
 * ```ts
 * import { virqName } from "./virq.ts";
 * import assert from "node:assert/strict";
 * assert.equal(virqName(0), "VIRQ_TIMER");
 * ```
 */
export function virqName(virq: number): string {
  for (const [name, value] of Object.entries(VIRQ)) {
    if (value === virq) return `VIRQ_${name}`;
  }
  return `VIRQ_${virq}`;
}
