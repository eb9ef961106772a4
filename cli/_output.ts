// Output shared by the commands: human text or JSON on stdout, notes and
// errors on stderr, colour only on a terminal and never under NO_COLOR, and
// the mapping of errors to exit codes (1 operation, 2 usage).

import { EventChannelError } from "../mod.ts";
import { UsageError } from "./_args.ts";

/** Exit status of a command that worked. */
export const EXIT_OK = 0;
/** Exit status of a command whose operation failed (an errno, a permission). */
export const EXIT_FAILURE = 1;
/** Exit status of a command line that could not be understood. */
export const EXIT_USAGE = 2;

/** The version of every JSON document this CLI prints. */
export const JSON_VERSION = 1;

const encoder = new TextEncoder();

/** ANSI styles, applied only when colour is on. */
export type Style = "bold" | "dim" | "red" | "green" | "yellow" | "cyan";

const STYLES: Record<Style, [number, number]> = {
  bold: [1, 22],
  dim: [2, 22],
  red: [31, 39],
  green: [32, 39],
  yellow: [33, 39],
  cyan: [36, 39],
};

/** Paints text for one stream, or leaves it plain. */
export class Painter {
  /** Whether colour is on. */
  readonly enabled: boolean;

  /**
   * Constructs a painter.
   *
   * @param enabled Whether colour is on.
   */
  constructor(enabled: boolean) {
    this.enabled = enabled;
  }

  /**
   * Styles text.
   *
   * @param style The style.
   * @param text The text.
   * @returns The text, styled when colour is on.
   */
  paint(style: Style, text: string): string {
    if (!this.enabled) return text;
    const [on, off] = STYLES[style];
    return `\x1b[${on}m${text}\x1b[${off}m`;
  }
}

function colourFor(stream: { isTerminal(): boolean }): boolean {
  return !Deno.noColor && stream.isTerminal();
}

/** Where a command prints: stdout for results, stderr for notes. */
export class Output {
  /** Whether `--json` was given. */
  readonly json: boolean;
  /** Colour for stdout. */
  readonly out: Painter;
  /** Colour for stderr. */
  readonly err: Painter;
  /** Whether stderr is a terminal (for progress bars). */
  readonly interactive: boolean;

  /**
   * Constructs the output of one command run.
   *
   * @param json Whether `--json` was given.
   */
  constructor(json: boolean) {
    this.json = json;
    this.out = new Painter(colourFor(Deno.stdout));
    this.err = new Painter(colourFor(Deno.stderr));
    this.interactive = Deno.stderr.isTerminal();
  }

  /**
   * Prints a line of human output on stdout (never in `--json` mode).
   *
   * @param text The line.
   */
  line(text = ""): void {
    if (!this.json) console.log(text);
  }

  /**
   * Prints a note on stderr (never in `--json` mode).
   *
   * @param text The note.
   */
  note(text: string): void {
    if (!this.json) console.error(this.err.paint("dim", text));
  }

  /**
   * Prints a warning on stderr, in every mode.
   *
   * @param text The warning.
   */
  warn(text: string): void {
    console.error(`${this.err.paint("yellow", "warning:")} ${text}`);
  }

  /**
   * Prints one JSON document on stdout, with `"version": 1` first.
   *
   * @param document The document.
   */
  document(document: Record<string, unknown>): void {
    console.log(
      JSON.stringify({ version: JSON_VERSION, ...document }, null, 2),
    );
  }

  /**
   * Prints one JSON line on stdout (for streams), with `"version": 1` first.
   *
   * @param record The record.
   */
  record(record: Record<string, unknown>): void {
    console.log(JSON.stringify({ version: JSON_VERSION, ...record }));
  }

  /**
   * Writes raw text to stderr without a newline (progress bars).
   *
   * @param text The text.
   */
  progress(text: string): void {
    Deno.stderr.writeSync(encoder.encode(text));
  }
}

/**
 * The message of an {@linkcode EventChannelError} without the repetition a
 * wrapped hypervisor error brings: the innermost error's message, less its
 * leading operation name when that is the outer one.
 *
 * @param error The error.
 * @returns The message for `error: <op>: <message>`.
 */
export function errorMessage(error: EventChannelError): string {
  let inner = error;
  while (inner.cause instanceof EventChannelError) inner = inner.cause;
  const message = inner.message;
  return message.startsWith(`${error.op} `)
    ? message.slice(error.op.length + 1)
    : message;
}

/**
 * Prints an error on stderr and gives the exit status for it: 2 with the
 * usage for a {@linkcode UsageError}, 1 for everything else, naming the
 * operation (and errno) of an {@linkcode EventChannelError}.
 *
 * @param error What was thrown.
 * @returns The exit status.
 */
export function reportError(error: unknown): number {
  const painter = new Painter(colourFor(Deno.stderr));
  const label = painter.paint("red", "error:");
  if (error instanceof UsageError) {
    console.error(`${label} ${error.message}`);
    console.error(error.usage);
    return EXIT_USAGE;
  }
  if (error instanceof EventChannelError) {
    console.error(`${label} ${error.op}: ${errorMessage(error)}`);
    return EXIT_FAILURE;
  }
  if (error instanceof Deno.errors.NotCapable) {
    console.error(`${label} permission: ${error.message}`);
    return EXIT_FAILURE;
  }
  if (error instanceof Error) {
    console.error(`${label} ${error.name}: ${error.message}`);
    return EXIT_FAILURE;
  }
  console.error(`${label} ${String(error)}`);
  return EXIT_FAILURE;
}

/**
 * Formats microseconds for people: `0.84`, `12.3`, `1530`.
 *
 * @param us Microseconds.
 * @returns The text.
 */
export function formatMicros(us: number): string {
  if (us < 10) return us.toFixed(2);
  if (us < 100) return us.toFixed(1);
  return us.toFixed(0);
}

/**
 * Pads text on the left to a width.
 *
 * @param text The text.
 * @param width The width.
 * @returns The padded text.
 */
export function padStart(text: string | number, width: number): string {
  return String(text).padStart(width);
}
