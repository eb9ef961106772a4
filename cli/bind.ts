/**
 * `evtchn bind`: bind one port (unbound, interdomain or VIRQ), print it, then
 * print its events, unmasking each, until Ctrl-C, `--count` or `--timeout`.
 *
 * @module
 */

import { parseVirq, VIRQ, virqName } from "../mod.ts";
import {
  noMorePositionals,
  optionalString,
  parse,
  parseInteger,
  parseSeconds,
  UsageError,
} from "./_args.ts";
import { type Backend, domainLabel, openBackend } from "./_backend.ts";
import {
  type Binding,
  printBound,
  printSummary,
  streamEvents,
} from "./_events.ts";
import { onInterrupt } from "./_interrupt.ts";
import { EXIT_OK, Output, reportError } from "./_output.ts";

const USAGE = `Usage: evtchn bind unbound --remote DOM [OPTIONS]
       evtchn bind interdomain --remote DOM --port PORT [OPTIONS]
       evtchn bind virq NAME|NUMBER [OPTIONS]`;

/** Help text of `evtchn bind`. */
export const help: string =
  `evtchn bind: bind a port, print it, then print its events until stopped

${USAGE}

KINDS:
  unbound       Allocate a port that domain DOM may connect to
                (IOCTL_EVTCHN_BIND_UNBOUND_PORT)
  interdomain   Connect to port PORT that domain DOM offers to this domain
                (IOCTL_EVTCHN_BIND_INTERDOMAIN)
  virq          Bind a virtual IRQ on vCPU 0 (IOCTL_EVTCHN_BIND_VIRQ), by name
                (TIMER, DOM_EXC, VIRQ_DOM_EXC, any case) or by number

OPTIONS:
  --remote DOM       The remote domain (unbound, interdomain)
  --port PORT        The remote port (interdomain)
  --count N          Stop after N events; 0 binds, prints the port and releases
  --timeout S        Stop after S seconds (such as 10 or 0.5)
  --backend NAME     memory, linux or auto (linux when /dev/xen/evtchn exists)
  --json             JSON lines: one "bound", one "event" per event, one
                     "summary"; each has "version": 1
  -h, --help         Show this help

Each event is printed with an ISO timestamp and its port unmasked. Ctrl-C
prints per-port counts and exits 0. The port is unbound on exit.

NOTES:
  Xen marks a new interdomain port pending at once, so 'bind interdomain'
  reports one event straight away.
  On the memory backend the CLI acts for dom0 of a modelled host that also
  runs a domU 1 with Linux; domU 1 offers one unbound port P to dom0 ('evtchn
  info' shows it), so 'evtchn bind interdomain --remote 1 --port P' connects.
  Nothing fires unless something sends: see 'evtchn watch --simulate N'. The
  modelled dom0 kernel holds VIRQ_TIMER, as a real one does, so 'bind virq
  TIMER' fails there with EEXIST.

EXAMPLES:
  evtchn bind virq DOM_EXC --timeout 60
  evtchn bind unbound --remote 3
  evtchn --json bind interdomain --remote 1 --port P --count 1`;

type Kind = "unbound" | "interdomain" | "virq";

interface Request {
  kind: Kind;
  remote?: number;
  port?: number;
  virq?: number;
}

function request(
  positionals: string[],
  values: Record<string, string | boolean | string[] | undefined>,
): Request {
  const [kind, ...rest] = positionals;
  const remoteText = optionalString(values.remote);
  const portText = optionalString(values.port);
  const remote = remoteText === undefined
    ? undefined
    : parseInteger(remoteText, "--remote domain", USAGE);
  const port = portText === undefined
    ? undefined
    : parseInteger(portText, "--port", USAGE);
  switch (kind) {
    case undefined:
      throw new UsageError(
        "Missing what to bind: unbound, interdomain or virq",
        USAGE,
      );
    case "unbound":
      noMorePositionals(rest, USAGE);
      if (remote === undefined) {
        throw new UsageError("Missing --remote DOM", USAGE);
      }
      if (port !== undefined) {
        throw new UsageError("'bind unbound' takes no --port", USAGE);
      }
      return { kind, remote };
    case "interdomain":
      noMorePositionals(rest, USAGE);
      if (remote === undefined) {
        throw new UsageError("Missing --remote DOM", USAGE);
      }
      if (port === undefined) {
        throw new UsageError("Missing --port PORT", USAGE);
      }
      return { kind, remote, port };
    case "virq": {
      const [name, ...more] = rest;
      noMorePositionals(more, USAGE);
      if (name === undefined) {
        throw new UsageError("Missing VIRQ name or number", USAGE);
      }
      if (remote !== undefined || port !== undefined) {
        throw new UsageError("'bind virq' takes no --remote or --port", USAGE);
      }
      const virq = parseVirq(name);
      if (virq === undefined) {
        throw new UsageError(
          `Unknown VIRQ '${name}': expected a number or one of ${
            Object.keys(VIRQ).join(", ")
          }`,
          USAGE,
        );
      }
      return { kind, virq };
    }
    default:
      throw new UsageError(
        `Unknown kind '${kind}': expected unbound, interdomain or virq`,
        USAGE,
      );
  }
}

function bindingFor(request: Request, port: number): Binding {
  switch (request.kind) {
    case "unbound":
      return {
        port,
        label: `unbound for dom${request.remote}`,
        json: { kind: "unbound", remoteDomain: request.remote },
      };
    case "interdomain":
      return {
        port,
        label: `interdomain dom${request.remote}:${request.port}`,
        json: {
          kind: "interdomain",
          remoteDomain: request.remote,
          remotePort: request.port,
        },
      };
    case "virq":
      return {
        port,
        label: `virq ${virqName(request.virq!)}`,
        json: {
          kind: "virq",
          virq: request.virq,
          name: virqName(request.virq!),
        },
      };
  }
}

/**
 * Runs `evtchn bind`.
 *
 * @param args The arguments after `bind`.
 * @returns The exit status.
 */
export async function run(args: string[]): Promise<number> {
  try {
    const { values, positionals, global } = parse(args, {
      remote: { type: "string" },
      port: { type: "string" },
      count: { type: "string" },
      timeout: { type: "string" },
    }, USAGE);
    if (global.help) {
      console.log(help);
      return EXIT_OK;
    }
    const what = request(positionals, values);
    const countText = optionalString(values.count);
    const timeoutText = optionalString(values.timeout);
    const count = countText === undefined
      ? undefined
      : parseInteger(countText, "--count", USAGE);
    const timeoutSeconds = timeoutText === undefined
      ? undefined
      : parseSeconds(timeoutText, "--timeout", USAGE);
    const out = new Output(global.json);
    using interrupt = onInterrupt();
    await using backend = openBackend(global.backend);
    const handle = await backend.open();
    const port = what.kind === "unbound"
      ? handle.bindUnboundPort(what.remote!)
      : what.kind === "interdomain"
      ? handle.bindInterdomain(what.remote!, what.port!)
      : handle.bindVirq(what.virq!);
    const bindings = [bindingFor(what, port)];
    printBound(out, bindings, context(backend));
    if (count !== 0) explain(out, backend, what);
    const summary = await streamEvents(handle, bindings, out, {
      count,
      timeoutSeconds,
      signal: interrupt.signal,
    });
    printSummary(out, bindings, summary);
    return EXIT_OK;
  } catch (error) {
    return reportError(error);
  }
}

function context(backend: Backend): Record<string, unknown> {
  return { backend: backend.name, domain: backend.domain ?? null };
}

function explain(out: Output, backend: Backend, what: Request): void {
  const where = `${backend.name} backend, ${domainLabel(backend)}`;
  if (backend.memory === undefined) {
    out.note(`waiting for events (${where}); Ctrl-C to stop`);
    return;
  }
  const hint = what.kind === "interdomain"
    ? "the bind itself marks the port pending once"
    : "nothing fires unless something sends; see 'evtchn watch --simulate N'";
  out.note(`waiting for events (${where}): ${hint}; Ctrl-C to stop`);
}
