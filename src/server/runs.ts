/**
 * Runs of the bundled server: each execution gets an id, an event log that
 * any number of watchers read, a status, and, once over, its full result.
 * The registry bounds active runs, and forgets finished ones after a TTL or
 * when more than `maxRuns` are kept (oldest first), so memory stays bounded
 * however long the server runs. With `maxLogBytesTotal` it also bounds the
 * bytes of all run logs together: finished runs give way first (oldest
 * first), then an active run's log gives way to its own new events, and new
 * runs are refused while the active runs' logs fill the budget.
 *
 * @module
 */

import type { DAGExecutionResult, ExecutorConfig, ToolExecutor } from "../dag/types.ts";
import type { PreparedDAG } from "../dag/validate.ts";
import { StreamingExecutor } from "../dag/streaming.ts";
import { describeError } from "../dag/errors.ts";
import { LogBudget, RunLog } from "../sse/run-log.ts";
import { type OutputBudget, withOutputBudget } from "../tools/output-budget.ts";

/** Where a run is in its life. */
export type RunStatus = "running" | "succeeded" | "failed" | "cancelled";

/** Limits of a {@linkcode RunRegistry}. */
export interface RunSettings {
  /** Executor settings for every run. */
  executor: ExecutorConfig;
  /** Most bytes of events a run's log keeps. */
  maxRunLogBytes: number;
  /**
   * Most bytes of events all run logs keep together, active and finished
   * runs alike. When an event would go past it, finished runs are forgotten,
   * oldest first; when none is left, the run's own oldest events give way
   * (its watchers that still needed them get `events_lost`). While the
   * active runs' logs leave less than one event's room
   * ({@linkcode RunRegistry.refusal}), `start` refuses new runs. Default
   * unbounded.
   */
  maxLogBytesTotal?: number;
  /** Cap on one `task_complete` event's data, in bytes. */
  maxEventPayloadBytes: number;
  /**
   * Most bytes of JSON a run's tool arguments and outputs may total (see
   * `output-budget.ts`). Default unbounded.
   */
  maxRunOutputBytes?: number;
  /** Most runs executing at once. */
  maxActiveRuns: number;
  /** Most runs kept, finished ones included. */
  maxRuns: number;
  /** Seconds a finished run is kept. */
  runTtlSeconds: number;
  /**
   * Most bytes finished runs may keep, event logs and outputs together
   * (oldest finished runs go first; the last one to finish always stays).
   * Default unbounded.
   */
  maxKeptRunBytes?: number;
}

/** One execution and everything known about it. */
export class Run {
  /** The run's id (`X-Run-Id`). */
  readonly id: string = crypto.randomUUID();
  /** When the run was created, ISO 8601. */
  readonly createdAt: string = new Date().toISOString();
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
  readonly #controller = new AbortController();
  readonly #budget: OutputBudget | undefined;

  /**
   * Starts running `dag` at once.
   *
   * @param dag the validated DAG
   * @param tools runs the tasks' tool calls
   * @param settings limits and executor settings
   * @param logBudget the bound the run's log shares with other runs' logs, if any
   */
  constructor(
    dag: PreparedDAG,
    tools: ToolExecutor,
    settings: RunSettings,
    logBudget?: LogBudget,
  ) {
    this.taskCount = dag.tasks.length;
    this.log = new RunLog(settings.maxRunLogBytes, settings.maxEventPayloadBytes, logBudget);
    const log = this.log;
    const progress = new ProgressThrottle();
    const max = settings.maxRunOutputBytes;
    this.#budget = max === undefined ? undefined : withOutputBudget(tools, max);
    const executor = new StreamingExecutor(this.#budget?.tools ?? tools, settings.executor);
    this.done = executor
      // The log never makes the run wait: each event goes straight into it.
      .executeWithEventSink(dag, (event) => {
        if (event.type !== "task_progress" || progress.take(event.data.taskId)) log.append(event);
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
        log.end();
      });
  }

  /**
   * About how many bytes of memory the run keeps: its event log, and its
   * outputs (counted only with `maxRunOutputBytes`).
   */
  get keptBytes(): number {
    return this.log.bytes + (this.#budget?.outputMemoryBytes ?? 0);
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

  /** The run as `GET /runs/<id>` shows it. */
  toJSON(): {
    runId: string;
    status: RunStatus;
    createdAt: string;
    result?: DAGExecutionResult;
    error?: string;
  } {
    const body: ReturnType<Run["toJSON"]> = {
      runId: this.id,
      status: this.status,
      createdAt: this.createdAt,
    };
    if (this.result !== undefined) body.result = this.result;
    if (this.failure !== undefined) body.error = this.failure;
    return body;
  }
}

/** Why {@linkcode RunRegistry.start} refuses a run: the limit that is reached. */
export type RunRefusal = "maxActiveRuns" | "maxLogBytesTotal";

/**
 * Bytes of a frame besides its payload, about (`id:`, `event:`, `data:`): a
 * new run needs room for one full-size event, the payload cap plus this.
 */
const FRAME_OVERHEAD_BYTES = 1024;

/** The runs a server knows, active and recently finished. */
export class RunRegistry {
  readonly #tools: ToolExecutor;
  readonly #settings: RunSettings;
  readonly #runs = new Map<string, Run>();
  readonly #onFinish: ((run: Run) => void) | undefined;
  readonly #logBudget: LogBudget | undefined;
  /** Finished runs still kept, in the order they ended (from `#finishedHead`). */
  #finished: Run[] = [];
  /** `keptBytes` of each run of `#finished` when it ended, and their sum from the head. */
  #finishedBytes: number[] = [];
  #keptBytes = 0;
  /** Bytes of the logs of the finished runs kept (they no longer change). */
  #finishedLogBytes = 0;
  #finishedHead = 0;
  #active = 0;

  /**
   * Creates an empty registry.
   *
   * @param tools runs the tasks' tool calls
   * @param settings limits and executor settings
   * @param onFinish called once per run when it is over (for logging)
   */
  constructor(tools: ToolExecutor, settings: RunSettings, onFinish?: (run: Run) => void) {
    this.#tools = tools;
    this.#settings = settings;
    this.#onFinish = onFinish;
    const max = settings.maxLogBytesTotal;
    this.#logBudget = max === undefined
      ? undefined
      : new LogBudget(max, () => this.#reclaimLogBytes());
  }

  /** Runs executing now. */
  get activeCount(): number {
    return this.#active;
  }

  /** Bytes of events all kept runs' logs hold now, active and finished. */
  get logBytes(): number {
    if (this.#logBudget !== undefined) return this.#logBudget.usedBytes;
    let bytes = 0;
    for (const run of this.#runs.values()) bytes += run.log.bytes;
    return bytes;
  }

  /** Bytes of events the active runs' logs hold now. */
  get activeLogBytes(): number {
    return this.logBytes - this.#finishedLogBytes;
  }

  /**
   * Which limit would make {@linkcode RunRegistry.start} refuse a run now:
   * `maxActiveRuns` runs executing, or (with `maxLogBytesTotal`) active runs'
   * logs leaving less than one full-size event's room; undefined when a run
   * may start.
   */
  refusal(): RunRefusal | undefined {
    if (this.#active >= this.#settings.maxActiveRuns) return "maxActiveRuns";
    const budget = this.#logBudget;
    if (budget !== undefined) {
      const room = Math.min(
        this.#settings.maxEventPayloadBytes + FRAME_OVERHEAD_BYTES,
        budget.maxBytes / 2,
      );
      if (this.activeLogBytes + room > budget.maxBytes) return "maxLogBytesTotal";
    }
    return undefined;
  }

  /**
   * Starts a run, or returns `null` when a limit is reached
   * ({@linkcode RunRegistry.refusal} says which).
   */
  start(dag: PreparedDAG): Run | null {
    if (this.refusal() !== undefined) return null;
    this.#prune(1);
    const run = new Run(dag, this.#tools, this.#settings, this.#logBudget);
    this.#runs.set(run.id, run);
    this.#active++;
    run.done.then(() => {
      this.#active--;
      const bytes = run.keptBytes;
      this.#finished.push(run);
      this.#finishedBytes.push(bytes);
      this.#keptBytes += bytes;
      this.#finishedLogBytes += run.log.bytes;
      // A finished run's memory may be over the budget now: free it now.
      if (this.#settings.maxKeptRunBytes !== undefined) this.#prune(0);
      this.#onFinish?.(run);
    });
    return run;
  }

  /** A run by id, if still kept. */
  get(id: string): Run | undefined {
    this.#prune(0);
    return this.#runs.get(id);
  }

  /** Every run kept, oldest first. */
  list(): Run[] {
    this.#prune(0);
    return [...this.#runs.values()];
  }

  /** Cancels every active run. */
  cancelAll(reason: string): void {
    for (const run of this.#runs.values()) run.cancel(reason);
  }

  /** Resolves once no run is active. */
  async idle(): Promise<void> {
    await Promise.all([...this.#runs.values()].map((run) => run.done));
  }

  /**
   * Forgets expired finished runs, and the oldest finished ones while more
   * than `maxRuns - room` are kept or they keep more than `maxKeptRunBytes`
   * (the last run to finish always stays). Finished runs wait in the order
   * they ended, so this looks only at the queue's head: O(1) per forgotten run.
   */
  #prune(room: number): void {
    const finished = this.#finished;
    const now = performance.now();
    const ttlMs = this.#settings.runTtlSeconds * 1000;
    const maxBytes = this.#settings.maxKeptRunBytes ?? Infinity;
    while (this.#finishedHead < finished.length) {
      const run = finished[this.#finishedHead];
      const excess = this.#runs.size + room > this.#settings.maxRuns ||
        (this.#keptBytes > maxBytes && this.#finishedHead < finished.length - 1);
      if (!excess && now - run.finishedAt! < ttlMs) break;
      this.#forgetOldestFinished();
    }
    if (this.#finishedHead > 1024 && this.#finishedHead * 2 > finished.length) {
      this.#finished = finished.slice(this.#finishedHead);
      this.#finishedBytes = this.#finishedBytes.slice(this.#finishedHead);
      this.#finishedHead = 0;
    }
  }

  /**
   * A log's append put the log budget over: forgets finished runs, oldest
   * first, until it holds again or none is left (then the appending log
   * gives way itself).
   */
  #reclaimLogBytes(): void {
    const budget = this.#logBudget!;
    while (budget.usedBytes > budget.maxBytes && this.#finishedHead < this.#finished.length) {
      this.#forgetOldestFinished();
    }
  }

  /**
   * Forgets the finished run at the head of the queue. Its log is discarded
   * at once, so its bytes are free even while a watcher still reads it (that
   * watcher gets `events_lost`).
   */
  #forgetOldestFinished(): void {
    const run = this.#finished[this.#finishedHead];
    this.#runs.delete(run.id);
    this.#keptBytes -= this.#finishedBytes[this.#finishedHead];
    this.#finishedLogBytes -= run.log.bytes;
    run.log.discard();
    this.#finished[this.#finishedHead++] = undefined as unknown as Run;
  }
}

/**
 * `body` (a `DAGExecutionResult`, or a run as `toJSON` gives it) with each
 * task output replaced by its JSON text, spliced in as is (`JSON.rawJSON`),
 * or, for an output that no longer serialises (a `toJSON` or getter that
 * throws the second time, a stack overflow), by the error saying so. For
 * answering when `JSON.stringify(body)` threw.
 */
export function withSerialisableOutputs(body: unknown): unknown {
  const fix = (result: DAGExecutionResult): DAGExecutionResult => ({
    ...result,
    results: result.results.map((r) => {
      if (r.output === undefined) return r;
      try {
        const text = JSON.stringify(r.output);
        return { ...r, output: text === undefined ? undefined : rawJSON(text) };
      } catch (error) {
        const { output: _, ...rest } = r;
        return {
          ...rest,
          status: "error",
          error: `output is not JSON-serialisable: ${describeError(error)}`,
        };
      }
    }),
  });
  if (typeof body !== "object" || body === null) return body;
  if (Array.isArray((body as DAGExecutionResult).results)) return fix(body as DAGExecutionResult);
  const result = (body as { result?: DAGExecutionResult }).result;
  return result === undefined ? body : { ...body, result: fix(result) };
}

/** `JSON.rawJSON` (ES2026): a value `JSON.stringify` writes as the given text. */
const rawJSON = (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON;

/** Reports a task may make in a burst before {@linkcode PROGRESS_PER_SECOND} applies. */
const PROGRESS_BURST = 64;
/** Reports per second a task keeps making once its burst is spent. */
const PROGRESS_PER_SECOND = 10;

/**
 * Which `task_progress` events a run's log keeps: a token bucket per task,
 * {@linkcode PROGRESS_BURST} deep, refilled at {@linkcode PROGRESS_PER_SECOND}.
 * The log never makes the run wait, so the executor's own rule (drop reports
 * while the consumer holds the last one) never applies to it: without this,
 * a tool reporting in a loop fills the log and pushes the run's task events
 * out of it (its readers get `events_lost`).
 */
class ProgressThrottle {
  readonly #tasks = new Map<string, { tokens: number; at: number }>();

  /** Whether to keep one more report of `taskId` now. */
  take(taskId: string): boolean {
    const now = performance.now();
    const bucket = this.#tasks.get(taskId);
    if (bucket === undefined) {
      this.#tasks.set(taskId, { tokens: PROGRESS_BURST - 1, at: now });
      return true;
    }
    bucket.tokens = Math.min(
      PROGRESS_BURST,
      bucket.tokens + ((now - bucket.at) / 1000) * PROGRESS_PER_SECOND,
    );
    bucket.at = now;
    if (bucket.tokens < 1) return false;
    bucket.tokens--;
    return true;
  }
}
