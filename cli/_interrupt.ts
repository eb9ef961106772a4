// Catching the signals that stop a long-running command (Ctrl-C, SIGTERM)
// as an AbortSignal plus the shell's 128 + N exit status, so that every
// command stops the same way: cleanly, with its summary printed. Kept apart
// from the event loop of `bind` and `watch` (_events.ts) because `ping`,
// `serve`, `sim` and the oracle commands stop on signals too, without
// streaming events.

/** An `AbortSignal` that SIGINT (Ctrl-C) aborts, until disposed. */
export interface Interrupt extends Disposable {
  /** Aborted by the first signal caught. */
  readonly signal: AbortSignal;
  /**
   * The shell's exit status for the signal caught (128 + its number: 130
   * for SIGINT, 143 for SIGTERM), or `undefined` while none was.
   */
  readonly exitCode: number | undefined;
}

/** The signals a long-running command stops on, cleanly. */
export const STOP_SIGNALS: readonly Deno.Signal[] = ["SIGINT", "SIGTERM"];

/** Signal numbers on Linux, for 128 + N exit statuses. */
const SIGNAL_NUMBERS: Partial<Record<Deno.Signal, number>> = {
  SIGINT: 2,
  SIGTERM: 15,
};

/**
 * Catches SIGINT (or the signals given) from now on, so that Ctrl-C during
 * setup also ends in a summary rather than killing the process, until
 * disposed.
 *
 * @param signals The signals to catch; `bind` keeps the default (Ctrl-C
 * there is the normal way to end, exit 0), the commands that must exit
 * 130/143 pass {@linkcode STOP_SIGNALS}.
 * @returns The signal, the exit status, and disposal that removes the
 * listeners.
 */
export function onInterrupt(
  signals: readonly Deno.Signal[] = ["SIGINT"],
): Interrupt {
  const controller = new AbortController();
  let exitCode: number | undefined;
  const listeners = signals.map((name) => {
    const listener = (): void => {
      exitCode ??= 128 + (SIGNAL_NUMBERS[name] ?? 0);
      controller.abort();
    };
    Deno.addSignalListener(name, listener);
    return [name, listener] as const;
  });
  return {
    signal: controller.signal,
    get exitCode() {
      return exitCode;
    },
    [Symbol.dispose]: () => {
      for (const [name, listener] of listeners) {
        Deno.removeSignalListener(name, listener);
      }
    },
  };
}
