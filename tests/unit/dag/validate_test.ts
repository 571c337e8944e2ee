import assert from "node:assert/strict";
import {
  dagJsonSchema,
  DAGValidationError,
  ParallelExecutor,
  prepareDAG,
  validateDAG,
  type ValidationIssue,
} from "../../../mod.ts";
import { DEFAULT_MAX_TASKS } from "../../../src/dag/defaults.ts";
import { MAX_ARGUMENT_DEPTH } from "../../../src/dag/arguments.ts";
import { chain, echoTool, GatedTools, wide } from "./_helpers.ts";

/** The issues of an input that must be invalid. */
function issuesOf(input: unknown, options?: Parameters<typeof validateDAG>[1]): ValidationIssue[] {
  const result = validateDAG(input, options);
  assert.equal(result.ok, false, `expected invalid: ${JSON.stringify(input)?.slice(0, 200)}`);
  return (result as { ok: false; issues: ValidationIssue[] }).issues;
}

function pathsOf(input: unknown, options?: Parameters<typeof validateDAG>[1]): string[] {
  return issuesOf(input, options).map((i) => i.path);
}

function assertValid(input: unknown, options?: Parameters<typeof validateDAG>[1]): void {
  const result = validateDAG(input, options);
  assert.ok(result.ok, `expected valid, got ${JSON.stringify(!result.ok && result.issues)}`);
}

/** Arguments nested `levels` deep, the arguments object itself being level 1. */
function nested(levels: number, viaArrays = false): Record<string, unknown> {
  let value: unknown = "leaf";
  for (let k = 1; k < levels; k++) value = viaArrays ? [value] : { next: value };
  return { next: value };
}

Deno.test("validate: a well-formed DAG is accepted and prepared", () => {
  const result = validateDAG({
    tasks: [
      { id: "a", tool: "mock:echo", arguments: { x: 1 } },
      { id: "b", tool: "mock:echo", dependsOn: ["a"] },
    ],
  });
  assert.ok(result.ok);
  assert.deepEqual(result.dag.tasks.map((t) => t.id), ["a", "b"]);
  assert.deepEqual(result.dag.layers, [[0], [1]]);
  assert.deepEqual(result.dag.graph.deps, [[], [0]]);
});

Deno.test("validate: an empty task list is a valid DAG with no layers", () => {
  const result = validateDAG({ tasks: [] });
  assert.ok(result.ok);
  assert.deepEqual(result.dag.layers, []);
});

Deno.test("validate: a duplicate id is reported at the later occurrence", () => {
  const issues = issuesOf({
    tasks: [
      { id: "a", tool: "t" },
      { id: "b", tool: "t" },
      { id: "c", tool: "t" },
      { id: "a", tool: "t" },
    ],
  });
  assert.equal(issues.length, 1);
  assert.equal(issues[0].path, "tasks[3].id");
  assert.match(issues[0].message, /duplicate id "a"/);
  assert.match(issues[0].message, /tasks\[0\]/);
});

Deno.test("validate: every repeat of an id is reported, distinct ids are fine", () => {
  assert.deepEqual(
    pathsOf({ tasks: [{ id: "x", tool: "t" }, { id: "x", tool: "t" }, { id: "x", tool: "t" }] }),
    ["tasks[1].id", "tasks[2].id"],
  );
  assertValid({ tasks: [{ id: "x", tool: "t" }, { id: "X", tool: "t" }, { id: "x ", tool: "t" }] });
});

Deno.test("validate: an unknown dependsOn id is reported with its index", () => {
  const issues = issuesOf({
    tasks: [
      { id: "a", tool: "t" },
      { id: "b", tool: "t", dependsOn: ["a", "nope"] },
    ],
  });
  assert.deepEqual(issues, [{ path: "tasks[1].dependsOn[1]", message: 'unknown task "nope"' }]);
  assertValid({ tasks: [{ id: "a", tool: "t" }, { id: "b", tool: "t", dependsOn: ["a"] }] });
});

Deno.test("validate: a dependency may be declared after the task that needs it", () => {
  const result = validateDAG({
    tasks: [{ id: "late", tool: "t", dependsOn: ["early"] }, { id: "early", tool: "t" }],
  });
  assert.ok(result.ok);
  assert.deepEqual(result.dag.layers, [[1], [0]]);
});

Deno.test("validate: wrong types are reported at every level with their paths", () => {
  const cases: [unknown, string][] = [
    [null, "(root)"],
    ["tasks", "(root)"],
    [[], "(root)"],
    [{}, "tasks"],
    [{ tasks: null }, "tasks"],
    [{ tasks: {} }, "tasks"],
    [{ tasks: "a,b" }, "tasks"],
    [{ tasks: [null] }, "tasks[0]"],
    [{ tasks: [{ id: "a", tool: "t" }, 5] }, "tasks[1]"],
    [{ tasks: [{ id: "a", tool: "t" }, ["a", "t"]] }, "tasks[1]"],
    [{ tasks: [{ id: 1, tool: "t" }] }, "tasks[0].id"],
    [{ tasks: [{ tool: "t" }] }, "tasks[0].id"],
    [{ tasks: [{ id: "", tool: "t" }] }, "tasks[0].id"],
    [{ tasks: [{ id: "a", tool: 42 }] }, "tasks[0].tool"],
    [{ tasks: [{ id: "a", tool: null }] }, "tasks[0].tool"],
    [{ tasks: [{ id: "a", tool: { name: "t" } }] }, "tasks[0].tool"],
    [{ tasks: [{ id: "a" }] }, "tasks[0].tool"],
    [{ tasks: [{ id: "a", tool: "" }] }, "tasks[0].tool"],
    [{ tasks: [{ id: "a", tool: "t", arguments: null }] }, "tasks[0].arguments"],
    [{ tasks: [{ id: "a", tool: "t", arguments: [1, 2] }] }, "tasks[0].arguments"],
    [{ tasks: [{ id: "a", tool: "t", arguments: "x=1" }] }, "tasks[0].arguments"],
    [{ tasks: [{ id: "a", tool: "t", dependsOn: null }] }, "tasks[0].dependsOn"],
    [{ tasks: [{ id: "a", tool: "t", dependsOn: "b" }] }, "tasks[0].dependsOn"],
    [{ tasks: [{ id: "a", tool: "t", dependsOn: { 0: "b" } }] }, "tasks[0].dependsOn"],
    [
      { tasks: [{ id: "b", tool: "t" }, { id: "a", tool: "t", dependsOn: ["b", 7] }] },
      "tasks[1].dependsOn[1]",
    ],
    [{ tasks: [{ id: "a", tool: "t", dependsOn: [null] }] }, "tasks[0].dependsOn[0]"],
    [{ tasks: [{ id: "a", tool: "t", depends_on: null }] }, "tasks[0].depends_on"],
    [{ tasks: [{ id: "a", tool: "t", depends_on: [1] }] }, "tasks[0].depends_on[0]"],
  ];
  for (const [input, path] of cases) {
    const paths = pathsOf(input);
    assert.deepEqual(paths, [path], `input ${JSON.stringify(input)}`);
  }
});

Deno.test("validate: every field of the right type is accepted", () => {
  assertValid({
    tasks: [
      { id: "a", tool: "t", arguments: {}, dependsOn: [] },
      { id: "b", tool: "t", arguments: { n: 1, s: "x", l: [1, [2]], o: { p: null } } },
      { id: "c", tool: "t", dependsOn: ["a", "b"] },
    ],
  });
});

Deno.test("validate: unknown fields of a task are reported, one issue each", () => {
  const issues = issuesOf({
    tasks: [{ id: "a", tool: "t" }, { id: "b", tool: "t", args: {}, depends: ["a"] }],
  });
  assert.deepEqual(issues.map((i) => i.path).sort(), ["tasks[1].args", "tasks[1].depends"]);
  for (const issue of issues) assert.match(issue.message, /unknown field/);
});

Deno.test("validate: more than maxTasks tasks is an error (default 1000)", () => {
  assert.equal(DEFAULT_MAX_TASKS, 1000);
  assertValid(wide(1000));
  const issues = issuesOf(wide(1001));
  assert.equal(issues.length, 1);
  assert.equal(issues[0].path, "tasks");
  assert.match(issues[0].message, /too many tasks: 1001 \(at most 1000\)/);
  assertValid(wide(3), { maxTasks: 3 });
  assert.match(issuesOf(wide(4), { maxTasks: 3 })[0].message, /too many tasks/);
  assertValid(wide(5000), { maxTasks: 5000 });
});

Deno.test("validate: the executor's maxTasks applies to execute()", async () => {
  const small = new ParallelExecutor(echoTool, { maxTasks: 2 });
  await assert.rejects(small.execute(wide(3)), DAGValidationError);
  assert.equal((await small.execute(wide(2))).successfulTasks, 2);
  const large = new ParallelExecutor(echoTool, { maxTasks: 2000 });
  assert.equal((await large.execute(wide(1500))).successfulTasks, 1500);
  await assert.rejects(new ParallelExecutor(echoTool).execute(wide(1001)), /too many tasks/);
});

Deno.test("validate: a two-task cycle names both tasks", () => {
  const issues = issuesOf({
    tasks: [
      { id: "root", tool: "t" },
      { id: "ping", tool: "t", dependsOn: ["root", "pong"] },
      { id: "pong", tool: "t", dependsOn: ["ping"] },
    ],
  });
  assert.equal(issues.length, 1);
  assert.match(issues[0].message, /Circular dependency detected/);
  assert.match(issues[0].message, /ping -> pong -> ping/);
  assert.ok(!issues[0].message.includes("root"), "a task outside the cycle is not named");
  assert.equal(issues[0].path, "tasks[1].dependsOn");
});

Deno.test("validate: a self-dependency is a cycle", () => {
  const issues = issuesOf({ tasks: [{ id: "ouroboros", tool: "t", dependsOn: ["ouroboros"] }] });
  assert.match(issues[0].message, /Circular dependency detected: ouroboros -> ouroboros/);
});

Deno.test("validate: a cycle behind a tail names only the tasks on the cycle", () => {
  const issues = issuesOf({
    tasks: [
      { id: "head", tool: "t", dependsOn: ["loopA"] },
      { id: "loopA", tool: "t", dependsOn: ["loopB"] },
      { id: "loopB", tool: "t", dependsOn: ["loopC"] },
      { id: "loopC", tool: "t", dependsOn: ["loopA"] },
    ],
  });
  assert.match(issues[0].message, /Circular dependency detected: loopA -> loopB -> loopC -> loopA/);
  assert.ok(!issues[0].message.includes("head"));
});

Deno.test("validate: a long cycle names every task on it, in order", () => {
  const n = 5000;
  const dag = chain(n);
  dag.tasks[0].dependsOn = [`t${n - 1}`];
  const issues = issuesOf(dag, { maxTasks: n });
  const message = issues[0].message;
  assert.match(message, /^Circular dependency detected: /);
  const names = message.slice("Circular dependency detected: ".length).split(" -> ");
  assert.equal(names.length, n + 1);
  assert.equal(names[0], names[n]);
  assert.deepEqual(new Set(names).size, n);
  // each named task depends on the next one
  const deps = new Map(dag.tasks.map((t) => [t.id, t.dependsOn ?? []]));
  for (let k = 0; k < n; k++) assert.ok(deps.get(names[k])!.includes(names[k + 1]));
});

Deno.test("validate: a cycle made by $OUTPUT references is detected", () => {
  const issues = issuesOf({
    tasks: [
      { id: "a", tool: "t", arguments: { x: "$OUTPUT[b]" } },
      { id: "b", tool: "t", arguments: { y: ["$OUTPUT[a].v"] } },
    ],
  });
  assert.match(issues[0].message, /Circular dependency detected: (a -> b -> a|b -> a -> b)/);
  assert.match(
    issuesOf({ tasks: [{ id: "me", tool: "t", arguments: { x: "$OUTPUT[me]" } }] })[0].message,
    /Circular dependency detected: me -> me/,
  );
});

Deno.test("validate: a diamond and shared dependencies are not cycles", () => {
  assertValid({
    tasks: [
      { id: "a", tool: "t" },
      { id: "b", tool: "t", dependsOn: ["a"] },
      { id: "c", tool: "t", dependsOn: ["a"] },
      { id: "d", tool: "t", dependsOn: ["b", "c", "a"] },
    ],
  });
});

Deno.test("validate: depends_on is accepted as a spelling of dependsOn", () => {
  const result = validateDAG({
    tasks: [{ id: "a", tool: "t" }, { id: "b", tool: "t", depends_on: ["a"] }],
  });
  assert.ok(result.ok);
  assert.deepEqual(result.dag.tasks[1].dependsOn, ["a"]);
  assert.ok(!("depends_on" in result.dag.tasks[1]), "normalised to dependsOn");
  assert.deepEqual(result.dag.layers, [[0], [1]]);
});

Deno.test("validate: an unknown id in depends_on is reported under depends_on", () => {
  assert.deepEqual(
    pathsOf({ tasks: [{ id: "a", tool: "t" }, { id: "b", tool: "t", depends_on: ["a", "zz"] }] }),
    ["tasks[1].depends_on[1]"],
  );
});

Deno.test("validate: dependsOn and depends_on on one task is an error", () => {
  const issues = issuesOf({
    tasks: [{ id: "a", tool: "t" }, { id: "b", tool: "t", dependsOn: ["a"], depends_on: ["a"] }],
  });
  assert.equal(issues.length, 1);
  assert.equal(issues[0].path, "tasks[1].depends_on");
  assert.match(issues[0].message, /either dependsOn or depends_on/);
  // even when both are empty
  assert.deepEqual(pathsOf({ tasks: [{ id: "a", tool: "t", dependsOn: [], depends_on: [] }] }), [
    "tasks[0].depends_on",
  ]);
});

Deno.test("validate: validation does not modify its input", () => {
  const input = { tasks: [{ id: "a", tool: "t" }, { id: "b", tool: "t", depends_on: ["a"] }] };
  const copy = structuredClone(input);
  assert.ok(validateDAG(input).ok);
  assert.deepEqual(input, copy);
});

Deno.test(`validate: arguments may nest ${MAX_ARGUMENT_DEPTH} levels, not more`, () => {
  assert.equal(MAX_ARGUMENT_DEPTH, 64);
  for (const viaArrays of [false, true]) {
    assertValid({ tasks: [{ id: "a", tool: "t", arguments: nested(64, viaArrays) }] });
    const issues = issuesOf({ tasks: [{ id: "a", tool: "t", arguments: nested(65, viaArrays) }] });
    assert.deepEqual(issues.map((i) => i.path), ["tasks[0].arguments"]);
    assert.match(issues[0].message, /deeper than 64/);
  }
  // far too deep is rejected just the same (and without blowing the stack)
  assert.deepEqual(pathsOf({ tasks: [{ id: "a", tool: "t", arguments: nested(100_000) }] }), [
    "tasks[0].arguments",
  ]);
});

Deno.test("validate: all problems are reported at once", () => {
  const issues = issuesOf({
    tasks: [
      { id: "a", tool: "t" },
      { id: "b", tool: 7 },
      { id: "c", tool: "t", dependsOn: ["a", "ghost"] },
      { id: "a", tool: "t", colour: "red" },
      { id: "d", tool: "t", dependsOn: ["b"], arguments: nested(70) },
      { id: "e", tool: "t", dependsOn: ["x"], depends_on: ["y"] },
    ],
  });
  const paths = issues.map((i) => i.path).sort();
  assert.deepEqual(paths, [
    "tasks[1].tool",
    "tasks[2].dependsOn[1]",
    "tasks[3].colour",
    "tasks[3].id",
    "tasks[4].arguments",
    "tasks[5].dependsOn[0]",
    "tasks[5].depends_on",
  ]);
  // "b" (malformed, but with a usable id) still counts as a known id for tasks[4]
  assert.ok(!paths.includes("tasks[4].dependsOn[0]"));
});

Deno.test("validate: all problems of well-formed tasks are reported at once", () => {
  const issues = issuesOf({
    tasks: [
      { id: "a", tool: "t", dependsOn: ["q"] },
      { id: "a", tool: "t" },
      { id: "b", tool: "t", dependsOn: ["r", "a", "s"] },
      { id: "c", tool: "t", arguments: nested(65) },
    ],
  });
  assert.deepEqual(issues.map((i) => i.path).sort(), [
    "tasks[0].dependsOn[0]",
    "tasks[1].id",
    "tasks[2].dependsOn[0]",
    "tasks[2].dependsOn[2]",
    "tasks[3].arguments",
  ]);
});

Deno.test("validate: isKnownTool rejects tasks naming other tools", () => {
  const isKnownTool = (tool: string) => tool.startsWith("mock:");
  const issues = issuesOf({
    tasks: [
      { id: "a", tool: "mock:echo" },
      { id: "b", tool: "fs:read" },
      { id: "c", tool: "nope" },
    ],
  }, { isKnownTool });
  assert.deepEqual(issues, [
    { path: "tasks[1].tool", message: 'unknown tool "fs:read"' },
    { path: "tasks[2].tool", message: 'unknown tool "nope"' },
  ]);
  assertValid({ tasks: [{ id: "a", tool: "mock:echo" }] }, { isKnownTool });
  assertValid({ tasks: [{ id: "a", tool: "anything" }] }, {});
});

Deno.test("validate: prepareDAG throws a DAGValidationError listing every issue", () => {
  const error = assert.throws(
    () => prepareDAG({ tasks: [{ id: "a", tool: "t", dependsOn: ["x", "y"] }] }),
    (e: unknown) => {
      assert.ok(e instanceof DAGValidationError);
      assert.equal(e.name, "DAGValidationError");
      assert.deepEqual(e.issues.map((i) => i.path), [
        "tasks[0].dependsOn[0]",
        "tasks[0].dependsOn[1]",
      ]);
      assert.match(e.message, /tasks\[0\]\.dependsOn\[0\]: unknown task "x"/);
      assert.match(e.message, /tasks\[0\]\.dependsOn\[1\]: unknown task "y"/);
      return true;
    },
  );
  assert.equal(error, undefined);
  assert.equal(prepareDAG({ tasks: [{ id: "a", tool: "t" }] }).tasks.length, 1);
});

Deno.test("validate: execute() rejects invalid DAGs with DAGValidationError and runs nothing", async () => {
  const tools = new GatedTools();
  const executor = new ParallelExecutor(tools.tool);
  const invalid: unknown[] = [
    { tasks: [{ id: "a", tool: "t" }, { id: "a", tool: "t" }] },
    { tasks: [{ id: "a", tool: "t", dependsOn: ["b"] }, { id: "b", tool: "t", dependsOn: ["a"] }] },
    { tasks: [{ id: "a", tool: 1 }] },
    null,
  ];
  for (const dag of invalid) {
    // a rejected promise, not a synchronous throw
    const pending = executor.execute(dag as never);
    assert.ok(pending instanceof Promise);
    const error = await pending.then(
      () => assert.fail("should reject"),
      (e: unknown) => e,
    );
    assert.ok(error instanceof DAGValidationError);
    assert.ok(error.issues.length > 0);
  }
  await assert.rejects(
    executor.execute({ tasks: [{ id: "a", tool: "t", dependsOn: ["a"] }] }),
    /Circular dependency detected: a -> a/,
  );
  assert.deepEqual(tools.calls, []);
});

Deno.test("validate: dagJsonSchema is a JSON Schema of the DAG format", () => {
  const schema = dagJsonSchema as {
    $schema?: string;
    type?: string;
    required?: string[];
    properties?: {
      tasks?: {
        type?: string;
        items?: {
          type?: string;
          required?: string[];
          additionalProperties?: unknown;
          properties?: Record<string, unknown>;
        };
      };
    };
  };
  assert.match(schema.$schema ?? "", /json-schema\.org\/draft\/2020-12/);
  assert.equal(schema.type, "object");
  assert.deepEqual(schema.required, ["tasks"]);
  assert.equal(schema.properties?.tasks?.type, "array");
  const item = schema.properties?.tasks?.items;
  assert.equal(item?.type, "object");
  assert.deepEqual([...(item?.required ?? [])].sort(), ["id", "tool"]);
  assert.equal(item?.additionalProperties, false);
  assert.deepEqual(
    Object.keys(item?.properties ?? {}).sort(),
    ["arguments", "dependsOn", "depends_on", "id", "retry", "timeout", "tool"],
  );
  const retry = (item?.properties?.retry ?? {}) as {
    required?: string[];
    additionalProperties?: unknown;
    properties?: Record<string, unknown>;
  };
  assert.deepEqual(retry.required, ["attempts"]);
  assert.equal(retry.additionalProperties, false);
  assert.deepEqual(Object.keys(retry.properties ?? {}).sort(), [
    "attempts",
    "delayMs",
    "factor",
    "maxDelayMs",
  ]);
  // it is plain JSON
  assert.deepEqual(JSON.parse(JSON.stringify(dagJsonSchema)), dagJsonSchema);
});
