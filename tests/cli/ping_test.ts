import assert from "node:assert/strict";
import { cli, memory } from "./_run.ts";

function assertSane(result: Record<string, unknown>, count: number): void {
  assert.equal(result.version, 1);
  assert.equal(result.count, count);
  const l = result.latencyUs as Record<string, number>;
  assert.deepEqual(Object.keys(l), [
    "min",
    "median",
    "p90",
    "p99",
    "p999",
    "max",
    "mean",
  ]);
  assert.ok(l.min > 0, `min ${l.min}`);
  assert.ok(l.min <= l.median, `min ${l.min} > median ${l.median}`);
  assert.ok(l.median <= l.p90, `median ${l.median} > p90 ${l.p90}`);
  assert.ok(l.p90 <= l.p99, `p90 ${l.p90} > p99 ${l.p99}`);
  assert.ok(l.p99 <= l.p999, `p99 ${l.p99} > p99.9 ${l.p999}`);
  assert.ok(l.p999 <= l.max, `p99.9 ${l.p999} > max ${l.max}`);
  assert.ok(l.min <= l.mean && l.mean <= l.max);
  const t = result.throughput as Record<string, number>;
  assert.ok(t.seconds > 0, `seconds ${t.seconds}`);
  // Each round trip carries two events; both rates come from one clock.
  assert.ok(
    Math.abs(t.eventsPerSecond - 2 * t.roundTripsPerSecond) <= 1,
    JSON.stringify(t),
  );
  // The loop cannot be faster than its own latencies allow.
  assert.ok(
    t.roundTripsPerSecond <= Math.ceil(1e6 / l.min) + 1,
    `${t.roundTripsPerSecond}/s with a min latency of ${l.min} µs`,
  );
  const buckets = result.histogram as {
    fromUs: number;
    toUs: number;
    count: number;
  }[];
  assert.equal(buckets.reduce((n, b) => n + b.count, 0), count);
  assert.ok(buckets[0].fromUs <= l.min && l.max < buckets.at(-1)!.toUs);
}

Deno.test("ping --count 50 --json gives sane numbers", async () => {
  const { code, stdout, stderr } = await memory(
    "ping",
    "--count",
    "50",
    "--json",
  );
  assert.equal(code, 0, stderr);
  const result = JSON.parse(stdout);
  assertSane(result, 50);
  assert.deepEqual(result.peer, { kind: "loopback" });
});

Deno.test("ping --remote 1 bounces between dom0 and the modelled domU", async () => {
  const { code, stdout } = await memory(
    "ping",
    "--count",
    "20",
    "--remote",
    "1",
    "--json",
  );
  assert.equal(code, 0);
  const result = JSON.parse(stdout);
  assertSane(result, 20);
  assert.deepEqual(result.peer, { kind: "domain", domain: 1 });
});

Deno.test("ping prints statistics and a histogram, no progress bar off a terminal", async () => {
  const { code, stdout, stderr } = await memory("ping", "--count", "30");
  assert.equal(code, 0);
  assert.match(
    stdout,
    /^30 round trips, latency in µs: min [\d.]+ +median [\d.]+ +p90 [\d.]+ +p99 [\d.]+ +p99\.9 [\d.]+ +max [\d.]+ +mean [\d.]+$/m,
  );
  assert.match(
    stdout,
    /^throughput: \d+ round trips\/s = \d+ events\/s \(2 events per round trip\) over [\d.]+ s$/m,
  );
  assert.match(stdout, /µs │/);
  assert.doesNotMatch(stderr, /\r/);
});

Deno.test("ping usage errors exit 2", async (t) => {
  await t.step("--count 0", async () => {
    const { code } = await memory("ping", "--count", "0");
    assert.equal(code, 2);
  });
  await t.step("--remote on linux", async () => {
    const { code, stderr } = await cli(
      "--backend",
      "linux",
      "ping",
      "--remote",
      "1",
    );
    assert.equal(code, 2);
    assert.match(stderr, /--remote needs the memory backend/);
  });
  await t.step("--remote to a domain the model lacks", async () => {
    const { code } = await memory("ping", "--remote", "5");
    assert.equal(code, 2);
  });
});
