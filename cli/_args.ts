// Argument parsing shared by the commands: `node:util` parseArgs in strict
// mode, the global options every command accepts, and value parsers that
// turn bad input into a usage error (exit 2).

import { parseArgs, type ParseArgsConfig } from "node:util";

/** A mistake in the command line: exit 2 with one line and the usage. */
export class UsageError extends Error {
  /** The usage line(s) of the command at fault. */
  readonly usage: string;

  /**
   * Constructs a usage error.
   *
   * @param message What is wrong, in one line.
   * @param usage The command's usage line(s).
   */
  constructor(message: string, usage: string) {
    super(message);
    this.name = "UsageError";
    this.usage = usage;
  }
}

/** The backends a user may ask for. */
export type BackendChoice = "memory" | "linux" | "auto";

/** Options accepted by every command (and before the command name). */
export const GLOBAL_OPTIONS = {
  backend: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const satisfies NonNullable<ParseArgsConfig["options"]>;

/** The global options once parsed. */
export interface GlobalOptions {
  /** `--backend`, default `auto`. */
  backend: BackendChoice;
  /** `--json`. */
  json: boolean;
  /** `-h/--help`. */
  help: boolean;
}

/** The option table of a command, as `parseArgs` takes it. */
export type Options = NonNullable<ParseArgsConfig["options"]>;

/**
 * Parses a command's arguments strictly, with the global options added.
 *
 * @param args The arguments after the command name.
 * @param options The command's own options.
 * @param usage The usage line(s), for errors.
 * @returns Values and positionals.
 * @throws {UsageError} For unknown options, missing values and the like.
 */
export function parse<T extends Options>(
  args: string[],
  options: T,
  usage: string,
): {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  global: GlobalOptions;
} {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { ...GLOBAL_OPTIONS, ...options },
      strict: true,
      allowPositionals: true,
    });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    // Node's hint about '--' after an unknown option is more than one line's
    // worth; the option named is what matters.
    throw new UsageError(message.split(". To specify")[0], usage);
  }
  const values = parsed.values as Record<
    string,
    string | boolean | string[] | undefined
  >;
  const backend = (values.backend as string | undefined) ?? "auto";
  if (backend !== "memory" && backend !== "linux" && backend !== "auto") {
    throw new UsageError(
      `Invalid --backend '${backend}': expected memory, linux or auto`,
      usage,
    );
  }
  return {
    values,
    positionals: parsed.positionals,
    global: {
      backend,
      json: values.json === true,
      help: values.help === true,
    },
  };
}

/**
 * The longest delay a timer can take: `setTimeout` keeps milliseconds in a
 * signed 32-bit integer and turns anything longer into 1 ms (with Node's
 * TimeoutOverflowWarning), so `--timeout` and `--interval` stop here.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The most events or round trips a `--count` (and `watch --simulate`) may
 * ask for: 10⁸, hours of round trips, far more than a measurement needs.
 */
export const MAX_COUNT = 100_000_000;

/**
 * Parses a non-negative decimal (or `0x` hex) integer. Range checks beyond
 * `max` are left to the API, which refuses with an errno as Xen or Linux
 * would.
 *
 * @param text The text.
 * @param what What it is, for the message (`"port"`, `"--count"`).
 * @param usage The usage line(s), for errors.
 * @param max The largest value accepted (a documented bound of the option).
 * @returns The number.
 * @throws {UsageError} When it is not a number, or above `max`.
 */
export function parseInteger(
  text: string | undefined,
  what: string,
  usage: string,
  max: number = Number.MAX_SAFE_INTEGER,
): number {
  if (text === undefined) throw new UsageError(`Missing ${what}`, usage);
  // Bounded length first: the regular expression below is linear, but a
  // megabyte of digits is not a number anyone meant.
  if (text.length > 64 || !/^(\d+|0x[0-9a-f]+)$/i.test(text)) {
    throw new UsageError(
      `Invalid ${what} '${clip(text)}': expected a non-negative integer`,
      usage,
    );
  }
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value > max) {
    throw new UsageError(
      `Invalid ${what} '${text}': too large (at most ${max})`,
      usage,
    );
  }
  return value;
}

/**
 * Parses a duration in seconds (a non-negative decimal number), at most
 * {@linkcode MAX_TIMER_MS} milliseconds.
 *
 * @param text The text.
 * @param what What it is, for the message.
 * @param usage The usage line(s), for errors.
 * @returns Seconds.
 * @throws {UsageError} When it is not a number, or too long for a timer.
 */
export function parseSeconds(
  text: string,
  what: string,
  usage: string,
): number {
  if (text.length > 64 || !/^(\d+(\.\d*)?|\.\d+)$/.test(text)) {
    throw new UsageError(
      `Invalid ${what} '${clip(text)}': expected seconds, such as 5 or 0.5`,
      usage,
    );
  }
  const seconds = Number(text);
  if (seconds * 1000 > MAX_TIMER_MS) {
    throw new UsageError(
      `Invalid ${what} '${text}': too long (at most ${
        Math.floor(MAX_TIMER_MS / 1000)
      } s, the longest timer)`,
      usage,
    );
  }
  return seconds;
}

/** Text for a message, cut short so that one line stays one line. */
function clip(text: string): string {
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

/**
 * Fails when there are positionals left over.
 *
 * @param positionals What is left.
 * @param usage The usage line(s), for errors.
 * @throws {UsageError} When anything is left.
 */
export function noMorePositionals(positionals: string[], usage: string): void {
  if (positionals.length > 0) {
    throw new UsageError(`Unexpected argument '${positionals[0]}'`, usage);
  }
}

/**
 * An optional string option as a string.
 *
 * @param value The parsed value.
 * @returns The string, or `undefined`.
 */
export function optionalString(
  value: string | boolean | string[] | undefined,
): string | undefined {
  return typeof value === "string" ? value : undefined;
}

/**
 * A repeatable string option as a list.
 *
 * @param value The parsed value.
 * @returns The strings given (empty when none).
 */
export function stringList(
  value: string | boolean | string[] | undefined,
): string[] {
  if (Array.isArray(value)) return value;
  return typeof value === "string" ? [value] : [];
}
