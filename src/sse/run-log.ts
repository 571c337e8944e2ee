/**
 * A run's event log: every event of the run, encoded once as an SSE frame
 * with its sequence id (from 1), bounded in bytes. Past the bound the oldest
 * frames give way. Any number of readers follow the log at their own pace
 * through a cursor (the last sequence id they have); appending never waits.
 *
 * Frames are stored as UTF-8 bytes, packed into blocks of up to 64 KiB that
 * every reader shares: a read hands out a view of a block, not a copy, so a
 * thousand watchers of one run hold that run's bytes once, however far behind
 * they are. The views are read-only by contract: whoever gets one must not
 * write into it.
 *
 * Several logs may share a {@linkcode LogBudget}: the bytes of all of them
 * together, bounded. A log whose append puts the budget over first asks the
 * budget's owner to free others (a server forgets finished runs), then gives
 * way itself, oldest events first, as it does past its own bound. A log's
 * owner may also let frames give way early ({@linkcode RunLog.dropThrough}),
 * when no reader will need them again.
 *
 * @module
 */

import type { SSEEvent } from "../dag/events.ts";
import { Queue } from "../dag/queue.ts";
import { encodeSSEEvent, utf8Length } from "./frame.ts";

/**
 * What a reader gets from {@linkcode RunLog.readChunk}: the frames after its
 * cursor as a shared, read-only byte view; how many events it missed when
 * they have given way; or `wait` / `end` when there is nothing new.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type LogChunk, RunLog } from "./run-log.ts";
 * const log = new RunLog(1_000_000);
 * log.append({ type: "error", data: { error: "x", timestamp: "t" } });
 * const chunk: LogChunk = log.readChunk(0);
 * assert.equal(chunk.kind, "frames");
 * if (chunk.kind === "frames") assert.equal(chunk.events, 1);
 * ```
 */
export type LogChunk =
  | { kind: "frames"; bytes: Uint8Array; lastSeq: number; events: number }
  | { kind: "lost"; missed: number; firstSeq: number }
  | { kind: "wait" }
  | { kind: "end" };

/**
 * A bound on the bytes of several {@linkcode RunLog}s together. Logs charge
 * it as they append and release it as frames give way or the log is
 * discarded. When an append puts it over `maxBytes`, the log calls
 * `reclaim` (which may discard other logs), then drops its own oldest
 * frames until the budget holds again (it always keeps its newest frame).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LogBudget, RunLog } from "./run-log.ts";
 * const budget = new LogBudget(300);
 * const a = new RunLog(10_000, undefined, budget);
 * const b = new RunLog(10_000, undefined, budget);
 * for (let i = 0; i < 5; i++) {
 *   a.append({ type: "error", data: { error: "x", timestamp: "t" } });
 *   b.append({ type: "error", data: { error: "x", timestamp: "t" } });
 * }
 * assert.ok(budget.usedBytes <= 300);
 * assert.equal(budget.usedBytes, a.bytes + b.bytes);
 * ```
 */
export class LogBudget {
  /** Most bytes the logs may hold together. */
  readonly maxBytes: number;
  readonly #reclaim: ((excess: number) => void) | undefined;
  #used = 0;

  /**
   * Creates a budget.
   *
   * @param maxBytes most bytes of frames all its logs may hold together
   * @param reclaim called with the excess when an append puts the budget
   *   over; may free bytes of other logs (e.g. discard finished runs' logs)
   */
  constructor(maxBytes: number, reclaim?: (excess: number) => void) {
    this.maxBytes = maxBytes;
    this.#reclaim = reclaim;
  }

  /** Bytes of frames all its logs hold now. */
  get usedBytes(): number {
    return this.#used;
  }

  /** Counts `bytes` more (called by a log). */
  charge(bytes: number): void {
    this.#used += bytes;
  }

  /** Counts `bytes` less (called by a log). */
  release(bytes: number): void {
    this.#used -= bytes;
  }

  /** Asks the owner to free bytes when over the bound (called by a log). */
  reclaim(): void {
    if (this.#used > this.maxBytes) this.#reclaim?.(this.#used - this.maxBytes);
  }
}

/** Frames are packed into blocks of at most this many bytes. */
const BLOCK_BYTES = 64 * 1024;
/** A log's first block starts this small (a short run stays small) and doubles as it fills. */
const FIRST_BLOCK_BYTES = 4096;

/** A buffer of encoded frames; `bytes` is replaced when the block grows or is trimmed. */
interface Block {
  bytes: Uint8Array;
  used: number;
}

const encoder = new TextEncoder();

/**
 * Bounded, append-only log of a run's encoded events.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RunLog } from "./run-log.ts";
 * const log = new RunLog(1_000_000);
 * const seq = log.append({ type: "task_start", data: { taskId: "a", tool: "echo", timestamp: "t" } });
 * assert.equal(seq, 1);
 * const read = log.readChunk(0);
 * assert.equal(read.kind, "frames");
 * if (read.kind === "frames") {
 *   assert.equal(
 *     new TextDecoder().decode(read.bytes),
 *     'id: 1\nevent: task_start\ndata: {"taskId":"a","tool":"echo","timestamp":"t"}\n\n',
 *   );
 * }
 * log.end();
 * assert.equal(log.readChunk(1).kind, "end");
 * ```
 */
export class RunLog {
  readonly #maxBytes: number;
  readonly #maxPayloadBytes: number | undefined;
  readonly #budget: LogBudget | undefined;
  /**
   * For each frame kept, oldest first: its block, its offset in the block,
   * and where it ends in the log's whole byte history (so a frame's size is
   * its end minus the previous one's, and the bytes after any kept frame
   * are one subtraction).
   */
  readonly #blocks = new Queue<Block>();
  readonly #offsets = new Queue<number>();
  readonly #ends = new Queue<number>();
  /** The block appends go to, while it has room; undefined once sealed. */
  #open: Block | undefined;
  /** Bytes ever appended; and where the oldest kept frame starts in that history. */
  #appended = 0;
  #base = 0;
  #firstSeq = 1;
  #nextSeq = 1;
  #ended = false;
  #discarded = false;
  #waiters = new Set<() => void>();
  #observer: ((seq: number, frame: string) => void) | undefined;

  /**
   * Creates an empty log.
   *
   * @param maxBytes most bytes of frames kept
   * @param maxPayloadBytes cap on one `task_complete` event's data
   * @param budget a bound shared with other logs, if any
   */
  constructor(maxBytes: number, maxPayloadBytes?: number, budget?: LogBudget) {
    this.#maxBytes = maxBytes;
    this.#maxPayloadBytes = maxPayloadBytes;
    this.#budget = budget;
  }

  /** Sequence id of the last event appended (0 when none). */
  get lastSeq(): number {
    return this.#nextSeq - 1;
  }

  /** Sequence id of the oldest event still kept. */
  get firstSeq(): number {
    return this.#firstSeq;
  }

  /** Bytes of frames kept (UTF-8). */
  get bytes(): number {
    return this.#appended - this.#base;
  }

  /** Whether the log is complete (no event will follow). */
  get ended(): boolean {
    return this.#ended;
  }

  /** Whether {@linkcode RunLog.discard} emptied the log. */
  get discarded(): boolean {
    return this.#discarded;
  }

  /** Appends an event; returns its sequence id. Ignored (returns 0) once ended. */
  append(event: SSEEvent): number {
    if (this.#ended) return 0;
    const seq = this.#nextSeq;
    return this.#add(seq, encodeSSEEvent(event, seq, this.#maxPayloadBytes));
  }

  /**
   * Appends a frame encoded elsewhere (a copy of another process's log),
   * with its sequence id `seq`, which must come after the last one. When
   * `seq` skips ids (those frames gave way there), the frames kept here give
   * way too and the log goes on from `seq`: a reader that still needed them
   * gets `lost`. Returns `seq`; ignored (returns 0) once ended or for an id
   * already passed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { RunLog } from "./run-log.ts";
   * const copy = new RunLog(1 << 20);
   * copy.appendFrame(1, "id: 1\nevent: task_start\ndata: {}\n\n");
   * copy.appendFrame(5, "id: 5\nevent: task_start\ndata: {}\n\n");
   * assert.deepEqual([copy.firstSeq, copy.lastSeq], [5, 5]);
   * assert.equal(copy.appendFrame(5, "id: 5\n\n"), 0);
   * ```
   */
  appendFrame(seq: number, frame: string): number {
    if (this.#ended || seq < this.#nextSeq) return 0;
    if (seq > this.#nextSeq) {
      while (!this.#blocks.empty) this.#dropOldest();
      this.#firstSeq = this.#nextSeq = seq;
    }
    return this.#add(seq, frame);
  }

  /**
   * Calls `observer` with each frame appended from now on, with its sequence
   * id (one observer: a later call replaces it). For a copy of the log kept
   * elsewhere.
   */
  observe(observer: (seq: number, frame: string) => void): void {
    this.#observer = observer;
  }

  /** Stores frame `seq` (the next id), encoded. */
  #add(seq: number, frame: string): number {
    this.#nextSeq = seq + 1;
    this.#observer?.(seq, frame);
    // Encode straight into the open block when the frame surely fits (a
    // UTF-16 unit is at most 3 bytes): encodeInto says how many bytes it
    // took, so the frame is measured and copied in one pass.
    let block = this.#open;
    let offset = 0;
    let size = -1;
    if (block !== undefined && block.bytes.length - block.used >= frame.length * 3) {
      offset = block.used;
      size = encoder.encodeInto(frame, block.bytes.subarray(offset)).written;
    } else {
      size = utf8Length(frame);
      block = this.#blockFor(size);
      offset = block.used;
      encoder.encodeInto(frame, block.bytes.subarray(offset, offset + size));
    }
    block.used += size;
    this.#appended += size;
    this.#blocks.push(block);
    this.#offsets.push(offset);
    this.#ends.push(this.#appended);
    const budget = this.#budget;
    budget?.charge(size);
    if (this.#appended - this.#base > this.#maxBytes) {
      while (this.bytes > this.#maxBytes && this.#blocks.length > 1) this.#dropOldest();
    }
    if (budget !== undefined && budget.usedBytes > budget.maxBytes) {
      // Others give way first (the owner decides who), then this log.
      budget.reclaim();
      while (budget.usedBytes > budget.maxBytes && this.#blocks.length > 1) this.#dropOldest();
    }
    if (this.#waiters.size > 0) this.#wake();
    return seq;
  }

  /** Marks the log complete and wakes every reader. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#open !== undefined) this.#seal(this.#open);
    this.#wake();
  }

  /**
   * Drops every frame and ends the log (its run is forgotten): its bytes go
   * back to the budget at once, and a reader that had not read everything
   * gets `lost` next.
   */
  discard(): void {
    if (this.#discarded) return;
    this.#discarded = true;
    this.#budget?.release(this.bytes);
    this.#base = this.#appended;
    this.#blocks.clear();
    this.#offsets.clear();
    this.#ends.clear();
    this.#open = undefined;
    this.#firstSeq = this.#nextSeq;
    this.#ended = true;
    this.#wake();
  }

  /**
   * Lets the frames up to sequence id `seq` give way now, as they would past
   * the log's bound: for an owner that knows no reader will need them again
   * (the only reader has sent them). A reader that still needed one gets
   * `lost` next.
   */
  dropThrough(seq: number): void {
    while (this.#firstSeq <= seq && !this.#blocks.empty) this.#dropOldest();
  }

  /**
   * Bytes of the frames kept after sequence id `cursor`: what a reader at
   * `cursor` has yet to read (frames that gave way not counted).
   */
  bytesAfter(cursor: number): number {
    const index = cursor - this.#firstSeq;
    if (index < 0) return this.bytes;
    if (index >= this.#ends.length) return 0;
    return this.#appended - this.#ends.at(index)!;
  }

  /**
   * The frames after `cursor` (a sequence id) that lie in one block (at most
   * about `maxBytes`, at least one frame), as a view of the block every
   * reader shares, without copying: do not write into it. Or how many events
   * the reader missed when they have given way, or `wait` / `end`.
   */
  readChunk(cursor: number, maxBytes = 256 * 1024): LogChunk {
    if (cursor + 1 < this.#firstSeq) {
      return { kind: "lost", missed: this.#firstSeq - 1 - cursor, firstSeq: this.#firstSeq };
    }
    const start = cursor + 1 - this.#firstSeq;
    const blocks = this.#blocks;
    const count = blocks.length;
    if (start >= count) return this.#ended ? { kind: "end" } : { kind: "wait" };
    const block = blocks.at(start)!;
    const ends = this.#ends;
    // Where the first frame starts in the log's byte history.
    const from = start === 0 ? this.#base : ends.at(start - 1)!;
    let end = start + 1;
    while (end < count && blocks.at(end) === block && ends.at(end)! - from <= maxBytes) end++;
    const bytes = ends.at(end - 1)! - from;
    const offset = this.#offsets.at(start)!;
    return {
      kind: "frames",
      bytes: block.bytes.subarray(offset, offset + bytes),
      lastSeq: cursor + (end - start),
      events: end - start,
    };
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

  /**
   * The block to write a frame of `size` bytes into: the open one if it has
   * room (grown by doubling up to {@linkcode BLOCK_BYTES}), else a new one.
   * A large frame gets a block of its own, exactly its size. Growing copies
   * the block into a larger buffer: views handed out earlier keep the old
   * buffer, whose bytes are the same.
   */
  #blockFor(size: number): Block {
    const open = this.#open;
    if (open !== undefined) {
      const need = open.used + size;
      if (need <= open.bytes.length) return open;
      if (need <= BLOCK_BYTES) {
        const grown = new Uint8Array(Math.min(BLOCK_BYTES, Math.max(need, open.bytes.length * 2)));
        grown.set(open.bytes.subarray(0, open.used));
        open.bytes = grown;
        return open;
      }
      this.#seal(open);
    }
    if (size * 2 >= BLOCK_BYTES) return { bytes: new Uint8Array(size), used: 0 };
    // A block starts small (a short run stays small); after one that filled
    // up (at least half of it, since larger frames get their own), full-size.
    const capacity = open === undefined ? Math.max(FIRST_BLOCK_BYTES, size) : BLOCK_BYTES;
    const block = { bytes: new Uint8Array(capacity), used: 0 };
    this.#open = block;
    return block;
  }

  /**
   * Takes no more frames into `block`, and gives back its unused room when
   * that is more than an eighth of what it holds (copying it to a smaller
   * buffer): a sealed block is never more than 9/8 of its frames.
   */
  #seal(block: Block): void {
    if (this.#open === block) this.#open = undefined;
    if (block.bytes.length - block.used > block.used / 8) {
      block.bytes = block.bytes.slice(0, block.used);
    }
  }

  #dropOldest(): void {
    const end = this.#ends.shift()!;
    this.#budget?.release(end - this.#base);
    this.#base = end;
    this.#blocks.shift();
    this.#offsets.shift();
    this.#firstSeq++;
  }

  #wake(): void {
    if (this.#waiters.size === 0) return;
    const waiters = this.#waiters;
    this.#waiters = new Set();
    for (const resolve of waiters) resolve();
  }
}
