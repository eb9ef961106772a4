// Helpers shared by the oracle's test suites.

import {
  type Divergence,
  type JsonValue,
  memoryBackend,
  type OracleBackend,
  type OracleHandle,
  type OracleSession,
  type Outcome,
  type Trace,
} from "../../oracle/mod.ts";

/** The repository root. */
export const ROOT = new URL("../../", import.meta.url).pathname;

/** The standalone CLI entry point. */
export const CLI = `${ROOT}cli/oracle_command.ts`;

/** What a CLI run produced. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `cli/oracle_command.ts` in a subprocess with read/write permissions,
 * optionally feeding `stdin`.
 */
export async function runCli(
  args: string[],
  stdin?: string,
): Promise<CliResult> {
  const command = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "--allow-read", "--allow-write", CLI, ...args],
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  });
  const child = command.spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin));
    await writer.close();
  }
  const output = await child.output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return {
    code: output.code,
    stdout: decode(output.stdout),
    stderr: decode(output.stderr),
  };
}

/** Every outcome of a trace that the oracle could not apply, or that is a bug. */
export function brokenSteps(trace: Trace): string[] {
  return trace.steps.flatMap((step) => {
    const outcome = step.outcome as Outcome;
    if (!("error" in outcome)) return [];
    const code = outcome.error.code;
    return code === "ORACLE" || !/^E[A-Z0-9]+$/.test(code)
      ? [`step ${step.i} ${step.op}: ${code} ${outcome.error.message ?? ""}`]
      : [];
  });
}

/** A divergence in one line, for assertion messages. */
export function brief(d: Divergence): string {
  return `step ${d.i} ${d.op}: ${d.reason}`;
}

/** The ports a read outcome lists. */
export function readPorts(outcome: Outcome | undefined): JsonValue[] {
  if (outcome === undefined || !("ok" in outcome)) return [];
  return outcome.ok as JsonValue[];
}

/** A plain object forwarding every device operation to `handle`. */
export function delegate(handle: OracleHandle): OracleHandle {
  return {
    bindUnboundPort: (d) => handle.bindUnboundPort(d),
    bindInterdomain: (d, p) => handle.bindInterdomain(d, p),
    bindVirq: (v) => handle.bindVirq(v),
    unbind: (p) => handle.unbind(p),
    notify: (p) => handle.notify(p),
    unmask: (p) => handle.unmask(p),
    reset: () => handle.reset(),
    restrictDomain: (d) => handle.restrictDomain(d),
    read: (b) => handle.read(b),
    close: () => handle.close(),
  };
}

/**
 * A backend that behaves like `memory` except where `wrap` changes a
 * handle: a stand-in for a backend with a bug.
 */
export function fakeBackend(
  name: string,
  wrap: (handle: OracleHandle) => OracleHandle,
): OracleBackend {
  const memory = memoryBackend();
  return {
    name,
    async start(options): Promise<OracleSession> {
      const session = await memory.start(options);
      return {
        ...session,
        backend: name,
        open: () => wrap(session.open()),
        hypercalls: () => session.hypercalls(),
        createPeer: () => session.createPeer(),
        settle: (ms) => session.settle(ms),
        environment: () => session.environment(),
        dispose: () => session.dispose(),
      };
    },
  };
}
