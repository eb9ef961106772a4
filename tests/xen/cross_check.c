/*
 * cross_check.c - reference numbers for the evtchn project, from Xen's own C
 * library (Debian's libxenevtchn, libxen-dev), run in a real dom0 by the harness:
 *
 *   tests/xen/boot.sh -- tests/xen/.cache/cross_check 2000
 *
 * Sequence (dom0 loopback, two handles = two opens of /dev/xen/evtchn):
 *   A = xenevtchn_open(); B = xenevtchn_open()
 *   a = xenevtchn_bind_unbound_port(A, 0)          remote domain = dom0 itself
 *   b = xenevtchn_bind_interdomain(B, 0, a)         b is a's peer
 *   drain: Xen's EVTCHNOP_bind_interdomain marks the NEW local port (b) pending,
 *          so the first xenevtchn_pending(B) returns b: read it and unmask it.
 *   warm-up, then N timed iterations of one "round trip":
 *     mode a2b (default):  notify(A, a) -> pending(B) == b -> unmask(B, b)
 *     mode pingpong:       the above, then notify(B, b) -> pending(A) == a -> unmask(A, a)
 *   unbind both, close both.
 *
 * Output: one JSON line on stdout, e.g.
 *   {"impl":"c-libxenevtchn","mode":"a2b","iterations":2000,"ns_per_round_trip":123456.7,...}
 * ns_per_round_trip is the mean over the whole timed loop; the loop is also
 * clocked in batches of 100 round trips and best_batch_ns_per_round_trip is
 * the fastest batch's mean (steadier when the host is busy: under QEMU's TCG,
 * host load only ever adds time).
 * Progress/diagnostics go to stderr. Exit 0 on success, 1 on any failure, 3 if an
 * expected event never arrived (SIGALRM watchdog, default 60 s).
 *
 * usage: cross_check [ITERATIONS=2000] [a2b|pingpong] [WARMUP=100]
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xenevtchn.h>

static const char *stage = "start";

static void on_alarm(int sig) {
	(void)sig;
	/* async-signal-safe output only */
	static const char msg[] = "cross_check: FAIL: watchdog fired, an expected event never arrived (stage: ";
	(void)!write(2, msg, sizeof msg - 1);
	(void)!write(2, stage, strlen(stage));
	(void)!write(2, ")\n", 2);
	_exit(3);
}

#define FAIL(...)                                                                 \
	do {                                                                      \
		int e_ = errno;                                                   \
		fprintf(stderr, "cross_check: FAIL: " __VA_ARGS__);               \
		fprintf(stderr, " (errno %d: %s)\n", e_, strerror(e_));           \
		exit(1);                                                          \
	} while (0)

static uint64_t now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* wait (bounded) until handle h has an event, take it, check it is `want`, unmask it */
static void take(xenevtchn_handle *h, evtchn_port_t want, const char *what) {
	xenevtchn_port_or_error_t p = xenevtchn_pending(h); /* blocking read of one port */
	if (p < 0) FAIL("xenevtchn_pending (%s)", what);
	if ((evtchn_port_t)p != want) {
		fprintf(stderr, "cross_check: FAIL: %s: pending port %d, expected %u\n", what, p, want);
		exit(1);
	}
	if (xenevtchn_unmask(h, (evtchn_port_t)p) < 0) FAIL("xenevtchn_unmask(%d) (%s)", p, what);
}

static void one(xenevtchn_handle *A, xenevtchn_handle *B, evtchn_port_t a, evtchn_port_t b, int pingpong) {
	if (xenevtchn_notify(A, a) < 0) FAIL("xenevtchn_notify(A, %u)", a);
	take(B, b, "A->B");
	if (pingpong) {
		if (xenevtchn_notify(B, b) < 0) FAIL("xenevtchn_notify(B, %u)", b);
		take(A, a, "B->A");
	}
}

int main(int argc, char **argv) {
	long iters = argc > 1 ? atol(argv[1]) : 2000;
	const char *mode = argc > 2 ? argv[2] : "a2b";
	long warmup = argc > 3 ? atol(argv[3]) : 100;
	unsigned watchdog = getenv("CROSS_CHECK_WATCHDOG") ? (unsigned)atoi(getenv("CROSS_CHECK_WATCHDOG")) : 60;
	int pingpong;
	if (strcmp(mode, "a2b") == 0) pingpong = 0;
	else if (strcmp(mode, "pingpong") == 0) pingpong = 1;
	else { fprintf(stderr, "usage: cross_check [ITERATIONS] [a2b|pingpong] [WARMUP]\n"); return 2; }
	if (iters <= 0 || warmup < 0) { fprintf(stderr, "cross_check: bad ITERATIONS/WARMUP\n"); return 2; }

	signal(SIGALRM, on_alarm);
	alarm(watchdog);

	stage = "open";
	xenevtchn_handle *A = xenevtchn_open(NULL, 0);
	if (!A) FAIL("xenevtchn_open (A)");
	xenevtchn_handle *B = xenevtchn_open(NULL, 0);
	if (!B) FAIL("xenevtchn_open (B)");

	stage = "bind";
	xenevtchn_port_or_error_t a = xenevtchn_bind_unbound_port(A, 0);
	if (a < 0) FAIL("xenevtchn_bind_unbound_port(A, 0)");
	xenevtchn_port_or_error_t b = xenevtchn_bind_interdomain(B, 0, (evtchn_port_t)a);
	if (b < 0) FAIL("xenevtchn_bind_interdomain(B, 0, %d)", a);
	fprintf(stderr, "cross_check: port a=%d (unbound, handle A), b=%d (interdomain peer, handle B)\n", a, b);

	/* The forced-pending first event on B. Poll briefly instead of blocking, so a
	 * Xen that stops doing this is reported rather than hanging the drain. */
	stage = "drain";
	int initial = -1;
	struct pollfd pfd = { .fd = xenevtchn_fd(B), .events = POLLIN };
	if (poll(&pfd, 1, 2000) > 0) {
		xenevtchn_port_or_error_t p = xenevtchn_pending(B);
		if (p < 0) FAIL("xenevtchn_pending (drain)");
		initial = p;
		if (xenevtchn_unmask(B, (evtchn_port_t)p) < 0) FAIL("xenevtchn_unmask (drain)");
	}
	fprintf(stderr, "cross_check: first pending on B after bind_interdomain: %d (expected b=%d)\n", initial, b);
	if (initial != b) { fprintf(stderr, "cross_check: FAIL: forced-pending event not on b\n"); return 1; }

	stage = "warm-up";
	for (long i = 0; i < warmup; i++) one(A, B, (evtchn_port_t)a, (evtchn_port_t)b, pingpong);

	stage = "timed loop";
	const long batch = 100;
	uint64_t best = UINT64_MAX;
	uint64_t t0 = now_ns(), tb = t0;
	for (long i = 0; i < iters; i++) {
		one(A, B, (evtchn_port_t)a, (evtchn_port_t)b, pingpong);
		if ((i + 1) % batch == 0) {
			uint64_t t = now_ns();
			if (t - tb < best) best = t - tb;
			tb = t;
		}
	}
	uint64_t t1 = now_ns();
	alarm(0);

	/* nothing may be left over: one event per notify */
	pfd.fd = xenevtchn_fd(B);
	int leftover_b = poll(&pfd, 1, 0);
	pfd.fd = xenevtchn_fd(A);
	int leftover_a = poll(&pfd, 1, 0);

	stage = "unbind";
	if (xenevtchn_unbind(B, (evtchn_port_t)b) < 0) FAIL("xenevtchn_unbind(B, %d)", b);
	if (xenevtchn_unbind(A, (evtchn_port_t)a) < 0) FAIL("xenevtchn_unbind(A, %d)", a);
	xenevtchn_close(B);
	xenevtchn_close(A);
	if (leftover_a > 0 || leftover_b > 0) {
		fprintf(stderr, "cross_check: FAIL: events left over after the loop (A:%d B:%d)\n", leftover_a, leftover_b);
		return 1;
	}

	double ns = (double)(t1 - t0) / (double)iters;
	double best_ns = best == UINT64_MAX ? ns : (double)best / (double)batch;
	printf("{\"impl\":\"c-libxenevtchn\",\"mode\":\"%s\",\"round_trip\":\"%s\","
	       "\"iterations\":%ld,\"warmup\":%ld,\"ns_per_round_trip\":%.1f,"
	       "\"batch\":%ld,\"best_batch_ns_per_round_trip\":%.1f,"
	       "\"port_a\":%d,\"port_b\":%d,\"initial_pending\":%d}\n",
	       mode,
	       pingpong ? "notify(A,a) pending(B)=b unmask(B,b) notify(B,b) pending(A)=a unmask(A,a)"
	                : "notify(A,a) pending(B)=b unmask(B,b)",
	       iters, warmup, ns, batch, best_ns, a, b, initial);
	return 0;
}
