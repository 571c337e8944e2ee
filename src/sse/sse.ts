/**
 * Server-Sent Events on the wire: encoding events as frames (WHATWG HTML
 * "server-sent events" syntax), capping oversized `task_complete` payloads,
 * and a response body that coalesces every frame ready in the same turn
 * into one chunk and sends `: keep-alive` comments when idle.
 *
 * @module
 */

import { concatBytes } from "./bytes.ts";
import type { SSEEvent } from "../dag/events.ts";
import { describeError } from "../dag/errors.ts";

/** Default cap on an event's `data` in bytes (64 KiB). */
export const DEFAULT_MAX_EVENT_PAYLOAD_BYTES = 64 * 1024;
/** Default reconnection delay announced to clients, in ms. */
export const DEFAULT_RETRY_MS = 2000;
/** Default idle time before a keep-alive comment, in ms. */
export const DEFAULT_HEARTBEAT_MS = 15_000;

/** The headers of every SSE response (reference clients compare them verbatim). */
export const SSE_HEADERS: Readonly<Record<string, string>> = {
  "Content-Type": "text/event-stream",
  "Cache-Control": "no-cache",
  "Connection": "keep-alive",
  "X-Accel-Buffering": "no",
};

/** Fields of one SSE frame. */
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
 * import { formatSSEFrame } from "./sse.ts";
 * formatSSEFrame({ id: 1, event: "note", data: "a\nb" });
 * // "id: 1\nevent: note\ndata: a\ndata: b\n\n"
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

/** UTF-8 byte length of a string, without encoding it. */
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
 * never split a character and fill the room there is.
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
    const { output: _, ...rest } = event.data;
    return eventDataJson({
      type: "task_complete",
      data: {
        ...rest,
        status: "error",
        error: `output is not JSON-serialisable: ${describeError(error)}`,
      },
    }, maxBytes);
  }
  // A UTF-16 code unit takes at most 3 UTF-8 bytes: short text needs no count.
  if (json.length * 3 <= maxBytes || event.type !== "task_complete") return json;
  if (utf8Length(json) <= maxBytes) return json;
  let data: Record<string, unknown> = { ...event.data, truncated: true };
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
 * The JSON is a single line (JSON text never holds a raw line break).
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

/** Settings of an {@linkcode SSEBody}. */
export interface SSEBodyOptions {
  /** `retry:` announced first; omitted when `undefined`. */
  retryMs?: number;
  /** Idle ms before a `: keep-alive` comment; 0 disables. Default 15000. */
  heartbeatMs?: number;
  /** Called once if the client cancels the body (it went away). */
  onCancel?: (reason: unknown) => void;
}

const encoder = new TextEncoder();

/**
 * The body of an SSE response, fed with frames. Frames pushed while the
 * client is busy, or in the same turn, go out together as one chunk. The
 * body is pull-driven: `bufferedBytes` grows while a client reads slower
 * than frames arrive, and {@linkcode SSEBody.drained} lets a producer wait.
 *
 * Frames may be text, or UTF-8 bytes: bytes pushed alone are handed to the
 * client as they are, not copied (so many bodies can send views of one
 * shared buffer; nothing may write into a view once pushed).
 *
 * @example
 * ```ts
 * import { SSEBody, SSE_HEADERS } from "./sse.ts";
 * const body = new SSEBody({ retryMs: 2000 });
 * body.push("event: note\ndata: hi\n\n");
 * body.close();
 * const response = new Response(body.readable, { headers: SSE_HEADERS });
 * console.log(await response.text());
 * ```
 */
export class SSEBody {
  /** The stream to hand to `new Response(...)`. */
  readonly readable: ReadableStream<Uint8Array>;
  #parts: (string | Uint8Array)[] = [];
  #bytes = 0;
  #events = 0;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #wake: (() => void) | undefined;
  #flushQueued = false;
  #closing = false;
  #ended = false;
  #sentSinceTick = false;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #drainWaiters: (() => void)[] = [];
  readonly #onCancel: ((reason: unknown) => void) | undefined;
  #markFinished!: () => void;
  /** Resolves once the body has ended: closed and sent, or cancelled by the client. */
  readonly finished: Promise<void> = new Promise((resolve) => {
    this.#markFinished = resolve;
  });

  /** Opens the body; the `retry:` line, if any, is its first block. */
  constructor(options: SSEBodyOptions = {}) {
    this.#onCancel = options.onCancel;
    if (options.retryMs !== undefined) this.push(`retry: ${Math.floor(options.retryMs)}\n\n`, 0);
    const heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    this.readable = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
      },
      pull: () => this.#pull(),
      cancel: (reason) => {
        this.#end();
        this.#onCancel?.(reason);
      },
    }, { highWaterMark: 0 });
    if (heartbeatMs > 0) {
      this.#heartbeat = setInterval(() => {
        // Frames pushed since the last tick count as activity; the keep-alive
        // itself does not, so an idle stream gets one every interval.
        const active = this.#sentSinceTick;
        this.#sentSinceTick = false;
        if (!active && this.#parts.length === 0) this.#queue(": keep-alive\n\n");
      }, heartbeatMs);
    }
  }

  /** Queued and not yet handed to the client: characters of text frames, bytes of byte frames. */
  get bufferedBytes(): number {
    return this.#bytes;
  }

  /** Whether the body is closed or cancelled. */
  get ended(): boolean {
    return this.#ended || this.#closing;
  }

  /** Events queued and not yet handed to the client (as counted by `push`). */
  get bufferedEvents(): number {
    return this.#events;
  }

  /**
   * Queues one or more encoded frames holding `events` events (default 1;
   * {@linkcode SSEBody.bufferedEvents} counts them), as text or as UTF-8
   * bytes (not copied: do not modify them afterwards). Ignored once the body
   * has ended.
   */
  push(frames: string | Uint8Array, events = 1): void {
    this.#sentSinceTick = true;
    this.#events += events;
    this.#queue(frames);
  }

  #queue(frames: string | Uint8Array): void {
    if (this.#ended || this.#closing) return;
    this.#parts.push(frames);
    this.#bytes += typeof frames === "string" ? frames.length : frames.byteLength;
    if (this.#wake !== undefined && !this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(this.#flushToWaitingReader);
    }
  }

  /** Resolves once less than `belowBytes` is queued (or the body ended). */
  drained(belowBytes = 0): Promise<void> {
    if (this.#bytes <= belowBytes || this.#ended) return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (this.#bytes <= belowBytes || this.#ended) resolve();
        else this.#drainWaiters.push(check);
      };
      this.#drainWaiters.push(check);
    });
  }

  /** Sends what is queued, then ends the stream. */
  close(): void {
    if (this.#ended || this.#closing) return;
    this.#closing = true;
    this.#stopHeartbeat();
    if (this.#parts.length === 0 && this.#wake !== undefined) this.#finish();
  }

  #pull(): Promise<void> | void {
    if (this.#ended) return;
    if (this.#parts.length > 0) {
      this.#enqueueParts();
      return;
    }
    if (this.#closing) {
      this.#finish();
      return;
    }
    return new Promise((resolve) => {
      this.#wake = resolve;
    });
  }

  #flushToWaitingReader = (): void => {
    this.#flushQueued = false;
    const wake = this.#wake;
    if (wake === undefined || this.#ended) return;
    this.#wake = undefined;
    this.#enqueueParts();
    wake();
  };

  #enqueueParts(): void {
    const chunk = oneChunk(this.#parts);
    this.#parts = [];
    this.#bytes = 0;
    this.#events = 0;
    this.#controller.enqueue(chunk);
    this.#notifyDrained();
    if (this.#closing) this.#finish();
  }

  #finish(): void {
    if (this.#ended) return;
    this.#end();
    const wake = this.#wake;
    this.#wake = undefined;
    try {
      this.#controller.close();
    } catch {
      // already closed or errored by the consumer
    }
    wake?.();
  }

  #end(): void {
    this.#ended = true;
    this.#markFinished();
    this.#parts = [];
    this.#bytes = 0;
    this.#events = 0;
    this.#stopHeartbeat();
    this.#notifyDrained();
  }

  #stopHeartbeat(): void {
    if (this.#heartbeat !== undefined) clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
  }

  #notifyDrained(): void {
    if (this.#drainWaiters.length === 0) return;
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const check of waiters) check();
  }
}

/**
 * The parts as one UTF-8 chunk: a byte part alone as it is (no copy), text
 * joined then encoded, a mix encoded and concatenated.
 */
function oneChunk(parts: (string | Uint8Array)[]): Uint8Array {
  if (parts.length === 1) {
    const part = parts[0];
    return typeof part === "string" ? encoder.encode(part) : part;
  }
  if (parts.every((part) => typeof part === "string")) return encoder.encode(parts.join(""));
  return concatBytes(parts.map((part) => typeof part === "string" ? encoder.encode(part) : part));
}
