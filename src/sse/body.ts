/**
 * The body of an SSE response: a pull-driven `ReadableStream` fed with
 * encoded frames. Frames that arrive while the client is busy, or in the
 * same turn, go out together as one chunk; an idle stream gets
 * `: keep-alive` comments. Framing itself is `frame.ts`.
 *
 * @module
 */

import { concatBytes } from "./bytes.ts";
import { DEFAULT_HEARTBEAT_MS } from "./frame.ts";

/**
 * Settings of an {@linkcode SSEBody}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SSEBody, type SSEBodyOptions } from "./body.ts";
 * const options: SSEBodyOptions = { retryMs: 500, heartbeatMs: 0 };
 * const body = new SSEBody(options);
 * body.close();
 * assert.equal(await new Response(body.readable).text(), "retry: 500\n\n");
 * ```
 */
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
 * import assert from "node:assert/strict";
 * import { SSEBody } from "./body.ts";
 * import { SSE_HEADERS } from "./frame.ts";
 * const body = new SSEBody({ retryMs: 2000 });
 * body.push("event: note\ndata: hi\n\n");
 * body.close();
 * const response = new Response(body.readable, { headers: SSE_HEADERS });
 * assert.equal(await response.text(), "retry: 2000\n\nevent: note\ndata: hi\n\n");
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
