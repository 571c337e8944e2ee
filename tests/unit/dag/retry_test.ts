/**
 * Per-task `timeout` and `retry`: tasks are tried again only when their
 * tool failed or timed out, after the jittered wait the `task_retry` event
 * announces, with a fresh signal each attempt; a cancelled run or a failed
 * dependency is never retried. Time is a clock the test controls, and the
 * jitter's random number is fixed while a test runs.
 */

import assert from "node:assert/strict";
import {
  ParallelExecutor,
  type SSEEvent,
  StreamingExecutor,
  type TaskResult,
  type ToolExecutor,
  type ToolProgress,
  validateDAG,
} from "../../../mod.ts";
import { builtinTools } from "../../../src/tools/builtin.ts";
import { createToolRegistry } from "../../../src/tools/registry.ts";
import { deferred, GatedTools, turns, until, untilAborted } from "./_helpers.ts";
import { FakeClock } from "../_fake_clock.ts";

/** Fixes `Math.random` (the jitter) for a block: `using _ = fixedRandom(0.5)`. */
function fixedRandom(value: number): Disposable {
  const real = Math.random;
  Math.random = () => value;
  return { [Symbol.dispose]: () => void (Math.random = real) };
}

const tools = createToolRegistry({ ...builtinTools });
const flaky: ToolExecutor = (tool, args, ctx) => tools.execute(tool, args, ctx);

Deno.test("retry: a flaky task is tried again after each announced wait, then succeeds", async () => {
  using clock = new FakeClock();
  using _random = fixedRandom(0.5);
  const events: SSEEvent[] = [];
  const run = new StreamingExecutor(flaky).executeWithEventSink({
    tasks: [
      {
        id: "f",
        tool: "mock:flaky",
        arguments: { failures: 2 },
        retry: { attempts: 3, delayMs: 100, factor: 3 },
      },
      { id: "after", tool: "mock:echo", dependsOn: ["f"] },
    ],
  }, (event) => void events.push(event));
  await until(() => events.some((e) => e.type === "task_retry"), "the first attempt fails");
  const first = events.find((e) => e.type === "task_retry")!;
  assert.deepEqual({ ...first.data, timestamp: "" }, {
    taskId: "f",
    tool: "mock:flaky",
    attempt: 2,
    error: "mock:flaky: attempt 1 of 2 fails",
    delayMs: 50, // half of at most 100 ms
    timestamp: "",
  });
  assert.equal(clock.dueTimes[0], 50, "the wait is the next timer");
  await clock.advance(49);
  assert.equal(events.filter((e) => e.type === "task_retry").length, 1, "not yet tried again");
  await clock.advance(1);
  await until(() => events.filter((e) => e.type === "task_retry").length === 2, "attempt 2 fails");
  const second = events.filter((e) => e.type === "task_retry")[1];
  assert.equal(second.data.attempt, 3);
  assert.equal(second.data.delayMs, 150, "half of at most 100 × 3");
  await clock.advance(150);
  const result = await run;
  const [f, after] = result.results;
  assert.equal(f.status, "success");
  assert.deepEqual(f.output, { attempts: 3 });
  assert.equal(f.attempts, 3);
  assert.equal(f.executionTimeMs, 200, "from the first attempt's start to the last one's end");
  assert.equal(after.status, "success");
  assert.deepEqual(
    events.filter((e) => "taskId" in e.data && e.data.taskId === "f").map((e) => e.type),
    ["task_start", "task_retry", "task_retry", "task_complete"],
    "one start, one end, a task_retry before each new attempt",
  );
  const complete = events.find((e) => e.type === "task_complete" && e.data.taskId === "f")!;
  assert.equal(complete.type === "task_complete" && complete.data.attempts, 3);
  assert.deepEqual(clock.armed, []);
});

Deno.test("retry: when every attempt fails the task fails with the last error; dependents are skipped", async () => {
  using _random = fixedRandom(0);
  const result = await new ParallelExecutor(flaky).execute({
    tasks: [
      { id: "f", tool: "mock:flaky", arguments: { failures: 5 }, retry: { attempts: 3 } },
      { id: "after", tool: "mock:echo", dependsOn: ["f"] },
    ],
  });
  const [f, after] = result.results;
  assert.equal(f.status, "error");
  assert.equal(f.error, "mock:flaky: attempt 3 of 5 fails");
  assert.equal(f.attempts, 3);
  assert.equal(after.error, "Dependency f failed");
  assert.equal(after.attempts, undefined, "a task that never ran has no attempts");
});

Deno.test("retry: every task that ran says how many attempts it took (1 without a retry)", async () => {
  const result = await new ParallelExecutor(flaky).execute({
    tasks: [
      { id: "ok", tool: "mock:echo" },
      { id: "bad", tool: "mock:fail" },
      { id: "skipped", tool: "mock:echo", dependsOn: ["bad"] },
    ],
  });
  assert.deepEqual(result.results.map((r) => r.attempts), [1, 1, undefined]);
});

Deno.test("timeout: a task's own timeout overrides taskTimeout, lower or higher", async () => {
  using clock = new FakeClock();
  const tool: ToolExecutor = (_t, _a, ctx) => untilAborted(ctx.signal);
  const run = new ParallelExecutor(tool, { taskTimeout: 1000 }).execute({
    tasks: [
      { id: "short", tool: "t", timeout: 10 },
      { id: "default", tool: "t" },
      { id: "long", tool: "t", timeout: 5000 },
    ],
  });
  await until(() => clock.armed.length === 3, "three deadlines, one timer for each timeout");
  await clock.advance(5000);
  const result = await run;
  assert.deepEqual(result.results.map((r) => r.error), [
    'task "short" timed out after 10 ms',
    'task "default" timed out after 1000 ms',
    'task "long" timed out after 5000 ms',
  ]);
  assert.deepEqual(result.results.map((r) => r.executionTimeMs), [10, 1000, 5000]);
  assert.deepEqual(clock.armed, []);
});

Deno.test("retry: a timed-out attempt's signal aborts before the next attempt, and its late result is ignored", async () => {
  using clock = new FakeClock();
  using _random = fixedRandom(0.5);
  const signals: AbortSignal[] = [];
  const late = deferred<string>();
  const tool: ToolExecutor = (_t, _a, ctx) => {
    signals.push(ctx.signal);
    // The first attempt ignores its signal and answers late; the second answers at once.
    return ctx.attempt === 1 ? late.promise : Promise.resolve(`attempt ${ctx.attempt}`);
  };
  const events: SSEEvent[] = [];
  const run = new StreamingExecutor(tool).executeWithEventSink({
    tasks: [{ id: "t", tool: "t", timeout: 20, retry: { attempts: 2, delayMs: 10 } }],
  }, (event) => void events.push(event));
  await until(() => signals.length === 1, "attempt 1 starts");
  await clock.advance(20);
  await until(() => events.some((e) => e.type === "task_retry"), "attempt 1 times out");
  assert.ok(signals[0].aborted, "attempt 1's signal aborted before attempt 2 starts");
  assert.equal(signals[0].reason.name, "TimeoutError");
  const retry = events.find((e) => e.type === "task_retry")!;
  assert.equal(retry.type === "task_retry" && retry.data.error, 'task "t" timed out after 20 ms');
  await clock.advance(5);
  await until(() => signals.length === 2, "attempt 2 starts after the 5 ms wait");
  assert.ok(!signals[1].aborted, "a fresh signal");
  late.resolve("attempt 1, too late");
  const result = await run;
  assert.equal(result.results[0].output, "attempt 2");
  assert.equal(result.results[0].attempts, 2);
});

Deno.test("retry: a run cancelled while a task waits ends it at once, without another attempt", async () => {
  using clock = new FakeClock();
  using _random = fixedRandom(0.5);
  const controller = new AbortController();
  const attempts: number[] = [];
  const tool: ToolExecutor = (_t, _a, ctx) => {
    attempts.push(ctx.attempt!);
    return Promise.reject(new Error("down"));
  };
  const events: SSEEvent[] = [];
  const run = new StreamingExecutor(tool).executeWithEventSink(
    {
      tasks: [
        { id: "t", tool: "t", retry: { attempts: 5, delayMs: 1000 } },
        { id: "after", tool: "t", dependsOn: ["t"] },
      ],
    },
    (event) => void events.push(event),
    { signal: controller.signal },
  );
  await until(() => events.some((e) => e.type === "task_retry"), "attempt 1 fails");
  assert.equal(clock.dueTimes[0], 500, "the wait is the next timer");
  controller.abort(new Error("stop"));
  const result = await run;
  assert.deepEqual(attempts, [1]);
  assert.equal(result.results[0].error, "aborted: stop");
  assert.equal(result.results[0].attempts, 1);
  assert.equal(result.results[1].error, "aborted: stop");
  assert.deepEqual(clock.armed, [], "the wait's timer is gone");
});

Deno.test("retry: a task cancelled while it runs is not retried", async () => {
  const controller = new AbortController();
  const gated = new GatedTools();
  const run = new ParallelExecutor(gated.tool).execute({
    tasks: [{ id: "t", tool: "t", retry: { attempts: 3, delayMs: 0 } }],
  }, { signal: controller.signal });
  await until(() => gated.called("t"), "t starts");
  controller.abort(new Error("stop"));
  const result = await run;
  assert.equal(result.results[0].error, "aborted: stop");
  assert.equal(result.results[0].attempts, 1);
  assert.equal(gated.calls.filter((id) => id === "t").length, 1);
});

Deno.test("retry: a waiting task frees its concurrency slot, and goes before tasks not yet started", async () => {
  using clock = new FakeClock();
  using _random = fixedRandom(0.5);
  const order: string[] = [];
  const gates = new Map<string, ReturnType<typeof deferred<string>>>();
  const tool: ToolExecutor = (_t, _a, ctx) => {
    order.push(`${ctx.taskId}#${ctx.attempt}`);
    if (ctx.taskId === "flaky" && ctx.attempt === 1) return Promise.reject(new Error("once"));
    const gate = deferred<string>();
    gates.set(`${ctx.taskId}#${ctx.attempt}`, gate);
    return gate.promise;
  };
  const run = new ParallelExecutor(tool, { maxConcurrency: 1 }).execute({
    tasks: [
      { id: "flaky", tool: "t", retry: { attempts: 2, delayMs: 100 } },
      { id: "b", tool: "t" },
      { id: "c", tool: "t" },
    ],
  });
  await until(() => order.includes("b#1"), "b takes the slot flaky left");
  await clock.advance(50); // flaky's wait is over while b still runs
  gates.get("b#1")!.resolve("b");
  await until(() => order.length === 3, "the next task starts");
  assert.deepEqual(order, ["flaky#1", "b#1", "flaky#2"], "the retry before c");
  gates.get("flaky#2")!.resolve("flaky");
  await until(() => order.length === 4, "c starts");
  gates.get("c#1")!.resolve("c");
  const result = await run;
  assert.equal(result.successfulTasks, 3);
});

Deno.test("retry and timeout: bad values are refused with their paths", () => {
  const result = validateDAG({
    tasks: [
      { id: "a", tool: "t", timeout: 0 },
      { id: "b", tool: "t", retry: { attempts: 0 } },
      { id: "c", tool: "t", retry: { attempts: 2.5 } },
      { id: "d", tool: "t", retry: { attempts: 101 } },
      { id: "e", tool: "t", retry: { attempts: 2, delayMs: -1 } },
      { id: "f", tool: "t", retry: { attempts: 2, backoff: "x" } },
      { id: "g", tool: "t", retry: {} },
      { id: "h", tool: "t", timeout: "1s" },
    ],
  });
  assert.ok(!result.ok);
  assert.deepEqual(result.issues.map((i) => i.path), [
    "tasks[0].timeout",
    "tasks[1].retry.attempts",
    "tasks[2].retry.attempts",
    "tasks[3].retry.attempts",
    "tasks[4].retry.delayMs",
    "tasks[5].retry.backoff",
    "tasks[6].retry.attempts",
    "tasks[7].timeout",
  ]);
  const ok = validateDAG({
    tasks: [{ id: "a", tool: "t", timeout: 250, retry: { attempts: 100, delayMs: 0, factor: 0 } }],
  });
  assert.ok(ok.ok);
  assert.deepEqual(ok.dag.tasks[0].retry, { attempts: 100, delayMs: 0, factor: 0 });
  assert.equal(ok.dag.tasks[0].timeout, 250);
});

Deno.test("retry: while the sink holds a task_retry event, no task starts", async () => {
  const tool: ToolExecutor = (_t, _a, ctx) =>
    ctx.taskId === "f" && ctx.attempt === 1
      ? Promise.reject(new Error("once"))
      : Promise.resolve(ctx.taskId);
  const held = deferred();
  const events: string[] = [];
  const run = new StreamingExecutor(tool, { maxConcurrency: 1 }).executeWithEventSink({
    tasks: [{ id: "f", tool: "t", retry: { attempts: 2, delayMs: 0 } }, { id: "g", tool: "t" }],
  }, (event) => {
    events.push(`${event.type}:${"taskId" in event.data ? event.data.taskId : ""}`);
    if (event.type === "task_retry") return held.promise;
  });
  await until(() => events.includes("task_retry:f"), "f's first attempt fails");
  await turns(20);
  assert.deepEqual(events, ["task_start:f", "task_retry:f"], "nothing past the held event");
  held.resolve();
  const result = await run;
  assert.equal(result.successfulTasks, 2);
});

Deno.test("retry: a task whose $OUTPUT cannot be resolved is not retried: its tool was never called", async () => {
  let calls = 0;
  const tool: ToolExecutor = (t) => {
    if (t === "b") calls++;
    return Promise.resolve({ x: 1 });
  };
  const result = await new ParallelExecutor(tool).execute({
    tasks: [
      { id: "a", tool: "a" },
      { id: "b", tool: "b", arguments: { v: "$OUTPUT[a].missing" }, retry: { attempts: 3 } },
    ],
  });
  assert.equal(calls, 0);
  assert.match(result.results[1].error!, /undefined task output/);
  assert.equal(result.results[1].attempts, 0, "no tool call");
});

Deno.test("retry: an executeTask override sees each attempt's number, and may return another task's result", async () => {
  const seen: number[] = [];
  class Memo extends ParallelExecutor {
    protected override executeTask(
      task: Parameters<ParallelExecutor["executeTask"]>[0],
      previous: Map<string, TaskResult>,
      signal: AbortSignal,
      progress?: (update: ToolProgress) => void,
    ): Promise<TaskResult> {
      // b reuses a's result, which says how many attempts a took.
      const a = previous.get("a");
      if (task.id === "b" && a?.status === "success") {
        return Promise.resolve({ ...a, taskId: "b" });
      }
      return super.executeTask(task, previous, signal, progress);
    }
  }
  const tool: ToolExecutor = (_t, _a, ctx) => {
    seen.push(ctx.attempt!);
    return ctx.attempt === 1 ? Promise.reject(new Error("once")) : Promise.resolve("out");
  };
  const result = await new Memo(tool, { taskTimeout: 60_000 }).execute({
    tasks: [
      { id: "a", tool: "t", retry: { attempts: 2, delayMs: 0 } },
      { id: "b", tool: "t", dependsOn: ["a"] },
    ],
  });
  assert.deepEqual(seen, [1, 2]);
  assert.deepEqual(result.results.map((r) => [r.status, r.output, r.attempts]), [
    ["success", "out", 2],
    ["success", "out", 1],
  ]);
});

Deno.test("retry: a run cancelled from a failed attempt's abort listener: the retry came first, then the end", async () => {
  const run = new AbortController();
  const tool: ToolExecutor = (_t, _a, ctx) => {
    ctx.signal.addEventListener("abort", () => run.abort(new Error("stop")));
    return Promise.reject(new Error("boom"));
  };
  const events: string[] = [];
  const result = await new StreamingExecutor(tool).executeWithEventSink(
    {
      tasks: [{ id: "f", tool: "t", retry: { attempts: 3, delayMs: 0 } }],
    },
    (event) => void events.push(event.type),
    { signal: run.signal },
  );
  assert.deepEqual(events, ["task_start", "task_retry", "task_complete", "execution_complete"]);
  assert.equal(result.results[0].error, "aborted: stop");
});

Deno.test("retry: the jittered wait never passes its cap", async () => {
  using _random = fixedRandom(0.999);
  const events: SSEEvent[] = [];
  await new StreamingExecutor(flaky).executeWithEventSink({
    tasks: [{
      id: "f",
      tool: "mock:flaky",
      arguments: { failures: 1 },
      retry: { attempts: 2, delayMs: 10, maxDelayMs: 0.9 },
    }],
  }, (event) => void events.push(event));
  const retry = events.find((e) => e.type === "task_retry")!;
  assert.equal(retry.type === "task_retry" && retry.data.delayMs, 0);
});
