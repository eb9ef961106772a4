/*
 * preload.c - libevtchn_preload.so: LD_PRELOAD (or EVTCHN_LIBC for this
 * project's `linux` backend) redirects open("/dev/xen/evtchn") to
 * `evtchn serve`. The fd returned is the device's wake connection (see
 * evtchn_client.h); ioctl/read/write/poll/close on it, and on its dup()s,
 * become the device's operations. Every other fd passes straight to the
 * kernel through raw syscalls (no dlsym), which also makes this library
 * usable when dlopen()ed as a "libc" rather than preloaded.
 *
 * Linux semantics kept: dup/dup2/dup3/F_DUPFD share one open device, which
 * closes (ports unbound) when its last descriptor in the opening process
 * closes; a forked child shares the device, and its close() drops only its
 * descriptors. Not kept: two processes using one device at the same time
 * (requests would interleave on the shared connection), a device
 * descriptor passed over SCM_RIGHTS or inherited across exec().
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include <stdint.h>
#include <xen/xen.h> /* domid_t, for the next header */
#include <xen/sys/evtchn.h>

#include "evtchn_client.h"

#define EXPORT __attribute__((visibility("default")))

#define DEVICE "/dev/xen/evtchn"
/* Descriptors tracked: device fds at or above this are refused (EMFILE). */
#define MAX_FDS 65536

/* One open device and how many descriptors of this process point at it. */
struct device {
	struct evc *evc;
	int refs;
};

static struct device *fds[MAX_FDS];
static pthread_mutex_t fds_lock = PTHREAD_MUTEX_INITIALIZER;

/* Whether fd may be a device: one unlocked load keeps other fds fast. */
static int maybe_device(int fd)
{
	return fd >= 0 && fd < MAX_FDS && __atomic_load_n(&fds[fd], __ATOMIC_ACQUIRE) != NULL;
}

/*
 * The device behind fd with a reference taken (so a concurrent close cannot
 * free it mid-call), or NULL. Drop it with put().
 */
static struct device *get(int fd)
{
	if (!maybe_device(fd))
		return NULL;
	pthread_mutex_lock(&fds_lock);
	struct device *d = fds[fd];
	if (d != NULL)
		d->refs++;
	pthread_mutex_unlock(&fds_lock);
	return d;
}

/* Drops a reference; the last one releases the device. */
static void put(struct device *d)
{
	pthread_mutex_lock(&fds_lock);
	int last = --d->refs == 0;
	pthread_mutex_unlock(&fds_lock);
	if (last) {
		evc_release(d->evc, 1);
		free(d);
	}
}

/* Points fd at d (taking a reference); an earlier device there is dropped. */
static void attach(int fd, struct device *d)
{
	pthread_mutex_lock(&fds_lock);
	struct device *old = fds[fd];
	d->refs++;
	__atomic_store_n(&fds[fd], d, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&fds_lock);
	if (old != NULL)
		put(old);
}

/* Forgets fd; returns its device, still referenced, or NULL. */
static struct device *detach(int fd)
{
	if (!maybe_device(fd))
		return NULL;
	pthread_mutex_lock(&fds_lock);
	struct device *d = fds[fd];
	__atomic_store_n(&fds[fd], NULL, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&fds_lock);
	return d;
}

static int is_device_path(const char *path)
{
	return path != NULL && strcmp(path, DEVICE) == 0;
}

static int open_device(int flags)
{
	/* the driver needs read and write; anything else opens as Linux would */
	struct evc *evc = evc_open(1, (flags & O_NONBLOCK) != 0);
	if (evc == NULL)
		return -1;
	/*
	 * The program gets its own descriptor of the wake connection; the
	 * library keeps the first, so that closing any one of the program's
	 * dup()s never leaves the device without a valid fd.
	 */
	int fd = evc_dup_fd(evc, (flags & O_CLOEXEC) != 0);
	struct device *d = fd < 0 ? NULL : calloc(1, sizeof *d);
	if (d == NULL || fd >= MAX_FDS) {
		int e = fd < 0 ? errno : d == NULL ? ENOMEM : EMFILE;
		free(d);
		if (fd >= 0)
			syscall(SYS_close, fd);
		evc_release(evc, 1);
		errno = e;
		return -1;
	}
	d->evc = evc;
	attach(fd, d);
	return fd;
}

static mode_t mode_arg(int flags, va_list ap)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

EXPORT int open(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	if (is_device_path(path))
		return open_device(flags);
	return (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode);
}

EXPORT int open64(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	if (is_device_path(path))
		return open_device(flags);
	return (int)syscall(SYS_openat, AT_FDCWD, path, flags | O_LARGEFILE, mode);
}

EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	if (is_device_path(path))
		return open_device(flags);
	return (int)syscall(SYS_openat, dirfd, path, flags, mode);
}

EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	if (is_device_path(path))
		return open_device(flags);
	return (int)syscall(SYS_openat, dirfd, path, flags | O_LARGEFILE, mode);
}

/* _FORTIFY_SOURCE's open */
EXPORT int __open_2(const char *path, int flags)
{
	return open(path, flags);
}

EXPORT int __open64_2(const char *path, int flags)
{
	return open64(path, flags);
}

/* The device exists and is read-write for everyone the server serves. */
EXPORT int access(const char *path, int mode)
{
	if (is_device_path(path))
		return 0;
	return (int)syscall(SYS_faccessat, AT_FDCWD, path, mode);
}

EXPORT int close(int fd)
{
	struct device *d = detach(fd);
	if (d == NULL)
		return (int)syscall(SYS_close, fd);
	/* This descriptor goes now; the device, at its last close. */
	int rc = (int)syscall(SYS_close, fd);
	put(d);
	return rc;
}

EXPORT ssize_t read(int fd, void *buf, size_t count)
{
	struct device *d = get(fd);
	if (d == NULL)
		return syscall(SYS_read, fd, buf, count);
	ssize_t n = evc_read(d->evc, buf, count);
	int e = errno;
	put(d);
	errno = e;
	return n;
}

EXPORT ssize_t __read_chk(int fd, void *buf, size_t count, size_t buflen)
{
	if (count > buflen)
		abort(); /* what glibc's __chk_fail ends in */
	return read(fd, buf, count);
}

EXPORT ssize_t write(int fd, const void *buf, size_t count)
{
	struct device *d = get(fd);
	if (d == NULL)
		return syscall(SYS_write, fd, buf, count);
	ssize_t n = evc_write(d->evc, buf, count);
	int e = errno;
	put(d);
	errno = e;
	return n;
}

static long device_ioctl(struct evc *c, unsigned long request, void *arg)
{
	switch (request) {
	case IOCTL_EVTCHN_BIND_VIRQ:
		return evc_ioctl1(c, EVC_BIND_VIRQ, ((struct ioctl_evtchn_bind_virq *)arg)->virq);
	case IOCTL_EVTCHN_BIND_INTERDOMAIN: {
		struct ioctl_evtchn_bind_interdomain *b = arg;
		return evc_ioctl2(c, EVC_BIND_INTERDOMAIN, b->remote_domain, b->remote_port);
	}
	case IOCTL_EVTCHN_BIND_UNBOUND_PORT:
		return evc_ioctl1(c, EVC_BIND_UNBOUND_PORT,
				  ((struct ioctl_evtchn_bind_unbound_port *)arg)->remote_domain);
	case IOCTL_EVTCHN_UNBIND:
		return evc_ioctl1(c, EVC_UNBIND, ((struct ioctl_evtchn_unbind *)arg)->port);
	case IOCTL_EVTCHN_NOTIFY:
		return evc_ioctl1(c, EVC_NOTIFY, ((struct ioctl_evtchn_notify *)arg)->port);
	case IOCTL_EVTCHN_RESET:
		return evc_request(c, EVC_RESET, NULL, 0, NULL, 0);
	case IOCTL_EVTCHN_RESTRICT_DOMID:
		return evc_ioctl1(c, EVC_RESTRICT_DOMID,
				  ((struct ioctl_evtchn_restrict_domid *)arg)->domid);
	default:
		errno = ENOSYS; /* evtchn_ioctl's default */
		return -1;
	}
}

EXPORT int ioctl(int fd, unsigned long request, ...)
{
	va_list ap;
	va_start(ap, request);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	/* The VFS handles these before any driver: pass them to the fd. */
	int generic = request == FIONBIO || request == FIOCLEX ||
		      request == FIONCLEX || request == FIOASYNC;
	struct device *d = generic ? NULL : get(fd);
	if (d == NULL)
		return (int)syscall(SYS_ioctl, fd, request, arg);
	long rc = device_ioctl(d->evc, request, arg);
	int e = errno;
	put(d);
	errno = e;
	return (int)rc;
}

/* Readiness as evtchn_poll reports it: POLLERR alone after an overflow. */
static void fix_revents(struct pollfd *fds_, nfds_t n)
{
	for (nfds_t i = 0; i < n; i++) {
		struct device *d = get(fds_[i].fd);
		if (d == NULL)
			continue;
		if ((fds_[i].revents & POLLIN) && evc_overflowed(d->evc))
			fds_[i].revents = POLLERR;
		put(d);
	}
}

EXPORT int poll(struct pollfd *fds_, nfds_t n, int timeout)
{
	struct timespec ts, *tsp = NULL;
	if (timeout >= 0) {
		ts.tv_sec = timeout / 1000;
		ts.tv_nsec = (long)(timeout % 1000) * 1000000L;
		tsp = &ts;
	}
	long rc = syscall(SYS_ppoll, fds_, n, tsp, NULL, (size_t)8);
	if (rc > 0)
		fix_revents(fds_, n);
	return (int)rc;
}

EXPORT int __poll_chk(struct pollfd *fds_, nfds_t n, int timeout, size_t fdslen)
{
	if (fdslen / sizeof *fds_ < n)
		abort();
	return poll(fds_, n, timeout);
}

EXPORT int ppoll(struct pollfd *fds_, nfds_t n, const struct timespec *tmo,
		 const sigset_t *sigmask)
{
	/* the kernel copies at most its own sigset size (8 bytes on Linux) */
	long rc = syscall(SYS_ppoll, fds_, n, tmo, sigmask, (size_t)8);
	if (rc > 0)
		fix_revents(fds_, n);
	return (int)rc;
}

/* A new descriptor newfd of the same device as fd, when fd is one. */
static int duplicated(int fd, int newfd)
{
	if (newfd < 0)
		return newfd;
	struct device *d = get(fd);
	if (d == NULL) {
		/* newfd may have been a device fd that dup2 just replaced */
		struct device *old = detach(newfd);
		if (old != NULL)
			put(old);
		return newfd;
	}
	if (newfd >= MAX_FDS) {
		put(d);
		syscall(SYS_close, newfd);
		errno = EMFILE;
		return -1;
	}
	attach(newfd, d);
	put(d);
	return newfd;
}

EXPORT int dup(int fd)
{
	return duplicated(fd, (int)syscall(SYS_dup, fd));
}

EXPORT int dup2(int fd, int newfd)
{
	if (fd == newfd) /* dup2 then only checks fd */
		return (int)syscall(SYS_fcntl, fd, F_GETFD) < 0 ? -1 : newfd;
	return duplicated(fd, (int)syscall(SYS_dup3, fd, newfd, 0));
}

EXPORT int dup3(int fd, int newfd, int flags)
{
	return duplicated(fd, (int)syscall(SYS_dup3, fd, newfd, flags));
}

static int do_fcntl(int fd, int cmd, va_list ap)
{
	unsigned long arg = va_arg(ap, unsigned long);
	int rc = (int)syscall(SYS_fcntl, fd, cmd, arg);
	if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)
		return duplicated(fd, rc);
	return rc;
}

EXPORT int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	int rc = do_fcntl(fd, cmd, ap);
	va_end(ap);
	return rc;
}

EXPORT int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	int rc = do_fcntl(fd, cmd, ap);
	va_end(ap);
	return rc;
}
