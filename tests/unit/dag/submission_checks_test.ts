/**
 * validateDAG's submission-time options: references to tasks that are not in
 * the DAG (`rejectUnknownReferences`) and per-task argument checks
 * (`checkArguments`), and that the executor keeps failing only the task of an
 * unresolvable reference when the option is off.
 */

import assert from "node:assert/strict";
import {
  type ArgumentIssue,
  ParallelExecutor,
  validateDAG,
  type ValidationIssue,
} from "../../../mod.ts";
import { locateOutputReferences } from "../../../src/dag/arguments.ts";
import { echoTool } from "./_helpers.ts";

function issuesOf(input: unknown, options: Parameters<typeof validateDAG>[1]): ValidationIssue[] {
  const result = validateDAG(input, options);
  assert.equal(result.ok, false, "expected invalid");
  return (result as { ok: false; issues: ValidationIssue[] }).issues;
}

Deno.test("locateOutputReferences: every reference with its path, at any depth, in order", () => {
  const found = locateOutputReferences({
    input: "$OUTPUT[a]",
    nested: { list: [1, "$OUTPUT[b].x.0", { deep: "$OUTPUT[a].y" }] },
    text: "not $OUTPUT[c]",
    "odd.key": "$OUTPUT[d]",
  });
  assert.deepEqual(found.map((r) => [r.path, r.text, r.reference.taskId]), [
    [["input"], "$OUTPUT[a]", "a"],
    [["nested", "list", 1], "$OUTPUT[b].x.0", "b"],
    [["nested", "list", 2, "deep"], "$OUTPUT[a].y", "a"],
    [["odd.key"], "$OUTPUT[d]", "d"],
  ]);
  assert.deepEqual(locateOutputReferences({}), []);
});

Deno.test("rejectUnknownReferences: every reference to a missing task, each at its argument's path", () => {
  const dag = {
    tasks: [
      { id: "a", tool: "t" },
      { id: "b", tool: "t", arguments: { ok: "$OUTPUT[a].x", input: "$OUTPUT[x]" } },
      {
        id: "c",
        tool: "t",
        arguments: { list: ["$OUTPUT[y].deep.er", { z: "$OUTPUT[z]" }], "a.b": "$OUTPUT[q]" },
      },
      { id: "d", tool: "t", dependsOn: ["nope"] },
    ],
  };
  assert.deepEqual(issuesOf(dag, { rejectUnknownReferences: true }), [
    { path: "tasks[1].arguments.input", message: 'unknown task "x" in reference "$OUTPUT[x]"' },
    {
      path: "tasks[2].arguments.list[0]",
      message: 'unknown task "y" in reference "$OUTPUT[y].deep.er"',
    },
    { path: "tasks[2].arguments.list[1].z", message: 'unknown task "z" in reference "$OUTPUT[z]"' },
    { path: 'tasks[2].arguments["a.b"]', message: 'unknown task "q" in reference "$OUTPUT[q]"' },
    { path: "tasks[3].dependsOn[0]", message: 'unknown task "nope"' },
  ]);
});

Deno.test("rejectUnknownReferences: references to tasks that exist pass, whatever their property", () => {
  const dag = {
    tasks: [
      { id: "a", tool: "t" },
      { id: "b", tool: "t", arguments: { v: "$OUTPUT[a].absent.property", w: ["$OUTPUT[a]"] } },
    ],
  };
  const result = validateDAG(dag, { rejectUnknownReferences: true });
  assert.ok(result.ok);
  assert.deepEqual(result.dag.graph.deps[1], [0]);
});

Deno.test("by default an unknown reference is no validation error: only its task fails, at run time", async () => {
  const dag = {
    tasks: [
      { id: "a", tool: "t" },
      { id: "b", tool: "t", arguments: { input: "$OUTPUT[x]" } },
      { id: "c", tool: "t", arguments: { v: "$OUTPUT[a].absent" } },
    ],
  };
  assert.ok(validateDAG(dag).ok);
  assert.ok(validateDAG(dag, { rejectUnknownReferences: false }).ok);
  const result = await new ParallelExecutor(echoTool).execute(dag);
  const by = Object.fromEntries(result.results.map((r) => [r.taskId, r]));
  assert.equal(by.a.status, "success");
  assert.equal(by.b.status, "error");
  assert.match(by.b.error!, /undefined task output: \$OUTPUT\[x\]/);
  assert.match(by.c.error!, /undefined task output: \$OUTPUT\[a\]\.absent/);
});

Deno.test("checkArguments: each task's problems at tasks[i].arguments + their path, all at once", () => {
  const calls: [string, Record<string, unknown>][] = [];
  const checkArguments = (tool: string, args: Record<string, unknown>): ArgumentIssue[] => {
    calls.push([tool, args]);
    const out: ArgumentIssue[] = [];
    if (typeof args.ms === "number" && args.ms < 0) {
      out.push({ path: ["ms"], message: "must be >= 0" });
    }
    if ("bad" in args) out.push({ path: ["bad", 0, "x.y"], message: "is wrong" });
    if (tool === "needs") out.push({ path: [], message: "must have something" });
    return out;
  };
  const dag = {
    tasks: [
      { id: "a", tool: "wait", arguments: { ms: -1, bad: [{}] } },
      { id: "b", tool: "wait", arguments: { ms: 5 } },
      { id: "c", tool: "needs" },
      { id: "d", tool: "unknown", arguments: { ms: -1 } },
    ],
  };
  assert.deepEqual(
    issuesOf(dag, { checkArguments, isKnownTool: (name) => name !== "unknown" }),
    [
      { path: "tasks[0].arguments.ms", message: "must be >= 0" },
      { path: 'tasks[0].arguments.bad[0]["x.y"]', message: "is wrong" },
      { path: "tasks[2].arguments", message: "must have something" },
      { path: "tasks[3].tool", message: 'unknown tool "unknown"' },
    ],
  );
  // An unknown tool's arguments are not checked; absent arguments are `{}`.
  assert.deepEqual(calls.map(([tool]) => tool), ["wait", "wait", "needs"]);
  assert.deepEqual(calls[2][1], {});
});

Deno.test("checkArguments: not called for arguments nested too deep; both rules report together", () => {
  let value: unknown = "leaf";
  for (let k = 0; k < 70; k++) value = { next: value };
  let called = 0;
  const issues = issuesOf({
    tasks: [
      { id: "a", tool: "t", arguments: { next: value } },
      { id: "b", tool: "t", arguments: { ms: "$OUTPUT[ghost]" } },
    ],
  }, {
    rejectUnknownReferences: true,
    checkArguments: () => {
      called++;
      return [{ path: ["ms"], message: "checked" }];
    },
  });
  assert.equal(called, 1);
  assert.deepEqual(issues.map((i) => i.path), [
    "tasks[0].arguments",
    "tasks[1].arguments.ms",
    "tasks[1].arguments.ms",
  ]);
  assert.match(issues[1].message, /unknown task "ghost"/);
  assert.equal(issues[2].message, "checked");
});
