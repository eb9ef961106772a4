import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { cli, cliWithInput } from "./_run.ts";

Deno.test("sim --example two-domains prints outcomes and channel tables", async () => {
  const { code, stdout, stderr } = await cli("sim", "--example", "two-domains");
  assert.equal(code, 0, stderr);
  assert.equal(stderr, "");
  assert.match(
    stdout,
    /^ 1 +d1 +alloc_unbound dom=1 remote_dom=0 +port 1 → \$p1$/m,
  );
  assert.match(
    stdout,
    /^ 2 +d0 +bind_interdomain remote_dom=1 remote_port=\$p1\(1\) +port 1 → \$p0$/m,
  );
  assert.match(
    stdout,
    /^ 9 +d1 +bind_virq virq=0 vcpu=0 +EEXIST \(expected\)/m,
  );
  assert.match(stdout, /^11 steps, none failed$/m);
  const tables = stdout.split("Event channel information for domain ");
  assert.equal(tables.length, 3);
  // dom0: the bind left its new port pending, unmasked, selector set.
  assert.match(
    tables[1],
    /^ {7}1 \[1\/0\/1\]: s=3 n=0 x=0 d=1 p=1 +interdomain$/m,
  );
  // domU: the unmask delivered the channel's event to the guest; the timer
  // and IPI are pending and still masked by Linux.
  assert.match(
    tables[2],
    /^ {7}1 \[0\/0\/0\]: s=3 n=0 x=0 d=0 p=1 +interdomain$/m,
  );
  assert.match(
    tables[2],
    /^ {7}2 \[1\/1\/0\]: s=5 n=0 x=0 v=0 +virq VIRQ_TIMER$/m,
  );
  assert.match(tables[2], /^ {7}3 \[1\/1\/0\]: s=6 n=0 x=0 +ipi$/m);
  assert.match(stdout, /^model invariants: hold$/m);
});

Deno.test("sim --example two-domains --json", async () => {
  const { code, stdout } = await cli(
    "sim",
    "--example",
    "two-domains",
    "--json",
  );
  assert.equal(code, 0);
  const result = JSON.parse(stdout);
  assert.equal(result.version, 1);
  assert.equal(result.scenario.name, "two-domains");
  assert.equal(result.failed, 0);
  assert.deepEqual(result.invariants, []);
  assert.equal(result.steps.length, 11);
  assert.deepEqual(result.steps[0], {
    index: 1,
    op: "alloc_unbound",
    by: "d1",
    args: { caller: 1, dom: 1, remote_dom: 0 },
    refs: {},
    outcome: "ok",
    result: 1,
    as: "p1",
    failed: false,
  });
  assert.equal(result.steps[8].outcome, "error");
  assert.equal(result.steps[8].error.code, "EEXIST");
  assert.equal(result.steps[8].error.errno, 17);
  assert.deepEqual(result.steps[9].result, {
    status: "interdomain",
    vcpu: 0,
    remoteDomain: 0,
    remotePort: 1,
  });
  const [dom0, domU] = result.domains;
  assert.equal(dom0.id, 0);
  assert.deepEqual(dom0.ports, [{
    port: 1,
    state: "interdomain",
    ecs: 3,
    vcpu: 0,
    pending: true,
    masked: false,
    selector: true,
    xen: false,
    remoteDomain: 1,
    remotePort: 1,
  }]);
  assert.deepEqual(domU.ports.map((p: { state: string }) => p.state), [
    "interdomain",
    "virq",
    "ipi",
  ]);
});

Deno.test("sim --example teardown leaves the peers unbound for the dead domain", async () => {
  const { code, stdout } = await cli("sim", "--example", "teardown", "--json");
  assert.equal(code, 0);
  const result = JSON.parse(stdout);
  assert.equal(result.failed, 0);
  assert.deepEqual(result.domains.map((d: { id: number }) => d.id), [0, 1, 2]);
  const [dom0, dom1, dom2] = result.domains;
  const exc = dom0.ports.find((p: { virqName?: string }) =>
    p.virqName === "VIRQ_DOM_EXC"
  );
  assert.equal(exc.pending, true);
  for (const d of [dom0, dom1, dom2]) {
    const unbound = d.ports.filter((p: { state: string }) =>
      p.state === "unbound"
    );
    assert.equal(unbound.length, 1);
    assert.equal(unbound[0].remoteDomain, 3);
  }
});

Deno.test("sim: every built-in example meets its expectations (--strict)", async (t) => {
  const { stdout } = await cli("sim", "--list-examples", "--json");
  const { version, examples } = JSON.parse(stdout);
  assert.equal(version, 1);
  const names = examples.map((e: { name: string }) => e.name);
  assert.ok(names.includes("two-domains") && names.includes("teardown"));
  for (const name of names) {
    await t.step(name, async () => {
      const { code, stderr } = await cli("sim", "--example", name, "--strict");
      assert.equal(code, 0, stderr);
    });
  }
});

Deno.test("sim: a failing step does not stop the run; --strict makes it exit 1", async () => {
  const scenario = JSON.stringify({
    domains: [{ id: 0, privileged: true }],
    steps: [
      { op: "bind_ipi", caller: 0, vcpu: 5, as: "x" },
      { op: "send", caller: 0, port: "$x" },
      { op: "bind_ipi", caller: 0, as: "y" },
      { op: "send", caller: 0, port: "$y", expect: "EINVAL" },
    ],
  });
  {
    const loose = await cliWithInput(scenario, "sim", "-", "--json");
    assert.equal(loose.code, 0);
    const result = JSON.parse(loose.stdout);
    assert.deepEqual(
      result.steps.map((s: { outcome: string }) => s.outcome),
      ["error", "skipped", "ok", "ok"],
    );
    assert.equal(result.steps[0].error.code, "ENOENT");
    assert.equal(result.failed, 3);
    const strict = await cliWithInput(scenario, "sim", "-", "--strict");
    assert.equal(strict.code, 1);
    assert.match(strict.stdout, /^4 steps, 3 failed$/m);
  }
});

Deno.test("sim: a bad scenario file exits 2 naming where", async (t) => {
  const cases: [string, string, RegExp][] = [
    [
      "syntax",
      '{\n  "domains": [],\n  "steps": [\n    {"op": "send", "port": }\n  ]\n}',
      /^error: <stdin>:4:28: Unexpected '}': expected a value$/m,
    ],
    [
      "unknown op",
      '{"domains": [{"id": 0}],\n "steps": [{"op": "sned", "caller": 0}]}',
      /^error: <stdin>:2:19: steps\[0\]\.op: unknown op 'sned'/m,
    ],
    [
      "undefined name",
      '{"domains": [{"id": 0}], "steps": [{"op": "send", "caller": 0, "port": "$p"}]}',
      /^error: <stdin>:1:72: steps\[0\]\.port: '\$p' names no earlier step's "as"$/m,
    ],
    [
      "missing field",
      '{"domains": [{"id": 0}], "steps": [{"op": "send", "caller": 0}]}',
      /steps\[0\]: 'send' needs 'port'/,
    ],
    [
      "bad domain id",
      '{"domains": [{"id": 70000}], "steps": []}',
      /^error: <stdin>:1:21: domains\[0\]\.id: .*EINVAL/m,
    ],
    ["not an object", "[]", /^error: <stdin>:1:1: expected an object/m],
  ];
  for (const [name, text, message] of cases) {
    await t.step(name, async () => {
      const { code, stdout, stderr } = await cliWithInput(text, "sim", "-");
      assert.equal(code, 2, stderr);
      assert.equal(stdout, "");
      assert.match(stderr, message);
      assert.match(
        stderr,
        /\nSee 'evtchn sim --help' for the scenario format\.\n$/,
      );
    });
  }
});

Deno.test("sim usage errors exit 2", async (t) => {
  await t.step("neither FILE nor --example", async () => {
    const { code } = await cli("sim");
    assert.equal(code, 2);
  });
  await t.step("unknown example", async () => {
    const { code, stderr } = await cli("sim", "--example", "nope");
    assert.equal(code, 2);
    assert.match(stderr, /Unknown example 'nope'/);
  });
  await t.step("--backend linux", async () => {
    const { code } = await cli(
      "--backend",
      "linux",
      "sim",
      "--example",
      "teardown",
    );
    assert.equal(code, 2);
  });
});

Deno.test("sim FILE reads a scenario file", async (t) => {
  const file = fileURLToPath(
    new URL("../../cli/examples/teardown.json", import.meta.url),
  );
  await t.step("the file of a built-in example", async () => {
    const { code, stdout } = await cli("sim", file, "--strict");
    assert.equal(code, 0);
    assert.match(stdout, /^scenario teardown: /);
  });
  await t.step("a missing file is an operation error (1)", async () => {
    const { code, stderr } = await cli("sim", `${file}.missing`);
    assert.equal(code, 1);
    assert.match(stderr, /^error: NotFound: /);
  });
});

Deno.test("sim --lint reports what loses events", async () => {
  const scenario = JSON.stringify({
    domains: [{ id: 0, privileged: true }, { id: 1 }],
    steps: [
      { op: "alloc_unbound", caller: 0, dom: 0, remote_dom: 1, as: "p" },
      { op: "send", caller: 0, port: "$p" },
    ],
  });
  const json = await cliWithInput(scenario, "sim", "-", "--lint", "--json");
  assert.equal(json.code, 0, json.stderr);
  const result = JSON.parse(json.stdout);
  assert.deepEqual(
    result.findings.map((
      f: { code: string; step: number },
    ) => [f.code, f.step]),
    [["notify-unbound-peer", 2]],
  );
  const human = await cliWithInput(scenario, "sim", "-", "--lint", "--strict");
  assert.equal(human.code, 1, "--strict fails on findings");
  assert.match(human.stdout, /^lint: 1 finding\(s\)$/m);
  assert.match(human.stdout, /notify-unbound-peer +0 +- +1 +send on port 1/);
  const off = await cliWithInput(scenario, "sim", "-", "--json");
  assert.equal(JSON.parse(off.stdout).findings, undefined, "no lint, no key");
  const quiet = await cli(
    "sim",
    "--example",
    "two-domains",
    "--lint",
    "--strict",
  );
  assert.equal(quiet.code, 0, quiet.stdout);
});

Deno.test("sim: fault statements (seed, faults) reproduce from the seed", async (t) => {
  const scenario = (seed: number) =>
    JSON.stringify({
      domains: [
        { id: 0, privileged: true, vcpus: 2, linux: true },
        { id: 1, vcpus: 2, linux: true },
      ],
      seed,
      faults: {
        destroyDomain: [{ step: 3, domain: 1 }],
        spurious: [{ step: 2, domain: 0 }],
        fail: [{ op: "alloc_unbound", call: 2, errno: "ENOMEM" }],
      },
      steps: [
        { op: "alloc_unbound", caller: 1, dom: 1, remote_dom: 0, as: "p1" },
        {
          op: "bind_interdomain",
          caller: 0,
          remote_dom: 1,
          remote_port: "$p1",
          as: "p0",
        },
        { op: "status", caller: 0, dom: 0, port: "$p0" },
        {
          op: "alloc_unbound",
          caller: 0,
          dom: 0,
          remote_dom: 0,
          expect: "ENOMEM",
        },
      ],
    });
  await t.step("the faults act at their steps", async () => {
    const { code, stdout, stderr } = await cliWithInput(
      scenario(5),
      "sim",
      "-",
      "--json",
      "--strict",
    );
    assert.equal(code, 0, stderr + stdout);
    const result = JSON.parse(stdout);
    const kinds = result.faults.map((f: { kind: string }) => f.kind);
    assert.deepEqual(kinds, ["spurious", "destroy-domain", "fail"]);
    assert.equal(result.steps[2].result.status, "unbound", "peer destroyed");
    assert.deepEqual(result.domains.map((d: { id: number }) => d.id), [0]);
    const human = await cliWithInput(scenario(5), "sim", "-");
    assert.match(human.stdout, /^faults injected: 3$/m);
    assert.match(human.stdout, /^ {2}step 3: destroy-domain domain=1$/m);
  });
  await t.step("the same seed, the same run", async () => {
    const a = await cliWithInput(scenario(9), "sim", "-", "--json");
    const b = await cliWithInput(scenario(9), "sim", "-", "--json");
    assert.equal(a.stdout, b.stdout);
  });
  await t.step("bad fault statements exit 2 naming where", async () => {
    for (
      const [faults, where] of [
        [{ overflow: [] }, /faults\.overflow: a scenario has no handles/],
        [{ spurious: [{ step: 0, domain: 0 }] }, /faults\.spurious\[0\]\.step/],
        [
          { fail: [{ op: "nope", call: 1, errno: "ENOMEM" }] },
          /faults\.fail\[0\]\.op/,
        ],
      ] as const
    ) {
      const text = JSON.stringify({ domains: [{ id: 0 }], steps: [], faults });
      const { code, stderr } = await cliWithInput(text, "sim", "-");
      assert.equal(code, 2, stderr);
      assert.match(stderr, where);
    }
  });
});
