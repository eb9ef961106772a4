/**
 * `evtchn notify`: send an event on a port (`IOCTL_EVTCHN_NOTIFY`), or
 * connect to a remote domain's offered port and send on that channel.
 *
 * @module
 */

import { EventChannelError } from "../mod.ts";
import {
  noMorePositionals,
  optionalString,
  parse,
  parseInteger,
  UsageError,
} from "./_args.ts";
import { openBackend } from "./_backend.ts";
import { EXIT_OK, Output, reportError } from "./_output.ts";

const USAGE = `Usage: evtchn notify PORT [OPTIONS]
       evtchn notify --remote DOM --port PORT [OPTIONS]`;

/** Help text of `evtchn notify`. */
export const help: string = `evtchn notify: send an event

${USAGE}

'notify PORT' sends on a port of a fresh handle. Linux lets a handle notify
only the ports it bound itself, so on its own this fails with ENOTCONN (exit
1): that is the driver's real behaviour, shown as is.

'notify --remote DOM --port PORT' does what a client does: connects to port
PORT that domain DOM offers to this domain (bind interdomain), sends one event
on the new channel, and unbinds, which leaves the remote port unbound again.

OPTIONS:
  --remote DOM     The domain that offers the port
  --port PORT      The port it offers
  --backend NAME   memory, linux or auto (linux when /dev/xen/evtchn exists)
  --json           One JSON document with "version": 1
  -h, --help       Show this help

On the memory backend domU 1 offers a port P to dom0 ('evtchn info' shows
it): 'evtchn notify --remote 1 --port P' delivers an event that domU 1 then
sees, and says so.

EXAMPLES:
  evtchn notify --remote 1 --port 8
  evtchn notify 5            # ENOTCONN: this handle did not bind port 5`;

/**
 * Runs `evtchn notify`.
 *
 * @param args The arguments after `notify`.
 * @returns The exit status.
 */
export async function run(args: string[]): Promise<number> {
  try {
    const { values, positionals, global } = parse(args, {
      remote: { type: "string" },
      port: { type: "string" },
    }, USAGE);
    if (global.help) {
      console.log(help);
      return EXIT_OK;
    }
    const [portText, ...rest] = positionals;
    noMorePositionals(rest, USAGE);
    const remoteText = optionalString(values.remote);
    const remotePortText = optionalString(values.port);
    const remote = remoteText === undefined && remotePortText === undefined
      ? undefined
      : {
        domain: parseInteger(remoteText, "--remote DOM", USAGE),
        port: parseInteger(remotePortText, "--port PORT", USAGE),
      };
    if (remote !== undefined && portText !== undefined) {
      throw new UsageError(
        "Give either PORT or --remote DOM --port PORT, not both",
        USAGE,
      );
    }
    if (remote === undefined && portText === undefined) {
      throw new UsageError("Missing PORT (or --remote DOM --port PORT)", USAGE);
    }
    const out = new Output(global.json);
    await using backend = openBackend(global.backend);
    const handle = await backend.open();

    if (remote === undefined) {
      const port = parseInteger(portText, "port", USAGE);
      try {
        handle.notify(port);
      } catch (error) {
        if (error instanceof EventChannelError && error.code === "ENOTCONN") {
          const status = reportError(error);
          out.note(
            "hint: a handle can notify only ports it bound; try " +
              "'evtchn notify --remote DOM --port PORT'",
          );
          return status;
        }
        throw error;
      }
      if (out.json) out.document({ backend: backend.name, port });
      else out.line(`notified port ${port}`);
      return EXIT_OK;
    }

    const local = handle.bindInterdomain(remote.domain, remote.port);
    handle.notify(local);
    handle.unbind(local);
    // On the memory backend the peer is modelled here: show what it saw.
    const peer = backend.memory;
    const received = peer !== undefined && peer.peerDomain === remote.domain
      ? peer.peer.poll()
      : undefined;
    if (received !== undefined) peer!.peer.unmask(received);
    if (out.json) {
      out.document({
        backend: backend.name,
        localPort: local,
        remoteDomain: remote.domain,
        remotePort: remote.port,
        ...(peer === undefined ? {} : { peerReceived: received ?? null }),
      });
      return EXIT_OK;
    }
    out.line(
      `notified dom${remote.domain} port ${remote.port} through local port ${local}`,
    );
    if (received !== undefined) {
      out.note(
        `dom${remote.domain} (modelled) received an event on port ${received}`,
      );
    }
    return EXIT_OK;
  } catch (error) {
    return reportError(error);
  }
}
