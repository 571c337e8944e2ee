/**
 * The current time as ISO 8601 text, formatted once per millisecond: a run
 * emits thousands of events per millisecond when tasks are fast, and the
 * server logs a line per request; formatting the date is a good part of
 * either.
 *
 * @module
 */

let lastMs = Number.NaN;
let lastIso = "";

/**
 * `new Date().toISOString()`, computed at most once per millisecond.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isoNow } from "./iso-now.ts";
 * const before = Date.now();
 * const now = Date.parse(isoNow());
 * assert.ok(now >= before && now <= Date.now());
 * ```
 */
export function isoNow(): string {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastIso = new Date(ms).toISOString();
  }
  return lastIso;
}
