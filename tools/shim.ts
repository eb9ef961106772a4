/**
 * `deno task shim`: builds the C side of `evtchn serve` with `shim/build.sh`
 * (gcc, Debian's libxen-dev headers) and prints where each file is, one
 * `NAME PATH` line each: `libxenevtchn.so.1`, `libevtchn_preload.so`, and
 * the proof programs `cross_check` and `pingpong`.
 *
 * ```sh
 * deno task shim              # into shim/.build
 * deno task shim /some/dir    # elsewhere
 * ```
 *
 * Exit status: build.sh's (0 built, 1 build error, 3 gcc or headers missing).
 *
 * @module
 */

/** The build script, next to the sources. */
export const BUILD_SCRIPT: string = new URL("../shim/build.sh", import.meta.url)
  .pathname;

/**
 * Builds the shim.
 *
 * @param out The output directory (default `shim/.build`).
 * @returns The paths built, by file name; throws with build.sh's stderr
 * when it fails.
 *
 * @example
 * ```ts
 * import { BUILD_SCRIPT } from "./shim.ts";
 * import assert from "node:assert/strict";
 * // buildShim() runs this script (tests/serve/ builds with it)
 * assert.match(BUILD_SCRIPT, /shim\/build\.sh$/);
 * ```
 */
export async function buildShim(out?: string): Promise<Record<string, string>> {
  const result = await new Deno.Command("bash", {
    args: [BUILD_SCRIPT, ...(out === undefined ? [] : [out])],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  if (!result.success) {
    throw new Error(
      `shim/build.sh failed (exit ${result.code}): ${
        text.decode(result.stderr).trim()
      }`,
    );
  }
  const built: Record<string, string> = {};
  for (const line of text.decode(result.stdout).split("\n")) {
    const space = line.indexOf(" ");
    if (space > 0) built[line.slice(0, space)] = line.slice(space + 1);
  }
  return built;
}

if (import.meta.main) {
  const result = await new Deno.Command("bash", {
    args: [BUILD_SCRIPT, ...Deno.args],
  }).spawn().status;
  Deno.exitCode = result.code;
}
