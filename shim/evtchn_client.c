/*
 * evtchn_client.c - the client side of serve/PROTOCOL.md (see
 * evtchn_client.h). Only send/recv/socket/connect and raw syscalls are used,
 * so that the LD_PRELOAD library's own read/write/close/fcntl/poll are never
 * re-entered from here.
 */
#define _GNU_SOURCE
#include "evtchn_client.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

struct evc {
	int ctl;	/* control connection */
	int wake;	/* wake connection: the program's fd */
	pid_t owner;	/* the process that opened it */
	int broken;	/* the server went away: every request fails EIO */
	pthread_mutex_t lock; /* one request/reply at a time */
};

int evc_sys_close(int fd)
{
	return (int)syscall(SYS_close, fd);
}

static int sys_getfl(int fd)
{
	return (int)syscall(SYS_fcntl, fd, F_GETFL);
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* Waits (uninterruptibly: a frame is never abandoned half-way) for fd. */
static int wait_fd(int fd, short events)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	for (;;) {
		long n = syscall(SYS_ppoll, &pfd, 1, NULL, NULL, (size_t)8);
		if (n >= 0 || errno != EINTR)
			return n < 0 ? -1 : 0;
	}
}

static int send_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN && wait_fd(fd, POLLOUT) == 0)
				continue;
			errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Receives exactly len bytes; EIO on EOF or error. */
static int recv_all(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len > 0) {
		ssize_t n = recv(fd, p, len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN && wait_fd(fd, POLLIN) == 0)
				continue;
			errno = EIO;
			return -1;
		}
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int connect_server(int cloexec)
{
	const char *path = getenv(EVC_SOCKET_ENV);
	if (path == NULL || path[0] == '\0')
		path = EVC_DEFAULT_SOCKET;
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof addr.sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(addr.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | (cloexec ? SOCK_CLOEXEC : 0), 0);
	if (fd < 0)
		return -1;
	while (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
		if (errno == EINTR)
			continue;
		int e = errno;
		evc_sys_close(fd);
		/* no server: as open() of a missing device node */
		errno = (e == ECONNREFUSED || e == ENOTDIR) ? ENOENT : e;
		return -1;
	}
	return fd;
}

/* HELLO on fd; the reply's payload (up to 16 bytes) goes to out. */
static int hello(int fd, uint32_t role, uint64_t value, uint8_t out[16])
{
	uint8_t frame[EVC_REQUEST_HEADER + 16] = { EVC_HELLO };
	put32(frame + 4, 16);
	put32(frame + 8, EVC_MAGIC);
	frame[12] = (uint8_t)EVC_VERSION;
	frame[13] = (uint8_t)(EVC_VERSION >> 8);
	frame[14] = (uint8_t)role;
	frame[15] = (uint8_t)(role >> 8);
	put32(frame + 16, (uint32_t)value);
	put32(frame + 20, (uint32_t)(value >> 32));
	if (send_all(fd, frame, sizeof frame) < 0)
		return -1;
	uint8_t reply[EVC_REPLY_HEADER];
	if (recv_all(fd, reply, sizeof reply) < 0)
		return -1;
	int32_t result = (int32_t)get32(reply + 4);
	uint32_t len = get32(reply + 8);
	if (reply[0] != EVC_HELLO || len > 16) {
		errno = EPROTO;
		return -1;
	}
	memset(out, 0, 16);
	if (len > 0 && recv_all(fd, out, len) < 0)
		return -1;
	if (result < 0) {
		errno = -result;
		return -1;
	}
	return 0;
}

static int parse_domain(uint32_t *domain)
{
	const char *text = getenv(EVC_DOMAIN_ENV);
	*domain = 0;
	if (text == NULL || text[0] == '\0')
		return 0;
	char *end;
	errno = 0;
	unsigned long v = strtoul(text, &end, 10);
	/* domU ids stop below DOMID_FIRST_RESERVED (0x7ff0) */
	if (errno != 0 || *end != '\0' || text[0] < '0' || text[0] > '9' ||
	    v >= 0x7ff0) {
		errno = EINVAL;
		return -1;
	}
	*domain = (uint32_t)v;
	return 0;
}

struct evc *evc_open(int cloexec, int nonblock)
{
	uint32_t domain;
	if (parse_domain(&domain) < 0)
		return NULL;
	struct evc *c = calloc(1, sizeof *c);
	if (c == NULL)
		return NULL;
	c->ctl = c->wake = -1;
	c->owner = getpid();
	pthread_mutex_init(&c->lock, NULL);
	uint8_t out[16];
	c->ctl = connect_server(cloexec);
	if (c->ctl < 0 || hello(c->ctl, EVC_ROLE_CONTROL, domain, out) < 0)
		goto fail;
	uint64_t token = (uint64_t)get32(out + 8) | (uint64_t)get32(out + 12) << 32;
	c->wake = connect_server(cloexec);
	if (c->wake < 0 || hello(c->wake, EVC_ROLE_WAKE, token, out) < 0)
		goto fail;
	if (nonblock &&
	    syscall(SYS_fcntl, c->wake, F_SETFL, sys_getfl(c->wake) | O_NONBLOCK) < 0)
		goto fail;
	return c;
fail:;
	int e = errno;
	if (c->wake >= 0)
		evc_sys_close(c->wake);
	if (c->ctl >= 0)
		evc_sys_close(c->ctl);
	pthread_mutex_destroy(&c->lock);
	free(c);
	errno = e;
	return NULL;
}

int evc_fd(const struct evc *c)
{
	return c->wake;
}

int evc_dup_fd(const struct evc *c, int cloexec)
{
	return (int)syscall(SYS_fcntl, c->wake, cloexec ? F_DUPFD_CLOEXEC : F_DUPFD, 0);
}

/* Consumes readiness bytes the server has stopped standing behind. */
static int drain(struct evc *c, unsigned n)
{
	uint8_t bytes[2];
	if (n > sizeof bytes)
		return -1;
	return n == 0 ? 0 : recv_all(c->wake, bytes, n);
}

long evc_request(struct evc *c, uint8_t op, const void *payload, uint32_t len,
		 void *out, uint32_t out_cap)
{
	uint8_t header[EVC_REQUEST_HEADER] = { op };
	uint8_t reply[EVC_REPLY_HEADER];
	long result = -1;
	int e = EIO;
	if (len > EVC_MAX_PAYLOAD) {
		errno = EINVAL;
		return -1;
	}
	put32(header + 4, len);
	pthread_mutex_lock(&c->lock);
	if (c->broken)
		goto out;
	if (send_all(c->ctl, header, sizeof header) < 0 ||
	    (len > 0 && send_all(c->ctl, payload, len) < 0) ||
	    recv_all(c->ctl, reply, sizeof reply) < 0)
		goto broken;
	int32_t r = (int32_t)get32(reply + 4);
	uint32_t n = get32(reply + 8);
	if (reply[0] != op || reply[1] > 2 || n > out_cap || (r >= 0 && n > (uint32_t)r))
		goto broken;
	if (n > 0 && recv_all(c->ctl, out, n) < 0)
		goto broken;
	if (drain(c, reply[1]) < 0)
		goto broken;
	if (r < 0) {
		e = -r;
	} else {
		result = r;
		e = 0;
	}
	goto out;
broken:
	c->broken = 1;
	e = EIO;
out:
	pthread_mutex_unlock(&c->lock);
	if (result < 0)
		errno = e;
	return result;
}

long evc_ioctl1(struct evc *c, uint8_t op, uint32_t a)
{
	uint8_t payload[4];
	put32(payload, a);
	return evc_request(c, op, payload, sizeof payload, NULL, 0);
}

long evc_ioctl2(struct evc *c, uint8_t op, uint32_t a, uint32_t b)
{
	uint8_t payload[8];
	put32(payload, a);
	put32(payload + 4, b);
	return evc_request(c, op, payload, sizeof payload, NULL, 0);
}

ssize_t evc_read(struct evc *c, void *buf, size_t count)
{
	/* evtchn_read: whole ports, at most a page, 0 for less than a port */
	count &= ~(size_t)3;
	if (count == 0)
		return 0;
	if (count > EVC_MAX_PAYLOAD)
		count = EVC_MAX_PAYLOAD;
	for (;;) {
		uint8_t want[4];
		put32(want, (uint32_t)count);
		long n = evc_request(c, EVC_READ, want, sizeof want, buf, (uint32_t)count);
		if (n >= 0 || errno != EAGAIN)
			return n;
		int flags = sys_getfl(c->wake);
		if (flags < 0 || (flags & O_NONBLOCK)) {
			errno = EAGAIN;
			return -1;
		}
		/*
		 * Sleep until the readiness byte is there, without taking it. A
		 * recv, unlike poll, is restarted after a SA_RESTART handler, as
		 * the driver's wait_event_interruptible read is.
		 */
		uint8_t byte;
		ssize_t got = recv(c->wake, &byte, 1, MSG_PEEK);
		if (got == 0) {
			errno = EIO; /* the server went away */
			return -1;
		}
		if (got < 0 && errno != EAGAIN)
			return -1; /* EINTR */
	}
}

ssize_t evc_write(struct evc *c, const void *buf, size_t count)
{
	count &= ~(size_t)3;
	if (count == 0)
		return 0;
	if (count > EVC_MAX_PAYLOAD)
		count = EVC_MAX_PAYLOAD;
	return evc_request(c, EVC_WRITE, buf, (uint32_t)count, NULL, 0);
}

int evc_overflowed(struct evc *c)
{
	uint8_t bytes[2];
	ssize_t n = recv(c->wake, bytes, sizeof bytes, MSG_PEEK | MSG_DONTWAIT);
	return n == 2 && bytes[1] == EVC_WAKE_OVERFLOW;
}

int evc_release(struct evc *c, int close_wake)
{
	if (getpid() == c->owner) {
		pthread_mutex_lock(&c->lock);
		if (!c->broken) {
			uint8_t frame[EVC_REQUEST_HEADER] = { EVC_CLOSE };
			/* No reply: the server closes the connection once every
			 * port is unbound; waiting for that EOF makes close()
			 * synchronous, as the driver's release is. */
			if (send_all(c->ctl, frame, sizeof frame) == 0) {
				uint8_t sink[64];
				for (;;) {
					ssize_t n = recv(c->ctl, sink, sizeof sink, 0);
					if (n == 0 || (n < 0 && errno != EINTR))
						break;
				}
			}
		}
		pthread_mutex_unlock(&c->lock);
	}
	evc_sys_close(c->ctl);
	if (close_wake)
		evc_sys_close(c->wake);
	pthread_mutex_destroy(&c->lock);
	free(c);
	return 0;
}
