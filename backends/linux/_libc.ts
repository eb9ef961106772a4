/**
 * The libc functions the `linux` backend calls, declared once, and the one
 * shared, lazily opened, reference-counted handle on libc.
 *
 * Resolution order of the library: `$EVTCHN_LIBC` (read only when
 * `--allow-env` covers it), then the absolute multiarch paths of glibc, then
 * the bare soname `libc.so.6`. A candidate that `--allow-ffi` does not cover
 * is skipped, so the narrow `--allow-ffi=/lib/x86_64-linux-gnu/libc.so.6`
 * works as well as plain `--allow-ffi`. When no candidate is allowed at all,
 * Deno's own `Deno.errors.NotCapable` is thrown untouched.
 *
 * @module
 */

// C type aliases, so that each entry below reads like its prototype.
const int = "i32";
const unsignedInt = "u32";
const unsignedLong = "u64";
const sizeT = "usize";
const offT = "i64";
const nfdsT = "u64";
const ptr = "pointer";
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
   * The only blocking call, hence the only `nonblocking` one: it runs on
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
  /** `<sys/eventfd.h>` `int eventfd(unsigned int initval, int flags)`. */
  eventfd: {
    parameters: [
      unsignedInt, // initval
      int, // flags
    ],
    result: int,
  },
  /** glibc `int *__errno_location(void)`: this thread's `errno`. */
  __errno_location: { parameters: [], result: ptr },
  /**
   * `<sys/mman.h>` `void *mmap(void *addr, size_t length, int prot,
   * int flags, int fd, off_t offset)`.
   */
  mmap: {
    parameters: [
      ptr, // addr
      sizeT, // length
      int, // prot
      int, // flags
      int, // fd
      offT, // offset
    ],
    result: ptr,
  },
  /** `<sys/mman.h>` `int munmap(void *addr, size_t length)`. */
  munmap: {
    parameters: [
      ptr, // addr
      sizeT, // length
    ],
    result: int,
  },
  /** `<sys/mman.h>` `int madvise(void *addr, size_t length, int advice)`. */
  madvise: {
    parameters: [
      ptr, // addr
      sizeT, // length
      int, // advice
    ],
    result: int,
  },
} as const satisfies Deno.ForeignLibraryInterface;

/** The loaded symbols. */
export type Libc = Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"];

// <fcntl.h> (x86-64 and aarch64 share these values)
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
/** `MAP_SHARED`. */
export const MAP_SHARED = 0x01;
/** `MAP_PRIVATE`. */
export const MAP_PRIVATE = 0x02;
/** `MAP_ANONYMOUS`. */
export const MAP_ANONYMOUS = 0x20;
/** `MAP_LOCKED` (x86; aarch64 uses the same value). */
export const MAP_LOCKED = 0x2000;
/** `MAP_FAILED`, `(void *)-1`, as the address `Deno.UnsafePointer.value` gives. */
export const MAP_FAILED = 0xffff_ffff_ffff_ffffn;
/** `MADV_DONTFORK`. */
export const MADV_DONTFORK = 10;

/** The environment variable naming the C library to open. */
export const LIBC_ENV = "EVTCHN_LIBC";

let library: Deno.DynamicLibrary<typeof LIBC_SYMBOLS> | undefined;
let users = 0;

function envOverride(): string | undefined {
  const descriptor = { name: "env", variable: LIBC_ENV } as const;
  if (Deno.permissions.querySync(descriptor).state !== "granted") {
    return undefined;
  }
  const value = Deno.env.get(LIBC_ENV);
  return value === undefined || value === "" ? undefined : value;
}

/**
 * Where libc may be, best first: the override, the absolute multiarch paths,
 * the soname.
 */
export function libcCandidates(): string[] {
  const triple = Deno.build.arch === "aarch64"
    ? "aarch64-linux-gnu"
    : "x86_64-linux-gnu";
  const override = envOverride();
  return [
    ...(override === undefined ? [] : [override]),
    `/lib/${triple}/libc.so.6`,
    `/usr/lib/${triple}/libc.so.6`,
    "/lib64/libc.so.6",
    "/usr/lib64/libc.so.6",
    "libc.so.6",
  ];
}

function open(): Deno.DynamicLibrary<typeof LIBC_SYMBOLS> {
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
 * @throws {Error} when no candidate library can be opened (with `cause`).
 */
export function acquireLibc(): Libc {
  library ??= open();
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
  }
}

/** How many references are held (for leak tests). */
export function libcUsers(): number {
  return users;
}

/**
 * This thread's `errno`. Call it straight after the failing synchronous call,
 * before any other FFI call.
 *
 * @param libc The symbols.
 * @returns The errno value.
 */
export function errno(libc: Libc): number {
  const location = libc.__errno_location();
  return location === null
    ? 0
    : new Deno.UnsafePointerView(location).getInt32();
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
