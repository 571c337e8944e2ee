/**
 * The bundled server's structured log: one JSON object a line on stderr.
 *
 * @module
 */

const encoder = new TextEncoder();

/**
 * Writes a log record as one JSON line on stderr, stamped with `time`
 * (synchronously, so lines keep their order and none is lost on exit; about
 * half the cost of `console.error`). Never throws.
 *
 * @example
 * ```ts
 * import { logToStderr } from "./log.ts";
 * logToStderr({ msg: "started", port: 8000 });
 * // stderr: {"time":"2025-01-01T00:00:00.000Z","msg":"started","port":8000}
 * ```
 */
export function logToStderr(record: Record<string, unknown>): void {
  const line = JSON.stringify({ time: new Date().toISOString(), ...record }) + "\n";
  try {
    Deno.stderr.writeSync(encoder.encode(line));
  } catch {
    // stderr closed: logging must never break a request
  }
}

/**
 * A duration for a log record: milliseconds to one decimal place.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { roundMs } from "./log.ts";
 * assert.equal(roundMs(12.345), 12.3);
 * assert.equal(roundMs(undefined), undefined);
 * ```
 */
export function roundMs(ms: number | undefined): number | undefined {
  return ms === undefined ? undefined : Math.round(ms * 10) / 10;
}
