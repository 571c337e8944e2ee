/**
 * The SSE handlers over real HTTP: `Deno.serve` on 127.0.0.1 port 0, read
 * with Deno's global `EventSource` and with fetch + the client helpers.
 * Progressive delivery is proven by causality: a tool stays blocked until
 * the test has seen, on the client side, an earlier task's result.
 */

import assert from "node:assert/strict";
import {
  type DAGExecutionResult,
  type DAGStructure,
  handleWorkflowRequest,
  parseSSEStream,
  readSSEEvents,
  type SSEEvent,
  type SSEHandlerConfig,
  type ToolExecutor,
} from "../../mod.ts";
import type { ReceivedSSEEvent } from "../../src/sse/mod.ts";
import {
  assertIsoTimestamp,
  assertRunOrder,
  deferred,
  GatedTools,
} from "../unit/streaming/_helpers.ts";

const TWO: DAGStructure = {
  tasks: [
    { id: "t1", tool: "mock:echo", arguments: { greeting: "héllo 😀" } },
    { id: "t2", tool: "mock:echo", arguments: { n: 2 } },
  ],
};

const CYCLE: DAGStructure = {
  tasks: [
    { id: "a", tool: "x", dependsOn: ["b"] },
    { id: "b", tool: "x", dependsOn: ["a"] },
  ],
};

interface TestServer {
  base: string;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Serves `GET /events` (a fixed DAG, for EventSource; `?dag=cycle` for an
 * invalid one) and `POST /execute` (the DAG in the body), both through
 * handleWorkflowRequest with the request's own Accept header.
 */
function serve(tools: ToolExecutor, dag: DAGStructure, config: SSEHandlerConfig = {}): TestServer {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      const url = new URL(request.url);
      if (url.pathname === "/events" && request.method === "GET") {
        const chosen = url.searchParams.get("dag") === "cycle" ? CYCLE : dag;
        return handleWorkflowRequest(request, chosen, tools, config);
      }
      if (url.pathname === "/execute" && request.method === "POST") {
        return handleWorkflowRequest(request, await request.json(), tools, config);
      }
      return new Response("not found", { status: 404 });
    },
  );
  const { port } = server.addr as Deno.NetAddr;
  return {
    base: `http://127.0.0.1:${port}`,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

interface SourceEvent {
  type: string;
  lastEventId: string;
  data: unknown;
}

/**
 * Opens an EventSource and records our four event types. Closes itself on
 * `execution_complete` (before the server ends the stream, so it never
 * reconnects); `done` resolves then. A connection failure rejects `done`.
 */
function openEventSource(url: string) {
  const source = new EventSource(url);
  const events: SourceEvent[] = [];
  const done = deferred<SourceEvent[]>();
  const waiters: { predicate: (e: SourceEvent) => boolean; resolve: () => void }[] = [];
  const record = (message: MessageEvent) => {
    const event = {
      type: message.type,
      lastEventId: message.lastEventId,
      data: JSON.parse(message.data),
    };
    events.push(event);
    for (const w of waiters.filter((w) => w.predicate(event))) w.resolve();
    if (event.type === "execution_complete") {
      source.close();
      done.resolve(events);
    }
  };
  for (const type of ["task_start", "task_complete", "execution_complete"]) {
    source.addEventListener(type, record as EventListener);
  }
  source.addEventListener("error", (event) => {
    if (event instanceof MessageEvent) return record(event); // our `error` event
    source.close();
    done.reject(new Error(`EventSource connection failed (readyState ${source.readyState})`));
  });
  return {
    source,
    events,
    done: done.promise,
    waitFor(predicate: (e: SourceEvent) => boolean): Promise<void> {
      if (events.some(predicate)) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ predicate, resolve }));
    },
  };
}

function asSSEEvents(events: SourceEvent[]): SSEEvent[] {
  return events.map((e) => ({ type: e.type, data: e.data }) as SSEEvent);
}

const isComplete = (id: string) => (e: { type: string; data: unknown }) =>
  e.type === "task_complete" && (e.data as { taskId: string }).taskId === id;

Deno.test("EventSource receives t1's task_complete while t2 is still blocked (progressive delivery)", async () => {
  const tools = new GatedTools();
  await using server = serve(tools.executor, TWO);
  const client = openEventSource(`${server.base}/events`);
  try {
    await Promise.all([tools.started("t1"), tools.started("t2")]);
    tools.release("t1");
    await client.waitFor(isComplete("t1"));
    // The client holds t1's result; t2's tool has not been released yet.
    assert.equal(tools.running, 1);
    assert.ok(!client.events.some(isComplete("t2")));
    assert.ok(!client.events.some((e) => e.type === "execution_complete"));
    tools.release("t2");
    const events = await client.done;

    assertRunOrder(asSSEEvents(events), TWO.tasks);
    assert.deepEqual(events.map((e) => e.lastEventId), ["1", "2", "3", "4", "5"]);
    const t1 = events.find(isComplete("t1"))!.data as Record<string, unknown>;
    assert.equal(t1.status, "success");
    assert.deepEqual(t1.output, { greeting: "héllo 😀" });
    assert.equal(t1.tool, "mock:echo");
    assertIsoTimestamp(t1.timestamp);
    const final = events.at(-1)!.data as Record<string, unknown>;
    assert.equal(final.totalTasks, 2);
    assert.equal(final.successCount, 2);
    assert.equal(final.errorCount, 0);
  } finally {
    client.source.close();
  }
});

Deno.test("EventSource: an invalid DAG is a 4xx, so the EventSource fails instead of reconnecting", async () => {
  let called = false;
  const tools: ToolExecutor = () => {
    called = true;
    return Promise.resolve(null);
  };
  await using server = serve(tools, TWO);
  const client = openEventSource(`${server.base}/events?dag=cycle`);
  try {
    await assert.rejects(client.done, /connection failed/);
    assert.equal(client.source.readyState, EventSource.CLOSED);
    assert.equal(called, false);
    assert.deepEqual(client.events, []);
  } finally {
    client.source.close();
  }
  // The same request with fetch shows the problem.
  const response = await fetch(`${server.base}/events?dag=cycle`, {
    headers: { accept: "text/event-stream" },
  });
  assert.equal(response.status, 422);
  assert.equal(response.headers.get("content-type"), "application/problem+json");
  const problem = await response.json();
  assert.equal(problem.status, 422);
  assert.ok(
    problem.errors.some((e: { message: string }) => /Circular dependency detected/.test(e.message)),
  );
});

Deno.test("EventSource: two clients, two independent runs", async () => {
  const tools: ToolExecutor = (_tool, args) => Promise.resolve(args);
  await using server = serve(tools, TWO);
  const a = openEventSource(`${server.base}/events`);
  const b = openEventSource(`${server.base}/events`);
  try {
    const [ea, eb] = await Promise.all([a.done, b.done]);
    assertRunOrder(asSSEEvents(ea), TWO.tasks);
    assertRunOrder(asSSEEvents(eb), TWO.tasks);
  } finally {
    a.source.close();
    b.source.close();
  }
});

async function post(base: string, dag: unknown, accept?: string, signal?: AbortSignal) {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (accept !== undefined) headers.accept = accept;
  return await fetch(`${base}/execute`, {
    method: "POST",
    headers,
    body: JSON.stringify(dag),
    signal,
  });
}

Deno.test("fetch + readSSEEvents: t1's result arrives while t2 is blocked; exact SSE headers", async () => {
  const tools = new GatedTools();
  await using server = serve(tools.executor, TWO);
  const response = await post(server.base, TWO, "text/event-stream");
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "text/event-stream");
  assert.equal(response.headers.get("cache-control"), "no-cache");
  assert.equal(response.headers.get("x-accel-buffering"), "no");
  const received: ReceivedSSEEvent[] = [];
  await Promise.all([tools.started("t1"), tools.started("t2")]);
  tools.release("t1");
  for await (const event of readSSEEvents(response.body!)) {
    received.push(event);
    if (isComplete("t1")(event)) {
      assert.equal(tools.running, 1, "t2 still blocked when t1's result is read");
      assert.ok(!received.some((e) => e.type === "execution_complete"));
      tools.release("t2");
    }
  }
  assertRunOrder(received, TWO.tasks);
  assert.deepEqual(received.map((e) => e.id), ["1", "2", "3", "4", "5"]);
});

Deno.test("fetch + parseSSEStream: the whole run, retry line first", async () => {
  const tools: ToolExecutor = (tool, args) =>
    tool === "boom" ? Promise.reject(new Error("boom!")) : Promise.resolve(args);
  const dag: DAGStructure = {
    tasks: [
      { id: "a", tool: "echo", arguments: { x: 1 } },
      { id: "b", tool: "boom", dependsOn: ["a"] },
      { id: "c", tool: "echo", dependsOn: ["b"] },
    ],
  };
  await using server = serve(tools, dag, { retryMs: 1500 });
  const raw = await (await post(server.base, dag, "text/event-stream")).text();
  assert.ok(raw.startsWith("retry: 1500\n\n"));
  const events = await parseSSEStream(new Response(raw).body!);
  assertRunOrder(events, dag.tasks);
  const c = events.find(isComplete("c"))!;
  assert.equal((c.data as { error: string }).error, "Dependency b failed");
  // Streaming directly into parseSSEStream gives the same events.
  const again = await parseSSEStream((await post(server.base, dag, "text/event-stream")).body!);
  assert.deepEqual(again.map((e) => [e.id, e.type]), events.map((e) => [e.id, e.type]));
});

Deno.test("fetch: JSON batch answer for application/json, */* and no Accept", async () => {
  const tools: ToolExecutor = (_tool, args) => Promise.resolve(args);
  await using server = serve(tools, TWO);
  for (const accept of ["application/json", "*/*", undefined]) {
    const response = await post(server.base, TWO, accept);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "application/json");
    const result: DAGExecutionResult = await response.json();
    assert.equal(result.successfulTasks, 2);
    assert.deepEqual(result.results.map((r) => r.taskId), ["t1", "t2"]);
    assert.deepEqual(result.results[1].output, { n: 2 });
  }
});

Deno.test("fetch: 406 for an Accept admitting neither, 422 for an invalid DAG", async () => {
  const tools: ToolExecutor = (_tool, args) => Promise.resolve(args);
  await using server = serve(tools, TWO);
  const notAcceptable = await post(server.base, TWO, "text/html");
  assert.equal(notAcceptable.status, 406);
  assert.equal(notAcceptable.headers.get("content-type"), "application/problem+json");
  assert.equal((await notAcceptable.json()).status, 406);
  for (const accept of ["text/event-stream", "application/json"]) {
    const invalid = await post(server.base, CYCLE, accept);
    assert.equal(invalid.status, 422);
    assert.equal(invalid.headers.get("content-type"), "application/problem+json");
    assert.equal((await invalid.json()).status, 422);
  }
});

Deno.test("fetch: a client that disconnects mid-stream aborts the run on the server", async () => {
  const tools = new GatedTools();
  const dag: DAGStructure = {
    tasks: [{ id: "long", tool: "x" }, { id: "next", tool: "x", dependsOn: ["long"] }],
  };
  await using server = serve(tools.executor, dag);
  const controller = new AbortController();
  const response = await post(server.base, dag, "text/event-stream", controller.signal);
  const reader = response.body!.getReader();
  await tools.started("long");
  await reader.read(); // the stream is flowing
  controller.abort();
  await reader.closed.catch(() => {});
  const reason = await tools.aborted("long");
  assert.ok(reason instanceof DOMException);
  assert.deepEqual(tools.calledIds, ["long"]);
});

Deno.test("fetch: cancelling the response body also aborts the run", async () => {
  const tools = new GatedTools();
  await using server = serve(tools.executor, TWO);
  const response = await post(server.base, TWO, "text/event-stream");
  for await (const event of readSSEEvents(response.body!)) {
    if (event.type === "task_start") break; // cancels the body
  }
  await Promise.all([tools.aborted("t1"), tools.aborted("t2")]);
});
