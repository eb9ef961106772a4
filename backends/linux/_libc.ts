/**
 * The libc functions the `linux` backend calls, declared once, and the one
 * shared, lazily opened, reference-counted handle on libc.
 *
 * Resolution order of the library: `$EVTCHN_LIBC` (read only when
 * `--allow-env` covers it) and nothing else when it is set, else the
 * absolute multiarch paths of glibc, then the bare soname `libc.so.6`. A
 * candidate that `--allow-ffi` does not cover is skipped, so the narrow
 * `--allow-ffi=/lib/x86_64-linux-gnu/libc.so.6` works as well as plain
 * `--allow-ffi`. When no candidate is allowed at all, Deno's own
 * `Deno.errors.NotCapable` is thrown untouched.
 *
 * Nothing here touches `Deno.UnsafePointer` or `Deno.UnsafePointerView`:
 * Deno checks those against the whole `--allow-ffi` permission, which the
 * narrow form does not grant (they throw `NotCapable` there). Addresses are
 * plain integers (`usize`), and foreign memory is read and written by
 * copying it with libc's own `memcpy` into buffers this module owns.
 *
 * @module
 */

import { EventChannelError } from "../../errors.ts";

// C type aliases, so that each entry below reads like its prototype.
const int = "i32";
const unsignedInt = "u32";
const unsignedLong = "u64";
const sizeT = "usize";
const offT = "i64";
const nfdsT = "u64";
const buf = "buffer";

/**
 * The symbol table. Only Linux x86-64 and aarch64 matter here (`/dev/xen`);
 * there a variadic function (`open`, `ioctl`) receives its first variadic
 * argument exactly as a fixed one, which is what declaring them with fixed
 * parameters relies on (it would be wrong on Apple arm64).
 */
export const LIBC_SYMBOLS = {
  /** `<fcntl.h>` `int open(const char *pathname, int flags, ...)`. */
  open: {
    parameters: [
      buf, // pathname
      int, // flags
    ],
    result: int,
  },
  /** `<unistd.h>` `int close(int fd)`. */
  close: {
    parameters: [
      int, // fd
    ],
    result: int,
  },
  /**
   * `<sys/ioctl.h>` `int ioctl(int fd, unsigned long request, ...)`, with
   * the one variadic argument declared as a buffer (a `struct ioctl_*`).
   */
  ioctl: {
    parameters: [
      int, // fd
      unsignedLong, // request
      buf, // arg
    ],
    result: int,
  },
  /** `<unistd.h>` `ssize_t read(int fd, void *buf, size_t count)`. */
  read: {
    parameters: [
      int, // fd
      buf, // buf
      sizeT, // count
    ],
    // The low 32 bits of the ssize_t in rax: counts here are at most a page
    // (4096) or -1, and an i32 comes back as a number, not a BigInt.
    result: int,
  },
  /** `<unistd.h>` `ssize_t write(int fd, const void *buf, size_t count)`. */
  write: {
    parameters: [
      int, // fd
      buf, // buf
      sizeT, // count
    ],
    // The low 32 bits of the ssize_t in rax: counts here are at most a page
    // (4096) or -1, and an i32 comes back as a number, not a BigInt.
    result: int,
  },
  /**
   * `<poll.h>` `int poll(struct pollfd *fds, nfds_t nfds, int timeout)`.
   * The asynchronous wait (`next()`), hence `nonblocking`: it runs on
   * Deno's blocking pool and its errno is lost (another thread's).
   */
  poll: {
    parameters: [
      buf, // fds
      nfdsT, // nfds
      int, // timeout
    ],
    result: int,
    nonblocking: true,
  },
  /**
   * The same `poll(2)`, run on the calling thread: the synchronous wait of
   * a dedicated loop (`EventChannelHandle.nextSync`, `drain` with a
   * timeout), which blocks its own thread instead of handing the call to
   * Deno's blocking pool and back (a thread switch and a promise per
   * wake-up). Its errno is this thread's, so `EINTR` is seen. Callers bound
   * the timeout (`MAX_SYNC_WAIT_MS`): nothing on this thread, `close()`
   * included, can wake it early.
   */
  pollSync: {
    name: "poll",
    parameters: [
      buf, // fds
      nfdsT, // nfds
      int, // timeout
    ],
    result: int,
  },
  /** `<sys/eventfd.h>` `int eventfd(unsigned int initval, int flags)`. */
  eventfd: {
    parameters: [
      unsignedInt, // initval
      int, // flags
    ],
    result: int,
  },
  /**
   * glibc `int *__errno_location(void)`: the address of this thread's
   * `errno`, as an integer (see the module comment for why not a pointer).
   */
  __errno_location: { parameters: [], result: sizeT },
  /**
   * `<string.h>` `void *memcpy(void *dest, const void *src, size_t n)` from
   * foreign memory at an address into a buffer of ours.
   */
  copyFromAddress: {
    name: "memcpy",
    parameters: [
      buf, // dest
      sizeT, // src, an address
      sizeT, // n
    ],
    result: "void",
  },
  /** `memcpy` from a buffer of ours into foreign memory at an address. */
  copyToAddress: {
    name: "memcpy",
    parameters: [
      sizeT, // dest, an address
      buf, // src
      sizeT, // n
    ],
    result: "void",
  },
  /**
   * `<sys/mman.h>` `void *mmap(void *addr, size_t length, int prot,
   * int flags, int fd, off_t offset)`, addresses as integers.
   */
  mmap: {
    parameters: [
      sizeT, // addr
      sizeT, // length
      int, // prot
      int, // flags
      int, // fd
      offT, // offset
    ],
    result: sizeT,
  },
  /**
   * `<sys/mman.h>` `int mprotect(void *addr, size_t len, int prot)`: makes
   * the system-call routine's page executable (`_syscall.ts`).
   */
  mprotect: {
    parameters: [
      sizeT, // addr
      sizeT, // len
      int, // prot
    ],
    result: int,
  },
  /**
   * `<stdlib.h>` `void *bsearch(const void *key, const void *base,
   * size_t nmemb, size_t size, int (*compar)(const void *, const void *))`.
   * With one element it calls `compar(key, base)` exactly once: how
   * `_syscall.ts` calls its routine (an address, passed as an integer)
   * without a pointer API.
   */
  bsearch: {
    parameters: [
      buf, // key
      buf, // base
      sizeT, // nmemb
      sizeT, // size
      sizeT, // compar, an address
    ],
    result: sizeT,
  },
  /** `<sys/mman.h>` `int munmap(void *addr, size_t length)`. */
  munmap: {
    parameters: [
      sizeT, // addr
      sizeT, // length
    ],
    result: int,
  },
  /** `<sys/mman.h>` `int madvise(void *addr, size_t length, int advice)`. */
  madvise: {
    parameters: [
      sizeT, // addr
      sizeT, // length
      int, // advice
    ],
    result: int,
  },
  /**
   * `<unistd.h>` `int access(const char *pathname, int mode)`: whether a
   * device exists and may be opened, through the FFI grant (Deno's own
   * `stat` of `/dev` needs `--allow-all`).
   */
  access: {
    parameters: [
      buf, // pathname
      int, // mode
    ],
    result: int,
  },
  /**
   * `<sys/utsname.h>` `int uname(struct utsname *buf)`: the kernel release
   * without `--allow-sys`.
   */
  uname: {
    parameters: [
      buf, // buf
    ],
    result: int,
  },
} as const satisfies Deno.ForeignLibraryInterface;

/** The loaded symbols. */
export type Libc = Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"];

// <fcntl.h> (x86-64 and aarch64 share these values)
/** `O_RDONLY`. */
export const O_RDONLY = 0o0;
/** `O_RDWR`. */
export const O_RDWR = 0o2;
/** `O_NONBLOCK`. */
export const O_NONBLOCK = 0o4000;
/** `O_CLOEXEC`. */
export const O_CLOEXEC = 0o2000000;

// <sys/eventfd.h>
/** `EFD_NONBLOCK` (= `O_NONBLOCK`). */
export const EFD_NONBLOCK = 0o4000;
/** `EFD_CLOEXEC` (= `O_CLOEXEC`). */
export const EFD_CLOEXEC = 0o2000000;

// <poll.h>: struct pollfd { int fd; short events; short revents; } (8 bytes)
/** `sizeof(struct pollfd)`. */
export const POLLFD_SIZE = 8;
/** `offsetof(struct pollfd, fd)`. */
export const POLLFD_FD = 0;
/** `offsetof(struct pollfd, events)`. */
export const POLLFD_EVENTS = 4;
/** `offsetof(struct pollfd, revents)`. */
export const POLLFD_REVENTS = 6;
/** `POLLIN`. */
export const POLLIN = 0x001;
/** `POLLERR`. */
export const POLLERR = 0x008;
/** `POLLHUP`. */
export const POLLHUP = 0x010;
/** `POLLNVAL`. */
export const POLLNVAL = 0x020;

// <sys/mman.h>
/** `PROT_READ`. */
export const PROT_READ = 0x1;
/** `PROT_WRITE`. */
export const PROT_WRITE = 0x2;
/** `PROT_EXEC`. */
export const PROT_EXEC = 0x4;
/** `MAP_SHARED`. */
export const MAP_SHARED = 0x01;
/** `MAP_PRIVATE`. */
export const MAP_PRIVATE = 0x02;
/** `MAP_ANONYMOUS`. */
export const MAP_ANONYMOUS = 0x20;
/** `MAP_LOCKED` (x86; aarch64 uses the same value). */
export const MAP_LOCKED = 0x2000;
/** `MAP_FAILED`, `(void *)-1`, as an address. */
export const MAP_FAILED = 0xffff_ffff_ffff_ffffn;
/** `MADV_DONTFORK`. */
export const MADV_DONTFORK = 10;

// <unistd.h> access(2) modes
/** `F_OK`: the file exists. */
export const F_OK = 0;
/** `W_OK`. */
export const W_OK = 2;
/** `R_OK`. */
export const R_OK = 4;

// <sys/utsname.h>: six char[_UTSNAME_LENGTH] fields, 65 bytes each on Linux
/** `sizeof(struct utsname)` on Linux (glibc and the kernel agree). */
export const UTSNAME_SIZE = 6 * 65;
/** `offsetof(struct utsname, release)`. */
export const UTSNAME_RELEASE = 2 * 65;
/** `sizeof(((struct utsname *)0)->release)`. */
export const UTSNAME_FIELD = 65;

/** The environment variable naming the C library to open. */
export const LIBC_ENV = "EVTCHN_LIBC";

let library: Deno.DynamicLibrary<typeof LIBC_SYMBOLS> | undefined;
let users = 0;
// Whether the open library is the one $EVTCHN_LIBC named.
let overridden = false;

function envOverride(): string | undefined {
  const descriptor = { name: "env", variable: LIBC_ENV } as const;
  if (Deno.permissions.querySync(descriptor).state !== "granted") {
    return undefined;
  }
  const value = Deno.env.get(LIBC_ENV);
  return value === undefined || value === "" ? undefined : value;
}

/**
 * Where libc may be, best first: the override alone when it is set, else the
 * absolute multiarch paths and the soname.
 *
 * @returns The paths to try, in order.
 */
export function libcCandidates(): string[] {
  const override = envOverride();
  // A library the user named is never silently swapped for another one.
  if (override !== undefined) return [override];
  const triple = Deno.build.arch === "aarch64"
    ? "aarch64-linux-gnu"
    : "x86_64-linux-gnu";
  return [
    `/lib/${triple}/libc.so.6`,
    `/usr/lib/${triple}/libc.so.6`,
    "/lib64/libc.so.6",
    "/usr/lib64/libc.so.6",
    "libc.so.6",
  ];
}

function openOverride(path: string): Deno.DynamicLibrary<typeof LIBC_SYMBOLS> {
  if (Deno.permissions.querySync({ name: "ffi", path }).state !== "granted") {
    throw new EventChannelError("dlopen", "EACCES", {
      argument: LIBC_ENV,
      value: path,
      detail: `--allow-ffi does not cover it: grant --allow-ffi=${path} ` +
        `(or plain --allow-ffi), or unset ${LIBC_ENV}`,
    });
  }
  try {
    return Deno.dlopen(path, LIBC_SYMBOLS);
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) throw error;
    // Deno repeats its own prefix; the dynamic loader's words come last.
    const message = (error as Error).message.split("\n")[0]
      .replace(/^(Could not open library: )+/, "");
    const missing = /No such file/i.test(message);
    throw new EventChannelError("dlopen", missing ? "ENOENT" : "EINVAL", {
      argument: LIBC_ENV,
      value: path,
      detail:
        `${missing ? "no such file" : `not a usable C library (${message})`}` +
        `: point ${LIBC_ENV} at a libc.so.6, or unset ${LIBC_ENV}`,
      cause: error,
    });
  }
}

function open(): Deno.DynamicLibrary<typeof LIBC_SYMBOLS> {
  const override = envOverride();
  if (override !== undefined) return openOverride(override);
  const failures: string[] = [];
  let lastError: unknown;
  for (const path of libcCandidates()) {
    const permission = Deno.permissions.querySync({ name: "ffi", path });
    if (permission.state !== "granted") continue;
    try {
      return Deno.dlopen(path, LIBC_SYMBOLS);
    } catch (error) {
      if (error instanceof Deno.errors.NotCapable) throw error;
      failures.push(`${path}: ${(error as Error).message}`);
      lastError = error;
    }
  }
  if (failures.length === 0) {
    // Nothing is allowed: let Deno name the missing --allow-ffi itself.
    return Deno.dlopen("libc.so.6", LIBC_SYMBOLS);
  }
  throw new Error(
    `Cannot open the C library; tried:\n  ${failures.join("\n  ")}\n` +
      `Set ${LIBC_ENV} to its path (with --allow-env).`,
    { cause: lastError },
  );
}

/**
 * Takes a reference on libc, opening it on first use.
 *
 * @returns The symbols; give the reference back with {@linkcode releaseLibc}.
 * @throws {Deno.errors.NotCapable} without `--allow-ffi` (untouched).
 * @throws {EventChannelError} `dlopen` when `EVTCHN_LIBC` names a library
 * that `--allow-ffi` does not cover (`EACCES`), that does not exist
 * (`ENOENT`) or that is not a usable C library (`EINVAL`).
 * @throws {Error} when no candidate library can be opened (with `cause`).
 */
export function acquireLibc(): Libc {
  if (library === undefined) {
    overridden = envOverride() !== undefined;
    library = open();
  }
  users++;
  return library.symbols;
}

/** Gives back one reference; the last one closes the library. */
export function releaseLibc(): void {
  if (users === 0) return;
  users--;
  if (users === 0 && library !== undefined) {
    library.close();
    library = undefined;
    errnoAddress = undefined;
  }
}

/**
 * Whether the loaded library is the one `$EVTCHN_LIBC` named (such as the
 * project's `libevtchn_preload.so`): its functions, not the kernel, must
 * then answer every call (`_syscall.ts` does not bypass them).
 *
 * @returns `true` for the override, `false` for the system C library.
 */
export function libcOverridden(): boolean {
  return overridden;
}

/**
 * How many references are held (for leak tests).
 *
 * @returns The count.
 */
export function libcUsers(): number {
  return users;
}

// errno is read by copying it into this cell: no pointer object, so the
// narrow --allow-ffi=<libc> grant suffices.
const errnoCell = new Int32Array(1);
const ERRNO_SIZE = 4n;
// The address of errno for the one thread that makes synchronous FFI calls
// here (the isolate's own; a worker has its own copy of this module).
let errnoAddress: bigint | undefined;

/**
 * This thread's `errno`. Call it straight after the failing synchronous call,
 * before any other FFI call (neither `__errno_location` nor `memcpy` changes
 * it).
 *
 * @param libc The symbols.
 * @returns The errno value.
 */
export function errno(libc: Libc): number {
  errnoAddress ??= BigInt(libc.__errno_location());
  libc.copyFromAddress(errnoCell, errnoAddress, ERRNO_SIZE);
  return errnoCell[0];
}

const encoder = new TextEncoder();

/**
 * A NUL-terminated C string, UTF-8 encoded (never sized by `s.length`).
 *
 * @param s The string.
 * @returns Its bytes followed by a NUL.
 */
export function cString(s: string): Uint8Array<ArrayBuffer> {
  return encoder.encode(`${s}\0`);
}
