/**
 * The shapes of a workflow: tasks, the DAG that holds them, the tool executor
 * that runs them, and the results an execution produces.
 *
 * @module
 */

/** One tool call in a workflow. */
export interface Task {
  /** Unique id of the task within its DAG. */
  id: string;
  /** Name of the tool to call, e.g. `mock:echo` or `fs:read_file`. */
  tool: string;
  /**
   * Arguments handed to the tool. Any string value of the exact form
   * `$OUTPUT[id]` or `$OUTPUT[id].a.b` is replaced by that task's output
   * (or a property of it) before the call.
   */
  arguments?: Record<string, unknown>;
  /** Ids of the tasks that must succeed before this one starts. */
  dependsOn?: string[];
  /**
   * Milliseconds each attempt of this task may run before it fails with
   * "timed out" (1 to 2147483647): overrides the executor's `taskTimeout`
   * for this task, up or down.
   */
  timeout?: number;
  /** Tries the task again when its tool fails or times out. */
  retry?: RetryPolicy;
}

/**
 * When and how often a failed task is tried again. A task is retried only
 * when its tool failed or timed out: never once the run is cancelled, and
 * a task whose dependency failed never runs at all. The wait before
 * attempt `n + 1` is a random time from 0 to
 * `min(maxDelayMs, delayMs × factor^(n − 1))` ("full jitter").
 */
export interface RetryPolicy {
  /** Most attempts, the first included: a whole number from 1 to 100. */
  attempts: number;
  /** The longest wait before the first retry, in ms. Default 500. */
  delayMs?: number;
  /** How much the longest wait grows with each retry. Default 2. */
  factor?: number;
  /** A cap on the longest wait, in ms. Default 30000. */
  maxDelayMs?: number;
}

/** A workflow: tasks and the dependencies between them. */
export interface DAGStructure {
  /** The tasks, in declaration order (results keep this order). */
  tasks: Task[];
}

/** How far a running tool call has got, as it reports it. */
export interface ToolProgress {
  /** Progress so far; increases with each report (its unit is the tool's). */
  progress: number;
  /** The value `progress` reaches when the work is done, when known. */
  total?: number;
  /** A short human-readable description of the current step. */
  message?: string;
}

/** What a tool call is given besides its arguments. */
export interface ToolContext {
  /** Aborted when the task times out or the run is cancelled. */
  signal: AbortSignal;
  /** Id of the task this call belongs to. */
  taskId: string;
  /**
   * Reports progress of the call. Present when someone listens (a streamed
   * run emits each report as a `task_progress` event); reports after the
   * task ended are ignored. Optional for tools to call, and optional in the
   * context: tools must not rely on it.
   */
  progress?: (update: ToolProgress) => void;
  /**
   * Which attempt of its task this call is: 1, then 2 for the first retry
   * (see {@linkcode Task.retry}). Absent when the caller does not count.
   */
  attempt?: number;
  /**
   * The W3C `traceparent` of this call's span, when the server traces runs
   * (OpenTelemetry): for tools that pass the trace on themselves, as MCP
   * calls do in `_meta`. HTTP calls made with `fetch` carry it already.
   */
  traceparent?: string;
}

/**
 * Runs one tool call and resolves with its output (any JSON-serialisable
 * value). It should stop its work when `ctx.signal` aborts.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ToolExecutor } from "./types.ts";
 * const tools: ToolExecutor = async (tool, args) => {
 *   if (tool === "add") return (args.a as number) + (args.b as number);
 *   throw new Error(`unknown tool ${tool}`);
 * };
 * const ctx = { signal: new AbortController().signal, taskId: "t1" };
 * assert.equal(await tools("add", { a: 2, b: 3 }, ctx), 5);
 * await assert.rejects(tools("sub", {}, ctx), /unknown tool sub/);
 * ```
 */
export type ToolExecutor = (
  tool: string,
  args: Record<string, unknown>,
  ctx: ToolContext,
) => Promise<unknown>;

/** How ready tasks are started. */
export type SchedulingMode = "eager" | "layered";

/** Settings of a {@linkcode ParallelExecutor}. */
export interface ExecutorConfig {
  /** Most tasks in flight at once. Default: unbounded. */
  maxConcurrency?: number;
  /** Milliseconds a task may run before it fails with "timed out". Default 30000. */
  taskTimeout?: number;
  /**
   * `"eager"` (default) starts a task the moment all its dependencies are done;
   * `"layered"` waits for the whole topological layer before the next one.
   */
  scheduling?: SchedulingMode;
  /** Most tasks a DAG may have. Default 1000. */
  maxTasks?: number;
  /** Log each task's start and end to the console. Default false. */
  verbose?: boolean;
}

/** The outcome of one task. */
export interface TaskResult {
  /** Id of the task. */
  taskId: string;
  /** Whether the tool call succeeded. */
  status: "success" | "error";
  /** The tool's output, on success. */
  output?: unknown;
  /** What went wrong, on error. */
  error?: string;
  /**
   * How long the task took, in milliseconds (0 when it never ran): its tool
   * call, or from its first attempt's start to its last attempt's end when
   * it was retried.
   */
  executionTimeMs?: number;
  /**
   * How many times its tool was called (1 when it was not retried); 0 when
   * its `$OUTPUT` references could not be resolved (it is not retried then);
   * absent when it never ran.
   */
  attempts?: number;
}

/** A failed task, as listed in {@linkcode DAGExecutionResult.errors}. */
export interface TaskError {
  /** Id of the task. */
  taskId: string;
  /** What went wrong. */
  error: string;
  /** Always `"error"`. */
  status: "error";
}

/** The outcome of a whole run. */
export interface DAGExecutionResult {
  /** One result per task, in task declaration order. */
  results: TaskResult[];
  /** The failed tasks, in declaration order. */
  errors: TaskError[];
  /** Wall-clock time of the run, in milliseconds. */
  executionTimeMs: number;
  /** Number of topological layers of the DAG. */
  parallelizationLayers: number;
  /** Number of tasks in the DAG. */
  totalTasks: number;
  /** Number of tasks that succeeded. */
  successfulTasks: number;
  /** Number of tasks that failed (including those skipped after a failed dependency). */
  failedTasks: number;
}

/** Summary figures of a run, from {@linkcode ParallelExecutor.getStats}. */
export interface ExecutionStats {
  /** Number of tasks in the DAG. */
  totalTasks: number;
  /** Number of tasks that succeeded. */
  successfulTasks: number;
  /** Number of tasks that failed. */
  failedTasks: number;
  /** Percentage of tasks that succeeded, 0 to 100. */
  successRate: number;
  /** Sum of task times divided by wall-clock time. */
  speedup: number;
  /** Wall-clock time of the run, in milliseconds. */
  executionTimeMs: number;
  /** Number of topological layers of the DAG. */
  parallelizationLayers: number;
}

/** Options of one execution. */
export interface ExecuteOptions {
  /** Cancels the whole run: running tools see their signal abort. */
  signal?: AbortSignal;
}
