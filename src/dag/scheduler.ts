/**
 * The run loop: starts tasks as their dependencies finish (eager) or layer by
 * layer (layered), bounds tasks in flight, applies per-task timeouts, tries
 * failed tasks again as their retry policy says, skips tasks whose
 * dependency failed, and settles every task on cancellation.
 *
 * Internal to the executors; its hooks are how the streaming executor
 * observes a run. The common path (a task starts, its tool resolves, its
 * dependents are released) allocates no timer, listener or extra promise.
 *
 * @module
 */

import type { PreparedDAG } from "./validate.ts";
import type { RetryPolicy, SchedulingMode, TaskResult, ToolProgress } from "./types.ts";
import { MinIndexHeap } from "./min-index-heap.ts";
import { TaskDeadlines } from "./deadlines.ts";
import { MAX_TIMER_MS, RETRY_DEFAULTS } from "./defaults.ts";
import { Queue } from "./queue.ts";
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
  /**
   * An attempt of a task failed and the task will be tried again after
   * `delayMs`; `attempt` is the number of the attempt about to start (2 for
   * the first retry). While a returned promise is pending no task starts,
   * and the wait starts once it settles.
   */
  onTaskRetry?(index: number, retry: TaskRetry): Promise<void> | void;
}

/** A failed attempt of a task that will be tried again. */
export interface TaskRetry {
  /** The number of the attempt about to start: 2 for the first retry. */
  attempt: number;
  /** Why the last attempt failed. */
  error: string;
  /** How long the task waits before that attempt, in ms (jittered). */
  delayMs: number;
}

/** What {@linkcode runSchedule} needs. */
export interface ScheduleOptions {
  /** Eager or layered starts. */
  scheduling: SchedulingMode;
  /** Most tasks in flight at once (`Infinity` for unbounded). */
  maxConcurrency: number;
  /**
   * Milliseconds before a running task is failed and its signal aborted,
   * for each attempt of a task without a `timeout` of its own.
   */
  taskTimeout: number;
  /**
   * Starts one task. It reports the task's result through `end` (only the
   * first report counts, and none after the scheduler ended the task on a
   * timeout or cancellation); `startedAt` is when it started, in
   * `performance.now()` milliseconds, for its `executionTimeMs`. `endedAt`,
   * when given, is the `performance.now()` reading the result was timed
   * with: tasks the end releases start at that time, with no clock read of
   * their own. `attempt` counts the task's tool calls, from 1; a retried
   * task's later attempts each get a fresh signal, and the signal of a
   * failed attempt aborts before the next one starts. Throwing fails the
   * attempt.
   */
  runTask(
    index: number,
    signal: AbortSignal,
    startedAt: number,
    end: (index: number, result: TaskResult, endedAt?: number) => void,
    attempt: number,
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
/** Waiting for its next attempt: holds no concurrency slot. */
const WAITING = 3;

class Schedule {
  readonly #dag: PreparedDAG;
  readonly #options: ScheduleOptions;
  readonly #size: number;
  readonly #results: TaskResult[];
  readonly #state: Uint8Array;
  readonly #remaining: Int32Array;
  readonly #controllers: (AbortController | undefined)[];
  /** When each task's first attempt started. */
  readonly #startedAt: Float64Array;
  /** How many attempts each task has started. */
  readonly #attempts: Uint8Array;
  readonly #ready = new MinIndexHeap();
  /** Retried tasks whose wait is over, in that order: they go before tasks not yet started. */
  #retryReady: Queue<number> | undefined;
  /** The wait timers of tasks waiting for their next attempt. */
  #retryTimers: Map<number, ReturnType<typeof setTimeout>> | undefined;
  readonly #deadlines: TaskDeadlines;
  /** Each task's own `timeout` (0: the run's), when any task has one. */
  readonly #ownTimeouts: Float64Array | undefined;
  #hooks: RunHooks | undefined;
  #settledCount = 0;
  /** Retries whose `task_retry` the hooks have not taken yet: no task starts meanwhile. */
  #announcing = 0;
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
    this.#attempts = new Uint8Array(this.#size);
    this.#deadlines = new TaskDeadlines(this.#size, this.#onTimeout, options.taskTimeout);
    let own: Float64Array | undefined;
    const tasks = dag.tasks;
    for (let i = 0; i < this.#size; i++) {
      const timeout = tasks[i].timeout;
      if (timeout !== undefined) (own ??= new Float64Array(this.#size))[i] = timeout;
    }
    this.#ownTimeouts = own;
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

  /** Starts retried tasks, then ready tasks lowest index first, while slots are free. */
  #pump(): void {
    if (this.#announcing > 0) return;
    const max = this.#options.maxConcurrency;
    const retries = this.#retryReady;
    if (retries !== undefined) {
      while (this.#running < max && !retries.empty && this.#abortReason === undefined) {
        const i = retries.shift()!;
        this.#state[i] = STARTED;
        this.#running++;
        this.#launch(i);
      }
    }
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
    const attempt = ++this.#attempts[i];
    if (attempt === 1) this.#startedAt[i] = startedAt;
    this.#deadlines.add(i, startedAt, this.#timeoutOf(i), attempt > 1);
    this.#clock = -1; // the tool runs now: later starts read the clock again
    try {
      this.#options.runTask(i, controller.signal, startedAt, this.#endTask, attempt);
    } catch (error) {
      // Ended later, as a result would be: never inside the loop that starts tasks.
      const result: TaskResult = {
        taskId: this.#dag.tasks[i].id,
        status: "error",
        error: describeError(error),
        executionTimeMs: performance.now() - startedAt,
        attempts: attempt,
      };
      // Its attempt number tells #end if a later attempt has begun meanwhile.
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

  /** How long each attempt of task `i` may run. */
  #timeoutOf(i: number): number {
    return this.#ownTimeouts?.[i] || this.#options.taskTimeout;
  }

  #onTimeout = (i: number): void => {
    const timeout = this.#timeoutOf(i);
    const message = `task "${this.#dag.tasks[i].id}" timed out after ${timeout} ms`;
    this.#interrupt(i, new DOMException(message, "TimeoutError"), timeout);
  };

  /** Ends running task `i`'s attempt now with `reason`, and aborts its tool's signal. */
  #interrupt(i: number, reason: DOMException, elapsedMs: number): void {
    const controller = this.#controllers[i];
    if (this.#state[i] !== STARTED || controller === undefined) return;
    // The tool hears the reason first; whatever it answers now is late and dropped.
    controller.abort(reason);
    this.#end(i, {
      taskId: this.#dag.tasks[i].id,
      status: "error",
      error: reason.message,
      executionTimeMs: elapsedMs,
      attempts: this.#attempts[i],
    });
  }

  /**
   * A started task's attempt has its result (the first one wins): the task
   * ends, or waits for its next attempt when it failed and its retry
   * policy allows one more.
   */
  #end(i: number, result: TaskResult): void {
    if (this.#state[i] !== STARTED) return;
    const attempts = this.#attempts[i];
    // A late answer of an earlier, timed-out attempt (0: the tool was not called).
    const answered = result.attempts;
    if (answered !== undefined && answered !== 0 && answered !== attempts) return;
    if (attempts > 0) {
      // Arguments that cannot be resolved fail the same way every time: no retry.
      if (result.status === "error" && this.#abortReason === undefined && answered !== 0) {
        const retry = this.#dag.tasks[i].retry;
        if (retry !== undefined && attempts < retry.attempts) {
          this.#retry(i, result.error ?? "failed", retry);
          return;
        }
      }
      if (attempts > 1) {
        // A retried task took from its first attempt's start to now.
        result = {
          ...result,
          executionTimeMs: performance.now() - this.#startedAt[i],
          attempts,
        };
      } else if (answered === undefined) result = { ...result, attempts };
    }
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

  /**
   * Task `i`'s attempt failed and it may try again: its slot is freed, its
   * tool's signal aborts, and after the policy's jittered wait it goes
   * before the tasks not yet started.
   */
  #retry(i: number, error: string, policy: RetryPolicy): void {
    this.#deadlines.settle(i);
    const controller = this.#controllers[i];
    this.#controllers[i] = undefined;
    this.#state[i] = WAITING;
    this.#running--;
    const attempt = this.#attempts[i] + 1;
    const delayMs = retryDelay(policy, attempt);
    // Announced first: whatever the abort below sets off (a tool's listener
    // may even cancel the run) comes after the event, never before it.
    const announcing = this.#emitRetry(i, { attempt, error, delayMs });
    this.#clock = -1; // tool code runs on the abort
    controller?.abort(new DOMException(`attempt failed: ${error}`, "AbortError"));
    const wait = () => {
      if (this.#state[i] !== WAITING || this.#abortReason !== undefined) return;
      const timers = this.#retryTimers ??= new Map();
      timers.set(
        i,
        setTimeout(() => {
          timers.delete(i);
          if (this.#state[i] !== WAITING || this.#abortReason !== undefined) return;
          (this.#retryReady ??= new Queue()).push(i);
          this.#pump();
        }, delayMs),
      );
    };
    if (announcing) {
      // While the event is being taken, no task starts (the sink holds the run back).
      this.#announcing++;
      announcing.then(() => {
        this.#announcing--;
        wait();
        this.#pump();
      });
    } else {
      wait();
      this.#pump();
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
  #settleUnrun(i: number, error: string): Promise<void> {
    return this.#settleIdle(i, this.#unrunResult(i, error), true);
  }

  /**
   * Settles a task that is not running (not started, or waiting for its
   * next attempt) with `result`; `withStart` gives it its `task_start` first.
   */
  async #settleIdle(i: number, result: TaskResult, withStart: boolean): Promise<void> {
    this.#state[i] = SETTLED;
    this.#results[i] = result;
    this.#options.onSettle?.(i, result);
    if (withStart) {
      const starting = this.#emitStart(i);
      if (starting) await starting;
    }
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
    if (this.#retryTimers !== undefined) {
      for (const timer of this.#retryTimers.values()) clearTimeout(timer);
      this.#retryTimers.clear();
    }
    this.#retryReady?.clear();
    this.#settleAllPending(error.message);
  }

  async #settleAllPending(error: string): Promise<void> {
    for (let i = 0; i < this.#size; i++) {
      if (this.#state[i] === WAITING) await this.#settleWaiting(i, error);
    }
    for (let i = 0; i < this.#size; i++) {
      if (this.#state[i] === PENDING) await this.#settleUnrun(i, error);
    }
  }

  /** Settles a task cancelled while it waited for its next attempt. */
  #settleWaiting(i: number, error: string): Promise<void> {
    return this.#settleIdle(i, {
      taskId: this.#dag.tasks[i].id,
      status: "error",
      error,
      executionTimeMs: performance.now() - this.#startedAt[i],
      attempts: this.#attempts[i],
    }, false);
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

  #emitRetry(i: number, retry: TaskRetry): Promise<void> | void {
    const hooks = this.#hooks;
    if (hooks?.onTaskRetry === undefined) return;
    this.#clock = -1;
    try {
      const p = hooks.onTaskRetry(i, retry);
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

/**
 * The wait before `attempt` (2 for the first retry): a random whole number
 * of ms from 0 to `min(maxDelayMs, delayMs × factor^(attempt − 2))`.
 */
function retryDelay(policy: RetryPolicy, attempt: number): number {
  const base = policy.delayMs ?? RETRY_DEFAULTS.delayMs;
  const grown = base === 0 ? 0 : base * (policy.factor ?? RETRY_DEFAULTS.factor) ** (attempt - 2);
  const cap = Math.floor(
    Math.min(policy.maxDelayMs ?? RETRY_DEFAULTS.maxDelayMs, grown, MAX_TIMER_MS),
  );
  return Math.floor(Math.random() * (cap + 1));
}

function describeReason(reason: unknown): string {
  if (reason instanceof Error && reason.message) return reason.message;
  if (typeof reason === "string" && reason) return reason;
  return "run cancelled";
}
