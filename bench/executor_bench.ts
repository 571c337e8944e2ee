/**
 * Core executor benchmarks (`deno task bench`). See docs/BENCHMARKS.md; for
 * the median table with ratios run `deno task bench:report`.
 *
 * - group `noop-10k`: one run of a 10,000-task random DAG with a no-op tool,
 *   dagstream vs p-graph (baseline: p-graph new+run). async.auto is left out
 *   here: its graph check is O(V²) and takes ~15 s per run at this size.
 * - group `noop-1k`: the same generator at 1,000 tasks, async.auto included.
 * - group `timed-200`: one run of a 200-task DAG of 5-30 ms sleeps; compare
 *   the times with the critical path printed at the top.
 *
 * @module
 */

import {
  criticalPathMs,
  layeredIdealMs,
  noopRunners,
  type Runner,
  smallNoopDag,
  smallNoopRunners,
  timedRunners,
  verifyNoopRunners,
} from "./executor_cases.ts";

await verifyNoopRunners();
await verifyNoopRunners(smallNoopDag);
console.log(
  `timed-200: critical path ${criticalPathMs} ms, layered ideal ${layeredIdealMs} ms`,
);

function add(group: string, suffix: string, runners: Record<string, Runner>, baseline: string) {
  for (const [name, fn] of Object.entries(runners)) {
    Deno.bench({
      name: `${name} ${suffix}`,
      group,
      baseline: name === baseline,
      fn: async () => {
        await fn();
      },
    });
  }
}

const { "async.auto": _quadratic, ...noop10k } = noopRunners;
add("noop-10k", "(10k no-op tasks)", noop10k, "p-graph new+run()");
add("noop-1k", "(1k no-op tasks)", { ...smallNoopRunners }, "p-graph new+run()");

for (const [name, fn] of Object.entries(timedRunners)) {
  Deno.bench({
    name: `${name} (200 timed tasks)`,
    group: "timed-200",
    baseline: name === "dagstream eager",
    // Each run is hundreds of ms of timers: a few samples are enough.
    warmup: 2,
    n: 10,
    fn: async () => {
      await fn();
    },
  });
}
