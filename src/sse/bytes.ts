/**
 * Joining byte chunks, for the few places that must hand on one buffer.
 *
 * @module
 */

/**
 * The chunks as one `Uint8Array`: a single chunk as it is (no copy), more
 * copied into a new buffer of their total length.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { concatBytes } from "./bytes.ts";
 * assert.deepEqual(concatBytes([new Uint8Array([1]), new Uint8Array([2, 3])]), new Uint8Array([1, 2, 3]));
 * const one = new Uint8Array([4]);
 * assert.equal(concatBytes([one]), one);
 * ```
 */
export function concatBytes(chunks: readonly Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  let length = 0;
  for (const chunk of chunks) length += chunk.byteLength;
  const out = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}
