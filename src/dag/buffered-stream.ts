/**
 * A bounded, order-keeping buffer between a producer of events (the
 * executor) and a consumer that may be slow (any `WritableStream` of
 * events): the library's adapter for `executeWithStreaming`. HTTP streams do
 * not use it; they read the run's event log (see `src/sse/log-stream.ts`).
 *
 * One number, `maxBufferSize`, bounds two separate behaviours:
 *
 * - **Batches (`onFlush`)**, as in the reference design: every
 *   `maxBufferSize` events written are handed to `onFlush` together, and
 *   `close()` hands it the rest (if any). Every event also goes downstream,
 *   in order, whatever `onFlush` does.
 * - **Backpressure (`write` waits; `onBackpressure`)**: while fewer than
 *   `maxBufferSize` events wait for the downstream to accept them, `write`
 *   resolves at once, so the producer never waits for the consumer. At that
 *   bound `write` waits until there is room again, and `onBackpressure` is
 *   told (once per time the bound is reached). `tryWrite` never waits.
 *
 * Memory stays bounded: one queue holds the events that either behaviour
 * still needs, at most `maxBufferSize` of them, plus one pending event per
 * writer that is waiting.
 *
 * @module
 */

import type { SSEEvent } from "./events.ts";
import { Queue } from "./queue.ts";

/**
 * Default of `maxBufferSize`: events per `onFlush` batch, and most events
 * held for a slow consumer.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_MAX_BUFFER_SIZE } from "./buffered-stream.ts";
 * assert.equal(DEFAULT_MAX_BUFFER_SIZE, 1000);
 * ```
 */
export const DEFAULT_MAX_BUFFER_SIZE = 1000;

/**
 * Settings of a {@linkcode BufferedEventStream}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { BufferedStreamConfig } from "./buffered-stream.ts";
 * const batches: number[] = [];
 * const config: BufferedStreamConfig = {
 *   maxBufferSize: 100,
 *   onFlush: (events) => void batches.push(events.length),
 * };
 * config.onFlush?.([]);
 * assert.deepEqual(batches, [0]);
 * ```
 */
export interface BufferedStreamConfig {
  /**
   * Events per `onFlush` batch, and most events held that the downstream
   * has not accepted yet (past it, `write` waits). Default 1000.
   */
  maxBufferSize?: number;
  /**
   * Called each time `maxBufferSize` events have been written since the
   * last call, with those events (a new array each time), and once more on
   * `close()` with the rest, if any. The events go downstream regardless.
   * An `onFlush` that throws fails the stream, as a failing downstream does.
   */
  onFlush?: (events: SSEEvent[]) => void;
  /**
   * Called each time a write has to wait because `maxBufferSize` events are
   * waiting for a slow downstream, with those events.
   */
  onBackpressure?: (waiting: readonly SSEEvent[]) => void;
}

const RESOLVED: Promise<void> = Promise.resolve();

interface BlockedWrite {
  event: SSEEvent;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Bounded event buffer in front of a stream writer: `onFlush` batches and
 * backpressure, as the module documentation says.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BufferedEventStream } from "./buffered-stream.ts";
 * import type { SSEEvent } from "./events.ts";
 *
 * const seen: SSEEvent[] = [];
 * const sink = new WritableStream<SSEEvent>({ write: (e) => void seen.push(e) });
 * const batches: number[] = [];
 * const buffer = new BufferedEventStream(sink.getWriter(), {
 *   maxBufferSize: 5,
 *   onFlush: (events) => void batches.push(events.length),
 * });
 * for (let i = 0; i < 6; i++) {
 *   await buffer.write({ type: "error", data: { error: `e${i}`, timestamp: "t" } });
 * }
 * assert.deepEqual(batches, [5]); // the first five, together
 * await buffer.close(); // everything delivered, the rest reported, the writer closed
 * assert.deepEqual(batches, [5, 1]);
 * assert.equal(seen.length, 6);
 * ```
 */
export class BufferedEventStream {
  readonly #writer: WritableStreamDefaultWriter<SSEEvent>;
  readonly #max: number;
  readonly #onFlush: ((events: SSEEvent[]) => void) | undefined;
  readonly #onBackpressure: ((waiting: readonly SSEEvent[]) => void) | undefined;
  /**
   * The last events accepted, as many as the two behaviours need: the
   * `#pending` newest wait for the pump, the `#batch` newest for `onFlush`.
   */
  readonly #events = new Queue<SSEEvent>();
  #pending = 0;
  #batch = 0;
  readonly #blocked = new Queue<BlockedWrite>();
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
    this.#onBackpressure = config.onBackpressure;
  }

  /** Events held that downstream has not accepted yet (at most `maxBufferSize`). */
  get size(): number {
    return this.#pending;
  }

  /**
   * Events the buffer keeps a reference to: those waiting for the downstream
   * and those of the `onFlush` batch under way (the same event counts once).
   * Never more than `maxBufferSize`; events of writers that wait are theirs.
   */
  get held(): number {
    return this.#events.length;
  }

  /**
   * Queues the event and returns true when the buffer has room (and no
   * earlier write is waiting); otherwise returns false and queues nothing.
   * Never waits and allocates no promise: the fast path of
   * {@linkcode BufferedEventStream.write} for producers that check.
   *
   * @throws what `onFlush` throws, when this event completes a batch
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { BufferedEventStream } from "./buffered-stream.ts";
   * import type { SSEEvent } from "./events.ts";
   *
   * const sink = new WritableStream<SSEEvent>({ write: () => new Promise(() => {}) }); // stalled
   * const buffer = new BufferedEventStream(sink.getWriter(), { maxBufferSize: 1 });
   * const event: SSEEvent = { type: "error", data: { error: "demo", timestamp: "2024-01-01T00:00:00.000Z" } };
   * assert.equal(buffer.tryWrite(event), true); // taken by the stalled downstream
   * assert.equal(buffer.tryWrite(event), true); // held
   * assert.equal(buffer.tryWrite(event), false); // full: the caller decides
   * await buffer.abort();
   * ```
   */
  tryWrite(event: SSEEvent): boolean {
    if (
      this.#failure !== undefined || this.#closed || !this.#blocked.empty ||
      this.#pending >= this.#max
    ) return false;
    this.#accept(event);
    this.#startPump();
    return true;
  }

  /**
   * Queues an event. Resolves at once while fewer than `maxBufferSize`
   * events wait for the downstream; at that bound, waits until there is room
   * (backpressure; `onBackpressure` is told). Rejects if the downstream
   * failed, `onFlush` threw, or the buffer was closed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { BufferedEventStream } from "./buffered-stream.ts";
   * import type { SSEEvent } from "./events.ts";
   *
   * const gate = Promise.withResolvers<void>();
   * const sink = new WritableStream<SSEEvent>({ write: () => gate.promise }); // slow until released
   * const waits: number[] = [];
   * const buffer = new BufferedEventStream(sink.getWriter(), {
   *   maxBufferSize: 2,
   *   onBackpressure: (waiting) => void waits.push(waiting.length),
   * });
   * const event: SSEEvent = { type: "error", data: { error: "x", timestamp: "t" } };
   * await buffer.write(event); // taken by the downstream, which is busy with it
   * await buffer.write(event); // held
   * await buffer.write(event); // held: two wait now
   * const third = buffer.write(event); // waits for room
   * assert.deepEqual(waits, [2]);
   * gate.resolve();
   * await third;
   * await buffer.close();
   * ```
   */
  write(event: SSEEvent): Promise<void> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure.error);
    if (this.#closed) return Promise.reject(new TypeError("BufferedEventStream is closed"));
    try {
      if (this.tryWrite(event)) return RESOLVED;
    } catch (error) {
      return Promise.reject(error);
    }
    if (!this.#full) {
      this.#full = true;
      this.#onBackpressure?.(this.#events.toArray(this.#events.length - this.#pending));
    }
    return new Promise((resolve, reject) => this.#blocked.push({ event, resolve, reject }));
  }

  /** Resolves once every event written so far has been accepted downstream. */
  flush(): Promise<void> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure.error);
    if (this.#pending === 0 && this.#blocked.empty && !this.#pumping) return RESOLVED;
    return new Promise<void>((resolve) => this.#idle.push(resolve)).then(() => {
      if (this.#failure !== undefined) throw this.#failure.error;
    });
  }

  /**
   * Delivers what is held, hands `onFlush` the events of the last,
   * incomplete batch (if any), then closes the downstream writer.
   */
  async close(): Promise<void> {
    await this.flush();
    this.#closed = true;
    try {
      if (this.#batch > 0) {
        const rest = this.#events.toArray(this.#events.length - this.#batch);
        this.#batch = 0;
        this.#trim();
        this.#onFlush?.(rest);
      }
    } finally {
      await this.#writer.close();
    }
  }

  /** Drops what is held (no `onFlush` for it) and aborts the downstream writer. */
  async abort(reason?: unknown): Promise<void> {
    this.#fail(reason ?? new DOMException("aborted", "AbortError"));
    this.#closed = true;
    await this.#writer.abort(reason).catch(() => {});
  }

  /** Takes `event` into the buffer: for the pump, and for the current batch. */
  #accept(event: SSEEvent): void {
    this.#events.push(event);
    this.#pending++;
    const onFlush = this.#onFlush;
    if (onFlush === undefined) return;
    if (++this.#batch < this.#max) return;
    const batch = this.#events.toArray(this.#events.length - this.#batch);
    this.#batch = 0;
    this.#trim();
    try {
      onFlush(batch);
    } catch (error) {
      this.#fail(error);
      throw error;
    }
  }

  /** Forgets the oldest events while neither behaviour needs them. */
  #trim(): void {
    const keep = Math.max(this.#pending, this.#batch);
    while (this.#events.length > keep) this.#events.shift();
  }

  #startPump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    this.#pump().catch((error) => this.#fail(error));
  }

  async #pump(): Promise<void> {
    const writer = this.#writer;
    const events = this.#events;
    while (this.#pending > 0) {
      const event = events.at(events.length - this.#pending)!;
      this.#pending--;
      this.#trim();
      // Room opened: a waiting writer gets it now, not once this event is written.
      this.#admitBlocked();
      // `ready` is awaited only when the downstream's own queue is full
      // (an await per event costs a turn of the microtask queue).
      const room = writer.desiredSize;
      if (room === null || room <= 0) await writer.ready;
      await writer.write(event);
    }
    this.#pumping = false;
    if (this.#blocked.empty) this.#notifyIdle();
  }

  /** Moves waiting writers' events into the buffer while there is room, in order. */
  #admitBlocked(): void {
    const blocked = this.#blocked;
    while (!blocked.empty && this.#pending < this.#max && this.#failure === undefined) {
      const next = blocked.shift()!;
      try {
        this.#accept(next.event);
      } catch (error) {
        next.reject(error);
        return;
      }
      next.resolve();
    }
    if (blocked.empty) this.#full = false;
  }

  #fail(error: unknown): void {
    if (this.#failure === undefined) this.#failure = { error };
    this.#pumping = false;
    this.#events.clear();
    this.#pending = 0;
    this.#batch = 0;
    for (const write of this.#blocked.drain()) write.reject(error);
    this.#notifyIdle();
  }

  #notifyIdle(): void {
    const idle = this.#idle;
    this.#idle = [];
    for (const resolve of idle) resolve();
  }
}
