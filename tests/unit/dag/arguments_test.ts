import assert from "node:assert/strict";
import { ParallelExecutor, type ToolExecutor, validateDAG } from "../../../mod.ts";
import {
  parseOutputReference,
  resolveArguments,
  UnresolvedReferenceError,
} from "../../../src/dag/arguments.ts";
import { scanArguments } from "../../../src/dag/arguments.ts";
import { GatedTools, turns, until } from "./_helpers.ts";

/** A tool whose output is given per task id; any other task echoes its arguments. */
function outputsTool(outputs: Record<string, unknown>, seen?: Map<string, unknown>): ToolExecutor {
  return (_tool, args, ctx) => {
    seen?.set(ctx.taskId, args);
    return Promise.resolve(ctx.taskId in outputs ? outputs[ctx.taskId] : args);
  };
}

Deno.test("$OUTPUT: parseOutputReference accepts exact references only", () => {
  assert.deepEqual(parseOutputReference("$OUTPUT[t1]"), { taskId: "t1", path: [] });
  assert.deepEqual(parseOutputReference("$OUTPUT[t1].a.b"), { taskId: "t1", path: ["a", "b"] });
  assert.deepEqual(parseOutputReference("$OUTPUT[my-task_2].items.0"), {
    taskId: "my-task_2",
    path: ["items", "0"],
  });
  for (
    const text of [
      "",
      "$OUTPUT",
      "$OUTPUT[]",
      "$OUTPUT[t1",
      "$OUTPUT[t1].",
      "$OUTPUT[t1]..a",
      "$OUTPUT[t1]x",
      " $OUTPUT[t1]",
      "$OUTPUT[t1] ",
      "see $OUTPUT[t1]",
      "$OUTPUT[t1] and more",
      "$output[t1]",
    ]
  ) {
    assert.equal(parseOutputReference(text), null, JSON.stringify(text));
  }
});

Deno.test("$OUTPUT: resolveArguments replaces references at any depth", () => {
  const outputs = new Map<string, unknown>([
    ["t1", { user: { name: "Ada", tags: ["x", "y"] }, n: 0, ok: false, none: null, s: "" }],
    ["t2", [10, 20, { deep: { er: 30 } }]],
    ["t3", "plain"],
  ]);
  const args = {
    whole: "$OUTPUT[t1]",
    name: "$OUTPUT[t1].user.name",
    tag: "$OUTPUT[t1].user.tags.1",
    falsy: ["$OUTPUT[t1].n", "$OUTPUT[t1].ok", "$OUTPUT[t1].none", "$OUTPUT[t1].s"],
    list: [1, ["$OUTPUT[t2].0", { x: "$OUTPUT[t2].2.deep.er" }]],
    nested: { a: { b: { c: { d: "$OUTPUT[t3]" } } } },
    untouched: { num: 5, bool: true, nil: null, text: "hello" },
  };
  const before = structuredClone(args);
  const resolved = resolveArguments(args, (id) => outputs.get(id));
  assert.deepEqual(resolved, {
    whole: outputs.get("t1"),
    name: "Ada",
    tag: "y",
    falsy: [0, false, null, ""],
    list: [1, [10, { x: 30 }]],
    nested: { a: { b: { c: { d: "plain" } } } },
    untouched: { num: 5, bool: true, nil: null, text: "hello" },
  });
  assert.deepEqual(args, before, "the arguments are not modified");
});

Deno.test("$OUTPUT: strings that merely contain a reference are left alone", () => {
  const args = {
    a: "see $OUTPUT[t1] here",
    b: "$OUTPUT[t1] ",
    c: ["prefix$OUTPUT[t1].x"],
    d: "$OUTPUT[t1].",
  };
  assert.deepEqual(resolveArguments(args, () => assert.fail("no lookup expected")), args);
  assert.deepEqual(scanArguments(args).references, []);
});

Deno.test("$OUTPUT: an unresolvable reference throws UnresolvedReferenceError", () => {
  const outputs = new Map<string, unknown>([["t1", { a: { b: 1 } }], ["t2", 5]]);
  const lookup = (id: string) => outputs.get(id);
  for (
    const ref of [
      "$OUTPUT[nope]",
      "$OUTPUT[t1].missing",
      "$OUTPUT[t1].a.b.c",
      "$OUTPUT[t2].x",
      "$OUTPUT[t1].constructor",
      "$OUTPUT[t1].__proto__",
    ]
  ) {
    assert.throws(
      () => resolveArguments({ deep: [{ x: ref }] }, lookup),
      (e: unknown) => {
        assert.ok(e instanceof UnresolvedReferenceError);
        assert.match(e.message, /undefined task output/);
        assert.ok(e.message.includes(ref));
        return true;
      },
    );
  }
});

Deno.test("$OUTPUT: references are wired through a run, at any depth", async () => {
  const seen = new Map<string, unknown>();
  const executor = new ParallelExecutor(outputsTool({
    t1: { user: { name: "Ada" }, list: [{ id: 7 }, { id: 8 }] },
    t2: [1, 2, 3],
  }, seen));
  const result = await executor.execute({
    tasks: [
      { id: "t1", tool: "t" },
      { id: "t2", tool: "t" },
      {
        id: "t3",
        tool: "t",
        dependsOn: ["t1", "t2"],
        arguments: {
          name: "$OUTPUT[t1].user.name",
          second: "$OUTPUT[t1].list.1.id",
          all: "$OUTPUT[t2]",
          deep: { in: [[{ x: "$OUTPUT[t2].2" }]] },
          text: "not $OUTPUT[t1]",
        },
      },
    ],
  });
  assert.equal(result.successfulTasks, 3);
  assert.deepEqual(seen.get("t3"), {
    name: "Ada",
    second: 8,
    all: [1, 2, 3],
    deep: { in: [[{ x: 3 }]] },
    text: "not $OUTPUT[t1]",
  });
  assert.deepEqual(result.results[2].output, seen.get("t3"));
});

Deno.test("$OUTPUT: a reference to a task not in dependsOn adds the dependency", async () => {
  for (const scheduling of ["eager", "layered"] as const) {
    const tools = new GatedTools();
    const run = new ParallelExecutor(tools.tool, { scheduling }).execute({
      tasks: [
        { id: "src", tool: "t" },
        { id: "use", tool: "t", arguments: { v: { w: "$OUTPUT[src].value" } } },
      ],
    });
    await until(() => tools.called("src"), "src starts");
    await turns(10);
    assert.ok(!tools.called("use"), `${scheduling}: use waits for src`);
    tools.release("src", { value: 42 });
    await until(() => tools.called("use"), "use starts after src");
    assert.deepEqual(tools.args.get("use"), { v: { w: 42 } });
    tools.release("use");
    const result = await run;
    assert.equal(result.successfulTasks, 2);
    assert.equal(result.parallelizationLayers, 2);
  }
  const prepared = validateDAG({
    tasks: [{ id: "a", tool: "t" }, { id: "b", tool: "t", arguments: { x: ["$OUTPUT[a]"] } }],
  });
  assert.ok(prepared.ok);
  assert.deepEqual(prepared.dag.graph.deps, [[], [0]]);
});

Deno.test("$OUTPUT: a text that merely mentions a task adds no dependency", async () => {
  const tools = new GatedTools();
  const run = new ParallelExecutor(tools.tool).execute({
    tasks: [
      { id: "src", tool: "t" },
      { id: "other", tool: "t", arguments: { note: "uses $OUTPUT[src] later" } },
    ],
  });
  await until(() => tools.calls.length === 2, "both start at once");
  tools.releaseAll();
  const result = await run;
  assert.equal(result.parallelizationLayers, 1);
  assert.deepEqual(tools.args.get("other"), { note: "uses $OUTPUT[src] later" });
});

Deno.test("$OUTPUT: an unresolvable reference fails only that task, without calling its tool", async () => {
  const seen = new Map<string, unknown>();
  const executor = new ParallelExecutor(outputsTool({ a: { present: 1 }, v: undefined }, seen));
  const result = await executor.execute({
    tasks: [
      { id: "a", tool: "t" },
      { id: "ghost", tool: "t", arguments: { x: "$OUTPUT[nobody]" } },
      { id: "missing", tool: "t", arguments: { x: ["$OUTPUT[a].absent"] } },
      { id: "fine", tool: "t", arguments: { x: "$OUTPUT[a].present" } },
      { id: "v", tool: "t" },
      { id: "void", tool: "t", arguments: { x: "$OUTPUT[v]" } },
      { id: "after", tool: "t", dependsOn: ["missing"] },
    ],
  });
  const byId = new Map(result.results.map((r) => [r.taskId, r]));
  for (const id of ["ghost", "missing", "void"]) {
    assert.equal(byId.get(id)!.status, "error", id);
    assert.match(byId.get(id)!.error!, /undefined task output/, id);
    assert.ok(!seen.has(id), `${id}'s tool is not called`);
  }
  assert.match(byId.get("ghost")!.error!, /\$OUTPUT\[nobody\]/);
  assert.match(byId.get("missing")!.error!, /\$OUTPUT\[a\]\.absent/);
  assert.equal(byId.get("after")!.error, "Dependency missing failed");
  assert.deepEqual(byId.get("fine")!.output, { x: 1 });
  assert.equal(byId.get("a")!.status, "success");
  assert.equal(result.successfulTasks, 3);
  assert.equal(result.failedTasks, 4);
});

Deno.test("$OUTPUT: scanArguments lists referenced ids once, in order", () => {
  assert.deepEqual(
    scanArguments({ a: "$OUTPUT[x]", b: ["$OUTPUT[y].k", { c: "$OUTPUT[x].z" }], d: 1 }),
    { references: ["x", "y"], tooDeep: false },
  );
  assert.deepEqual(scanArguments(undefined), { references: [], tooDeep: false });
});
