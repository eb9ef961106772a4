/**
 * `evtchn info`: the backend in use and why, the Xen devices, the Deno
 * version, the permissions granted and the domain the CLI acts for.
 *
 * @module
 */

import { noMorePositionals, parse } from "./_args.ts";
import {
  EVTCHN_DEVICE,
  openBackend,
  presence,
  PRIVCMD_DEVICE,
} from "./_backend.ts";
import { EXIT_OK, Output, reportError } from "./_output.ts";
import { VERSION } from "./_version.ts";

const USAGE = "Usage: evtchn info [--backend NAME] [--json]";

/** Help text of `evtchn info`. */
export const help: string = `evtchn info: show what the CLI would use here

${USAGE}

Shows the backend in use (and why: 'auto' picks linux when ${EVTCHN_DEVICE}
exists), whether ${EVTCHN_DEVICE} and ${PRIVCMD_DEVICE} exist, the Deno
version, the state of the read, write, ffi and env (EVTCHN_LIBC) permissions, the domain the CLI
acts for (dom0 on the memory backend), and, on the memory backend, the port
the modelled domU 1 offers to dom0. Only looks: binds nothing. Always exits 0.

OPTIONS:
  --backend NAME   memory, linux or auto (default auto)
  --json           One JSON document with "version": 1
  -h, --help       Show this help`;

function permission(descriptor: Deno.PermissionDescriptor): string {
  return Deno.permissions.querySync(descriptor).state;
}

interface LinuxReport {
  available: boolean;
  reason?: string;
  xen?: string;
}

async function linuxReport(): Promise<LinuxReport> {
  if (Deno.build.os !== "linux") {
    return { available: false, reason: `not Linux (${Deno.build.os})` };
  }
  if (permission({ name: "ffi" }) !== "granted") {
    return { available: false, reason: "--allow-ffi not granted" };
  }
  const linux = await import("../backends/linux/mod.ts");
  const status = linux.linuxDeviceStatus();
  const report: LinuxReport = { ...status };
  if (presence(PRIVCMD_DEVICE) === "present") {
    try {
      using privcmd = linux.openPrivcmd();
      const v = privcmd.xenVersion();
      report.xen = `${v.major}.${v.minor}${v.extra}`;
    } catch {
      // Not dom0, or not root: the version is simply not shown.
    }
  }
  return report;
}

/**
 * Runs `evtchn info`.
 *
 * @param args The arguments after `info`.
 * @returns The exit status.
 */
export async function run(args: string[]): Promise<number> {
  try {
    const { positionals, global } = parse(args, {}, USAGE);
    if (global.help) {
      console.log(help);
      return EXIT_OK;
    }
    noMorePositionals(positionals, USAGE);
    const out = new Output(global.json);
    await using backend = openBackend(global.backend);
    const devices = {
      [EVTCHN_DEVICE]: presence(EVTCHN_DEVICE),
      [PRIVCMD_DEVICE]: presence(PRIVCMD_DEVICE),
    };
    const permissions = {
      read: permission({ name: "read" }),
      write: permission({ name: "write" }),
      ffi: permission({ name: "ffi" }),
      env: permission({ name: "env", variable: "EVTCHN_LIBC" }),
    };
    const linux = await linuxReport();
    const memory = backend.memory;
    const actsFor = backend.domain === undefined
      ? "this domain (its id is not known to the device)"
      : `dom${backend.domain}`;
    if (out.json) {
      out.document({
        evtchn: VERSION,
        backend: backend.name,
        requested: backend.requested,
        why: backend.why,
        domain: backend.domain ?? null,
        devices,
        deno: { ...Deno.version, target: Deno.build.target },
        permissions,
        linux,
        memory: memory === undefined ? null : {
          domains: memory.xen.hypervisor.domainIds,
          peerDomain: memory.peerDomain,
          offeredPort: memory.offeredPort,
        },
      });
      return EXIT_OK;
    }
    const p = out.out;
    const row = (key: string, value: string): void =>
      out.line(`${p.paint("bold", key.padEnd(14))} ${value}`);
    out.line(`evtchn ${VERSION}`);
    row(
      "backend",
      backend.requested === "auto"
        ? `${backend.name} (auto: ${backend.why})`
        : `${backend.name} (asked for)`,
    );
    if (memory !== undefined) {
      row("acts for", `${actsFor} of a modelled Xen 4.17 host`);
      row(
        "domains",
        memory.xen.hypervisor.domainIds.map((d) => `dom${d}`).join(", ") +
          " (each running Linux)",
      );
      row(
        "peer",
        `dom${memory.peerDomain} offers unbound port ${memory.offeredPort} to dom0`,
      );
    } else {
      row("acts for", actsFor);
    }
    const [first, ...more] = Object.entries(devices);
    row("devices", `${first[0].padEnd(18)} ${first[1]}`);
    for (const [path, state] of more) {
      out.line(`${"".padEnd(14)} ${path.padEnd(18)} ${state}`);
    }
    row(
      "deno",
      `${Deno.version.deno} (v8 ${Deno.version.v8}, typescript ${Deno.version.typescript}, ${Deno.build.target})`,
    );
    row(
      "permissions",
      Object.entries(permissions).map(([k, v]) => `${k} ${v}`).join(", "),
    );
    row(
      "linux backend",
      linux.available
        ? `available${linux.xen === undefined ? "" : ` (Xen ${linux.xen})`}`
        : `unavailable: ${linux.reason}`,
    );
    return EXIT_OK;
  } catch (error) {
    return reportError(error);
  }
}
