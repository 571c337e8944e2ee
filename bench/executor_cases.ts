/**
 * The workloads of the core executor benchmark, shared by
 * `executor_bench.ts` (run by `deno bench`) and `executor_report.ts` (prints
 * the tables of docs/BENCHMARKS.md):
 *
 * 1. Scheduling overhead: a 10,000-task random DAG with a no-op tool, run by
 *    dagstream, `p-graph` and `async`'s `auto`.
 * 2. Makespan: a 200-task random DAG whose tasks sleep 5-30 ms, run eagerly
 *    and layer by layer, compared with the DAG's critical path.
 *
 * Every run of every case does the same work; the graphs are built once, at
 * module load, outside any measured region.
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

/** Checks, with counting tools, that every implementation runs every task of `dag` once. */
export async function verifyNoopRunners(dag: DAGStructure = noopDag): Promise<void> {
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
// 2. Makespan vs critical path

/** Tasks in the timed DAG. */
export const TIMED_SIZE = 200;
/** Seed of the timed DAG's shape and of its delays. */
export const TIMED_SEED = 7;
/** Shortest and longest task delay, in ms. */
export const DELAY_RANGE = [5, 30] as const;

/** Resolves with `null` after `ms`; the timer always completes, so nothing is left behind. */
function sleep(ms: number): Promise<unknown> {
  return new Promise((resolve) => setTimeout(resolve, ms, null));
}

function makeTimedDag(): DAGStructure {
  const shape = randomDag(TIMED_SIZE, TIMED_SEED, 3, "sleep");
  const random = seededRandom(TIMED_SEED * 1_000 + 1);
  const [lo, hi] = DELAY_RANGE;
  return {
    tasks: shape.tasks.map((t) => ({
      ...t,
      arguments: { ms: lo + Math.floor(random() * (hi - lo + 1)) },
    })),
  };
}

/** The 200-task DAG; `arguments.ms` is each task's delay. */
export const timedDag: DAGStructure = makeTimedDag();
const timedPrepared = prepareDAG(timedDag);
const delayOf = timedPrepared.tasks.map((t) => t.arguments!.ms as number);

/** The tasks of the longest path through the DAG by sum of delays, first to last. */
export const criticalPath: number[] = (() => {
  const finish = new Array<number>(TIMED_SIZE).fill(0);
  const via = new Array<number>(TIMED_SIZE).fill(-1);
  for (const layer of timedPrepared.layers) {
    for (const i of layer) {
      for (const d of timedPrepared.graph.deps[i]) {
        if (finish[d] > (via[i] === -1 ? 0 : finish[via[i]])) via[i] = d;
      }
      finish[i] = (via[i] === -1 ? 0 : finish[via[i]]) + delayOf[i];
    }
  }
  let last = finish.indexOf(Math.max(...finish));
  const path = [];
  while (last !== -1) {
    path.push(last);
    last = via[last];
  }
  return path.reverse();
})();

/** Length of {@linkcode criticalPath}: the best possible makespan, in ms. */
export const criticalPathMs: number = criticalPath.reduce((sum, i) => sum + delayOf[i], 0);

/** Best makespan when each layer waits for the previous one: the sum of each layer's longest delay. */
export const layeredIdealMs: number = timedPrepared.layers
  .map((layer) => Math.max(...layer.map((i) => delayOf[i])))
  .reduce((a, b) => a + b, 0);

/** Number of topological layers of {@linkcode timedDag}. */
export const timedLayers: number = timedPrepared.layers.length;

/** Sum of all delays: the makespan of a sequential run, in ms. */
export const sequentialMs: number = delayOf.reduce((a, b) => a + b, 0);

const sleepTool = (_tool: string, args: Record<string, unknown>) => sleep(args.ms as number);
const eager = new ParallelExecutor(sleepTool, { scheduling: "eager" });
const layered = new ParallelExecutor(sleepTool, { scheduling: "layered" });
const timedPGraphNodes = new Map(
  timedDag.tasks.map((t, i) => [t.id, { run: () => sleep(delayOf[i]) }]),
);
const timedPGraphEdges = toPGraph(timedDag, noop).edges;
const timedIndex = new Map(timedDag.tasks.map((t, i) => [t.id, i]));
const timedAuto = toAuto(timedDag, (id) => () => sleep(delayOf[timedIndex.get(id)!]));

/** The implementations compared on the timed DAG. */
export const timedRunners: Record<string, Runner> = {
  /** No scheduler: the critical path's sleeps one after another (what timers allow). */
  "critical path replayed": async () => {
    for (const i of criticalPath) await sleep(delayOf[i]);
  },
  "dagstream eager": () => eager.execute(timedDag),
  "dagstream layered": () => layered.execute(timedDag),
  "p-graph": () => new PGraph(timedPGraphNodes, timedPGraphEdges).run(),
  "async.auto": () => auto(timedAuto),
};
