/**
 * The system calls whose failure the `linux` backend reports, made so that
 * the error comes back in the call's own result (`-errno`), never through
 * `errno`.
 *
 * Why: `errno` is a thread-local the C library sets when a call fails, and
 * reading it is a second FFI call. Between the two, the runtime may run its
 * own native code on the JS thread (a V8 interrupt, garbage collection
 * waiting for its helper threads), and that code can leave its own error in
 * `errno`. This is no theory: on real Xen, under `strace -f`, a failing
 * `IOCTL_EVTCHN_BIND_VIRQ` (`EACCES`) was followed on the same thread by a
 * `futex` wait that failed with `EAGAIN`, and the `errno` read next said
 * `EAGAIN` (issue 18; Dart's FFI has the same problem, dart-lang/sdk#38832).
 * Deno's FFI cannot capture `errno` inside the call, so this module does
 * what the C library's wrappers do minus the `errno` part: it enters the
 * kernel itself, through a 58-byte x86-64 routine (listed below) that copies
 * the number and arguments from a block of ours into registers, executes
 * `syscall`, and stores the kernel's return value (`-errno` on failure) back
 * into the block before anything else can run.
 *
 * How the routine is called without a pointer API (the narrow
 * `--allow-ffi=<libc>` grant refuses `Deno.UnsafeFnPointer`): it is handed
 * to libc's `bsearch` as the comparison function. With one element,
 * `bsearch(key, base, 1, size, compar)` calls `compar(key, base)` exactly
 * once, with `key` = our block and `base` = the buffer argument of the
 * system call, which the routine puts into the argument slot the block
 * names. The routine lives in one page of our own, mapped read-write,
 * filled, then made read-execute (never both), once per isolate, and never
 * unmapped (a call may be in flight on no other thread, but the page is
 * cheap and unmapping buys nothing).
 *
 * Before the routine is trusted it is tried: `ioctl(-1, 0, NULL)` must come
 * back as `-EBADF`. Where it cannot be set up (another architecture than
 * x86-64, or a kernel that refuses executable anonymous memory), and when
 * `$EVTCHN_LIBC` names a library to stand in for the C library (whose
 * functions must then see every call), the calls go through that library
 * and read `errno` right after, and {@linkcode Syscalls.capture} says
 * `"errno"`: a clobbered errno remains possible there.
 *
 * @module
 */

import {
  errno,
  type Libc,
  libcOverridden,
  MAP_ANONYMOUS,
  MAP_FAILED,
  MAP_PRIVATE,
  PROT_EXEC,
  PROT_READ,
  PROT_WRITE,
} from "./_libc.ts";
import { PAGE_SIZE } from "../../xen/page.ts";

/** A buffer argument of a system call (`null` is the NULL pointer). */
export type SyscallBuffer = Parameters<Libc["ioctl"]>[2];

/**
 * The system calls, each returning what the kernel returned: a non-negative
 * result, or `-errno`.
 */
export interface Syscalls {
  /**
   * `"in-call"`: the kernel's own return value carries the error (the
   * routine above). `"errno"`: libc's wrapper, then `errno` read in a second
   * call (the fallback).
   */
  readonly capture: "in-call" | "errno";
  /** `ioctl(fd, request, arg)`. */
  ioctl(fd: number, request: bigint, arg: SyscallBuffer): number;
  /** `read(fd, buffer, count)`. */
  read(fd: number, buffer: SyscallBuffer, count: bigint): number;
  /** `write(fd, buffer, count)`. */
  write(fd: number, buffer: SyscallBuffer, count: bigint): number;
  /** `open(path, flags)` (as `openat(AT_FDCWD, path, flags, 0)`). */
  open(path: SyscallBuffer, flags: number): number;
  /** `poll(fds, nfds, timeout)` on the calling thread. */
  poll(fds: SyscallBuffer, nfds: bigint, timeoutMs: number): number;
  /** `access(path, mode)`. */
  access(path: SyscallBuffer, mode: number): number;
  /** `uname(buffer)`. */
  uname(buffer: SyscallBuffer): number;
  /** `eventfd(initval, flags)` (as `eventfd2`). */
  eventfd(initval: number, flags: number): number;
  /**
   * `mmap(NULL, length, prot, flags, fd, offset)`.
   *
   * @returns The address, or `-errno` (a negative bigint).
   */
  mmap(
    length: bigint,
    prot: number,
    flags: number,
    fd: number,
    offset: bigint,
  ): bigint;
}

/**
 * The routine, x86-64 System V: `int compar(long *block, void *buffer)`,
 * one row per instruction: its encoding (hex) and its assembly. Block
 * layout, 8 bytes per slot: [0] system call number, [1..6] its arguments,
 * [7] which argument (1..6) receives `buffer` (0: none), [8] the kernel's
 * return value. `syscall` clobbers rcx and r11, so the block pointer is kept
 * in rbx (callee-saved, pushed). `endbr64` first, a no-op without CET, marks
 * it a valid target of bsearch's indirect call where indirect-branch
 * tracking is enforced. Encoded with GNU as 2.40 (`as --64`, Intel syntax);
 * `tests/linux/syscall_test.ts` assembles the listing again, when `as` is
 * present, and compares.
 */
const X86_64_ROUTINE_ROWS: readonly (readonly [hex: string, asm: string])[] = [
  ["f30f1efa", "endbr64"],
  ["53", "push rbx"],
  ["4889fb", "mov rbx, rdi"],
  ["488b4b38", "mov rcx, [rbx+56]"],
  ["4885c9", "test rcx, rcx"],
  ["7404", "jz 1f"],
  ["488934cb", "mov [rbx+rcx*8], rsi"],
  ["", "1:"],
  ["488b03", "mov rax, [rbx]"],
  ["488b7b08", "mov rdi, [rbx+8]"],
  ["488b7310", "mov rsi, [rbx+16]"],
  ["488b5318", "mov rdx, [rbx+24]"],
  ["4c8b5320", "mov r10, [rbx+32]"],
  ["4c8b4328", "mov r8, [rbx+40]"],
  ["4c8b4b30", "mov r9, [rbx+48]"],
  ["0f05", "syscall"],
  ["48894340", "mov [rbx+64], rax"],
  ["5b", "pop rbx"],
  ["31c0", "xor eax, eax"],
  ["c3", "ret"],
];

/** The routine's assembly listing (Intel syntax), one line per row. */
export const X86_64_ROUTINE_LISTING: string = X86_64_ROUTINE_ROWS
  .map(([, asm]) => asm).join("\n");

/** The routine's machine code, from the rows' encodings. */
export const X86_64_ROUTINE: Uint8Array<ArrayBuffer> = new Uint8Array(
  X86_64_ROUTINE_ROWS.flatMap(([hex]) =>
    Array.from(
      { length: hex.length / 2 },
      (_, i) => parseInt(hex.slice(2 * i, 2 * i + 2), 16),
    )
  ),
);

/**
 * x86-64 system call numbers, from Linux's
 * `arch/x86/entry/syscalls/syscall_64.tbl`.
 */
const NR = {
  read: 0,
  write: 1,
  poll: 7,
  mmap: 9,
  ioctl: 16,
  access: 21,
  uname: 63,
  openat: 257,
  eventfd2: 290,
} as const;

/** `AT_FDCWD`, `<linux/fcntl.h>`: `openat` relative to the cwd. */
const AT_FDCWD = -100;
/** `EBADF`, what the self-test's `ioctl(-1, ...)` must return (negated). */
const EBADF = 9;
/** One page for the routine. */
const ROUTINE_PAGE = BigInt(PAGE_SIZE);

// Block slots (8 bytes each).
const SLOT_NUMBER = 0;
const SLOT_BUFFER = 7;
const SLOT_RESULT = 8;
const BLOCK_SLOTS = 9;

// bsearch's nmemb and size.
const ONE = 1n;

// The routine's address, once per isolate: undefined until tried, 0n when it
// cannot be set up here.
let routine: bigint | undefined;

function setUpRoutine(libc: Libc): bigint {
  if (Deno.build.arch !== "x86_64" || Deno.build.os !== "linux") return 0n;
  const page = BigInt(libc.mmap(
    0n,
    ROUTINE_PAGE,
    PROT_READ | PROT_WRITE,
    MAP_PRIVATE | MAP_ANONYMOUS,
    -1,
    0n,
  ));
  if (page === MAP_FAILED) return 0n;
  libc.copyToAddress(page, X86_64_ROUTINE, BigInt(X86_64_ROUTINE.length));
  if (libc.mprotect(page, ROUTINE_PAGE, PROT_READ | PROT_EXEC) !== 0) {
    libc.munmap(page, ROUTINE_PAGE);
    return 0n;
  }
  return page;
}

/** Calls through the routine: one block, reused (one JS thread). */
class InCall implements Syscalls {
  readonly capture = "in-call";
  readonly #bsearch: Libc["bsearch"];
  readonly #routine: bigint;
  readonly #words: Int32Array<ArrayBuffer>;
  readonly #wide: BigInt64Array<ArrayBuffer>;

  constructor(libc: Libc, address: bigint) {
    this.#bsearch = libc.bsearch;
    this.#routine = address;
    // An ArrayBuffer of its own: off the V8 heap, so it never moves.
    const block = new ArrayBuffer(BLOCK_SLOTS * 8);
    this.#words = new Int32Array(block);
    this.#wide = new BigInt64Array(block);
  }

  // Slot i from an int32 (sign-extended to 64 bits).
  #int(slot: number, value: number): void {
    this.#words[2 * slot] = value;
    this.#words[2 * slot + 1] = value >> 31;
  }

  // Enters the kernel; the int32 result (every call here but mmap returns
  // one: a count, an fd, 0, or -errno).
  #enter(nr: number, bufferSlot: number, buffer: SyscallBuffer): number {
    const words = this.#words;
    words[2 * SLOT_NUMBER] = nr;
    words[2 * SLOT_NUMBER + 1] = 0;
    words[2 * SLOT_BUFFER] = bufferSlot;
    words[2 * SLOT_BUFFER + 1] = 0;
    this.#bsearch(words, buffer, ONE, ONE, this.#routine);
    return words[2 * SLOT_RESULT];
  }

  ioctl(fd: number, request: bigint, arg: SyscallBuffer): number {
    this.#int(1, fd);
    this.#wide[2] = request;
    return this.#enter(NR.ioctl, 3, arg);
  }

  read(fd: number, buffer: SyscallBuffer, count: bigint): number {
    this.#int(1, fd);
    this.#wide[3] = count;
    return this.#enter(NR.read, 2, buffer);
  }

  write(fd: number, buffer: SyscallBuffer, count: bigint): number {
    this.#int(1, fd);
    this.#wide[3] = count;
    return this.#enter(NR.write, 2, buffer);
  }

  open(path: SyscallBuffer, flags: number): number {
    this.#int(1, AT_FDCWD);
    this.#int(3, flags);
    this.#int(4, 0);
    return this.#enter(NR.openat, 2, path);
  }

  poll(fds: SyscallBuffer, nfds: bigint, timeoutMs: number): number {
    this.#wide[2] = nfds;
    this.#int(3, timeoutMs);
    return this.#enter(NR.poll, 1, fds);
  }

  access(path: SyscallBuffer, mode: number): number {
    this.#int(2, mode);
    return this.#enter(NR.access, 1, path);
  }

  uname(buffer: SyscallBuffer): number {
    return this.#enter(NR.uname, 1, buffer);
  }

  eventfd(initval: number, flags: number): number {
    this.#int(1, initval);
    this.#int(2, flags);
    return this.#enter(NR.eventfd2, 0, null);
  }

  mmap(
    length: bigint,
    prot: number,
    flags: number,
    fd: number,
    offset: bigint,
  ): bigint {
    this.#int(1, 0);
    this.#wide[2] = length;
    this.#int(3, prot);
    this.#int(4, flags);
    this.#int(5, fd);
    this.#wide[6] = offset;
    this.#enter(NR.mmap, 0, null);
    return this.#wide[SLOT_RESULT];
  }
}

/** The fallback: libc's wrappers, then `errno` (see the module comment). */
class ThroughErrno implements Syscalls {
  readonly capture = "errno";
  readonly #libc: Libc;

  constructor(libc: Libc) {
    this.#libc = libc;
  }

  #result(result: number): number {
    return result < 0 ? -errno(this.#libc) : result;
  }

  ioctl(fd: number, request: bigint, arg: SyscallBuffer): number {
    return this.#result(this.#libc.ioctl(fd, request, arg));
  }

  read(fd: number, buffer: SyscallBuffer, count: bigint): number {
    return this.#result(this.#libc.read(fd, buffer, count));
  }

  write(fd: number, buffer: SyscallBuffer, count: bigint): number {
    return this.#result(this.#libc.write(fd, buffer, count));
  }

  open(path: SyscallBuffer, flags: number): number {
    return this.#result(this.#libc.open(path, flags));
  }

  poll(fds: SyscallBuffer, nfds: bigint, timeoutMs: number): number {
    return this.#result(this.#libc.pollSync(fds, nfds, timeoutMs));
  }

  access(path: SyscallBuffer, mode: number): number {
    return this.#result(this.#libc.access(path, mode));
  }

  uname(buffer: SyscallBuffer): number {
    return this.#result(this.#libc.uname(buffer));
  }

  eventfd(initval: number, flags: number): number {
    return this.#result(this.#libc.eventfd(initval, flags));
  }

  mmap(
    length: bigint,
    prot: number,
    flags: number,
    fd: number,
    offset: bigint,
  ): bigint {
    const page = BigInt(this.#libc.mmap(0n, length, prot, flags, fd, offset));
    return page === MAP_FAILED ? -BigInt(errno(this.#libc)) : page;
  }
}

// One Syscalls per loaded libc (its bsearch is that library's).
const bound = new WeakMap<Libc, Syscalls>();

/**
 * The system calls for `libc` (memoized per loaded library): in-call error
 * capture where the routine works, else the `errno` fallback.
 *
 * @param libc The symbols, from `acquireLibc()`.
 * @returns The calls.
 */
export function syscalls(libc: Libc): Syscalls {
  let calls = bound.get(libc);
  if (calls !== undefined) return calls;
  // A library named by $EVTCHN_LIBC stands in for the kernel (the preload
  // library emulates /dev/xen/evtchn): its functions must see every call.
  if (!libcOverridden()) routine ??= setUpRoutine(libc);
  if (routine !== undefined && routine !== 0n && !libcOverridden()) {
    const inCall = new InCall(libc, routine);
    // Trust it only once it answers like the kernel: EBADF for fd -1.
    if (inCall.ioctl(-1, 0n, null) === -EBADF) calls = inCall;
    else routine = 0n;
  }
  calls ??= new ThroughErrno(libc);
  bound.set(libc, calls);
  return calls;
}

/**
 * Which fallback to use, for tests: the `errno` path on the same libc.
 *
 * @param libc The symbols.
 * @returns The `errno`-reading calls.
 */
export function errnoSyscalls(libc: Libc): Syscalls {
  return new ThroughErrno(libc);
}
