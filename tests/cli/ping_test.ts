import assert from "node:assert/strict";
import { cli, memory } from "./_run.ts";

function assertSane(result: Record<string, unknown>, count: number): void {
  assert.equal(result.version, 1);
  assert.equal(result.count, count);
  const l = result.latencyUs as Record<string, number>;
  assert.ok(l.min > 0, `min ${l.min}`);
  assert.ok(l.min <= l.median, `min ${l.min} > median ${l.median}`);
  assert.ok(l.median <= l.p99, `median ${l.median} > p99 ${l.p99}`);
  assert.ok(l.p99 <= l.max, `p99 ${l.p99} > max ${l.max}`);
  assert.ok(l.min <= l.mean && l.mean <= l.max);
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
    /^30 round trips, latency in µs: min [\d.]+ +median [\d.]+ +p99 [\d.]+ +max [\d.]+/,
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
