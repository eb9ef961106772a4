/*
 * evtchn_client.h - one open /dev/xen/evtchn served by `evtchn serve`: the
 * client side of serve/PROTOCOL.md, shared by libxenevtchn.so.1 and
 * libevtchn_preload.so. Not installed; private to shim/.
 *
 * A device is two Unix stream connections to the server: the control
 * connection (requests and replies) and the wake connection, whose fd is the
 * one programs see (xenevtchn_fd(), or the fd open() returned): the server
 * keeps one byte unread on it exactly while the device's ring is non-empty,
 * so select/poll/epoll on it behave as on the real device.
 */
#ifndef EVTCHN_CLIENT_H
#define EVTCHN_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Where the server listens: $EVTCHN_SOCKET, else this path. */
#define EVC_SOCKET_ENV "EVTCHN_SOCKET"
#define EVC_DEFAULT_SOCKET "/tmp/evtchn.sock"
/* The domain a new device is opened in: $EVTCHN_DOMAIN (decimal), else 0. */
#define EVC_DOMAIN_ENV "EVTCHN_DOMAIN"

/* serve/PROTOCOL.md: version, magic, roles, header sizes, bounds, ops. */
#define EVC_VERSION 1u
#define EVC_MAGIC 0x48435645u /* "EVCH" */
#define EVC_ROLE_CONTROL 0u
#define EVC_ROLE_WAKE 1u
#define EVC_REQUEST_HEADER 8u
#define EVC_REPLY_HEADER 12u
#define EVC_MAX_PAYLOAD 4096u /* PAGE_SIZE, evtchn_read/evtchn_write's cap */
#define EVC_WAKE_OVERFLOW 0x02

enum evc_op {
	EVC_HELLO = 1,
	EVC_BIND_VIRQ = 2,
	EVC_BIND_INTERDOMAIN = 3,
	EVC_BIND_UNBOUND_PORT = 4,
	EVC_UNBIND = 5,
	EVC_NOTIFY = 6,
	EVC_RESET = 7,
	EVC_RESTRICT_DOMID = 8,
	EVC_READ = 9,
	EVC_WRITE = 10,
	EVC_CLOSE = 11,
};

struct evc;

/*
 * Opens a device: connects both connections and shakes hands. `cloexec`
 * and `nonblock` apply to the program-visible (wake) fd, as O_CLOEXEC and
 * O_NONBLOCK would to the device's. Returns NULL with errno: ENOENT (no
 * server), EPROTO (another protocol version), EINVAL (bad EVTCHN_DOMAIN),
 * ENAMETOOLONG (socket path), EIO (server gone mid-handshake), or what the
 * server answered (ENFILE: too many clients).
 */
struct evc *evc_open(int cloexec, int nonblock);

/* The fd programs poll: the wake connection. */
int evc_fd(const struct evc *c);

/* A new descriptor of the wake connection (same readiness, same flags). */
int evc_dup_fd(const struct evc *c, int cloexec);

/*
 * One request: `op` with `len` payload bytes; a reply payload (READ only)
 * goes to `out` (room for `out_cap` bytes). Returns the result (>= 0), or
 * -1 with errno (the server's, or EIO when the server is gone).
 */
long evc_request(struct evc *c, uint8_t op, const void *payload, uint32_t len,
		 void *out, uint32_t out_cap);

/* ioctl(IOCTL_EVTCHN_*) with one u32 argument (or two for INTERDOMAIN). */
long evc_ioctl1(struct evc *c, uint8_t op, uint32_t a);
long evc_ioctl2(struct evc *c, uint8_t op, uint32_t a, uint32_t b);

/*
 * read(2) of the device: whole ports only, at most a page; blocks until a
 * port is pending unless the fd is O_NONBLOCK (then EAGAIN), EFBIG after an
 * overflow, EINTR when a signal without SA_RESTART interrupts the wait.
 */
ssize_t evc_read(struct evc *c, void *buf, size_t count);

/* write(2) of the device: unmasks the listed ports this device owns. */
ssize_t evc_write(struct evc *c, const void *buf, size_t count);

/* Whether the ring overflowed (poll's POLLERR), from the wake bytes. */
int evc_overflowed(struct evc *c);

/*
 * Releases the device: when called by the process that opened it, asks the
 * server to close it and waits until it has (every port unbound); in a
 * forked child only this process's descriptors go. Closes the control
 * connection, and the wake fd when `close_wake`. Frees `c`. Returns 0.
 */
int evc_release(struct evc *c, int close_wake);

/* The close(2) the library itself uses (never an interposed one). */
int evc_sys_close(int fd);

#endif
