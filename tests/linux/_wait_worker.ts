// A Worker for tests/linux/wait_test.ts: offers a port to dom0 (itself),
// posts it, and on "go" sleeps 200 ms then notifies it, while the test's
// thread is blocked in nextSync's poll(2); on "close" closes its handle.

/// <reference lib="deno.worker" />

import { openLinuxHandle } from "../../backends/linux/mod.ts";

const a = openLinuxHandle();
const port = a.bindUnboundPort(0);
self.onmessage = async (e: MessageEvent): Promise<void> => {
  if (e.data === "go") {
    await new Promise((resolve) => setTimeout(resolve, 200));
    a.notify(port);
    self.postMessage("sent");
  } else {
    await a.close();
    self.postMessage("closed");
  }
};
self.postMessage(port);
