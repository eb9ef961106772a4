// Assertions shared by the test suites.

import assert from "node:assert/strict";
import { EventChannelError } from "../errors.ts";

function expectErrno(
  caught: unknown,
  op: string,
  code: string,
): EventChannelError {
  assert.ok(
    caught instanceof EventChannelError,
    `expected EventChannelError(${op}, ${code}), got ${caught}`,
  );
  assert.equal(caught.code, code, caught.message);
  assert.equal(caught.op, op, caught.message);
  return caught;
}

/**
 * Asserts that `fn` throws an `EventChannelError` for `op` with errno `code`,
 * and returns it for further checks.
 */
export function assertErrno(
  fn: () => unknown,
  op: string,
  code: string,
): EventChannelError {
  try {
    fn();
  } catch (error) {
    return expectErrno(error, op, code);
  }
  return expectErrno(undefined, op, code);
}

/** Async form of {@linkcode assertErrno}. */
export async function assertRejectsErrno(
  fn: () => Promise<unknown>,
  op: string,
  code: string,
): Promise<EventChannelError> {
  try {
    await fn();
  } catch (error) {
    return expectErrno(error, op, code);
  }
  return expectErrno(undefined, op, code);
}
