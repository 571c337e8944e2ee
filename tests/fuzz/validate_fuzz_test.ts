/**
 * Fuzzing the DAG validator (`validateDAG`), in process: any JSON value,
 * wrong types at every level, cycles of every length, duplicate ids,
 * thousands of tasks, deep nesting, huge strings and prototype-named keys.
 *
 * Invariant: it never throws; an invalid input gets issues naming where the
 * problem is; a valid one gets layers in which every task appears once, after
 * all of its dependencies.
 *
 * Short profile: `deno task test tests/fuzz/`. Long profile:
 * `DAGSTREAM_FUZZ_RUNS=20000 deno task test tests/fuzz/validate_fuzz_test.ts`.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { type PreparedDAG, validateDAG, type ValidationResult } from "../../mod.ts";
import {
  count,
  expectedKind,
  fuzz,
  pathsOf,
  pathText,
  type PlainTask,
  printSummary,
  runsFor,
  validDag,
  withValueAt,
  wrongTyped,
} from "./_fuzz.ts";

/** `(root)`, or `tasks` followed by `[3]`, `.name` or `["odd key"]` segments. */
const PATH = /^(\(root\)|tasks(\[\d+\]|\.[A-Za-z_$][\w$]*|\["(?:[^"\\]|\\.)*"\])*)$/;

/** Checks the shape every result must have, and returns it. */
function check(input: unknown, options?: Parameters<typeof validateDAG>[1]): ValidationResult {
  const result = validateDAG(input, options);
  if (result.ok) assertLayered(result.dag);
  else {
    assert.ok(result.issues.length > 0, "an invalid DAG has at least one issue");
    for (const issue of result.issues) {
      assert.equal(typeof issue.path, "string");
      assert.match(issue.path, PATH, issue.path);
      assert.equal(typeof issue.message, "string");
      assert.ok(issue.message.length > 0);
    }
  }
  return result;
}

/** Every task in exactly one layer, after all its dependencies; layers in declaration order. */
function assertLayered(dag: PreparedDAG): void {
  const layerOf = new Int32Array(dag.tasks.length).fill(-1);
  dag.layers.forEach((layer, k) => {
    for (let x = 0; x < layer.length; x++) {
      assert.equal(layerOf[layer[x]], -1, "a task appears in one layer only");
      layerOf[layer[x]] = k;
      if (x > 0) assert.ok(layer[x - 1] < layer[x], "a layer keeps declaration order");
    }
  });
  for (let i = 0; i < dag.tasks.length; i++) {
    assert.ok(layerOf[i] >= 0, "every task is in a layer");
    for (const d of dag.graph.deps[i]) assert.ok(layerOf[d] < layerOf[i], "deps come first");
  }
}

function issuesOf(result: ValidationResult) {
  assert.equal(result.ok, false, "expected the DAG to be refused");
  return (result as { issues: { path: string; message: string }[] }).issues;
}

Deno.test("fuzz validateDAG: any JSON value never throws; issues name a path", async () => {
  await fuzz(
    "any JSON value",
    fc.property(fc.jsonValue({ maxDepth: 6 }), (value) => void check(value)),
    runsFor(500, 1),
  );
  await fuzz(
    "objects shaped like DAGs",
    fc.property(
      fc.record({
        tasks: fc.array(
          fc.dictionary(
            fc.constantFrom("id", "tool", "arguments", "dependsOn", "depends_on", "x", "__proto__"),
            fc.jsonValue({ maxDepth: 3 }),
          ),
          { maxLength: 8 },
        ),
      }),
      (value) => void check(value),
    ),
    runsFor(500, 1),
  );
  await fuzz(
    "any JS value (non-JSON: undefined, functions, symbols, class instances)",
    fc.property(fc.anything({ withBigInt: true, withDate: true, withMap: true }), (value) => {
      check({ tasks: [value] });
      check(value);
    }),
    runsFor(300, 0.5),
  );
});

Deno.test("fuzz validateDAG: valid DAGs are accepted and layered", async () => {
  await fuzz(
    "valid DAGs",
    fc.property(validDag(20), fc.boolean(), (dag, snake) => {
      if (snake) {
        for (const task of dag.tasks as (PlainTask & { depends_on?: string[] })[]) {
          if (task.dependsOn) [task.depends_on, task.dependsOn] = [task.dependsOn, undefined];
        }
      }
      const result = check(JSON.parse(JSON.stringify(dag)));
      assert.equal(result.ok, true, JSON.stringify(result));
    }),
    runsFor(300, 1),
  );
});

Deno.test("fuzz validateDAG: a wrong type at any level is named by its path", async () => {
  const mutated = validDag(6).chain((dag) =>
    fc.constantFrom(...pathsOf(dag)).chain((path) =>
      wrongTyped(expectedKind(path)).map((value) => ({ dag, path, value }))
    )
  );
  await fuzz(
    "wrong-typed value at every level",
    fc.property(mutated, ({ dag, path, value }) => {
      const issues = issuesOf(check(withValueAt(dag, path, value)));
      const where = pathText(path);
      assert.ok(
        issues.some((i) => i.path === where),
        `expected an issue at ${where}, got ${JSON.stringify(issues)}`,
      );
    }),
    runsFor(500, 1),
  );
  await fuzz(
    "empty strings, unknown fields, both spellings, unknown dependencies",
    fc.property(
      validDag(6),
      fc.nat(),
      fc.constantFrom("empty-id", "empty-tool", "unknown-field", "both", "unknown-dep"),
      (dag, pick, kind) => {
        const i = pick % dag.tasks.length;
        const copy = structuredClone(dag) as unknown as { tasks: Record<string, unknown>[] };
        const task = copy.tasks[i];
        let where: string;
        if (kind === "empty-id") [task.id, where] = ["", `tasks[${i}].id`];
        else if (kind === "empty-tool") [task.tool, where] = ["", `tasks[${i}].tool`];
        else if (kind === "unknown-field") [task.dependson, where] = [[], `tasks[${i}].dependson`];
        else if (kind === "both") {
          task.dependsOn ??= [];
          task.depends_on = [];
          where = `tasks[${i}].depends_on`;
        } else {
          task.dependsOn = [...((task.dependsOn as string[]) ?? []), "nope"];
          where = `tasks[${i}].dependsOn[${(task.dependsOn as string[]).length - 1}]`;
        }
        const issues = issuesOf(check(copy));
        assert.ok(issues.some((x) => x.path === where), `${where}: ${JSON.stringify(issues)}`);
      },
    ),
    runsFor(300, 0.5),
  );
});

/** `tasks` forming one cycle of length `k`: `c0 -> c1 -> ... -> c(k-1) -> c0` (x -> y: x waits for y). */
function cycleTasks(k: number, via: (i: number) => "dependsOn" | "depends_on" | "ref") {
  return Array.from({ length: k }, (_, i) => {
    const next = `c${(i + 1) % k}`;
    const task: Record<string, unknown> = { id: `c${i}`, tool: "mock:echo" };
    const how = via(i);
    if (how === "ref") task.arguments = { x: { y: [`$OUTPUT[${next}].v`] } };
    else task[how] = [next];
    return task;
  });
}

function assertCycleMessage(issues: { path: string; message: string }[], graph: Set<string>) {
  assert.equal(issues.length, 1, JSON.stringify(issues));
  const match = /^Circular dependency detected: (.+)$/.exec(issues[0].message);
  assert.ok(match, issues[0].message);
  const names = match[1].split(" -> ");
  assert.ok(names.length >= 2);
  assert.equal(names[0], names.at(-1), "the cycle is closed");
  for (let x = 0; x + 1 < names.length; x++) {
    assert.ok(graph.has(`${names[x]}>${names[x + 1]}`), `${names[x]} waits for ${names[x + 1]}`);
  }
  return names;
}

Deno.test("validateDAG: cycles of every length from 1 to 1000 are named in full", () => {
  for (let k = 1; k <= 1000; k++) {
    const via = (i: number) => (["dependsOn", "depends_on", "ref"] as const)[(i * 7 + k) % 3];
    const tasks = cycleTasks(k, via);
    const edges = new Set(tasks.map((_, i) => `c${i}>c${(i + 1) % k}`));
    const names = assertCycleMessage(issuesOf(check({ tasks })), edges);
    assert.equal(names.length, k + 1, `the whole cycle of ${k} is named`);
    assert.equal(new Set(names).size, k);
  }
  count("cycles of every length 1..1000 (exhaustive)", 1000);
});

Deno.test("fuzz validateDAG: a cycle hidden in a random DAG is found and is a real cycle", async () => {
  const arb = fc.record({
    dag: validDag(30),
    cycleLength: fc.integer({ min: 1, max: 30 }),
    picks: fc.array(fc.nat(), { minLength: 30, maxLength: 30 }),
    shuffle: fc.array(fc.nat(), { minLength: 30, maxLength: 30 }),
    via: fc.constantFrom("dependsOn", "ref"),
  });
  await fuzz(
    "cycle planted in a random DAG",
    fc.property(arb, ({ dag, cycleLength, picks, shuffle, via }) => {
      const tasks = structuredClone(dag.tasks) as (PlainTask & Record<string, unknown>)[];
      const n = tasks.length;
      // Distinct members of the cycle, in a random order.
      const members = [...new Set(picks.map((p) => p % n))].slice(0, Math.min(cycleLength, n));
      const edges = new Set<string>();
      for (const t of tasks) for (const d of t.dependsOn ?? []) edges.add(`${t.id}>${d}`);
      members.forEach((m, x) => {
        const next = tasks[members[(x + 1) % members.length]].id;
        edges.add(`${tasks[m].id}>${next}`);
        if (via === "ref") {
          tasks[m].arguments = { ...(tasks[m].arguments ?? {}), cyc: `$OUTPUT[${next}]` };
        } else tasks[m].dependsOn = [...(tasks[m].dependsOn ?? []), next];
      });
      // Declaration order must not matter.
      for (let x = n - 1; x > 0; x--) {
        const y = shuffle[x] % (x + 1);
        [tasks[x], tasks[y]] = [tasks[y], tasks[x]];
      }
      const issues = issuesOf(check({ tasks }));
      assertCycleMessage(issues, edges);
      assert.match(issues[0].path, /^tasks\[\d+\]\.(dependsOn)$/);
    }),
    runsFor(400, 1),
  );
});

Deno.test("fuzz validateDAG: duplicate ids are each named at their later occurrence", async () => {
  await fuzz(
    "duplicate ids",
    fc.property(
      validDag(10),
      fc.array(fc.nat(), { minLength: 1, maxLength: 5 }),
      (dag, picks) => {
        const tasks = structuredClone(dag.tasks) as PlainTask[];
        const copies: number[] = [];
        for (const p of picks) {
          const original = tasks[p % tasks.length];
          tasks.push({ id: original.id, tool: "mock:echo" });
          copies.push(tasks.length - 1);
        }
        const issues = issuesOf(check({ tasks }));
        for (const c of copies) {
          assert.ok(
            issues.some((i) => i.path === `tasks[${c}].id` && /duplicate id/.test(i.message)),
            `tasks[${c}].id: ${JSON.stringify(issues)}`,
          );
        }
        assert.ok(
          !issues.some((i) =>
            /^tasks\[(\d+)\]\.id$/.test(i.path) && !copies.includes(
              Number(/\d+/.exec(i.path)![0]),
            )
          ),
          "a first occurrence is never named a duplicate",
        );
      },
    ),
    runsFor(300, 0.5),
  );
});

Deno.test("fuzz validateDAG: thousands of tasks, long chains and limits", async () => {
  await fuzz(
    "task count against maxTasks",
    fc.property(
      fc.integer({ min: 0, max: 5000 }),
      fc.integer({ min: 1, max: 5000 }),
      (n, maxTasks) => {
        const tasks = Array.from({ length: n }, (_, i) => ({
          id: `t${i}`,
          tool: "mock:echo",
          dependsOn: i > 0 ? [`t${i - 1}`] : undefined,
        }));
        const result = check({ tasks }, { maxTasks });
        if (n <= maxTasks) {
          assert.equal(result.ok, true);
          assert.equal((result as { dag: PreparedDAG }).dag.layers.length, n);
        } else {
          const issues = issuesOf(result);
          assert.deepEqual(issues.map((i) => i.path), ["tasks"]);
          assert.match(issues[0].message, /too many tasks/);
        }
      },
    ),
    runsFor(40, 0.02),
  );
  // Very long chains and cycles: no recursion to overflow.
  for (const n of [10_000, 100_000]) {
    const chain = Array.from({ length: n }, (_, i) => ({
      id: `t${i}`,
      tool: "x",
      dependsOn: i > 0 ? [`t${i - 1}`] : [],
    }));
    assert.equal(check({ tasks: chain }, { maxTasks: n }).ok, true);
    chain[0].dependsOn = [`t${n - 1}`];
    const issues = issuesOf(check({ tasks: chain }, { maxTasks: n }));
    assert.match(issues[0].message, /^Circular dependency detected: /);
  }
  count("chains and cycles of 10,000 and 100,000 tasks", 4);
});

Deno.test("fuzz validateDAG: nesting depth, huge strings, prototype-named keys", async () => {
  const nest = (depth: number, leaf: unknown = 1) => {
    let value: unknown = leaf;
    for (let d = 1; d < depth; d++) value = d % 2 ? [value] : { k: value };
    return value;
  };
  await fuzz(
    "arguments nested to any depth",
    fc.property(fc.integer({ min: 1, max: 3000 }), (depth) => {
      // The arguments object is level 1; nest(depth) adds depth - 1 containers
      // below it, so the deepest container is at level `depth`.
      const result = check({ tasks: [{ id: "a", tool: "t", arguments: { v: nest(depth) } }] });
      if (depth <= 64) assert.equal(result.ok, true, `depth ${depth}`);
      else {
        assert.deepEqual(issuesOf(result).map((i) => i.path), ["tasks[0].arguments"]);
      }
    }),
    runsFor(200, 0.1),
  );
  for (const depth of [100_000, 1_000_000]) {
    const deep = JSON.parse("[".repeat(depth) + "]".repeat(depth));
    for (
      const input of [
        { tasks: [{ id: "a", tool: "t", arguments: { v: deep } }] },
        { tasks: [{ id: deep, tool: "t" }] },
        { tasks: deep },
        deep,
      ]
    ) check(input);
  }
  count("nesting of 100,000 and 1,000,000 levels at four places", 8);
  await fuzz(
    "huge strings anywhere",
    fc.property(
      fc.integer({ min: 1, max: 2_000_000 }),
      fc.constantFrom("id", "tool", "dep", "key", "value", "field"),
      fc.string({ minLength: 1, maxLength: 4 }),
      (size, where, unit) => {
        const huge = unit.repeat(Math.ceil(size / unit.length));
        const task: Record<string, unknown> = { id: "a", tool: "t" };
        if (where === "id") task.id = huge;
        if (where === "tool") task.tool = huge;
        if (where === "dep") task.dependsOn = [huge];
        if (where === "key") task.arguments = { [huge]: 1 };
        if (where === "value") task.arguments = { v: huge };
        if (where === "field") task[huge] = 1;
        const result = check({ tasks: [task] });
        assert.equal(result.ok, where !== "dep" && where !== "field" && huge !== "a");
      },
    ),
    runsFor(60, 0.01),
  );
  await fuzz(
    "prototype-named ids, tools and keys",
    fc.property(
      fc.constantFrom("__proto__", "constructor", "prototype", "toString", "hasOwnProperty"),
      fc.jsonValue({ maxDepth: 2 }),
      (name, value) => {
        const input = JSON.parse(JSON.stringify({
          tasks: [
            { id: name, tool: name, arguments: { x: 1 } },
            {
              id: "b",
              tool: "t",
              dependsOn: [name],
              arguments: { ref: `$OUTPUT[${name}].${name}`, v: value },
            },
          ],
        }));
        // A key spelled "__proto__" in JSON text is an own property, never a prototype.
        input.tasks[0].arguments = JSON.parse(
          `{${JSON.stringify(name)}: ${JSON.stringify(value)}}`,
        );
        const result = check(input);
        assert.equal(result.ok, true);
        const args = (result as { dag: PreparedDAG }).dag.tasks[0].arguments!;
        assert.ok(Object.hasOwn(args, name), `arguments keep their own "${name}" key`);
        assert.equal(Object.getPrototypeOf(args), Object.prototype, "no prototype injected");
        assert.deepEqual(JSON.parse(JSON.stringify(args)), {
          [name]: JSON.parse(JSON.stringify(value)), // -0 comes back as 0
        });
      },
    ),
    runsFor(200, 0.1),
  );
});

Deno.test("fuzz summary (validator)", () => printSummary("validateDAG"));
