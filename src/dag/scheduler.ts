/**
 * The run loop: starts tasks as their dependencies finish (eager) or layer by
 * layer (layered), bounds tasks in flight, applies per-task timeouts, skips
 * tasks whose dependency failed, and settles every task on cancellation.
 *
 * Internal to the executors; its hooks are how the streaming executor
 * observes a run. The common path (a task starts, its tool resolves, its
 * dependents are released) allocates no timer, listener or extra promise.
 *
 * @module
 */

import type { PreparedDAG } from "./validate.ts";
import type { SchedulingMode, TaskResult, ToolProgress } from "./types.ts";
import { MinIndexHeap } from "./min-index-heap.ts";
import { DeadlineQueue } from "./deadlines.ts";
import { describeError } from "./errors.ts";

/** Observers of a run; a returned promise holds the run back until it settles. */
export interface RunHooks {
  /** A task is about to start (it has its concurrency slot), or is being skipped. */
  onTaskStart(index: number): Promise<void> | void;
  /** A task has ended, whether it ran or not. */
  onTaskComplete(index: number, result: TaskResult): Promise<void> | void;
  /**
   * A running task's tool reported progress (never after the task ended).
   * Called by the executor, not the scheduler; the run does not wait for it.
   */
  onTaskProgress?(index: number, update: ToolProgress): void;
}

/** What {@linkcode runSchedule} needs. */
export interface ScheduleOptions {
  /** Eager or layered starts. */
  scheduling: SchedulingMode;
  /** Most tasks in flight at once (`Infinity` for unbounded). */
  maxConcurrency: number;
  /** Milliseconds before a running task is failed and its signal aborted. */
  taskTimeout: number;
  /**
   * Starts one task. It reports the task's result through `end` (only the
   * first report counts, and none after the scheduler ended the task on a
   * timeout or cancellation); `startedAt` is when it started, in
   * `performance.now()` milliseconds, for its `executionTimeMs`. `endedAt`,
   * when given, is the `performance.now()` reading the result was timed
   * with: tasks the end releases start at that time, with no clock read of
   * their own. Throwing fails the task.
   */
  runTask(
    index: number,
    signal: AbortSignal,
    startedAt: number,
    end: (index: number, result: TaskResult, endedAt?: number) => void,
  ): void;
  /** Called once per task with its final result, before its dependents start. */
  onSettle?(index: number, result: TaskResult): void;
  /** Cancels the whole run. */
  signal?: AbortSignal;
  /** Observers of task starts and ends. */
  hooks?: RunHooks;
}

/**
 * Runs every task of the prepared DAG at most once and resolves with one
 * result per task index. A task still running when its timeout passes or the
 * run is cancelled ends at once with an error (its tool's signal aborts).
 * Rejects, after every task has settled, only when a hook failed; that
 * failure also cancels the rest of the run.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runSchedule } from "./scheduler.ts";
 * import { prepareDAG } from "./validate.ts";
 * const dag = prepareDAG({
 *   tasks: [
 *     { id: "a", tool: "t" },
 *     { id: "b", tool: "t", dependsOn: ["a"] },
 *     { id: "c", tool: "t" },
 *   ],
 * });
 * const started: string[] = [];
 * const results = await runSchedule(dag, {
 *   scheduling: "eager",
 *   maxConcurrency: 1,
 *   taskTimeout: 30_000,
 *   runTask(i, _signal, _startedAt, end) {
 *     const taskId = dag.tasks[i].id;
 *     started.push(taskId);
 *     queueMicrotask(() =>
 *       end(
 *         i,
 *         taskId === "a"
 *           ? { taskId, status: "error", error: "boom", executionTimeMs: 0 }
 *           : { taskId, status: "success", output: taskId, executionTimeMs: 0 },
 *       )
 *     );
 *   },
 * });
 * assert.deepEqual(started, ["a", "c"], "one at a time; b is skipped as a failed");
 * assert.deepEqual(results.map((r) => r.error ?? r.output), ["boom", "Dependency a failed", "c"]);
 * ```
 */
export function runSchedule(dag: PreparedDAG, options: ScheduleOptions): Promise<TaskResult[]> {
  return new Schedule(dag, options).run();
}

const PENDING = 0;
const STARTED = 1;
const SETTLED = 2;

class Schedule {
  readonly #dag: PreparedDAG;
  readonly #options: ScheduleOptions;
  readonly #size: number;
  readonly #results: TaskResult[];
  readonly #state: Uint8Array;
  readonly #remaining: Int32Array;
  readonly #controllers: (AbortController | undefined)[];
  readonly #startedAt: Float64Array;
  readonly #ready = new MinIndexHeap();
  readonly #deadlines: DeadlineQueue;
  #hooks: RunHooks | undefined;
  #settledCount = 0;
  #running = 0;
  #layer = -1;
  #layerPending = 0;
  #layerOf: Int32Array | undefined;
  #abortReason: DOMException | undefined;
  #hookFailure: { error: unknown } | undefined;
  #finished = false;
  /**
   * A `performance.now()` reading that is still the time, or -1: set when a
   * task ends with its end time, cleared before any tool or hook runs and
   * when that synchronous step returns.
   */
  #clock = -1;
  #resolve!: (results: TaskResult[]) => void;
  #reject!: (error: unknown) => void;

  constructor(dag: PreparedDAG, options: ScheduleOptions) {
    this.#dag = dag;
    this.#options = options;
    this.#hooks = options.hooks;
    this.#size = dag.tasks.length;
    this.#results = new Array(this.#size);
    this.#state = new Uint8Array(this.#size);
    this.#remaining = new Int32Array(this.#size);
    this.#controllers = new Array(this.#size);
    this.#startedAt = new Float64Array(this.#size);
    this.#deadlines = new DeadlineQueue(this.#size, options.taskTimeout, this.#onTimeout);
  }

  run(): Promise<TaskResult[]> {
    const promise = new Promise<TaskResult[]>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    if (this.#options.scheduling === "layered") {
      this.#layerOf = new Int32Array(this.#size);
      this.#dag.layers.forEach((layer, k) => {
        for (const t of layer) this.#layerOf![t] = k;
      });
      this.#advanceLayer();
    } else {
      const counts = this.#dag.graph.dependencyCounts;
      this.#remaining.set(counts);
      for (let i = 0; i < this.#size; i++) if (counts[i] === 0) this.#ready.push(i);
    }
    const signal = this.#options.signal;
    if (signal?.aborted) this.#abort(signal.reason);
    else signal?.addEventListener("abort", this.#onSignalAbort);
    this.#pump();
    this.#checkDone();
    return promise;
  }

  /** Starts ready tasks, lowest index first, while slots are free. */
  #pump(): void {
    const max = this.#options.maxConcurrency;
    while (this.#running < max && this.#ready.size > 0 && this.#abortReason === undefined) {
      const i = this.#ready.pop();
      this.#state[i] = STARTED;
      this.#running++;
      const starting = this.#emitStart(i);
      if (starting) starting.then(() => this.#launch(i));
      else this.#launch(i);
    }
  }

  /** Calls the task's tool; whichever comes first of its result, timeout or abort ends it. */
  #launch(i: number): void {
    if (this.#abortReason !== undefined) {
      this.#end(i, this.#unrunResult(i, this.#abortReason.message));
      return;
    }
    const controller = new AbortController();
    this.#controllers[i] = controller;
    // The start time is also the deadline's; a reading taken since the last
    // call into a tool or hook is shared (a task ended, releasing this one).
    const startedAt = this.#clock >= 0 ? this.#clock : performance.now();
    this.#startedAt[i] = startedAt;
    this.#deadlines.add(i, startedAt);
    this.#clock = -1; // the tool runs now: later starts read the clock again
    try {
      this.#options.runTask(i, controller.signal, startedAt, this.#endTask);
    } catch (error) {
      // Ended later, as a result would be: never inside the loop that starts tasks.
      const result: TaskResult = {
        taskId: this.#dag.tasks[i].id,
        status: "error",
        error: describeError(error),
        executionTimeMs: performance.now() - startedAt,
      };
      queueMicrotask(() => this.#end(i, result));
    }
  }

  #endTask = (i: number, result: TaskResult, endedAt?: number): void => {
    if (endedAt === undefined) {
      this.#end(i, result);
      return;
    }
    // Valid only until this synchronous step returns or calls into a tool or hook.
    this.#clock = endedAt;
    try {
      this.#end(i, result);
    } finally {
      this.#clock = -1;
    }
  };

  #onTimeout = (i: number): void => {
    const message = `task "${
      this.#dag.tasks[i].id
    }" timed out after ${this.#options.taskTimeout} ms`;
    this.#interrupt(i, new DOMException(message, "TimeoutError"), this.#options.taskTimeout);
  };

  /** Ends running task `i` now with `reason`, and aborts its tool's signal. */
  #interrupt(i: number, reason: DOMException, elapsedMs: number): void {
    const controller = this.#controllers[i];
    if (this.#state[i] !== STARTED || controller === undefined) return;
    this.#end(i, {
      taskId: this.#dag.tasks[i].id,
      status: "error",
      error: reason.message,
      executionTimeMs: elapsedMs,
    });
    controller.abort(reason);
  }

  /** A started task has its result (the first one wins). */
  #end(i: number, result: TaskResult): void {
    if (this.#state[i] !== STARTED) return;
    this.#state[i] = SETTLED;
    this.#deadlines.settle(i);
    this.#controllers[i] = undefined;
    this.#results[i] = result;
    this.#options.onSettle?.(i, result);
    const completing = this.#emitComplete(i, result);
    if (completing) completing.then(() => this.#afterEnd(i, result));
    else this.#afterEnd(i, result);
  }

  #afterEnd(i: number, result: TaskResult): void {
    this.#running--;
    this.#settledCount++;
    if (result.status === "success") {
      this.#release(i);
      this.#afterSettle(i);
    } else if (this.#abortReason !== undefined) {
      // Cancelled: #abort settles every pending task, dependents included,
      // with the cancellation's reason rather than "Dependency ... failed".
      this.#afterSettle(i);
    } else {
      this.#skipDependents(i).then(() => this.#afterSettle(i));
    }
  }

  /** Eager mode: readies each dependent whose last dependency was `i`. */
  #release(i: number): void {
    if (this.#layerOf !== undefined) return;
    const remaining = this.#remaining;
    const state = this.#state;
    const { dependentOffsets, dependentIndices } = this.#dag.graph;
    for (let k = dependentOffsets[i], end = dependentOffsets[i + 1]; k < end; k++) {
      const d = dependentIndices[k];
      if (state[d] === PENDING && --remaining[d] === 0) this.#ready.push(d);
    }
  }

  /** Fails, without running them, every pending task downstream of failed task `i`. */
  async #skipDependents(i: number): Promise<void> {
    const { tasks, graph } = this.#dag;
    const stack = [i];
    while (stack.length > 0) {
      const x = stack.pop()!;
      for (const d of graph.dependents[x]) {
        if (this.#state[d] !== PENDING) continue;
        await this.#settleUnrun(d, `Dependency ${tasks[x].id} failed`);
        stack.push(d);
      }
    }
  }

  /** Settles a task that never gets to run; it still gets its start and end. */
  async #settleUnrun(i: number, error: string): Promise<void> {
    const result = this.#unrunResult(i, error);
    this.#state[i] = SETTLED;
    this.#results[i] = result;
    this.#options.onSettle?.(i, result);
    const starting = this.#emitStart(i);
    if (starting) await starting;
    const completing = this.#emitComplete(i, result);
    if (completing) await completing;
    this.#settledCount++;
    this.#afterSettle(i);
  }

  #unrunResult(i: number, error: string): TaskResult {
    return { taskId: this.#dag.tasks[i].id, status: "error", error, executionTimeMs: 0 };
  }

  #afterSettle(i: number): void {
    if (this.#layerOf !== undefined && this.#layerOf[i] === this.#layer) {
      if (--this.#layerPending === 0) this.#advanceLayer();
    }
    this.#pump();
    this.#checkDone();
  }

  /** Layered mode: queues the next layer's pending tasks once the current one is done. */
  #advanceLayer(): void {
    const layers = this.#dag.layers;
    while (this.#layerPending === 0 && this.#layer + 1 < layers.length) {
      this.#layer++;
      for (const t of layers[this.#layer]) {
        if (this.#state[t] === PENDING) {
          this.#ready.push(t);
          this.#layerPending++;
        }
      }
    }
  }

  #onSignalAbort = (): void => this.#abort(this.#options.signal?.reason);

  /** Cancels the run: running tasks end with the reason, pending ones fail unrun. */
  #abort(reason: unknown): void {
    if (this.#abortReason !== undefined) return;
    const error = new DOMException(`aborted: ${describeReason(reason)}`, "AbortError");
    this.#abortReason = error;
    this.#ready.clear();
    const now = performance.now();
    for (let i = 0; i < this.#size; i++) {
      if (this.#deadlines.pending(i)) this.#interrupt(i, error, now - this.#startedAt[i]);
    }
    this.#settleAllPending(error.message);
  }

  async #settleAllPending(error: string): Promise<void> {
    for (let i = 0; i < this.#size; i++) {
      if (this.#state[i] === PENDING) await this.#settleUnrun(i, error);
    }
  }

  #emitStart(i: number): Promise<void> | void {
    const hooks = this.#hooks;
    if (hooks === undefined) return;
    this.#clock = -1;
    try {
      const p = hooks.onTaskStart(i);
      if (p) return p.catch(this.#onHookFailure);
    } catch (error) {
      this.#onHookFailure(error);
    }
  }

  #emitComplete(i: number, result: TaskResult): Promise<void> | void {
    const hooks = this.#hooks;
    if (hooks === undefined) return;
    this.#clock = -1;
    try {
      const p = hooks.onTaskComplete(i, result);
      if (p) return p.catch(this.#onHookFailure);
    } catch (error) {
      this.#onHookFailure(error);
    }
  }

  /** A hook failed: no more hook calls, the run is cancelled and will reject. */
  #onHookFailure = (error: unknown): void => {
    if (this.#hookFailure !== undefined) return;
    this.#hookFailure = { error };
    this.#hooks = undefined;
    this.#abort(error);
  };

  #checkDone(): void {
    if (this.#finished || this.#settledCount !== this.#size || this.#running !== 0) return;
    this.#finished = true;
    this.#options.signal?.removeEventListener("abort", this.#onSignalAbort);
    this.#deadlines.dispose();
    if (this.#hookFailure !== undefined) this.#reject(this.#hookFailure.error);
    else this.#resolve(this.#results);
  }
}

function describeReason(reason: unknown): string {
  if (reason instanceof Error && reason.message) return reason.message;
  if (typeof reason === "string" && reason) return reason;
  return "run cancelled";
}
