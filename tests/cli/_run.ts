// Runs the CLI as a subprocess, the way a user would, and captures stdout,
// stderr and the exit code separately.

import { fileURLToPath } from "node:url";

/** The CLI entry point. */
export const MAIN: string = fileURLToPath(
  new URL("../../cli/main.ts", import.meta.url),
);

/** Permissions the memory backend needs (read: `sim FILE`). */
export const PERMISSIONS: string[] = ["--allow-read", "--allow-env"];

/** What a run of the CLI gave. */
export interface CliResult {
  /** Exit code. */
  code: number;
  /** Everything printed on stdout. */
  stdout: string;
  /** Everything printed on stderr. */
  stderr: string;
}

const decoder = new TextDecoder();

/**
 * Runs `evtchn ARGS` with the memory-backend permissions and no stdin.
 *
 * @param args The command line.
 * @returns Exit code, stdout and stderr.
 */
export function cli(...args: string[]): Promise<CliResult> {
  return cliWith(PERMISSIONS, ...args);
}

/**
 * Runs `evtchn ARGS` under `deno run FLAGS` (permissions, `--no-check`, …)
 * with no stdin.
 *
 * @param flags Flags for `deno run`.
 * @param args The command line.
 * @returns Exit code, stdout and stderr.
 */
export async function cliWith(
  flags: string[],
  ...args: string[]
): Promise<CliResult> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, MAIN, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/**
 * Runs the CLI on the memory backend: `evtchn --backend memory ARGS`.
 *
 * @param args The command line after the global options.
 * @returns Exit code, stdout and stderr.
 */
export function memory(...args: string[]): Promise<CliResult> {
  return cli("--backend", "memory", ...args);
}

/**
 * Parses JSON Lines output.
 *
 * @param text The output.
 * @returns One value per line.
 */
export function jsonLines(text: string): Record<string, unknown>[] {
  return text.trim().split("\n").map((line) => JSON.parse(line));
}

/**
 * The port the modelled domU 1 offers to dom0, from `info --json`.
 *
 * @returns The port.
 */
export async function offeredPort(): Promise<number> {
  const { stdout } = await memory("info", "--json");
  return JSON.parse(stdout).memory.offeredPort;
}

/**
 * Runs `evtchn ARGS` with `text` on its standard input.
 *
 * @param text The input.
 * @param args The command line.
 * @returns Exit code, stdout and stderr.
 */
export async function cliWithInput(
  text: string,
  ...args: string[]
): Promise<CliResult> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...PERMISSIONS, MAIN, ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const output = await child.output();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}
