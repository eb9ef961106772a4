// The conformance suite on the memory backend: dom0 and a domU running Linux,
// each with its own handles, under each event ABI (a fresh host per case:
// memory_env.ts).

import { memoryConformanceEnv } from "./memory_env.ts";
import { defineConformance } from "./suite.ts";

for (const eventAbi of ["fifo", "2l"] as const) {
  defineConformance(
    memoryConformanceEnv({ eventAbi }, { name: `memory ${eventAbi}` }).env,
  );
  defineConformance(
    memoryConformanceEnv(
      { eventAbi },
      { name: `memory ${eventAbi} loopback` },
      true,
    ).env,
  );
}
