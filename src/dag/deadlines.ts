/**
 * Per-task timeouts with one timer per run. Every task of a run gets the same
 * timeout, so deadlines expire in the order tasks started: a FIFO queue whose
 * head holds the single armed timer replaces a timer per task (creating a
 * timer costs microseconds; a queue entry almost nothing).
 *
 * @module
 */

/** One task's place in the queue. */
export interface Deadline {
  /** When the task times out, in `performance.now()` milliseconds. */
  readonly at: number;
  /** The task index handed to the queue's `onExpire`. */
  readonly index: number;
  /** Set once the task has ended or expired; the entry is then ignored. */
  done: boolean;
}

/** A FIFO of deadlines that all share one timeout, served by one timer. */
export class DeadlineQueue {
  readonly #timeoutMs: number;
  readonly #onExpire: (index: number) => void;
  #entries: Deadline[] = [];
  #head = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /**
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
    if (this.#head === this.#entries.length) this.#disarm();
  }

  /** Stops the timer and forgets every deadline. */
  dispose(): void {
    this.#disarm();
    this.#entries = [];
    this.#head = 0;
  }

  #dropSettledHead(): void {
    const entries = this.#entries;
    while (this.#head < entries.length && entries[this.#head].done) this.#head++;
    if (this.#head === entries.length) {
      this.#entries = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > entries.length) {
      this.#entries = entries.slice(this.#head);
      this.#head = 0;
    }
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
    while (this.#head < entries.length) {
      const entry = entries[this.#head];
      if (!entry.done) {
        if (entry.at > now) break;
        entry.done = true;
        expired.push(entry.index);
      }
      this.#head++;
    }
    this.#dropSettledHead();
    if (this.#head < this.#entries.length) this.#arm(this.#entries[this.#head].at);
    for (const index of expired) this.#onExpire(index);
  };
}
