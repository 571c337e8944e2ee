/**
 * A run as a person watches it: each task's state, times, progress and
 * outcome, folded from the run's events. The page at `GET /` and the
 * terminal view (`deno task run`) both draw from it, so a task reads the
 * same in both.
 *
 * States only move forward: `pending` → `running` → one terminal state
 * (`success`, `error`, `skipped`, `cancelled`), which never changes. An
 * event replayed after a reconnection, or one that arrives late, never
 * moves a task back.
 *
 * The wire has two task outcomes, `success` and `error`; the view tells
 * three kinds of error apart by the executor's own messages:
 * `Dependency <id> failed` (the task did not run: `skipped`) and
 * `aborted: …` (the run was cancelled: `cancelled`).
 *
 * This module is pure (no DOM, no Deno API): it is bundled into the page.
 *
 * @module
 */

/** Where a task is in its life, as a viewer shows it. */
export type TaskState = "pending" | "running" | "success" | "error" | "skipped" | "cancelled";

/** The states no event changes any more. */
export const TERMINAL_STATES: ReadonlySet<TaskState> = new Set([
  "success",
  "error",
  "skipped",
  "cancelled",
]);

/** A task as submitted: the fields a viewer shows. */
export interface ViewedTaskSpec {
  /** The task's id. */
  id: string;
  /** The tool it calls. */
  tool: string;
  /** Its arguments, as submitted (references unresolved). */
  arguments?: Record<string, unknown>;
  /** Its dependencies. */
  dependsOn?: string[];
}

/** One task of a watched run. */
export interface TaskView {
  /** The task's id. */
  readonly id: string;
  /** The tool it calls. */
  readonly tool: string;
  /** Its arguments, as submitted. */
  readonly arguments: Record<string, unknown>;
  /** Where it is. */
  state: TaskState;
  /** When it started (`task_start`'s timestamp), ms since the epoch. */
  startedAt?: number;
  /** When it ended (`task_complete`'s timestamp), ms since the epoch. */
  endedAt?: number;
  /** Its tool's time, from `task_complete`. */
  executionTimeMs?: number;
  /** The last progress its tool reported, while it runs. */
  progress?: { progress: number; total?: number; message?: string };
  /** Its output, when it succeeded (a preview when `truncated`). */
  output?: unknown;
  /** Whether the event's output is a preview (the full one is in the run's result). */
  truncated?: boolean;
  /** Why it failed. */
  error?: string;
  /** The attempt running now or last (from 2 on, `task_retry` said so); absent for the first. */
  attempt?: number;
  /** Why its last failed attempt failed, while it is retried. */
  retryError?: string;
  /** How many attempts it took, once it ended (`task_complete`'s `attempts`). */
  attempts?: number;
}

/** What `execution_complete` said. */
export interface RunSummary {
  /** Tasks in the run. */
  totalTasks: number;
  /** Tasks that succeeded. */
  successCount: number;
  /** Tasks that failed (skipped and cancelled ones included). */
  errorCount: number;
  /** The run's wall-clock time. */
  totalExecutionTimeMs: number;
}

/** A watched run. */
export interface RunState {
  /** Its tasks, in declaration order. */
  readonly tasks: readonly TaskView[];
  /** Its tasks by id. */
  readonly byId: ReadonlyMap<string, TaskView>;
  /** Whether `execution_complete` arrived: no task event follows. */
  over: boolean;
  /** The summary, once the run is over. */
  summary?: RunSummary;
  /** The last `error` event (the stream ends after it). */
  error?: { error: string; code?: string };
}

/**
 * A run whose tasks are all `pending`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createRunState } from "./run-state.ts";
 * const state = createRunState({ tasks: [{ id: "a", tool: "mock:echo" }] });
 * assert.equal(state.byId.get("a")?.state, "pending");
 * ```
 */
export function createRunState(dag: { tasks: readonly ViewedTaskSpec[] }): RunState {
  const tasks: TaskView[] = dag.tasks.map((task) => ({
    id: task.id,
    tool: task.tool,
    arguments: task.arguments ?? {},
    state: "pending",
  }));
  return { tasks, byId: new Map(tasks.map((t) => [t.id, t])), over: false };
}

/**
 * The state a failed task's error means: `skipped` when a dependency
 * failed, `cancelled` when the run was cancelled, else `error`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { failureState } from "./run-state.ts";
 * assert.equal(failureState("Dependency fetch failed"), "skipped");
 * assert.equal(failureState("aborted: cancelled by client"), "cancelled");
 * assert.equal(failureState("boom"), "error");
 * ```
 */
export function failureState(error: string | undefined): TaskState {
  if (error === undefined) return "error";
  if (/^Dependency .+ failed$/s.test(error)) return "skipped";
  if (error.startsWith("aborted: ")) return "cancelled";
  return "error";
}

/**
 * Folds one event (its type and parsed data) into `state`. Returns the
 * task whose view changed, `true` when the run's own state changed, or
 * `undefined` when nothing did (an unknown type, an unknown task, a
 * replayed or late event).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { applyRunEvent, createRunState } from "./run-state.ts";
 * const state = createRunState({ tasks: [{ id: "a", tool: "mock:echo" }] });
 * const at = "2026-01-01T00:00:00.000Z";
 * applyRunEvent(state, "task_start", { taskId: "a", tool: "mock:echo", timestamp: at });
 * assert.equal(state.byId.get("a")?.state, "running");
 * applyRunEvent(state, "task_complete", {
 *   taskId: "a", tool: "mock:echo", status: "success", output: 1, executionTimeMs: 2, timestamp: at,
 * });
 * // A replayed start does not move the task back.
 * assert.equal(applyRunEvent(state, "task_start", { taskId: "a", timestamp: at }), undefined);
 * assert.equal(state.byId.get("a")?.state, "success");
 * ```
 */
export function applyRunEvent(
  state: RunState,
  type: string,
  data: unknown,
): TaskView | true | undefined {
  if (typeof data !== "object" || data === null) return undefined;
  const fields = data as Record<string, unknown>;
  if (type === "execution_complete") {
    if (state.over) return undefined;
    state.over = true;
    state.summary = {
      totalTasks: numberOr(fields.totalTasks, state.tasks.length),
      successCount: numberOr(fields.successCount, 0),
      errorCount: numberOr(fields.errorCount, 0),
      totalExecutionTimeMs: numberOr(fields.totalExecutionTimeMs, 0),
    };
    return true;
  }
  if (type === "error") {
    state.error = {
      error: String(fields.error ?? "error"),
      ...(typeof fields.code === "string" ? { code: fields.code } : {}),
    };
    return true;
  }
  const task = typeof fields.taskId === "string" ? state.byId.get(fields.taskId) : undefined;
  if (task === undefined || TERMINAL_STATES.has(task.state)) return undefined;
  const at = typeof fields.timestamp === "string" ? Date.parse(fields.timestamp) : NaN;
  if (type === "task_start") {
    if (task.state !== "pending") return undefined;
    task.state = "running";
    if (!Number.isNaN(at)) task.startedAt = at;
    return task;
  }
  if (type === "task_progress") {
    if (typeof fields.progress !== "number") return undefined;
    task.state = "running";
    task.progress = {
      progress: fields.progress,
      ...(typeof fields.total === "number" ? { total: fields.total } : {}),
      ...(typeof fields.message === "string" ? { message: fields.message } : {}),
    };
    return task;
  }
  if (type === "task_retry") {
    if (typeof fields.attempt !== "number") return undefined;
    if (task.attempt !== undefined && fields.attempt <= task.attempt) return undefined;
    task.state = "running";
    task.attempt = fields.attempt;
    task.progress = undefined;
    if (typeof fields.error === "string") task.retryError = fields.error;
    return task;
  }
  if (type === "task_complete") {
    const error = typeof fields.error === "string" ? fields.error : undefined;
    task.state = fields.status === "success" ? "success" : failureState(error);
    if (!Number.isNaN(at)) {
      task.endedAt = at;
      task.startedAt ??= at;
    }
    if (typeof fields.executionTimeMs === "number") task.executionTimeMs = fields.executionTimeMs;
    task.progress = undefined;
    if (fields.status === "success") task.output = fields.output;
    else task.error = error ?? "failed";
    if (fields.truncated === true) task.truncated = true;
    if (typeof fields.attempts === "number") task.attempts = fields.attempts;
    return task;
  }
  return undefined;
}

/**
 * Whether every task of a run that is over succeeded: the terminal view's
 * exit status.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createRunState, succeeded } from "./run-state.ts";
 * const state = createRunState({ tasks: [] });
 * assert.equal(succeeded(state), false);
 * state.over = true;
 * assert.equal(succeeded(state), true);
 * ```
 */
export function succeeded(state: RunState): boolean {
  return state.over && state.error === undefined &&
    state.tasks.every((task) => task.state === "success");
}

/**
 * Counts of tasks by state.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { countStates, createRunState } from "./run-state.ts";
 * const counts = countStates(createRunState({ tasks: [{ id: "a", tool: "t" }] }));
 * assert.equal(counts.pending, 1);
 * assert.equal(counts.success, 0);
 * ```
 */
export function countStates(state: RunState): Record<TaskState, number> {
  const counts: Record<TaskState, number> = {
    pending: 0,
    running: 0,
    success: 0,
    error: 0,
    skipped: 0,
    cancelled: 0,
  };
  for (const task of state.tasks) counts[task.state]++;
  return counts;
}

function numberOr(value: unknown, fallback: number): number {
  return typeof value === "number" ? value : fallback;
}
