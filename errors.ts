/**
 * The one error type of this module.
 *
 * @module
 */

import { ERRNO, type ErrnoName, errnoName } from "./xen/errno.ts";

/** Options for {@linkcode EventChannelError}. */
export interface EventChannelErrorOptions {
  /** The argument that was refused, by its name in Xen's or Linux's struct. */
  argument?: string;
  /** The value of that argument, as given. */
  value?: unknown;
  /** Why, in words; the errno is appended. */
  detail?: string;
  /** The underlying error, if any. */
  cause?: unknown;
}

/**
 * A refusal by the hypervisor, the device or the argument check in front of
 * them. It names the operation (Xen's `EVTCHNOP_*` name in lower case such as
 * `"bind_virq"`, or a device operation such as `"notify"`), the argument when
 * one is to blame, and the errno by name and number, the way Xen or Linux
 * would report it.
 *
 * @example Catch and inspect
 * ```ts
 * import { EventChannelError } from "./errors.ts";
 * import assert from "node:assert/strict";
 * const error = new EventChannelError("close", "EINVAL", {
 *   argument: "port",
 *   value: 0,
 * });
 * assert.equal(error.errno, 22);
 * assert.equal(error.code, "EINVAL");
 * assert.match(error.message, /close.*port.*EINVAL/);
 * ```
 */
export class EventChannelError extends Error {
  /** The operation that failed. */
  readonly op: string;
  /** The errno name, such as `"EINVAL"`. */
  readonly code: string;
  /** The positive errno number, such as 22. */
  readonly errno: number;
  /** The argument to blame, when there is one. */
  readonly argument: string | undefined;
  /** The value of that argument. */
  readonly value: unknown;
  /** Why, in words, when known. */
  readonly detail: string | undefined;

  /**
   * Constructs an error.
   *
   * @param op The operation.
   * @param errno The errno, by name or number.
   * @param options The argument, its value, a detail and a cause.
   */
  constructor(
    op: string,
    errno: ErrnoName | number,
    options: EventChannelErrorOptions = {},
  ) {
    const number = typeof errno === "number" ? errno : ERRNO[errno];
    const code = typeof errno === "number" ? errnoName(errno) : errno;
    const what = options.argument === undefined
      ? ""
      : ` ${options.argument}=${formatValue(options.value)}`;
    const why = options.detail === undefined ? "" : `: ${options.detail}`;
    super(`${op}${what} failed${why} (${code}, errno ${number})`, {
      cause: options.cause,
    });
    this.name = "EventChannelError";
    this.op = op;
    this.code = code;
    this.errno = number;
    this.argument = options.argument;
    this.value = options.value;
    this.detail = options.detail;
  }
}

function formatValue(value: unknown): string {
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "string") return JSON.stringify(value);
  return String(value);
}
