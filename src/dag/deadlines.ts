/**
 * Per-task timeouts with one timer per run. Every task of a run gets the same
 * timeout, so deadlines expire in the order tasks started: a FIFO of task
 * indices whose head holds the single armed timer replaces a timer per task
 * (creating a timer costs microseconds; a queue slot almost nothing), and a
 * task's deadline is a number in an array, not an object.
 *
 * @module
 */

import { Queue } from "./queue.ts";

/** `deadlineOf` value of a task with no pending deadline. */
const NONE = -1;

/**
 * A FIFO of task deadlines that all share one timeout, served by one timer.
 * Times are `performance.now()` milliseconds, read by the caller (which
 * needs the start time anyway) and handed to {@linkcode add}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DeadlineQueue } from "./deadlines.ts";
 * const expired: number[] = [];
 * const { promise, resolve } = Promise.withResolvers<void>();
 * const queue = new DeadlineQueue(3, 0, (index) => {
 *   expired.push(index);
 *   if (expired.length === 2) resolve();
 * });
 * const now = performance.now();
 * queue.add(0, now);
 * queue.add(1, now);
 * queue.add(2, now);
 * queue.settle(1); // task 1 ended in time
 * assert.equal(queue.pending(1), false);
 * await promise; // one timer fires for both others
 * assert.deepEqual(expired, [0, 2]);
 * queue.dispose();
 * ```
 */
export class DeadlineQueue {
  readonly #timeoutMs: number;
  readonly #onExpire: (index: number) => void;
  /** Each task's deadline, or {@linkcode NONE}. */
  readonly #deadlineOf: Float64Array;
  /** Task indices in the order they were added, which is the order they expire in. */
  readonly #order = new Queue<number>();
  #timer: ReturnType<typeof setTimeout> | undefined;

  /**
   * Creates an empty queue; no timer runs until a deadline is added.
   *
   * @param size number of tasks (indices 0 to size - 1)
   * @param timeoutMs how long after its start each deadline expires
   * @param onExpire called with the task's index when its deadline passes unsettled
   */
  constructor(size: number, timeoutMs: number, onExpire: (index: number) => void) {
    this.#timeoutMs = timeoutMs;
    this.#onExpire = onExpire;
    this.#deadlineOf = new Float64Array(size).fill(NONE);
  }

  /** Starts the deadline of task `index`, which started at `startedAt`. */
  add(index: number, startedAt: number): void {
    const at = startedAt + this.#timeoutMs;
    this.#deadlineOf[index] = at;
    this.#order.push(index);
    if (this.#timer === undefined) this.#arm(at);
  }

  /** Whether task `index` has a deadline that has neither been met nor expired. */
  pending(index: number): boolean {
    return this.#deadlineOf[index] !== NONE;
  }

  /**
   * Marks task `index`'s deadline as met. The timer stays armed until it
   * fires (then only for a deadline still pending) or {@linkcode dispose}:
   * runs whose tasks end quickly arm one timer, not one per wave of tasks.
   */
  settle(index: number): void {
    if (this.#deadlineOf[index] === NONE) return;
    this.#deadlineOf[index] = NONE;
    const order = this.#order;
    const deadlineOf = this.#deadlineOf;
    while (!order.empty && deadlineOf[order.peek()!] === NONE) order.shift();
  }

  /** Stops the timer and forgets every deadline. */
  dispose(): void {
    this.#disarm();
    this.#order.clear();
    this.#deadlineOf.fill(NONE);
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
    const order = this.#order;
    const deadlineOf = this.#deadlineOf;
    const expired: number[] = [];
    while (!order.empty) {
      const index = order.peek()!;
      const at = deadlineOf[index];
      if (at !== NONE) {
        if (at > now) {
          this.#arm(at);
          break;
        }
        deadlineOf[index] = NONE;
        expired.push(index);
      }
      order.shift();
    }
    for (const index of expired) this.#onExpire(index);
  };
}
