// The README's two commands use the Deno version pinned in tools/deno, and
// CI runs the README's test command.

import assert from "node:assert/strict";

const root = new URL("../../", import.meta.url);
const read = (path: string) => Deno.readTextFile(new URL(path, root));

Deno.test("README commands use the pinned Deno and tasks that exist", async () => {
  const readme = await read("README.md");
  const pin = (await read("tools/deno")).match(/deno@(\d+\.\d+\.\d+)/)?.[1];
  assert.ok(pin, "tools/deno pins a version");
  const commands = [...readme.matchAll(/^npx -y deno@(\S+) task (\S+)/gm)];
  // the two commands a fresh machine needs come first
  assert.deepEqual(commands.slice(0, 2).map((m) => m[2]), ["demo", "test"]);
  for (const [, version] of commands) assert.equal(version, pin);
  const tasks = JSON.parse(await read("deno.json")).tasks;
  for (const [, , task] of commands) assert.ok(tasks[task], `task ${task}`);
});

Deno.test(".ci/run runs the README's test command and prints the closing line", async () => {
  const ci = await read(".ci/run");
  assert.match(ci, /tools\/deno task test/);
  assert.match(ci, /echo "\$passed passed, \$failed failed"/);
});
