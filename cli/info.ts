/**
 * `evtchn info`: the backend in use and why, the Xen devices, the Deno
 * version, the permissions granted and the domain the CLI acts for.
 *
 * @module
 */

import { noMorePositionals, parse } from "./_args.ts";
import { openBackend } from "./_backend.ts";
import {
  checkDevice,
  EVTCHN_DEVICE,
  NO_ACCESS_DETAIL,
  type PresenceReport,
  PRIVCMD_DEVICE,
} from "./_linux_host.ts";
import { ffiGranted } from "../backends/linux/system.ts";
import { EXIT_OK, Output, reportError } from "./_output.ts";
import { VERSION } from "./_version.ts";

const USAGE = "Usage: evtchn info [--backend NAME] [--json]";

/** Help text of `evtchn info`. */
export const help: string = `evtchn info: show what the CLI would use here

${USAGE}

Shows the backend in use (and why: 'auto' picks linux when ${EVTCHN_DEVICE}
exists), whether ${EVTCHN_DEVICE} and ${PRIVCMD_DEVICE} exist (present,
absent, no-access, or unknown when the check is not permitted), the domain the
CLI acts for, and on a Xen host the hypervisor's version, the event ABI and
the kernel release; how a failed call's errno is learnt (in-call: the kernel's
return value; else libc's errno, read after the call); then the Deno version
and the state of the read, write, ffi ("libc" when only the C library is
granted) and env (EVTCHN_LIBC) permissions. On the memory backend it acts for dom0 of a modelled host and
shows the port the modelled domU 1 offers to dom0. Only looks: binds nothing.
Always exits 0.

Permissions: --allow-ffi (or --allow-ffi=<libc path>) is enough on a Xen
host: the devices are checked, and the domain, Xen and the kernel asked,
through libc. Without it, Deno's own checks of /dev and /proc need
--allow-all, and what cannot be checked is shown as unknown.

OPTIONS:
  --backend NAME   memory, linux or auto (default auto)
  --json           One JSON document with "version": 1
  -h, --help       Show this help`;

function permission(descriptor: Deno.PermissionDescriptor): string {
  return Deno.permissions.querySync(descriptor).state;
}

/** Deno's state of --allow-ffi, or `libc` when only the C library is granted. */
function ffiPermission(): string {
  const state = permission({ name: "ffi" });
  return state !== "granted" && ffiGranted() ? "libc" : state;
}

interface LinuxReport {
  available: boolean;
  reason?: string;
  code?: string;
  xen?: string;
  abi?: string;
  kernel?: string;
  /** How a failed call's errno is learnt (`errnoCapture()`). */
  errno?: string;
}

async function linuxReport(
  devices: Record<string, PresenceReport>,
): Promise<LinuxReport> {
  if (Deno.build.os !== "linux") {
    return { available: false, reason: `not Linux (${Deno.build.os})` };
  }
  if (!ffiGranted()) {
    return { available: false, reason: "--allow-ffi not granted" };
  }
  const linux = await import("../backends/linux/mod.ts");
  const status = linux.linuxDeviceStatus();
  const report: LinuxReport = { ...status };
  if (status.code === "EACCES" || status.code === "EPERM") {
    report.reason = `${status.reason} (${NO_ACCESS_DETAIL})`;
  }
  try {
    report.kernel = linux.kernelRelease();
    report.errno = linux.errnoCapture();
  } catch {
    // A C library without uname: the release is simply not shown.
  }
  if (status.available) {
    await using handle = linux.openLinuxHandle();
    report.abi = linux.eventAbi(handle);
  }
  if (devices[PRIVCMD_DEVICE].state === "present") {
    try {
      using privcmd = linux.openPrivcmd();
      const v = privcmd.xenVersion();
      report.xen = `${v.major}.${v.minor}${v.extra}`;
    } catch {
      // Not root or refused: the version is simply not shown.
    }
  }
  return report;
}

const ABI_NAMES: Record<string, string> = {
  fifo: "FIFO",
  "2l": "2-level",
  unknown: "unknown",
};

/** The state of each device, then each distinct detail once. */
function deviceLines(checks: Record<string, PresenceReport>): string[] {
  const lines = Object.entries(checks).map(([path, check]) =>
    `${path.padEnd(18)} ${check.state}`
  );
  const details = new Set(
    Object.values(checks).flatMap((check) =>
      check.detail === undefined ? [] : [check.detail]
    ),
  );
  return [...lines, ...[...details].map((detail) => `(${detail})`)];
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
    const checks: Record<string, PresenceReport> = {
      [EVTCHN_DEVICE]: checkDevice(EVTCHN_DEVICE),
      [PRIVCMD_DEVICE]: checkDevice(PRIVCMD_DEVICE),
    };
    const devices = Object.fromEntries(
      Object.entries(checks).map(([path, check]) => [path, check.state]),
    );
    const permissions = {
      read: permission({ name: "read" }),
      write: permission({ name: "write" }),
      ffi: ffiPermission(),
      env: permission({ name: "env", variable: "EVTCHN_LIBC" }),
    };
    const linux = await linuxReport(checks);
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
        deviceChecks: checks,
        deno: { ...Deno.version, target: Deno.build.target },
        permissions,
        linux,
        memory: memory === undefined ? null : {
          domains: memory.xen.domains().map((d) => d.id),
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
        memory.xen.domains().map((d) => `dom${d.id}`).join(", ") +
          " (each running Linux)",
      );
      row(
        "peer",
        `dom${memory.peerDomain} offers unbound port ${memory.offeredPort} to dom0`,
      );
    } else {
      row("acts for", actsFor);
    }
    const [first, ...more] = deviceLines(checks);
    row("devices", first);
    for (const line of more) out.line(`${"".padEnd(14)} ${line}`);
    if (linux.xen !== undefined) row("xen", linux.xen);
    if (linux.abi !== undefined) {
      row("event abi", ABI_NAMES[linux.abi] ?? linux.abi);
    }
    if (linux.kernel !== undefined) row("kernel", linux.kernel);
    if (linux.errno !== undefined) {
      row(
        "errno",
        linux.errno === "in-call"
          ? "in-call (the kernel's return value)"
          : "read after the call (may rarely be another call's)",
      );
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
