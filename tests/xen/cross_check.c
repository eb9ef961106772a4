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
 * Mode stream (one-way throughput): K pairs of ports (K = PORTS, default 64)
 * are bound the same way; ITERATIONS timed bursts (after WARMUP untimed
 * ones) each notify all K ports on A, then drain B in batches: read(2) of
 * up to K ports on B's fd (blocking, as xenevtchn_pending's read is), then
 * one write(2) of the same ports to unmask them, until all K came back.
 * libxenevtchn has no batch call: its fd is used directly, which is what a
 * C program draining in batches does. One JSON line:
 *   {"impl":"c-libxenevtchn","mode":"stream","ports":64,"bursts":500,
 *    "events":32000,"ns_per_event":1234.5,"events_per_s":810000,
 *    "reads":...,"best_batch_ns_per_event":...}
 *
 * usage: cross_check [ITERATIONS=2000] [a2b|pingpong] [WARMUP=100]
 *        cross_check [BURSTS=500] stream [WARMUP=50] [PORTS=64]
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

/* Largest port a stream may see in its lookup table (FIFO dom0: 2^17). */
#define STREAM_MAX_PORT (1u << 17)
#define STREAM_MAX_PORTS 1024 /* one read(2) of the device: PAGE_SIZE / 4 */

/* One burst: notify all k ports on A, then read/unmask B's until all k came
 * back. Returns the number of read(2) calls. */
static long burst(xenevtchn_handle *A, int fd_b, const evtchn_port_t *a, long k,
		  const unsigned char *mine, evtchn_port_t *buf) {
	long got = 0, reads = 0;
	for (long i = 0; i < k; i++)
		if (xenevtchn_notify(A, a[i]) < 0) FAIL("xenevtchn_notify(A, %u)", a[i]);
	while (got < k) {
		ssize_t n = read(fd_b, buf, (size_t)k * sizeof *buf);
		if (n <= 0) FAIL("read (stream)");
		reads++;
		long m = n / (ssize_t)sizeof *buf;
		for (long i = 0; i < m; i++)
			if (buf[i] >= STREAM_MAX_PORT || !mine[buf[i]]) {
				fprintf(stderr, "cross_check: FAIL: stream: unexpected port %u\n", buf[i]);
				exit(1);
			}
		if (write(fd_b, buf, (size_t)n) != n) FAIL("write (stream)");
		got += m;
	}
	if (got != k) { fprintf(stderr, "cross_check: FAIL: stream: %ld events for %ld notifies\n", got, k); exit(1); }
	return reads;
}

static int stream(long bursts, long warmup, long k) {
	static evtchn_port_t a[STREAM_MAX_PORTS], b[STREAM_MAX_PORTS], buf[STREAM_MAX_PORTS];
	static unsigned char mine[STREAM_MAX_PORT];
	stage = "open";
	xenevtchn_handle *A = xenevtchn_open(NULL, 0);
	if (!A) FAIL("xenevtchn_open (A)");
	xenevtchn_handle *B = xenevtchn_open(NULL, 0);
	if (!B) FAIL("xenevtchn_open (B)");
	int fd_b = xenevtchn_fd(B);
	stage = "bind";
	for (long i = 0; i < k; i++) {
		xenevtchn_port_or_error_t p = xenevtchn_bind_unbound_port(A, 0);
		if (p < 0) FAIL("xenevtchn_bind_unbound_port(A, 0)");
		xenevtchn_port_or_error_t q = xenevtchn_bind_interdomain(B, 0, (evtchn_port_t)p);
		if (q < 0) FAIL("xenevtchn_bind_interdomain(B, 0, %d)", p);
		if ((unsigned)q >= STREAM_MAX_PORT) { fprintf(stderr, "cross_check: FAIL: port %d too large\n", q); return 1; }
		a[i] = (evtchn_port_t)p;
		b[i] = (evtchn_port_t)q;
		mine[q] = 1;
	}
	/* the k forced-pending bind events on B */
	stage = "drain";
	long initial = 0;
	struct pollfd pfd = { .fd = fd_b, .events = POLLIN };
	while (initial < k && poll(&pfd, 1, 2000) > 0) {
		ssize_t n = read(fd_b, buf, (size_t)k * sizeof *buf);
		if (n <= 0) FAIL("read (drain)");
		if (write(fd_b, buf, (size_t)n) != n) FAIL("write (drain)");
		initial += n / (ssize_t)sizeof *buf;
	}
	fprintf(stderr, "cross_check: stream: %ld port pairs, first a=%u b=%u, %ld bind-time events drained\n", k, a[0], b[0], initial);
	if (initial != k) { fprintf(stderr, "cross_check: FAIL: %ld bind-time events, expected %ld\n", initial, k); return 1; }

	stage = "warm-up";
	for (long i = 0; i < warmup; i++) burst(A, fd_b, a, k, mine, buf);
	stage = "timed loop";
	const long batch = 10; /* bursts per clocked batch */
	uint64_t best = UINT64_MAX;
	long reads = 0;
	uint64_t t0 = now_ns(), tb = t0;
	for (long i = 0; i < bursts; i++) {
		reads += burst(A, fd_b, a, k, mine, buf);
		if ((i + 1) % batch == 0) {
			uint64_t t = now_ns();
			if (t - tb < best) best = t - tb;
			tb = t;
		}
	}
	uint64_t t1 = now_ns();
	alarm(0);
	int leftover = poll(&pfd, 1, 0);
	stage = "unbind";
	for (long i = 0; i < k; i++) {
		if (xenevtchn_unbind(B, b[i]) < 0) FAIL("xenevtchn_unbind(B, %u)", b[i]);
		if (xenevtchn_unbind(A, a[i]) < 0) FAIL("xenevtchn_unbind(A, %u)", a[i]);
	}
	xenevtchn_close(B);
	xenevtchn_close(A);
	if (leftover > 0) { fprintf(stderr, "cross_check: FAIL: events left over after the stream\n"); return 1; }
	double events = (double)bursts * (double)k;
	double ns = (double)(t1 - t0) / events;
	double best_ns = best == UINT64_MAX ? ns : (double)best / ((double)batch * (double)k);
	printf("{\"impl\":\"c-libxenevtchn\",\"mode\":\"stream\","
	       "\"round_trip\":\"notify(A,a[0..k)) then read(B)+write(B) until k events\","
	       "\"ports\":%ld,\"bursts\":%ld,\"warmup\":%ld,\"events\":%.0f,"
	       "\"ns_per_event\":%.1f,\"events_per_s\":%.0f,\"reads\":%ld,"
	       "\"batch\":%ld,\"best_batch_ns_per_event\":%.1f}\n",
	       k, bursts, warmup, events, ns, 1e9 / ns, reads, batch, best_ns);
	return 0;
}

int main(int argc, char **argv) {
	long iters = argc > 1 ? atol(argv[1]) : 2000;
	const char *mode = argc > 2 ? argv[2] : "a2b";
	long warmup = argc > 3 ? atol(argv[3]) : 100;
	unsigned watchdog = getenv("CROSS_CHECK_WATCHDOG") ? (unsigned)atoi(getenv("CROSS_CHECK_WATCHDOG")) : 60;
	int pingpong;
	if (strcmp(mode, "stream") == 0) {
		long k = argc > 4 ? atol(argv[4]) : 64;
		if (argc <= 1) iters = 500;
		if (argc <= 3) warmup = 50;
		if (iters <= 0 || warmup < 0 || k <= 0 || k > STREAM_MAX_PORTS) {
			fprintf(stderr, "cross_check: bad BURSTS/WARMUP/PORTS (PORTS 1..%d)\n", STREAM_MAX_PORTS);
			return 2;
		}
		signal(SIGALRM, on_alarm);
		alarm(watchdog);
		return stream(iters, warmup, k);
	}
	if (strcmp(mode, "a2b") == 0) pingpong = 0;
	else if (strcmp(mode, "pingpong") == 0) pingpong = 1;
	else { fprintf(stderr, "usage: cross_check [ITERATIONS] [a2b|pingpong] [WARMUP]  |  cross_check [BURSTS] stream [WARMUP] [PORTS]\n"); return 2; }
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
