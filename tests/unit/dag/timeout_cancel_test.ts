import assert from "node:assert/strict";
import { ParallelExecutor, type ToolExecutor } from "../../../mod.ts";
import { DEFAULT_TASK_TIMEOUT } from "../../../src/dag/defaults.ts";
import { deferred, GatedTools, idsWith, turns, until, untilAborted } from "./_helpers.ts";
import { FakeClock } from "../_fake_clock.ts";

Deno.test("timeout: a task running past taskTimeout fails with 'timed out' and its signal aborts", async () => {
  assert.equal(DEFAULT_TASK_TIMEOUT, 30_000);
  using clock = new FakeClock();
  const signals = new Map<string, AbortSignal>();
  const called: string[] = [];
  const tool: ToolExecutor = (_t, _a, ctx) => {
    called.push(ctx.taskId);
    signals.set(ctx.taskId, ctx.signal);
    if (ctx.taskId === "slow") return untilAborted(ctx.signal);
    return Promise.resolve(ctx.taskId);
  };
  let settled = false;
  const run = new ParallelExecutor(tool, { taskTimeout: 20 }).execute({
    tasks: [
      { id: "slow", tool: "t" },
      { id: "quick", tool: "t" },
      { id: "after", tool: "t", dependsOn: ["slow"] },
      { id: "next", tool: "t", dependsOn: ["quick"] },
    ],
  }).finally(() => settled = true);
  await until(() => called.length === 3, "slow, quick and next are called");
  assert.deepEqual(clock.dueTimes, [20], "one timer, at slow's deadline");
  await clock.advance(19);
  assert.equal(settled, false, "1 ms before the deadline nothing has timed out");
  assert.ok(!signals.get("slow")!.aborted);
  await clock.advance(1);
  const result = await run;
  const [slow, quick, after, next] = result.results;
  assert.equal(slow.status, "error");
  assert.match(slow.error!, /timed out/);
  assert.match(slow.error!, /"slow"/);
  assert.match(slow.error!, /20 ms/);
  assert.equal(slow.executionTimeMs, 20);
  const signal = signals.get("slow")!;
  assert.ok(signal.aborted);
  assert.ok(signal.reason instanceof DOMException);
  assert.equal(signal.reason.name, "TimeoutError");
  assert.match(signal.reason.message, /timed out/);
  assert.equal(quick.status, "success");
  assert.equal(next.status, "success");
  assert.ok(!signals.get("quick")!.aborted, "a task that finished in time is not aborted");
  assert.equal(after.error, "Dependency slow failed");
  assert.deepEqual(called, ["slow", "quick", "next"]);
  assert.equal(result.failedTasks, 2);
  assert.equal(result.executionTimeMs, 20);
  assert.deepEqual(clock.armed, [], "no timer is left behind");
});

Deno.test("timeout: tasks that finish in time are not timed out (negative case)", async () => {
  using clock = new FakeClock();
  const tools = new GatedTools();
  const run = new ParallelExecutor(tools.tool, { taskTimeout: 60_000 }).execute({
    tasks: [{ id: "a", tool: "t" }, { id: "b", tool: "t", dependsOn: ["a"] }],
  });
  await until(() => tools.called("a"), "a starts");
  await clock.advance(59_999);
  tools.release("a");
  await until(() => tools.called("b"), "b starts");
  // The run's one timer still waits for a's deadline; when it fires, it
  // finds b's deadline, which counts from b's own start, and waits for that.
  await clock.advance(1);
  assert.equal(tools.signals.get("b")!.aborted, false);
  assert.deepEqual(clock.dueTimes, [119_999]);
  await clock.advance(59_998);
  tools.release("b");
  const result = await run;
  assert.equal(result.successfulTasks, 2);
  assert.ok(!tools.signals.get("a")!.aborted && !tools.signals.get("b")!.aborted);
  assert.deepEqual(result.results.map((r) => r.executionTimeMs), [59_999, 59_999]);
  assert.deepEqual(clock.armed, [], "the timer is gone once no task runs");
});

Deno.test("timeout: a tool that ignores its signal still has its task failed at the deadline", async () => {
  using clock = new FakeClock();
  const tools = new GatedTools();
  let settled = false;
  const run = new ParallelExecutor(tools.tool, { taskTimeout: 20 }).execute({
    tasks: [{ id: "stubborn", tool: "t" }, { id: "after", tool: "t", dependsOn: ["stubborn"] }],
  }).finally(() => settled = true);
  await until(() => tools.called("stubborn"), "stubborn starts");
  await clock.advance(20);
  assert.equal(settled, true, "execute settled at the deadline");
  const result = await run;
  // execute settled while the tool call is still pending
  assert.ok(!tools.ended.has("stubborn"));
  assert.ok(tools.signals.get("stubborn")!.aborted);
  assert.match(result.results[0].error!, /timed out/);
  assert.equal(result.results[1].error, "Dependency stubborn failed");
  assert.ok(!tools.called("after"));
  // the tool settles late: its output is ignored and changes nothing
  tools.release("stubborn", { late: true });
  await until(() => tools.ended.has("stubborn"), "the stubborn tool settles");
  await turns(2);
  assert.equal(result.results[0].status, "error");
  assert.ok(!tools.called("after"));
});

Deno.test("timeout: tasks started one after another each get their own deadline", async () => {
  // with maxConcurrency 1 the second and third tasks start only as the one
  // before times out; every one of them must still time out, 15 ms after
  // its own start
  using clock = new FakeClock();
  const tools = new GatedTools();
  let settled = false;
  const run = new ParallelExecutor(tools.tool, { taskTimeout: 15, maxConcurrency: 1 })
    .execute({ tasks: [{ id: "a", tool: "t" }, { id: "b", tool: "t" }, { id: "c", tool: "t" }] })
    .finally(() => settled = true);
  await until(() => tools.called("a"), "a starts");
  for (const [id, next] of [["a", "b"], ["b", "c"]]) {
    await clock.advance(14);
    assert.ok(!tools.signals.get(id)!.aborted, `${id} still runs 14 ms after its start`);
    await clock.advance(1);
    assert.ok(tools.signals.get(id)!.aborted, `${id} timed out 15 ms after its start`);
    await until(() => tools.called(next), `${next} starts as ${id} times out`);
  }
  await clock.advance(15);
  assert.equal(settled, true);
  const result = await run;
  assert.deepEqual(tools.calls, ["a", "b", "c"]);
  for (const r of result.results) {
    assert.match(r.error!, /timed out/);
    assert.equal(r.executionTimeMs, 15);
  }
  assert.equal(result.executionTimeMs, 45);
  tools.releaseAll();
  await until(() => tools.ended.size === 3, "the ignored tool calls settle");
});

Deno.test("timeout: a quick task between slow ones keeps the deadlines right", async () => {
  using clock = new FakeClock();
  const quickDone = deferred();
  const called: string[] = [];
  const tool: ToolExecutor = async (_t, _a, ctx) => {
    called.push(ctx.taskId);
    if (ctx.taskId === "quick") {
      quickDone.resolve();
      return "q";
    }
    if (ctx.taskId === "then") return "t";
    return await untilAborted(ctx.signal);
  };
  const run = new ParallelExecutor(tool, { taskTimeout: 20 }).execute({
    tasks: [
      { id: "quick", tool: "t" },
      { id: "slow1", tool: "t" },
      { id: "then", tool: "t", dependsOn: ["quick"] },
      { id: "slow2", tool: "t", dependsOn: ["then"] },
    ],
  });
  await until(() => called.length === 4, "every task is called");
  await clock.advance(20);
  const result = await run;
  assert.equal(quickDone.settled, true);
  assert.deepEqual(idsWith(result, "success"), ["quick", "then"]);
  assert.match(result.results[1].error!, /timed out/);
  assert.match(result.results[3].error!, /timed out/);
  assert.deepEqual(clock.armed, []);
});

Deno.test("timeout: a deadline behind an expired one still fires", async () => {
  // "late" starts 3 ms after "early": when early's deadline passes, late's
  // is still ahead and must be armed anew
  using clock = new FakeClock();
  const tools = new GatedTools();
  let done = false;
  const run = new ParallelExecutor(tools.tool, { taskTimeout: 100 }).execute({
    tasks: [
      { id: "early", tool: "t" },
      { id: "gate", tool: "t" },
      { id: "late", tool: "t", dependsOn: ["gate"] },
    ],
  }).finally(() => done = true);
  await until(() => tools.called("early") && tools.called("gate"), "early and gate start");
  await clock.advance(3);
  tools.release("gate");
  await until(() => tools.called("late"), "late starts");
  assert.deepEqual(clock.dueTimes, [100], "one timer, at the first deadline");
  await clock.advance(97);
  assert.ok(tools.signals.get("early")!.aborted, "early timed out at 100 ms");
  assert.ok(!tools.signals.get("late")!.aborted, "late's deadline is 3 ms later");
  assert.deepEqual(clock.dueTimes, [103], "the timer is armed for late's deadline");
  await clock.advance(2);
  assert.equal(done, false);
  await clock.advance(1);
  assert.equal(done, true);
  const result = await run;
  assert.match(result.results[0].error!, /timed out/);
  assert.equal(result.results[1].status, "success");
  assert.match(result.results[2].error!, /timed out/);
  assert.ok(tools.signals.get("late")!.aborted);
  assert.deepEqual(result.results.map((r) => r.executionTimeMs), [100, 3, 100]);
  tools.releaseAll();
  await until(() => tools.ended.size === 3, "the ignored tool calls settle");
});

Deno.test("timeout: with the real clock a 1 ms taskTimeout fires", async () => {
  // The one test on the real timer: the deadline is armed with the real
  // setTimeout and fires by itself. Nothing here depends on how long it took.
  const tools = new GatedTools();
  const result = await new ParallelExecutor(tools.tool, { taskTimeout: 1 }).execute({
    tasks: [{ id: "stuck", tool: "t" }],
  });
  assert.match(result.results[0].error!, /task "stuck" timed out after 1 ms/);
  assert.ok(tools.signals.get("stuck")!.aborted);
  tools.releaseAll();
  await until(() => tools.ended.has("stuck"), "the ignored tool call settles");
});

Deno.test("cancel: aborting the run aborts running tools and fails the rest unrun", async () => {
  const tools = new GatedTools();
  const honouring: ToolExecutor = (tool, args, ctx) => {
    if (ctx.taskId === "done") return tools.tool(tool, args, ctx);
    void tools.tool(tool, args, ctx).catch(() => {});
    return untilAborted(ctx.signal);
  };
  const controller = new AbortController();
  const run = new ParallelExecutor(honouring, { maxConcurrency: 4 }).execute({
    tasks: [
      { id: "done", tool: "t" },
      { id: "r1", tool: "t" },
      { id: "r2", tool: "t" },
      { id: "queued", tool: "t" },
      { id: "child", tool: "t", dependsOn: ["r1"] },
      { id: "grandchild", tool: "t", dependsOn: ["done"] },
    ],
  }, { signal: controller.signal });
  await until(() => tools.calls.length === 4, "four start");
  tools.release("done");
  await until(() => tools.called("grandchild"), "the freed slot is reused");
  assert.deepEqual(tools.calls, ["done", "r1", "r2", "queued", "grandchild"]);
  controller.abort(new Error("user pressed stop"));
  const result = await run;

  const byId = new Map(result.results.map((r) => [r.taskId, r]));
  assert.equal(byId.get("done")!.status, "success", "finished work is kept");
  for (const id of ["r1", "r2", "queued", "grandchild"]) {
    assert.ok(tools.signals.get(id)!.aborted, `${id}'s signal aborted`);
    assert.equal(byId.get(id)!.status, "error");
    assert.match(byId.get(id)!.error!, /aborted/);
    assert.match(byId.get(id)!.error!, /user pressed stop/);
  }
  assert.equal(tools.signals.get("r1")!.reason.name, "AbortError");
  assert.ok(!tools.called("child"), "a task not started is never run");
  assert.match(byId.get("child")!.error!, /aborted/);
  assert.equal(byId.get("child")!.executionTimeMs, 0);
  assert.equal(result.successfulTasks, 1);
  assert.equal(result.failedTasks, 5);
  tools.releaseAll();
});

Deno.test("cancel: tasks waiting for a slot are never run", async () => {
  using clock = new FakeClock();
  const tools = new GatedTools();
  const controller = new AbortController();
  const run = new ParallelExecutor(tools.tool, { maxConcurrency: 1 }).execute({
    tasks: [{ id: "a", tool: "t" }, { id: "b", tool: "t" }, { id: "c", tool: "t" }],
  }, { signal: controller.signal });
  await until(() => tools.called("a"), "a starts");
  await clock.advance(7);
  controller.abort();
  const result = await run;
  assert.deepEqual(tools.calls, ["a"]);
  for (const r of result.results) {
    assert.equal(r.status, "error");
    assert.match(r.error!, /aborted/);
  }
  // a ran for the 7 ms until the abort; b and c never ran.
  assert.deepEqual(result.results.map((r) => r.executionTimeMs), [7, 0, 0]);
  assert.deepEqual(clock.armed, [], "a's deadline was cleared");
  // the ignored tool call settles later without effect
  tools.releaseAll();
  await until(() => tools.ended.has("a"), "a's tool settles");
});

Deno.test("cancel: a signal aborted before the start runs nothing", async () => {
  const tools = new GatedTools();
  const controller = new AbortController();
  controller.abort("shutting down");
  const result = await new ParallelExecutor(tools.tool).execute({
    tasks: [{ id: "a", tool: "t" }, { id: "b", tool: "t", dependsOn: ["a"] }, {
      id: "c",
      tool: "t",
    }],
  }, { signal: controller.signal });
  assert.deepEqual(tools.calls, []);
  assert.equal(result.failedTasks, 3);
  for (const r of result.results) {
    assert.match(r.error!, /aborted: shutting down/);
    assert.equal(r.executionTimeMs, 0);
  }
  const timeout = await new ParallelExecutor(tools.tool).execute(
    { tasks: [{ id: "a", tool: "t" }] },
    { signal: AbortSignal.abort() },
  );
  assert.match(timeout.results[0].error!, /aborted/);
  assert.deepEqual(tools.calls, []);
});

Deno.test("cancel: a signal that never aborts changes nothing (negative case)", async () => {
  const controller = new AbortController();
  const executor = new ParallelExecutor((_t, _a, ctx) => Promise.resolve(ctx.taskId));
  const result = await executor.execute({
    tasks: [{ id: "a", tool: "t" }, { id: "b", tool: "t", dependsOn: ["a"] }],
  }, { signal: controller.signal });
  assert.equal(result.successfulTasks, 2);
  // aborting after the run has settled does nothing and throws nothing
  controller.abort();
  await turns(1);
  assert.equal(result.successfulTasks, 2);
});

Deno.test("cancel: aborting from inside a tool call settles the run", async () => {
  const controller = new AbortController();
  const called: string[] = [];
  const tool: ToolExecutor = (_t, _a, ctx) => {
    called.push(ctx.taskId);
    if (ctx.taskId === "b") controller.abort("stop now");
    return Promise.resolve(ctx.taskId);
  };
  const result = await new ParallelExecutor(tool, { maxConcurrency: 1 }).execute({
    tasks: [{ id: "a", tool: "t" }, { id: "b", tool: "t" }, { id: "c", tool: "t" }],
  }, { signal: controller.signal });
  assert.deepEqual(called, ["a", "b"]);
  assert.equal(result.results[0].status, "success");
  assert.match(result.results[1].error!, /aborted: stop now/);
  assert.match(result.results[2].error!, /aborted: stop now/);
});

Deno.test("cancel: layered runs are cancelled the same way", async () => {
  const tools = new GatedTools();
  const controller = new AbortController();
  const run = new ParallelExecutor(tools.tool, { scheduling: "layered" }).execute({
    tasks: [
      { id: "a", tool: "t" },
      { id: "b", tool: "t" },
      { id: "c", tool: "t", dependsOn: ["a"] },
      { id: "d", tool: "t", dependsOn: ["c"] },
    ],
  }, { signal: controller.signal });
  await until(() => tools.calls.length === 2, "layer 0 starts");
  tools.release("a");
  await turns(3);
  controller.abort();
  const result = await run;
  assert.deepEqual(tools.calls, ["a", "b"]);
  assert.deepEqual(result.results.map((r) => r.status), ["success", "error", "error", "error"]);
  for (const r of result.results.slice(1)) assert.match(r.error!, /aborted/);
  tools.releaseAll();
});

Deno.test("cancel: a run leaves no listener on the caller's signal", async () => {
  const controller = new AbortController();
  const signal = controller.signal;
  let listeners = 0;
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  signal.addEventListener = ((...args: Parameters<typeof add>) => {
    listeners++;
    add(...args);
  }) as typeof signal.addEventListener;
  signal.removeEventListener = ((...args: Parameters<typeof remove>) => {
    listeners--;
    remove(...args);
  }) as typeof signal.removeEventListener;
  const executor = new ParallelExecutor((_t, _a, ctx) =>
    ctx.taskId === "bad" ? Promise.reject(new Error("x")) : Promise.resolve(1)
  );
  for (let k = 0; k < 3; k++) {
    await executor.execute({ tasks: [{ id: "ok", tool: "t" }, { id: "bad", tool: "t" }] }, {
      signal,
    });
  }
  assert.equal(listeners, 0);
  const tools = new GatedTools();
  const run = new ParallelExecutor(tools.tool).execute({ tasks: [{ id: "a", tool: "t" }] }, {
    signal,
  });
  await until(() => tools.called("a"), "a starts");
  assert.equal(listeners, 1, "listens while running");
  tools.release("a");
  await run;
  assert.equal(listeners, 0);
});
