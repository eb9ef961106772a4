/**
 * `evtchn watch`: bind VIRQs, unbound and interdomain ports on one handle
 * and stream their events, unmasking each, with per-port counts at the end.
 *
 * @module
 */

import { parseVirq, VIRQ, virqName } from "../mod.ts";
import {
  MAX_COUNT,
  MAX_TIMER_MS,
  noMorePositionals,
  optionalString,
  parse,
  parseInteger,
  parseSeconds,
  stringList,
  UsageError,
} from "./_args.ts";
import { openBackend } from "./_backend.ts";
import {
  type Binding,
  printBound,
  printSummary,
  streamEvents,
} from "./_events.ts";
import { onInterrupt, STOP_SIGNALS } from "./_interrupt.ts";
import { connectSimulatedPeer, type SimulatedPeer } from "./_memory_host.ts";
import { EXIT_OK, Output, reportError } from "./_output.ts";

const USAGE =
  `Usage: evtchn watch [--virq NAME]... [--unbound DOM]... [--interdomain DOM:PORT]...
                    [--simulate N [--interval MS]] [--count N] [--timeout S]`;

/** Help text of `evtchn watch`. */
export const help: string = `evtchn watch: bind ports and stream their events

${USAGE}

Binds everything asked on one handle, prints one line per event (an ISO
timestamp, the port, what it is bound to, its count so far) and unmasks it.
--count or --timeout ends it with per-port counts, exit 0; Ctrl-C (SIGINT)
or SIGTERM ends it the same way but exits 130 or 143.

OPTIONS:
  --virq NAME           Bind a VIRQ by name or number (repeatable)
  --unbound DOM         Offer a port to domain DOM (repeatable)
  --interdomain DOM:PORT
                        Connect to port PORT offered by domain DOM (repeatable)
  --simulate N          Memory backend only: a peer domain (domU 1) connects
                        to a port offered to it and sends N events, one every
                        --interval ms; --count then defaults to N
  --interval MS         Time between simulated events (default 50, at most
                        2147483647, the longest timer)
  --count N             Stop after N events in all (at most 100000000;
                        --simulate takes as many)
  --timeout S           Stop after S seconds (at most 2147483)
  --backend NAME        memory, linux or auto (linux when /dev/xen/evtchn exists)
  --json                JSON lines, each with "version": 1: one "bound" line,
                        one "event" line per event, one "summary" line
  -h, --help            Show this help

On the memory backend nothing fires by itself: use --simulate, or
--interdomain 1:P (P: the port domU 1 offers to dom0, shown by 'evtchn
info'), whose bind marks the new port pending once, as Xen does.

EXAMPLES:
  evtchn watch --virq DOM_EXC --virq CONSOLE
  evtchn watch --simulate 5
  evtchn --json watch --simulate 5 --count 5`;

interface Plan {
  virqs: number[];
  unbound: number[];
  interdomain: { domain: number; port: number }[];
  simulate: number | undefined;
  intervalMs: number;
  count: number | undefined;
  timeoutSeconds: number | undefined;
}

function plan(
  values: Record<string, string | boolean | string[] | undefined>,
): Plan {
  const virqs = stringList(values.virq).map((name) => {
    const virq = parseVirq(name);
    if (virq === undefined) {
      throw new UsageError(
        `Unknown VIRQ '${name}': expected a number or one of ${
          Object.keys(VIRQ).join(", ")
        }`,
        USAGE,
      );
    }
    return virq;
  });
  const unbound = stringList(values.unbound).map((text) =>
    parseInteger(text, "--unbound domain", USAGE)
  );
  const interdomain = stringList(values.interdomain).map((text) => {
    const [domain, port, ...extra] = text.split(":");
    if (port === undefined || extra.length > 0) {
      throw new UsageError(
        `Invalid --interdomain '${text}': expected DOM:PORT`,
        USAGE,
      );
    }
    return {
      domain: parseInteger(domain, "--interdomain domain", USAGE),
      port: parseInteger(port, "--interdomain port", USAGE),
    };
  });
  const text = (name: string): string | undefined =>
    optionalString(values[name]);
  const simulate = text("simulate") === undefined
    ? undefined
    : parseInteger(text("simulate"), "--simulate", USAGE, MAX_COUNT);
  const intervalMs = text("interval") === undefined
    ? 50
    : parseInteger(text("interval"), "--interval", USAGE, MAX_TIMER_MS);
  const count = text("count") === undefined
    ? simulate
    : parseInteger(text("count"), "--count", USAGE, MAX_COUNT);
  const timeoutSeconds = text("timeout") === undefined
    ? undefined
    : parseSeconds(text("timeout")!, "--timeout", USAGE);
  if (
    virqs.length + unbound.length + interdomain.length === 0 &&
    simulate === undefined
  ) {
    throw new UsageError(
      "Nothing to watch: give --virq, --unbound, --interdomain or --simulate",
      USAGE,
    );
  }
  return {
    virqs,
    unbound,
    interdomain,
    simulate,
    intervalMs,
    count,
    timeoutSeconds,
  };
}

/**
 * Runs `evtchn watch`.
 *
 * @param args The arguments after `watch`.
 * @returns The exit status.
 */
export async function run(args: string[]): Promise<number> {
  try {
    const { values, positionals, global } = parse(args, {
      virq: { type: "string", multiple: true },
      unbound: { type: "string", multiple: true },
      interdomain: { type: "string", multiple: true },
      simulate: { type: "string" },
      interval: { type: "string" },
      count: { type: "string" },
      timeout: { type: "string" },
    }, USAGE);
    if (global.help) {
      console.log(help);
      return EXIT_OK;
    }
    noMorePositionals(positionals, USAGE);
    const what = plan(values);
    const out = new Output(global.json);
    using interrupt = onInterrupt(STOP_SIGNALS);
    await using backend = openBackend(global.backend);
    if (what.simulate !== undefined && backend.memory === undefined) {
      throw new UsageError(
        "--simulate needs the memory backend (--backend memory)",
        USAGE,
      );
    }
    const handle = await backend.open();
    const bindings: Binding[] = [];
    for (const virq of what.virqs) {
      bindings.push({
        port: handle.bindVirq(virq),
        label: `virq ${virqName(virq)}`,
        json: { kind: "virq", virq, name: virqName(virq) },
      });
    }
    for (const domain of what.unbound) {
      bindings.push({
        port: handle.bindUnboundPort(domain),
        label: `unbound for dom${domain}`,
        json: { kind: "unbound", remoteDomain: domain },
      });
    }
    for (const { domain, port } of what.interdomain) {
      bindings.push({
        port: handle.bindInterdomain(domain, port),
        label: `interdomain dom${domain}:${port}`,
        json: { kind: "interdomain", remoteDomain: domain, remotePort: port },
      });
    }
    let simulated: SimulatedPeer | undefined;
    if (what.simulate !== undefined) {
      const { peerDomain } = backend.memory!;
      simulated = connectSimulatedPeer(backend.memory!, handle);
      const { port, peerPort } = simulated;
      bindings.push({
        port,
        label: `interdomain dom${peerDomain}:${peerPort} (simulated peer)`,
        json: {
          kind: "simulated",
          remoteDomain: peerDomain,
          remotePort: peerPort,
        },
      });
    }
    printBound(out, bindings, {
      backend: backend.name,
      domain: backend.domain ?? null,
    });
    if (what.count !== 0 && what.simulate === undefined) {
      out.note("watching; Ctrl-C to stop");
    }
    const stopSender = new AbortController();
    const sending = simulated?.send(
      what.simulate!,
      what.intervalMs,
      stopSender.signal,
    );
    try {
      const summary = await streamEvents(handle, bindings, out, {
        count: what.count,
        timeoutSeconds: what.timeoutSeconds,
        signal: interrupt.signal,
      });
      printSummary(out, bindings, summary);
    } finally {
      stopSender.abort();
      await sending;
    }
    return interrupt.exitCode ?? EXIT_OK;
  } catch (error) {
    return reportError(error);
  }
}
