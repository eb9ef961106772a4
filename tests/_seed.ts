// Seeds for the property tests: a new one every run, so that runs explore
// different inputs, and the one used is printed when a property fails
// (fast-check prints it with the shrunk counterexample). EVTCHN_PROPERTY_SEED
// (0..4294967295) reruns a failure.

const fixed = Deno.env.get("EVTCHN_PROPERTY_SEED");

/** This run's seed: `EVTCHN_PROPERTY_SEED`, or a random one. */
export const PROPERTY_SEED: number = fixed === undefined
  ? crypto.getRandomValues(new Uint32Array(1))[0]
  : checkSeed(fixed);

function checkSeed(text: string): number {
  const n = Number(text);
  if (!/^\d{1,10}$/.test(text) || n > 0xffff_ffff) {
    throw new RangeError(
      `EVTCHN_PROPERTY_SEED must be an integer in 0..4294967295, got "${text}"`,
    );
  }
  return n;
}

/**
 * fast-check options with this run's seed; on failure fast-check reports
 * the seed and the counterexample, and the message says how to rerun it.
 *
 * @param numRuns How many cases.
 * @returns The options.
 */
export function propertyRuns(
  numRuns: number,
): { seed: number; numRuns: number; endOnFailure: true } {
  return { seed: PROPERTY_SEED, numRuns, endOnFailure: true };
}
