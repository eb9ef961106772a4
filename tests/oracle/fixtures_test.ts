// Real-Xen traces (tests/oracle/fixtures/*.jsonl, recorded in dom0 with
// tests/oracle/record_fixtures.sh) replayed on the in-memory model: every
// divergence is the model disagreeing with real Xen 4.17 + Linux 6.1.
// Traces recorded on the model itself (*.memory.jsonl) are not evidence and
// are skipped.

import assert from "node:assert/strict";
import {
  formatDivergence,
  memoryBackend,
  parseTrace,
  replayTrace,
} from "../../oracle/mod.ts";

const DIR = new URL("./fixtures/", import.meta.url);

function fixtures(): string[] {
  try {
    return [...Deno.readDirSync(DIR)]
      .filter((e) =>
        e.isFile && e.name.endsWith(".jsonl") &&
        !e.name.endsWith(".memory.jsonl")
      )
      .map((e) => e.name)
      .sort();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
}

const names = fixtures();

if (names.length === 0) {
  Deno.test({
    name:
      "real-Xen fixtures replay on the model [ignored: no real-Xen fixtures recorded yet; see tests/oracle/fixtures/README.md]",
    ignore: true,
    fn(): void {},
  });
}

for (const name of names) {
  Deno.test(`real-Xen fixture ${name} replays on the model`, async () => {
    const text = await Deno.readTextFile(new URL(name, DIR));
    const trace = parseTrace(text, { requireOutcomes: true });
    assert.ok(trace.header !== undefined, `${name} has no header`);
    assert.notEqual(
      trace.header.backend,
      "memory",
      `${name} was recorded on the model: name it *.memory.jsonl`,
    );
    // The model boots from the recording host's snapshot and compares every
    // field: a fixture may not hide one.
    assert.ok(trace.header.host !== undefined, `${name} has no host snapshot`);
    for (const step of trace.steps) {
      assert.equal(
        step.ignore,
        undefined,
        `${name} step ${step.i} ignores fields`,
      );
    }
    const report = await replayTrace(trace, memoryBackend(), { all: true });
    assert.equal(report.ignored.length, 0);
    assert.equal(
      report.divergences.length,
      0,
      `${name} (${trace.header.backend}, xen ${trace.header.xen}, ${trace.header.abi}, ${trace.header.vcpus} vCPUs): ` +
        `${report.divergences.length} divergence(s)\n` +
        report.divergences.map(formatDivergence).join("\n"),
    );
  });
}
