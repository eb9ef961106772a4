// Shared by the tests in tests/serve/: whether the C toolchain is here, the
// shim built once per test process into a temporary directory, a server on
// a fresh socket, and running a C program against it.

import { buildShim } from "../../tools/shim.ts";
import { serve, type Server } from "../../serve/mod.ts";

/** Why the C side cannot be built here, or `undefined` when it can. */
export const NO_TOOLCHAIN: string | undefined = await (async () => {
  const probe = await new Deno.Command("sh", {
    args: [
      "-c",
      "command -v gcc >/dev/null && test -f /usr/include/xenevtchn.h",
    ],
  }).output();
  return probe.success
    ? undefined
    : "needs gcc and libxen-dev (apt-get install gcc libxen-dev)";
})();

let built: Promise<Record<string, string>> | undefined;
let buildDir: string | undefined;

/**
 * Builds the shim once for this test process.
 *
 * @returns The paths by file name.
 */
export function shim(): Promise<Record<string, string>> {
  built ??= (async () => {
    buildDir = await Deno.makeTempDir({ prefix: "evtchn-shim-" });
    return await buildShim(buildDir);
  })();
  return built;
}

/** Removes the build directory (call from the last test's teardown). */
export async function removeShim(): Promise<void> {
  if (buildDir !== undefined) {
    await Deno.remove(buildDir, { recursive: true });
  }
  built = buildDir = undefined;
}

/** A server on a socket in its own temporary directory, and its log. */
export interface TestServer extends AsyncDisposable {
  server: Server;
  socket: string;
  log: string[];
}

/**
 * Starts a server on a fresh socket.
 *
 * @returns The server; dispose to stop it and remove the directory.
 */
export async function startServer(): Promise<TestServer> {
  const dir = await Deno.makeTempDir({ prefix: "evtchn-serve-" });
  const socket = `${dir}/evtchn.sock`;
  const log: string[] = [];
  const server = await serve({ socket, log: (line) => log.push(line) });
  return {
    server,
    socket,
    log,
    [Symbol.asyncDispose]: async () => {
      await server.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** What a program printed and how it ended. */
export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a program with the given environment (only these variables and
 * PATH), its output captured.
 *
 * @param program The executable.
 * @param args Its arguments.
 * @param env Its environment.
 * @returns Exit code and output.
 */
export async function runProgram(
  program: string,
  args: string[],
  env: Record<string, string>,
): Promise<Run> {
  const output = await new Deno.Command(program, {
    args,
    env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", ...env },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return {
    code: output.code,
    stdout: text.decode(output.stdout),
    stderr: text.decode(output.stderr),
  };
}

/** The directory a file is in. */
export function dirOf(path: string): string {
  return path.slice(0, path.lastIndexOf("/"));
}
