// Assertions shared by the test suites.

import assert from "node:assert/strict";
import { EventChannelError } from "../errors.ts";

/**
 * Asserts that `fn` throws an `EventChannelError` for `op` with errno `code`,
 * and returns it for further checks.
 */
export function assertErrno(
  fn: () => unknown,
  op: string,
  code: string,
): EventChannelError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  assert.ok(
    caught instanceof EventChannelError,
    `expected EventChannelError(${op}, ${code}), got ${caught}`,
  );
  assert.equal(caught.code, code, caught.message);
  assert.equal(caught.op, op, caught.message);
  return caught;
}

/** Async form of {@linkcode assertErrno}. */
export async function assertRejectsErrno(
  fn: () => Promise<unknown>,
  op: string,
  code: string,
): Promise<EventChannelError> {
  let caught: unknown;
  try {
    await fn();
  } catch (error) {
    caught = error;
  }
  assert.ok(
    caught instanceof EventChannelError,
    `expected EventChannelError(${op}, ${code}), got ${caught}`,
  );
  assert.equal(caught.code, code, caught.message);
  assert.equal(caught.op, op, caught.message);
  return caught;
}
