// The memory backend's conformance environment: dom0 and a domU running
// Linux (domain 1, two vCPUs) plus a paused domain without a kernel (7), on
// a fresh modelled host per case. Shared by memory_test.ts and the lint-mode
// run in tests/lint/lint_test.ts, which differ only in the host's options.
// (Not a test file itself: `deno test` runs only *_test.ts.)

import { MemoryXen, type MemoryXenOptions, VIRQ } from "../../mod.ts";
import type { ConformanceEnv } from "./suite.ts";

/** What a caller adds to the environment (its name and hooks). */
export type MemoryEnvExtras =
  & Pick<ConformanceEnv, "name">
  & Partial<Pick<ConformanceEnv, "afterEach">>;

/**
 * A conformance environment on the memory backend.
 *
 * @param options The host's options (event ABI, lint).
 * @param extras The case name and an `afterEach` hook, given the host.
 * @param loopback Peer handles in dom0 itself instead of the domU.
 * @returns The environment; `current()` is the case's host, if booted.
 */
export function memoryConformanceEnv(
  options: MemoryXenOptions,
  extras: MemoryEnvExtras,
  loopback = false,
): { env: ConformanceEnv; current: () => MemoryXen | undefined } {
  let xen: MemoryXen | undefined;
  /** The case's modelled host, booted on first use; each case gets its own. */
  const host = (): MemoryXen => {
    if (xen === undefined) {
      xen = new MemoryXen(options);
      xen.createDomain({ domain: 1, vcpus: 2 });
      xen.createDomain({ domain: 7, linux: false, paused: true });
    }
    return xen;
  };
  const env: ConformanceEnv = {
    ...extras,
    ignore: false,
    open: () => host().open(0),
    localDomain: 0,
    localVcpus: host().kernel(0)!.vcpus,
    openPeer: () => host().open(loopback ? 0 : 1),
    peerDomain: loopback ? 0 : 1,
    settle: () => Promise.resolve(),
    hypercalls: () => host().hypercalls(0),
    secondDomain: () => (host(), 7),
    // Under loopback DEBUGGER may be taken by the peer's own binds.
    freeVirq: loopback ? VIRQ.TBUF : VIRQ.DEBUGGER,
    // The toolstack's part for the liveness case: a domain to destroy.
    domains: {
      create: () => host().createDomain({ domain: 9, linux: false }).id,
      destroy: (domain: number) => host().destroyDomain(domain),
    },
    beforeEach: () => {
      xen = undefined;
    },
  };
  return { env, current: () => xen };
}
