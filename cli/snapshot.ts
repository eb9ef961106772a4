/**
 * `evtchn snapshot`: what this domain's kernel holds in Xen's event
 * channels, every port with its state and vCPU, the event ABI, the kernel's
 * channel limit and the versions. On a real dom0 it is a privcmd status scan
 * (root); its `--json` output is the host description that
 * `new MemoryXen({ host })` (and the oracle's replays) boot a model from.
 * On `memory` it shows the modelled dom0, booted from `--host FILE` if
 * given.
 *
 * @module
 */

import { type HostSnapshot, MemoryXen, parseHostSnapshot } from "../mod.ts";
import { dumpLines, hostDumpRows } from "../model.ts";
import { noMorePositionals, optionalString, parse } from "./_args.ts";
import { resolveBackend } from "./_backend.ts";
import { EXIT_OK, Output, reportError } from "./_output.ts";

const USAGE = "Usage: evtchn snapshot [--host FILE] [--out FILE] [OPTIONS]";

/** Help text of `evtchn snapshot`. */
export const help: string =
  `evtchn snapshot: this domain's event channels, port by port

${USAGE}

On a real dom0 (root; --allow-ffi) every port up to Xen's storage edge is
read with EVTCHNOP_status through /dev/xen/privcmd, with its vCPU; the event
ABI comes from EVTCHNOP_set_priority and the kernel's channel limit from
/dev/xen/evtchn. Nothing is bound or changed. Take it while no other program
holds ports, and keep the --json output: a model booted from it
('new MemoryXen({ host })', or 'evtchn snapshot --backend memory --host FILE')
holds the same ports on the same vCPUs, so port numbers and vCPU choices
agree with this host from the first bind.

OPTIONS:
  --host FILE      memory backend: boot the modelled dom0 from this snapshot
  --out FILE       write the JSON snapshot to FILE (needs --allow-write)
  --backend NAME   memory, linux or auto (linux when /dev/xen/evtchn exists)
  --json           the snapshot as one JSON document ("version": 1)
  -h, --help       Show this help

EXAMPLES:
  evtchn snapshot --json > host.json          # on a real dom0, as root
  evtchn snapshot --backend memory --host host.json`;

/**
 * Runs `evtchn snapshot`.
 *
 * @param args The arguments after `snapshot`.
 * @returns The exit status.
 */
export async function run(args: string[]): Promise<number> {
  try {
    const { values, positionals, global } = parse(args, {
      host: { type: "string" },
      out: { type: "string" },
    }, USAGE);
    if (global.help) {
      console.log(help);
      return EXIT_OK;
    }
    noMorePositionals(positionals, USAGE);
    const hostFile = optionalString(values.host);
    const outFile = optionalString(values.out);
    const out = new Output(global.json);
    const { name } = resolveBackend(global.backend);
    let snapshot: HostSnapshot;
    if (name === "linux") {
      if (hostFile !== undefined) {
        out.warn("--host boots the memory backend; ignored on linux");
      }
      const linux = await import("../backends/linux/mod.ts");
      snapshot = await linux.snapshotHost();
    } else {
      const host = hostFile === undefined
        ? undefined
        : parseHostSnapshot(await Deno.readTextFile(hostFile));
      snapshot = new MemoryXen({ host }).snapshot(0);
    }
    if (outFile !== undefined) {
      await Deno.writeTextFile(outFile, JSON.stringify(snapshot) + "\n");
    }
    if (out.json) {
      console.log(JSON.stringify(snapshot, null, 2));
      return EXIT_OK;
    }
    printTable(out, snapshot, name);
    if (outFile !== undefined) out.note(`snapshot written to ${outFile}`);
    return EXIT_OK;
  } catch (error) {
    return reportError(error);
  }
}

function printTable(out: Output, s: HostSnapshot, backend: string): void {
  out.line(
    `dom${s.domain} on Xen ${s.xen}, kernel ${s.kernel} (${backend}): ` +
      `${s.abi === "fifo" ? "FIFO" : "2-level"} ABI, ${s.vcpus} vCPUs, ` +
      `${s.nrChannels} channels, ports valid below ${s.validPorts}`,
  );
  // The table `evtchn sim` prints for the model, as `xl debug-keys e` does;
  // EVTCHNOP_status does not tell the pending, mask and selector bits (?).
  out.line(`Event channel information for domain ${s.domain}:`);
  out.line("    port [p/m/s]");
  for (const line of dumpLines(hostDumpRows(s))) out.line(line);
  const counts = new Array<number>(s.vcpus).fill(0);
  for (const p of s.ports) counts[p.vcpu]++;
  out.line(
    `${s.ports.length} ports in use; per vCPU: ${
      counts.map((n, cpu) => `vcpu${cpu} ${n}`).join(", ")
    }`,
  );
}
