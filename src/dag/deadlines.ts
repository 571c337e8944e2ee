/**
 * Per-task timeouts with one timer per distinct timeout. Tasks that share a
 * timeout expire in the order they started: a FIFO of task indices whose
 * head holds the single armed timer replaces a timer per task (creating a
 * timer costs microseconds; a queue slot almost nothing), and a task's
 * deadline is a number in an array, not an object. Most runs use one
 * timeout (the executor's `taskTimeout`) and so one timer; a task with its
 * own `timeout` joins the FIFO of that value.
 *
 * @module
 */

import { Queue } from "./queue.ts";

/** `deadlineOf` value of a task with no pending deadline. */
const NONE = -1;

/**
 * The deadlines of a run's tasks, each task with its own timeout. Times
 * are `performance.now()` milliseconds, read by the caller (which needs the
 * start time anyway) and handed to {@linkcode add}. A task may be added
 * again once its deadline was met or expired (a retried task).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { TaskDeadlines } from "./deadlines.ts";
 * const expired: number[] = [];
 * const { promise, resolve } = Promise.withResolvers<void>();
 * const deadlines = new TaskDeadlines(3, (index) => {
 *   expired.push(index);
 *   if (expired.length === 2) resolve();
 * });
 * const now = performance.now();
 * deadlines.add(0, now, 1);
 * deadlines.add(1, now, 1);
 * deadlines.add(2, now, 0);
 * deadlines.settle(1); // task 1 ended in time
 * assert.equal(deadlines.pending(1), false);
 * await promise;
 * assert.deepEqual(expired.sort(), [0, 2]);
 * deadlines.dispose();
 * ```
 */
export class TaskDeadlines {
  readonly #onExpire: (index: number) => void;
  /** Each task's deadline, or {@linkcode NONE}; shared by every FIFO. */
  readonly #deadlineOf: Float64Array;
  /** Each task's timeout while its deadline is pending: which FIFO it is in. */
  readonly #timeoutOf: Float64Array;
  /** One FIFO per distinct timeout. */
  readonly #queues = new Map<number, DeadlineQueue>();

  /**
   * No deadline and no timer yet.
   *
   * @param size number of tasks (indices 0 to size - 1)
   * @param onExpire called with the task's index when its deadline passes unsettled
   */
  constructor(size: number, onExpire: (index: number) => void) {
    this.#onExpire = onExpire;
    this.#deadlineOf = new Float64Array(size).fill(NONE);
    this.#timeoutOf = new Float64Array(size);
  }

  /** Starts the deadline of task `index`, which started at `startedAt` and may run `timeoutMs`. */
  add(index: number, startedAt: number, timeoutMs: number): void {
    let queue = this.#queues.get(timeoutMs);
    if (queue === undefined) {
      queue = new DeadlineQueue(this.#deadlineOf, timeoutMs, this.#onExpire);
      this.#queues.set(timeoutMs, queue);
    }
    this.#timeoutOf[index] = timeoutMs;
    queue.add(index, startedAt);
  }

  /** Whether task `index` has a deadline that has neither been met nor expired. */
  pending(index: number): boolean {
    return this.#deadlineOf[index] !== NONE;
  }

  /** Marks task `index`'s deadline as met. */
  settle(index: number): void {
    if (this.#deadlineOf[index] === NONE) return;
    this.#queues.get(this.#timeoutOf[index])!.settle(index);
  }

  /** Stops every timer and forgets every deadline. */
  dispose(): void {
    for (const queue of this.#queues.values()) queue.dispose();
    this.#deadlineOf.fill(NONE);
  }
}

/**
 * A FIFO of task deadlines that all share one timeout, served by one timer.
 * Its entries are (task, deadline) pairs: an entry whose task has since
 * been settled, or added again with a later deadline, is stale and skipped.
 */
class DeadlineQueue {
  readonly #timeoutMs: number;
  readonly #onExpire: (index: number) => void;
  readonly #deadlineOf: Float64Array;
  /** Task indices in the order they were added, which is the order they expire in. */
  readonly #order = new Queue<number>();
  /** The deadline each entry of `#order` was added with. */
  readonly #at = new Queue<number>();
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(deadlineOf: Float64Array, timeoutMs: number, onExpire: (index: number) => void) {
    this.#deadlineOf = deadlineOf;
    this.#timeoutMs = timeoutMs;
    this.#onExpire = onExpire;
  }

  add(index: number, startedAt: number): void {
    const at = startedAt + this.#timeoutMs;
    this.#deadlineOf[index] = at;
    this.#order.push(index);
    this.#at.push(at);
    if (this.#timer === undefined) this.#arm(at);
  }

  /**
   * Marks task `index`'s deadline as met. The timer stays armed until it
   * fires (then only for a deadline still pending) or {@linkcode dispose}:
   * runs whose tasks end quickly arm one timer, not one per wave of tasks.
   */
  settle(index: number): void {
    this.#deadlineOf[index] = NONE;
    this.#dropStale();
  }

  dispose(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#order.clear();
    this.#at.clear();
  }

  /** Drops the stale entries at the head. */
  #dropStale(): void {
    const order = this.#order;
    const deadlineOf = this.#deadlineOf;
    while (!order.empty && deadlineOf[order.peek()!] !== this.#at.peek()) {
      order.shift();
      this.#at.shift();
    }
  }

  #arm(at: number): void {
    this.#timer = setTimeout(this.#fire, Math.max(0, Math.ceil(at - performance.now())));
  }

  #fire = (): void => {
    this.#timer = undefined;
    const now = performance.now();
    const order = this.#order;
    const deadlineOf = this.#deadlineOf;
    const expired: number[] = [];
    while (!order.empty) {
      const index = order.peek()!;
      const at = this.#at.peek()!;
      if (deadlineOf[index] === at) {
        if (at > now) {
          this.#arm(at);
          break;
        }
        deadlineOf[index] = NONE;
        expired.push(index);
      }
      order.shift();
      this.#at.shift();
    }
    for (const index of expired) this.#onExpire(index);
  };
}
