// deno bench: the handle's ways of taking events, on the memory backend and,
// where there is a /dev/xen/evtchn (dom0), on the linux backend:
//   poll + unmask        the one-port round trip (the baseline)
//   nextSync + unmask    the synchronous wait of a dedicated loop
//   await next + unmask  the asynchronous wait
//   drain + unmaskAll    a burst of 64 events in one read and one write,
//                        per burst (64 notifies included)
// Run: tools/deno bench -A bench/wait_bench.ts
// On real Xen: tests/xen/boot.sh --deno --smp 1 -- deno bench --no-check \
//   --no-lock -A bench/wait_bench.ts
// (bench/xen_ratio.sh compares the same paths with C in one boot.)

import { MemoryXen } from "../backends/memory/mod.ts";
import { linuxDeviceStatus, openLinuxHandle } from "../backends/linux/mod.ts";
import type { EventChannelHandle } from "../handle.ts";

const BURST = 64;

interface Pair {
  a: EventChannelHandle;
  b: EventChannelHandle;
  offered: Uint32Array;
  local: Uint32Array;
}

/** `n` loopback channels between two handles, bind-time events consumed. */
function pair(a: EventChannelHandle, b: EventChannelHandle, n: number): Pair {
  const offered = new Uint32Array(n);
  const local = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    offered[i] = a.bindUnboundPort(0);
    local[i] = b.bindInterdomain(0, offered[i]);
  }
  const ports = new Uint32Array(n);
  for (let seen = 0; seen < n;) {
    const got = b.drain(ports, 1000);
    if (got === 0) throw new Error("bind-time events missing");
    b.unmaskAll(ports, got);
    seen += got;
  }
  return { a, b, offered, local };
}

function register(backend: string, make: () => Pair, ignore: boolean): void {
  // Made on first use, so that an ignored backend opens nothing.
  let one: Pair | undefined;
  let burst: Pair | undefined;
  const ports = new Uint32Array(BURST);
  const group = `take an event, ${backend}`;
  const single = (): Pair => one ??= make();
  Deno.bench({
    name: `${backend}: poll + unmask`,
    group,
    baseline: true,
    ignore,
    fn: () => {
      const { a, b, offered } = single();
      a.notify(offered[0]);
      let port = b.poll();
      while (port === undefined) port = b.nextSync(1000);
      b.unmask(port);
    },
  });
  Deno.bench({
    name: `${backend}: nextSync + unmask`,
    group,
    ignore,
    fn: () => {
      const { a, b, offered } = single();
      a.notify(offered[0]);
      b.unmask(b.nextSync(1000)!);
    },
  });
  Deno.bench({
    name: `${backend}: await next + unmask`,
    group,
    ignore,
    fn: async () => {
      const { a, b, offered } = single();
      a.notify(offered[0]);
      b.unmask(await b.next());
    },
  });
  Deno.bench({
    name: `${backend}: burst of ${BURST}, drain + unmaskAll`,
    group: `burst of ${BURST}, ${backend}`,
    ignore,
    fn: () => {
      const p = burst ??= make();
      for (let i = 0; i < BURST; i++) p.a.notify(p.offered[i]);
      for (let got = 0; got < BURST;) {
        const n = p.b.drain(ports, 1000);
        p.b.unmaskAll(ports, n);
        got += n;
      }
    },
  });
  Deno.bench({
    name: `${backend}: burst of ${BURST}, poll + unmask each`,
    group: `burst of ${BURST}, ${backend}`,
    baseline: true,
    ignore,
    fn: () => {
      const p = burst ??= make();
      for (let i = 0; i < BURST; i++) p.a.notify(p.offered[i]);
      for (let got = 0; got < BURST; got++) {
        let port = p.b.poll();
        while (port === undefined) port = p.b.nextSync(1000);
        p.b.unmask(port);
      }
    },
  });
}

const xen = new MemoryXen();
register("memory", () => pair(xen.open(0), xen.open(0), BURST), false);

const linux = linuxDeviceStatus();
register(
  linux.available ? "linux" : `linux [ignored: ${linux.reason}]`,
  () => pair(openLinuxHandle(), openLinuxHandle(), BURST),
  !linux.available,
);
