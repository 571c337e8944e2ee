import assert from "node:assert/strict";
import {
  type DAGStructure,
  ParallelExecutor,
  prepareDAG,
  type ToolExecutor,
  validateDAG,
} from "../../../mod.ts";
import { buildGraph, findCycle, topologicalLayers } from "../../../src/dag/graph.ts";
import { MinIndexHeap } from "../../../src/dag/min-index-heap.ts";
import { chain, echoTool, wide } from "./_helpers.ts";

function layerIds(dag: DAGStructure, maxTasks?: number): string[][] {
  const result = validateDAG(dag, { maxTasks });
  assert.ok(result.ok);
  return result.dag.layers.map((layer) => layer.map((i) => result.dag.tasks[i].id));
}

Deno.test("layers: a diamond has three layers, each in declaration order", () => {
  const dag: DAGStructure = {
    tasks: [
      { id: "d", tool: "t", dependsOn: ["c", "b"] },
      { id: "c", tool: "t", dependsOn: ["a"] },
      { id: "b", tool: "t", dependsOn: ["a"] },
      { id: "a", tool: "t" },
    ],
  };
  assert.deepEqual(layerIds(dag), [["a"], ["c", "b"], ["d"]]);
  const prepared = prepareDAG(dag);
  assert.deepEqual(
    prepared.layers.map((layer) => layer.map((i) => prepared.tasks[i].id)),
    [["a"], ["c", "b"], ["d"]],
  );
});

Deno.test("layers: a task sits one layer after its deepest dependency", () => {
  const dag: DAGStructure = {
    tasks: [
      { id: "a", tool: "t" },
      { id: "b", tool: "t", dependsOn: ["a"] },
      { id: "c", tool: "t", dependsOn: ["b"] },
      { id: "x", tool: "t" },
      { id: "y", tool: "t", dependsOn: ["a", "c", "x"] },
      { id: "z", tool: "t", dependsOn: ["x"] },
    ],
  };
  assert.deepEqual(layerIds(dag), [["a", "x"], ["b", "z"], ["c"], ["y"]]);
});

Deno.test("layers: independent tasks form one layer; parallelizationLayers reports the count", async () => {
  const executor = new ParallelExecutor(echoTool);
  assert.equal((await executor.execute(wide(5))).parallelizationLayers, 1);
  assert.equal((await executor.execute(chain(7))).parallelizationLayers, 7);
  assert.equal((await executor.execute({ tasks: [] })).parallelizationLayers, 0);
  const implied = await executor.execute({
    tasks: [{ id: "a", tool: "t" }, { id: "b", tool: "t", arguments: { x: "$OUTPUT[a]" } }],
  });
  assert.equal(implied.parallelizationLayers, 2, "$OUTPUT references count as dependencies");
});

Deno.test("layers: duplicate dependencies count once", () => {
  const result = validateDAG({
    tasks: [
      { id: "a", tool: "t" },
      {
        id: "b",
        tool: "t",
        dependsOn: ["a", "a"],
        arguments: { x: "$OUTPUT[a]", y: "$OUTPUT[a].k" },
      },
    ],
  });
  assert.ok(result.ok);
  assert.deepEqual(result.dag.graph.deps[1], [0]);
  assert.deepEqual(result.dag.graph.dependents[0], [1]);
});

Deno.test("layers: a 10,000-task chain has 10,000 layers", () => {
  const layers = layerIds(chain(10_000), 10_000);
  assert.equal(layers.length, 10_000);
  for (let i = 0; i < layers.length; i++) assert.deepEqual(layers[i], [`t${i}`]);
});

Deno.test("layers: a 10,000-task wide DAG has one layer; a star has two", () => {
  const flat = layerIds(wide(10_000), 10_000);
  assert.equal(flat.length, 1);
  assert.equal(flat[0].length, 10_000);
  const star: DAGStructure = {
    tasks: [
      { id: "hub", tool: "t" },
      ...Array.from({ length: 9_999 }, (_, i) => ({ id: `s${i}`, tool: "t", dependsOn: ["hub"] })),
    ],
  };
  const layers = layerIds(star, 10_000);
  assert.equal(layers.length, 2);
  assert.equal(layers[1].length, 9_999);
  // a fan-in: one task depending on 9,999 others
  const fanIn: DAGStructure = {
    tasks: [
      ...Array.from({ length: 9_999 }, (_, i) => ({ id: `s${i}`, tool: "t" })),
      { id: "sink", tool: "t", dependsOn: Array.from({ length: 9_999 }, (_, i) => `s${i}`) },
    ],
  };
  assert.deepEqual(layerIds(fanIn, 10_000).map((l) => l.length), [9_999, 1]);
});

Deno.test("layers: a 10,000-task chain runs to the end in both modes", async () => {
  for (const scheduling of ["eager", "layered"] as const) {
    const tool: ToolExecutor = (_t, args) =>
      Promise.resolve((args.n as number | undefined ?? 0) + 1);
    const dag = chain(10_000);
    for (let i = 1; i < dag.tasks.length; i++) dag.tasks[i].arguments = { n: `$OUTPUT[t${i - 1}]` };
    const result = await new ParallelExecutor(tool, { scheduling, maxTasks: 10_000 }).execute(dag);
    assert.equal(result.successfulTasks, 10_000);
    assert.equal(result.parallelizationLayers, 10_000);
    assert.equal(result.results[9_999].output, 10_000);
  }
});

Deno.test("layers: a 10,000-task wide DAG runs with and without maxConcurrency", async () => {
  for (const maxConcurrency of [undefined, 7]) {
    const result = await new ParallelExecutor(echoTool, { maxConcurrency, maxTasks: 10_000 })
      .execute(wide(10_000));
    assert.equal(result.successfulTasks, 10_000);
    assert.equal(result.results[1234].taskId, "t1234");
  }
});

Deno.test("graph: topologicalLayers returns null for a cycle, findCycle null for none", () => {
  const acyclic = buildGraph([[], [0], [0, 1]]);
  assert.deepEqual(topologicalLayers(acyclic), [[0], [1], [2]]);
  assert.equal(findCycle(acyclic), null);
  const cyclic = buildGraph([[], [2], [1]]);
  assert.equal(topologicalLayers(cyclic), null);
  assert.deepEqual(findCycle(cyclic), [1, 2, 1]);
  assert.deepEqual(findCycle(buildGraph([[0]])), [0, 0]);
});

Deno.test("graph: dependents are listed ascending; duplicates are removed", () => {
  const many = Array.from({ length: 40 }, () => 0);
  const graph = buildGraph([[], [0, 0, 0], [0], many]);
  assert.deepEqual(graph.deps, [[], [0], [0], [0]]);
  assert.deepEqual(graph.dependents, [[1, 2, 3], [], [], []]);
});

Deno.test("min-index heap: pops in ascending order whatever the push order", () => {
  const heap = new MinIndexHeap();
  const values = [5, 3, 9, 0, 3, 12, 7, 1, 8, 2, 11, 4];
  for (const v of values) heap.push(v);
  assert.equal(heap.size, values.length);
  const out: number[] = [];
  while (heap.size > 0) out.push(heap.pop());
  assert.deepEqual(out, [...values].sort((a, b) => a - b));
  heap.push(4);
  heap.clear();
  assert.equal(heap.size, 0);
});
