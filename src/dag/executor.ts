/**
 * The ParallelExecutor: validates a DAG, runs its tool calls with as much
 * parallelism as dependencies and `maxConcurrency` allow, and reports every
 * task's outcome.
 *
 * @module
 */

import type {
  DAGExecutionResult,
  DAGStructure,
  ExecuteOptions,
  ExecutionStats,
  ExecutorConfig,
  SchedulingMode,
  Task,
  TaskError,
  TaskResult,
  ToolContext,
  ToolExecutor,
  ToolProgress,
} from "./types.ts";
import { prepareDAG, type PreparedDAG } from "./validate.ts";
import { resolveArguments } from "./arguments.ts";
import { SettledResults } from "./settled-results.ts";
import { type RunHooks, runSchedule } from "./scheduler.ts";
import { describeError } from "./errors.ts";
import {
  DEFAULT_MAX_TASKS,
  DEFAULT_SCHEDULING,
  DEFAULT_TASK_TIMEOUT,
  MAX_TIMER_MS,
} from "./defaults.ts";

/** An {@linkcode ExecutorConfig} with every default filled in. */
export interface ResolvedExecutorConfig {
  /** Most tasks in flight (`Infinity` when unbounded). */
  maxConcurrency: number;
  /** Milliseconds per task. */
  taskTimeout: number;
  /** Eager or layered. */
  scheduling: SchedulingMode;
  /** Most tasks per DAG. */
  maxTasks: number;
  /** Log starts and ends. */
  verbose: boolean;
}

/** Runs a validated DAG on an executor; assigned in `ParallelExecutor`'s static block. */
let runOn: (
  executor: ParallelExecutor,
  prepared: PreparedDAG,
  signal: AbortSignal | undefined,
  hooks: RunHooks | undefined,
) => Promise<DAGExecutionResult>;

/**
 * The executeTask defined here, as the class was loaded: an executor whose
 * executeTask is anything else (a subclass's override, a patched prototype)
 * has its tasks run through it; otherwise tools are called directly.
 */
let ownExecuteTask: unknown;

/** Reads an executor's settings; assigned in `ParallelExecutor`'s static block. */
let settingsOf: (executor: ParallelExecutor) => ResolvedExecutorConfig;

/**
 * Runs a DAG of tool calls with maximal parallelism: each task starts as
 * soon as the tasks it depends on are done (or, with `scheduling:
 * "layered"`, once its whole topological layer may start), within
 * `maxConcurrency`, and a failed task never stops independent branches.
 * Customise it with its options and with the {@linkcode ToolExecutor} you
 * give it: that function sees every tool call with its task id and signal.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ParallelExecutor } from "./executor.ts";
 *
 * const executor = new ParallelExecutor(async (tool, args) => ({ tool, args }));
 * const result = await executor.execute({
 *   tasks: [
 *     { id: "a", tool: "fetch", arguments: { url: "https://example.com" } },
 *     { id: "b", tool: "summarise", arguments: { text: "$OUTPUT[a].args.url" } },
 *   ],
 * });
 * assert.equal(result.successfulTasks, 2);
 * assert.deepEqual(result.results[1].output, {
 *   tool: "summarise",
 *   args: { text: "https://example.com" },
 * });
 * assert.equal(executor.getStats(result).successRate, 100);
 * ```
 */
export class ParallelExecutor {
  readonly #toolExecutor: ToolExecutor;
  readonly #config: ResolvedExecutorConfig;
  /** The attempt a task is on, for `executeTask` (whose reference signature does not say). */
  readonly #attemptOf = new WeakMap<Task, number>();

  static {
    runOn = (executor, prepared, signal, hooks) => executor.#run(prepared, signal, hooks);
    settingsOf = (executor) => executor.#config;
    ownExecuteTask = ParallelExecutor.prototype.executeTask;
  }

  /**
   * Creates an executor around a tool executor.
   *
   * @param toolExecutor runs one tool call
   * @param config concurrency, timeout, scheduling and size limits
   * @throws {RangeError} for a configuration value out of range
   */
  constructor(toolExecutor: ToolExecutor, config: ExecutorConfig = {}) {
    this.#toolExecutor = toolExecutor;
    this.#config = resolveConfig(config);
  }

  /**
   * Validates and runs a DAG (a DAG from `prepareDAG` is not validated
   * again). Failed tasks never stop independent branches; aborting
   * `options.signal` cancels the run (running tools see their signal abort,
   * and the result comes back at once with those tasks failed).
   *
   * @throws {DAGValidationError} for invalid input, cycles included
   */
  async execute(dag: DAGStructure, options: ExecuteOptions = {}): Promise<DAGExecutionResult> {
    // async: invalid input rejects the returned promise rather than throwing.
    return await this.#run(prepareFor(this, dag), options.signal, undefined);
  }

  async #run(
    prepared: PreparedDAG,
    signal: AbortSignal | undefined,
    hooks: RunHooks | undefined,
  ): Promise<DAGExecutionResult> {
    const started = performance.now();
    const tasks = prepared.tasks;
    const previous = new SettledResults(tasks, prepared.indexOf);
    const verbose = this.#config.verbose;
    const onProgress = hooks?.onTaskProgress;
    // Which tasks have ended: progress reported after that is dropped.
    const ended = onProgress === undefined ? undefined : new Uint8Array(tasks.length);
    const tool = this.#toolExecutor;
    const lookup = (id: string) => previous.get(id)?.output;
    // An executor that keeps the reference's executeTask calls tools directly,
    // one promise reaction per task; a subclass's override is called instead.
    const overridden = this.executeTask !== ownExecuteTask;
    const results = await runSchedule(prepared, {
      scheduling: this.#config.scheduling,
      maxConcurrency: this.#config.maxConcurrency,
      taskTimeout: this.#config.taskTimeout,
      signal,
      hooks,
      runTask: (i, taskSignal, startedAt, end, attempt) => {
        const task = tasks[i];
        if (verbose) console.error(`[dagstream] start ${task.id} (${task.tool})`);
        const progress = onProgress === undefined ? undefined : (update: ToolProgress) => {
          if (ended![i] === 0 && !taskSignal.aborted) {
            const checked = checkProgress(update);
            if (checked !== undefined) onProgress.call(hooks, i, checked);
          }
        };
        if (!overridden) {
          callTool(tool, task, lookup, taskSignal, progress, startedAt, i, end, attempt);
          return;
        }
        this.#attemptOf.set(task, attempt);
        this.executeTask(task, previous, taskSignal, progress).then(
          // An override's result may be another task's, reused: its attempts are not this one's.
          (result) => {
            if (!taskSignal.aborted) end(i, withoutAttempts(result));
          },
          // An override that rejects fails its task, not the run.
          (error) => {
            if (!taskSignal.aborted) end(i, failure(task, error, startedAt, attempt));
          },
        );
      },
      onSettle: (i, result) => {
        if (ended !== undefined) ended[i] = 1;
        previous.record(i, result);
        if (verbose) console.error(`[dagstream] ${result.status} ${tasks[i].id}`);
      },
    });
    return summarise(results, performance.now() - started, prepared.layers.length);
  }

  /**
   * Runs one task: resolves its `$OUTPUT` references from `previous` and
   * calls the tool. Always resolves; a failure is a result with
   * `status: "error"`. The scheduler ends the task early, whatever this
   * method is doing, when `signal` aborts (timeout or cancellation).
   * `progress`, when given, is handed to the tool as `ctx.progress`.
   *
   * Protected as in the reference design, whose subclasses may override it;
   * a {@linkcode ToolExecutor} that wraps the tool calls is the simpler way
   * to observe or change them. An override that throws or rejects fails
   * only its task.
   */
  protected executeTask(
    task: Task,
    previous: Map<string, TaskResult>,
    signal: AbortSignal,
    progress?: (update: ToolProgress) => void,
  ): Promise<TaskResult> {
    const started = performance.now();
    return new Promise((resolve) => {
      const lookup = (id: string) => previous.get(id)?.output;
      callTool(
        this.#toolExecutor,
        task,
        lookup,
        signal,
        progress,
        started,
        0,
        // The reference design's result: the scheduler counts attempts itself.
        (_, result) => resolve(withoutAttempts(result)),
        this.#attemptOf.get(task) ?? 1,
      );
    });
  }

  /**
   * Sum of task times divided by wall-clock time (1 when there is no time
   * to compare). Depends only on `result`, whichever executor produced it.
   */
  calculateSpeedup(result: DAGExecutionResult): number {
    return speedupOf(result);
  }

  /**
   * Summary figures of a run; `successRate` is a percentage (100 for an
   * empty run). Depends only on `result`, whichever executor produced it.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { ParallelExecutor } from "./executor.ts";
   *
   * const executor = new ParallelExecutor(async () => null);
   * const stats = executor.getStats({
   *   results: [
   *     { taskId: "a", status: "success", executionTimeMs: 30 },
   *     { taskId: "b", status: "error", error: "boom", executionTimeMs: 30 },
   *   ],
   *   errors: [{ taskId: "b", error: "boom", status: "error" }],
   *   executionTimeMs: 40,
   *   parallelizationLayers: 1,
   *   totalTasks: 2,
   *   successfulTasks: 1,
   *   failedTasks: 1,
   * });
   * assert.equal(stats.successRate, 50);
   * assert.equal(stats.speedup, 1.5); // 60 ms of task time in 40 ms
   * ```
   */
  getStats(result: DAGExecutionResult): ExecutionStats {
    return {
      totalTasks: result.totalTasks,
      successfulTasks: result.successfulTasks,
      failedTasks: result.failedTasks,
      successRate: result.totalTasks === 0
        ? 100
        : (result.successfulTasks / result.totalTasks) * 100,
      speedup: speedupOf(result),
      executionTimeMs: result.executionTimeMs,
      parallelizationLayers: result.parallelizationLayers,
    };
  }
}

/**
 * Validates `dag` with `executor`'s `maxTasks` (a DAG from `prepareDAG` is
 * returned as it is). For executors built on `ParallelExecutor`.
 *
 * @throws {DAGValidationError} for invalid input, cycles included
 */
export function prepareFor(executor: ParallelExecutor, dag: DAGStructure): PreparedDAG {
  return prepareDAG(dag, { maxTasks: settingsOf(executor).maxTasks });
}

/**
 * Runs an already validated DAG on `executor`, with its settings and tool
 * executor, telling `hooks` about each task: the building block of
 * {@linkcode ParallelExecutor.execute} and of streaming executors.
 */
export function runPrepared(
  executor: ParallelExecutor,
  prepared: PreparedDAG,
  signal?: AbortSignal,
  hooks?: RunHooks,
): Promise<DAGExecutionResult> {
  return runOn(executor, prepared, signal, hooks);
}

/**
 * Calls task `i`'s tool (its attempt number `attempt`) with its `$OUTPUT`
 * references resolved through `lookup`, and reports its result, which
 * carries `attempts: attempt`, through `end` once the call settles (never
 * synchronously): an error, thrown or rejected, fails only the task. The
 * scheduler tells a late result of an earlier attempt by that number.
 */
function callTool(
  tool: ToolExecutor,
  task: Task,
  lookup: (id: string) => unknown,
  signal: AbortSignal,
  progress: ((update: ToolProgress) => void) | undefined,
  startedAt: number,
  i: number,
  end: (index: number, result: TaskResult, endedAt?: number) => void,
  attempt: number,
): void {
  let call: unknown;
  let args: Record<string, unknown>;
  try {
    args = task.arguments === undefined ? {} : resolveArguments(task.arguments, lookup);
  } catch (error) {
    // The tool is not called: 0 attempts, and no retry (it would fail the same way).
    const result = failure(task, error, startedAt, 0);
    queueMicrotask(() => end(i, result));
    return;
  }
  try {
    const ctx: ToolContext = progress === undefined
      ? { signal, taskId: task.id, attempt }
      : { signal, taskId: task.id, progress, attempt };
    call = tool(task.tool, args, ctx);
  } catch (error) {
    const result = failure(task, error, startedAt, attempt);
    queueMicrotask(() => end(i, result));
    return;
  }
  Promise.resolve(call).then(
    (output) => {
      const endedAt = performance.now();
      end(i, success(task, output, startedAt, endedAt, attempt), endedAt);
    },
    (error) => end(i, failure(task, error, startedAt, attempt)),
  );
}

/** The result of a tool call that returned `output` (an error if it does not serialise). */
function success(
  task: Task,
  output: unknown,
  startedAt: number,
  endedAt: number,
  attempts: number,
): TaskResult {
  try {
    checkSerialisable(output);
  } catch (error) {
    return failure(task, error, startedAt, attempts);
  }
  return {
    taskId: task.id,
    status: "success",
    output,
    executionTimeMs: endedAt - startedAt,
    attempts,
  };
}

/**
 * `result` without its attempt count, which the scheduler sets; but for 0,
 * which says the tool was not called and the task is not to be retried.
 */
function withoutAttempts(result: TaskResult): TaskResult {
  if (result.attempts === undefined || result.attempts === 0) return result;
  const { attempts: _attempts, ...rest } = result;
  return rest;
}

/** The result of a tool call that failed with `error`. */
function failure(task: Task, error: unknown, startedAt: number, attempts: number): TaskResult {
  return {
    taskId: task.id,
    status: "error",
    error: describeError(error),
    executionTimeMs: performance.now() - startedAt,
    attempts,
  };
}

/** Sum of task times divided by wall-clock time (1 when there is no time to compare). */
function speedupOf(result: DAGExecutionResult): number {
  let sum = 0;
  for (const r of result.results) sum += r.executionTimeMs ?? 0;
  return result.executionTimeMs > 0 && sum > 0 ? sum / result.executionTimeMs : 1;
}

/** A well-formed copy of a progress report, or undefined for a malformed one. */
function checkProgress(update: ToolProgress): ToolProgress | undefined {
  if (update === null || typeof update !== "object") return undefined;
  const { progress, total, message } = update;
  if (typeof progress !== "number" || !Number.isFinite(progress)) return undefined;
  const checked: ToolProgress = { progress };
  if (typeof total === "number" && Number.isFinite(total)) checked.total = total;
  if (typeof message === "string") checked.message = message;
  return checked;
}

function checkSerialisable(output: unknown): void {
  if (output === undefined || output === null || typeof output !== "object") {
    if (typeof output === "bigint") throw new TypeError("output is not JSON-serialisable: BigInt");
    if (typeof output === "function" || typeof output === "symbol") {
      throw new TypeError(`output is not JSON-serialisable: ${typeof output}`);
    }
    return;
  }
  try {
    JSON.stringify(output);
  } catch (error) {
    throw new TypeError(`output is not JSON-serialisable: ${describeError(error)}`);
  }
}

function summarise(
  results: TaskResult[],
  executionTimeMs: number,
  parallelizationLayers: number,
): DAGExecutionResult {
  const errors: TaskError[] = [];
  for (const r of results) {
    if (r.status === "error") {
      errors.push({ taskId: r.taskId, error: r.error ?? "", status: "error" });
    }
  }
  return {
    results,
    errors,
    executionTimeMs,
    parallelizationLayers,
    totalTasks: results.length,
    successfulTasks: results.length - errors.length,
    failedTasks: errors.length,
  };
}

function resolveConfig(config: ExecutorConfig): ResolvedExecutorConfig {
  const maxConcurrency = config.maxConcurrency ?? Infinity;
  if (
    !(maxConcurrency >= 1) || (maxConcurrency !== Infinity && !Number.isInteger(maxConcurrency))
  ) {
    throw new RangeError(
      `maxConcurrency must be a whole number >= 1, got ${config.maxConcurrency}`,
    );
  }
  const taskTimeout = config.taskTimeout ?? DEFAULT_TASK_TIMEOUT;
  if (!(taskTimeout > 0) || taskTimeout > MAX_TIMER_MS) {
    throw new RangeError(
      `taskTimeout must be a number of ms from 1 to ${MAX_TIMER_MS}, got ${config.taskTimeout}`,
    );
  }
  const maxTasks = config.maxTasks ?? DEFAULT_MAX_TASKS;
  if (!(maxTasks >= 1) || !Number.isInteger(maxTasks)) {
    throw new RangeError(`maxTasks must be a whole number >= 1, got ${config.maxTasks}`);
  }
  const scheduling = config.scheduling ?? DEFAULT_SCHEDULING;
  if (scheduling !== "eager" && scheduling !== "layered") {
    throw new RangeError(`scheduling must be "eager" or "layered", got ${String(scheduling)}`);
  }
  return { maxConcurrency, taskTimeout, scheduling, maxTasks, verbose: config.verbose ?? false };
}
