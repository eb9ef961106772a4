// The README's dom0 instructions, run as written. The commands, the
// permission table and the API example are copied out of README.md at run
// time, so the file and this test cannot drift apart:
//
// - everywhere: every dom0 command line carries exactly the flags its row
//   in the permission table gives, and `deno task install` grants every row;
// - in a real dom0 (the real-Xen stage): each line runs verbatim as a
//   subprocess with those flags (`N` in `notify --port N` is the port the
//   `bind` line before it printed), the API example runs to its end, the
//   `evtchn … # … dom0` lines run with the installed command's flags
//   (`PERMISSIONS` of cli/main.ts, which the install launcher grants), and info,
//   ping and the API example run once more with the narrow
//   `--allow-ffi=<libc>` the README promises. A command that needs more
//   than its row fails here. Elsewhere these are ignored, with the reason.

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { linuxDeviceStatus, MemoryXen, parseHostSnapshot } from "../../mod.ts";
import { PERMISSIONS } from "../../cli/main.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const MAIN = `${ROOT}cli/main.ts`;
const README = Deno.readTextFileSync(`${ROOT}README.md`);
const device = linuxDeviceStatus();
const privcmd = linuxDeviceStatus({ path: "/dev/xen/privcmd" });
const inDom0 = device.available && privcmd.available;
const why = device.available ? privcmd.reason : device.reason;

/** The text of `## title` up to the next `## `. */
function section(title: string): string {
  const start = README.indexOf(`\n## ${title}\n`);
  assert.ok(start >= 0, `README has no section "${title}"`);
  const end = README.indexOf("\n## ", start + 1);
  return README.slice(start, end < 0 ? undefined : end);
}

/** The fenced blocks of `text` whose info string starts with `lang`. */
function blocks(text: string, lang: string): string[] {
  const found: string[] = [];
  const fence = /^```(\S*)[^\n]*\n([\s\S]*?)^```$/gm;
  for (const match of text.matchAll(fence)) {
    if (match[1] === lang) found.push(match[2]);
  }
  return found;
}

/** A command line without its trailing `# comment`, split on blanks. */
function words(line: string): { words: string[]; comment: string } {
  const hash = line.search(/\s#\s/);
  const code = hash < 0 ? line : line.slice(0, hash);
  return {
    words: code.trim().split(/\s+/),
    comment: hash < 0 ? "" : line.slice(hash),
  };
}

const FLAG = /^--allow-[a-z]+(=\S+)?$/;

/** The `--allow-*` flags of a table cell; `none` and prose give none. */
function cellFlags(cell: string): string[] {
  return [...cell.matchAll(/`([^`]*)`/g)]
    .flatMap((m) => m[1].split(/\s+/))
    .filter((w) => FLAG.test(w));
}

const DOM0 = section("Running on a real dom0");

/** Command → minimum flags on the linux backend, from the README table. */
const TABLE = new Map<string, string[]>();
for (const line of DOM0.split("\n")) {
  if (!line.startsWith("|") || /^\|\s*-/.test(line)) continue;
  const cells = line.split("|").slice(1, -1).map((c) => c.trim());
  if (cells[0] === "command") continue;
  TABLE.set(cells[0].replaceAll("`", ""), cellFlags(cells[1]));
}

/** The dom0 command lines, in order. */
const LINES = blocks(DOM0, "sh")[0].split("\n").filter((l) => l.trim());

/** The README's narrow flag, as it spells it. */
const NARROW = DOM0.match(/`(--allow-ffi=\/\S+libc\.so\.6)`/)?.[1];

/** The API example for a real dom0: the block after its introduction. */
const API = (() => {
  const at = README.indexOf("The same on a real dom0");
  assert.ok(at >= 0, "README has no dom0 API example");
  const rest = README.slice(at);
  const match = rest.match(/^```ts ignore\n([\s\S]*?)^```$/m);
  assert.ok(match, "no ts block after the dom0 API introduction");
  return match[1];
})();

/**
 * The flags the installed `evtchn` runs with: `deno task install` writes a
 * launcher granting the CLI's own `PERMISSIONS`.
 */
const INSTALL = [...PERMISSIONS];

/** Which row of the table a `deno run … cli/main.ts ARGS` line belongs to. */
function rowOf(args: string[]): string {
  const rest = [...args];
  while (rest[0]?.startsWith("--")) {
    rest.splice(0, rest[0] === "--backend" ? 2 : 1);
  }
  return rest[0] === "oracle" ? `oracle ${rest[1]}` : rest[0];
}

interface Parsed {
  line: string;
  deno: string[]; // after `deno`
  flags: string[];
  row: string;
}

function parse(line: string): Parsed {
  const { words: w } = words(line);
  assert.equal(w[0], "deno", line);
  const main = w.indexOf("cli/main.ts");
  return {
    line,
    deno: w.slice(1),
    flags: w.filter((x) => FLAG.test(x)),
    row: main < 0
      ? (w[1] === "test" ? "conformance tests" : w[1])
      : rowOf(w.slice(main + 1)),
  };
}

const PARSED = LINES.map(parse);

Deno.test("README: every dom0 line carries exactly its table row's flags", () => {
  assert.ok(PARSED.length >= 8, "the dom0 block lists the commands");
  for (const p of PARSED) {
    const row = TABLE.get(p.row);
    assert.ok(row !== undefined, `no table row "${p.row}" for: ${p.line}`);
    assert.deepEqual(p.flags.toSorted(), row.toSorted(), p.line);
  }
  assert.ok(TABLE.has("the API example"));
  assert.ok(NARROW !== undefined, "the README names the narrow --allow-ffi");
});

Deno.test("README: deno task install grants every row's flags", () => {
  const install = TABLE.get("deno task install");
  assert.deepEqual(install?.toSorted(), INSTALL.toSorted());
  for (const [row, flags] of TABLE) {
    if (flags.includes("--allow-all")) continue; // deno test, not evtchn
    for (const flag of flags) {
      assert.ok(
        INSTALL.includes(flag),
        `${flag} (row ${row}) is missing from deno task install`,
      );
    }
  }
});

// ---------------------------------------------------------------- in dom0

const decoder = new TextDecoder();
/** Generous: a Deno start alone is 5–8 s under QEMU's software CPU. */
const RUN_TIMEOUT_MS = 240_000;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** `deno ARGS` with stdin `input` (or none), bounded in time. */
async function deno(
  args: string[],
  options: { cwd?: string; input?: string } = {},
): Promise<Result> {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: options.cwd ?? ROOT,
    stdin: options.input === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  if (options.input !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.input));
    await writer.close();
  }
  const timer = setTimeout(() => child.kill("SIGKILL"), RUN_TIMEOUT_MS);
  try {
    const out = await child.output();
    return {
      code: out.code,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
    };
  } finally {
    clearTimeout(timer);
  }
}

function ok(result: Result, what: string): void {
  assert.equal(
    result.code,
    0,
    `${what} exited ${result.code}\n${result.stdout}\n${result.stderr}`,
  );
}

/** `--allow-ffi` replaced by the README's narrow form. */
function narrowed(args: string[]): string[] {
  return args.map((a) => a === "--allow-ffi" ? NARROW! : a);
}

/** What `info` must say in dom0. */
function checkInfo(stdout: string): void {
  assert.match(stdout, /^backend +linux/m);
  assert.match(stdout, /^acts for +dom0$/m);
  assert.match(stdout, /^devices +\/dev\/xen\/evtchn +present$/m);
  assert.match(stdout, /^ +\/dev\/xen\/privcmd +present$/m);
  // No device line or note may say it is missing or unchecked.
  assert.doesNotMatch(stdout, / (absent|unknown|no-access)$|\(not checked/m);
  assert.match(stdout, /^xen +4\.\d+/m);
  assert.match(stdout, /^event abi +(FIFO|2-level)$/m);
  assert.match(stdout, /^kernel +\d+\.\d+\S*$/m);
  assert.match(stdout, /^linux backend +available/m);
}

/**
 * Reads from `reader` until `pattern` matches what was read (or, without a
 * pattern, to the end); the text read so far accumulates in `seen`.
 */
async function readUntil(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  seen: { text: string },
  pattern?: RegExp,
): Promise<RegExpMatchArray | undefined> {
  while (true) {
    const match = pattern === undefined ? null : seen.text.match(pattern);
    if (match) return match;
    const { value, done } = await reader.read();
    if (done) {
      if (pattern === undefined) return undefined;
      throw new Error(`ended before ${pattern}: ${seen.text}`);
    }
    seen.text += decoder.decode(value, { stream: true });
  }
}

/** A `bind … --count 1` line in the background, then the `notify` line. */
async function bindThenNotify(bind: Parsed, notify: Parsed): Promise<void> {
  const child = new Deno.Command(Deno.execPath(), {
    args: bind.deno,
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), RUN_TIMEOUT_MS);
  const stderr = new Response(child.stderr).text();
  const seen = { text: "" };
  // One reader for the whole stream: a stream read in part cannot be handed
  // to another consumer.
  const reader = child.stdout.getReader();
  try {
    const [, port] = (await readUntil(reader, seen, /bound port (\d+)/))!;
    const args = notify.deno.map((a) => a === "N" ? port : a);
    ok(await deno(args), notify.line);
    await readUntil(reader, seen);
    const status = await child.status;
    assert.equal(status.code, 0, `${bind.line}\n${seen.text}\n${await stderr}`);
    assert.match(seen.text, /summary: 1 event\b/, seen.text);
  } finally {
    clearTimeout(timer);
    try {
      child.kill("SIGKILL");
    } catch { /* already exited */ }
    await readUntil(reader, seen).catch(() => undefined);
    reader.releaseLock();
    await child.status;
    await stderr;
  }
}

/** Checks one line's output by its row. */
function checkOutput(p: Parsed, r: Result): void {
  ok(r, p.line);
  switch (p.row) {
    case "info":
      checkInfo(r.stdout);
      break;
    case "ping":
      assert.match(r.stdout, /\d+ round trips/);
      break;
    case "bind":
      assert.match(r.stdout, /bound port \d+: virq VIRQ_DOM_EXC/);
      break;
    case "watch": {
      const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
      assert.equal(lines[0].type, "bound");
      assert.equal(lines[0].backend, "linux");
      assert.equal(lines[0].domain, 0);
      assert.equal(lines.at(-1).type, "summary");
      break;
    }
    case "oracle record":
      assert.match(r.stdout + r.stderr, /recorded \d+ steps .* on linux/);
      break;
    case "snapshot": {
      // the table names dom0's ports; --out holds the host description
      assert.match(r.stdout, /^dom0 on Xen 4\.\d+.*ABI, \d+ vCPUs/);
      const out = p.deno[p.deno.indexOf("--out") + 1];
      const host = parseHostSnapshot(Deno.readTextFileSync(out));
      assert.deepEqual(new MemoryXen({ host }).snapshot().ports, host.ports);
      break;
    }
    case "oracle replay":
    case "oracle diff":
      assert.match(r.stdout + r.stderr, /agreement/);
      break;
  }
}

Deno.test({
  name: "README on real Xen: the dom0 lines, verbatim, with their flags" +
    (inDom0 ? "" : ` [ignored: ${why ?? "no Xen device"}]`),
  ignore: !inDom0,
  async fn(t): Promise<void> {
    for (let i = 0; i < PARSED.length; i++) {
      const p = PARSED[i];
      if (p.row === "conformance tests") {
        // The real-Xen stage runs this very file (with -A) on its own.
        await t.step(p.line, () => {
          const stage = Deno.readTextFileSync(`${ROOT}tests/xen/ci_stage.sh`);
          const file = p.deno.at(-1)!;
          assert.match(stage, new RegExp(`^TESTS=\\(.*${file}`, "m"));
        });
        continue;
      }
      if (p.deno.includes("N")) continue; // run with its bind line
      const next = PARSED[i + 1];
      if (next?.deno.includes("N")) {
        await t.step(
          `${p.line}\n  then ${next.line}`,
          () => bindThenNotify(p, next),
        );
        continue;
      }
      await t.step(p.line, async () => checkOutput(p, await deno(p.deno)));
    }
  },
});

Deno.test({
  name: "README on real Xen: the API example runs to its end" +
    (inDom0 ? "" : ` [ignored: ${why ?? "no Xen device"}]`),
  ignore: !inDom0,
  async fn(t): Promise<void> {
    const flags = TABLE.get("the API example")!;
    const check = (r: Result): void => {
      ok(r, "the API example");
      assert.match(r.stdout, /^event on \d+$/m);
      assert.match(r.stdout, /status: "interdomain"/);
    };
    await t.step(
      `deno run ${flags.join(" ")} (the example on stdin)`,
      async () => check(await deno(["run", ...flags, "-"], { input: API })),
    );
    await t.step(
      `the same with ${NARROW}`,
      async () =>
        check(await deno(["run", ...narrowed(flags), "-"], { input: API })),
    );
  },
});

Deno.test({
  name: "README on real Xen: the narrow --allow-ffi=<libc> is enough" +
    (inDom0 ? "" : ` [ignored: ${why ?? "no Xen device"}]`),
  ignore: !inDom0,
  async fn(t): Promise<void> {
    // info asks every question (devices, domain, Xen, kernel) through libc;
    // the API example above covers binding, reading and privcmd.
    for (const row of ["info"]) {
      const p = PARSED.find((x) => x.row === row)!;
      const args = narrowed(p.deno);
      await t.step(
        `deno ${args.join(" ")}`,
        async () => checkOutput(p, await deno(args)),
      );
    }
  },
});

Deno.test({
  name: "README on real Xen: the evtchn dom0 lines with the install flags" +
    (inDom0 ? "" : ` [ignored: ${why ?? "no Xen device"}]`),
  ignore: !inDom0,
  async fn(t): Promise<void> {
    // `evtchn ARGS` is what `deno task install` writes: deno run with its
    // flags. Run in a scratch dir, since lines may write to the cwd.
    const cwd = await Deno.makeTempDir();
    try {
      const lines = README.split("\n")
        .filter((l) => l.startsWith("evtchn "))
        .filter((l) => /dom0/.test(words(l).comment))
        .concat(["evtchn info   # dom0: the installed command"]);
      assert.ok(lines.length >= 3);
      for (const line of lines) {
        const args = words(line).words.slice(1);
        await t.step(line, async () => {
          const r = await deno(["run", ...INSTALL, MAIN, ...args], { cwd });
          checkOutput(
            { line, deno: args, flags: INSTALL, row: rowOf(args) },
            r,
          );
        });
      }
    } finally {
      await Deno.remove(cwd, { recursive: true });
    }
  },
});
