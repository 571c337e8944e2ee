/**
 * The events a streamed run emits, as they travel over Server-Sent
 * Events. Payloads follow the reference design; fields may be added in
 * later versions, none are removed or renamed.
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
    /** The tool's output, on success (a preview string when `truncated`). */
    output?: unknown;
    /** What went wrong, on error. */
    error?: string;
    /** How long the tool call took, in ms (0 for a task that never ran). */
    executionTimeMs: number;
    /** When the task ended, ISO 8601. */
    timestamp: string;
    /**
     * Present and `true` when the output was too large for one event: `output`
     * is then the start of its JSON text, and the whole output is in the run's
     * JSON result.
     */
    truncated?: boolean;
    /** With `truncated`: size in bytes of the output's full JSON text. */
    outputBytes?: number;
    /**
     * With `truncated`, when the error message itself was too large: its
     * full size in bytes (`error` is then its start).
     */
    errorBytes?: number;
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

/** A critical failure (invalid DAG, broken stream, shutdown, missed events). */
export interface ErrorEvent {
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
    /** A machine-readable reason, e.g. `"shutdown"`, `"events_lost"`, `"invalid_dag"`. */
    code?: string;
    /** With `events_lost`: how many events this reader missed. */
    missedEvents?: number;
    /** Where the run's full JSON result can be fetched, when known. */
    resultUrl?: string;
  };
}

/**
 * Any event of a streamed run.
 *
 * @example
 * ```ts
 * import type { SSEEvent } from "./events.ts";
 * function show(event: SSEEvent): string {
 *   switch (event.type) {
 *     case "task_start": return `start ${event.data.taskId}`;
 *     case "task_complete": return `${event.data.status} ${event.data.taskId}`;
 *     case "task_progress": return `${event.data.taskId}: ${event.data.progress}/${event.data.total ?? "?"}`;
 *     case "execution_complete": return `done: ${event.data.successCount}/${event.data.totalTasks}`;
 *     case "error": return `error: ${event.data.error}`;
 *   }
 * }
 * ```
 */
export type SSEEvent =
  | TaskStartEvent
  | TaskCompleteEvent
  | TaskProgressEvent
  | ExecutionCompleteEvent
  | ErrorEvent;

/** The event names of {@linkcode SSEEvent}. */
export type SSEEventType = SSEEvent["type"];

/** The event names, in no particular order (`task_progress` is the additive one). */
export const SSE_EVENT_TYPES: readonly SSEEventType[] = [
  "task_start",
  "task_complete",
  "task_progress",
  "execution_complete",
  "error",
];

/** Builds an `error` event stamped now. */
export function errorEvent(
  error: string,
  extra: Omit<ErrorEvent["data"], "error" | "timestamp"> = {},
): ErrorEvent {
  return { type: "error", data: { error, timestamp: new Date().toISOString(), ...extra } };
}
