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

/** What {@linkcode interrupted} gave. */
export interface InterruptedResult extends CliResult {
  /** Milliseconds from the signal to the exit. */
  stoppedMs: number;
}

/**
 * Starts `evtchn ARGS`, waits until `ready` matches its stdout or stderr
 * (its first output, showing it is under way) or, for a command silent until
 * its end, `ready` milliseconds, sends `signal`, and collects everything up
 * to the exit. (After a plain delay the command's own output must show that
 * it caught the signal: killed by it, it would print nothing more.)
 *
 * @param args The command line.
 * @param ready What to wait for before the signal, or how long.
 * @param signal The signal (default SIGINT).
 * @param flags Flags for `deno run` (default: the memory permissions).
 * @returns Exit code, output, and how long it took to stop.
 */
export async function interrupted(
  args: string[],
  ready: RegExp | number,
  signal: Deno.Signal = "SIGINT",
  flags: string[] = PERMISSIONS,
): Promise<InterruptedResult> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, MAIN, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  let stdout = "";
  let stderr = "";
  let ok = false;
  let signalled: () => void = () => {};
  const seen = new Promise<void>((resolve) =>
    signalled = () => {
      ok = true;
      resolve();
    }
  );
  // Only until it matched: output after the signal can be megabytes, and
  // matching it again per chunk would slow the reader enough to stall the
  // child on a full pipe.
  const check = (): void => {
    if (
      !ok && typeof ready !== "number" &&
      (ready.test(stdout) || ready.test(stderr))
    ) {
      signalled();
    }
  };
  let wait: ReturnType<typeof setTimeout> | undefined;
  if (typeof ready === "number") wait = setTimeout(signalled, ready);
  const pump = async (
    stream: ReadableStream<Uint8Array>,
    add: (text: string) => void,
  ): Promise<void> => {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      add(text);
      check();
    }
  };
  const reading = Promise.all([
    pump(child.stdout, (t) => stdout += t),
    pump(child.stderr, (t) => stderr += t),
  ]);
  // If it exits without ever matching, stop waiting for the match.
  await Promise.race([seen, child.status]);
  clearTimeout(wait);
  const sent = performance.now();
  try {
    child.kill(signal);
  } catch {
    // Already gone: the status below tells.
  }
  // A command that ignores the signal is killed after 10 s, so that the
  // test fails (stoppedMs = Infinity) instead of hanging.
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((resolve) => {
    timer = setTimeout(() => resolve("late"), 10_000);
  });
  const first = await Promise.race([child.status, late]);
  clearTimeout(timer);
  const stoppedMs = first === "late" ? Infinity : performance.now() - sent;
  if (first === "late") child.kill("SIGKILL");
  const status = await child.status;
  await reading;
  return { code: status.code, stdout, stderr, stoppedMs };
}
