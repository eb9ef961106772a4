// A JSON parser that remembers where each value starts, so that a bad
// scenario file can be reported as `file:line:column: steps[2].port: …`.
// `JSON.parse` in V8 names no position for many syntax errors. Nesting is
// bounded (MAX_JSON_DEPTH) by a linear, iterative scan before parsing, so
// the parser's recursion never goes deeper than that whatever the input.

import { tooDeep } from "../util/json_scan.ts";

/**
 * The deepest nesting a scenario file may have (a scenario needs 4 levels:
 * the document, "steps", a step, none deeper).
 */
export const MAX_JSON_DEPTH = 32;

/** A line and column, both from 1. */
export interface JsonLocation {
  /** Line, from 1. */
  line: number;
  /** Column, from 1 (in UTF-16 units). */
  column: number;
}

/** A JSON syntax error with its location. */
export class JsonSyntaxError extends SyntaxError {
  /** Where the error is. */
  readonly location: JsonLocation;

  /**
   * Constructs a syntax error.
   *
   * @param message What is wrong.
   * @param location Where.
   */
  constructor(message: string, location: JsonLocation) {
    super(message);
    this.name = "JsonSyntaxError";
    this.location = location;
  }
}

/** A parsed document and the start of every value in it, by path. */
export interface LocatedJson {
  /** The value, as `JSON.parse` would give it. */
  value: unknown;
  /** Location of the value at a path such as `steps[2].port` (`""` = root). */
  locate(path: string): JsonLocation;
}

/**
 * Parses JSON text, recording where each value starts.
 *
 * @param text The text.
 * @returns The value and a locator.
 * @throws {JsonSyntaxError} At the first syntax error.
 */
export function parseLocatedJson(text: string): LocatedJson {
  const starts = new Map<string, number>();
  let i = 0;
  const deep = tooDeep(text, MAX_JSON_DEPTH);
  if (deep !== -1) {
    throw new JsonSyntaxError(
      `JSON nested deeper than ${MAX_JSON_DEPTH} levels`,
      locationOf(text, deep),
    );
  }

  const where = (offset: number): JsonLocation => locationOf(text, offset);
  const fail = (message: string, offset = i): never => {
    throw new JsonSyntaxError(message, where(offset));
  };
  const skip = (): void => {
    while (i < text.length && " \t\n\r".includes(text[i])) i++;
  };
  const describe = (): string =>
    i >= text.length ? "end of file" : `'${text[i]}'`;

  const value = (path: string): unknown => {
    skip();
    starts.set(path, i);
    const c = text[i];
    if (c === "{") return object(path);
    if (c === "[") return array(path);
    if (c === '"') return string();
    if (c === "-" || (c >= "0" && c <= "9")) return number();
    for (const [word, result] of WORDS) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return result;
      }
    }
    return fail(`Unexpected ${describe()}: expected a value`);
  };

  const object = (path: string): Record<string, unknown> => {
    const result: Record<string, unknown> = {};
    i++;
    skip();
    if (text[i] === "}") {
      i++;
      return result;
    }
    while (true) {
      skip();
      if (text[i] !== '"') fail(`Unexpected ${describe()}: expected a key`);
      const key = string();
      skip();
      if (text[i] !== ":") fail(`Unexpected ${describe()}: expected ':'`);
      i++;
      const child = path === "" ? key : `${path}.${key}`;
      // An own property even for "__proto__" (as JSON.parse makes it):
      // assignment would replace the object's prototype instead, and its
      // fields would then be inherited, unseen by the checks.
      Object.defineProperty(result, key, {
        value: value(child),
        enumerable: true,
        writable: true,
        configurable: true,
      });
      skip();
      if (text[i] === ",") {
        i++;
        continue;
      }
      if (text[i] === "}") {
        i++;
        return result;
      }
      fail(`Unexpected ${describe()}: expected ',' or '}'`);
    }
  };

  const array = (path: string): unknown[] => {
    const result: unknown[] = [];
    i++;
    skip();
    if (text[i] === "]") {
      i++;
      return result;
    }
    while (true) {
      result.push(value(`${path}[${result.length}]`));
      skip();
      if (text[i] === ",") {
        i++;
        continue;
      }
      if (text[i] === "]") {
        i++;
        return result;
      }
      fail(`Unexpected ${describe()}: expected ',' or ']'`);
    }
  };

  const string = (): string => {
    const start = i;
    i++;
    while (i < text.length && text[i] !== '"') {
      if (text[i] === "\\") i++;
      else if (text.charCodeAt(i) < 0x20) fail("Control character in string");
      i++;
    }
    if (i >= text.length) fail("Unterminated string", start);
    i++;
    try {
      return JSON.parse(text.slice(start, i));
    } catch {
      return fail("Bad escape in string", start);
    }
  };

  const number = (): number => {
    NUMBER.lastIndex = i;
    const match = NUMBER.exec(text);
    if (match === null) return fail(`Unexpected ${describe()}: bad number`);
    i += match[0].length;
    return Number(match[0]);
  };

  const result = value("");
  skip();
  if (i < text.length) fail(`Unexpected ${describe()} after the document`);
  return {
    value: result,
    locate: (path) => {
      // A path that names nothing in the file (a missing key) is located
      // at its nearest enclosing value.
      let p = path;
      while (!starts.has(p) && p !== "") p = p.replace(PARENT, "");
      return where(starts.get(p) ?? 0);
    },
  };
}

const WORDS: [string, unknown][] = [["true", true], ["false", false], [
  "null",
  null,
]];
/** The last step of a path: `.key` or `[n]`, or the first key. */
const PARENT = /(\.[^.[]*|\[\d+\]|^[^.[]*)$/;
// Sticky: matches at lastIndex without copying the rest of the text.
const NUMBER = /-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;

function locationOf(text: string, offset: number): JsonLocation {
  let line = 1, column = 1;
  for (let k = 0; k < offset && k < text.length; k++) {
    if (text[k] === "\n") {
      line++;
      column = 1;
    } else {
      column++;
    }
  }
  return { line, column };
}
