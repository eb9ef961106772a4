// The shape the code keeps (issue 13): a thin CLI, `_` files private to
// their folder, and a public entry point that exports no model internals.

import assert from "node:assert/strict";

const root = new URL("../../", import.meta.url);

/** Every `.ts` file under `dir` (relative to the root), skipping caches. */
async function tsFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const stack = [dir];
  while (stack.length > 0) {
    const d = stack.pop()!;
    for await (const entry of Deno.readDir(new URL(d, root))) {
      const path = d === "." ? entry.name : `${d}/${entry.name}`;
      if (entry.isDirectory) {
        if (![".git", ".cache", "node_modules", "cov"].includes(entry.name)) {
          stack.push(path);
        }
      } else if (entry.name.endsWith(".ts")) out.push(path);
    }
  }
  return out.sort();
}

/** The relative module specifiers a file imports or re-exports. */
function imports(text: string): string[] {
  return [...text.matchAll(/(?:import|export)[^;]*?from\s+"(\.[^"]+)"/g)]
    .map((m) => m[1]);
}

function dirname(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "." : path.slice(0, i);
}

function resolve(from: string, spec: string): string {
  const parts = dirname(from) === "." ? [] : dirname(from).split("/");
  for (const part of spec.split("/")) {
    if (part === "..") parts.pop();
    else if (part !== ".") parts.push(part);
  }
  return parts.join("/");
}

Deno.test("every cli/*.ts is at most 250 lines", async () => {
  const long: string[] = [];
  for (const file of await tsFiles("cli")) {
    const text = await Deno.readTextFile(new URL(file, root));
    const lines = text.split("\n").length - (text.endsWith("\n") ? 1 : 0);
    if (lines > 250) long.push(`${file}: ${lines}`);
  }
  assert.deepEqual(long, []);
});

// A folder's subfolders are part of it (cli/oracle/ uses cli/_args.ts);
// tests and benches measure internals on purpose.
Deno.test("_ files are imported only within their folder (tests and benches aside)", async () => {
  const files = (await tsFiles(".")).filter((f) =>
    !f.startsWith("tests/") && !f.startsWith("bench/")
  );
  const crossing: string[] = [];
  for (const file of files) {
    const text = await Deno.readTextFile(new URL(file, root));
    for (const spec of imports(text)) {
      const target = resolve(file, spec);
      const name = target.slice(target.lastIndexOf("/") + 1);
      const home = dirname(target);
      const inside = dirname(file) === home ||
        dirname(file).startsWith(`${home}/`);
      if (name.startsWith("_") && !inside) {
        crossing.push(`${file} imports ${target}`);
      }
    }
  }
  assert.deepEqual(crossing, []);
});

Deno.test("mod.ts exports no model internals", async () => {
  const mod = await import(new URL("mod.ts", root).href);
  for (
    const name of [
      "Hypervisor",
      "Domain",
      "SharedInfo",
      "FifoAbi",
      "TwoLevelAbi",
      "LinuxGuest",
      "MemoryEvtchnDevice",
    ]
  ) {
    assert.equal(name in mod, false, `mod.ts exports ${name}`);
  }
  const model = await import(new URL("model.ts", root).href);
  assert.ok("Hypervisor" in model, "model.ts is where the model's classes are");
});
