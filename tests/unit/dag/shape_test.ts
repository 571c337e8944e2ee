/**
 * The fast shape pass accepts exactly what the zod schema accepts, and its
 * copies equal zod's output: checked on hand-picked edge cases and on
 * generated near-miss input.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { readTaskShapes, taskSchema } from "../../../src/dag/shape.ts";
import { validateDAG } from "../../../mod.ts";

/**
 * What zod alone says of one task: its output, or undefined when it refuses
 * it. As validation uses it: `arguments` is the input's own object (zod's
 * copy would lose a `__proto__` key) and fields given as undefined are left
 * out.
 */
function zodTask(task: unknown): unknown {
  const r = taskSchema.safeParse(task);
  if (!r.success) return undefined;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(r.data)) {
    if (value !== undefined) out[key] = value;
  }
  if (out.arguments !== undefined) out.arguments = (task as { arguments: unknown }).arguments;
  return out;
}

/** What the shape reader says of one task. */
function readTask(task: unknown): unknown {
  const read = readTaskShapes({ tasks: [task] });
  if (!("tasks" in read)) throw new Error("a tasks array was not read");
  return read.issues.length === 0 ? read.tasks[0] : undefined;
}

class WithGetter {
  get id() {
    return "a";
  }
  tool = "t";
}

const EDGE_CASES: [string, unknown][] = [
  ["minimal", { id: "a", tool: "t" }],
  ["empty id", { id: "", tool: "t" }],
  ["number id", { id: 1, tool: "t" }],
  ["unknown field", { id: "a", tool: "t", extra: 1 }],
  ["inherited field", Object.assign(Object.create({ extra: 1 }), { id: "a", tool: "t" })],
  ["inherited id", Object.assign(Object.create({ id: "a" }), { tool: "t" })],
  ["class instance with a getter", new WithGetter()],
  ["null-prototype task", Object.assign(Object.create(null), { id: "a", tool: "t" })],
  ["array task", ["a", "t"]],
  ["null task", null],
  ["undefined fields", { id: "a", tool: "t", arguments: undefined, dependsOn: undefined }],
  ["arguments null", { id: "a", tool: "t", arguments: null }],
  ["arguments array", { id: "a", tool: "t", arguments: [1] }],
  ["arguments string", { id: "a", tool: "t", arguments: "x" }],
  ["arguments null prototype", { id: "a", tool: "t", arguments: Object.create(null) }],
  ["arguments Map", { id: "a", tool: "t", arguments: new Map() }],
  ["arguments Date", { id: "a", tool: "t", arguments: new Date(0) }],
  ["arguments class instance", { id: "a", tool: "t", arguments: new WithGetter() }],
  ["arguments constructor key (string)", { id: "a", tool: "t", arguments: { constructor: "x" } }],
  ["arguments constructor key (function)", {
    id: "a",
    tool: "t",
    arguments: { constructor: WithGetter },
  }],
  ["arguments enumerable symbol", { id: "a", tool: "t", arguments: { [Symbol("s")]: 1 } }],
  ["arguments hidden symbol", {
    id: "a",
    tool: "t",
    arguments: Object.defineProperty({}, Symbol("s"), { value: 1, enumerable: false }),
  }],
  ["arguments __proto__ key", {
    id: "a",
    tool: "t",
    arguments: JSON.parse('{"__proto__":{"x":1}}'),
  }],
  ["dependsOn", { id: "a", tool: "t", dependsOn: ["b", "c"] }],
  ["dependsOn empty name", { id: "a", tool: "t", dependsOn: ["b", ""] }],
  ["dependsOn hole", { id: "a", tool: "t", dependsOn: [, "b"] }],
  ["dependsOn string", { id: "a", tool: "t", dependsOn: "b" }],
  ["depends_on", { id: "a", tool: "t", depends_on: ["b"] }],
  ["depends_on number", { id: "a", tool: "t", depends_on: [1] }],
  ["both spellings", { id: "a", tool: "t", dependsOn: ["b"], depends_on: ["c"] }],
  ["timeout", { id: "a", tool: "t", timeout: 1500 }],
  ["timeout 0", { id: "a", tool: "t", timeout: 0 }],
  ["timeout fraction", { id: "a", tool: "t", timeout: 1.5 }],
  ["timeout too big", { id: "a", tool: "t", timeout: 2 ** 31 }],
  ["timeout string", { id: "a", tool: "t", timeout: "10" }],
  ["timeout NaN", { id: "a", tool: "t", timeout: NaN }],
  ["retry", {
    id: "a",
    tool: "t",
    retry: { attempts: 3, delayMs: 10, factor: 1.5, maxDelayMs: 99 },
  }],
  ["retry attempts only", { id: "a", tool: "t", retry: { attempts: 1 } }],
  ["retry no attempts", { id: "a", tool: "t", retry: { delayMs: 10 } }],
  ["retry attempts 0", { id: "a", tool: "t", retry: { attempts: 0 } }],
  ["retry attempts 101", { id: "a", tool: "t", retry: { attempts: 101 } }],
  ["retry attempts 2.5", { id: "a", tool: "t", retry: { attempts: 2.5 } }],
  ["retry negative delay", { id: "a", tool: "t", retry: { attempts: 2, delayMs: -1 } }],
  ["retry infinite factor", { id: "a", tool: "t", retry: { attempts: 2, factor: Infinity } }],
  ["retry unknown key", { id: "a", tool: "t", retry: { attempts: 2, jitter: true } }],
  ["retry array", { id: "a", tool: "t", retry: [2] }],
  ["retry null", { id: "a", tool: "t", retry: null }],
];

for (const [name, task] of EDGE_CASES) {
  Deno.test(`shape: the fast pass agrees with zod on ${name}`, () => {
    assert.deepEqual(readTask(task), zodTask(task));
  });
}

Deno.test("shape: generated near-miss tasks get the same verdict and copy from both", () => {
  const name = fc.oneof(
    fc.constant(""),
    fc.string({ maxLength: 3 }),
    fc.integer(),
    fc.constant(null),
  );
  const value = fc.oneof(
    fc.constant(undefined),
    fc.constant(null),
    fc.integer(),
    fc.string({ maxLength: 2 }),
    fc.array(name, { maxLength: 3 }),
    fc.dictionary(fc.string({ maxLength: 2 }), fc.integer(), { maxKeys: 2 }),
  );
  const task = fc.oneof(
    fc.record({
      id: name,
      tool: name,
      arguments: value,
      dependsOn: value,
      depends_on: value,
      other: value,
      timeout: fc.oneof(value, fc.double(), fc.integer({ min: -2, max: 2 ** 31 })),
      retry: fc.oneof(
        value,
        fc.record({
          attempts: fc.oneof(fc.integer({ min: -1, max: 102 }), fc.double(), fc.string()),
          delayMs: fc.oneof(fc.integer({ min: -5, max: 5 }), fc.double(), fc.constant("1")),
          factor: fc.oneof(fc.double(), fc.constant(null)),
          maxDelayMs: fc.integer({ min: -1, max: 10 }),
          jitter: fc.boolean(),
        }, { requiredKeys: [] }),
      ),
    }, { requiredKeys: [] }),
    value,
  );
  fc.assert(
    fc.property(task, (t) => {
      assert.deepEqual(readTask(t), zodTask(t));
    }),
    { seed: 20261130, numRuns: 3000 },
  );
});

Deno.test("shape: copies are fresh, so normalising them leaves the caller's DAG alone", () => {
  const dependsOn = ["a"];
  const input = { tasks: [{ id: "a", tool: "t" }, { id: "b", tool: "t", depends_on: dependsOn }] };
  const result = validateDAG(input);
  assert.ok(result.ok);
  assert.deepEqual(result.dag.tasks[1], { id: "b", tool: "t", dependsOn: ["a"] });
  assert.deepEqual(input.tasks[1], { id: "b", tool: "t", depends_on: ["a"] });
  assert.notEqual(result.dag.tasks[1].dependsOn, dependsOn);
});

Deno.test("shape: one malformed task among good ones is reported, the good ones are still read", () => {
  const read = readTaskShapes({
    tasks: [{ id: "a", tool: "t" }, { id: "b", tool: 2 }, { id: "c", tool: "t", dependsOn: ["a"] }],
  });
  assert.ok("tasks" in read);
  assert.deepEqual(read.tasks, [
    { id: "a", tool: "t" },
    undefined,
    { id: "c", tool: "t", dependsOn: ["a"] },
  ]);
  assert.deepEqual(read.issues, [
    { path: "tasks[1].tool", message: "Invalid input: expected string, received number" },
  ]);
});
