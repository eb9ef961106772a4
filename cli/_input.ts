// Input files for the CLI (scenarios, traces): a path or "-" for stdin, read
// whole but never past a limit, so that a huge input costs nothing beyond
// the refusal. A file's size is checked before it is read; stdin is read as
// a stream (asynchronously, so Ctrl-C still ends a command waiting on it)
// and abandoned as soon as it passes the limit.

/**
 * The bytes of `path` (or stdin for `-`), or `undefined` when there are more
 * than `limit` of them.
 *
 * @param path A file path, or `-`.
 * @param limit The most bytes accepted.
 * @returns The bytes, or `undefined` past the limit (asynchronously).
 * @throws {Error} what reading the file throws (`Deno.errors.NotFound`, …).
 */
export async function readBoundedInput(
  path: string,
  limit: number,
): Promise<Uint8Array | undefined> {
  if (path !== "-") {
    if ((await Deno.stat(path)).size > limit) return undefined;
    const bytes = await Deno.readFile(path);
    return bytes.length > limit ? undefined : bytes;
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of Deno.stdin.readable) {
    chunks.push(chunk);
    size += chunk.length;
    if (size > limit) return undefined;
  }
  const all = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.length;
  }
  return all;
}
