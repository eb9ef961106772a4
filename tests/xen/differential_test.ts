// The real-Xen stage's differential runs: seeded random operation sequences
// (device operations on several handles and dom0 hypercalls) on the linux
// backend in dom0 and on the model side by side, compared outcome by outcome
// and field by field (vCPU included), then the whole dom0 status table at
// the end of each run. Each run starts from a snapshot of the host taken
// just before it (the model boots from it), so it does not depend on what
// ran earlier in the same boot; several runs with varied seeds go back to
// back after the conformance and CLI suites. Ignored, with the reason,
// where there is no Xen device.
//
// Environment (bounds in brackets): EVTCHN_DIFF_RUNS runs [1..100, default
// 5], EVTCHN_DIFF_OPS steps per run [1..200000, default 4000],
// EVTCHN_DIFF_SEED first seed (run k uses seed + k), EVTCHN_DIFF_SHRINK
// side-by-side reruns for shrinking [0..1000, default 25],
// EVTCHN_DIFF_STUCK_S seconds without progress before the watchdog reports
// [5..3600, default 60], EVTCHN_DIFF_SAVE a writable directory for shrunk
// diverging sequences.

import assert from "node:assert/strict";
import { linuxDeviceStatus } from "../../mod.ts";
import {
  formatDivergence,
  formatTrace,
  linuxBackend,
  runDiff,
} from "../../oracle/mod.ts";
import { envInteger } from "./_env.ts";

const device = linuxDeviceStatus();

const RUNS = envInteger("EVTCHN_DIFF_RUNS", 5, 1, 100);
const OPS = envInteger("EVTCHN_DIFF_OPS", 4000, 1, 200_000);
const SEED = envInteger("EVTCHN_DIFF_SEED", 20261125, 0, 0xffff_ffff);
/**
 * Side-by-side reruns allowed for shrinking a divergence: each rerun replays
 * up to the divergence on real Xen, so keep it small under QEMU's TCG.
 */
const SHRINK = envInteger("EVTCHN_DIFF_SHRINK", 25, 0, 1000);
const STUCK_MS = envInteger("EVTCHN_DIFF_STUCK_S", 60, 5, 3600) * 1000;
/** Where to save a shrunk diverging sequence (a writable dir in dom0). */
const SAVE = Deno.env.get("EVTCHN_DIFF_SAVE");
/** Progress lines per run. */
const PROGRESS_EVERY = 1000;

const runs = Array.from({ length: RUNS }, (_, k) => ({
  seed: (SEED + k) >>> 0,
  ops: OPS,
}));

Deno.test({
  name: `differential runs: ${RUNS} × ${OPS} random operations back to back, ` +
    `linux vs the model calibrated from the host, every field compared, ` +
    `seeds ${SEED}..${SEED + RUNS - 1}` +
    (device.available ? "" : ` [ignored: ${device.reason ?? "no Xen device"}]`),
  ignore: !device.available,
  async fn(t): Promise<void> {
    const shared = new SharedArrayBuffer(8);
    const slots = new Int32Array(shared);
    Atomics.store(slots, 0, -1);
    const watchdog = new Worker(
      new URL("./_watchdog.ts", import.meta.url).href,
      { type: "module" },
    );
    watchdog.postMessage({ shared, stuckMs: STUCK_MS, runs });
    let compared = 0;
    try {
      for (const [k, { seed, ops }] of runs.entries()) {
        await t.step(`run ${k + 1}/${RUNS}: seed ${seed}`, async () => {
          const started = Date.now();
          Atomics.store(slots, 1, 0);
          Atomics.store(slots, 0, k);
          const report = await runDiff({
            seed,
            ops,
            against: linuxBackend(),
            shrink: SHRINK > 0,
            maxTests: SHRINK,
            onStep: (index) => {
              Atomics.store(slots, 1, index);
              if (index > 0 && index % PROGRESS_EVERY === 0) {
                console.log(`differential run ${k + 1}/${RUNS}: step ${index}`);
              }
            },
          });
          Atomics.store(slots, 0, -1);
          if (report.agreed) compared += report.steps.length;
          console.log(
            `differential run ${
              k + 1
            }/${RUNS}: seed ${seed}, ${ops} operations, ` +
              `${report.steps.length} steps and the final status table compared, ` +
              `${report.agreed ? "no divergence" : "DIVERGED"} ` +
              `(${Math.round((Date.now() - started) / 1000)} s)`,
          );
          if (!report.agreed && SAVE !== undefined && report.minimal) {
            await Deno.writeTextFile(
              `${SAVE}/diff-seed-${seed}.jsonl`,
              formatTrace(report.minimal.trace),
            );
          }
          assert.ok(
            report.agreed,
            report.divergence === undefined
              ? "diverged"
              : formatDivergence(report.divergence),
          );
        });
      }
    } finally {
      watchdog.postMessage("stop");
      watchdog.terminate();
    }
    const all = compared === RUNS * OPS;
    console.log(
      `differential run: ${RUNS} runs, seeds ${SEED}..${SEED + RUNS - 1}, ` +
        `${compared} steps compared` +
        (all
          ? ", every field and the final status tables agree with the model calibrated from the host"
          : ` in the runs that agreed; ${
            Math.round((RUNS * OPS - compared) / OPS)
          } run(s) DIVERGED (see above)`),
    );
    assert.equal(compared, RUNS * OPS);
  },
});
