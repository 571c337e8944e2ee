/**
 * The workloads of the core executor benchmark, shared by
 * `executor_bench.ts` (run by `deno bench`) and `executor_report.ts` (prints
 * the tables of docs/BENCHMARKS.md):
 *
 * 1. Scheduling overhead: a 10,000-task random DAG with a no-op tool, run by
 *    dagstream, `p-graph` and `async`'s `auto`.
 * 1c. Linear growth: a 100,000-task DAG (same generator), built on demand,
 *    against ten runs of the 10,000-task one: the same number of tasks.
 * 2. Makespan: 60-task and 200-task random DAGs whose tasks sleep 5-30 ms,
 *    run eagerly and layer by layer, compared with the DAG's critical path.
 *
 * Every run of every case does the same work; the graphs are built once, at
 * module load (the 100,000-task one when asked for), outside any measured
 * region.
 *
 * @module
 */

import asyncLib from "async";
import { PGraph } from "p-graph";
import { type DAGStructure, ParallelExecutor, prepareDAG } from "../mod.ts";
import { runPrepared } from "../src/dag/executor.ts";
import { randomDag, seededRandom } from "./random_dag.ts";

/** `async` ships no types; `auto` with promise-returning task functions. */
type AutoTask = ((...args: unknown[]) => void) | (string | ((...args: unknown[]) => void))[];
const auto = asyncLib.auto as (tasks: Record<string, AutoTask>) => Promise<unknown>;
const asyncify = asyncLib.asyncify as (
  fn: () => Promise<unknown>,
) => (...args: unknown[]) => void;

/** A run of one implementation over one workload. */
export type Runner = () => Promise<unknown>;

/** The no-op tool every implementation calls. */
const noop = (): Promise<unknown> => Promise.resolve(null);

/** p-graph's inputs for a DAG: one node per task, one `[dep, task]` pair per edge. */
function toPGraph(dag: DAGStructure, run: () => Promise<unknown>) {
  const nodes = new Map<string, { run: () => Promise<unknown> }>();
  const edges: [string, string][] = [];
  for (const t of dag.tasks) {
    nodes.set(t.id, { run });
    for (const d of t.dependsOn ?? []) edges.push([d, t.id]);
  }
  return { nodes, edges };
}

/** async.auto's input for a DAG: `{ id: [...deps, fn] }`. */
function toAuto(dag: DAGStructure, fnFor: (id: string) => () => Promise<unknown>) {
  const tasks: Record<string, AutoTask> = {};
  for (const t of dag.tasks) {
    const fn = asyncify(fnFor(t.id));
    const deps = t.dependsOn ?? [];
    tasks[t.id] = deps.length === 0 ? fn : [...deps, fn];
  }
  return tasks;
}

// ---------------------------------------------------------------------------
// 1. Scheduling overhead

/** Tasks in the scheduling-overhead DAG. */
export const NOOP_SIZE = 10_000;
/** Seed of the scheduling-overhead DAG. */
export const NOOP_SEED = 42;

/** The 10,000-task DAG (each task has 0-3 earlier dependencies). */
export const noopDag: DAGStructure = randomDag(NOOP_SIZE, NOOP_SEED);
const noopPrepared = prepareDAG(noopDag, { maxTasks: NOOP_SIZE });
/** Number of dependency edges of {@linkcode noopDag}. */
export const noopEdges: number = noopPrepared.graph.deps.reduce((n, d) => n + d.length, 0);
/** Number of topological layers of {@linkcode noopDag}. */
export const noopLayers: number = noopPrepared.layers.length;

/** The implementations compared on one no-op DAG, keyed by a short label. */
export interface NoopRunners {
  /** What a library user calls: zod validation, graph checks, then the run. */
  "dagstream execute()": Runner;
  /** The scheduler alone, on a DAG validated once beforehand. */
  "dagstream runPrepared()": Runner;
  /** p-graph as documented: build the graph (cycle check, priorities), run it. */
  "p-graph new+run()": Runner;
  /** p-graph's scheduler alone: the same graph object run again. */
  "p-graph run()": Runner;
  /** async.auto (checks the graph and runs it in one call; its check is O(V²)). */
  "async.auto": Runner;
}

/** Builds every implementation's input for `dag` once and returns one runner per implementation. */
export function makeNoopRunners(dag: DAGStructure): NoopRunners {
  const maxTasks = 2 * dag.tasks.length; // as a user would set it: room to spare
  const prepared = prepareDAG(dag, { maxTasks });
  const executor = new ParallelExecutor(noop, { maxTasks });
  const pg = toPGraph(dag, noop);
  const graph = new PGraph(pg.nodes, pg.edges);
  const autoTasks = toAuto(dag, () => noop);
  return {
    "dagstream execute()": () => executor.execute(dag),
    "dagstream runPrepared()": () => runPrepared(executor, prepared),
    "p-graph new+run()": () => new PGraph(pg.nodes, pg.edges).run(),
    "p-graph run()": () => graph.run(),
    "async.auto": () => auto(autoTasks),
  };
}

/** The 10,000-task workload. */
export const noopRunners: NoopRunners = makeNoopRunners(noopDag);

/** Tasks in the smaller DAG on which async.auto's O(V²) graph check is still affordable. */
export const SMALL_NOOP_SIZE = 1_000;
/** The 1,000-task DAG (same generator and seed). */
export const smallNoopDag: DAGStructure = randomDag(SMALL_NOOP_SIZE, NOOP_SEED);
/** The 1,000-task workload. */
export const smallNoopRunners: NoopRunners = makeNoopRunners(smallNoopDag);

/**
 * Checks, with counting tools, that every implementation runs every task of
 * `dag` once (with `peers: false`, dagstream's only).
 */
export async function verifyNoopRunners(
  dag: DAGStructure = noopDag,
  { peers = true } = {},
): Promise<void> {
  const size = dag.tasks.length;
  let count = 0;
  const counting = () => {
    count++;
    return Promise.resolve(null);
  };
  const executor = new ParallelExecutor(counting, { maxTasks: 2 * size });
  const result = await executor.execute(dag);
  if (result.successfulTasks !== size || count !== size) throw new Error("dagstream missed tasks");
  count = 0;
  await runPrepared(executor, prepareDAG(dag, { maxTasks: 2 * size }));
  if (count !== size) throw new Error(`runPrepared ran ${count} tasks`);
  if (!peers) return;
  count = 0;
  const pg = toPGraph(dag, counting);
  await new PGraph(pg.nodes, pg.edges).run();
  if (count !== size) throw new Error(`p-graph ran ${count} tasks`);
  if (size <= SMALL_NOOP_SIZE) {
    count = 0;
    await auto(toAuto(dag, () => counting));
    if (count !== size) throw new Error(`async.auto ran ${count} tasks`);
  }
}

// ---------------------------------------------------------------------------
// 1c. Linear growth: 100,000 tasks against 10 runs of 10,000

/** Tasks in the large DAG of the linear-growth case. */
export const BIG_NOOP_SIZE = 100_000;

/** The runners of the linear-growth case: the same number of tasks on each side. */
export interface LinearCase {
  /** Tasks in the large DAG. */
  size: number;
  /** Dependency edges of the large DAG. */
  edges: number;
  /** Runs of the 10,000-task DAG per sample, so that both sides run `size` tasks. */
  repeats: number;
  /** One runner per side: `execute()` and `runPrepared()`, on the large DAG and on the 10k one. */
  runners: Record<string, Runner>;
  /** Checks that every task of the large DAG runs once. */
  verify: () => Promise<void>;
}

/**
 * Builds the linear-growth case: the large DAG (same generator and seed as
 * the 10k one) is built here, on demand, as it takes a few hundred ms.
 * `size` must be a multiple of {@linkcode NOOP_SIZE}.
 */
export function makeLinearCase(size: number = BIG_NOOP_SIZE): LinearCase {
  if (size % NOOP_SIZE !== 0) throw new RangeError(`size must be a multiple of ${NOOP_SIZE}`);
  const repeats = size / NOOP_SIZE;
  const dag = randomDag(size, NOOP_SEED);
  const executor = new ParallelExecutor(noop, { maxTasks: 2 * size });
  const prepared = prepareDAG(dag, { maxTasks: 2 * size });
  const times = (runner: Runner): Runner => async () => {
    for (let k = 0; k < repeats; k++) await runner();
  };
  const label = `${size / 1000}k`;
  return {
    size,
    edges: dag.tasks.reduce((n, t) => n + (t.dependsOn?.length ?? 0), 0),
    repeats,
    runners: {
      [`execute() 10k ×${repeats}`]: times(noopRunners["dagstream execute()"]),
      [`execute() ${label}`]: () => executor.execute(dag),
      [`runPrepared() 10k ×${repeats}`]: times(noopRunners["dagstream runPrepared()"]),
      [`runPrepared() ${label}`]: () => runPrepared(executor, prepared),
    },
    verify: () => verifyNoopRunners(dag, { peers: false }),
  };
}

// ---------------------------------------------------------------------------
// 2. Makespan vs critical path

/** Tasks in the large timed DAG. */
export const TIMED_SIZE = 200;
/** Seed of the timed DAGs' shapes and of their delays. */
export const TIMED_SEED = 7;
/** Tasks in the small timed DAG (the "about 60 tasks"). */
export const SMALL_TIMED_SIZE = 60;
/** Shortest and longest task delay, in ms. */
export const DELAY_RANGE = [5, 30] as const;

/** Resolves with `null` after `ms`; the timer always completes, so nothing is left behind. */
function sleep(ms: number): Promise<unknown> {
  return new Promise((resolve) => setTimeout(resolve, ms, null));
}

/** A DAG of timed tasks, its ideal makespans, and the implementations compared on it. */
export interface TimedCase {
  /** Number of tasks. */
  size: number;
  /** The DAG; `arguments.ms` is each task's delay. */
  dag: DAGStructure;
  /** The tasks of the longest path by sum of delays, first to last (indices). */
  criticalPath: number[];
  /** Length of the critical path: the best possible makespan, in ms. */
  criticalPathMs: number;
  /** Best makespan when each layer waits for the previous one, in ms. */
  layeredIdealMs: number;
  /** Number of topological layers. */
  layers: number;
  /** Sum of all delays: the makespan of a sequential run, in ms. */
  sequentialMs: number;
  /** The implementations compared, keyed by label. */
  runners: Record<string, Runner>;
}

/** Builds a timed case: `size` tasks (randomDag, `seed`), delays drawn from {@linkcode DELAY_RANGE}. */
export function makeTimedCase(size: number, seed: number = TIMED_SEED): TimedCase {
  const shape = randomDag(size, seed, 3, "sleep");
  const random = seededRandom(seed * 1_000 + 1);
  const [lo, hi] = DELAY_RANGE;
  const dag: DAGStructure = {
    tasks: shape.tasks.map((t) => ({
      ...t,
      arguments: { ms: lo + Math.floor(random() * (hi - lo + 1)) },
    })),
  };
  const prepared = prepareDAG(dag, { maxTasks: Math.max(size, 1000) });
  const delayOf = prepared.tasks.map((t) => t.arguments!.ms as number);

  const finish = new Array<number>(size).fill(0);
  const via = new Array<number>(size).fill(-1);
  for (const layer of prepared.layers) {
    for (const i of layer) {
      for (const d of prepared.graph.deps[i]) {
        if (finish[d] > (via[i] === -1 ? 0 : finish[via[i]])) via[i] = d;
      }
      finish[i] = (via[i] === -1 ? 0 : finish[via[i]]) + delayOf[i];
    }
  }
  let last = finish.indexOf(Math.max(...finish));
  const criticalPath: number[] = [];
  while (last !== -1) {
    criticalPath.push(last);
    last = via[last];
  }
  criticalPath.reverse();

  const sleepTool = (_tool: string, args: Record<string, unknown>) => sleep(args.ms as number);
  const config = { maxTasks: Math.max(size, 1000) };
  const eager = new ParallelExecutor(sleepTool, { ...config, scheduling: "eager" });
  const layered = new ParallelExecutor(sleepTool, { ...config, scheduling: "layered" });
  const pgNodes = new Map(dag.tasks.map((t, i) => [t.id, { run: () => sleep(delayOf[i]) }]));
  const pgEdges = toPGraph(dag, noop).edges;
  const index = new Map(dag.tasks.map((t, i) => [t.id, i]));
  const autoTasks = toAuto(dag, (id) => () => sleep(delayOf[index.get(id)!]));
  return {
    size,
    dag,
    criticalPath,
    criticalPathMs: criticalPath.reduce((sum, i) => sum + delayOf[i], 0),
    layeredIdealMs: prepared.layers
      .map((layer) => Math.max(...layer.map((i) => delayOf[i])))
      .reduce((a, b) => a + b, 0),
    layers: prepared.layers.length,
    sequentialMs: delayOf.reduce((a, b) => a + b, 0),
    runners: {
      /** No scheduler: the critical path's sleeps one after another (what timers allow). */
      "critical path replayed": async () => {
        for (const i of criticalPath) await sleep(delayOf[i]);
      },
      "dagstream eager": () => eager.execute(dag),
      "dagstream layered": () => layered.execute(dag),
      "p-graph": () => new PGraph(pgNodes, pgEdges).run(),
      "async.auto": () => auto(autoTasks),
    },
  };
}

/** The 200-task timed case. */
export const timedCase: TimedCase = makeTimedCase(TIMED_SIZE);
/** The 60-task timed case (same generator and seed). */
export const smallTimedCase: TimedCase = makeTimedCase(SMALL_TIMED_SIZE);

/** The 200-task DAG; `arguments.ms` is each task's delay. */
export const timedDag: DAGStructure = timedCase.dag;
/** The tasks of the 200-task DAG's critical path, first to last. */
export const criticalPath: number[] = timedCase.criticalPath;
/** Length of {@linkcode criticalPath}: the best possible makespan, in ms. */
export const criticalPathMs: number = timedCase.criticalPathMs;
/** Best makespan when each layer waits for the previous one: the sum of each layer's longest delay. */
export const layeredIdealMs: number = timedCase.layeredIdealMs;
/** Number of topological layers of {@linkcode timedDag}. */
export const timedLayers: number = timedCase.layers;
/** Sum of all delays: the makespan of a sequential run, in ms. */
export const sequentialMs: number = timedCase.sequentialMs;
/** The implementations compared on the 200-task timed DAG. */
export const timedRunners: Record<string, Runner> = timedCase.runners;
