/**
 * A bounded, order-keeping buffer between a producer of events (the
 * executor) and a consumer that may be slow (an HTTP client).
 *
 * Policy: events are handed downstream in order, none is dropped. Up to
 * `maxBufferSize` events that downstream has not yet accepted are held, and
 * while there is room `write` resolves at once, so the producer never waits
 * for the consumer. When the bound is reached, `onFlush` is told (with the
 * events held at that moment) and `write` resolves only once there is room
 * again: that is the only backpressure the producer ever feels, and it keeps
 * memory bounded by `maxBufferSize` events plus one pending event per
 * waiting writer.
 *
 * @module
 */

import type { SSEEvent } from "./events.ts";

/** Default most events held for a slow consumer. */
export const DEFAULT_MAX_BUFFER_SIZE = 1000;

/** Settings of a {@linkcode BufferedEventStream}. */
export interface BufferedStreamConfig {
  /** Most events held that downstream has not accepted yet. Default 1000. */
  maxBufferSize?: number;
  /** Called each time the buffer fills up, with the events it holds then. */
  onFlush?: (events: readonly SSEEvent[]) => void;
}

const RESOLVED: Promise<void> = Promise.resolve();

/**
 * Bounded event buffer in front of a stream writer.
 *
 * @example
 * ```ts
 * import { BufferedEventStream } from "./buffered-stream.ts";
 * import type { SSEEvent } from "./events.ts";
 *
 * const seen: SSEEvent[] = [];
 * const sink = new WritableStream<SSEEvent>({ write: (e) => void seen.push(e) });
 * const buffer = new BufferedEventStream(sink.getWriter(), { maxBufferSize: 10 });
 * await buffer.write({ type: "error", data: { error: "demo", timestamp: new Date().toISOString() } });
 * await buffer.close(); // everything delivered, then the writer is closed
 * ```
 */
export class BufferedEventStream {
  readonly #writer: WritableStreamDefaultWriter<SSEEvent>;
  readonly #max: number;
  readonly #onFlush: ((events: readonly SSEEvent[]) => void) | undefined;
  #queue: SSEEvent[] = [];
  #head = 0;
  #blocked: { event: SSEEvent; resolve: () => void; reject: (e: unknown) => void }[] = [];
  #blockedHead = 0;
  #idle: (() => void)[] = [];
  #pumping = false;
  #failure: { error: unknown } | undefined;
  #closed = false;
  #full = false;

  /**
   * Wraps a downstream writer.
   *
   * @throws {RangeError} when `maxBufferSize` is not a whole number >= 1
   */
  constructor(
    downstream: WritableStreamDefaultWriter<SSEEvent>,
    config: BufferedStreamConfig = {},
  ) {
    const max = config.maxBufferSize ?? DEFAULT_MAX_BUFFER_SIZE;
    if (!Number.isInteger(max) || max < 1) {
      throw new RangeError(`maxBufferSize must be a whole number >= 1, got ${max}`);
    }
    this.#writer = downstream;
    this.#max = max;
    this.#onFlush = config.onFlush;
  }

  /** Events held that downstream has not accepted yet. */
  get size(): number {
    return this.#queue.length - this.#head;
  }

  /**
   * Queues the event and returns true when the buffer has room (and no
   * earlier write is waiting); otherwise returns false and queues nothing.
   * Never waits and allocates no promise: the fast path of
   * {@linkcode BufferedEventStream.write} for producers that check.
   *
   * @example
   * ```ts
   * import { BufferedEventStream } from "./buffered-stream.ts";
   * import type { SSEEvent } from "./events.ts";
   *
   * const sink = new WritableStream<SSEEvent>({ write: () => {} });
   * const buffer = new BufferedEventStream(sink.getWriter(), { maxBufferSize: 1 });
   * const event: SSEEvent = { type: "error", data: { error: "demo", timestamp: "2024-01-01T00:00:00.000Z" } };
   * if (!buffer.tryWrite(event)) await buffer.write(event);
   * await buffer.close();
   * ```
   */
  tryWrite(event: SSEEvent): boolean {
    if (
      this.#failure !== undefined || this.#closed || this.#blockedHead < this.#blocked.length ||
      this.size >= this.#max
    ) return false;
    this.#queue.push(event);
    this.#startPump();
    return true;
  }

  /**
   * Queues an event. Resolves at once while the buffer has room, else once
   * it has; rejects if downstream failed or the buffer was closed.
   */
  write(event: SSEEvent): Promise<void> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure.error);
    if (this.#closed) return Promise.reject(new TypeError("BufferedEventStream is closed"));
    if (this.tryWrite(event)) return RESOLVED;
    if (!this.#full) {
      this.#full = true;
      this.#onFlush?.(this.#queue.slice(this.#head));
    }
    return new Promise((resolve, reject) => this.#blocked.push({ event, resolve, reject }));
  }

  /** Resolves once every event written so far has been accepted downstream. */
  flush(): Promise<void> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure.error);
    if (this.size === 0 && !this.#hasBlocked() && !this.#pumping) return RESOLVED;
    return new Promise<void>((resolve) => this.#idle.push(resolve)).then(() => {
      if (this.#failure !== undefined) throw this.#failure.error;
    });
  }

  /** Delivers what is held, then closes the downstream writer. */
  async close(): Promise<void> {
    await this.flush();
    this.#closed = true;
    await this.#writer.close();
  }

  /** Drops what is held and aborts the downstream writer. */
  async abort(reason?: unknown): Promise<void> {
    this.#fail(reason ?? new DOMException("aborted", "AbortError"));
    this.#closed = true;
    await this.#writer.abort(reason).catch(() => {});
  }

  #startPump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    this.#pump().catch((error) => this.#fail(error));
  }

  async #pump(): Promise<void> {
    const writer = this.#writer;
    while (this.size > 0) {
      const event = this.#queue[this.#head];
      this.#queue[this.#head++] = undefined as unknown as SSEEvent;
      // Room opened: a waiting writer gets it now, not once this event is written.
      this.#admitBlocked();
      // `ready` is awaited only when the downstream's own queue is full
      // (an await per event costs a turn of the microtask queue).
      const room = writer.desiredSize;
      if (room === null || room <= 0) await writer.ready;
      await writer.write(event);
      if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head);
        this.#head = 0;
      }
    }
    this.#queue = [];
    this.#head = 0;
    this.#pumping = false;
    if (!this.#hasBlocked()) this.#notifyIdle();
  }

  /** Moves waiting writers' events into the buffer while there is room, in order. */
  #admitBlocked(): void {
    const blocked = this.#blocked;
    // A head index, not shift(): thousands of writers may wait at once.
    while (this.#blockedHead < blocked.length && this.size < this.#max) {
      const next = blocked[this.#blockedHead];
      blocked[this.#blockedHead++] = undefined as unknown as (typeof blocked)[number];
      this.#queue.push(next.event);
      next.resolve();
    }
    if (this.#blockedHead === blocked.length) {
      this.#blocked = [];
      this.#blockedHead = 0;
      this.#full = false;
    } else if (this.#blockedHead > 1024 && this.#blockedHead * 2 > blocked.length) {
      this.#blocked = blocked.slice(this.#blockedHead);
      this.#blockedHead = 0;
    }
  }

  #hasBlocked(): boolean {
    return this.#blockedHead < this.#blocked.length;
  }

  #fail(error: unknown): void {
    if (this.#failure === undefined) this.#failure = { error };
    this.#pumping = false;
    this.#queue = [];
    this.#head = 0;
    const blocked = this.#blocked;
    const head = this.#blockedHead;
    this.#blocked = [];
    this.#blockedHead = 0;
    for (let k = head; k < blocked.length; k++) blocked[k].reject(error);
    this.#notifyIdle();
  }

  #notifyIdle(): void {
    for (const resolve of this.#idle.splice(0)) resolve();
  }
}
