// The linux backend's system calls (backends/linux/_syscall.ts): the kernel's
// own return value carries the error, so nothing the runtime does between
// the call and the check can change it (issue 18). Runs on any x86-64 Linux
// with ordinary files; the listing check needs GNU as (binutils).
//
// deno test --sanitize-ops --sanitize-resources -A tests/linux/syscall_test.ts

import assert from "node:assert/strict";
import {
  acquireLibc,
  cString,
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  F_OK,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  O_CLOEXEC,
  O_RDONLY,
  POLLFD_SIZE,
  POLLIN,
  PROT_READ,
  PROT_WRITE,
  releaseLibc,
  UTSNAME_SIZE,
} from "../../backends/linux/_libc.ts";
import {
  errnoSyscalls,
  type Syscalls,
  syscalls,
  X86_64_ROUTINE,
  X86_64_ROUTINE_LISTING,
} from "../../backends/linux/_syscall.ts";
import { ERRNO } from "../../xen/errno.ts";

const x86Linux = Deno.build.os === "linux" && Deno.build.arch === "x86_64";
const ENOTTY = 25;

function gnuAs(): string | undefined {
  try {
    const out = new Deno.Command("as", { args: ["--version"], stdout: "piped" })
      .outputSync();
    return out.success ? new TextDecoder().decode(out.stdout) : undefined;
  } catch {
    return undefined;
  }
}
const as = x86Linux ? gnuAs() : undefined;

Deno.test({
  name: "the routine's bytes are its listing, assembled by GNU as" +
    (as === undefined ? " [ignored: no GNU as (binutils) on x86-64 here]" : ""),
  ignore: as === undefined,
  async fn(): Promise<void> {
    const dir = await Deno.makeTempDir();
    try {
      const source = `${dir}/routine.s`;
      const object = `${dir}/routine.o`;
      const binary = `${dir}/routine.bin`;
      await Deno.writeTextFile(
        source,
        `.intel_syntax noprefix\n.text\n${X86_64_ROUTINE_LISTING}\n`,
      );
      const run = async (cmd: string, args: string[]): Promise<void> => {
        const out = await new Deno.Command(cmd, { args, stderr: "piped" })
          .output();
        assert.ok(out.success, new TextDecoder().decode(out.stderr));
      };
      await run("as", ["--64", "-o", object, source]);
      await run("objcopy", ["-O", "binary", "-j", ".text", object, binary]);
      assert.deepEqual(await Deno.readFile(binary), X86_64_ROUTINE);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** The same kernel answers through both paths, negated errno on failure. */
function kernelAnswers(sys: Syscalls): Record<string, number | string> {
  const libc = acquireLibc();
  try {
    const answers: Record<string, number | string> = {};
    const nul = sys.open(cString("/dev/null"), O_RDONLY | O_CLOEXEC);
    assert.ok(nul >= 0, `open /dev/null: ${nul}`);
    const event = sys.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    assert.ok(event >= 0, `eventfd: ${event}`);
    try {
      answers.ioctlNoTty = sys.ioctl(nul, 0x5401n, new Uint8Array(64));
      answers.ioctlBadFd = sys.ioctl(-1, 0x5401n, null);
      answers.readEof = sys.read(nul, new Uint8Array(8), 8n);
      answers.writeReadOnly = sys.write(nul, new Uint8Array(8), 8n);
      answers.readEmptyEventfd = sys.read(event, new BigUint64Array(1), 8n);
      answers.writeEventfd = sys.write(event, new BigUint64Array([3n]), 8n);
      const counter = new BigUint64Array(1);
      answers.readEventfd = sys.read(event, counter, 8n);
      answers.counter = Number(counter[0]);
      answers.readShortEventfd = sys.read(event, new Uint8Array(4), 4n);
      const pollfd = new Int32Array(POLLFD_SIZE / 4);
      pollfd[0] = event;
      pollfd[1] = POLLIN;
      answers.pollNothing = sys.poll(pollfd, 1n, 0);
      answers.openMissing = sys.open(cString("/nonexistent/x"), O_CLOEXEC);
      answers.accessMissing = sys.access(cString("/nonexistent/x"), F_OK);
      answers.accessNull = sys.access(cString("/dev/null"), F_OK);
      const uts = new Uint8Array(UTSNAME_SIZE);
      answers.uname = sys.uname(uts);
      answers.sysname = new TextDecoder().decode(uts.subarray(0, 5));
      const bad = sys.mmap(0n, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0n);
      answers.mmapZeroLength = Number(bad);
      const page = sys.mmap(
        4096n,
        PROT_READ | PROT_WRITE,
        MAP_PRIVATE | MAP_ANONYMOUS,
        -1,
        0n,
      );
      answers.mmapAligned = page > 0n && page % 4096n === 0n ? "yes" : "no";
      if (page > 0n) libc.munmap(page, 4096n);
    } finally {
      libc.close(event);
      libc.close(nul);
    }
    return answers;
  } finally {
    releaseLibc();
  }
}

const EXPECTED = {
  ioctlNoTty: -ENOTTY,
  ioctlBadFd: -ERRNO.EBADF,
  readEof: 0,
  writeReadOnly: -ERRNO.EBADF,
  readEmptyEventfd: -ERRNO.EAGAIN,
  writeEventfd: 8,
  readEventfd: 8,
  counter: 3,
  readShortEventfd: -ERRNO.EINVAL,
  pollNothing: 0,
  openMissing: -ERRNO.ENOENT,
  accessMissing: -ERRNO.ENOENT,
  accessNull: 0,
  uname: 0,
  sysname: "Linux",
  mmapZeroLength: -ERRNO.EINVAL,
  mmapAligned: "yes",
};

Deno.test({
  name: "system calls: the error comes back in the result" +
    (x86Linux ? "" : " [ignored: the in-call routine is x86-64 Linux only]"),
  ignore: !x86Linux,
  async fn(t): Promise<void> {
    const libc = acquireLibc();
    try {
      const sys = syscalls(libc);
      await t.step("the routine is in use here (x86-64 Linux)", () => {
        assert.equal(sys.capture, "in-call");
        assert.equal(syscalls(libc), sys, "one per loaded libc");
      });
      await t.step("it answers like the kernel, errno negated", () => {
        assert.deepEqual(kernelAnswers(sys), EXPECTED);
      });
      await t.step("libc's wrappers plus errno answer the same", () => {
        const fallback = errnoSyscalls(libc);
        assert.equal(fallback.capture, "errno");
        assert.deepEqual(kernelAnswers(fallback), EXPECTED);
      });
      await t.step(
        "errno is neither read nor written: a value left in it changes nothing",
        () => {
          // What a runtime clobber looks like: errno says EAGAIN while the
          // kernel said ENOTTY. The in-call result cannot see it.
          const nul = sys.open(cString("/dev/null"), O_RDONLY);
          try {
            for (let round = 0; round < 1000; round++) {
              setErrno(libc, ERRNO.EAGAIN);
              assert.equal(sys.ioctl(nul, 0x5401n, null), -ENOTTY);
              assert.equal(readErrno(libc), ERRNO.EAGAIN, "errno untouched");
            }
          } finally {
            libc.close(nul);
          }
        },
      );
    } finally {
      releaseLibc();
    }
  },
});

function setErrno(libc: ReturnType<typeof acquireLibc>, value: number): void {
  const address = BigInt(libc.__errno_location());
  libc.copyToAddress(address, new Int32Array([value]), 4n);
}

function readErrno(libc: ReturnType<typeof acquireLibc>): number {
  const cell = new Int32Array(1);
  libc.copyFromAddress(cell, BigInt(libc.__errno_location()), 4n);
  return cell[0];
}

Deno.test({
  name: "a library named by EVTCHN_LIBC sees every call (errno path)" +
    (x86Linux ? "" : " [ignored: the in-call routine is x86-64 Linux only]"),
  ignore: !x86Linux,
  async fn(): Promise<void> {
    const module = new URL("../../backends/linux/_syscall.ts", import.meta.url);
    const libcModule = new URL(
      "../../backends/linux/_libc.ts",
      import.meta.url,
    );
    const code = `
      import { acquireLibc, libcCandidates } from "${libcModule}";
      import { syscalls } from "${module}";
      console.log(libcCandidates()[0], syscalls(acquireLibc()).capture);`;
    const path = "/lib/x86_64-linux-gnu/libc.so.6";
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--no-check", code],
      env: { EVTCHN_LIBC: path, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.equal(new TextDecoder().decode(out.stdout).trim(), `${path} errno`);
  },
});
