import assert from "node:assert/strict";
import {
  type DAGExecutionResult,
  type DAGStructure,
  handleSSERequest,
  handleWorkflowRequest,
  ParallelExecutor,
  parseSSEStream,
  readSSEEvents,
  type TaskCompleteEvent,
  type ToolExecutor,
} from "../../../mod.ts";
import type { ReceivedSSEEvent } from "../../../src/sse/mod.ts";
import { assertRunOrder, GatedTools, promiseState, tick, withoutTimes } from "./_helpers.ts";
import { FakeClock } from "../_fake_clock.ts";

const SSE_HEADER_ENTRIES = [
  ["cache-control", "no-cache"],
  ["connection", "keep-alive"],
  ["content-type", "text/event-stream"],
  ["x-accel-buffering", "no"],
];

const DAG: DAGStructure = {
  tasks: [
    { id: "a", tool: "echo", arguments: { n: 1 } },
    { id: "b", tool: "echo", arguments: { prev: "$OUTPUT[a].n" }, dependsOn: ["a"] },
    { id: "c", tool: "fail" },
    { id: "d", tool: "echo", dependsOn: ["c"] },
  ],
};

const CYCLE: DAGStructure = {
  tasks: [
    { id: "x", tool: "echo", dependsOn: ["y"] },
    { id: "y", tool: "echo", dependsOn: ["x"] },
  ],
};

const tools: ToolExecutor = (tool, args) =>
  tool === "fail" ? Promise.reject(new Error("it failed")) : Promise.resolve(args);

function request(accept?: string, init: RequestInit = {}): Request {
  const headers = new Headers(init.headers);
  if (accept !== undefined) headers.set("accept", accept);
  return new Request("http://localhost/execute", { method: "POST", ...init, headers });
}

function sortedHeaders(response: Response): string[][] {
  return [...response.headers].sort(([a], [b]) => a.localeCompare(b));
}

function completeData(events: ReceivedSSEEvent[], id: string): TaskCompleteEvent["data"] {
  const e = events.find((e) => e.type === "task_complete" && e.data.taskId === id);
  assert.ok(e, `no task_complete for ${id}`);
  return e.data as TaskCompleteEvent["data"];
}

async function assertProblem(response: Response, status: number): Promise<Record<string, unknown>> {
  assert.equal(response.status, status);
  assert.equal(response.headers.get("content-type"), "application/problem+json");
  const body = await response.json();
  assert.equal(body.status, status);
  assert.equal(typeof body.type, "string");
  assert.equal(typeof body.title, "string");
  assert.equal(typeof body.detail, "string");
  return body;
}

Deno.test("handleSSERequest: exactly the SSE headers, retry first, numbered events, then the end", async () => {
  const response = await handleSSERequest(request("text/event-stream"), DAG, tools);
  assert.equal(response.status, 200);
  assert.deepEqual(sortedHeaders(response), SSE_HEADER_ENTRIES);
  assert.equal(response.headers.get("content-type"), "text/event-stream", "no charset parameter");
  const text = await response.text();
  assert.ok(text.startsWith("retry: 2000\n\n"), JSON.stringify(text.slice(0, 30)));
  assert.ok(text.endsWith("\n\n"));
  const events = await parseSSEStream(new Response(text).body!);
  assert.deepEqual(
    events.map((e) => e.id),
    events.map((_, i) => String(i + 1)),
    "ids count from 1",
  );
  assertRunOrder(events, DAG.tasks);
  assert.deepEqual(completeData(events, "b").output, { prev: 1 });
  assert.equal(completeData(events, "c").error, "it failed");
  assert.equal(completeData(events, "d").error, "Dependency c failed");
  // Every frame is exactly id / event / data.
  const frames = text.split("\n\n").filter((f) => f !== "" && !f.startsWith("retry:"));
  for (const frame of frames) assert.match(frame, /^id: \d+\nevent: [a-z_]+\ndata: \{.*\}$/);
});

Deno.test("handleSSERequest: retryMs is configurable", async () => {
  const response = await handleSSERequest(request(), DAG, tools, { retryMs: 500 });
  assert.ok((await response.text()).startsWith("retry: 500\n\n"));
});

Deno.test("handleWorkflowRequest: Accept text/event-stream → the SSE stream with its headers", async () => {
  for (const accept of ["text/event-stream", "application/json;q=0.5, text/event-stream"]) {
    const response = await handleWorkflowRequest(request(accept), DAG, tools);
    assert.equal(response.status, 200);
    assert.deepEqual(sortedHeaders(response), SSE_HEADER_ENTRIES);
    const events = await parseSSEStream(response.body!);
    assertRunOrder(events, DAG.tasks);
  }
});

Deno.test("handleWorkflowRequest: JSON, */* or no Accept → application/json DAGExecutionResult", async () => {
  const expected = await new ParallelExecutor(tools).execute(DAG);
  for (const accept of [undefined, "*/*", "application/json", "text/event-stream;q=0.1, */*"]) {
    const response = await handleWorkflowRequest(request(accept), DAG, tools);
    assert.equal(response.status, 200, String(accept));
    assert.equal(response.headers.get("content-type"), "application/json");
    assert.equal(response.headers.get("cache-control"), null);
    const result: DAGExecutionResult = await response.json();
    assert.deepEqual(withoutTimes(result.results), withoutTimes(expected.results));
    assert.deepEqual(result.errors, expected.errors);
    assert.equal(result.totalTasks, 4);
    assert.equal(result.successfulTasks, 2);
    assert.equal(result.failedTasks, 2);
    assert.equal(result.parallelizationLayers, expected.parallelizationLayers);
    assert.equal(typeof result.executionTimeMs, "number");
  }
});

Deno.test("handleWorkflowRequest: an Accept admitting neither → 406 problem, nothing runs", async () => {
  let called = false;
  const spy: ToolExecutor = () => {
    called = true;
    return Promise.resolve(null);
  };
  for (const accept of ["text/html", "text/event-stream;q=0, application/json;q=0", "image/*"]) {
    const body = await assertProblem(await handleWorkflowRequest(request(accept), DAG, spy), 406);
    assert.equal(body.title, "Not Acceptable");
  }
  assert.equal(called, false);
});

Deno.test("invalid DAG → 422 problem+json before any SSE byte, listing the problems", async () => {
  let called = false;
  const spy: ToolExecutor = () => {
    called = true;
    return Promise.resolve(null);
  };
  const responses = [
    await handleSSERequest(request("text/event-stream"), CYCLE, spy),
    await handleWorkflowRequest(request("text/event-stream"), CYCLE, spy),
    await handleWorkflowRequest(request("application/json"), CYCLE, spy),
  ];
  for (const response of responses) {
    const body = await assertProblem(response, 422);
    assert.equal(response.headers.get("cache-control"), null, "not an SSE response");
    const errors = body.errors as { path: string; message: string }[];
    assert.ok(Array.isArray(errors) && errors.length > 0);
    assert.ok(errors.some((e) => /Circular dependency detected/.test(e.message)));
    for (const e of errors) assert.equal(typeof e.path, "string");
  }
  const dup = await handleSSERequest(request(), {
    tasks: [{ id: "a", tool: "t" }, { id: "a", tool: "t", dependsOn: ["nope"] }],
  }, spy);
  const body = await assertProblem(dup, 422);
  const paths = (body.errors as { path: string }[]).map((e) => e.path);
  assert.ok(paths.some((p) => p.startsWith("tasks[1]")), JSON.stringify(paths));
  assert.equal(called, false);
});

Deno.test("valid DAG with a failing task is a 200 stream, not a problem", async () => {
  const response = await handleSSERequest(request(), { tasks: [{ id: "f", tool: "fail" }] }, tools);
  assert.equal(response.status, 200);
  const events = await parseSSEStream(response.body!);
  assert.deepEqual(events.map((e) => e.type), [
    "task_start",
    "task_complete",
    "execution_complete",
  ]);
});

Deno.test("handleSSERequest: events reach the client while the run is still going", async () => {
  const gated = new GatedTools(new Set(["t1"]));
  const dag: DAGStructure = { tasks: [{ id: "t1", tool: "x" }, { id: "t2", tool: "x" }] };
  const response = await handleSSERequest(request(), dag, gated.executor);
  const seen: ReceivedSSEEvent[] = [];
  for await (const event of readSSEEvents(response.body!)) {
    seen.push(event);
    if (event.type === "task_complete" && event.data.taskId === "t1") {
      // t2 is blocked until this line: the client got t1's result mid-run.
      assert.ok(!seen.some((e) => e.type === "execution_complete"));
      await gated.started("t2");
      gated.release("t2");
    }
  }
  assertRunOrder(seen, dag.tasks);
});

Deno.test("handleSSERequest: a client that goes away aborts the run (tools see ctx.signal abort)", async () => {
  const gated = new GatedTools();
  const dag: DAGStructure = {
    tasks: [{ id: "long", tool: "x" }, { id: "after", tool: "x", dependsOn: ["long"] }],
  };
  const response = await handleSSERequest(request(), dag, gated.executor, { heartbeatMs: 20 });
  for await (const event of readSSEEvents(response.body!)) {
    if (event.type === "task_start") break; // leaving the loop cancels the body
  }
  const reason = await gated.aborted("long");
  assert.ok(reason instanceof DOMException);
  assert.match(reason.message, /client disconnected/);
  assert.deepEqual(gated.calledIds, ["long"], "nothing starts once the client left");
});

Deno.test("handleSSERequest: a client that stays does not abort the run", async () => {
  const gated = new GatedTools();
  const response = await handleSSERequest(
    request(),
    { tasks: [{ id: "t", tool: "x" }] },
    gated.executor,
  );
  const reader = response.body!.getReader();
  await reader.read(); // retry + task_start
  await gated.started("t");
  assert.equal(await promiseState(gated.aborted("t")), "pending");
  gated.release("t");
  while (!(await reader.read()).done) { /* drain */ }
  assert.equal(gated.calls[0].ctx.signal.aborted, false);
});

Deno.test("handleSSERequest: config.signal cancels the run; the stream still ends properly", async () => {
  const gated = new GatedTools();
  const controller = new AbortController();
  const response = await handleSSERequest(
    request(),
    { tasks: [{ id: "t", tool: "x" }] },
    gated.executor,
    { signal: controller.signal },
  );
  const eventsPromise = parseSSEStream(response.body!);
  await gated.started("t");
  controller.abort(new Error("server shutting down"));
  await gated.aborted("t");
  const events = await eventsPromise;
  assert.deepEqual(events.map((e) => e.type), [
    "task_start",
    "task_complete",
    "execution_complete",
  ]);
  assert.match(completeData(events, "t").error!, /server shutting down/);
});

Deno.test("handleSSERequest: keep-alive comments while a tool is busy", async () => {
  using clock = new FakeClock();
  const gated = new GatedTools();
  const response = await handleSSERequest(
    request(),
    { tasks: [{ id: "t", tool: "x" }] },
    gated.executor,
    { heartbeatMs: 20 },
  );
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("event: task_start")) text += (await reader.read()).value;
  await gated.started("t");
  const next = reader.read();
  // The first interval saw the task_start go out: no keep-alive at its end.
  await clock.advance(20);
  assert.equal(await promiseState(next), "pending");
  // The tool is busy for the whole second interval: one keep-alive.
  await clock.advance(20);
  assert.equal((await next).value, ": keep-alive\n\n");
  text += ": keep-alive\n\n";
  gated.release("t");
  for (let r = await reader.read(); !r.done; r = await reader.read()) text += r.value;
  assert.deepEqual(clock.armed, [], "the heartbeat and the task's deadline are cleared");
  const events = await parseSSEStream(new Response(text).body!);
  assert.deepEqual(events.map((e) => e.type), [
    "task_start",
    "task_complete",
    "execution_complete",
  ]);
});

Deno.test("handleSSERequest: a huge output is truncated in the stream, whole in the JSON answer", async () => {
  const big: ToolExecutor = () => Promise.resolve({ blob: "é".repeat(20_000) });
  const dag: DAGStructure = { tasks: [{ id: "big", tool: "x" }] };
  const sse = await handleSSERequest(request(), dag, big, { maxEventPayloadBytes: 4096 });
  const text = await sse.text();
  const dataLine = text.split("\n").find((l) =>
    l.startsWith("data: ") && l.includes('"big"') && l.includes("truncated")
  );
  assert.ok(dataLine, "a truncated task_complete");
  assert.ok(new TextEncoder().encode(dataLine.slice(6)).length <= 4096);
  const data = JSON.parse(dataLine.slice(6));
  assert.equal(data.truncated, true);
  assert.equal(
    data.outputBytes,
    new TextEncoder().encode(JSON.stringify({ blob: "é".repeat(20_000) })).length,
  );

  const json = await handleWorkflowRequest(request("application/json"), dag, big, {
    maxEventPayloadBytes: 4096,
  });
  const result: DAGExecutionResult = await json.json();
  assert.deepEqual(result.results[0].output, { blob: "é".repeat(20_000) });
});

Deno.test("handleSSERequest: output that cannot be serialised fails its task, never the stream", async () => {
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  const weird: ToolExecutor = (tool) => Promise.resolve(tool === "bigint" ? 10n : cyclic);
  const dag: DAGStructure = {
    tasks: [{ id: "n", tool: "bigint" }, { id: "c", tool: "cyclic" }, {
      id: "after",
      tool: "bigint",
      dependsOn: ["n"],
    }],
  };
  const response = await handleSSERequest(request(), dag, weird);
  const events = await parseSSEStream(response.body!);
  assertRunOrder(events, dag.tasks);
  assert.match(completeData(events, "n").error!, /serialis/);
  assert.match(completeData(events, "c").error!, /serialis/);
  assert.equal(completeData(events, "after").error, "Dependency n failed");
});

Deno.test("handleWorkflowRequest (JSON): a request whose signal aborts cancels the run", async () => {
  const gated = new GatedTools();
  const controller = new AbortController();
  const pending = handleWorkflowRequest(
    request("application/json", { signal: controller.signal }),
    { tasks: [{ id: "t", tool: "x" }] },
    gated.executor,
  );
  await gated.started("t");
  controller.abort();
  await gated.aborted("t");
  const result: DAGExecutionResult = await (await pending).json();
  assert.equal(result.failedTasks, 1);
});

Deno.test("handleSSERequest: maxBufferSize holds the run back for a client that does not read", async () => {
  const ids = Array.from({ length: 20 }, (_, i) => `t${i}`);
  const gated = new GatedTools(new Set(ids));
  const response = await handleSSERequest(
    request(),
    { tasks: ids.map((id) => ({ id, tool: "x" })) },
    gated.executor,
    { maxBufferSize: 10 },
  );
  await tick();
  await tick();
  // Nobody reads: the run stopped short of running every tool. The starts of
  // t0..t8 were taken; t9's is the 10th unread event, held back with its task.
  assert.deepEqual(gated.calledIds, ids.slice(0, 9), "tools that ran for an idle client");
  const events = await parseSSEStream(response.body!);
  assert.equal(events.length, 41);
  assertRunOrder(events, ids.map((id) => ({ id })));
  assert.equal(gated.calls.length, 20);
});
