import assert from "node:assert/strict";
import {
  type DAGExecutionResult,
  type ExecutorConfig,
  ParallelExecutor,
  type Task,
  type TaskResult,
  type ToolExecutor,
} from "../../../mod.ts";
import { echoTool, GatedTools, until, wide } from "./_helpers.ts";
import { FakeClock } from "../_fake_clock.ts";

function resultWith(
  times: (number | undefined)[],
  wall: number,
  ok = times.length,
): DAGExecutionResult {
  const results: TaskResult[] = times.map((t, i) => ({
    taskId: `t${i}`,
    status: i < ok ? "success" : "error",
    executionTimeMs: t,
  }));
  return {
    results,
    errors: [],
    executionTimeMs: wall,
    parallelizationLayers: 1,
    totalTasks: times.length,
    successfulTasks: ok,
    failedTasks: times.length - ok,
  };
}

Deno.test("results: in declaration order whatever the completion order", async () => {
  for (const scheduling of ["eager", "layered"] as const) {
    const tools = new GatedTools();
    const run = new ParallelExecutor(tools.tool, { scheduling }).execute({
      tasks: [
        { id: "z", tool: "t" },
        { id: "y", tool: "t", dependsOn: ["x"] },
        { id: "x", tool: "t" },
        { id: "w", tool: "t" },
      ],
    });
    await until(() => tools.calls.length === 3, "z, x, w start");
    assert.deepEqual(tools.calls, ["z", "x", "w"]);
    tools.fail("w", "w failed");
    tools.release("x", "X");
    tools.release("z", "Z");
    await until(() => tools.called("y"), "y starts");
    tools.release("y", "Y");
    const result = await run;
    assert.deepEqual(result.results.map((r) => r.taskId), ["z", "y", "x", "w"]);
    assert.deepEqual(result.results.map((r) => r.output), ["Z", "Y", "X", undefined]);
    assert.deepEqual(result.errors, [{ taskId: "w", error: "w failed", status: "error" }]);
    assert.equal(result.totalTasks, 4);
    assert.equal(result.successfulTasks, 3);
    assert.equal(result.failedTasks, 1);
  }
});

Deno.test("results: each task's executionTimeMs and the run's wall time, on the clock", async () => {
  using clock = new FakeClock();
  const tools = new GatedTools();
  const run = new ParallelExecutor(tools.tool).execute({
    tasks: [
      { id: "a", tool: "t" },
      { id: "b", tool: "t" },
      { id: "c", tool: "t", dependsOn: ["a"] },
    ],
  });
  await until(() => tools.calls.length === 2, "a and b start");
  await clock.advance(5);
  tools.release("a");
  await until(() => tools.called("c"), "c starts after a");
  await clock.advance(7);
  tools.release("b");
  tools.release("c");
  const result = await run;
  // a: 0..5, b: 0..12, c: 5..12; the run: 0..12.
  assert.deepEqual(result.results.map((r) => r.executionTimeMs), [5, 12, 7]);
  assert.equal(result.executionTimeMs, 12);
  assert.deepEqual(result.results[0].output, { done: "a" });
});

Deno.test("results: a run that takes no time reports 0 ms throughout", async () => {
  using _clock = new FakeClock();
  const result = await new ParallelExecutor(echoTool).execute(wide(5));
  assert.deepEqual(result.results.map((r) => r.executionTimeMs), [0, 0, 0, 0, 0]);
  assert.equal(result.executionTimeMs, 0);
  assert.deepEqual(result.results[0].output, { tool: "echo", taskId: "t0", args: {} });
});

Deno.test("results: a tool's synchronous time counts for its own task, not the next one started", async () => {
  using clock = new FakeClock();
  const gate = Promise.withResolvers<void>();
  const tool: ToolExecutor = (_tool, _args, { taskId }) => {
    if (taskId === "a") return gate.promise.then(() => "a");
    if (taskId === "b") clock.spend(50); // busy for 50 ms before it returns
    return Promise.resolve(taskId);
  };
  const run = new ParallelExecutor(tool).execute({
    tasks: [
      { id: "a", tool: "t" },
      { id: "b", tool: "t", dependsOn: ["a"] },
      { id: "c", tool: "t", dependsOn: ["a"] },
    ],
  });
  await clock.advance(5);
  gate.resolve();
  const result = await run;
  // a ends at 5 and releases b and c, which start one after the other: b's
  // 50 ms are its own, and c starts (and ends) at 55.
  assert.deepEqual(result.results.map((r) => r.executionTimeMs), [5, 50, 0]);
  assert.equal(result.executionTimeMs, 55);
});

Deno.test("results: an empty DAG gives an empty result", async () => {
  const executor = new ParallelExecutor(echoTool);
  const result = await executor.execute({ tasks: [] });
  assert.deepEqual(result.results, []);
  assert.deepEqual(result.errors, []);
  assert.equal(result.totalTasks, 0);
  assert.equal(result.parallelizationLayers, 0);
  assert.equal(executor.getStats(result).successRate, 100);
});

Deno.test("calculateSpeedup: sum of task times over wall time", () => {
  const executor = new ParallelExecutor(echoTool);
  assert.equal(executor.calculateSpeedup(resultWith([10, 20, 30], 30)), 2);
  assert.equal(executor.calculateSpeedup(resultWith([50, 50], 50)), 2);
  assert.equal(executor.calculateSpeedup(resultWith([10, 10], 20)), 1, "sequential: no speedup");
  assert.equal(executor.calculateSpeedup(resultWith([10, undefined, 5], 5)), 3);
  // nothing to compare: 1
  assert.equal(executor.calculateSpeedup(resultWith([], 0)), 1);
  assert.equal(executor.calculateSpeedup(resultWith([0, 0], 3)), 1);
  assert.equal(executor.calculateSpeedup(resultWith([4], 0)), 1);
});

Deno.test("calculateSpeedup: of a real run, from the times it measured", async () => {
  using clock = new FakeClock();
  const tools = new GatedTools();
  const executor = new ParallelExecutor(tools.tool);
  const run = executor.execute(wide(3));
  await until(() => tools.calls.length === 3, "all three start");
  // t0 runs 10 ms, t1 20 ms, t2 30 ms, all at once: 60 ms of work in 30 ms.
  for (const id of ["t0", "t1", "t2"]) {
    await clock.advance(10);
    tools.release(id);
  }
  const result = await run;
  assert.deepEqual(result.results.map((r) => r.executionTimeMs), [10, 20, 30]);
  assert.equal(result.executionTimeMs, 30);
  assert.equal(executor.calculateSpeedup(result), 2);
  // With nothing measured (no time passed) the speedup is 1.
  assert.equal(
    executor.calculateSpeedup(await new ParallelExecutor(echoTool).execute(wide(20))),
    1,
  );
});

Deno.test("getStats: success rate is a percentage from 0 to 100", () => {
  const executor = new ParallelExecutor(echoTool);
  const mixed = executor.getStats(resultWith([10, 20, 30, 40], 40, 3));
  assert.deepEqual(mixed, {
    totalTasks: 4,
    successfulTasks: 3,
    failedTasks: 1,
    successRate: 75,
    speedup: 2.5,
    executionTimeMs: 40,
    parallelizationLayers: 1,
  });
  assert.equal(executor.getStats(resultWith([1, 1], 1, 0)).successRate, 0);
  assert.equal(executor.getStats(resultWith([1, 1], 1, 2)).successRate, 100);
  const third = executor.getStats(resultWith([1, 1, 1], 1, 1)).successRate;
  assert.ok(Math.abs(third - 100 / 3) < 1e-9);
});

Deno.test("getStats: matches a real run", async () => {
  const executor = new ParallelExecutor((_t, _a, ctx) =>
    ctx.taskId === "t1" ? Promise.reject(new Error("x")) : Promise.resolve(1)
  );
  const result = await executor.execute(wide(4));
  const stats = executor.getStats(result);
  assert.equal(stats.totalTasks, 4);
  assert.equal(stats.successfulTasks, 3);
  assert.equal(stats.failedTasks, 1);
  assert.equal(stats.successRate, 75);
  assert.equal(stats.parallelizationLayers, 1);
  assert.equal(stats.executionTimeMs, result.executionTimeMs);
  assert.equal(stats.speedup, executor.calculateSpeedup(result));
});

Deno.test("config: out-of-range values throw RangeError", () => {
  const bad: ExecutorConfig[] = [
    { maxConcurrency: 0 },
    { maxConcurrency: -1 },
    { maxConcurrency: 1.5 },
    { maxConcurrency: NaN },
    { maxConcurrency: "4" as unknown as number },
    { taskTimeout: 0 },
    { taskTimeout: -10 },
    { taskTimeout: NaN },
    { taskTimeout: Infinity },
    { taskTimeout: 2 ** 31 },
    { maxTasks: 0 },
    { maxTasks: 2.5 },
    { maxTasks: -3 },
    { maxTasks: NaN },
    { scheduling: "fifo" as "eager" },
  ];
  for (const config of bad) {
    assert.throws(() => new ParallelExecutor(echoTool, config), RangeError, JSON.stringify(config));
  }
  assert.throws(() => new ParallelExecutor(echoTool, { maxConcurrency: 0 }), /maxConcurrency/);
  assert.throws(() => new ParallelExecutor(echoTool, { taskTimeout: 0 }), /taskTimeout/);
  assert.throws(() => new ParallelExecutor(echoTool, { maxTasks: 0 }), /maxTasks/);
  assert.throws(() => new ParallelExecutor(echoTool, { scheduling: "x" as "eager" }), /scheduling/);
});

Deno.test("config: in-range values are accepted", async () => {
  const good: ExecutorConfig[] = [
    {},
    { maxConcurrency: 1 },
    { maxConcurrency: 64 },
    { maxConcurrency: Infinity },
    { taskTimeout: 1 },
    { taskTimeout: 2 ** 31 - 1 },
    { maxTasks: 1 },
    { scheduling: "eager" },
    { scheduling: "layered" },
    { verbose: false },
  ];
  for (const config of good) {
    const executor = new ParallelExecutor(echoTool, config);
    assert.equal((await executor.execute(wide(1))).successfulTasks, 1, JSON.stringify(config));
  }
});

Deno.test("config: verbose logs each start and end to stderr", async () => {
  const original = console.error;
  const lines: string[] = [];
  console.error = (...args: unknown[]) => lines.push(args.join(" "));
  try {
    await new ParallelExecutor(
      (_t, _a, ctx) => ctx.taskId === "b" ? Promise.reject(new Error("x")) : Promise.resolve(1),
      { verbose: true },
    ).execute({ tasks: [{ id: "a", tool: "echo" }, { id: "b", tool: "echo" }] });
    await new ParallelExecutor(echoTool).execute(wide(2));
  } finally {
    console.error = original;
  }
  assert.ok(lines.some((l) => l.includes("start a") && l.includes("echo")));
  assert.ok(lines.some((l) => l.includes("success a")));
  assert.ok(lines.some((l) => l.includes("error b")));
  assert.equal(lines.length, 4, "only the verbose executor logs");
});

Deno.test("executor: one executor runs several DAGs, also at the same time", async () => {
  const executor = new ParallelExecutor((_t, args) => Promise.resolve(args.n));
  const runs = await Promise.all(
    [1, 2, 3].map((n) =>
      executor.execute({
        tasks: [{ id: "a", tool: "t", arguments: { n } }, {
          id: "b",
          tool: "t",
          arguments: { n: "$OUTPUT[a]" },
        }],
      })
    ),
  );
  assert.deepEqual(runs.map((r) => r.results[1].output), [1, 2, 3]);
});

Deno.test("executor: a subclass's executeTask that throws fails only its task", async () => {
  class Flaky extends ParallelExecutor {
    protected override executeTask(
      task: Task,
      previous: Map<string, TaskResult>,
      signal: AbortSignal,
    ): Promise<TaskResult> {
      if (task.id === "rejects") return Promise.reject(new Error("override rejected"));
      if (task.id === "throws") throw new Error("override threw");
      return super.executeTask(task, previous, signal);
    }
  }
  const result = await new Flaky(echoTool, { taskTimeout: 60_000 }).execute({
    tasks: [
      { id: "rejects", tool: "t" },
      { id: "throws", tool: "t" },
      { id: "fine", tool: "t" },
      { id: "after", tool: "t", dependsOn: ["throws"] },
    ],
  });
  assert.deepEqual(result.results.map((r) => r.status), ["error", "error", "success", "error"]);
  assert.match(result.results[0].error!, /override rejected/);
  assert.match(result.results[1].error!, /override threw/);
  assert.equal(result.results[3].error, "Dependency throws failed");
});

Deno.test("executor: an overriding executeTask runs every task, with earlier results in previous", async () => {
  const seen: [string, string[]][] = [];
  class Watching extends ParallelExecutor {
    protected override executeTask(
      task: Task,
      previous: Map<string, TaskResult>,
      signal: AbortSignal,
    ): Promise<TaskResult> {
      seen.push([task.id, [...previous.keys()].sort()]);
      return super.executeTask(task, previous, signal);
    }
  }
  const result = await new Watching(echoTool).execute({
    tasks: [
      { id: "a", tool: "t" },
      { id: "b", tool: "t", arguments: { x: "$OUTPUT[a].taskId" }, dependsOn: ["a"] },
    ],
  });
  assert.deepEqual(seen, [["a", []], ["b", ["a"]]]);
  assert.deepEqual(result.results[1].output, { tool: "t", taskId: "b", args: { x: "a" } });
});

Deno.test("executor: an executeTask patched onto the prototype is called too", async () => {
  // deno-lint-ignore no-explicit-any
  const prototype = ParallelExecutor.prototype as any;
  const original = prototype.executeTask;
  const calls: string[] = [];
  prototype.executeTask = function (this: unknown, task: Task, ...rest: unknown[]) {
    calls.push(task.id);
    return original.call(this, task, ...rest);
  };
  try {
    const result = await new ParallelExecutor(echoTool).execute(wide(3));
    assert.equal(result.successfulTasks, 3);
    assert.deepEqual(calls, ["t0", "t1", "t2"]);
  } finally {
    prototype.executeTask = original;
  }
});
