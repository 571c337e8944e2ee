/**
 * Server-Sent Events framing (WHATWG HTML, "server-sent events"): the
 * response headers, encoding an event as one frame with its sequence id,
 * and capping an oversized `task_complete` so that one event never exceeds
 * the payload limit. The response body that carries frames is `body.ts`.
 *
 * @module
 */

import type { SSEEvent } from "../dag/events.ts";
import { withUnserialisableOutput } from "../dag/errors.ts";
import type { WireTaskCompleteEvent } from "./wire-events.ts";

/**
 * Default cap on a `task_complete` event's `data`, in bytes (64 KiB).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_MAX_EVENT_PAYLOAD_BYTES } from "./frame.ts";
 * assert.equal(DEFAULT_MAX_EVENT_PAYLOAD_BYTES, 65_536);
 * ```
 */
export const DEFAULT_MAX_EVENT_PAYLOAD_BYTES = 64 * 1024;

/**
 * Bytes of a frame besides its capped payload, at most about (`id:`,
 * `event:`, `data:` and the line ends): a full-size event takes the payload
 * cap plus this.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FRAME_OVERHEAD_BYTES } from "./frame.ts";
 * assert.equal(FRAME_OVERHEAD_BYTES, 1024);
 * ```
 */
export const FRAME_OVERHEAD_BYTES = 1024;

/**
 * Default reconnection delay announced to clients (`retry:`), in ms.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_RETRY_MS } from "./frame.ts";
 * assert.equal(DEFAULT_RETRY_MS, 2000);
 * ```
 */
export const DEFAULT_RETRY_MS = 2000;

/**
 * Default idle time before a `: keep-alive` comment, in ms.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_HEARTBEAT_MS } from "./frame.ts";
 * assert.equal(DEFAULT_HEARTBEAT_MS, 15_000);
 * ```
 */
export const DEFAULT_HEARTBEAT_MS = 15_000;

/**
 * The headers of every SSE response, exactly (reference clients compare
 * them verbatim; SSE is UTF-8 by definition, so no charset parameter).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SSE_HEADERS } from "./frame.ts";
 * const response = new Response("", { headers: SSE_HEADERS });
 * assert.equal(response.headers.get("content-type"), "text/event-stream");
 * assert.equal(response.headers.get("cache-control"), "no-cache");
 * ```
 */
export const SSE_HEADERS: Readonly<Record<string, string>> = {
  "Content-Type": "text/event-stream",
  "Cache-Control": "no-cache",
  "Connection": "keep-alive",
  "X-Accel-Buffering": "no",
};

/**
 * Fields of one SSE frame, for {@linkcode formatSSEFrame}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatSSEFrame, type SSEFields } from "./frame.ts";
 * const fields: SSEFields = { retry: 1000 };
 * assert.equal(formatSSEFrame(fields), "retry: 1000\n\n");
 * ```
 */
export interface SSEFields {
  /** `id:` line (line breaks are not allowed and are removed). */
  id?: string | number;
  /** `event:` line (line breaks are removed). */
  event?: string;
  /** `data:` lines; a multi-line string becomes one `data:` line per line. */
  data?: string;
  /** `retry:` line, in ms. */
  retry?: number;
}

const LINE_BREAK = /\r\n|\r|\n/;

/**
 * Formats one frame. Data containing CR, LF or CRLF is split into several
 * `data:` lines, which a client joins back with LF (so CR and CRLF come back
 * as LF, as the spec defines). Empty data gives one empty `data:` line.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatSSEFrame } from "./frame.ts";
 * assert.equal(
 *   formatSSEFrame({ id: 1, event: "note", data: "a\nb" }),
 *   "id: 1\nevent: note\ndata: a\ndata: b\n\n",
 * );
 * ```
 */
export function formatSSEFrame(fields: SSEFields): string {
  let out = "";
  if (fields.retry !== undefined) out += `retry: ${Math.max(0, Math.floor(fields.retry))}\n`;
  if (fields.id !== undefined) out += `id: ${oneLine(String(fields.id)).replaceAll("\0", "")}\n`;
  if (fields.event !== undefined) out += `event: ${oneLine(fields.event)}\n`;
  if (fields.data !== undefined) {
    const data = fields.data;
    if (data.includes("\n") || data.includes("\r")) {
      for (const line of data.split(LINE_BREAK)) out += `data: ${line}\n`;
    } else out += `data: ${data}\n`;
  }
  return out + "\n";
}

function oneLine(value: string): string {
  return value.includes("\n") || value.includes("\r") ? value.replace(/[\r\n]+/g, " ") : value;
}

/**
 * UTF-8 byte length of a string, without encoding it (a lone surrogate
 * counts 3 bytes, as `TextEncoder` writes U+FFFD for it).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { utf8Length } from "./frame.ts";
 * assert.equal(utf8Length("héllo 😀"), new TextEncoder().encode("héllo 😀").length);
 * ```
 */
export function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) bytes += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 2;
        i++;
      } else bytes += 2;
    } else bytes += 2;
  }
  return bytes;
}

/**
 * The JSON of an event's data, capped: a `task_complete` whose data would
 * exceed `maxBytes` carries instead the start of its output's JSON as a
 * string, `truncated: true` and `outputBytes`, the full size. When the data
 * is still too large without its output (a huge error message), the start
 * of `error` is kept, with `truncated: true` and `errorBytes`. Previews
 * never split a character and fill the room there is. Other event types are
 * never capped. Output that no longer serialises (a `toJSON` or getter that
 * throws) makes the `task_complete` an error saying so.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { eventDataJson } from "./frame.ts";
 * const event = {
 *   type: "task_complete" as const,
 *   data: {
 *     taskId: "big", tool: "echo", status: "success" as const, executionTimeMs: 1,
 *     timestamp: "2025-01-01T00:00:00.000Z", output: { blob: "x".repeat(10_000) },
 *   },
 * };
 * const json = eventDataJson(event, 1024);
 * assert.ok(json.length <= 1024);
 * const data = JSON.parse(json);
 * assert.equal(data.truncated, true);
 * assert.equal(data.outputBytes, JSON.stringify(event.data.output).length);
 * ```
 */
export function eventDataJson(event: SSEEvent, maxBytes = DEFAULT_MAX_EVENT_PAYLOAD_BYTES): string {
  let json: string;
  try {
    json = JSON.stringify(event.data);
  } catch (error) {
    // The executor checked the output, but a `toJSON` or getter may throw
    // (or meet a cycle) the next time: the event says so instead of
    // breaking the stream.
    if (event.type !== "task_complete") throw error;
    return eventDataJson(
      { type: "task_complete", data: withUnserialisableOutput(event.data, error) },
      maxBytes,
    );
  }
  // A UTF-16 code unit takes at most 3 UTF-8 bytes: short text needs no count.
  if (json.length * 3 <= maxBytes || event.type !== "task_complete") return json;
  if (utf8Length(json) <= maxBytes) return json;
  let data: WireTaskCompleteEvent["data"] = { ...event.data, truncated: true };
  if (event.data.output !== undefined) {
    const outputJson = JSON.stringify(event.data.output) ?? "";
    data.outputBytes = utf8Length(outputJson);
    data.output = "";
    const room = maxBytes - utf8Length(JSON.stringify(data));
    data.output = jsonStringPrefix(outputJson, room);
    if (room >= 0) return JSON.stringify(data);
  }
  if (typeof event.data.error === "string") {
    const error = event.data.error;
    data = { ...data, error: "", errorBytes: utf8Length(error) };
    data.error = jsonStringPrefix(error, maxBytes - utf8Length(JSON.stringify(data)));
  }
  return JSON.stringify(data);
}

/**
 * The longest prefix of `text` whose JSON string escaping takes at most
 * `room` UTF-8 bytes, never ending inside a surrogate pair.
 */
function jsonStringPrefix(text: string, room: number): string {
  let used = 0;
  let i = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    let units = 1;
    let cost: number;
    if (c === 0x22 || c === 0x5c) cost = 2; // \" \\
    else if (c < 0x20) cost = c === 8 || c === 9 || c === 10 || c === 12 || c === 13 ? 2 : 6;
    else if (c < 0x80) cost = 1;
    else if (c < 0x800) cost = 2;
    else if (c >= 0xd800 && c <= 0xdfff) {
      const next = c <= 0xdbff && i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
      if (next >= 0xdc00 && next <= 0xdfff) {
        cost = 4;
        units = 2;
      } else cost = 6; // a lone surrogate is written as \uXXXX
    } else cost = 3;
    if (used + cost > room) break;
    used += cost;
    i += units;
  }
  return text.slice(0, i);
}

/**
 * Encodes an event as one frame: `id: <id>\nevent: <type>\ndata: <json>\n\n`.
 * The JSON is a single line (JSON text never holds a raw line break), capped
 * as {@linkcode eventDataJson} says.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeSSEEvent } from "./frame.ts";
 * const frame = encodeSSEEvent({ type: "error", data: { error: "x", timestamp: "t" } }, 7);
 * assert.equal(frame, 'id: 7\nevent: error\ndata: {"error":"x","timestamp":"t"}\n\n');
 * ```
 */
export function encodeSSEEvent(
  event: SSEEvent,
  id?: number | string,
  maxPayloadBytes = DEFAULT_MAX_EVENT_PAYLOAD_BYTES,
): string {
  const data = eventDataJson(event, maxPayloadBytes);
  return id === undefined
    ? `event: ${event.type}\ndata: ${data}\n\n`
    : `id: ${id}\nevent: ${event.type}\ndata: ${data}\n\n`;
}
