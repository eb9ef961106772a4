// `deno task install` for the README's audience: Node.js and npm, no Deno.
// The installed `evtchn` must run with no `deno` anywhere on PATH (before,
// it was `deno install -g`'s script, which runs a global `deno`: exit 127).

import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { PERMISSIONS } from "../../cli/main.ts";

const ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))));
const decoder = new TextDecoder();

/** A PATH with the usual system directories and none holding a `deno`. */
function pathWithoutDeno(): string {
  const dirs = ["/usr/local/bin", "/usr/bin", "/bin"].filter((dir) => {
    try {
      Deno.statSync(join(dir, "deno"));
      return false;
    } catch {
      return true;
    }
  });
  return dirs.join(":");
}

Deno.test("install: into a fresh HOME, evtchn runs with no deno on PATH", async () => {
  const home = await Deno.makeTempDir();
  try {
    // What `deno task install` runs, with HOME a fresh directory.
    const task = JSON.parse(Deno.readTextFileSync(join(ROOT, "deno.json")))
      .tasks.install as string;
    const args = task.replace(/^deno /, "").replaceAll("$HOME", home)
      .replaceAll('"', "").split(" ");
    const installed = await new Deno.Command(Deno.execPath(), {
      args,
      cwd: ROOT,
      env: { HOME: home, NO_COLOR: "1" },
      stdin: "null",
    }).output();
    assert.equal(installed.code, 0, decoder.decode(installed.stderr));
    const stdout = decoder.decode(installed.stdout);
    const bin = join(home, ".local", "bin");
    assert.match(stdout, new RegExp(`installed ${bin}/evtchn`));
    assert.match(stdout, new RegExp(`export PATH="${bin}:\\$PATH"`));

    const path = `${bin}:${pathWithoutDeno()}`;
    for (const dir of path.split(":")) {
      assert.throws(() => Deno.statSync(join(dir, "deno")), `${dir}/deno`);
    }
    const run = await new Deno.Command("evtchn", {
      args: ["--help"],
      clearEnv: true,
      env: { HOME: home, PATH: path, NO_COLOR: "1" },
      stdin: "null",
    }).output();
    assert.equal(run.code, 0, decoder.decode(run.stderr));
    assert.match(
      decoder.decode(run.stdout),
      /^evtchn \d+\.\d+\.\d+: Xen event channels/,
    );
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("install: the task and the launcher carry PERMISSIONS, nothing else", async () => {
  const task = JSON.parse(Deno.readTextFileSync(join(ROOT, "deno.json")))
    .tasks.install as string;
  const flags = task.split(/\s+/).filter((w) => w.startsWith("--allow"));
  assert.deepEqual(flags, [...PERMISSIONS]);
  const { launcher } = await import("../../tools/install.ts");
  const text = launcher({ root: "/x", deno: undefined });
  assert.match(
    text,
    new RegExp(`run ${PERMISSIONS.join(" ")} '/x/cli/main.ts'`),
  );
  assert.match(text, /^deno='\/x\/tools\/deno'$/m, "falls back to tools/deno");
});
