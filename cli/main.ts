#!/usr/bin/env -S deno run --allow-read --allow-write --allow-ffi --allow-net --allow-env=EVTCHN_LIBC,EVTCHN_SOCKET
/**
 * `evtchn`, the command line: Xen event channels for dom0 operators, and a
 * simulator of Xen's event-channel subsystem. This file only dispatches:
 * each command is a module with `run(args): Promise<number>` and `help`.
 *
 * Permissions, stated once ({@linkcode PERMISSIONS}):
 * `--allow-read` (device checks, /proc/xen, scenario and trace files),
 * `--allow-write` (only `oracle record --out` and `oracle diff --save`),
 * `--allow-ffi` (the linux backend: libc, /dev/xen/evtchn, /dev/xen/privcmd),
 * `--allow-net` (only `serve`: its Unix socket),
 * `--allow-env=EVTCHN_LIBC,EVTCHN_SOCKET` (optional: another C library's
 * path; `serve`'s default socket). The memory backend needs none of them,
 * except `--allow-read` to read files.
 *
 * ```sh
 * npx -y deno@2.9.6 task install   # tools/install.ts: a launcher using PERMISSIONS
 * ```
 *
 * Exit codes: 0 ok, 1 operation error (`error: <op>: <message> (ERRNO,
 * errno N)` on stderr), 2 usage error (one line and the usage on stderr).
 *
 * @module
 */

import * as bind from "./bind.ts";
import * as info from "./info.ts";
import * as notify from "./notify.ts";
import * as oracle from "./oracle_command.ts";
import * as ping from "./ping.ts";
import * as serve from "./serve.ts";
import * as sim from "./sim.ts";
import * as snapshot from "./snapshot.ts";
import * as watch from "./watch.ts";
import { UsageError } from "./_args.ts";
import { EXIT_OK, reportError } from "./_output.ts";
import { VERSION } from "./_version.ts";

/**
 * The permission flags `evtchn` runs with, for `deno run` or
 * the launcher `tools/install.ts` writes: read (devices, /proc/xen, input files), write (oracle
 * output files), ffi (the linux backend), env (`EVTCHN_LIBC`, optional).
 */
export const PERMISSIONS: readonly string[] = [
  "--allow-read",
  "--allow-write",
  "--allow-ffi",
  "--allow-net",
  "--allow-env=EVTCHN_LIBC,EVTCHN_SOCKET",
];

/** A command: its runner and its help. */
interface Command {
  run(args: string[]): Promise<number>;
  help: string;
}

const COMMANDS: Record<string, Command> = {
  info,
  bind,
  notify,
  watch,
  ping,
  sim,
  snapshot,
  oracle,
  serve,
};

const USAGE = "Usage: evtchn [--backend NAME] [--json] COMMAND [ARGS...]";

/** Help text of `evtchn`. */
export const help: string =
  `evtchn ${VERSION}: Xen event channels from the command line

${USAGE}
       evtchn help COMMAND | evtchn COMMAND --help

COMMANDS:
  info      Show the backend, devices, Deno version, permissions and domain
  bind      Bind a port (unbound, interdomain, VIRQ) and print its events
  notify    Send an event on a port (or on a new channel to a remote port)
  watch     Bind several ports and stream their events
  ping      Measure event round-trip latency between two handles
  sim       Run a scenario on the in-memory Xen 4.17 model
  snapshot  This domain's ports, states and vCPUs (a host description)
  oracle    Record, replay and compare traces
  serve     Serve the model to C programs (libxenevtchn, LD_PRELOAD)

OPTIONS (before or after the command):
  --backend NAME   memory, linux or auto (default: linux when
                   /dev/xen/evtchn exists, else memory)
  --json           JSON on stdout: one document, or JSON lines for the
                   streaming commands (bind, watch); each has "version": 1
  -h, --help       Show help
  -V, --version    Show the version

The memory backend models a Xen 4.17 host: the CLI acts for its dom0 (Linux,
2 vCPUs), and a domU 1 running Linux offers one port to dom0 as a peer.

EXIT CODES: 0 ok, 1 operation error, 2 usage error.
ENVIRONMENT: NO_COLOR disables colour (used only on a terminal);
             EVTCHN_LIBC names the C library for the linux backend.
PERMISSIONS: ${PERMISSIONS.join(" ")}`;

function usageError(message: string): number {
  return reportError(
    new UsageError(message, `${USAGE}\nRun 'evtchn --help' for the commands.`),
  );
}

/**
 * Runs the CLI.
 *
 * @param args The command line, without the program.
 * @returns The exit status.
 */
export async function main(args: string[]): Promise<number> {
  const globals: string[] = [];
  let i = 0;
  for (; i < args.length; i++) {
    const arg = args[i];
    if (!arg.startsWith("-")) break;
    if (arg === "-h" || arg === "--help") {
      console.log(help);
      return EXIT_OK;
    }
    if (arg === "-V" || arg === "--version") {
      console.log(`evtchn ${VERSION}`);
      return EXIT_OK;
    }
    if (arg === "--json" || arg.startsWith("--backend=")) {
      globals.push(arg);
    } else if (arg === "--backend") {
      if (i + 1 >= args.length) {
        return usageError("Option '--backend NAME' argument missing");
      }
      globals.push(arg, args[++i]);
    } else {
      return usageError(`Unknown option '${arg}'`);
    }
  }
  const name = args[i];
  const rest = args.slice(i + 1);
  if (name === undefined) {
    console.error(help);
    return 2;
  }
  if (name === "help") {
    const topic = rest[0];
    if (topic === undefined) {
      console.log(help);
      return EXIT_OK;
    }
    const command = Object.hasOwn(COMMANDS, topic)
      ? COMMANDS[topic]
      : undefined;
    if (command === undefined) return usageError(`Unknown command '${topic}'`);
    console.log(command.help);
    return EXIT_OK;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (command === undefined) return usageError(`Unknown command '${name}'`);
  // Global options given before the command go before its own arguments,
  // except for oracle, whose first argument is a subcommand.
  const keep = name === "oracle" ? Math.min(1, rest.length) : 0;
  const forwarded = [...rest.slice(0, keep), ...globals, ...rest.slice(keep)];
  return await command.run(forwarded);
}

if (import.meta.main) {
  Deno.exitCode = await main(Deno.args);
}
