/**
 * Per-task timeouts with one timer per run. Every task of a run gets the same
 * timeout, so deadlines expire in the order tasks started: a FIFO queue whose
 * head holds the single armed timer replaces a timer per task (creating a
 * timer costs microseconds; a queue entry almost nothing).
 *
 * @module
 */

import { Queue } from "./queue.ts";

/**
 * One task's place in the queue.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DeadlineQueue } from "./deadlines.ts";
 * const queue = new DeadlineQueue(60_000, () => {});
 * const deadline = queue.add(3);
 * assert.equal(deadline.index, 3);
 * assert.equal(deadline.done, false);
 * queue.settle(deadline);
 * assert.equal(deadline.done, true);
 * ```
 */
export interface Deadline {
  /** When the task times out, in `performance.now()` milliseconds. */
  readonly at: number;
  /** The task index handed to the queue's `onExpire`. */
  readonly index: number;
  /** Set once the task has ended or expired; the entry is then ignored. */
  done: boolean;
}

/**
 * A FIFO of deadlines that all share one timeout, served by one timer.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DeadlineQueue } from "./deadlines.ts";
 * const expired: number[] = [];
 * const { promise, resolve } = Promise.withResolvers<void>();
 * const queue = new DeadlineQueue(0, (index) => {
 *   expired.push(index);
 *   if (expired.length === 2) resolve();
 * });
 * queue.add(0);
 * const met = queue.add(1);
 * queue.add(2);
 * queue.settle(met); // task 1 ended in time
 * await promise; // one timer fires for both others
 * assert.deepEqual(expired, [0, 2]);
 * queue.dispose();
 * ```
 */
export class DeadlineQueue {
  readonly #timeoutMs: number;
  readonly #onExpire: (index: number) => void;
  /** Deadlines in the order they were added, which is the order they expire in. */
  readonly #entries = new Queue<Deadline>();
  #timer: ReturnType<typeof setTimeout> | undefined;

  /**
   * Creates an empty queue; no timer runs until a deadline is added.
   *
   * @param timeoutMs how long after {@linkcode add} each deadline expires
   * @param onExpire called with the entry's index when a deadline passes unsettled
   */
  constructor(timeoutMs: number, onExpire: (index: number) => void) {
    this.#timeoutMs = timeoutMs;
    this.#onExpire = onExpire;
  }

  /** Starts the deadline of task `index`. */
  add(index: number): Deadline {
    const entry: Deadline = { at: performance.now() + this.#timeoutMs, index, done: false };
    this.#entries.push(entry);
    if (this.#timer === undefined) this.#arm(entry.at);
    return entry;
  }

  /** Marks a deadline as met; the timer stops once no deadline is pending. */
  settle(entry: Deadline): void {
    entry.done = true;
    this.#dropSettledHead();
    if (this.#entries.empty) this.#disarm();
  }

  /** Stops the timer and forgets every deadline. */
  dispose(): void {
    this.#disarm();
    this.#entries.clear();
  }

  #dropSettledHead(): void {
    const entries = this.#entries;
    while (entries.peek()?.done) entries.shift();
  }

  #arm(at: number): void {
    this.#timer = setTimeout(this.#fire, Math.max(0, Math.ceil(at - performance.now())));
  }

  #disarm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #fire = (): void => {
    this.#timer = undefined;
    const now = performance.now();
    const entries = this.#entries;
    const expired: number[] = [];
    for (let entry = entries.peek(); entry !== undefined; entry = entries.peek()) {
      if (!entry.done) {
        if (entry.at > now) break;
        entry.done = true;
        expired.push(entry.index);
      }
      entries.shift();
    }
    const next = entries.peek();
    if (next !== undefined) this.#arm(next.at);
    for (const index of expired) this.#onExpire(index);
  };
}
