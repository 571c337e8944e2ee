import assert from "node:assert/strict";
import {
  type DAGStructure,
  ParallelExecutor,
  type SSEEvent,
  StreamingExecutor,
  type TaskCompleteEvent,
  type ToolExecutor,
} from "../../../mod.ts";
import {
  assertIsoTimestamp,
  assertRunOrder,
  EventSink,
  GatedTools,
  indexOfTask,
  isTask,
  promiseState,
  tick,
  withoutTimes,
} from "./_helpers.ts";

const echo: ToolExecutor = (_tool, args) => Promise.resolve(args);

/** A diamond with a tail: a → (b, c) → d → e, plus an independent f. */
const DIAMOND: DAGStructure = {
  tasks: [
    { id: "a", tool: "echo", arguments: { v: 1 } },
    { id: "b", tool: "echo", arguments: { from: "$OUTPUT[a].v" }, dependsOn: ["a"] },
    { id: "c", tool: "upper", arguments: { v: 3 }, dependsOn: ["a"] },
    {
      id: "d",
      tool: "echo",
      arguments: { b: "$OUTPUT[b]", c: "$OUTPUT[c]" },
      dependsOn: ["b", "c"],
    },
    { id: "e", tool: "echo", dependsOn: ["d"] },
    { id: "f", tool: "echo", arguments: { alone: true } },
  ],
};

function completeOf(events: readonly SSEEvent[], id: string): TaskCompleteEvent["data"] {
  const event = events[indexOfTask(events, "task_complete", id)];
  assert.equal(event.type, "task_complete");
  return (event as TaskCompleteEvent).data;
}

Deno.test("executeWithStreaming: start before complete, deps before dependents, one final event", async () => {
  const sink = new EventSink();
  const result = await new StreamingExecutor(echo).executeWithStreaming(DIAMOND, sink.stream);
  assertRunOrder(sink.events, DIAMOND.tasks);
  assert.equal(result.successfulTasks, 6);
  assert.ok(sink.closed, "the writer is closed at the end");
});

Deno.test("executeWithStreaming: payload fields are exactly those of the contract", async () => {
  const failing: ToolExecutor = (tool, args) =>
    tool === "boom" ? Promise.reject(new Error("kaput")) : Promise.resolve(args);
  const dag: DAGStructure = {
    tasks: [
      { id: "ok", tool: "echo", arguments: { x: "ü" } },
      { id: "bad", tool: "boom" },
    ],
  };
  const sink = new EventSink();
  const result = await new StreamingExecutor(failing).executeWithStreaming(dag, sink.stream);

  for (const event of sink.events) assertIsoTimestamp(event.data.timestamp);

  const start = sink.events[indexOfTask(sink.events, "task_start", "ok")];
  assert.deepEqual(Object.keys(start.data).sort(), ["taskId", "timestamp", "tool"]);
  assert.deepEqual({ ...start.data, timestamp: "" }, { taskId: "ok", tool: "echo", timestamp: "" });

  const ok = completeOf(sink.events, "ok");
  assert.deepEqual(Object.keys(ok).sort(), [
    "attempts",
    "executionTimeMs",
    "output",
    "status",
    "taskId",
    "timestamp",
    "tool",
  ]);
  assert.equal(ok.status, "success");
  assert.equal(ok.tool, "echo");
  assert.deepEqual(ok.output, { x: "ü" });
  assert.equal(typeof ok.executionTimeMs, "number");
  assert.ok(ok.executionTimeMs >= 0);

  const bad = completeOf(sink.events, "bad");
  assert.deepEqual(Object.keys(bad).sort(), [
    "attempts",
    "error",
    "executionTimeMs",
    "status",
    "taskId",
    "timestamp",
    "tool",
  ]);
  assert.equal(bad.status, "error");
  assert.equal(bad.tool, "boom");
  assert.equal(bad.error, "kaput");
  assert.ok(!("output" in bad), "an error carries no output");

  const final = sink.events.at(-1)!;
  assert.equal(final.type, "execution_complete");
  assert.deepEqual(Object.keys(final.data).sort(), [
    "errorCount",
    "speedup",
    "successCount",
    "timestamp",
    "totalExecutionTimeMs",
    "totalTasks",
  ]);
  assert.equal(final.data.totalTasks, 2);
  assert.equal(final.data.successCount, 1);
  assert.equal(final.data.errorCount, 1);
  assert.equal(final.data.totalExecutionTimeMs, result.executionTimeMs);
  assert.equal(typeof final.data.speedup, "number");
  assert.ok(Number.isFinite(final.data.speedup) && final.data.speedup > 0);
  assert.ok(!sink.events.some((e) => e.type === "error"), "no error event for a task failure");
});

Deno.test("executeWithStreaming: a dependent's task_start waits for its dependency's task_complete (causality)", async () => {
  const tools = new GatedTools();
  const dag: DAGStructure = {
    tasks: [
      { id: "t1", tool: "x" },
      { id: "t2", tool: "x", dependsOn: ["t1"] },
    ],
  };
  const sink = new EventSink();
  const run = new StreamingExecutor(tools.executor).executeWithStreaming(dag, sink.stream);
  await tools.started("t1");
  await tick();
  // t1 is running: t2 must not have started, nor been announced.
  assert.deepEqual(tools.calledIds, ["t1"]);
  assert.ok(!sink.events.some(isTask("task_start", "t2")));
  tools.release("t1");
  await sink.waitFor(isTask("task_start", "t2"));
  assert.ok(
    indexOfTask(sink.events, "task_complete", "t1") < indexOfTask(sink.events, "task_start", "t2"),
  );
  tools.release("t2");
  await run;
  assertRunOrder(sink.events, dag.tasks);
});

Deno.test("executeWithStreaming: skipped tasks (failed dependency) still get start and complete", async () => {
  const tools: ToolExecutor = (tool, args) =>
    tool === "boom" ? Promise.reject(new Error("nope")) : Promise.resolve(args);
  const called: string[] = [];
  const spy: ToolExecutor = (tool, args, ctx) => {
    called.push(ctx.taskId);
    return tools(tool, args, ctx);
  };
  const dag: DAGStructure = {
    tasks: [
      { id: "a", tool: "boom" },
      { id: "b", tool: "echo", dependsOn: ["a"] },
      { id: "c", tool: "echo", dependsOn: ["b"] },
      { id: "d", tool: "echo" },
    ],
  };
  const sink = new EventSink();
  const result = await new StreamingExecutor(spy).executeWithStreaming(dag, sink.stream);
  assertRunOrder(sink.events, dag.tasks);
  assert.deepEqual(called.sort(), ["a", "d"], "skipped tasks never run");
  const b = completeOf(sink.events, "b");
  assert.equal(b.status, "error");
  assert.equal(b.error, "Dependency a failed");
  assert.equal(b.executionTimeMs, 0);
  assert.equal(completeOf(sink.events, "c").error, "Dependency b failed");
  assert.equal(completeOf(sink.events, "d").status, "success", "independent branch unaffected");
  assert.equal(result.failedTasks, 3);
  const final = sink.events.at(-1)!;
  assert.equal(final.type, "execution_complete");
  assert.equal(final.data.errorCount, 3);
  assert.equal(final.data.successCount, 1);
});

Deno.test("executeWithStreaming: maxConcurrency 2: a task_start only when a slot is free", async () => {
  const tools = new GatedTools();
  const dag: DAGStructure = {
    tasks: ["a", "b", "c", "d", "e"].map((id) => ({ id, tool: "x" })),
  };
  const sink = new EventSink();
  const run = new StreamingExecutor(tools.executor, { maxConcurrency: 2 })
    .executeWithStreaming(dag, sink.stream);
  await Promise.all([tools.started("a"), tools.started("b")]);
  await tick();
  assert.deepEqual(tools.calledIds, ["a", "b"], "no third task while both slots are busy");
  assert.deepEqual(sink.events.map((e) => e.type), ["task_start", "task_start"]);

  tools.release("b");
  await tools.started("c");
  await tick();
  assert.deepEqual(tools.calledIds, ["a", "b", "c"]);
  // c was announced only after b's completion freed its slot.
  assert.ok(
    indexOfTask(sink.events, "task_complete", "b") < indexOfTask(sink.events, "task_start", "c"),
  );

  for (const id of ["a", "c", "d", "e"]) {
    await tools.started(id);
    tools.release(id);
  }
  await run;
  assertRunOrder(sink.events, dag.tasks);
  assert.equal(tools.maxRunning, 2);
  // In the event log, never more than 2 tasks between their start and complete.
  let open = 0;
  for (const e of sink.events) {
    if (e.type === "task_start") open++;
    if (e.type === "task_complete") open--;
    assert.ok(open <= 2, "at most maxConcurrency tasks announced as running");
  }
});

Deno.test("executeWithStreaming: without maxConcurrency every independent task starts at once", async () => {
  const tools = new GatedTools();
  const ids = ["a", "b", "c", "d", "e"];
  const sink = new EventSink();
  const run = new StreamingExecutor(tools.executor).executeWithStreaming(
    { tasks: ids.map((id) => ({ id, tool: "x" })) },
    sink.stream,
  );
  await Promise.all(ids.map((id) => tools.started(id)));
  // All five are running and announced, none has been released.
  assert.equal(tools.running, 5);
  await sink.waitFor(isTask("task_start", "e"));
  assert.equal(sink.events.filter((e) => e.type === "task_start").length, 5);
  for (const id of ids) tools.release(id);
  await run;
});

Deno.test("executeWithStreaming: a cycle gives one error event, closes the writer, then rejects", async () => {
  let called = false;
  const tools: ToolExecutor = () => {
    called = true;
    return Promise.resolve(null);
  };
  const dag: DAGStructure = {
    tasks: [
      { id: "a", tool: "x", dependsOn: ["c"] },
      { id: "b", tool: "x", dependsOn: ["a"] },
      { id: "c", tool: "x", dependsOn: ["b"] },
      { id: "ok", tool: "x" },
    ],
  };
  const sink = new EventSink();
  await assert.rejects(
    new StreamingExecutor(tools).executeWithStreaming(dag, sink.stream),
    (error: Error) => {
      assert.match(error.message, /Circular dependency detected/);
      for (const id of ["a", "b", "c"]) assert.ok(error.message.includes(id));
      return true;
    },
  );
  assert.equal(sink.events.length, 1);
  const [event] = sink.events;
  assert.equal(event.type, "error");
  assert.match(event.data.error, /Circular dependency detected/);
  assertIsoTimestamp(event.data.timestamp);
  assert.ok(sink.closed, "the writer is closed after the error event");
  assert.equal(called, false, "no tool runs for an invalid DAG");
});

Deno.test("executeWithStreaming: other invalid input (duplicate id, unknown dependency) also errors then rejects", async () => {
  const sink = new EventSink();
  await assert.rejects(
    new StreamingExecutor(echo).executeWithStreaming(
      {
        tasks: [
          { id: "a", tool: "x" },
          { id: "a", tool: "x" },
          { id: "b", tool: "x", dependsOn: ["ghost"] },
        ],
      },
      sink.stream,
    ),
  );
  assert.deepEqual(sink.events.map((e) => e.type), ["error"]);
  assert.ok(sink.closed);
});

Deno.test("executeWithStreaming: results equal those of ParallelExecutor.execute", async () => {
  const tools: ToolExecutor = (tool, args) =>
    tool === "upper"
      ? Promise.reject(new Error("upper is broken"))
      : Promise.resolve({ tool, args });
  const sink = new EventSink();
  const streamed = await new StreamingExecutor(tools).executeWithStreaming(DIAMOND, sink.stream);
  const batch = await new ParallelExecutor(tools).execute(DIAMOND);
  assert.deepEqual(withoutTimes(streamed.results), withoutTimes(batch.results));
  assert.deepEqual(streamed.errors, batch.errors);
  for (
    const key of ["totalTasks", "successfulTasks", "failedTasks", "parallelizationLayers"] as const
  ) {
    assert.equal(streamed[key], batch[key], key);
  }
  // The events tell the same story as the result.
  for (const r of streamed.results) {
    const c = completeOf(sink.events, r.taskId);
    assert.equal(c.status, r.status);
    assert.deepEqual(c.output, r.output);
    assert.equal(c.error, r.error);
    assert.equal(c.executionTimeMs, r.executionTimeMs);
  }
});

Deno.test("executeWithStreaming: layered scheduling keeps the same event contract", async () => {
  const sink = new EventSink();
  const result = await new StreamingExecutor(echo, { scheduling: "layered" })
    .executeWithStreaming(DIAMOND, sink.stream);
  assertRunOrder(sink.events, DIAMOND.tasks);
  assert.equal(result.successfulTasks, 6);
});

Deno.test("executeWithStreaming: options.signal cancels the run, tools see their signal abort", async () => {
  const tools = new GatedTools();
  const dag: DAGStructure = {
    tasks: [
      { id: "slow", tool: "x" },
      { id: "next", tool: "x", dependsOn: ["slow"] },
    ],
  };
  const controller = new AbortController();
  const sink = new EventSink();
  const run = new StreamingExecutor(tools.executor).executeWithStreaming(
    dag,
    sink.stream,
    undefined,
    { signal: controller.signal },
  );
  await tools.started("slow");
  controller.abort(new Error("user gave up"));
  const reason = await tools.aborted("slow");
  assert.ok(reason instanceof DOMException);
  const result = await run;
  assert.deepEqual(tools.calledIds, ["slow"], "nothing starts after cancellation");
  assert.equal(result.failedTasks, 2);
  assertRunOrder(sink.events, dag.tasks);
  assert.match(completeOf(sink.events, "slow").error!, /user gave up/);
  assert.match(completeOf(sink.events, "next").error!, /user gave up/);
  assert.ok(sink.closed);
});

Deno.test("executeWithStreaming: an already aborted signal runs no tool but still reports every task", async () => {
  let called = 0;
  const tools: ToolExecutor = () => {
    called++;
    return Promise.resolve(null);
  };
  const sink = new EventSink();
  const result = await new StreamingExecutor(tools).executeWithStreaming(
    DIAMOND,
    sink.stream,
    undefined,
    { signal: AbortSignal.abort(new Error("too late")) },
  );
  assert.equal(called, 0);
  assert.equal(result.failedTasks, DIAMOND.tasks.length);
  assertRunOrder(sink.events, DIAMOND.tasks);
  assert.ok(sink.closed);
});

Deno.test("executeWithStreaming: aborting after the run ended changes nothing", async () => {
  const controller = new AbortController();
  const sink = new EventSink();
  const result = await new StreamingExecutor(echo).executeWithStreaming(
    DIAMOND,
    sink.stream,
    undefined,
    { signal: controller.signal },
  );
  controller.abort();
  await tick();
  assert.equal(result.successfulTasks, 6);
  assert.equal(sink.events.length, 13);
});

Deno.test("executeWithStreaming: a failing downstream rejects the run and aborts running tools", async () => {
  const tools = new GatedTools(new Set(["quick"]));
  const dag: DAGStructure = {
    tasks: [
      { id: "quick", tool: "x" },
      { id: "slow", tool: "x" },
    ],
  };
  // Accepts the two task_start events, breaks on the next write.
  const sink = new EventSink({ failOn: (_e, n) => n >= 2 });
  const run = new StreamingExecutor(tools.executor).executeWithStreaming(dag, sink.stream);
  // The slow tool is cancelled because of the broken stream (not by its timeout).
  const reason = await tools.aborted("slow");
  assert.ok(reason instanceof DOMException);
  assert.equal(reason.name, "AbortError");
  assert.match(reason.message, /downstream broke/);
  await assert.rejects(run, /downstream broke/);
  assert.equal(sink.closed, false);
});

Deno.test("executeWithStreaming: an invalid maxBufferSize rejects and aborts the writer", async () => {
  const sink = new EventSink();
  await assert.rejects(
    new StreamingExecutor(echo).executeWithStreaming(DIAMOND, sink.stream, { maxBufferSize: 0 }),
    RangeError,
  );
  await sink.done;
  assert.ok(sink.aborted);
  assert.equal(sink.events.length, 0);
});

Deno.test("executeWithStreaming: an empty DAG gives just execution_complete", async () => {
  const sink = new EventSink();
  const result = await new StreamingExecutor(echo).executeWithStreaming({ tasks: [] }, sink.stream);
  assert.equal(result.totalTasks, 0);
  assert.deepEqual(sink.events.map((e) => e.type), ["execution_complete"]);
  assert.ok(sink.closed);
});

Deno.test("executeWithStreaming: the run waits for the writer only at the buffer bound", async () => {
  // With a downstream that accepts nothing yet, the run cannot finish...
  const sink = new EventSink({ slow: true });
  const tools = new GatedTools(new Set(["a", "b", "c"]));
  const run = new StreamingExecutor(tools.executor).executeWithStreaming(
    { tasks: ["a", "b", "c"].map((id) => ({ id, tool: "x" })) },
    sink.stream,
    { maxBufferSize: 2 },
  );
  await sink.writeWaiting();
  assert.equal(await promiseState(run), "pending");
  // ...and finishes once the downstream takes events.
  sink.releaseAll();
  await run;
  assertRunOrder(sink.events, ["a", "b", "c"].map((id) => ({ id })));
});
