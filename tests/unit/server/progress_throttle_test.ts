/**
 * The token bucket that bounds the `task_progress` events a run's log keeps,
 * on a clock the test moves: 64 reports at once, then 10 a second.
 */

import assert from "node:assert/strict";
import { ProgressThrottle } from "../../../src/server/progress-throttle.ts";
import { FakeClock } from "../_fake_clock.ts";

function takeMany(throttle: ProgressThrottle, taskId: string, n: number): number {
  let kept = 0;
  for (let i = 0; i < n; i++) if (throttle.take(taskId)) kept++;
  return kept;
}

Deno.test("ProgressThrottle: a burst of 64, then 10 reports a second", async () => {
  using clock = new FakeClock();
  const throttle = new ProgressThrottle();
  assert.equal(takeMany(throttle, "a", 1000), 64, "the burst, while no time passes");
  await clock.advance(99);
  assert.equal(takeMany(throttle, "a", 1000), 0, "less than one report's worth of time");
  await clock.advance(1);
  assert.equal(takeMany(throttle, "a", 1000), 1, "one report per 100 ms");
  await clock.advance(1000);
  assert.equal(takeMany(throttle, "a", 1000), 10);
  // A long pause refills the bucket up to the burst, not beyond.
  await clock.advance(60_000);
  assert.equal(takeMany(throttle, "a", 1000), 64);
});

Deno.test("ProgressThrottle: each task has its own bucket", () => {
  using _clock = new FakeClock();
  const throttle = new ProgressThrottle();
  assert.equal(takeMany(throttle, "a", 100), 64);
  assert.equal(takeMany(throttle, "b", 100), 64);
  assert.equal(throttle.take("a"), false);
});
