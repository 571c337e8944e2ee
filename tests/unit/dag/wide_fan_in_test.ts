/**
 * One task depending on 200,000 others: nothing may spread an unbounded list
 * into a call (`push(...list)` overflows the stack past some 100,000
 * arguments), so validation, layering and execution all go through, under
 * Deno's op and resource sanitizers.
 */

import assert from "node:assert/strict";
import {
  type DAGStructure,
  ParallelExecutor,
  prepareDAG,
  StreamingExecutor,
  type Task,
  type ToolExecutor,
  validateDAG,
} from "../../../mod.ts";

const WIDTH = 200_000;

/** `WIDTH` independent tasks, then `sink` depending on every one of them. */
function fanIn(dependsOn?: string[]): DAGStructure {
  const tasks: Task[] = new Array(WIDTH + 1);
  const ids: string[] = new Array(WIDTH);
  for (let i = 0; i < WIDTH; i++) {
    ids[i] = `d${i}`;
    tasks[i] = { id: ids[i], tool: "noop" };
  }
  tasks[WIDTH] = { id: "sink", tool: "noop", dependsOn: dependsOn ?? ids };
  return { tasks };
}

const noop: ToolExecutor = () => Promise.resolve(null);

Deno.test("a task depending on 200,000 others validates and has two layers", () => {
  const dag = fanIn();
  const checked = validateDAG(dag, { maxTasks: WIDTH + 1 });
  assert.ok(checked.ok, "valid");
  assert.deepEqual(checked.dag.layers.map((layer) => layer.length), [WIDTH, 1]);
  assert.deepEqual(checked.dag.layers[1], [WIDTH]);
  const prepared = prepareDAG(dag, { maxTasks: WIDTH + 1 });
  assert.deepEqual(prepared.layers.map((layer) => layer.length), [WIDTH, 1]);
});

Deno.test("200,000 copies of one dependency are one dependency", () => {
  const dag = fanIn(new Array(WIDTH).fill("d0"));
  const checked = validateDAG(dag, { maxTasks: WIDTH + 1 });
  assert.ok(checked.ok, "valid");
  assert.equal(checked.dag.layers.length, 2);
  assert.equal(checked.dag.layers[1].length, 1, "only the sink waits");
});

Deno.test("a task depending on 200,000 others runs (ParallelExecutor)", async () => {
  const result = await new ParallelExecutor(noop, { maxTasks: WIDTH + 1 }).execute(fanIn());
  assert.equal(result.totalTasks, WIDTH + 1);
  assert.equal(result.successfulTasks, WIDTH + 1);
  assert.equal(result.failedTasks, 0);
  assert.equal(result.parallelizationLayers, 2);
  assert.equal(result.results.at(-1)?.taskId, "sink");
});

Deno.test("a task depending on 200,000 others runs with its events (StreamingExecutor)", async () => {
  let events = 0;
  let last = "";
  const result = await new StreamingExecutor(noop, { maxTasks: WIDTH + 1 }).executeWithEventSink(
    fanIn(),
    (event) => {
      events++;
      last = event.type;
    },
  );
  assert.equal(result.successfulTasks, WIDTH + 1);
  assert.equal(events, 2 * (WIDTH + 1) + 1);
  assert.equal(last, "execution_complete");
});

Deno.test("200,000 malformed dependencies are a validation issue, not a stack overflow", () => {
  const dag = {
    tasks: [
      { id: "ok", tool: "noop" },
      { id: "a", tool: "noop", dependsOn: Array.from({ length: WIDTH }, (_, i) => i) },
    ],
  };
  const checked = validateDAG(dag);
  assert.equal(checked.ok, false);
  assert.ok(!checked.ok);
  // One issue for the whole list, naming the task, rather than 200,000.
  assert.equal(checked.issues.length, 1);
  assert.equal(checked.issues[0].path, "tasks[1]", "names the task");
  assert.match(checked.issues[0].message, /too many problems to list/);
});
