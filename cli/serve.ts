/**
 * `evtchn serve`: a modelled Xen host for unmodified C programs. Listens on
 * a Unix socket; each client connection (made by `shim/`'s
 * `libxenevtchn.so.1` or `libevtchn_preload.so`) is one open
 * `/dev/xen/evtchn` in a domain of the model. Runs until SIGINT or SIGTERM.
 *
 * @module
 */

import { formatFindings, parseHostSnapshot } from "../mod.ts";
import { DOMID_FIRST_RESERVED } from "../xen/domid.ts";
import { DEFAULT_SOCKET, serve } from "../serve/mod.ts";
import {
  noMorePositionals,
  optionalString,
  parse,
  parseInteger,
  stringList,
  UsageError,
} from "./_args.ts";
import { onInterrupt, STOP_SIGNALS } from "./_interrupt.ts";
import { EXIT_OK, Output, reportError } from "./_output.ts";

const USAGE =
  "Usage: evtchn serve [--socket PATH] [--host SNAPSHOT.json] [--domain N]... [--lint]";

/** The environment variable naming the socket, for server and clients. */
export const SOCKET_ENV = "EVTCHN_SOCKET";

/** Most `--domain` options taken (each is a modelled domain with Linux). */
export const MAX_DOMAINS = 64;

/** Help text of `evtchn serve`. */
export const help: string =
  `evtchn serve: the Xen 4.17 model for C programs, over a Unix socket

${USAGE}

Hosts a modelled Xen host (dom0 with Linux, and domU 1 unless --domain says
otherwise) and serves it to C programs run with the libraries that
'deno task shim' builds: libxenevtchn.so.1 (LD_LIBRARY_PATH) or
libevtchn_preload.so (LD_PRELOAD). Each open handle is one client; it acts
in dom0, or in domain N when the program runs with EVTCHN_DOMAIN=N (a domain
the model does not have yet is created, running Linux, on first use). A
client that exits is closed like a process exit: its ports are unbound.
Runs until Ctrl-C (SIGINT) or SIGTERM, then closes every client, removes the
socket and exits 0. Client errors are one line each on stderr.

OPTIONS:
  --socket PATH      Listen here (default: $${SOCKET_ENV}, else ${DEFAULT_SOCKET})
  --host FILE        Boot dom0 from a host snapshot ('evtchn snapshot --json')
  --domain N         Create domain N (1..${
    DOMID_FIRST_RESERVED - 1
  }) at start, repeatable (default: 1)
  --lint             Lint mode for every client; the findings are printed
                     when the server stops (a JSON line with --json)
  --json             One "listening" JSON line on stdout once ready
  -h, --help         Show this help

EXAMPLES:
  evtchn serve &                                        # then, in a shell:
  LD_LIBRARY_PATH=shim/.build ./my_libxenevtchn_program
  EVTCHN_DOMAIN=1 LD_PRELOAD=shim/.build/libevtchn_preload.so ./direct_user`;

/**
 * Runs `evtchn serve`.
 *
 * @param args The arguments after `serve`.
 * @returns The exit status.
 */
export async function run(args: string[]): Promise<number> {
  using interrupt = onInterrupt(STOP_SIGNALS);
  try {
    const { values, positionals, global } = parse(args, {
      socket: { type: "string" },
      host: { type: "string" },
      domain: { type: "string", multiple: true },
      lint: { type: "boolean" },
    }, USAGE);
    if (global.help) {
      console.log(help);
      return EXIT_OK;
    }
    noMorePositionals(positionals, USAGE);
    const given = stringList(values.domain);
    if (given.length > MAX_DOMAINS) {
      throw new UsageError(`At most ${MAX_DOMAINS} --domain options`, USAGE);
    }
    const domains = given.length === 0 ? [1] : given.map((text) => {
      const domain = parseInteger(
        text,
        "--domain",
        USAGE,
        DOMID_FIRST_RESERVED - 1,
      );
      if (domain === 0) {
        throw new UsageError(
          "Invalid --domain '0': dom0 is always there",
          USAGE,
        );
      }
      return domain;
    });
    const hostFile = optionalString(values.host);
    const host = hostFile === undefined
      ? undefined
      : parseHostSnapshot(await Deno.readTextFile(hostFile));
    const socket = optionalString(values.socket) ?? socketFromEnv();
    const out = new Output(global.json);
    if (interrupt.signal.aborted) return EXIT_OK;
    const lint = values.lint === true;
    const server = await serve({
      socket,
      host,
      domains,
      lint,
      signal: interrupt.signal,
    });
    if (out.json) {
      out.record({ event: "listening", socket: server.socket, domains });
    } else {
      out.note(
        `evtchn serve: listening on ${server.socket} (dom0, ${
          domains.map((d) => `dom${d}`).join(", ")
        }); clients: ${SOCKET_ENV}=${server.socket}`,
      );
    }
    await server.finished;
    out.note("evtchn serve: stopped");
    if (lint) {
      const findings = server.xen.findings({ final: true });
      if (out.json) out.record({ event: "findings", findings });
      else if (findings.length > 0) console.error(formatFindings(findings));
      else out.note("evtchn serve: no lint findings");
    }
    return EXIT_OK;
  } catch (error) {
    return reportError(error);
  }
}

/** `$EVTCHN_SOCKET` where readable (no prompt), else the default. */
function socketFromEnv(): string {
  const permission = Deno.permissions.querySync({
    name: "env",
    variable: SOCKET_ENV,
  });
  if (permission.state !== "granted") return DEFAULT_SOCKET;
  const value = Deno.env.get(SOCKET_ENV);
  return value === undefined || value === "" ? DEFAULT_SOCKET : value;
}
