import assert from "node:assert/strict";
import { type DAGStructure, ParallelExecutor, type SchedulingMode } from "../../../mod.ts";
import { GatedTools, turns, until, wide } from "./_helpers.ts";

const MODES: SchedulingMode[] = ["eager", "layered"];

/** a and b independent; c needs a only. */
const FORK: DAGStructure = {
  tasks: [
    { id: "a", tool: "t" },
    { id: "b", tool: "t" },
    { id: "c", tool: "t", dependsOn: ["a"] },
    { id: "d", tool: "t", dependsOn: ["c"] },
  ],
};

Deno.test("eager: a task starts as soon as its own dependencies are done, not its layer", async () => {
  const tools = new GatedTools();
  const run = new ParallelExecutor(tools.tool).execute(FORK);
  await until(() => tools.calls.length === 2, "a and b start");
  assert.deepEqual(tools.calls, ["a", "b"]);

  tools.release("a");
  await until(() => tools.called("c"), "c starts after a");
  assert.ok(!tools.ended.has("b"), "c started while b is still running");

  tools.release("c");
  await until(() => tools.called("d"), "d starts after c");
  assert.ok(!tools.ended.has("b"), "d started while b is still running");

  tools.release("d");
  await turns(3);
  assert.deepEqual(tools.calls, ["a", "b", "c", "d"]);
  tools.release("b");
  const result = await run;
  assert.equal(result.successfulTasks, 4);
  assert.deepEqual(result.results.map((r) => r.taskId), ["a", "b", "c", "d"]);
});

Deno.test("layered: a task waits for the whole previous layer", async () => {
  const tools = new GatedTools();
  const run = new ParallelExecutor(tools.tool, { scheduling: "layered" }).execute(FORK);
  await until(() => tools.calls.length === 2, "a and b start");

  tools.release("a");
  await turns(10);
  assert.ok(!tools.called("c"), "c must not start while b (same layer as a) runs");

  tools.release("b");
  await until(() => tools.called("c"), "c starts once layer 0 is done");
  tools.release("c");
  await until(() => tools.called("d"), "d starts once layer 1 is done");
  tools.release("d");
  const result = await run;
  assert.equal(result.successfulTasks, 4);
  assert.equal(result.parallelizationLayers, 3);
});

Deno.test("scheduling: independent tasks all start at once, in declaration order", async () => {
  for (const scheduling of MODES) {
    const tools = new GatedTools();
    const run = new ParallelExecutor(tools.tool, { scheduling }).execute(wide(8));
    await until(() => tools.calls.length === 8, "all eight start");
    assert.equal(tools.active, 8);
    assert.deepEqual(tools.calls, ["t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7"]);
    for (const id of [...tools.calls].reverse()) tools.release(id);
    assert.equal((await run).successfulTasks, 8);
  }
});

Deno.test("maxConcurrency: bounds tasks in flight, and keeps the slots full", async () => {
  for (const scheduling of MODES) {
    const tools = new GatedTools();
    const run = new ParallelExecutor(tools.tool, { scheduling, maxConcurrency: 2 })
      .execute(wide(6));
    await until(() => tools.calls.length === 2, "two start");
    await turns(5);
    assert.deepEqual(tools.calls, ["t0", "t1"], `${scheduling}: only two in flight`);

    tools.release("t1");
    await until(() => tools.calls.length === 3, "a freed slot is used");
    await turns(5);
    assert.deepEqual(tools.calls, ["t0", "t1", "t2"]);

    tools.release("t0");
    tools.release("t2");
    await until(() => tools.calls.length === 5, "both freed slots are used");
    assert.deepEqual(tools.calls, ["t0", "t1", "t2", "t3", "t4"]);
    tools.release("t3");
    tools.release("t4");
    await until(() => tools.called("t5"), "last one");
    tools.release("t5");
    const result = await run;
    assert.equal(result.successfulTasks, 6);
    assert.equal(tools.maxActive, 2);
  }
});

Deno.test("maxConcurrency: holds across layers and dependencies", async () => {
  const dag: DAGStructure = {
    tasks: [
      { id: "a", tool: "t" },
      { id: "b", tool: "t" },
      { id: "c", tool: "t" },
      { id: "d", tool: "t", dependsOn: ["a"] },
      { id: "e", tool: "t", dependsOn: ["b"] },
      { id: "f", tool: "t", dependsOn: ["d", "e"] },
    ],
  };
  for (const scheduling of MODES) {
    const tools = new GatedTools();
    const run = new ParallelExecutor(tools.tool, { scheduling, maxConcurrency: 2 }).execute(dag);
    const released = new Set<string>();
    // release whatever runs, oldest call first, until everything has run
    while (released.size < 6) {
      await until(
        () => tools.calls.some((id) => !released.has(id)),
        `${scheduling}: something runs`,
      );
      assert.ok(tools.active <= 2);
      const next = tools.calls.find((id) => !released.has(id))!;
      released.add(next);
      tools.release(next);
    }
    assert.equal((await run).successfulTasks, 6);
    assert.equal(tools.maxActive, 2, scheduling);
  }
});

Deno.test("maxConcurrency 1 runs tasks one by one, ready tasks in declaration order", async () => {
  // p2's dependent (c3) is declared before p1's (c4), but p1 finishes first:
  // a FIFO would start c4 first; declaration order starts c3.
  const dag: DAGStructure = {
    tasks: [
      { id: "p1", tool: "t" },
      { id: "p2", tool: "t" },
      { id: "c3", tool: "t", dependsOn: ["p2"] },
      { id: "c4", tool: "t", dependsOn: ["p1"] },
    ],
  };
  const tools = new GatedTools();
  const run = new ParallelExecutor(tools.tool, { maxConcurrency: 1 }).execute(dag);
  for (const expected of ["p1", "p2", "c3", "c4"]) {
    await until(() => tools.called(expected), `${expected} starts`);
    await turns(2);
    assert.equal(tools.active, 1);
    assert.equal(tools.calls.at(-1), expected);
    tools.release(expected);
  }
  await run;
  assert.deepEqual(tools.calls, ["p1", "p2", "c3", "c4"]);
});

Deno.test("eager: a dependent starts in the slot its dependency frees (maxConcurrency)", async () => {
  const dag: DAGStructure = {
    tasks: [
      { id: "a", tool: "t" },
      { id: "b", tool: "t" },
      { id: "x", tool: "t" },
      { id: "c", tool: "t", dependsOn: ["a"] },
    ],
  };
  const tools = new GatedTools();
  const run = new ParallelExecutor(tools.tool, { maxConcurrency: 2 }).execute(dag);
  await until(() => tools.calls.length === 2, "a and b start");
  tools.release("a");
  // x (index 2) is ready before c (index 3): declaration order picks x
  await until(() => tools.calls.length === 3, "a slot is reused");
  assert.deepEqual(tools.calls, ["a", "b", "x"]);
  tools.release("x");
  await until(() => tools.called("c"), "c starts");
  assert.ok(!tools.ended.has("b"), "c started while b still runs");
  tools.release("c");
  tools.release("b");
  assert.equal((await run).successfulTasks, 4);
});

Deno.test("scheduling: each tool gets the task id, its own signal and the arguments", async () => {
  const tools = new GatedTools();
  const run = new ParallelExecutor(tools.tool).execute({
    tasks: [{ id: "a", tool: "t", arguments: { k: [1, { v: true }] } }, { id: "b", tool: "t" }],
  });
  await until(() => tools.calls.length === 2, "both start");
  assert.deepEqual(tools.args.get("a"), { k: [1, { v: true }] });
  assert.deepEqual(tools.args.get("b"), {}, "no arguments means {}");
  const sa = tools.signals.get("a")!;
  const sb = tools.signals.get("b")!;
  assert.ok(sa instanceof AbortSignal && sb instanceof AbortSignal);
  assert.notEqual(sa, sb);
  assert.ok(!sa.aborted && !sb.aborted);
  tools.releaseAll();
  await run;
  assert.ok(!sa.aborted, "a task that ends normally is not aborted");
});
