/**
 * Which `task_progress` events a run's log keeps: a token bucket per task.
 *
 * @module
 */

/** Reports a task may make in a burst before {@linkcode PROGRESS_PER_SECOND} applies. */
const PROGRESS_BURST = 64;
/** Reports per second a task keeps making once its burst is spent. */
const PROGRESS_PER_SECOND = 10;

/**
 * Which `task_progress` events a run's log keeps: a token bucket per task,
 * 64 reports deep, refilled at 10 reports a second. The log never makes the
 * run wait, so the executor's own rule (drop reports while the consumer
 * holds the last one) never applies to it: without this, a tool reporting in
 * a loop fills the log and pushes the run's task events out of it (its
 * readers get `events_lost`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ProgressThrottle } from "./progress-throttle.ts";
 * const throttle = new ProgressThrottle();
 * let kept = 0;
 * for (let i = 0; i < 1000; i++) if (throttle.take("a")) kept++;
 * assert.ok(kept >= 64 && kept < 1000); // the burst, then about 10 a second
 * assert.equal(throttle.take("b"), true); // each task has its own bucket
 * ```
 */
export class ProgressThrottle {
  readonly #tasks = new Map<string, { tokens: number; at: number }>();

  /** Whether to keep one more report of `taskId` now. */
  take(taskId: string): boolean {
    const now = performance.now();
    const bucket = this.#tasks.get(taskId);
    if (bucket === undefined) {
      this.#tasks.set(taskId, { tokens: PROGRESS_BURST - 1, at: now });
      return true;
    }
    bucket.tokens = Math.min(
      PROGRESS_BURST,
      bucket.tokens + ((now - bucket.at) / 1000) * PROGRESS_PER_SECOND,
    );
    bucket.at = now;
    if (bucket.tokens < 1) return false;
    bucket.tokens--;
    return true;
  }
}
