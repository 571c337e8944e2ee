/**
 * A run's event log: every event of the run, encoded once as an SSE frame
 * with its sequence id (from 1), bounded in bytes. Past the bound the oldest
 * frames give way. Any number of readers follow the log at their own pace
 * through a cursor (the last sequence id they have); appending never waits.
 *
 * @module
 */

import type { SSEEvent } from "../dag/events.ts";
import { encodeSSEEvent, utf8Length } from "./sse.ts";

/** What a reader gets from {@linkcode RunLog.read}. */
export type LogRead =
  | { kind: "frames"; frames: string; lastSeq: number }
  | { kind: "lost"; missed: number; firstSeq: number }
  | { kind: "wait" }
  | { kind: "end" };

/** Bounded, append-only log of a run's encoded events. */
export class RunLog {
  readonly #maxBytes: number;
  readonly #maxPayloadBytes: number | undefined;
  #frames: string[] = [];
  #sizes: number[] = [];
  #head = 0;
  #firstSeq = 1;
  #nextSeq = 1;
  #bytes = 0;
  #ended = false;
  #waiters = new Set<() => void>();

  /**
   * Creates an empty log.
   *
   * @param maxBytes most bytes of frames kept
   * @param maxPayloadBytes cap on one `task_complete` event's data
   */
  constructor(maxBytes: number, maxPayloadBytes?: number) {
    this.#maxBytes = maxBytes;
    this.#maxPayloadBytes = maxPayloadBytes;
  }

  /** Sequence id of the last event appended (0 when none). */
  get lastSeq(): number {
    return this.#nextSeq - 1;
  }

  /** Sequence id of the oldest event still kept. */
  get firstSeq(): number {
    return this.#firstSeq;
  }

  /** Bytes of frames kept. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Whether the log is complete (no event will follow). */
  get ended(): boolean {
    return this.#ended;
  }

  /** Appends an event; returns its sequence id. Ignored (returns 0) once ended. */
  append(event: SSEEvent): number {
    if (this.#ended) return 0;
    const seq = this.#nextSeq++;
    const frame = encodeSSEEvent(event, seq, this.#maxPayloadBytes);
    const size = utf8Length(frame);
    this.#frames.push(frame);
    this.#sizes.push(size);
    this.#bytes += size;
    while (this.#bytes > this.#maxBytes && this.#frames.length - this.#head > 1) this.#dropOldest();
    this.#wake();
    return seq;
  }

  /** Marks the log complete and wakes every reader. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#wake();
  }

  /**
   * Frames after `cursor` (a sequence id), joined, up to about `maxBytes`;
   * or how many events the reader missed when they have given way; or
   * `wait` / `end` when there is nothing new.
   */
  read(cursor: number, maxBytes = 256 * 1024): LogRead {
    if (cursor + 1 < this.#firstSeq) {
      return { kind: "lost", missed: this.#firstSeq - 1 - cursor, firstSeq: this.#firstSeq };
    }
    const start = this.#head + (cursor + 1 - this.#firstSeq);
    const frames = this.#frames;
    if (start >= frames.length) return this.#ended ? { kind: "end" } : { kind: "wait" };
    let end = start;
    let bytes = 0;
    while (end < frames.length && (end === start || bytes + this.#sizes[end] <= maxBytes)) {
      bytes += this.#sizes[end];
      end++;
    }
    const text = end - start === 1 ? frames[start] : frames.slice(start, end).join("");
    return { kind: "frames", frames: text, lastSeq: cursor + (end - start) };
  }

  /**
   * Resolves on the next append or end, or as soon as `signal` aborts (a
   * reader that left must not stay queued until the run's next event).
   */
  changed(signal?: AbortSignal): Promise<void> {
    if (this.#ended || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      if (signal === undefined) {
        this.#waiters.add(resolve);
        return;
      }
      const done = () => {
        signal.removeEventListener("abort", done);
        this.#waiters.delete(done);
        resolve();
      };
      this.#waiters.add(done);
      signal.addEventListener("abort", done, { once: true });
    });
  }

  #dropOldest(): void {
    this.#bytes -= this.#sizes[this.#head];
    this.#frames[this.#head] = "";
    this.#head++;
    this.#firstSeq++;
    if (this.#head > 1024 && this.#head * 2 > this.#frames.length) {
      this.#frames = this.#frames.slice(this.#head);
      this.#sizes = this.#sizes.slice(this.#head);
      this.#head = 0;
    }
  }

  #wake(): void {
    if (this.#waiters.size === 0) return;
    const waiters = this.#waiters;
    this.#waiters = new Set();
    for (const resolve of waiters) resolve();
  }
}
