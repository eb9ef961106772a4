// Helpers shared by the linux backend's tests.

import { assertErrno } from "../_assert.ts";
import assert from "node:assert/strict";
import type { EventChannelError } from "../../errors.ts";
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
  const caught = assertErrno(fn, op, code);
  for (const [key, value] of Object.entries(extra)) {
    assert.deepEqual(caught[key as keyof EventChannelError], value);
  }
  return caught;
}
