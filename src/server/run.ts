/**
 * One run of the bundled server: an execution with an id, an event log that
 * any number of watchers read (through `src/sse/log-stream.ts`), a status,
 * and, once over, its full result. The executor feeds the log through the
 * run's sink and never waits for a watcher.
 *
 * @module
 */

import type { DAGExecutionResult, ExecutorConfig, Task, ToolExecutor } from "../dag/types.ts";
import type { PreparedDAG } from "../dag/validate.ts";
import { StreamingExecutor } from "../dag/streaming.ts";
import { describeError } from "../dag/errors.ts";
import { errorEvent, type SSEEvent } from "../dag/events.ts";
import { type LogBudget, RunLog } from "../sse/run-log.ts";
import type { LoggedRun } from "../sse/log-stream.ts";
import { measureJson, type OutputBudget, withOutputBudget } from "../tools/output-budget.ts";
import { ProgressThrottle } from "./progress-throttle.ts";
import { traceRun } from "./tracing.ts";
import type { RunCopy } from "./redis-store.ts";

/**
 * Where a run is in its life.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { RunStatus } from "./run.ts";
 * const over = (status: RunStatus) => status !== "running";
 * assert.equal(over("cancelled"), true);
 * ```
 */
export type RunStatus = "queued" | "running" | "succeeded" | "failed" | "cancelled";

/**
 * What one {@linkcode Run} is given: executor settings and the limits of
 * its log and outputs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { RunOptions } from "./run.ts";
 * const options: RunOptions = { executor: {}, maxRunLogBytes: 1 << 24, maxEventPayloadBytes: 65_536 };
 * assert.equal(options.maxRunOutputBytes, undefined);
 * ```
 */
export interface RunOptions {
  /** Executor settings for the run. */
  executor: ExecutorConfig;
  /** The id of the server instance that executes the run, shown on it. */
  instance?: string;
  /** The shared store that keeps a copy of the run, if any. */
  store?: { copy(run: Run): RunCopy };
  /** Most bytes of events the run's log keeps. */
  maxRunLogBytes: number;
  /** Cap on one `task_complete` event's data, in bytes. */
  maxEventPayloadBytes: number;
  /**
   * Most bytes of JSON the run's tool arguments and outputs may total (see
   * `output-budget.ts`). Default unbounded.
   */
  maxRunOutputBytes?: number;
  /**
   * Called with each event as it goes into the run's log: once per event,
   * whoever watches (for metrics). It must not throw.
   */
  onEvent?: (event: SSEEvent) => void;
}

/**
 * One execution and everything known about it. A {@linkcode LoggedRun}: log
 * readers stream it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Run } from "./run.ts";
 * import { prepareDAG } from "../dag/validate.ts";
 *
 * const run = new Run(
 *   prepareDAG({ tasks: [{ id: "a", tool: "echo" }] }),
 *   async (_tool, args) => args,
 *   { executor: {}, maxRunLogBytes: 1 << 20, maxEventPayloadBytes: 65_536 },
 * );
 * await run.done;
 * assert.equal(run.status, "succeeded");
 * assert.equal(run.log.lastSeq, 3); // task_start, task_complete, execution_complete
 * assert.equal(run.cancel("too late"), false);
 * ```
 */
export class Run implements LoggedRun {
  /** The run's id (`X-Run-Id`). */
  readonly id: string;
  /** When the run was created, ISO 8601. */
  readonly createdAt: string;
  /** When the run started executing, ISO 8601 (at once, in this process). */
  readonly startedAt: string;
  /** The id of the server instance executing the run. */
  readonly instance: string | undefined;
  /** The tasks as submitted (normalised: `depends_on` reads as `dependsOn`). */
  readonly tasks: readonly Task[];
  /** The run's events. */
  readonly log: RunLog;
  /** Number of tasks. */
  readonly taskCount: number;
  /** Resolves once the run is over. */
  readonly done: Promise<void>;

  /** Current status. */
  status: RunStatus = "running";
  /** The full result, once the run is over. */
  result: DAGExecutionResult | undefined;
  /** Why the run failed as a whole (not a task failure), if it did. */
  failure: string | undefined;
  /** `performance.now()` when the run ended. */
  finishedAt: number | undefined;
  /** When the run ended, ISO 8601. */
  #finishedIso: string | undefined;
  /** About how many bytes the kept tasks take in memory; counted when first asked. */
  #tasksBytes: number | undefined;
  readonly #controller = new AbortController();
  readonly #budget: OutputBudget | undefined;
  readonly #onEvent: ((event: SSEEvent) => void) | undefined;

  /**
   * Starts running `dag` at once.
   *
   * @param dag the validated DAG
   * @param tools runs the tasks' tool calls
   * @param settings limits and executor settings
   * @param logBudget the bound the run's log shares with other runs' logs, if any
   * @param queued the id and creation time of a run that waited in a queue (default: a new run)
   */
  constructor(
    dag: PreparedDAG,
    tools: ToolExecutor,
    settings: RunOptions,
    logBudget?: LogBudget,
    queued?: { id: string; createdAt: string },
  ) {
    this.id = queued?.id ?? crypto.randomUUID();
    this.startedAt = new Date().toISOString();
    this.createdAt = queued?.createdAt ?? this.startedAt;
    this.taskCount = dag.tasks.length;
    this.tasks = dag.tasks;
    this.instance = settings.instance;
    this.log = new RunLog(settings.maxRunLogBytes, settings.maxEventPayloadBytes, logBudget);
    const log = this.log;
    const onEvent = this.#onEvent = settings.onEvent;
    // A copy in the shared store, when there is one, from the first event on.
    const copy = settings.store?.copy(this);
    if (copy !== undefined) log.observe(copy.frame);
    const progress = new ProgressThrottle();
    const max = settings.maxRunOutputBytes;
    // Spans of the run and of each tool call, when OpenTelemetry is on.
    const tracing = traceRun(this.id, this.taskCount);
    const called = tracing === undefined ? tools : tracing.wrap(tools);
    this.#budget = max === undefined ? undefined : withOutputBudget(called, max);
    const executor = new StreamingExecutor(this.#budget?.tools ?? called, settings.executor);
    this.done = executor
      // The log never makes the run wait: each event goes straight into it.
      .executeWithEventSink(dag, (event) => {
        if (event.type !== "task_progress" || progress.take(event.data.taskId)) {
          log.append(event);
          onEvent?.(event);
        }
      }, {
        signal: this.#controller.signal,
      })
      .then((result) => {
        this.result = result;
        if (this.status === "running") {
          this.status = result.failedTasks > 0 ? "failed" : "succeeded";
        }
      }, (error) => {
        this.failure = describeError(error);
        if (this.status === "running") this.status = "failed";
      })
      .finally(() => {
        this.finishedAt = performance.now();
        this.#finishedIso = new Date().toISOString();
        log.end();
        copy?.finish();
        tracing?.end(this.status, this.result, this.failure);
      });
  }

  /**
   * About how many bytes of memory the run keeps: its event log, its
   * outputs (counted only with `maxRunOutputBytes`) and its tasks.
   */
  get keptBytes(): number {
    this.#tasksBytes ??= sizeOf(this.tasks);
    return this.log.bytes + (this.#budget?.outputMemoryBytes ?? 0) + this.#tasksBytes;
  }

  /** Whether the run is still executing. */
  get active(): boolean {
    return this.finishedAt === undefined;
  }

  /**
   * Cancels the run: running tools see their signal abort, the rest fail
   * unrun. Returns false when the run was already over.
   */
  cancel(reason: string): boolean {
    if (!this.active) return false;
    this.status = "cancelled";
    this.#controller.abort(new Error(reason));
    return true;
  }

  /**
   * Fails the run as a whole: an `error` event with `code` goes into its log,
   * then it stops as a cancellation does (running tools see their signal
   * abort), and it ends `failed` with `reason`. Returns false when the run
   * was already over.
   */
  fail(reason: string, code: string): boolean {
    if (!this.active) return false;
    this.status = "failed";
    this.failure = reason;
    const event = errorEvent(reason, { code });
    this.log.append(event);
    this.#onEvent?.(event);
    this.#controller.abort(new Error(reason));
    return true;
  }

  /**
   * The run as `GET /runs/<id>` shows it: with the submitted tasks as `dag`,
   * unless `withDag` is false (lists and the JSON answer of `POST /execute`).
   */
  toJSON(withDag = true): RunView {
    const body: RunView = {
      runId: this.id,
      status: this.status,
      createdAt: this.createdAt,
      startedAt: this.startedAt,
    };
    if (this.#finishedIso !== undefined) body.finishedAt = this.#finishedIso;
    if (this.instance !== undefined) body.instance = this.instance;
    if (this.result !== undefined) body.result = this.result;
    if (this.failure !== undefined) body.error = this.failure;
    if (withDag) body.dag = { tasks: this.tasks };
    return body;
  }
}

/** A run as the routes show it (see {@linkcode Run.toJSON}). */
export interface RunView {
  /** The run's id. */
  runId: string;
  /** Where the run is in its life. */
  status: RunStatus;
  /** When it was created, ISO 8601. */
  createdAt: string;
  /** When it started executing, ISO 8601; absent while it waits in the queue. */
  startedAt?: string;
  /** When it ended, ISO 8601; absent while it runs. */
  finishedAt?: string;
  /** The id of the server instance executing it. */
  instance?: string;
  /** Its result, once over. */
  result?: DAGExecutionResult;
  /** Why it failed as a whole, if it did. */
  error?: string;
  /** The DAG as submitted (normalised). */
  dag?: { tasks: readonly Task[] };
}

/** About how many bytes `tasks` take in memory (they came from a bounded request body). */
function sizeOf(tasks: readonly Task[]): number {
  const size = measureJson(tasks, Infinity);
  return typeof size === "object" ? size.memory : 0;
}
