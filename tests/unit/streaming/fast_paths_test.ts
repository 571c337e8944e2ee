/**
 * The streaming fast paths: `BufferedEventStream.tryWrite`,
 * `StreamingExecutor.executeWithEventSink` (events straight to a sink, no
 * stream in between), `SSEBody.bufferedEvents`, and `handleSSERequest`'s
 * `maxBufferSize` bound on events its client has not read.
 */

import assert from "node:assert/strict";
import {
  BufferedEventStream,
  type DAGStructure,
  handleSSERequest,
  parseSSEStream,
  type SSEEvent,
  StreamingExecutor,
  type ToolExecutor,
} from "../../../mod.ts";
import { SSEBody } from "../../../src/sse/mod.ts";
import {
  assertIsoTimestamp,
  assertRunOrder,
  deferred,
  ev,
  EventSink,
  GatedTools,
  ids,
  promiseState,
  withoutTimes,
} from "./_helpers.ts";

const echo: ToolExecutor = (_tool, args) => Promise.resolve(args);

const DIAMOND: DAGStructure = {
  tasks: [
    { id: "a", tool: "echo", arguments: { n: 1 } },
    { id: "b", tool: "echo", arguments: { from: "$OUTPUT[a].n" }, dependsOn: ["a"] },
    { id: "c", tool: "echo", dependsOn: ["a"] },
    { id: "d", tool: "echo", dependsOn: ["b", "c"] },
  ],
};

/** Event types and task ids, without timestamps and timings. */
function shape(events: readonly SSEEvent[]): string[] {
  return events.map((e) =>
    e.type === "task_start" || e.type === "task_complete" ? `${e.type}:${e.data.taskId}` : e.type
  );
}

Deno.test("BufferedEventStream.tryWrite: accepts while there is room, refuses at the bound", async () => {
  const sink = new EventSink({ slow: true });
  const buffer = new BufferedEventStream(sink.stream.getWriter(), { maxBufferSize: 2 });
  assert.equal(buffer.tryWrite(ev(0)), true);
  await sink.writeWaiting(); // e0 is with the downstream, held there
  assert.equal(buffer.tryWrite(ev(1)), true);
  assert.equal(buffer.tryWrite(ev(2)), true);
  assert.equal(buffer.size, 2);
  assert.equal(buffer.tryWrite(ev(3)), false, "full: nothing queued");
  assert.equal(buffer.size, 2);
  // A waiting write keeps its place: tryWrite may not overtake it.
  const waiting = buffer.write(ev(3));
  sink.releaseWrite();
  await sink.writeWaiting();
  assert.equal(await promiseState(waiting), "fulfilled");
  assert.equal(buffer.tryWrite(ev(4)), false, "room was taken by the waiting write");
  sink.releaseAll();
  await buffer.flush();
  assert.equal(buffer.tryWrite(ev(4)), true);
  await buffer.close();
  assert.deepEqual(ids(sink.events), ["e0", "e1", "e2", "e3", "e4"]);
  assert.equal(buffer.tryWrite(ev(5)), false, "closed");
});

Deno.test("BufferedEventStream.tryWrite: refuses once the downstream failed", async () => {
  const downstream = new WritableStream<SSEEvent>({
    write() {
      throw new Error("socket reset");
    },
  });
  const buffer = new BufferedEventStream(downstream.getWriter(), { maxBufferSize: 4 });
  assert.equal(buffer.tryWrite(ev(0)), true);
  await assert.rejects(buffer.flush(), /socket reset/);
  assert.equal(buffer.tryWrite(ev(1)), false);
  await assert.rejects(buffer.write(ev(1)), /socket reset/);
});

Deno.test("executeWithEventSink: the same events, in the same order, as executeWithStreaming", async () => {
  const direct: SSEEvent[] = [];
  const viaStream = new EventSink();
  const a = await new StreamingExecutor(echo).executeWithEventSink(
    DIAMOND,
    (e) => void direct.push(e),
  );
  const b = await new StreamingExecutor(echo).executeWithStreaming(DIAMOND, viaStream.stream);
  assertRunOrder(direct, DIAMOND.tasks);
  assert.deepEqual(shape(direct), shape(viaStream.events));
  assert.deepEqual(withoutTimes(a.results), withoutTimes(b.results));
  for (const e of direct) assertIsoTimestamp(e.data.timestamp);
});

Deno.test("executeWithEventSink: a pending sink promise holds the run back", async () => {
  const tools = new GatedTools(new Set(["a", "b"]));
  const gate = deferred<void>();
  const seen: SSEEvent[] = [];
  const run = new StreamingExecutor(tools.executor).executeWithEventSink(
    { tasks: [{ id: "a", tool: "x" }, { id: "b", tool: "x", dependsOn: ["a"] }] },
    (e) => {
      seen.push(e);
      // Hold on a's task_complete: b may not start before it is taken.
      if (e.type === "task_complete" && e.data.taskId === "a") return gate.promise;
    },
  );
  await tools.started("a");
  assert.equal(await promiseState(run), "pending");
  assert.deepEqual(tools.calledIds, ["a"], "b waits for the sink");
  assert.deepEqual(shape(seen), ["task_start:a", "task_complete:a"]);
  gate.resolve();
  const result = await run;
  assert.equal(result.successfulTasks, 2);
  assert.deepEqual(tools.calledIds, ["a", "b"]);
  assert.equal(seen.at(-1)!.type, "execution_complete");
});

Deno.test("executeWithEventSink: a failing sink rejects the run, after an error event", async () => {
  const seen: string[] = [];
  await assert.rejects(
    new StreamingExecutor(echo).executeWithEventSink(DIAMOND, (e) => {
      seen.push(e.type);
      if (e.type === "task_complete") throw new Error("sink broke");
    }),
    /sink broke/,
  );
  assert.equal(seen.at(-1), "error");
  assert.ok(!seen.includes("execution_complete"));
});

Deno.test("executeWithEventSink: an invalid DAG gives one error event, then rejects", async () => {
  const seen: SSEEvent[] = [];
  await assert.rejects(
    new StreamingExecutor(echo).executeWithEventSink(
      { tasks: [{ id: "x", tool: "t", dependsOn: ["x"] }] },
      (e) => void seen.push(e),
    ),
    /Circular dependency detected/,
  );
  assert.equal(seen.length, 1);
  assert.equal(seen[0].type, "error");
});

Deno.test("SSEBody.bufferedEvents: counts pushed events until the client takes them", async () => {
  const body = new SSEBody({ retryMs: 1000, heartbeatMs: 0 });
  assert.equal(body.bufferedEvents, 0, "the retry line is not an event");
  body.push("id: 1\ndata: a\n\n");
  body.push("id: 2\ndata: b\n\nid: 3\ndata: c\n\n", 2);
  assert.equal(body.bufferedEvents, 3);
  const reader = body.readable.getReader();
  await reader.read();
  assert.equal(body.bufferedEvents, 0);
  body.close();
  assert.equal((await reader.read()).done, true);
});

Deno.test("handleSSERequest: the run holds back at maxBufferSize unread events, and resumes", async () => {
  const tasks = Array.from({ length: 50 }, (_, i) => ({ id: `t${i}`, tool: "x" }));
  const tools = new GatedTools(new Set(tasks.map((t) => t.id)));
  const response = await handleSSERequest(
    new Request("http://localhost/"),
    { tasks },
    tools.executor,
    {
      maxBufferSize: 4,
      heartbeatMs: 0,
    },
  );
  // Nobody reads: the run stops once 4 events wait for the client. The
  // starts of t0..t2 were taken; t3's start is the 4th event, held back with
  // its task until the client reads.
  await promiseState(Promise.resolve());
  assert.deepEqual(tools.calledIds, ["t0", "t1", "t2"], "tools that ran with no reader");
  const events = await parseSSEStream(response.body!);
  assert.equal(events.length, 101);
  assert.deepEqual(events.map((e) => e.id), events.map((_, i) => String(i + 1)));
  assertRunOrder(events, tasks);
});

Deno.test("handleSSERequest: an invalid maxBufferSize rejects", async () => {
  for (const bad of [0, -1, 1.5]) {
    await assert.rejects(
      handleSSERequest(new Request("http://localhost/"), DIAMOND, echo, { maxBufferSize: bad }),
      RangeError,
    );
  }
});
