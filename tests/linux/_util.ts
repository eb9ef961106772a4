// Helpers shared by the linux backend's tests.

import assert from "node:assert/strict";
import { EventChannelError } from "../../errors.ts";
import type { EventChannelHandle } from "../../handle.ts";

/** Waits `ms` milliseconds. */
export function settle(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The next port within `ms`, or `undefined` when none arrives (the wait is
 * aborted; its timer is always cleared, for the op sanitizer).
 */
export async function nextWithin(
  handle: EventChannelHandle,
  ms: number,
): Promise<number | undefined> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), ms);
  try {
    return await handle.next({ signal: controller.signal });
  } catch (error) {
    if (controller.signal.aborted) return undefined;
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/** Asserts `fn` throws an EventChannelError with this op and code. */
export function assertEvtchnError(
  fn: () => unknown,
  op: string,
  code: string,
  extra: Partial<Record<keyof EventChannelError, unknown>> = {},
): EventChannelError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  assert.ok(
    caught instanceof EventChannelError,
    `expected EventChannelError ${op} ${code}, got ${caught}`,
  );
  assert.equal(caught.op, op, caught.message);
  assert.equal(caught.code, code, caught.message);
  for (const [key, value] of Object.entries(extra)) {
    assert.deepEqual(caught[key as keyof EventChannelError], value);
  }
  return caught;
}
