/**
 * The event pipeline every HTTP stream takes: a run's events go into its
 * `RunLog`, and a `LogReader` turns the log into the SSE body, with one
 * policy for slow readers (events that gave way → `events_lost`) and for
 * backpressure (none, unless the reader holds the run: `handleSSERequest`).
 * Ordering is proven by causality: the test appends, reads, and releases.
 */

import assert from "node:assert/strict";
import {
  type DAGStructure,
  handleSSERequest,
  parseSSEStream,
  readSSEEvents,
  type SSEEvent,
} from "../../../mod.ts";
import { type LoggedRun, LogReader, runEventStream } from "../../../src/sse/log-stream.ts";
import { RunLog } from "../../../src/sse/run-log.ts";
import { encodeSSEEvent } from "../../../src/sse/frame.ts";
import { assertRunOrder, GatedTools, promiseState, tick } from "./_helpers.ts";
import { turns, until } from "../dag/_helpers.ts";

const TS = "2025-01-01T00:00:00.000Z";

function start(n: number): SSEEvent {
  return { type: "task_start", data: { taskId: `t${n}`, tool: "x", timestamp: TS } };
}

function frameBytes(event: SSEEvent, seq: number): number {
  return new TextEncoder().encode(encodeSSEEvent(event, seq)).byteLength;
}

/** A run with a log and a record of cancellations. */
function loggedRun(maxBytes = 1 << 20): LoggedRun & { cancelled: string[] } {
  const cancelled: string[] = [];
  return { log: new RunLog(maxBytes), cancel: (reason) => cancelled.push(reason), cancelled };
}

const decoder = new TextDecoder();

/** Reads one chunk of the body as text. */
async function readChunk(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<string> {
  const { value, done } = await reader.read();
  assert.equal(done, false);
  return decoder.decode(value);
}

Deno.test("RunLog.bytesAfter: the bytes a reader at a cursor has yet to read", () => {
  const log = new RunLog(1 << 20);
  assert.equal(log.bytesAfter(0), 0);
  const sizes = [0, 1, 2].map((n) => frameBytes(start(n), n + 1));
  for (const n of [0, 1, 2]) log.append(start(n));
  assert.equal(log.bytesAfter(0), sizes[0] + sizes[1] + sizes[2]);
  assert.equal(log.bytesAfter(1), sizes[1] + sizes[2]);
  assert.equal(log.bytesAfter(2), sizes[2]);
  assert.equal(log.bytesAfter(3), 0);
  assert.equal(log.bytesAfter(0), log.bytes);
});

Deno.test("RunLog.dropThrough: frames give way early; a reader behind them gets lost", () => {
  const log = new RunLog(1 << 20);
  for (const n of [0, 1, 2, 3]) log.append(start(n));
  const before = log.bytes;
  log.dropThrough(2);
  assert.equal(log.firstSeq, 3);
  assert.equal(log.lastSeq, 4);
  assert.equal(log.bytes, before - frameBytes(start(0), 1) - frameBytes(start(1), 2));
  assert.equal(log.bytesAfter(0), log.bytes, "frames that gave way are not counted");
  assert.deepEqual(log.readChunk(0), { kind: "lost", missed: 2, firstSeq: 3 });
  const read = log.readChunk(2);
  assert.equal(read.kind, "frames");
  if (read.kind === "frames") {
    assert.match(new TextDecoder().decode(read.bytes), /^id: 3\n[^]*id: 4\n/);
  }
  log.dropThrough(10); // past the end: everything
  assert.equal(log.bytes, 0);
  assert.equal(log.firstSeq, 5);
  log.append(start(4));
  assert.equal(log.readChunk(4).kind, "frames", "appending goes on after");
});

Deno.test("LogReader: replays after its cursor, then follows the log live", async () => {
  const run = loggedRun();
  for (const n of [0, 1, 2]) run.log.append(start(n));
  const reader = new LogReader(run, { after: 1, heartbeatMs: 0, retryMs: 1000 });
  const client = reader.body.readable.getReader();
  let text = await readChunk(client);
  while (!text.includes("id: 3\n")) text += await readChunk(client);
  assert.ok(text.startsWith("retry: 1000\n\nid: 2\n"), "retry first, then the replay after id 1");
  assert.equal(reader.takenSeq, 3);
  // Live: the next event is appended only now that the client has the replay.
  run.log.append(start(3));
  assert.match(await readChunk(client), /^id: 4\nevent: task_start\n/);
  run.log.end();
  assert.equal((await client.read()).done, true, "the stream closes at the log's end");
  assert.deepEqual(run.cancelled, []);
});

Deno.test("LogReader without holdRun: the run never waits, however far behind the client is", async () => {
  const run = loggedRun();
  const reader = new LogReader(run, { heartbeatMs: 0 });
  for (let n = 0; n < 500; n++) {
    run.log.append(start(n));
    assert.equal(reader.holdBack(), undefined);
  }
  assert.equal(reader.unreadEvents, 500);
  run.log.end();
  const events = await parseSSEStream(reader.body.readable);
  assert.equal(events.length, 500);
});

Deno.test("LogReader holdRun: the run waits at `events` unread, until the client has taken them all", async () => {
  const run = loggedRun();
  const reader = new LogReader(run, { heartbeatMs: 0, holdRun: { events: 3, bytes: 1 << 20 } });
  const sink = (n: number) => {
    run.log.append(start(n));
    return reader.holdBack();
  };
  assert.equal(sink(0), undefined);
  assert.equal(sink(1), undefined);
  const held = sink(2);
  assert.ok(held instanceof Promise, "three unread: hold");
  assert.equal(sink(3), held, "the same hold while the client has not caught up");
  assert.equal(await promiseState(held), "pending", "nobody reads");
  const client = reader.body.readable.getReader();
  let text = "";
  while (!text.includes("id: 4\n")) text += await readChunk(client);
  await held;
  assert.equal(reader.unreadEvents, 0);
  assert.equal(sink(4), undefined, "caught up: the run goes on");
  run.log.end();
  while (!(await client.read()).done) { /* the rest */ }
});

Deno.test("LogReader holdRun: more than `bytes` unread holds the run too", async () => {
  const run = loggedRun(1 << 22);
  const big = (n: number): SSEEvent => ({
    type: "task_complete",
    data: {
      taskId: `t${n}`,
      tool: "x",
      status: "success",
      output: "y".repeat(10_000),
      executionTimeMs: 0,
      timestamp: TS,
    },
  });
  const reader = new LogReader(run, {
    heartbeatMs: 0,
    holdRun: { events: 1000, bytes: 25_000 },
  });
  run.log.append(big(0));
  assert.equal(reader.holdBack(), undefined);
  run.log.append(big(1));
  assert.equal(reader.holdBack(), undefined, "about 20,100 bytes unread");
  run.log.append(big(2));
  const held = reader.holdBack();
  assert.ok(held instanceof Promise, "about 30,150 bytes unread: hold");
  assert.ok(reader.unreadBytes > 25_000);
  const text = new Response(reader.body.readable).text();
  await held;
  assert.equal(reader.unreadBytes, 0);
  run.log.end();
  assert.equal((await text).match(/event: task_complete/g)?.length, 3);
});

Deno.test("LogReader soleReader: taken frames give way at once, and the log is dropped at the end", async () => {
  const run = loggedRun();
  const reader = new LogReader(run, { heartbeatMs: 0, soleReader: true });
  const client = reader.body.readable.getReader();
  await readChunk(client); // retry
  for (const n of [0, 1, 2]) run.log.append(start(n));
  assert.equal(run.log.firstSeq, 1, "nothing taken yet: everything kept");
  let text = "";
  while (!text.includes("id: 3\n")) text += await readChunk(client);
  await tick();
  assert.equal(run.log.bytes, 0, "the client took them: they gave way");
  assert.equal(run.log.firstSeq, 4);
  run.log.append(start(3));
  run.log.end();
  assert.match(await readChunk(client), /^id: 4\n/);
  assert.equal((await client.read()).done, true);
  await reader.body.finished;
  assert.ok(run.log.discarded, "the stream is over: the log goes");
});

Deno.test("LogReader: a reader whose next events gave way gets events_lost, then the stream closes", async () => {
  const run = loggedRun(200); // room for about two frames
  for (let n = 0; n < 6; n++) run.log.append(start(n));
  run.log.end();
  const missed = run.log.firstSeq - 1;
  assert.ok(missed > 0);
  const withUrl = await parseSSEStream(
    runEventStream(run, { heartbeatMs: 0, resultUrl: "/runs/r1" }).readable,
  );
  assert.equal(withUrl.length, 1);
  const [lost] = withUrl;
  assert.equal(lost.type, "error");
  assert.equal(lost.id, undefined, "not part of the log");
  assert.deepEqual(
    { ...lost.data, timestamp: "" },
    {
      error: `${missed} event(s) after id 0 are no longer kept; the full result is at /runs/r1`,
      timestamp: "",
      code: "events_lost",
      missedEvents: missed,
      resultUrl: "/runs/r1",
    },
  );
  // Without a result URL (handleSSERequest has none), the same without it.
  const [bare] = await parseSSEStream(runEventStream(run, { heartbeatMs: 0 }).readable);
  assert.equal(bare.type, "error");
  assert.deepEqual(
    { ...bare.data, timestamp: "" },
    {
      error: `${missed} event(s) after id 0 are no longer kept`,
      timestamp: "",
      code: "events_lost",
      missedEvents: missed,
    },
  );
  // From a cursor still kept: the events, no error.
  const resumed = await parseSSEStream(
    runEventStream(run, { heartbeatMs: 0, after: missed }).readable,
  );
  assert.deepEqual(
    resumed.map((e) => e.id),
    Array.from({ length: 6 - missed }, (_, i) => String(missed + 1 + i)),
  );
  assert.ok(resumed.every((e) => e.type === "task_start"));
});

Deno.test("LogReader: a client that leaves cancels the run only with cancelRunOnLeave, and frees a held run", async () => {
  const watcher = loggedRun();
  const body = runEventStream(watcher, { heartbeatMs: 0 });
  await body.readable.cancel();
  assert.deepEqual(watcher.cancelled, [], "a watcher may come back: the run goes on");

  const owner = loggedRun();
  const reader = new LogReader(owner, {
    heartbeatMs: 0,
    cancelRunOnLeave: true,
    holdRun: { events: 1, bytes: 1 << 20 },
  });
  owner.log.append(start(0));
  const held = reader.holdBack()!;
  assert.equal(await promiseState(held), "pending");
  await reader.body.readable.cancel();
  assert.deepEqual(owner.cancelled, ["client disconnected"]);
  await held; // released: the run must not wait for a client that left
  assert.equal(reader.holdBack(), undefined);
});

Deno.test("handleSSERequest: a chain of large outputs holds at 1 MiB unread, and the client still gets every event", async () => {
  const n = 40;
  const ids = Array.from({ length: n }, (_, i) => `t${i}`);
  const gated = new GatedTools(new Set(ids));
  const chain: DAGStructure = {
    tasks: ids.map((id, i) => ({
      id,
      tool: "x",
      arguments: { blob: "z".repeat(60_000) },
      dependsOn: i === 0 ? [] : [ids[i - 1]],
    })),
  };
  const response = await handleSSERequest(new Request("http://localhost/"), chain, gated.executor, {
    heartbeatMs: 0,
    maxBufferSize: 1000,
  });
  await until(() => gated.calls.length >= 18, "the run holds with 1 MiB unread");
  await turns(5); // and stays held
  // About 60 KB per task_complete: the run holds once more than 1 MiB waits
  // for the client, which the 18th task's output brings it to.
  assert.equal(gated.calls.length, 18, "tools that ran with no reader");
  const events = [];
  for await (const event of readSSEEvents(response.body!)) events.push(event);
  assert.equal(events.length, 2 * n + 1);
  assert.deepEqual(events.map((e) => e.id), events.map((_, i) => String(i + 1)));
  assertRunOrder(events, chain.tasks);
  assert.ok(!events.some((e) => e.type === "error"), "nothing was lost");
});
