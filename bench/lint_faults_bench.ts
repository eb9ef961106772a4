// deno bench: what lint mode and fault injection cost. The public round trip
// (`a.notify(p); b.poll(); b.unmask(q)`) on a host made with lint and faults
// off (`new MemoryXen()`, what every user gets) against the same round trip
// on handles over a bare MemoryEvtchnDevice that no lint or fault code can
// reach (the baseline): the ratio should be 1.00 (≤ 1.02). Then, for
// information, the same with lint on and with faults on (a plan that never
// acts).
// Run: tools/deno bench bench/lint_faults_bench.ts

import { EventChannelHandle, type FaultOptions, MemoryXen } from "../mod.ts";
import { MemoryEvtchnDevice } from "../model.ts";

interface Trip {
  run(): void;
}

function trip(open: (domain: number) => EventChannelHandle): Trip {
  const a = open(0), b = open(0);
  const p = a.bindUnboundPort(0);
  b.bindInterdomain(0, p);
  b.unmask(b.poll()!);
  return {
    run(): void {
      a.notify(p);
      const q = b.poll();
      if (q !== undefined) b.unmask(q);
    },
  };
}

/** Never acts within a bench run, but is installed: every op is a step. */
const IDLE_FAULTS: FaultOptions = {
  spurious: [{ step: Number.MAX_SAFE_INTEGER, domain: 0 }],
};

for (const eventAbi of ["fifo", "2l"] as const) {
  const group = `lint and faults off, ${eventAbi}`;
  const bareHost = new MemoryXen({ eventAbi, bootPorts: false });
  const bare = trip((d) =>
    new EventChannelHandle(new MemoryEvtchnDevice(bareHost.guest(d)!))
  );
  const offHost = new MemoryXen({ eventAbi, bootPorts: false });
  const off = trip((d) => offHost.open(d));
  const lintHost = new MemoryXen({ eventAbi, bootPorts: false, lint: true });
  const lint = trip((d) => lintHost.open(d));
  const faultHost = new MemoryXen({
    eventAbi,
    bootPorts: false,
    faults: IDLE_FAULTS,
  });
  const faults = trip((d) => faultHost.open(d));
  Deno.bench({
    name: `${eventAbi}: bare device (baseline)`,
    group,
    baseline: true,
    fn: () => bare.run(),
  });
  Deno.bench({
    name: `${eventAbi}: MemoryXen, lint and faults off`,
    group,
    fn: () => off.run(),
  });
  Deno.bench({
    name: `${eventAbi}: lint on`,
    group: `lint and faults on, ${eventAbi}`,
    baseline: true,
    fn: () => lint.run(),
  });
  Deno.bench({
    name: `${eventAbi}: faults on (idle plan)`,
    group: `lint and faults on, ${eventAbi}`,
    fn: () => faults.run(),
  });
}
