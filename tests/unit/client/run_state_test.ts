/**
 * The run state both viewers fold events into: states only move forward,
 * replayed or late events change nothing, and failures read as `error`,
 * `skipped` or `cancelled` by the executor's own messages.
 */

import assert from "node:assert/strict";
import { applyRunEvent, createRunState, succeeded } from "../../../src/client/run-state.ts";

const at = "2026-01-01T00:00:00.000Z";
const later = "2026-01-01T00:00:01.500Z";

function runOf(...ids: string[]) {
  return createRunState({ tasks: ids.map((id) => ({ id, tool: "t" })) });
}

Deno.test("run state: pending → running → one end, which replays and late events never change", () => {
  const state = runOf("a");
  const a = state.byId.get("a")!;
  applyRunEvent(state, "task_start", { taskId: "a", timestamp: at });
  assert.equal(a.state, "running");
  assert.equal(a.startedAt, Date.parse(at));
  applyRunEvent(state, "task_complete", {
    taskId: "a",
    status: "success",
    output: { x: 1 },
    executionTimeMs: 1500,
    attempts: 1,
    timestamp: later,
  });
  assert.equal(a.state, "success");
  assert.equal(a.endedAt, Date.parse(later));
  for (
    const [type, data] of [
      ["task_start", { taskId: "a", timestamp: at }],
      ["task_progress", { taskId: "a", progress: 1, timestamp: at }],
      ["task_retry", { taskId: "a", attempt: 2, error: "x", delayMs: 1, timestamp: at }],
      ["task_complete", { taskId: "a", status: "error", error: "late", timestamp: at }],
    ] as const
  ) {
    assert.equal(applyRunEvent(state, type, data), undefined, type);
  }
  assert.equal(a.state, "success");
  assert.deepEqual(a.output, { x: 1 });
  assert.equal(applyRunEvent(state, "task_start", { taskId: "ghost", timestamp: at }), undefined);
  assert.equal(applyRunEvent(state, "something_new", { taskId: "a" }), undefined);
});

Deno.test("run state: failures read as error, skipped or cancelled", () => {
  const state = runOf("bad", "skipped", "cancelled", "timeout");
  const end = (taskId: string, error: string) =>
    applyRunEvent(state, "task_complete", { taskId, status: "error", error, timestamp: at });
  end("bad", "boom");
  end("skipped", "Dependency bad failed");
  end("cancelled", "aborted: cancelled by DELETE");
  end("timeout", 'task "timeout" timed out after 10 ms');
  assert.deepEqual(state.tasks.map((t) => t.state), ["error", "skipped", "cancelled", "error"]);
  applyRunEvent(state, "execution_complete", { totalTasks: 4, successCount: 0, errorCount: 4 });
  assert.equal(state.over, true);
  assert.equal(succeeded(state), false);
});

Deno.test("run state: a retried task stays running, counts its attempts, and ignores a replayed retry", () => {
  const state = runOf("f");
  const f = state.byId.get("f")!;
  applyRunEvent(state, "task_start", { taskId: "f", timestamp: at });
  applyRunEvent(state, "task_progress", { taskId: "f", progress: 1, total: 2, timestamp: at });
  const retry = { taskId: "f", attempt: 2, error: "503", delayMs: 250, timestamp: at };
  assert.equal(applyRunEvent(state, "task_retry", retry), f);
  assert.equal(f.state, "running");
  assert.equal(f.attempt, 2);
  assert.equal(f.retryError, "503");
  assert.equal(f.progress, undefined, "the new attempt has reported nothing yet");
  assert.equal(applyRunEvent(state, "task_retry", retry), undefined, "a replay changes nothing");
  applyRunEvent(state, "task_complete", {
    taskId: "f",
    status: "success",
    output: 1,
    attempts: 2,
    timestamp: later,
  });
  assert.equal(f.attempts, 2);
  applyRunEvent(state, "execution_complete", { totalTasks: 1, successCount: 1, errorCount: 0 });
  assert.equal(succeeded(state), true);
});
