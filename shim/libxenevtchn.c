/*
 * libxenevtchn.c - libxenevtchn.so.1 with the ABI of Xen 4.17's library
 * (xenevtchn.h from libxen-dev, version nodes of libxenevtchn.map), talking
 * to `evtchn serve` instead of /dev/xen/evtchn. Each call is the one
 * ioctl/read/write Xen's tools/libs/evtchn/linux.c makes, sent to the server;
 * results and errno are the device's.
 *
 * Differences from Xen's library: no xentoolcore registration (so
 * xentoolcore_restrict_all() does not reach these handles); the logger is
 * unused (Xen's library logs nothing from these calls either);
 * xenevtchn_fdopen() knows only descriptors opened by this process.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <xenevtchn.h>

#include "evtchn_client.h"

#define EXPORT __attribute__((visibility("default")))

struct xenevtchn_handle {
	int fd;		/* the program-visible fd */
	struct evc *evc; /* NULL: an fd this process did not open here */
};

/* Open devices by fd, for xenevtchn_fdopen(). */
struct entry {
	int fd;
	struct evc *evc;
	struct entry *next;
};
static struct entry *devices;
static pthread_mutex_t devices_lock = PTHREAD_MUTEX_INITIALIZER;

static int remember(int fd, struct evc *evc)
{
	struct entry *e = malloc(sizeof *e);
	if (e == NULL)
		return -1;
	e->fd = fd;
	e->evc = evc;
	pthread_mutex_lock(&devices_lock);
	e->next = devices;
	devices = e;
	pthread_mutex_unlock(&devices_lock);
	return 0;
}

/* Finds the device of fd; with `take`, forgets it too. */
static struct evc *find(int fd, int take)
{
	struct evc *evc = NULL;
	pthread_mutex_lock(&devices_lock);
	for (struct entry **p = &devices; *p != NULL; p = &(*p)->next) {
		if ((*p)->fd != fd)
			continue;
		evc = (*p)->evc;
		if (take) {
			struct entry *e = *p;
			*p = e->next;
			free(e);
		}
		break;
	}
	pthread_mutex_unlock(&devices_lock);
	return evc;
}

EXPORT xenevtchn_handle *xenevtchn_open(struct xentoollog_logger *logger,
					unsigned int flags)
{
	(void)logger;
	if (flags & ~XENEVTCHN_NO_CLOEXEC) {
		errno = EINVAL;
		return NULL;
	}
	xenevtchn_handle *xce = malloc(sizeof *xce);
	if (xce == NULL)
		return NULL;
	/* linux.c opens O_RDWR, plus O_CLOEXEC unless XENEVTCHN_NO_CLOEXEC */
	xce->evc = evc_open(!(flags & XENEVTCHN_NO_CLOEXEC), 0);
	if (xce->evc == NULL) {
		int e = errno;
		free(xce);
		errno = e;
		return NULL;
	}
	xce->fd = evc_fd(xce->evc);
	if (remember(xce->fd, xce->evc) < 0) {
		int e = errno;
		evc_release(xce->evc, 1);
		free(xce);
		errno = e;
		return NULL;
	}
	return xce;
}

EXPORT xenevtchn_handle *xenevtchn_fdopen(struct xentoollog_logger *logger,
					  int fd, unsigned int flags)
{
	(void)logger;
	if (flags) {
		errno = EINVAL;
		return NULL;
	}
	xenevtchn_handle *xce = malloc(sizeof *xce);
	if (xce == NULL)
		return NULL;
	xce->fd = fd;
	xce->evc = find(fd, 0);
	return xce;
}

EXPORT int xenevtchn_close(xenevtchn_handle *xce)
{
	if (xce == NULL)
		return 0;
	int rc;
	struct evc *evc = xce->evc == NULL ? NULL : find(xce->fd, 1);
	if (evc != NULL)
		rc = evc_release(evc, 1);
	else
		rc = evc_sys_close(xce->fd); /* as linux.c's close(fd) */
	free(xce);
	return rc;
}

EXPORT int xenevtchn_fd(xenevtchn_handle *xce)
{
	return xce->fd;
}

/* The device of a handle, or NULL with errno as ioctl() on a non-device fd. */
static struct evc *device(xenevtchn_handle *xce)
{
	if (xce->evc == NULL)
		errno = ENOTTY;
	return xce->evc;
}

EXPORT int xenevtchn_restrict(xenevtchn_handle *xce, domid_t domid)
{
	struct evc *c = device(xce);
	return c == NULL ? -1 : (int)evc_ioctl1(c, EVC_RESTRICT_DOMID, domid);
}

EXPORT int xenevtchn_notify(xenevtchn_handle *xce, evtchn_port_t port)
{
	struct evc *c = device(xce);
	return c == NULL ? -1 : (int)evc_ioctl1(c, EVC_NOTIFY, port);
}

EXPORT xenevtchn_port_or_error_t
xenevtchn_bind_unbound_port(xenevtchn_handle *xce, uint32_t domid)
{
	struct evc *c = device(xce);
	return c == NULL ? -1 : (int)evc_ioctl1(c, EVC_BIND_UNBOUND_PORT, domid);
}

EXPORT xenevtchn_port_or_error_t
xenevtchn_bind_interdomain(xenevtchn_handle *xce, uint32_t domid,
			   evtchn_port_t remote_port)
{
	struct evc *c = device(xce);
	return c == NULL ? -1
			 : (int)evc_ioctl2(c, EVC_BIND_INTERDOMAIN, domid, remote_port);
}

EXPORT xenevtchn_port_or_error_t xenevtchn_bind_virq(xenevtchn_handle *xce,
						     unsigned int virq)
{
	struct evc *c = device(xce);
	return c == NULL ? -1 : (int)evc_ioctl1(c, EVC_BIND_VIRQ, virq);
}

EXPORT int xenevtchn_unbind(xenevtchn_handle *xce, evtchn_port_t port)
{
	struct evc *c = device(xce);
	return c == NULL ? -1 : (int)evc_ioctl1(c, EVC_UNBIND, port);
}

EXPORT xenevtchn_port_or_error_t xenevtchn_pending(xenevtchn_handle *xce)
{
	struct evc *c = device(xce);
	evtchn_port_t port;
	if (c == NULL || evc_read(c, &port, sizeof port) != sizeof port)
		return -1;
	return (xenevtchn_port_or_error_t)port;
}

EXPORT int xenevtchn_unmask(xenevtchn_handle *xce, evtchn_port_t port)
{
	struct evc *c = device(xce);
	if (c == NULL || evc_write(c, &port, sizeof port) != sizeof port)
		return -1;
	return 0;
}
