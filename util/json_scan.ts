// A linear, iterative pre-scan of JSON text for nesting depth. JSON.parse,
// and every recursive walk over its result (printing, comparing), use stack
// in proportion to nesting: 10,000 `[` in 20 KB overflow it. The scan runs
// BEFORE parsing, with a constant amount of stack, and names the offset of
// the first bracket past the bound so that a parser can report its line and
// column. Private to this package (not exported from mod.ts).

/**
 * Finds the first `[` or `{` nested deeper than `maxDepth` in JSON text
 * (brackets inside strings do not count). It does not validate the JSON:
 * `JSON.parse` does that afterwards, on text now known to be shallow.
 *
 * @param text The text.
 * @param maxDepth The deepest nesting allowed (1: `[1]` but not `[[1]]`).
 * @param start Where to start (an offset into `text`).
 * @param end Where to stop (exclusive).
 * @returns The offset of the first bracket too deep, or -1.
 *
 * @example
 * ```ts
 * import { tooDeep } from "./json_scan.ts";
 * import assert from "node:assert/strict";
 * assert.equal(tooDeep('{"a":[1,"[[["]}', 2), -1);
 * assert.equal(tooDeep('{"a":[[1]]}', 2), 6);
 * ```
 */
export function tooDeep(
  text: string,
  maxDepth: number,
  start = 0,
  end: number = text.length,
): number {
  let depth = 0;
  let inString = false;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) { // [ {
      if (++depth > maxDepth) return i;
    } else if (c === 0x5d || c === 0x7d) { // ] }
      depth--;
    }
  }
  return -1;
}

/**
 * The 1-based line and column of an offset in text (columns in UTF-16
 * units, as editors that count code units show them).
 *
 * @param text The text.
 * @param offset The offset.
 * @returns Line and column, from 1.
 *
 * @example
 * ```ts
 * import { lineColumn } from "./json_scan.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual(lineColumn("ab\ncd", 4), { line: 2, column: 2 });
 * ```
 */
export function lineColumn(
  text: string,
  offset: number,
): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  const stop = Math.min(offset, text.length);
  for (let i = text.indexOf("\n"); i !== -1 && i < stop;) {
    line++;
    lineStart = i + 1;
    i = text.indexOf("\n", lineStart);
  }
  return { line, column: offset - lineStart + 1 };
}
