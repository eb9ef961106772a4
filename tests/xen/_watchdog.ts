// A watchdog Worker for the real-Xen differential runs. The run's thread
// stores the index of the step it is about to run (and the run number) in a
// SharedArrayBuffer; if the index stays put for `stuckMs`, this Worker,
// which keeps running while the run's thread is blocked in a system call,
// prints the stuck step (index, handle, op, arguments: regenerated from the
// seed, which is deterministic) and dom0's whole event-channel table as
// privcmd reports it, once per stuck step, on stdout, which the real-Xen
// stage streams live and keeps in its log even when the boot is killed.
//
// Messages in: { shared: SharedArrayBuffer, stuckMs, runs: [{ seed, ops }] }
// and "stop". Slots of the Int32Array: 0 run number (-1 idle), 1 step index.

import { generateSteps } from "../../oracle/mod.ts";
import type { StepInput } from "../../oracle/mod.ts";

interface Start {
  shared: SharedArrayBuffer;
  stuckMs: number;
  runs: { seed: number; ops: number }[];
}

let timer: ReturnType<typeof setInterval> | undefined;

self.addEventListener("message", (message: Event): void => {
  const event = message as MessageEvent<Start | "stop">;
  if (event.data === "stop") {
    clearInterval(timer);
    self.close();
    return;
  }
  const { shared, stuckMs, runs } = event.data;
  const slots = new Int32Array(shared);
  const steps = new Map<number, StepInput[]>();
  let last = "";
  let since = Date.now();
  let reported = "";
  timer = setInterval(() => {
    const run = Atomics.load(slots, 0), index = Atomics.load(slots, 1);
    const now = `${run}:${index}`;
    if (now !== last) {
      last = now;
      since = Date.now();
      return;
    }
    if (run < 0 || Date.now() - since < stuckMs || reported === now) return;
    reported = now;
    const { seed, ops } = runs[run];
    if (!steps.has(run)) {
      steps.set(run, generateSteps(seed, ops, { coalesceReads: true }));
    }
    const step = steps.get(run)![index];
    console.log(
      `differential watchdog: run ${run + 1} (seed ${seed}) stuck for ` +
        `${Math.round((Date.now() - since) / 1000)} s at step ${index}: ` +
        `${step.handle ?? "-"} ${step.op} ${JSON.stringify(step.args)}`,
    );
    void describeDom0().then((table) =>
      console.log(`differential watchdog: dom0 now: ${table}`)
    );
  }, Math.min(1000, stuckMs));
});

/** dom0's ports as privcmd reports them, or why they cannot be read. */
async function describeDom0(): Promise<string> {
  try {
    const { openPrivcmd } = await import("../../mod.ts");
    using xen = openPrivcmd();
    const rows: string[] = [];
    for (let port = 1;; port++) {
      let status;
      try {
        status = xen.status(0x7ff0, port);
      } catch {
        break; // the storage edge
      }
      if (status.status !== "closed") {
        rows.push(`${port}:${status.status}@${status.vcpu}`);
      }
    }
    return rows.join(" ");
  } catch (error) {
    return `(cannot read: ${(error as Error).message})`;
  }
}
