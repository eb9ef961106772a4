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

import {
  type HostSnapshot,
  MemoryXen,
  parseHostSnapshot,
  virqName,
} from "../mod.ts";
import { noMorePositionals, optionalString, parse } from "./_args.ts";
import { resolveBackend } from "./_backend.ts";
import { EXIT_OK, Output, padStart, reportError } from "./_output.ts";

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
  const counts = new Array<number>(s.vcpus).fill(0);
  out.line(
    `${padStart("port", 6)}  ${"state".padEnd(12)}${"vcpu".padEnd(6)}detail`,
  );
  for (const p of s.ports) {
    counts[p.vcpu]++;
    let detail = "";
    switch (p.status) {
      case "virq":
        detail = `VIRQ ${p.virq} (${virqName(p.virq)})`;
        break;
      case "pirq":
        detail = `PIRQ ${p.pirq}`;
        break;
      case "unbound":
        detail = `for dom${p.remoteDomain}`;
        break;
      case "interdomain":
        detail = `dom${p.remoteDomain} port ${p.remotePort}`;
        break;
    }
    out.line(
      `${padStart(p.port, 6)}  ${p.status.padEnd(12)}${
        String(p.vcpu).padEnd(6)
      }${detail}`.trimEnd(),
    );
  }
  out.line(
    `${s.ports.length} ports in use; per vCPU: ${
      counts.map((n, cpu) => `vcpu${cpu} ${n}`).join(", ")
    }`,
  );
}
