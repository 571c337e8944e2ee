/**
 * Input schemas, enforced with one validator for every tool: problems with
 * their paths and plain messages, references left to run time, checks at run
 * time, compilation once per schema, schemas that cannot be compiled, and the
 * built-in tools' schemas.
 */

import assert from "node:assert/strict";
import { ParallelExecutor, validateDAG, type ValidationIssue } from "../../../mod.ts";
import {
  builtinTools,
  combineToolRegistries,
  createToolRegistry,
  type ManagedToolRegistry,
  type ToolRegistry,
} from "../../../src/server/mod.ts";
import {
  compileInputSchema,
  describeArgumentIssues,
  MAX_ARGUMENT_ISSUES,
} from "../../../src/tools/schema.ts";
import { unknownToolMessages } from "../../../src/server/unknown-tool.ts";

const ctx = { signal: new AbortController().signal, taskId: "t" };

function compiled(schema: Record<string, unknown>) {
  const check = compileInputSchema(schema);
  assert.ok(check, "the schema compiles");
  return check;
}

const SCHEMA = {
  type: "object",
  properties: {
    n: { type: "integer", minimum: 0 },
    mode: { enum: ["fast", "slow"] },
    kind: { const: "x" },
    list: { type: "array", items: { type: "object", required: ["id"] } },
    map: { type: "object", additionalProperties: { type: "string" } },
    email: { type: "string", format: "email" },
  },
  required: ["n"],
  additionalProperties: false,
};

Deno.test("check: every problem at once, each at the property it is about, in plain words", () => {
  const check = compiled(SCHEMA);
  assert.deepEqual(check.check({ n: 1 }), []);
  assert.deepEqual(
    check.check({
      mode: "medium",
      kind: "y",
      list: [{ id: 1 }, {}],
      map: { "0": "ok", "a.b": 2 },
      email: "nope",
      extra: true,
    }),
    [
      { path: ["n"], message: "is required" },
      { path: ["extra"], message: "is not allowed (unknown property)" },
      { path: ["mode"], message: 'must be one of "fast", "slow"' },
      { path: ["kind"], message: 'must be "x"' },
      { path: ["list", 1, "id"], message: "is required" },
      { path: ["map", "a.b"], message: "must be string (got 2)" },
      { path: ["email"], message: 'must match format "email"' },
    ],
  );
  assert.deepEqual(check.check({ n: -1 }), [{ path: ["n"], message: "must be >= 0" }]);
  assert.deepEqual(check.check({ n: 1.5 }), [{
    path: ["n"],
    message: "must be integer (got 1.5)",
  }]);
  assert.deepEqual(check.check({ n: "1" }), [
    { path: ["n"], message: "must be integer (got a string)" },
  ]);
  assert.deepEqual(check.check({ n: 0, list: {} }), [
    { path: ["list"], message: "must be array (got an object)" },
  ]);
});

Deno.test("describeArgumentIssues: the task's message names the tool and each path", () => {
  const check = compiled(SCHEMA);
  assert.equal(
    describeArgumentIssues("t:x", check.check({ n: -1, map: { "a b": 1 } })),
    'invalid arguments for "t:x": arguments.n must be >= 0; arguments.map["a b"] must be string (got 1)',
  );
});

Deno.test("check: at most MAX_ARGUMENT_ISSUES problems, then how many more", () => {
  const check = compiled({ type: "object", additionalProperties: { type: "number" } });
  const args = Object.fromEntries(Array.from({ length: 25 }, (_, i) => [`k${i}`, "x"]));
  const issues = check.check(args);
  assert.equal(issues.length, MAX_ARGUMENT_ISSUES + 1);
  assert.deepEqual(issues.at(-1), { path: [], message: "… and 5 more problems" });
  assert.match(describeArgumentIssues("t", issues), /; … and 5 more problems$/);
});

Deno.test("checkSubmitted: a reference stands for any value; what it cannot change is reported", () => {
  const check = compiled(SCHEMA);
  // A reference where an integer belongs, as a required property, in an item.
  assert.deepEqual(check.checkSubmitted({ n: "$OUTPUT[a].count" }), []);
  assert.deepEqual(check.checkSubmitted({ n: "$OUTPUT[a]", list: ["$OUTPUT[b]"] }), []);
  assert.deepEqual(check.checkSubmitted({ n: 0, mode: "$OUTPUT[a].mode", kind: "$OUTPUT[a]" }), []);
  // The rest of the arguments is still checked, every problem at once.
  assert.deepEqual(
    check.checkSubmitted({ n: "$OUTPUT[a]", mode: "medium", extra: "$OUTPUT[b]", list: [{}] }),
    [
      { path: ["extra"], message: "is not allowed (unknown property)" },
      { path: ["mode"], message: 'must be one of "fast", "slow"' },
      { path: ["list", 0, "id"], message: "is required" },
    ],
  );
  // A string that merely contains a reference is a plain string.
  assert.deepEqual(check.checkSubmitted({ n: "see $OUTPUT[a]" }), [
    { path: ["n"], message: "must be integer (got a string)" },
  ]);
  // At run time the value is known, and checked.
  assert.deepEqual(check.check({ n: "$OUTPUT[a]" }), [
    { path: ["n"], message: "must be integer (got a string)" },
  ]);
});

Deno.test("checkSubmitted: a combinator over an object that holds a reference is left to run time", () => {
  const check = compiled({
    type: "object",
    properties: {
      source: {
        type: "object",
        oneOf: [
          { properties: { kind: { const: "file" } }, required: ["kind", "path"] },
          { $ref: "#/$defs/url" },
        ],
        maxProperties: 3,
      },
      tags: { type: "array", uniqueItems: true, contains: { const: "x" } },
      n: { type: "integer" },
    },
    $defs: { url: { properties: { kind: { const: "url" } }, required: ["kind", "url"] } },
  });
  const source = { kind: "$OUTPUT[a].kind", path: "/tmp" };
  assert.deepEqual(check.checkSubmitted({ source }), []);
  assert.deepEqual(check.checkSubmitted({ tags: ["$OUTPUT[a]", "y"] }), []);
  // Problems elsewhere are still reported; inside `source` they wait for the run.
  assert.deepEqual(check.checkSubmitted({ source: { ...source, a: 1, b: 2 }, n: "x" }), [
    { path: ["n"], message: "must be integer (got a string)" },
  ]);
  // Not held: what a reference cannot change, such as the type of what holds it.
  assert.deepEqual(check.checkSubmitted({ tags: { first: "$OUTPUT[a]" } }), [
    { path: ["tags"], message: "must be array (got an object)" },
  ]);
  // With no reference in it, the same object is fully checked.
  const issues = check.checkSubmitted({ source: { kind: "ftp", path: "/" } });
  assert.ok(issues.some((i) => i.message === "must match exactly one schema in oneOf"));
  assert.ok(issues.some((i) => i.path.join() === "source,url" && i.message === "is required"));
  // At run time everything is checked.
  assert.ok(check.check({ source: { kind: "x", path: "/" } }).length > 0);
});

Deno.test("compileInputSchema: compiled once per schema object, on first use", async () => {
  let reads = 0;
  const schema = new Proxy(
    { type: "object", properties: { n: { type: "number" } } },
    {
      get(target, key, receiver) {
        reads++;
        return Reflect.get(target, key, receiver);
      },
    },
  ) as Record<string, unknown>;
  let runs = 0;
  const tools = createToolRegistry({
    "t:n": { description: "n", inputSchema: schema, run: () => ++runs },
  });
  assert.equal(reads, 0, "nothing is compiled before it is needed");
  assert.equal(await tools.execute("t:n", { n: 1 }, ctx), 1);
  const afterFirst = reads;
  assert.ok(afterFirst > 0);
  assert.equal(await tools.execute("t:n", { n: 2 }, ctx), 2);
  assert.deepEqual(tools.checkArguments!("t:n", { n: "x" }), [
    { path: ["n"], message: "must be number (got a string)" },
  ]);
  await assert.rejects(tools.execute("t:n", { n: "x" }, ctx), /arguments\.n must be number/);
  assert.equal(reads, afterFirst, "later checks reuse the compiled schema");
  assert.equal(runs, 2, "arguments that break the schema never reach run");
  assert.equal(compileInputSchema(schema), compileInputSchema(schema));
  assert.notEqual(compileInputSchema({ ...SCHEMA }), compileInputSchema(SCHEMA));
});

Deno.test("a schema that cannot be compiled is not enforced, and breaks nothing", async () => {
  const broken = [
    { $ref: "#/$defs/missing" },
    { type: "object", properties: { a: { type: "wat" } } },
    { type: "object", properties: { a: { type: "string", pattern: "(" } } },
    { $ref: "https://example.com/remote.json" },
  ];
  for (const schema of broken) assert.equal(compileInputSchema(schema), undefined);
  for (const schema of [null, [], "x", true] as unknown[]) {
    assert.equal(compileInputSchema(schema), undefined);
  }
  const tools = createToolRegistry({
    "t:broken": { description: "b", inputSchema: broken[0], run: (args) => args },
  });
  assert.deepEqual(await tools.execute("t:broken", { anything: 1 }, ctx), { anything: 1 });
  assert.deepEqual(tools.checkArguments!("t:broken", { anything: 1 }), []);
  const checked = validateDAG({ tasks: [{ id: "a", tool: "t:broken", arguments: { x: 1 } }] }, {
    isKnownTool: tools.has,
    checkArguments: tools.checkArguments,
  });
  assert.ok(checked.ok);
});

Deno.test("schemas: $id reused by two tools, draft 2020-12 by $schema, formats", () => {
  const first = compiled({ $id: "https://example.com/same.json", type: "object", required: ["a"] });
  const second = compiled({
    $id: "https://example.com/same.json",
    type: "object",
    required: ["b"],
  });
  assert.deepEqual(first.check({ b: 1 }), [{ path: ["a"], message: "is required" }]);
  assert.deepEqual(second.check({ a: 1 }), [{ path: ["b"], message: "is required" }]);
  const tuple = compiled({
    $schema: "https://json-schema.org/draft/2020-12/schema",
    type: "object",
    properties: { pair: { type: "array", prefixItems: [{ type: "string" }, { type: "number" }] } },
  });
  assert.deepEqual(tuple.check({ pair: ["a", "b"] }), [
    { path: ["pair", 1], message: "must be number (got a string)" },
  ]);
  const uri = compiled({ type: "object", properties: { u: { type: "string", format: "uri" } } });
  assert.equal(uri.check({ u: "https://example.com/" }).length, 0);
  assert.equal(uri.check({ u: "not a uri" }).length, 1);
});

Deno.test("built-in tools: exact schemas, checked before the run and when called", async () => {
  const tools = createToolRegistry({ ...builtinTools });
  const check = (tool: string, args: Record<string, unknown>) => tools.checkArguments!(tool, args);
  assert.deepEqual(check("mock:delay", {}), []); // waits the default 100 ms
  assert.deepEqual(check("mock:delay", { ms: 0 }), []);
  assert.deepEqual(check("mock:delay", { ms: -1 }), [{ path: ["ms"], message: "must be >= 0" }]);
  assert.deepEqual(check("mock:delay", { ms: "x" }), [
    { path: ["ms"], message: "must be integer (got a string)" },
  ]);
  assert.deepEqual(check("mock:delay", { ms: 1.5 }), [
    { path: ["ms"], message: "must be integer (got 1.5)" },
  ]);
  assert.deepEqual(check("mock:delay", { msec: 5 }), [
    { path: ["msec"], message: "is not allowed (unknown property)" },
  ]);
  assert.deepEqual(check("mock:delay", { ms: "$OUTPUT[a].waitedMs" }), []);
  assert.deepEqual(check("mock:echo", { anything: [1, { deep: null }] }), []);
  assert.deepEqual(check("mock:fail", {}), []);
  assert.deepEqual(check("mock:fail", { message: 3 }), [
    { path: ["message"], message: "must be string (got 3)" },
  ]);
  await assert.rejects(tools.execute("mock:delay", { ms: -1 }, ctx), {
    message: 'invalid arguments for "mock:delay": arguments.ms must be >= 0',
  });
  assert.deepEqual(await tools.execute("mock:delay", { ms: 0 }, ctx), { waitedMs: 0 });
  await assert.rejects(tools.execute("mock:fail", {}, ctx), { message: "mock:fail" });
  // A direct call of `run` still refuses what the schema refuses.
  await assert.rejects(
    Promise.resolve().then(() => builtinTools["mock:delay"].run({ ms: 1.5 }, ctx)),
    /whole number of milliseconds/,
  );
});

Deno.test("run time: a referenced value that breaks the schema fails that task with the schema's message", async () => {
  const tools = createToolRegistry({ ...builtinTools });
  const dag = {
    tasks: [
      { id: "a", tool: "mock:echo", arguments: { v: "soon", n: 0 } },
      { id: "wait", tool: "mock:delay", arguments: { ms: "$OUTPUT[a].v" } },
      { id: "fine", tool: "mock:delay", arguments: { ms: "$OUTPUT[a].n" } },
      { id: "after", tool: "mock:echo", arguments: { w: "$OUTPUT[wait]" } },
    ],
  };
  const checked = validateDAG(dag, {
    isKnownTool: tools.has,
    checkArguments: tools.checkArguments,
    rejectUnknownReferences: true,
  });
  assert.ok(checked.ok, "references are not known at submission");
  const result = await new ParallelExecutor(tools.execute).execute(checked.dag);
  const by = Object.fromEntries(result.results.map((r) => [r.taskId, r]));
  assert.equal(by.wait.status, "error");
  assert.equal(
    by.wait.error,
    'invalid arguments for "mock:delay": arguments.ms must be integer (got a string)',
  );
  assert.deepEqual(by.fine.output, { waitedMs: 0 });
  assert.equal(by.after.error, "Dependency wait failed");
});

Deno.test("combineToolRegistries: the owner of a name checks its arguments", () => {
  const other = createToolRegistry({
    "x:n": {
      description: "n",
      inputSchema: { type: "object", properties: { n: { type: "number" } } },
      run: () => 1,
    },
  });
  const bare: ToolRegistry = {
    execute: () => Promise.resolve(1),
    has: (n) => n === "y:any",
    list: () => [],
  };
  const tools = combineToolRegistries(createToolRegistry({ ...builtinTools }), other, bare);
  assert.deepEqual(tools.checkArguments!("x:n", { n: "1" }), [
    { path: ["n"], message: "must be number (got a string)" },
  ]);
  assert.deepEqual(tools.checkArguments!("mock:delay", { ms: -1 }), [
    { path: ["ms"], message: "must be >= 0" },
  ]);
  assert.deepEqual(tools.checkArguments!("y:any", { n: "1" }), []); // a registry with no checks
  assert.deepEqual(tools.checkArguments!("z:unknown", { n: "1" }), []);
});

Deno.test("unknown tools: a namespace's tools are listed; <server>:<tool> says how to load MCP servers", () => {
  const builtin = createToolRegistry({ ...builtinTools });
  const withoutMcp = unknownToolMessages(builtin);
  assert.equal(
    withoutMcp("fs:read"),
    'unknown tool "fs:read": tools named <server>:<tool> come from MCP servers; ' +
      "start the server with --mcp-config FILE (deno task serve:mcp --mcp-config FILE)",
  );
  assert.equal(
    withoutMcp("mock:nope"),
    'unknown tool "mock:nope": the mock:* tools are mock:delay, mock:echo, mock:fail, mock:flaky',
  );
  assert.equal(withoutMcp("nope"), undefined);
  assert.equal(withoutMcp(":x"), undefined);
  const mcp: ManagedToolRegistry = {
    ...createToolRegistry({}),
    health: () => ({ web: { status: "up", transport: "http", tools: 0 } }),
    close: () => Promise.resolve(),
  };
  assert.equal(
    unknownToolMessages(builtin, mcp)("fs:read"),
    'unknown tool "fs:read": no MCP server "fs" is configured (the configured servers are web)',
  );
  // The registry's own explanation comes first.
  const explaining: ToolRegistry = { ...builtin, explainUnknown: () => "the registry knows why" };
  assert.equal(unknownToolMessages(explaining)("fs:read"), "the registry knows why");
  const issues = (validateDAG({ tasks: [{ id: "a", tool: "fs:read" }] }, {
    isKnownTool: builtin.has,
    unknownToolMessage: withoutMcp,
  }) as { issues: ValidationIssue[] }).issues;
  assert.equal(issues[0].path, "tasks[0].tool");
  assert.match(issues[0].message, /--mcp-config FILE/);
});

Deno.test("a check over values no schema foresaw (a getter that throws, a cycle) checks nothing", async () => {
  const check = compiled({
    type: "object",
    properties: { v: { type: "object", properties: { x: { type: "number" } } } },
  });
  const hostile = {};
  Object.defineProperty(hostile, "x", {
    enumerable: true,
    get() {
      throw new Error("no");
    },
  });
  assert.deepEqual(check.check({ v: hostile }), []);
  const tree = compiled({
    $ref: "#/$defs/node",
    $defs: { node: { type: "object", additionalProperties: { $ref: "#/$defs/node" } } },
  });
  const cycle: Record<string, unknown> = {};
  cycle.self = cycle;
  assert.deepEqual(tree.check({ cycle }), []);
  const tools = createToolRegistry({
    "t:v": {
      description: "v",
      inputSchema: { type: "object", properties: { v: { type: "object" } } },
      run: () => "ran",
    },
  });
  assert.equal(await tools.execute("t:v", { v: hostile }, ctx), "ran");
});
