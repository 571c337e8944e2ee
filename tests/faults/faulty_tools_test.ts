/**
 * Faulty tools against the library and the server: random DAGs whose tasks
 * call tools that throw non-Error values, never settle, ignore their abort
 * signal, settle after their timeout, or return undefined, huge, deep,
 * circular, BigInt or self-changing outputs.
 *
 * Invariant: the run ends; every task gets exactly one `task_start` and one
 * `task_complete`, a dependency's end comes before its dependents' start;
 * `execution_complete` is the last event; every event and result can be
 * written as JSON; the server stays healthy (`/health`, `/runs/<id>`).
 * Late settles and throws, after the run is over, change nothing.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  type DAGExecutionResult,
  ParallelExecutor,
  readSSEEvents,
  type SSEEvent,
  StreamingExecutor,
  type ToolExecutor,
} from "../../mod.ts";
import { builtinTools, createToolRegistry, type DagstreamApp } from "../../src/server/mod.ts";
import { encodeSSEEvent } from "../../src/sse/mod.ts";
import { withSerialisableOutputs } from "../../src/server/serialisable.ts";
import { serveApp } from "../_in_process_app.ts";
import { faultyTools, LateWork } from "./_faulty_tools.ts";
import { fuzz, printSummary, runsFor } from "../fuzz/_fuzz.ts";

interface GenTask {
  id: string;
  tool: string;
  arguments?: Record<string, unknown>;
  dependsOn?: string[];
}

const late = new LateWork();
const FAULTY = faultyTools(late);
const TOOL_NAMES = [...Object.keys(FAULTY).filter((n) => n !== "bad:flaky-calls"), "mock:echo"];

/** A random DAG of faulty tools; echo tasks pass earlier (bad) outputs on by reference. */
const faultyDag: fc.Arbitrary<{ tasks: GenTask[] }> = fc.integer({ min: 1, max: 10 }).chain((n) =>
  fc.tuple(
    ...Array.from({ length: n }, (_, i) =>
      fc.record({
        tool: fc.constantFrom(...TOOL_NAMES),
        deps: fc.subarray(Array.from({ length: i }, (_, k) => k), { maxLength: Math.min(2, i) }),
        ref: fc.option(fc.nat(Math.max(0, i - 1)), { nil: undefined }),
        after: fc.integer({ min: 0, max: 3 }),
      })),
  ).map((specs) => ({
    tasks: specs.map(({ tool, deps, ref, after }, i) => {
      const task: GenTask = { id: `t${i}`, tool };
      if (tool === "bad:flaky-json") task.arguments = { after };
      if (tool === "mock:echo" && ref !== undefined && i > 0) {
        task.arguments = { passed: `$OUTPUT[t${ref}]`, deeper: [{ x: `$OUTPUT[t${ref}]` }] };
      }
      if (deps.length > 0) task.dependsOn = deps.map((d) => `t${d}`);
      return task;
    }),
  }))
);

const config = fc.record({
  scheduling: fc.constantFrom("eager" as const, "layered" as const),
  maxConcurrency: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }),
});

/** The invariants of one run's events against its DAG (and result, when known). */
function checkEvents(
  dag: { tasks: GenTask[] },
  events: SSEEvent[],
  result?: DAGExecutionResult,
): void {
  const n = dag.tasks.length;
  const types = events.map((e) => e.type).filter((t) => t !== "task_progress");
  assert.equal(types.at(-1), "execution_complete", `last event: ${types.join(",")}`);
  assert.equal(types.filter((t) => t === "execution_complete").length, 1);
  // (No event in a message: an output may throw when serialised.)
  assert.ok(!types.includes("error"), "no error event");
  const startAt = new Map<string, number>();
  const endAt = new Map<string, number>();
  events.forEach((event, at) => {
    // Every event can be written on the wire, whatever the tool returned.
    encodeSSEEvent(event, at + 1);
    if (event.type === "task_start") {
      assert.ok(!startAt.has(event.data.taskId), `one task_start for ${event.data.taskId}`);
      startAt.set(event.data.taskId, at);
    } else if (event.type === "task_complete") {
      assert.ok(!endAt.has(event.data.taskId), `one task_complete for ${event.data.taskId}`);
      assert.ok(startAt.has(event.data.taskId), "start before complete");
      endAt.set(event.data.taskId, at);
    } else if (event.type === "task_progress") {
      assert.ok(startAt.has(event.data.taskId) && !endAt.has(event.data.taskId));
    }
  });
  assert.equal(startAt.size, n);
  assert.equal(endAt.size, n);
  const skipped = new Map<string, string>();
  for (const event of events) {
    if (event.type !== "task_complete") continue;
    const m = /^Dependency (.+) failed$/.exec(event.data.error ?? "");
    if (m) skipped.set(event.data.taskId, m[1]);
  }
  for (const task of dag.tasks) {
    // A task that runs starts after all its dependencies ended; one skipped
    // because a dependency failed, after that dependency ended.
    const deps = skipped.has(task.id) ? [skipped.get(task.id)!] : task.dependsOn ?? [];
    for (const d of deps) {
      assert.ok(endAt.get(d)! < startAt.get(task.id)!, `${d} ends before ${task.id} starts`);
    }
  }
  const done = events.at(-1) as Extract<SSEEvent, { type: "execution_complete" }>;
  assert.equal(done.data.totalTasks, n);
  if (result !== undefined) {
    checkResult(dag, result);
    assert.equal(done.data.successCount, result.successfulTasks);
  }
}

function checkResult(dag: { tasks: GenTask[] }, result: DAGExecutionResult): void {
  assert.deepEqual(result.results.map((r) => r.taskId), dag.tasks.map((t) => t.id));
  assert.equal(result.successfulTasks + result.failedTasks, dag.tasks.length);
  for (const r of result.results) {
    assert.ok(r.status === "success" || typeof r.error === "string", JSON.stringify(r.error));
  }
  JSON.parse(JSON.stringify(withSerialisableOutputs(result)));
}

Deno.test("faulty tools, library: every run ends with one start and one complete per task", async () => {
  const registry = createToolRegistry({ ...builtinTools, ...FAULTY });
  await fuzz(
    "library runs of faulty tools (sink, stream, batch)",
    fc.asyncProperty(faultyDag, config, async (dag, options) => {
      const settings = { ...options, taskTimeout: 15 };
      // Event sink.
      const executor = new StreamingExecutor(registry.execute, settings);
      const events: SSEEvent[] = [];
      const result = await executor.executeWithEventSink(dag, (e) => void events.push(e));
      checkEvents(dag, events, result);
      // WritableStream through the bounded buffer.
      const streamed: SSEEvent[] = [];
      const sink = new WritableStream<SSEEvent>({ write: (e) => void streamed.push(e) });
      const again = await executor.executeWithStreaming(dag, sink, { maxBufferSize: 2 });
      checkEvents(dag, streamed, again);
      // Batch.
      checkResult(dag, await new ParallelExecutor(registry.execute, settings).execute(dag));
      await late.release();
    }),
    runsFor(60, 0.05),
  );
});

Deno.test("faulty tool executors: sync throws, non-promises and thrown thenables are task errors", async () => {
  const executors: Record<string, ToolExecutor> = {
    "throws synchronously": () => {
      throw new TypeError("sync");
    },
    "returns a plain value, not a promise":
      ((_tool: string, args: Record<string, unknown>) => args) as unknown as ToolExecutor,
    "throws a non-Error synchronously": () => {
      throw { not: "an error" };
    },
    "returns a rejected thenable": () =>
      ({ then: (_: unknown, reject: (e: unknown) => void) => reject(7) }) as unknown as Promise<
        unknown
      >,
  };
  for (const [name, toolExecutor] of Object.entries(executors)) {
    const dag = {
      tasks: [
        { id: "a", tool: "x" },
        { id: "b", tool: "x", dependsOn: ["a"] },
        { id: "c", tool: "x" },
      ],
    };
    const events: SSEEvent[] = [];
    const result = await new StreamingExecutor(toolExecutor).executeWithEventSink(
      dag,
      (e) => void events.push(e),
    );
    checkEvents(dag, events, result);
    assert.ok(result.results.every((r) => r.status === "success") || result.failedTasks > 0, name);
  }
});

Deno.test("late settles: a tool that resolves or throws after its timeout changes nothing", async () => {
  const registry = createToolRegistry({ ...FAULTY });
  const dag = {
    tasks: [
      { id: "slow", tool: "bad:ignore-abort" },
      { id: "thrower", tool: "bad:throw-after-timeout" },
      { id: "after", tool: "bad:undefined", dependsOn: ["slow"] },
    ],
  };
  const events: SSEEvent[] = [];
  const result = await new StreamingExecutor(registry.execute, { taskTimeout: 5 })
    .executeWithEventSink(dag, (e) => void events.push(e));
  checkEvents(dag, events, result);
  assert.match(result.results[0].error!, /timed out after 5 ms/);
  assert.match(result.results[1].error!, /timed out after 5 ms/);
  assert.equal(result.results[2].error, "Dependency slow failed");
  const before = JSON.stringify(result);
  const count = events.length;
  // The tools go on now, long after their tasks ended: one resolves, one throws.
  assert.equal(await late.release(), 2);
  assert.equal(JSON.stringify(result), before, "the result did not change");
  assert.equal(events.length, count, "no event after the run ended");
});

/** Serves an app with the faulty tools in process; stops everything after `fn`. */
async function withFaultyServer(
  fn: (base: string, app: DagstreamApp) => Promise<void>,
  options: { maxRunOutputBytes?: number; taskTimeout?: number } = {},
): Promise<void> {
  const served = serveApp({
    tools: createToolRegistry({ ...builtinTools, ...FAULTY }),
    taskTimeout: options.taskTimeout ?? 15,
    maxRunOutputBytes: options.maxRunOutputBytes,
  });
  try {
    await fn(served.base, served.app);
    assert.deepEqual(served.internalErrors, [], "no request failed inside the server");
    const health = await fetch(`${served.base}/health`);
    assert.equal(health.status, 200);
    assert.equal((await health.json()).activeRuns, 0);
  } finally {
    await served[Symbol.asyncDispose]();
    await late.release();
  }
}

function post(base: string, path: string, dag: unknown, accept: string): Promise<Response> {
  return fetch(`${base}${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: accept },
    body: JSON.stringify(dag),
  });
}

Deno.test("faulty tools, server: streams, watchers, batch answers and /runs stay whole", async () => {
  await withFaultyServer(async (base, app) => {
    await fuzz(
      "server runs of faulty tools (SSE, watcher, JSON, GET /runs/<id>)",
      fc.asyncProperty(faultyDag, async (dag) => {
        // POST /execute as a stream.
        const streamed = await post(base, "/execute", dag, "text/event-stream");
        assert.equal(streamed.status, 200);
        const runId = streamed.headers.get("x-run-id")!;
        const events: SSEEvent[] = [];
        for await (const event of readSSEEvents(streamed.body!)) events.push(event);
        checkEvents(dag, events);
        // The same run's log, replayed to a watcher: the same events.
        const replay = await fetch(`${base}/runs/${runId}/events`, {
          headers: { Accept: "text/event-stream" },
        });
        const replayed: SSEEvent[] = [];
        for await (const event of readSSEEvents(replay.body!)) replayed.push(event);
        assert.deepEqual(replayed, events);
        // Its result.
        const run = await fetch(`${base}/runs/${runId}`);
        assert.equal(run.status, 200);
        const body = await run.json();
        assert.notEqual(body.status, "running");
        checkResult(dag, body.result);
        // A detached run, watched live.
        const started = await post(base, "/runs", dag, "application/json");
        assert.equal(started.status, 202);
        const { runId: detached } = await started.json();
        const watcher = await fetch(`${base}/runs/${detached}/events`, {
          headers: { Accept: "text/event-stream" },
        });
        const watched: SSEEvent[] = [];
        if (watcher.status === 200) {
          for await (const event of readSSEEvents(watcher.body!)) watched.push(event);
          checkEvents(dag, watched);
        } else assert.equal(watcher.status, 204); // it was over already
        await app.runs.get(detached)!.done;
        // Batch JSON.
        const batch = await post(base, "/execute", dag, "application/json");
        assert.equal(batch.status, 200);
        checkResult(dag, await batch.json());
        await late.release();
      }),
      runsFor(40, 0.05),
    );
  });
});

Deno.test("an output that breaks only on its second serialisation still ends its stream well", async () => {
  await withFaultyServer(async (base) => {
    for (const after of [1, 2, 3]) {
      const dag = { tasks: [{ id: "f", tool: "bad:flaky-json", arguments: { after } }] };
      const response = await post(base, "/execute", dag, "text/event-stream");
      const runId = response.headers.get("x-run-id")!;
      const events: SSEEvent[] = [];
      for await (const event of readSSEEvents(response.body!)) events.push(event);
      checkEvents(dag, events);
      const done = events.find((e) => e.type === "task_complete")!;
      if (done.data.status === "error") assert.match(done.data.error!, /not JSON-serialisable/);
      const run = await fetch(`${base}/runs/${runId}`);
      assert.equal(run.status, 200, `GET /runs/<id> after toJSON fails from call ${after + 1}`);
      checkResult(dag, (await run.json()).result);
    }
  }, { taskTimeout: 60_000 }); // no slow tool here: no deadline may interfere
});

Deno.test("$OUTPUT amplification: a tiny DAG cannot make the server build gigabytes", async () => {
  // Each task passes the previous output twice: its JSON doubles per task.
  const tasks: GenTask[] = [{ id: "t0", tool: "mock:echo", arguments: { s: "x".repeat(1000) } }];
  for (let i = 1; i < 60; i++) {
    tasks.push({
      id: `t${i}`,
      tool: "mock:echo",
      arguments: { a: `$OUTPUT[t${i - 1}]`, b: `$OUTPUT[t${i - 1}]` },
    });
  }
  const dag = { tasks };
  assert.ok(JSON.stringify(dag).length < 6000);
  await withFaultyServer(async (base) => {
    const response = await post(base, "/execute", dag, "text/event-stream");
    const runId = response.headers.get("x-run-id")!;
    const events: SSEEvent[] = [];
    for await (const event of readSSEEvents(response.body!)) events.push(event);
    checkEvents(dag, events);
    const run = await (await fetch(`${base}/runs/${runId}`)).json();
    const failed = run.result.results.filter((r: { status: string }) => r.status === "error");
    // t8's arguments and output would take the run past the budget: t0..t7 are kept.
    assert.equal(failed[0].taskId, "t8");
    assert.match(failed[0].error, /too large: .* exceed 1000000 bytes of JSON/);
    assert.equal(run.result.successfulTasks, 8, "outputs within the budget are kept");
    // The JSON answer itself stays about the budget's size.
    const batch = await post(base, "/execute", dag, "application/json");
    assert.ok((await batch.text()).length < 3_000_000);
  }, { maxRunOutputBytes: 1_000_000, taskTimeout: 60_000 });
});

Deno.test("fuzz summary (faulty tools)", () => printSummary("faulty tools"));
