/**
 * The clock of a run's events, as seen from the machine that watches it.
 *
 * @module
 */

/**
 * The time on the clock that stamps a run's events, estimated from the
 * events received. A task's running time is "now" minus its `task_start`
 * timestamp; when the run executes on another machine, whose clock may be
 * ahead or behind, the local clock alone would show times that are off by
 * that difference, even negative. The estimate is the smallest gap seen
 * between an event's arrival and its timestamp (network delay and clock
 * difference; replayed events, which arrive late, never lower it); before
 * any event it is the local clock.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { EventClock } from "./event-clock.ts";
 * const clock = new EventClock();
 * assert.equal(clock.now(5_000), 5_000);
 * // The source's clock is 2 s behind this one: its events arrive "2 s late".
 * clock.observe(new Date(1_000).toISOString(), 3_000);
 * clock.observe(new Date(1_500).toISOString(), 9_000); // a replayed event
 * assert.equal(clock.now(4_000), 2_000);
 * ```
 */
export class EventClock {
  #offset: number | undefined;

  /** Takes into account an event stamped `timestamp` (ISO 8601) that arrived at local time `localNow`. */
  observe(timestamp: unknown, localNow: number): void {
    if (typeof timestamp !== "string") return;
    const at = Date.parse(timestamp);
    if (Number.isNaN(at)) return;
    const gap = localNow - at;
    if (this.#offset === undefined || gap < this.#offset) this.#offset = gap;
  }

  /** The events' clock at local time `localNow` (ms since the epoch). */
  now(localNow: number): number {
    return localNow - (this.#offset ?? 0);
  }
}
