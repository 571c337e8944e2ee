/**
 * `task_progress`: a tool's `ctx.progress` reports become events of the
 * stream between its task's start and end, malformed or late reports are
 * dropped, and batch runs hand tools no progress callback.
 */

import assert from "node:assert/strict";
import {
  ParallelExecutor,
  type SSEEvent,
  StreamingExecutor,
  type ToolContext,
  type ToolExecutor,
} from "../../../mod.ts";
import { deferred } from "./_helpers.ts";

function collect(): { events: SSEEvent[]; sink: WritableStream<SSEEvent> } {
  const events: SSEEvent[] = [];
  return { events, sink: new WritableStream({ write: (e) => void events.push(e) }) };
}

Deno.test("task_progress events come between the task's start and complete, in order", async () => {
  const tools: ToolExecutor = (_tool, _args, ctx) => {
    ctx.progress?.({ progress: 1, total: 2, message: "half" });
    ctx.progress?.({ progress: 2, total: 2 });
    ctx.progress?.({ progress: 3 });
    return Promise.resolve("done");
  };
  const { events, sink } = collect();
  await new StreamingExecutor(tools).executeWithStreaming(
    { tasks: [{ id: "a", tool: "work" }] },
    sink,
  );
  assert.deepEqual(events.map((e) => e.type), [
    "task_start",
    "task_progress",
    "task_progress",
    "task_progress",
    "task_complete",
    "execution_complete",
  ]);
  const progress = events.filter((e) => e.type === "task_progress").map((e) => {
    const { timestamp, ...rest } = e.data as { timestamp: string };
    assert.match(timestamp, /^\d{4}-\d\d-\d\dT/);
    return rest;
  });
  assert.deepEqual(progress, [
    { taskId: "a", tool: "work", progress: 1, total: 2, message: "half" },
    { taskId: "a", tool: "work", progress: 2, total: 2 },
    { taskId: "a", tool: "work", progress: 3 },
  ]);
});

Deno.test("malformed reports and reports after the task ended are dropped; long messages are cut", async () => {
  let late: ToolContext["progress"];
  const tools: ToolExecutor = (_tool, _args, ctx) => {
    late = ctx.progress;
    ctx.progress?.({ progress: Number.NaN });
    ctx.progress?.({ progress: "1" as unknown as number });
    ctx.progress?.(null as unknown as { progress: number });
    ctx.progress?.({ progress: 1, total: Infinity, message: "x".repeat(5000) });
    return Promise.resolve(1);
  };
  const { events, sink } = collect();
  await new StreamingExecutor(tools).executeWithStreaming(
    { tasks: [{ id: "a", tool: "t" }] },
    sink,
  );
  late!({ progress: 2 }); // after the run: ignored
  const progress = events.filter((e) => e.type === "task_progress");
  assert.equal(progress.length, 1);
  const data = progress[0].data as { total?: number; message: string };
  assert.equal(data.total, undefined);
  assert.equal(data.message.length, 1025);
  assert.ok(data.message.endsWith("…"));
});

Deno.test("a report after the run was cancelled is dropped (the task is over)", async () => {
  const gotCtx = deferred<ToolContext>();
  const tools: ToolExecutor = (_tool, _args, ctx) => {
    gotCtx.resolve(ctx);
    return new Promise((_, reject) =>
      ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason))
    );
  };
  const { events, sink } = collect();
  const controller = new AbortController();
  const run = new StreamingExecutor(tools).executeWithStreaming(
    { tasks: [{ id: "a", tool: "t" }] },
    sink,
    undefined,
    { signal: controller.signal },
  );
  const ctx = await gotCtx.promise;
  ctx.progress!({ progress: 1 });
  controller.abort(new Error("stop"));
  ctx.progress!({ progress: 2 });
  await run;
  const progress = events.filter((e) => e.type === "task_progress");
  assert.deepEqual(progress.map((e) => (e.data as { progress: number }).progress), [1]);
});

Deno.test("while the consumer holds a progress event back, later reports are dropped", async () => {
  const gate = deferred();
  const seen: SSEEvent[] = [];
  const release = deferred();
  const tools: ToolExecutor = async (_tool, _args, ctx) => {
    ctx.progress?.({ progress: 1 });
    ctx.progress?.({ progress: 2 }); // dropped: the first is still pending
    await release.promise;
    ctx.progress?.({ progress: 3 }); // taken: the first was accepted
    return "ok";
  };
  const executor = new StreamingExecutor(tools);
  const run = executor.executeWithEventSink({ tasks: [{ id: "a", tool: "t" }] }, (event) => {
    seen.push(event);
    if (event.type === "task_progress" && event.data.progress === 1) return gate.promise;
  });
  gate.resolve();
  await gate.promise;
  release.resolve();
  await run;
  assert.deepEqual(
    seen.filter((e) => e.type === "task_progress").map((e) =>
      (e.data as { progress: number }).progress
    ),
    [1, 3],
  );
});

Deno.test("batch runs give tools no progress callback", async () => {
  let had: boolean | undefined;
  await new ParallelExecutor((_tool, _args, ctx) => {
    had = ctx.progress !== undefined;
    return Promise.resolve(1);
  }).execute({ tasks: [{ id: "a", tool: "t" }] });
  assert.equal(had, false);
});
