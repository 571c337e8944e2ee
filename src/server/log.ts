/**
 * The bundled server's structured log: one JSON object a line on stderr.
 *
 * @module
 */

import { isoNow } from "../dag/iso-now.ts";

const encoder = new TextEncoder();

/** Lines are written together once this many bytes (UTF-16 units) wait. */
const FLUSH_AT = 64 * 1024;
/** Or this long after the first of them. */
const FLUSH_AFTER_MS = 10;

const waiting: string[] = [];
let waitingSize = 0;
let timer: ReturnType<typeof setTimeout> | undefined;

/**
 * Logs a record as one JSON line on stderr, stamped with `time`. Lines are
 * written in order, in batches: within 10 ms, at once when 64 KiB wait, and
 * on {@linkcode flushLog} (which the server calls before it exits; a process
 * that ends by itself flushes too). Never throws.
 *
 * @example
 * ```ts
 * import { flushLog, logToStderr } from "./log.ts";
 * logToStderr({ msg: "started", port: 8000 });
 * flushLog();
 * // stderr: {"time":"2025-01-01T00:00:00.000Z","msg":"started","port":8000}
 * ```
 */
export function logToStderr(record: Record<string, unknown>): void {
  // `time` first, without copying the record: `{"time":"…",` + the rest of its JSON.
  const json = JSON.stringify(record);
  const line = `{"time":"${isoNow()}"${json === "{}" ? "}" : `,${json.slice(1)}`}\n`;
  waiting.push(line);
  waitingSize += line.length;
  if (waitingSize >= FLUSH_AT) flushLog();
  else if (timer === undefined) {
    const armed = setTimeout(flushLog, FLUSH_AFTER_MS);
    // The batch never holds the process open; "unload" below writes it.
    Deno.unrefTimer(armed as unknown as number);
    timer = armed;
  }
}

/** Writes every waiting log line now. Never throws. */
export function flushLog(): void {
  if (timer !== undefined) clearTimeout(timer);
  timer = undefined;
  if (waiting.length === 0) return;
  const bytes = encoder.encode(waiting.join(""));
  waiting.length = 0;
  waitingSize = 0;
  try {
    for (let at = 0; at < bytes.length;) at += Deno.stderr.writeSync(bytes.subarray(at));
  } catch {
    // stderr closed: logging must never break a request
  }
}

globalThis.addEventListener("unload", flushLog);

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
