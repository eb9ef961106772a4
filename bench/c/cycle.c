/* The model's cycle as bare C bit operations, the yardstick for
 * bench/model_ratio.sh: send (test-and-set pending, check mask, set the
 * selector bit, raise upcall_pending), consume (clear upcall_pending, take
 * the selector, find the port, mask it, clear pending), unmask (clear mask,
 * re-check pending). 2-level layout: 64 words of 64 bits. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static volatile uint64_t pending[64], mask[64], selector;
static volatile uint8_t upcall_pending;

static void send(unsigned port) {
  uint64_t bit = 1ull << (port & 63);
  unsigned w = port >> 6;
  if (pending[w] & bit) return;
  pending[w] |= bit;
  if (!(mask[w] & bit) && !(selector & (1ull << w))) {
    selector |= 1ull << w;
    upcall_pending = 1;
  }
}

static unsigned consume(void) {
  upcall_pending = 0;
  uint64_t sel = selector;
  selector = 0;
  unsigned found = 0;
  while (sel) {
    unsigned w = __builtin_ctzll(sel);
    sel &= sel - 1;
    uint64_t bits = pending[w] & ~mask[w];
    while (bits) {
      unsigned b = __builtin_ctzll(bits);
      bits &= bits - 1;
      unsigned port = w * 64 + b;
      mask[w] |= 1ull << b;
      pending[w] &= ~(1ull << b);
      found = port;
    }
  }
  return found;
}

static void unmask(unsigned port) {
  uint64_t bit = 1ull << (port & 63);
  unsigned w = port >> 6;
  int was = (mask[w] & bit) != 0;
  mask[w] &= ~bit;
  if (was && (pending[w] & bit) && !(selector & (1ull << w))) {
    selector |= 1ull << w;
    upcall_pending = 1;
  }
}

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 100000000;
  unsigned port = 4000, sum = 0;
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (long i = 0; i < n; i++) {
    send(port);
    sum += consume();
    unmask(port);
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  double ns = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n;
  printf("{\"impl\":\"c\",\"ns_per_cycle\":%.2f,\"check\":%u}\n", ns, sum);
  return 0;
}
