/**
 * The runs a server knows. The registry bounds active runs, and forgets
 * finished ones after a TTL or when more than `maxRuns` are kept (oldest
 * first), so memory stays bounded however long the server runs. With
 * `maxLogBytesTotal` it also bounds the bytes of all run logs together:
 * finished runs give way first (oldest first), then an active run's log
 * gives way to its own new events, and new runs are refused while the
 * active runs' logs fill the budget.
 *
 * @module
 */

import type { ToolExecutor } from "../dag/types.ts";
import type { PreparedDAG } from "../dag/validate.ts";
import { Queue } from "../dag/queue.ts";
import { FRAME_OVERHEAD_BYTES } from "../sse/frame.ts";
import { LogBudget } from "../sse/run-log.ts";
import { Run, type RunOptions } from "./run.ts";

/**
 * Limits of a {@linkcode RunRegistry}: those of each run, and those of the
 * runs together.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { RunSettings } from "./run-registry.ts";
 * const settings: RunSettings = {
 *   executor: { maxConcurrency: 8 },
 *   maxRunLogBytes: 1 << 24,
 *   maxEventPayloadBytes: 65_536,
 *   maxActiveRuns: 100,
 *   maxRuns: 1000,
 *   runTtlSeconds: 600,
 * };
 * assert.equal(settings.maxLogBytesTotal, undefined);
 * ```
 */
export interface RunSettings extends RunOptions {
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

/**
 * Why {@linkcode RunRegistry.start} refuses a run: the limit that is reached.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { RunRefusal } from "./run-registry.ts";
 * const refusal: RunRefusal = "maxActiveRuns";
 * assert.equal(refusal, "maxActiveRuns");
 * ```
 */
export type RunRefusal = "maxActiveRuns" | "maxLogBytesTotal";

/** A finished run still kept, and what it kept when it ended. */
interface FinishedRun {
  run: Run;
  /** `run.keptBytes` when it ended. */
  bytes: number;
}

/**
 * The runs a server knows, active and recently finished.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RunRegistry } from "./run-registry.ts";
 * import { prepareDAG } from "../dag/validate.ts";
 *
 * const runs = new RunRegistry(async (_tool, args) => args, {
 *   executor: {},
 *   maxRunLogBytes: 1 << 20,
 *   maxEventPayloadBytes: 65_536,
 *   maxActiveRuns: 1,
 *   maxRuns: 10,
 *   runTtlSeconds: 600,
 * });
 * const run = runs.start(prepareDAG({ tasks: [{ id: "a", tool: "echo" }] }))!;
 * assert.equal(runs.refusal(), "maxActiveRuns"); // one at a time
 * await runs.idle();
 * assert.equal(runs.get(run.id)?.status, "succeeded");
 * assert.equal(runs.refusal(), undefined);
 * ```
 */
export class RunRegistry {
  readonly #tools: ToolExecutor;
  readonly #settings: RunSettings;
  readonly #runs = new Map<string, Run>();
  readonly #onFinish: ((run: Run) => void) | undefined;
  readonly #logBudget: LogBudget | undefined;

  /** The bound all run logs share (`maxLogBytesTotal`), if any: copies of other instances' runs count too. */
  get logBudget(): LogBudget | undefined {
    return this.#logBudget;
  }
  /** Finished runs still kept, in the order they ended. */
  readonly #finished = new Queue<FinishedRun>();
  /** The sum of the finished runs' `bytes`. */
  #keptBytes = 0;
  /** Bytes of the logs of the finished runs kept (they no longer change). */
  #finishedLogBytes = 0;
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
  start(dag: PreparedDAG, queued?: { id: string; createdAt: string }): Run | null {
    if (this.refusal() !== undefined) return null;
    this.#prune(1);
    const run = new Run(dag, this.#tools, this.#settings, this.#logBudget, queued);
    this.#runs.set(run.id, run);
    this.#active++;
    run.done.then(() => {
      this.#active--;
      const bytes = run.keptBytes;
      this.#finished.push({ run, bytes });
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
    for (let oldest = finished.peek(); oldest !== undefined; oldest = finished.peek()) {
      const excess = this.#runs.size + room > this.#settings.maxRuns ||
        (this.#keptBytes > maxBytes && finished.length > 1);
      if (!excess && now - oldest.run.finishedAt! < ttlMs) break;
      this.#forgetOldestFinished();
    }
  }

  /**
   * A log's append put the log budget over: forgets finished runs, oldest
   * first, until it holds again or none is left (then the appending log
   * gives way itself).
   */
  #reclaimLogBytes(): void {
    const budget = this.#logBudget!;
    while (budget.usedBytes > budget.maxBytes && !this.#finished.empty) {
      this.#forgetOldestFinished();
    }
  }

  /**
   * Forgets the finished run at the head of the queue. Its log is discarded
   * at once, so its bytes are free even while a watcher still reads it (that
   * watcher gets `events_lost`).
   */
  #forgetOldestFinished(): void {
    const { run, bytes } = this.#finished.shift()!;
    this.#runs.delete(run.id);
    this.#keptBytes -= bytes;
    this.#finishedLogBytes -= run.log.bytes;
    run.log.discard();
  }
}
