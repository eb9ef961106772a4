/**
 * The keys under which a {@linkcode Domain} keeps its port table (Xen's
 * `struct evtchn` fields, one typed array each). Private to this folder:
 * only the hypervisor's own files import these symbols, so nothing outside
 * can reach, let alone write, the arrays (short of reflection with
 * `Object.getOwnPropertySymbols`); everything else reads ports
 * through `inspect.ts` or the `Domain`'s read-only `port*` methods.
 *
 * Speed: a symbol key costs what a named field costs in optimized code only
 * when V8 sees it as a constant. A module's own `const` is one; an imported
 * binding is not (it is live, so it is reloaded and checked at every use,
 * which more than doubles the cost of a table access in a micro-benchmark).
 * The hot files (`domain.ts`, `hypervisor.ts`, `event_fifo.ts`) therefore
 * copy the keys they use into their own constants:
 * `const STATE: typeof tables.STATE = tables.STATE;`. `#private` fields
 * reached through exported accessor functions pay the same price as an
 * imported key.
 *
 * @module
 */

/** `ECS_*` per port (`evtchn->state`), a `Uint8Array`. */
export const STATE: unique symbol = Symbol("state");
/** Notify vCPU per port (`evtchn->notify_vcpu_id`), a `Uint32Array`. */
export const NOTIFY_VCPU: unique symbol = Symbol("notifyVcpu");
/**
 * Unbound: the allowed remote domain; interdomain: the peer domain
 * (`u.unbound.remote_domid`, `u.interdomain.remote_dom`), a `Uint16Array`.
 */
export const REMOTE_DOMAIN: unique symbol = Symbol("remoteDomain");
/** Interdomain: the peer port (`u.interdomain.remote_port`), a `Uint32Array`. */
export const REMOTE_PORT: unique symbol = Symbol("remotePort");
/** The VIRQ or PIRQ number (`u.virq`, `u.pirq.irq`), a `Uint32Array`. */
export const IRQ: unique symbol = Symbol("irq");
/** 1 where Xen consumes the local end (`xen_consumer`), a `Uint8Array`. */
export const XEN_CONSUMER: unique symbol = Symbol("xenConsumer");
/**
 * `v->virq_to_evtchn`, `NR_VIRQS` entries per vCPU (0 = unbound), a
 * `Uint32Array`.
 */
export const VIRQ_TO_PORT: unique symbol = Symbol("virqToPort");
