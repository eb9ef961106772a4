// Bounded integer settings of the real-Xen tests, from the environment: a
// value out of its documented range stops the file at once with the name
// and the range, rather than running with a surprise.

/**
 * `name` from the environment as an integer in `min..max`, or `fallback`.
 *
 * @param name The variable.
 * @param fallback Its default.
 * @param min The smallest value allowed.
 * @param max The largest value allowed.
 * @returns The value.
 * @throws {RangeError} naming the variable and its range.
 */
export function envInteger(
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const text = Deno.env.get(name);
  const value = text === undefined ? fallback : Number(text);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer in ${min}..${max}`);
  }
  return value;
}
