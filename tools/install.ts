/**
 * Installs the `evtchn` command for people who have Node.js and npm but no
 * Deno (the README's audience): a small POSIX shell launcher in a bin
 * directory that runs this checkout's `cli/main.ts` with the pinned Deno.
 * `deno install -g` would write a script that runs a global `deno`, which
 * they do not have.
 *
 * The launcher runs the Deno binary that ran this installer when it is the
 * pinned version and still there (fast: no npx on each call), else
 * `tools/deno` (`npx -y deno@<pinned>`). The permissions are
 * `PERMISSIONS` from `cli/main.ts`, the one place they are stated; the
 * `install` task in deno.json runs this installer with exactly those flags
 * (it needs no more: HOME comes in as `--bin-dir "$HOME/.local/bin"`), so
 * that the task shows what the installed command may do, and a test keeps
 * the two equal.
 *
 * ```sh
 * npx -y deno@2.9.6 task install               # into ~/.local/bin
 * npx -y deno@2.9.6 task install --bin-dir DIR # elsewhere (the last one wins)
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { PERMISSIONS } from "../cli/main.ts";

/** This checkout's root. */
const ROOT: string = dirname(dirname(fileURLToPath(import.meta.url)));

/**
 * The Deno version `tools/deno` pins (`npx -y deno@X.Y.Z`).
 *
 * @returns The version, such as `"2.9.6"`.
 *
 * @example
 * ```ts
 * import { pinnedDenoVersion } from "./install.ts";
 * import assert from "node:assert/strict";
 * assert.match(pinnedDenoVersion(), /^\d+\.\d+\.\d+$/);
 * ```
 */
export function pinnedDenoVersion(): string {
  const text = Deno.readTextFileSync(join(ROOT, "tools", "deno"));
  const match = /deno@(\d+\.\d+\.\d+)/.exec(text);
  if (match === null) throw new Error("tools/deno names no deno@X.Y.Z");
  return match[1];
}

/** Quotes a string for a POSIX shell: `'…'`, with `'` written `'\''`. */
function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/**
 * The launcher script.
 *
 * @param options Where the checkout is, and the Deno binary to prefer
 * (`undefined`: always `tools/deno`).
 * @returns The script's text.
 *
 * @example
 * ```ts
 * import { launcher } from "./install.ts";
 * import assert from "node:assert/strict";
 * const text = launcher({ root: "/src/evtchn", deno: "/opt/deno" });
 * assert.match(text, /^#!\/bin\/sh\n/);
 * assert.match(text, /exec "\$deno" run --allow-read/);
 * assert.match(text, /'\/src\/evtchn\/cli\/main\.ts' "\$@"/);
 * ```
 */
export function launcher(
  options: { root: string; deno: string | undefined },
): string {
  const fallback = join(options.root, "tools", "deno");
  const main = join(options.root, "cli", "main.ts");
  const lines = [
    "#!/bin/sh",
    "# evtchn, installed by tools/install.ts (deno task install). It needs no",
    "# global deno: it runs the pinned Deno binary that installed it while",
    "# that is still there, otherwise tools/deno (npx -y deno@<pinned>).",
  ];
  if (options.deno === undefined) {
    lines.push(`deno=${shellQuote(fallback)}`);
  } else {
    lines.push(
      `deno=${shellQuote(options.deno)}`,
      `[ -x "$deno" ] || deno=${shellQuote(fallback)}`,
    );
  }
  lines.push(
    `exec "$deno" run ${PERMISSIONS.join(" ")} ${shellQuote(main)} "$@"`,
    "",
  );
  return lines.join("\n");
}

const HELP = `Usage: deno task install [--bin-dir DIR]

Writes the evtchn launcher into DIR (the task gives $HOME/.local/bin) and
says what to add to PATH.`;

/** Runs the installer with `--bin-dir DIR` (or `-h`); returns the exit status. */
async function main(args: string[]): Promise<number> {
  let values;
  try {
    values = parseArgs({
      args,
      options: {
        "bin-dir": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }).values;
  } catch (error) {
    console.error(`error: ${(error as Error).message}\n${HELP}`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const binDir = values["bin-dir"];
  if (binDir === undefined || binDir === "") {
    console.error("error: give --bin-dir DIR\n" + HELP);
    return 2;
  }
  // The binary running now is worth pointing at only if it is the pinned
  // version (a global deno of another version may have run this task).
  const deno = Deno.version.deno === pinnedDenoVersion()
    ? Deno.execPath()
    : undefined;
  const target = join(binDir, "evtchn");
  await Deno.mkdir(binDir, { recursive: true });
  await Deno.writeTextFile(target, launcher({ root: ROOT, deno }), {
    mode: 0o755,
  });
  await Deno.chmod(target, 0o755);
  console.log(`installed ${target}`);
  // PATH is not read (the installer has no --allow-env for it): the hint is
  // harmless when the directory is on PATH already.
  console.log(
    `to run it as "evtchn", have ${binDir} on PATH, e.g. in ~/.profile:\n` +
      `  export PATH="${binDir}:$PATH"`,
  );
  return 0;
}

if (import.meta.main) {
  Deno.exitCode = await main(Deno.args);
}
