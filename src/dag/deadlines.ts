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
 * The first attempts of tasks with the run's usual timeout, nearly every
 * deadline of nearly every run, go in a FIFO of task indices alone; every
 * other deadline goes in a FIFO of its timeout whose entries also hold the
 * deadline, so that the entry of an earlier attempt is told from the next.
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
 * }, 1);
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
  readonly #usualTimeout: number;
  /** First attempts with the usual timeout: each task's deadline there, or {@linkcode NONE}. */
  readonly #usualDeadlineOf: Float64Array;
  readonly #usual: DeadlineQueue;
  /** Every other deadline, or {@linkcode NONE}; shared by the other FIFOs. */
  readonly #otherDeadlineOf: Float64Array;
  /** Each task's timeout while it has a deadline among the others: which FIFO it is in. */
  readonly #timeoutOf: Float64Array;
  /** One FIFO per timeout, for the other deadlines. */
  readonly #others = new Map<number, DeadlineQueue>();

  /**
   * No deadline and no timer yet.
   *
   * @param size number of tasks (indices 0 to size - 1)
   * @param onExpire called with the task's index when its deadline passes unsettled
   * @param usualTimeout the timeout most tasks have
   */
  constructor(size: number, onExpire: (index: number) => void, usualTimeout: number) {
    this.#onExpire = onExpire;
    this.#usualTimeout = usualTimeout;
    this.#usualDeadlineOf = new Float64Array(size).fill(NONE);
    this.#usual = new DeadlineQueue(this.#usualDeadlineOf, usualTimeout, onExpire, false);
    this.#otherDeadlineOf = new Float64Array(size).fill(NONE);
    this.#timeoutOf = new Float64Array(size);
  }

  /**
   * Starts the deadline of task `index`, which started at `startedAt` and
   * may run `timeoutMs`; `again` for a task added before (a retry).
   */
  add(index: number, startedAt: number, timeoutMs: number, again = false): void {
    if (!again && timeoutMs === this.#usualTimeout) {
      this.#usual.add(index, startedAt);
      return;
    }
    let queue = this.#others.get(timeoutMs);
    if (queue === undefined) {
      queue = new DeadlineQueue(this.#otherDeadlineOf, timeoutMs, this.#onExpire, true);
      this.#others.set(timeoutMs, queue);
    }
    this.#timeoutOf[index] = timeoutMs;
    queue.add(index, startedAt);
  }

  /** Whether task `index` has a deadline that has neither been met nor expired. */
  pending(index: number): boolean {
    return this.#usualDeadlineOf[index] !== NONE || this.#otherDeadlineOf[index] !== NONE;
  }

  /** Marks task `index`'s deadline as met. */
  settle(index: number): void {
    if (this.#usualDeadlineOf[index] !== NONE) this.#usual.settle(index);
    else if (this.#otherDeadlineOf[index] !== NONE) {
      this.#others.get(this.#timeoutOf[index])!.settle(index);
    }
  }

  /** Stops every timer and forgets every deadline. */
  dispose(): void {
    this.#usual.dispose();
    for (const queue of this.#others.values()) queue.dispose();
    this.#usualDeadlineOf.fill(NONE);
    this.#otherDeadlineOf.fill(NONE);
  }
}

/**
 * A FIFO of task deadlines that all share one timeout, served by one timer.
 * Without `exact`, each task is added once: an entry whose task has been
 * settled is stale. With `exact`, the entries are (task, deadline) pairs:
 * an entry whose task has since been settled, or added again with another
 * deadline, is stale. Stale entries are skipped.
 */
class DeadlineQueue {
  readonly #timeoutMs: number;
  readonly #onExpire: (index: number) => void;
  readonly #deadlineOf: Float64Array;
  /** Task indices in the order they were added, which is the order they expire in. */
  readonly #order = new Queue<number>();
  /** With `exact`: the deadline each entry of `#order` was added with. */
  readonly #at: Queue<number> | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    deadlineOf: Float64Array,
    timeoutMs: number,
    onExpire: (index: number) => void,
    exact: boolean,
  ) {
    this.#deadlineOf = deadlineOf;
    this.#timeoutMs = timeoutMs;
    this.#onExpire = onExpire;
    this.#at = exact ? new Queue<number>() : undefined;
  }

  add(index: number, startedAt: number): void {
    const at = startedAt + this.#timeoutMs;
    this.#deadlineOf[index] = at;
    this.#order.push(index);
    this.#at?.push(at);
    if (this.#timer === undefined) this.#arm(at);
  }

  /**
   * Marks task `index`'s deadline as met. The timer stays armed until it
   * fires (then only for a deadline still pending) or {@linkcode dispose}:
   * runs whose tasks end quickly arm one timer, not one per wave of tasks.
   */
  settle(index: number): void {
    this.#deadlineOf[index] = NONE;
    const order = this.#order;
    while (!order.empty && this.#stale(order.peek()!)) {
      order.shift();
      this.#at?.shift();
    }
  }

  dispose(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#order.clear();
    this.#at?.clear();
  }

  /** Whether the head entry, of task `index`, no longer stands for its deadline. */
  #stale(index: number): boolean {
    const at = this.#deadlineOf[index];
    return at === NONE || (this.#at !== undefined && at !== this.#at.peek());
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
      if (!this.#stale(index)) {
        const at = deadlineOf[index];
        if (at > now) {
          this.#arm(at);
          break;
        }
        deadlineOf[index] = NONE;
        expired.push(index);
      }
      order.shift();
      this.#at?.shift();
    }
    for (const index of expired) this.#onExpire(index);
  };
}
