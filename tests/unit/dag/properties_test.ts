/**
 * Property tests over random DAGs: fast-check generates the graph, which
 * tasks fail, the scheduling options, and (through `fc.scheduler`) the order
 * in which tool calls finish.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  type DAGExecutionResult,
  type DAGStructure,
  type ExecutorConfig,
  ParallelExecutor,
  type Task,
  type ToolExecutor,
  validateDAG,
} from "../../../mod.ts";

const RUNS = { seed: 42, numRuns: 100 };
const MOD = 1_000_003;

/** One generated task: its dependencies (indices of earlier tasks) and whether its tool fails. */
interface GenTask {
  deps: number[];
  /** For each earlier task, whether a dependency on it is written only as a $OUTPUT reference. */
  refOnly: boolean[];
  fails: boolean;
}

/** A generated DAG: tasks in generation (topological) order, declared in `order`. */
interface GenDAG {
  tasks: GenTask[];
  order: number[];
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

const genDAG: fc.Arbitrary<GenDAG> = fc.integer({ min: 1, max: 14 }).chain((n) =>
  fc.record({
    tasks: fc.tuple(
      ...range(n).map((i) =>
        fc.record({
          deps: fc.subarray(range(i)),
          refOnly: fc.array(fc.boolean(), { minLength: i, maxLength: i }),
          fails: fc.integer({ min: 0, max: 5 }).map((x) => x === 0),
        })
      ),
    ),
    order: fc.shuffledSubarray(range(n), { minLength: n, maxLength: n }),
  })
);

const genConfig: fc.Arbitrary<ExecutorConfig> = fc.record({
  scheduling: fc.constantFrom("eager" as const, "layered" as const),
  maxConcurrency: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
});

/**
 * The DAG to run: task `t<i>` adds its inputs; each dependency is passed as
 * `$OUTPUT[t<d>].value` and listed in dependsOn unless it is reference-only.
 */
function toDAG(g: GenDAG): DAGStructure {
  return {
    tasks: g.order.map((i) => {
      const t = g.tasks[i];
      const task: Task = {
        id: `t${i}`,
        tool: "calc",
        arguments: { own: i, inputs: t.deps.map((d) => `$OUTPUT[t${d}].value`) },
      };
      const listed = t.deps.filter((d) => !t.refOnly[d]);
      if (listed.length > 0 || i % 2 === 0) task.dependsOn = listed.map((d) => `t${d}`);
      return task;
    }),
  };
}

interface Model {
  ok: boolean[];
  depsOk: boolean[];
  value: number[];
  depth: number[];
}

/** What a correct run must produce, worked out directly. */
function modelOf(g: GenDAG): Model {
  const n = g.tasks.length;
  const m: Model = { ok: [], depsOk: [], value: [], depth: [] };
  for (let i = 0; i < n; i++) {
    const { deps, fails } = g.tasks[i];
    m.depsOk[i] = deps.every((d) => m.ok[d]);
    m.ok[i] = m.depsOk[i] && !fails;
    m.value[i] = (i + 1 + 2 * deps.reduce((sum, d) => sum + (m.value[d] ?? 0), 0)) % MOD;
    m.depth[i] = deps.length === 0 ? 0 : 1 + Math.max(...deps.map((d) => m.depth[d]));
  }
  return m;
}

/** Everything a run's tool calls did. */
interface Trace {
  calls: number[];
  finished: Set<number>;
  violations: string[];
  active: number;
  maxActive: number;
}

/**
 * The `calc` tool, its completions ordered by the fast-check scheduler. With
 * `layeredModel`, also checks that every task of an earlier layer that runs
 * has finished before a task starts.
 */
function calcTool(
  g: GenDAG,
  s: fc.Scheduler,
  trace: Trace,
  options: { onCall?: () => void; layeredModel?: Model } = {},
): ToolExecutor {
  const { onCall, layeredModel: lm } = options;
  return async (_tool, args, ctx) => {
    const i = Number(ctx.taskId.slice(1));
    trace.calls.push(i);
    for (const d of g.tasks[i].deps) {
      if (!trace.finished.has(d)) trace.violations.push(`t${i} called before t${d} finished`);
    }
    if (lm !== undefined) {
      for (let j = 0; j < g.tasks.length; j++) {
        if (lm.depth[j] < lm.depth[i] && lm.depsOk[j] && !trace.finished.has(j)) {
          trace.violations.push(`layered: t${i} called before t${j} of an earlier layer finished`);
        }
      }
    }
    trace.active++;
    trace.maxActive = Math.max(trace.maxActive, trace.active);
    onCall?.();
    await s.schedule(Promise.resolve(), ctx.taskId);
    trace.active--;
    trace.finished.add(i);
    if (g.tasks[i].fails) throw new Error(`boom t${i}`);
    const inputs = args.inputs as number[];
    return { value: (i + 1 + 2 * inputs.reduce((sum, v) => sum + v, 0)) % MOD };
  };
}

function newTrace(): Trace {
  return { calls: [], finished: new Set(), violations: [], active: 0, maxActive: 0 };
}

function countCalls(trace: Trace, i: number): number {
  return trace.calls.filter((c) => c === i).length;
}

function assertCounts(result: DAGExecutionResult, n: number): void {
  assert.equal(result.totalTasks, n);
  assert.equal(result.results.length, n);
  assert.equal(result.successfulTasks + result.failedTasks, n);
  assert.equal(result.errors.length, result.failedTasks);
  assert.equal(result.results.filter((r) => r.status === "success").length, result.successfulTasks);
  assert.deepEqual(
    result.errors.map((e) => e.taskId),
    result.results.filter((r) => r.status === "error").map((r) => r.taskId),
  );
}

Deno.test("property: a run matches the model, whatever the order tools finish in", async () => {
  await fc.assert(
    fc.asyncProperty(genDAG, genConfig, fc.scheduler(), async (g, config, s) => {
      const n = g.tasks.length;
      const m = modelOf(g);
      const trace = newTrace();
      const dag = toDAG(g);
      const layeredModel = config.scheduling === "layered" ? m : undefined;
      const executor = new ParallelExecutor(calcTool(g, s, trace, { layeredModel }), config);
      const result = await s.waitFor(executor.execute(dag));

      assert.deepEqual(trace.violations, []);
      assert.deepEqual(result.results.map((r) => r.taskId), dag.tasks.map((t) => t.id));
      assertCounts(result, n);
      assert.equal(result.parallelizationLayers, Math.max(...m.depth) + 1);
      if (config.maxConcurrency !== undefined) {
        assert.ok(trace.maxActive <= config.maxConcurrency, "maxConcurrency holds");
      }
      for (const r of result.results) {
        const i = Number(r.taskId.slice(1));
        // called exactly once when no dependency failed, never otherwise
        assert.equal(countCalls(trace, i), m.depsOk[i] ? 1 : 0, `calls of t${i}`);
        assert.equal(r.status, m.ok[i] ? "success" : "error", `status of t${i}`);
        if (m.ok[i]) assert.deepEqual(r.output, { value: m.value[i] });
        else if (m.depsOk[i]) assert.equal(r.error, `boom t${i}`);
        else {
          const named = /^Dependency t(\d+) failed$/.exec(r.error ?? "");
          assert.ok(named, `t${i}: ${r.error}`);
          const d = Number(named[1]);
          assert.ok(g.tasks[i].deps.includes(d) && !m.ok[d], `t${i} blames t${d}`);
          assert.equal(r.executionTimeMs, 0);
        }
      }
    }),
    RUNS,
  );
});

Deno.test("property: eager and layered, bounded or not, give the same statuses and outputs", async () => {
  const configs: ExecutorConfig[] = [
    { scheduling: "eager" },
    { scheduling: "layered" },
    { scheduling: "eager", maxConcurrency: 2 },
    { scheduling: "layered", maxConcurrency: 2 },
    { scheduling: "eager", maxConcurrency: 1 },
  ];
  await fc.assert(
    fc.asyncProperty(genDAG, fc.scheduler(), async (g, s) => {
      const outcomes: unknown[] = [];
      for (const config of configs) {
        const trace = newTrace();
        const executor = new ParallelExecutor(calcTool(g, s, trace), config);
        const result = await s.waitFor(executor.execute(toDAG(g)));
        assert.deepEqual(trace.violations, []);
        outcomes.push(result.results.map((r) => [r.taskId, r.status, r.output]));
        assert.deepEqual(outcomes.at(-1), outcomes[0], JSON.stringify(config));
      }
    }),
    RUNS,
  );
});

Deno.test("property: cancelling mid-run settles every task and starts nothing more", async () => {
  await fc.assert(
    fc.asyncProperty(
      genDAG,
      genConfig,
      fc.integer({ min: 1, max: 14 }),
      fc.scheduler(),
      async (g, config, abortAt, s) => {
        const n = g.tasks.length;
        const m = modelOf(g);
        const trace = newTrace();
        const controller = new AbortController();
        const tool = calcTool(g, s, trace, {
          onCall: () => {
            if (trace.calls.length === abortAt) controller.abort("stop");
          },
        });
        const executor = new ParallelExecutor(tool, config);
        const result = await s.waitFor(
          executor.execute(toDAG(g), { signal: controller.signal }),
        );
        await s.waitIdle();

        assert.deepEqual(trace.violations, []);
        assertCounts(result, n);
        const aborted = controller.signal.aborted;
        assert.equal(trace.calls.length, aborted ? abortAt : trace.calls.length);
        for (const r of result.results) {
          const i = Number(r.taskId.slice(1));
          assert.ok(countCalls(trace, i) <= 1);
          if (r.status === "success") {
            assert.ok(m.ok[i] && trace.finished.has(i));
            assert.deepEqual(r.output, { value: m.value[i] });
          } else {
            assert.match(r.error!, /^(aborted: stop|Dependency t\d+ failed|boom t\d+)$/);
            if (countCalls(trace, i) === 0) assert.equal(r.executionTimeMs, 0);
          }
          if (!aborted) assert.equal(r.status, m.ok[i] ? "success" : "error");
        }
      },
    ),
    RUNS,
  );
});

Deno.test("property: layers follow the longest dependency path, in declaration order", () => {
  fc.assert(
    fc.property(genDAG, (g) => {
      const m = modelOf(g);
      const result = validateDAG(toDAG(g));
      assert.ok(result.ok);
      const { layers, tasks } = result.dag;
      assert.equal(layers.length, Math.max(...m.depth) + 1);
      const seen = new Set<number>();
      layers.forEach((layer, k) => {
        assert.deepEqual(layer, [...layer].sort((a, b) => a - b));
        for (const index of layer) {
          seen.add(index);
          assert.equal(m.depth[Number(tasks[index].id.slice(1))], k);
        }
      });
      assert.equal(seen.size, g.tasks.length);
    }),
    RUNS,
  );
});

Deno.test("property: a back edge makes a cycle, and the named cycle is real", () => {
  const withBackEdge = genDAG
    .filter((g) => g.tasks.some((t) => t.deps.length > 0))
    .chain((g) => {
      const candidates = range(g.tasks.length).filter((j) => g.tasks[j].deps.length > 0);
      return fc.tuple(fc.constant(g), fc.constantFrom(...candidates), fc.nat());
    });
  fc.assert(
    fc.property(withBackEdge, ([g, j, pick]) => {
      const i = g.tasks[j].deps[pick % g.tasks[j].deps.length];
      const dag = toDAG(g);
      const ti = dag.tasks.find((t) => t.id === `t${i}`)!;
      ti.dependsOn = [...(ti.dependsOn ?? []), `t${j}`];
      const result = validateDAG(dag);
      assert.ok(!result.ok);
      assert.equal(result.issues.length, 1);
      const message = result.issues[0].message;
      const prefix = "Circular dependency detected: ";
      assert.ok(message.startsWith(prefix), message);
      const names = message.slice(prefix.length).split(" -> ");
      assert.ok(names.length >= 3);
      assert.equal(names[0], names.at(-1));
      const depsOf = (id: string) => {
        const k = Number(id.slice(1));
        return new Set([...g.tasks[k].deps.map((d) => `t${d}`), ...(k === i ? [`t${j}`] : [])]);
      };
      for (let k = 0; k + 1 < names.length; k++) {
        assert.ok(depsOf(names[k]).has(names[k + 1]), `${names[k]} depends on ${names[k + 1]}`);
      }
    }),
    RUNS,
  );
});

Deno.test("property: every unknown dependency is reported, each at its own path", () => {
  const withBadDeps = genDAG.chain((g) =>
    fc.tuple(fc.constant(g), fc.subarray(range(g.tasks.length), { minLength: 1 }))
  );
  fc.assert(
    fc.property(withBadDeps, ([g, broken]) => {
      const dag = toDAG(g);
      const expected: string[] = [];
      dag.tasks.forEach((task, pos) => {
        if (!broken.includes(pos)) return;
        task.dependsOn = [...(task.dependsOn ?? []), `missing${pos}`];
        expected.push(`tasks[${pos}].dependsOn[${task.dependsOn.length - 1}]`);
      });
      const result = validateDAG(dag);
      assert.ok(!result.ok);
      assert.deepEqual(result.issues.map((issue) => issue.path), expected);
    }),
    RUNS,
  );
});
