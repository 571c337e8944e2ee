/**
 * Runs one dagstream call of the core executor benchmark many times in a
 * row, and nothing else, so that a CPU profile (`--cpu-prof`) of the
 * process shows where that call's time goes; `bench/self_time.ts` sums it
 * up.
 *
 * ```sh
 * deno run --cpu-prof --cpu-prof-dir=/tmp/prof bench/executor_profile.ts --call execute --runs 200
 * deno run --allow-read=/tmp/prof bench/self_time.ts /tmp/prof
 * ```
 *
 * `--call`: `execute` (validation included) or `runPrepared` (the
 * scheduler alone, on a DAG validated once); `--size`: 10000 (default) or a
 * multiple of it, e.g. 100000.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { makeLinearCase, NOOP_SIZE, noopRunners, type Runner } from "./executor_cases.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    call: { type: "string", default: "execute" },
    size: { type: "string", default: String(NOOP_SIZE) },
    runs: { type: "string", default: "200" },
  },
});
const runs = Number(values.runs);
const size = Number(values.size);
if (!Number.isInteger(runs) || runs < 1) throw new RangeError("--runs must be a whole number ≥ 1");
if (values.call !== "execute" && values.call !== "runPrepared") {
  throw new Error(`--call must be execute or runPrepared, got ${values.call}`);
}
let runner: Runner;
if (size === NOOP_SIZE) {
  runner =
    noopRunners[values.call === "execute" ? "dagstream execute()" : "dagstream runPrepared()"];
} else {
  const linear = makeLinearCase(size);
  runner = linear.runners[`${values.call}() ${size / 1000}k`];
}
const t0 = performance.now();
for (let k = 0; k < runs; k++) await runner();
const ms = performance.now() - t0;
console.log(
  `${values.call}() on ${size} tasks: ${runs} runs in ${ms.toFixed(0)} ms ` +
    `(${((ms * 1000) / (runs * size)).toFixed(2)} µs/task)`,
);
