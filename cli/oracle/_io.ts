// What the `evtchn oracle` subcommands share: reading a bounded trace (a
// file or stdin), writing an output file, and choosing a backend. Every
// failure here is the user's input, so a usage error (exit 2).

import { readBoundedInput } from "../_input.ts";
import { UsageError } from "../_args.ts";
import { resolveBackend } from "../_backend.ts";
import {
  backendByName,
  type OracleBackend,
  parseTrace,
  type Trace,
  TRACE_LIMITS,
  TraceParseError,
} from "../../oracle/mod.ts";

/** Steps from which record and replay say on stderr that they started. */
export const LONG = 10_000;

/**
 * Reads and parses a trace, at most {@linkcode TRACE_LIMITS}`.bytes`.
 *
 * @param path A file, or `-` for stdin.
 * @param requireOutcomes Whether every step must carry an outcome.
 * @param usage The usage line(s), for errors.
 * @returns The trace and the name to print for its source.
 * @throws {UsageError} Unreadable, too large or malformed (naming the line
 * and column).
 */
export async function readTrace(
  path: string,
  requireOutcomes: boolean,
  usage: string,
): Promise<{ trace: Trace; label: string }> {
  const label = path === "-" ? "stdin" : path;
  const limit = TRACE_LIMITS.bytes;
  let bytes: Uint8Array | undefined;
  try {
    bytes = await readBoundedInput(path, limit);
  } catch (error) {
    throw new UsageError(
      `cannot read ${label}: ${(error as Error).message}`,
      usage,
    );
  }
  if (bytes === undefined) {
    throw new UsageError(
      `${label}: larger than ${limit} bytes, the most a trace may be`,
      usage,
    );
  }
  try {
    return {
      trace: parseTrace(new TextDecoder().decode(bytes), { requireOutcomes }),
      label,
    };
  } catch (error) {
    if (error instanceof TraceParseError) {
      throw new UsageError(`${label}: ${error.message}`, usage);
    }
    throw error;
  }
}

/**
 * Writes a file.
 *
 * @param path Where.
 * @param text What.
 * @param usage The usage line(s), for errors.
 * @throws {UsageError} When it cannot be written.
 */
export async function writeOutput(
  path: string,
  text: string,
  usage: string,
): Promise<void> {
  try {
    await Deno.writeTextFile(path, text);
  } catch (error) {
    throw new UsageError(
      `cannot write ${path}: ${(error as Error).message}`,
      usage,
    );
  }
}

/**
 * The backend a name asks for: `memory` when none is given, and for `auto`
 * what every command's `--backend auto` means.
 *
 * @param name `memory`, `linux`, `auto` or `undefined`.
 * @param usage The usage line(s), for errors.
 * @returns The backend.
 * @throws {UsageError} For an unknown name.
 */
export function chooseBackend(
  name: string | undefined,
  usage: string,
): OracleBackend {
  const resolved = name === "auto"
    ? resolveBackend("auto").name
    : name ?? "memory";
  try {
    return backendByName(resolved);
  } catch (error) {
    throw new UsageError((error as Error).message, usage);
  }
}
