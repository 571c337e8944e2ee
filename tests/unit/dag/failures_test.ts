import assert from "node:assert/strict";
import {
  type DAGExecutionResult,
  type DAGStructure,
  ParallelExecutor,
  type ToolExecutor,
} from "../../../mod.ts";
import { GatedTools, idsWith, until } from "./_helpers.ts";

/** A tool that throws for the task ids in `failing` and echoes otherwise. */
function failingTool(failing: Record<string, unknown>, called: string[] = []): ToolExecutor {
  return (_tool, args, ctx) => {
    called.push(ctx.taskId);
    if (ctx.taskId in failing) return Promise.reject(failing[ctx.taskId]);
    return Promise.resolve({ ok: ctx.taskId, args });
  };
}

function assertCountsAddUp(result: DAGExecutionResult): void {
  assert.equal(result.totalTasks, result.results.length);
  assert.equal(result.successfulTasks + result.failedTasks, result.totalTasks);
  assert.equal(result.errors.length, result.failedTasks);
  assert.equal(idsWith(result, "success").length, result.successfulTasks);
  assert.deepEqual(result.errors.map((e) => e.taskId), idsWith(result, "error"));
  for (const e of result.errors) {
    assert.equal(e.status, "error");
    const r = result.results.find((x) => x.taskId === e.taskId)!;
    assert.equal(e.error, r.error);
  }
}

const BRANCHES: DAGStructure = {
  tasks: [
    { id: "a", tool: "t" },
    { id: "b", tool: "t", dependsOn: ["a"] },
    { id: "c", tool: "t", dependsOn: ["b"] },
    { id: "x", tool: "t" },
    { id: "y", tool: "t", dependsOn: ["x"] },
    { id: "z", tool: "t", dependsOn: ["y", "c"] },
    { id: "w", tool: "t", dependsOn: ["y"] },
  ],
};

Deno.test("partial success: a failure never stops independent branches", async () => {
  for (const scheduling of ["eager", "layered"] as const) {
    const called: string[] = [];
    const result = await new ParallelExecutor(
      failingTool({ a: new Error("a exploded") }, called),
      { scheduling },
    ).execute(BRANCHES);
    assert.deepEqual(idsWith(result, "success"), ["x", "y", "w"], scheduling);
    assert.deepEqual(idsWith(result, "error"), ["a", "b", "c", "z"], scheduling);
    const errors = Object.fromEntries(result.results.map((r) => [r.taskId, r.error]));
    assert.equal(errors.a, "a exploded");
    assert.equal(errors.b, "Dependency a failed");
    assert.equal(errors.c, "Dependency b failed", "skipping is transitive");
    assert.equal(errors.z, "Dependency c failed");
    assert.deepEqual([...called].sort(), ["a", "w", "x", "y"], "skipped tools are never called");
    for (const id of ["b", "c", "z"]) {
      assert.equal(result.results.find((r) => r.taskId === id)!.executionTimeMs, 0);
    }
    assertCountsAddUp(result);
    assert.equal(result.successfulTasks, 3);
    assert.equal(result.failedTasks, 4);
  }
});

Deno.test("partial success: with no failure every task succeeds (negative case)", async () => {
  const called: string[] = [];
  const result = await new ParallelExecutor(failingTool({}, called)).execute(BRANCHES);
  assert.equal(result.successfulTasks, 7);
  assert.equal(result.failedTasks, 0);
  assert.deepEqual(result.errors, []);
  assert.equal(called.length, 7);
  assertCountsAddUp(result);
});

Deno.test("partial success: one failed dependency skips a task whose other dependency succeeds", async () => {
  const tools = new GatedTools();
  const run = new ParallelExecutor(tools.tool).execute({
    tasks: [
      { id: "bad", tool: "t" },
      { id: "slow", tool: "t" },
      { id: "both", tool: "t", dependsOn: ["slow", "bad"] },
    ],
  });
  await until(() => tools.calls.length === 2, "bad and slow start");
  tools.fail("bad", new Error("nope"));
  await until(() => tools.ended.has("bad"), "bad ends");
  tools.release("slow");
  const result = await run;
  assert.ok(!tools.called("both"));
  assert.equal(result.results[2].error, "Dependency bad failed");
  assert.equal(result.results[1].status, "success");
  assertCountsAddUp(result);
});

Deno.test("failures: non-Error throws become readable messages; other tasks succeed", async () => {
  const nameOnly = new TypeError();
  const failing: Record<string, unknown> = {
    str: "plain text failure",
    obj: { code: 42, why: "quota" },
    undef: undefined,
    nul: null,
    num: 7,
    big: 10n,
    empty: nameOnly,
    error: new RangeError("out of range"),
  };
  const ids = [...Object.keys(failing), "good1", "good2"];
  const result = await new ParallelExecutor(failingTool(failing)).execute({
    tasks: ids.map((id) => ({ id, tool: "t" })),
  });
  const errors = Object.fromEntries(result.results.map((r) => [r.taskId, r.error]));
  assert.equal(errors.str, "plain text failure");
  assert.equal(errors.obj, '{"code":42,"why":"quota"}');
  assert.match(errors.undef!, /undefined/);
  assert.equal(errors.nul, "null");
  assert.equal(errors.num, "7");
  assert.equal(errors.big, '"10n"');
  assert.equal(errors.empty, "TypeError");
  assert.equal(errors.error, "out of range");
  for (const id of Object.keys(failing)) {
    assert.equal(typeof errors[id], "string");
    assert.ok(errors[id]!.length > 0);
  }
  assert.deepEqual(idsWith(result, "success"), ["good1", "good2"]);
  assertCountsAddUp(result);
});

Deno.test("failures: a tool that throws synchronously fails its task only", async () => {
  const tool: ToolExecutor = (_t, _a, ctx) => {
    if (ctx.taskId === "sync") throw new Error("thrown before any promise");
    return Promise.resolve(ctx.taskId);
  };
  const result = await new ParallelExecutor(tool).execute({
    tasks: [{ id: "sync", tool: "t" }, { id: "fine", tool: "t" }],
  });
  assert.equal(result.results[0].error, "thrown before any promise");
  assert.equal(result.results[1].output, "fine");
});

Deno.test("failures: a throw whose description itself throws still fails cleanly", async () => {
  const hostile = {
    toJSON() {
      throw new Error("no json");
    },
    toString() {
      throw new Error("no string");
    },
  };
  const result = await new ParallelExecutor(failingTool({ h: hostile })).execute({
    tasks: [{ id: "h", tool: "t" }, { id: "ok", tool: "t" }],
  });
  assert.equal(result.results[0].status, "error");
  assert.equal(typeof result.results[0].error, "string");
  assert.equal(result.results[1].status, "success");
});

Deno.test("output: values that are not JSON-serialisable fail that task clearly", async () => {
  const circular: Record<string, unknown> = { name: "loop" };
  circular.self = circular;
  const outputs: Record<string, unknown> = {
    bigint: 123n,
    nestedBig: { total: 5n },
    circular,
    fn: () => 1,
    sym: Symbol("s"),
    throwingToJSON: {
      toJSON() {
        throw new Error("cannot");
      },
    },
  };
  const good: Record<string, unknown> = {
    obj: { a: [1, "x", null, true] },
    str: "text",
    num: 0,
    nul: null,
    undef: undefined,
    date: new Date(0),
  };
  const all = { ...outputs, ...good };
  const tool: ToolExecutor = (_t, _a, ctx) => Promise.resolve(all[ctx.taskId]);
  const result = await new ParallelExecutor(tool).execute({
    tasks: [
      ...Object.keys(all).map((id) => ({ id, tool: "t" })),
      { id: "downstream", tool: "t", dependsOn: ["bigint"] },
    ],
  });
  const byId = new Map(result.results.map((r) => [r.taskId, r]));
  for (const id of Object.keys(outputs)) {
    const r = byId.get(id)!;
    assert.equal(r.status, "error", id);
    assert.match(r.error!, /not JSON-serialisable/, id);
    assert.ok(!("output" in r) || r.output === undefined, `${id} keeps no output`);
  }
  assert.match(byId.get("bigint")!.error!, /BigInt/);
  assert.equal(byId.get("downstream")!.error, "Dependency bigint failed");
  for (const [id, value] of Object.entries(good)) {
    assert.equal(byId.get(id)!.status, "success", id);
    assert.deepEqual(byId.get(id)!.output, value, id);
  }
  // the whole result is serialisable, whatever the tools returned
  assert.doesNotThrow(() => JSON.stringify(result));
  assertCountsAddUp(result);
});

Deno.test("output: a tool returning undefined succeeds with no output", async () => {
  const result = await new ParallelExecutor(() => Promise.resolve(undefined)).execute({
    tasks: [{ id: "void", tool: "t" }],
  });
  assert.equal(result.results[0].status, "success");
  assert.equal(result.results[0].output, undefined);
  assert.equal(result.successfulTasks, 1);
});
