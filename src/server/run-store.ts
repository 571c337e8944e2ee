/**
 * Where the routes find runs: the one seam between them and the store in
 * use. {@linkcode memoryRunStore} holds this process's runs (the default);
 * {@linkcode sharedRunStore} adds those of every instance on one Redis
 * (`--store redis://…`). The routes call the same methods either way.
 *
 * @module
 */

import type { PreparedDAG } from "../dag/validate.ts";
import type { LoggedRun } from "../sse/log-stream.ts";
import type { Run, RunStatus, RunView } from "./run.ts";
import { type ListPosition, type ListQuery, pageOf, type RunPage } from "./run-listing.ts";
import type { RunRefusal, RunRegistry } from "./run-registry.ts";
import type { RedisRunStore } from "./redis-store.ts";

/** A run's events, ready for a stream. */
export interface RunEvents {
  /** The run, with its log. */
  run: LoggedRun & { readonly id: string };
  /** Whether the run is over: no event will follow its last one. */
  over: boolean;
  /** Its last sequence id: exact when `lastSeqKnown`, else at least that. */
  lastSeq: number;
  /** Whether `lastSeq` is exact (a run executing elsewhere may be ahead). */
  lastSeqKnown: boolean;
  /** Tells the store a stream of these events opened and closed: a copy lives while watched. */
  watcher?: { open(): void; close(): void };
}

/** What `DELETE /runs/<id>` did. */
export type CancelOutcome =
  | { outcome: "cancelled"; status: RunStatus }
  | { outcome: "over"; status: RunStatus }
  | { outcome: "unknown" };

/**
 * The runs as the routes see them. Methods that read a shared store reject
 * when it cannot be reached; the routes answer 503 then.
 */
export interface RunStore {
  /** Which store: `memory` (this process) or `redis` (every instance). */
  readonly kind: "memory" | "redis";
  /** Whether it can take runs now (a shared store that cannot be reached cannot). */
  readonly up: boolean;
  /** Runs executing in this process. */
  readonly activeCount: number;
  /** Which limit would refuse a run started here now, if any. */
  refusal(): RunRefusal | undefined;
  /** Starts a run in this process (its client is attached here), or `null` at a limit. */
  startHere(dag: PreparedDAG): Run | null;
  /**
   * Accepts a run of `POST /runs`: started here (memory), or queued for
   * any instance (redis; `full` when the queue holds its most runs); `null`
   * at a limit of this process.
   */
  submit(dag: PreparedDAG): Promise<{ id: string; status: RunStatus } | "full" | null>;
  /** A run as `GET /runs/<id>` shows it. */
  view(id: string): Promise<RunView | undefined>;
  /** The page of runs `GET /runs` lists (newest first). */
  list(query: ListQuery): Promise<RunPage<RunView>>;
  /** Cancels a run wherever it executes. */
  cancel(id: string): Promise<CancelOutcome>;
  /** A run's events, wherever it executes. */
  events(id: string): Promise<RunEvents | undefined>;
}

/**
 * This process's runs only: the memory store.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { memoryRunStore } from "./run-store.ts";
 * import { RunRegistry } from "./run-registry.ts";
 * const store = memoryRunStore(
 *   new RunRegistry(async () => null, {
 *     executor: {},
 *     maxRunLogBytes: 1 << 20,
 *     maxEventPayloadBytes: 65536,
 *     maxActiveRuns: 1,
 *     maxRuns: 10,
 *     runTtlSeconds: 60,
 *   }),
 * );
 * assert.equal(store.kind, "memory");
 * assert.equal(await store.view("nope"), undefined);
 * assert.deepEqual(await store.cancel("nope"), { outcome: "unknown" });
 * ```
 */
export function memoryRunStore(runs: RunRegistry): RunStore {
  return {
    kind: "memory",
    up: true,
    get activeCount() {
      return runs.activeCount;
    },
    refusal: () => runs.refusal(),
    startHere: (dag) => runs.start(dag),
    submit: (dag) => {
      const run = runs.start(dag);
      return Promise.resolve(run === null ? null : { id: run.id, status: run.status });
    },
    view: (id) => Promise.resolve(runs.get(id)?.toJSON()),
    list: (query) => {
      const page = pageOf(runs.list(), query, positionOf, (run) => run.status);
      return Promise.resolve({ ...page, runs: page.runs.map(summary) });
    },
    cancel: (id) => Promise.resolve(cancelHere(runs, id) ?? { outcome: "unknown" }),
    events: (id) => Promise.resolve(eventsHere(runs, id)),
  };
}

/**
 * The runs of every instance on one Redis: this process's runs execute
 * here (and are copied there), `POST /runs` queues for any instance, and
 * the others' runs are read from Redis.
 */
export function sharedRunStore(runs: RunRegistry, redis: RedisRunStore): RunStore {
  return {
    kind: "redis",
    get up() {
      return redis.up;
    },
    get activeCount() {
      return runs.activeCount;
    },
    refusal: () => runs.refusal(),
    startHere: (dag) => runs.start(dag),
    async submit(dag) {
      const queued = await redis.enqueue(dag.tasks);
      return queued === "full" ? "full" : { id: queued.runId, status: "queued" };
    },
    // A run executing here answers from memory: its freshest state.
    view: async (id) => runs.get(id)?.toJSON() ?? await redis.view(id),
    list: (query) => redis.list(query),
    async cancel(id) {
      const here = cancelHere(runs, id);
      if (here !== undefined) return here;
      const outcome = await redis.cancel(id);
      if (outcome === "unknown") return { outcome };
      if (outcome === "cancelled") return { outcome, status: "cancelled" };
      const view = await redis.view(id, false);
      return { outcome, status: view?.status ?? "cancelled" };
    },
    async events(id) {
      const here = eventsHere(runs, id);
      if (here !== undefined) return here;
      const followed = await redis.follow(id, runs.logBudget);
      if (followed === undefined) return undefined;
      const { run, over, lastSeq } = followed;
      return {
        run,
        over,
        lastSeq,
        lastSeqKnown: over,
        watcher: { open: () => run.watch(), close: () => run.unwatch() },
      };
    },
  };
}

/** `DELETE` of a run of this process, or undefined when it is not here. */
function cancelHere(runs: RunRegistry, id: string): CancelOutcome | undefined {
  const run = runs.get(id);
  if (run === undefined) return undefined;
  return run.cancel("cancelled by DELETE")
    ? { outcome: "cancelled", status: run.status }
    : { outcome: "over", status: run.status };
}

/** The events of a run of this process, or undefined when it is not here. */
function eventsHere(runs: RunRegistry, id: string): RunEvents | undefined {
  const run = runs.get(id);
  if (run === undefined) return undefined;
  return { run, over: !run.active, lastSeq: run.log.lastSeq, lastSeqKnown: true };
}

/** Where a run of this process sits in `GET /runs`. */
function positionOf(run: Run): ListPosition {
  return { createdMs: Date.parse(run.createdAt), id: run.id };
}

/** A run as `GET /runs` lists it: no DAG, no result. */
function summary(run: Run): RunView {
  const { runId, status, instance, createdAt, startedAt, finishedAt } = run.toJSON(false);
  return { runId, status, instance, createdAt, startedAt, finishedAt };
}
