// Every README example that builds a modelled host is a correct program:
// run with lint mode on, it leaves no finding (issue 16). Examples that
// turn lint on themselves show findings on purpose and are left out; so
// are `ignore` blocks (a real dom0's).

import assert from "node:assert/strict";

const root = new URL("../../", import.meta.url);
const readme = await Deno.readTextFile(new URL("README.md", root));

/** The README's runnable `ts` blocks that create a MemoryXen without lint. */
const examples = [...readme.matchAll(/^```ts\n([\s\S]*?)^```$/gm)]
  .map((m) => ({
    line: readme.slice(0, m.index).split("\n").length,
    code: m[1],
  }))
  .filter(({ code }) =>
    code.includes("new MemoryXen()") && !code.includes("lint: true")
  );

/**
 * The example as a module that builds every host with lint on and, after
 * the example's own scope has closed its handles, asserts no findings.
 */
function linted(code: string): string {
  const lines = code.split("\n");
  const imports = lines.filter((l) => l.startsWith("import "));
  const body = lines.filter((l) => !l.startsWith("import "));
  const mod = new URL("mod.ts", root).href;
  return [
    ...imports.map((l) => l.replace('"./mod.ts"', JSON.stringify(mod))),
    `import { assertNoFindings as __assertNoFindings, MemoryXen as __MemoryXen } from ${
      JSON.stringify(mod)
    };`,
    "const __hosts: __MemoryXen[] = [];",
    "{",
    ...body.map((l) =>
      l.replaceAll(
        "new MemoryXen()",
        "(__hosts[__hosts.length] = new __MemoryXen({ lint: true }))",
      )
    ),
    "}",
    "if (__hosts.length === 0) throw new Error('no host was built');",
    "for (const xen of __hosts) __assertNoFindings(xen, { final: true });",
  ].join("\n");
}

Deno.test("README: the modelled-host examples leave no lint finding", async (t) => {
  assert.ok(examples.length > 0, "the README has an example to check");
  const dir = await Deno.makeTempDir();
  try {
    for (const { line, code } of examples) {
      await t.step(`README.md line ${line}`, async () => {
        const file = `${dir}/example_${line}.ts`;
        await Deno.writeTextFile(file, linted(code));
        const run = await new Deno.Command(Deno.execPath(), {
          args: ["run", "--quiet", "--no-lock", "--allow-read", file],
          stdout: "piped",
          stderr: "piped",
          env: { NO_COLOR: "1" },
        }).output();
        const stderr = new TextDecoder().decode(run.stderr);
        assert.equal(run.code, 0, stderr);
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
