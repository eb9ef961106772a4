/*
 * pingpong.c - two domains through libxenevtchn: dom0 and a peer domain
 * (a process that opens its handle with EVTCHN_DOMAIN=PEER, i.e. a domU
 * under `evtchn serve`), plus a VIRQ and restrict. The same binary runs on
 * real Xen, where PEER must be 0 (both halves in dom0, a loopback channel:
 * the harness boots no second Linux domain); under `evtchn serve` with
 * PEER=0 it prints exactly what real Xen prints.
 *
 *   usage: pingpong [PEER=1] [ROUNDS=10]
 *
 * stdout: one line per fact checked ("name: result"), no port numbers or
 * times, so that runs compare line by line; port numbers go to stderr.
 * Exit 0 when every check held, 1 otherwise, 3 when an event never came
 * (SIGALRM watchdog, 60 s).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xenevtchn.h>

/* A domain id nobody has: restrict's target when PEER is dom0 itself. */
#define ABSENT_DOMAIN 7

static int failures;

static const char *errname(int e)
{
	switch (e) {
	case 0: return "ok";
	case EACCES: return "EACCES";
	case EAGAIN: return "EAGAIN";
	case EEXIST: return "EEXIST";
	case EINVAL: return "EINVAL";
	case ENOTCONN: return "ENOTCONN";
	case ESRCH: return "ESRCH";
	case ENOENT: return "ENOENT";
	case EIO: return "EIO";
	case EPROTO: return "EPROTO";
	default: return strerror(e);
	}
}

/* Prints "what: ok|ERRNO" and counts a mismatch with `want` (0 = success). */
static void check(const char *what, int rc, int want)
{
	int got = rc < 0 ? errno : 0;
	printf("%s: %s\n", what, errname(got));
	if (got != want) {
		printf("  FAIL: expected %s\n", errname(want));
		failures++;
	}
	fflush(stdout);
}

static void die(const char *what)
{
	fprintf(stderr, "pingpong: FAIL: %s (errno %d: %s)\n", what, errno, strerror(errno));
	exit(1);
}

static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "pingpong: FAIL: watchdog: an event never came\n";
	(void)!write(2, msg, sizeof msg - 1);
	_exit(3);
}

/* Takes one event, which must be on `want`, and unmasks it. */
static int take(xenevtchn_handle *h, evtchn_port_t want)
{
	xenevtchn_port_or_error_t p = xenevtchn_pending(h);
	if (p < 0 || (evtchn_port_t)p != want)
		return -1;
	return xenevtchn_unmask(h, want);
}

/* The peer domain's half: offer a port to dom0, then answer each ping. */
static int peer(int peer_domain, int rounds, int to_dom0, int from_dom0)
{
	char domain[16];
	snprintf(domain, sizeof domain, "%d", peer_domain);
	setenv("EVTCHN_DOMAIN", domain, 1); /* read by the serve shim only */
	xenevtchn_handle *h = xenevtchn_open(NULL, 0);
	if (h == NULL)
		die("peer: xenevtchn_open");
	xenevtchn_port_or_error_t p = xenevtchn_bind_unbound_port(h, 0);
	if (p < 0)
		die("peer: xenevtchn_bind_unbound_port(0)");
	if (write(to_dom0, &p, sizeof p) != sizeof p)
		die("peer: write to dom0");
	char go;
	if (read(from_dom0, &go, 1) != 1) /* dom0 has bound */
		die("peer: read from dom0");
	for (int i = 0; i < rounds; i++) {
		/* blocking pending: no poll first */
		if (take(h, (evtchn_port_t)p) < 0)
			die("peer: ping");
		if (xenevtchn_notify(h, (evtchn_port_t)p) < 0)
			die("peer: pong");
	}
	/* exit without unbind or close: the process exit closes the device */
	_exit(0);
}

int main(int argc, char **argv)
{
	int peer_domain = argc > 1 ? atoi(argv[1]) : 1;
	int rounds = argc > 2 ? atoi(argv[2]) : 10;
	if (peer_domain < 0 || rounds < 1) {
		fprintf(stderr, "usage: pingpong [PEER=1] [ROUNDS=10]\n");
		return 2;
	}
	signal(SIGALRM, on_alarm);
	alarm(60);
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("pingpong: peer %s, %d rounds\n", peer_domain ? "domU" : "dom0 (loopback)", rounds);

	/* open flags */
	errno = 0;
	check("open with unknown flag", xenevtchn_open(NULL, 2) ? 0 : -1, EINVAL);
	xenevtchn_handle *v = xenevtchn_open(NULL, 0);
	if (v == NULL)
		die("xenevtchn_open");
	check("fdopen with a flag", xenevtchn_fdopen(NULL, xenevtchn_fd(v), 1) ? 0 : -1, EINVAL);

	/* VIRQ */
	xenevtchn_port_or_error_t virq = xenevtchn_bind_virq(v, VIRQ_DEBUGGER);
	check("bind_virq DEBUGGER", virq, 0);
	fprintf(stderr, "pingpong: VIRQ_DEBUGGER on port %d\n", virq);
	xenevtchn_handle *w = xenevtchn_open(NULL, XENEVTCHN_NO_CLOEXEC);
	if (w == NULL)
		die("xenevtchn_open (NO_CLOEXEC)");
	check("bind_virq DEBUGGER again, other handle", xenevtchn_bind_virq(w, VIRQ_DEBUGGER), EEXIST);
	check("bind_virq 24", xenevtchn_bind_virq(w, 24), EINVAL);
	check("bind_virq TIMER (the kernel's)", xenevtchn_bind_virq(w, VIRQ_TIMER), EEXIST);
	check("notify the VIRQ port", xenevtchn_notify(v, (evtchn_port_t)virq), 0);
	check("notify it from the other handle", xenevtchn_notify(w, (evtchn_port_t)virq), ENOTCONN);
	check("unbind it from the other handle", xenevtchn_unbind(w, (evtchn_port_t)virq), ENOTCONN);
	check("unbind the VIRQ port", xenevtchn_unbind(v, (evtchn_port_t)virq), 0);
	check("unbind it again", xenevtchn_unbind(v, (evtchn_port_t)virq), ENOTCONN);
	check("bind_virq DEBUGGER after unbind", virq = xenevtchn_bind_virq(w, VIRQ_DEBUGGER), 0);
	check("close the handle holding it", xenevtchn_close(w), 0);
	check("bind_virq DEBUGGER after close", virq = xenevtchn_bind_virq(v, VIRQ_DEBUGGER), 0);
	check("unbind", xenevtchn_unbind(v, (evtchn_port_t)virq), 0);

	/* non-blocking pending on an empty ring */
	int fd = xenevtchn_fd(v);
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	check("poll an empty handle", poll(&pfd, 1, 0) == 0 ? 0 : -1, 0);
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
		die("fcntl O_NONBLOCK");
	check("pending, O_NONBLOCK, nothing pending", xenevtchn_pending(v), EAGAIN);

	/* restrict */
	int target = peer_domain ? peer_domain : ABSENT_DOMAIN;
	xenevtchn_handle *r = xenevtchn_open(NULL, 0);
	if (r == NULL)
		die("xenevtchn_open (restricted)");
	check("restrict to dom0", xenevtchn_restrict(r, 0), EINVAL);
	check("restrict to the peer domU", xenevtchn_restrict(r, (domid_t)target), 0);
	check("restrict again", xenevtchn_restrict(r, (domid_t)target), EACCES);
	check("restricted: bind_virq", xenevtchn_bind_virq(r, VIRQ_DEBUGGER), EACCES);
	check("restricted: bind_unbound_port", xenevtchn_bind_unbound_port(r, (uint32_t)target), EACCES);
	check("restricted: bind_interdomain to another domain", xenevtchn_bind_interdomain(r, peer_domain ? 0 : 1, 1), EACCES);
	if (!peer_domain)
		check("restricted: bind_interdomain to an absent domain", xenevtchn_bind_interdomain(r, ABSENT_DOMAIN, 1), ESRCH);

	/* ping-pong with the peer domain's process */
	int up[2], down[2];
	if (pipe(up) < 0 || pipe(down) < 0)
		die("pipe");
	fflush(stdout);
	pid_t child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		close(up[0]);
		close(down[1]);
		return peer(peer_domain, rounds, up[1], down[0]);
	}
	close(up[1]);
	close(down[0]);
	xenevtchn_port_or_error_t offered;
	if (read(up[0], &offered, sizeof offered) != sizeof offered)
		die("read the offered port");
	/* a domU is reached through the restricted handle, as a device model does */
	xenevtchn_handle *h = peer_domain ? r : xenevtchn_open(NULL, 0);
	if (h == NULL)
		die("xenevtchn_open (ping-pong)");
	xenevtchn_port_or_error_t local = xenevtchn_bind_interdomain(h, (uint32_t)peer_domain, (evtchn_port_t)offered);
	check("bind_interdomain to the peer's offer", local, 0);
	fprintf(stderr, "pingpong: peer offered port %d, dom0 bound port %d\n", offered, local);
	check("bind it twice", xenevtchn_bind_interdomain(h, (uint32_t)peer_domain, (evtchn_port_t)offered), EINVAL);
	/* Xen marks the new local port pending at bind */
	pfd.fd = xenevtchn_fd(h);
	check("poll after bind_interdomain", poll(&pfd, 1, 5000) == 1 && pfd.revents == POLLIN ? 0 : -1, 0);
	check("pending after bind_interdomain", take(h, (evtchn_port_t)local), 0);
	check("poll after taking it", poll(&pfd, 1, 0) == 0 ? 0 : -1, 0);
	if (write(down[1], "g", 1) != 1)
		die("write to the peer");
	int ok = 0;
	for (int i = 0; i < rounds; i++) {
		if (xenevtchn_notify(h, (evtchn_port_t)local) < 0)
			break;
		/* wait by poll, the way event loops do */
		if (poll(&pfd, 1, 10000) != 1 || take(h, (evtchn_port_t)local) < 0)
			break;
		ok++;
	}
	printf("ping-pong rounds: %d of %d\n", ok, rounds);
	if (ok != rounds)
		failures++;
	int status;
	if (waitpid(child, &status, 0) < 0)
		die("waitpid");
	check("peer exited cleanly", WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1, 0);
	/* The peer's exit closed its port: ours is unbound now, sends drop. */
	check("notify after the peer exited", xenevtchn_notify(h, (evtchn_port_t)local), 0);
	check("poll after that notify", poll(&pfd, 1, 200) == 0 ? 0 : -1, 0);
	check("unbind our port", xenevtchn_unbind(h, (evtchn_port_t)local), 0);
	if (h != r)
		xenevtchn_close(h);
	xenevtchn_close(r);
	xenevtchn_close(v);
	printf("pingpong: %s\n", failures ? "FAIL" : "ok");
	return failures ? 1 : 0;
}
