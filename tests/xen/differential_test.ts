// The real-Xen stage's differential run: seeded random operation sequences
// (device operations on several handles and dom0 hypercalls) on the linux
// backend in dom0 and on the model side by side, compared outcome by
// outcome. Ignored, with the reason, where there is no Xen device.

import assert from "node:assert/strict";
import { linuxDeviceStatus } from "../../mod.ts";
import {
  formatDivergence,
  formatTrace,
  linuxBackend,
  runDiff,
} from "../../oracle/mod.ts";

const device = linuxDeviceStatus();
const OPS = Number(Deno.env.get("EVTCHN_DIFF_OPS") ?? 10_000);
const SEED = Number(Deno.env.get("EVTCHN_DIFF_SEED") ?? 20261125);
/**
 * Side-by-side reruns allowed for shrinking a divergence: each rerun replays
 * up to the divergence on real Xen, so keep it small under QEMU's TCG.
 */
const SHRINK = Number(Deno.env.get("EVTCHN_DIFF_SHRINK") ?? 25);
/** Where to save a shrunk diverging sequence (a writable dir in dom0). */
const SAVE = Deno.env.get("EVTCHN_DIFF_SAVE");

Deno.test({
  name:
    `differential run: ${OPS} random operations, linux vs the model, seed ${SEED}` +
    (device.available ? "" : ` [ignored: ${device.reason ?? "no Xen device"}]`),
  ignore: !device.available,
  async fn(): Promise<void> {
    const report = await runDiff({
      seed: SEED,
      ops: OPS,
      against: linuxBackend(),
      shrink: SHRINK > 0,
      maxTests: SHRINK,
    });
    console.log(
      `differential run: seed ${SEED}, ${OPS} operations, ${report.steps.length} steps compared, ` +
        (report.agreed ? "no divergence" : "DIVERGED"),
    );
    if (!report.agreed && SAVE !== undefined && report.minimal !== undefined) {
      await Deno.writeTextFile(
        `${SAVE}/diff-seed-${SEED}.jsonl`,
        formatTrace(report.minimal.trace),
      );
    }
    assert.ok(
      report.agreed,
      report.divergence === undefined
        ? "diverged"
        : formatDivergence(report.divergence),
    );
  },
});
