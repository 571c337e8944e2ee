/**
 * The events a streamed run emits: domain events, as the executor hands
 * them to its sink. Payloads follow the reference design; fields may be
 * added in later versions, none are removed or renamed. Nothing here knows
 * of HTTP or SSE bytes: the fields only the wire adds (truncation sizes,
 * where the full result is) are typed in `src/sse/wire-events.ts`.
 *
 * @module
 */

/** A task got its concurrency slot and its tool is being called (or it is being skipped). */
export interface TaskStartEvent {
  /** Event name on the wire. */
  type: "task_start";
  /** Payload. */
  data: {
    /** Id of the task. */
    taskId: string;
    /** Tool the task calls. */
    tool: string;
    /** When the task started, ISO 8601. */
    timestamp: string;
  };
}

/** A task ended, successfully or not (skipped and cancelled tasks included). */
export interface TaskCompleteEvent {
  /** Event name on the wire. */
  type: "task_complete";
  /** Payload. */
  data: {
    /** Id of the task. */
    taskId: string;
    /** Tool the task called. */
    tool: string;
    /** `"success"` or `"error"`. */
    status: "success" | "error";
    /** The tool's output, on success. */
    output?: unknown;
    /** What went wrong, on error. */
    error?: string;
    /**
     * How long the task took, in ms (0 for a task that never ran): from its
     * first attempt's start to its last attempt's end when it was retried.
     */
    executionTimeMs: number;
    /** How many times its tool was called (absent when it never ran). */
    attempts?: number;
    /** When the task ended, ISO 8601. */
    timestamp: string;
  };
}

/**
 * An attempt of a task failed and the task will be tried again (additive
 * event: clients that do not know it ignore it). Sent before the wait,
 * only for tasks with a `retry` policy; the task's `task_start` came once,
 * before its first attempt, and its `task_complete` ends the last one.
 */
export interface TaskRetryEvent {
  /** Event name on the wire. */
  type: "task_retry";
  /** Payload. */
  data: {
    /** Id of the task. */
    taskId: string;
    /** Tool the task calls. */
    tool: string;
    /** The number of the attempt about to start: 2 for the first retry. */
    attempt: number;
    /** Why the last attempt failed. */
    error: string;
    /** How long the task waits before that attempt, in ms. */
    delayMs: number;
    /** When the attempt failed, ISO 8601. */
    timestamp: string;
  };
}

/**
 * A running task reported progress (additive event: clients that do not
 * know it ignore it). Only tools that report progress produce it, between
 * their task's `task_start` and `task_complete`; reports may be dropped
 * while the event consumer is applying backpressure.
 */
export interface TaskProgressEvent {
  /** Event name on the wire. */
  type: "task_progress";
  /** Payload. */
  data: {
    /** Id of the task. */
    taskId: string;
    /** Tool the task calls. */
    tool: string;
    /** Progress so far, in the tool's unit. */
    progress: number;
    /** The value `progress` reaches when done, when the tool knows it. */
    total?: number;
    /** The tool's description of the current step, when it gave one. */
    message?: string;
    /** When the report arrived, ISO 8601. */
    timestamp: string;
  };
}

/** The run is over: always the last event of a successful stream. */
export interface ExecutionCompleteEvent {
  /** Event name on the wire. */
  type: "execution_complete";
  /** Payload. */
  data: {
    /** Number of tasks in the DAG. */
    totalTasks: number;
    /** Tasks that succeeded. */
    successCount: number;
    /** Tasks that failed, skipped and cancelled ones included. */
    errorCount: number;
    /** Wall-clock time of the run, in ms. */
    totalExecutionTimeMs: number;
    /** Sum of task times divided by wall-clock time. */
    speedup: number;
    /** When the run ended, ISO 8601. */
    timestamp: string;
  };
}

/**
 * A critical failure of the run (invalid DAG, a sink that failed); the wire
 * adds its own (shutdown, missed events). Its wire name is `error`; the type
 * is not called `ErrorEvent`, which would shadow the DOM's.
 */
export interface RunErrorEvent {
  /** Event name on the wire. */
  type: "error";
  /** Payload. */
  data: {
    /** The task concerned, when there is one. */
    taskId?: string;
    /** What went wrong. */
    error: string;
    /** When it happened, ISO 8601. */
    timestamp: string;
    /**
     * A machine-readable reason: `"invalid_dag"` and `"stream_failed"` from
     * the executor; the wire adds `"shutdown"` and `"events_lost"`.
     */
    code?: string;
  };
}

/**
 * Any event of a streamed run.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { SSEEvent } from "./events.ts";
 * function show(event: SSEEvent): string {
 *   switch (event.type) {
 *     case "task_start": return `start ${event.data.taskId}`;
 *     case "task_complete": return `${event.data.status} ${event.data.taskId}`;
 *     case "task_progress": return `${event.data.taskId}: ${event.data.progress}/${event.data.total ?? "?"}`;
 *     case "task_retry": return `retry ${event.data.taskId} (attempt ${event.data.attempt})`;
 *     case "execution_complete": return `done: ${event.data.successCount}/${event.data.totalTasks}`;
 *     case "error": return `error: ${event.data.error}`;
 *   }
 * }
 * const timestamp = "2025-01-01T00:00:00.000Z";
 * assert.equal(show({ type: "task_start", data: { taskId: "a", tool: "echo", timestamp } }), "start a");
 * assert.equal(show({ type: "error", data: { error: "boom", timestamp } }), "error: boom");
 * ```
 */
export type SSEEvent =
  | TaskStartEvent
  | TaskCompleteEvent
  | TaskProgressEvent
  | TaskRetryEvent
  | ExecutionCompleteEvent
  | RunErrorEvent;

/** The event names of {@linkcode SSEEvent}. */
export type SSEEventType = SSEEvent["type"];

/**
 * The event names, in no particular order (`task_progress` is the additive one).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SSE_EVENT_TYPES } from "./events.ts";
 * assert.ok(SSE_EVENT_TYPES.includes("task_complete"));
 * assert.equal(SSE_EVENT_TYPES.length, 6);
 * ```
 */
export const SSE_EVENT_TYPES: readonly SSEEventType[] = [
  "task_start",
  "task_complete",
  "task_progress",
  "task_retry",
  "execution_complete",
  "error",
];

/**
 * Builds an `error` event stamped now.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { errorEvent } from "./events.ts";
 * const event = errorEvent("the DAG has a cycle", { code: "invalid_dag" });
 * assert.equal(event.type, "error");
 * assert.equal(event.data.code, "invalid_dag");
 * assert.equal(new Date(event.data.timestamp).toISOString(), event.data.timestamp);
 * ```
 */
export function errorEvent(
  error: string,
  extra: Omit<RunErrorEvent["data"], "error" | "timestamp"> = {},
): RunErrorEvent {
  return { type: "error", data: { error, timestamp: new Date().toISOString(), ...extra } };
}
