/**
 * Prints the core executor figures of docs/BENCHMARKS.md as Markdown tables:
 * medians over many interleaved runs, µs per task and ratios to p-graph, and
 * makespan over critical path for eager and layered scheduling.
 *
 * ```sh
 * deno task bench:report            # 30 warm-up + 100 measured rounds
 * deno task bench:report --runs 100 --warmup 50 --async-10k-runs 0
 * ```
 *
 * Each round runs every implementation once, in a rotating order, so drift
 * (machine load, CPU frequency, heap growth) spreads evenly over them, and
 * ratios are also given per round. Every no-op sample records wall-clock time
 * and the process's CPU time (user + system, all threads, GC helpers
 * included): on a shared machine other processes inflate wall time but not
 * CPU time, so the CPU figures are the load-independent ones.
 *
 * The heap is left alone between samples (a run may pay for a GC of the
 * previous run's garbage; the rotation spreads that too). With
 * `--v8-flags=--expose-gc` a full GC runs before each sample instead; that
 * shrinks the young generation and makes every run slower, so it is not the
 * default.
 *
 * @module
 */

import process from "node:process";
import { parseArgs } from "node:util";
import {
  criticalPath,
  criticalPathMs,
  DELAY_RANGE,
  layeredIdealMs,
  NOOP_SEED,
  NOOP_SIZE,
  noopEdges,
  noopLayers,
  noopRunners,
  type Runner,
  sequentialMs,
  SMALL_NOOP_SIZE,
  smallNoopDag,
  smallNoopRunners,
  TIMED_SEED,
  TIMED_SIZE,
  timedLayers,
  timedRunners,
  verifyNoopRunners,
} from "./executor_cases.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    warmup: { type: "string", default: "30" },
    runs: { type: "string", default: "100" },
    "timed-warmup": { type: "string", default: "3" },
    "timed-runs": { type: "string", default: "15" },
    "async-10k-runs": { type: "string", default: "3" },
  },
});
const count = (name: keyof typeof flags): number => {
  const n = Number(flags[name]);
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`--${name} must be a whole number`);
  return n;
};

const gc = (globalThis as { gc?: () => void }).gc;

function quantile(sorted: number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

interface Summary {
  mean: number;
  median: number;
  p10: number;
  p90: number;
  n: number;
}

function summarise(samples: number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    mean: sorted.reduce((a, b) => a + b, 0) / sorted.length,
    median: quantile(sorted, 0.5),
    p10: quantile(sorted, 0.1),
    p90: quantile(sorted, 0.9),
    n: sorted.length,
  };
}

/** One implementation's samples, aligned by round: `wall[r]` and `cpu[r]` are round r's, in ms. */
interface Samples {
  wall: number[];
  cpu: number[];
}

/** Runs every runner once per round, rotating the order. */
async function measure(
  runners: Record<string, Runner>,
  warmup: number,
  runs: number,
): Promise<Map<string, Samples>> {
  const names = Object.keys(runners);
  const samples = new Map(names.map((n) => [n, { wall: [], cpu: [] } as Samples]));
  for (let round = 0; round < warmup + runs; round++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(round + k) % names.length];
      gc?.();
      const cpu0 = process.cpuUsage();
      const wall0 = performance.now();
      await runners[name]();
      const wall = performance.now() - wall0;
      const cpu = process.cpuUsage(cpu0);
      if (round >= warmup) {
        const s = samples.get(name)!;
        s.wall.push(wall);
        s.cpu.push((cpu.user + cpu.system) / 1000);
      }
    }
  }
  return samples;
}

const f = (x: number, digits = 2) => x.toFixed(digits);
const range = (s: Summary, digits = 2) => `${f(s.p10, digits)}–${f(s.p90, digits)}`;

/** 1, 5 and 15 minute load averages (other processes skew wall-clock figures). */
function loadAverage(): string {
  try {
    return Deno.loadavg().map((x) => x.toFixed(2)).join(" ");
  } catch {
    return "unknown (run with --allow-sys=loadavg)";
  }
}

function noopTable(size: number, samples: Map<string, Samples>): string {
  const cpu = new Map([...samples].map(([n, s]) => [n, summarise(s.cpu)]));
  const wall = new Map([...samples].map(([n, s]) => [n, summarise(s.wall)]));
  const pgFull = cpu.get("p-graph new+run()")!.mean;
  const pgRun = cpu.get("p-graph run()")!.mean;
  const rows = [
    "| implementation | CPU ms mean | µs/task (CPU mean) | CPU ms median (p10–p90) | wall ms median (p10–p90) | CPU mean ÷ p-graph new+run() | CPU mean ÷ p-graph run() | runs |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const [name, c] of cpu) {
    const w = wall.get(name)!;
    rows.push(
      `| ${name} | ${f(c.mean)} | ${f((c.mean * 1000) / size)} | ${f(c.median)} (${range(c)}) | ${
        f(w.median)
      } (${range(w)}) | ${f(c.mean / pgFull)} | ${f(c.mean / pgRun)} | ${c.n} |`,
    );
  }
  return rows.join("\n");
}

/** Ratios of `a` to `b`: of CPU means and medians, per round (CPU), and of wall medians. */
function ratioLine(samples: Map<string, Samples>, a: string, b: string): string {
  const x = samples.get(a)!;
  const y = samples.get(b)!;
  const cx = summarise(x.cpu);
  const cy = summarise(y.cpu);
  const paired = summarise(x.cpu.map((v, r) => v / y.cpu[r]));
  const wall = summarise(x.wall).median / summarise(y.wall).median;
  const verdict = cx.mean / cy.mean <= 0.5 ? "met" : "not met";
  return `| ${a} ÷ ${b} | ${f(cx.mean / cy.mean)} | ${f(cx.median / cy.median)} | ${
    f(paired.median)
  } (${range(paired)}) | ${f(wall)} | ${verdict} |`;
}

const warmup = count("warmup");
const runs = count("runs");
if (runs === 0) throw new RangeError("--runs must be at least 1");

await verifyNoopRunners();
await verifyNoopRunners(smallNoopDag);

console.log(`# dagstream core executor benchmark\n`);
console.log(
  `Deno ${Deno.version.deno}, V8 ${Deno.version.v8}, ${Deno.build.target}, ` +
    `${navigator.hardwareConcurrency} CPUs; forced GC before each sample: ${gc ? "yes" : "no"}; ` +
    `load average at start: ${loadAverage()}\n`,
);

// 1. Scheduling overhead, 10k tasks
const { "async.auto": auto10k, ...noop10k } = noopRunners;
const samples10k = await measure(noop10k, warmup, runs);
console.log(
  `## Scheduling overhead: ${NOOP_SIZE} tasks, ${noopEdges} edges, ${noopLayers} layers ` +
    `(randomDag seed ${NOOP_SEED}), no-op tool\n`,
);
console.log(`${warmup} warm-up + ${runs} measured rounds.\n`);
console.log(noopTable(NOOP_SIZE, samples10k));

console.log(
  "\n| ratio | CPU means | CPU medians | CPU per round, median (p10–p90) | wall medians | ≤ 0.50? |",
);
console.log("| --- | ---: | ---: | ---: | ---: | --- |");
console.log(ratioLine(samples10k, "dagstream execute()", "p-graph new+run()"));
console.log(ratioLine(samples10k, "dagstream runPrepared()", "p-graph run()"));
console.log(ratioLine(samples10k, "dagstream runPrepared()", "p-graph new+run()"));

const asyncRuns = count("async-10k-runs");
if (asyncRuns > 0) {
  const s = (await measure({ "async.auto": auto10k }, 1, asyncRuns)).get("async.auto")!;
  const c = summarise(s.cpu);
  const w = summarise(s.wall);
  console.log(
    `\nasync.auto, same 10k DAG (1 warm-up + ${asyncRuns} runs): CPU ${f(c.median)} ms ` +
      `(${f((c.median * 1000) / NOOP_SIZE)} µs/task), wall ${f(w.median)} ms; its graph check ` +
      `is O(V²), so it is compared at 1,000 tasks below.`,
  );
}

// 1b. 1k tasks, where async.auto is affordable
const samples1k = await measure({ ...smallNoopRunners }, warmup, runs);
console.log(`\n## Scheduling overhead: ${SMALL_NOOP_SIZE} tasks (same generator and seed)\n`);
console.log(noopTable(SMALL_NOOP_SIZE, samples1k));

// 2. Makespan vs critical path
const timedWarmup = count("timed-warmup");
const timedRuns = count("timed-runs");
if (timedRuns > 0) {
  const samples = await measure(timedRunners, timedWarmup, timedRuns);
  console.log(
    `\n## Makespan: ${TIMED_SIZE} tasks (seed ${TIMED_SEED}), ${timedLayers} layers, ` +
      `delays ${DELAY_RANGE[0]}–${DELAY_RANGE[1]} ms\n`,
  );
  console.log(
    `Critical path ${criticalPathMs} ms over ${criticalPath.length} tasks ("critical path ` +
      `replayed" sleeps through them one after another, no scheduler: the floor that timers ` +
      `allow); layered ideal (sum of each layer's longest task) ` +
      `${layeredIdealMs} ms; sequential ${sequentialMs} ms. ` +
      `${timedWarmup} warm-up + ${timedRuns} measured rounds.\n`,
  );
  const replay = summarise(samples.get("critical path replayed")!.wall).median;
  console.log(
    "| run | makespan ms median (p10–p90) | ÷ critical path | ÷ replayed critical path | ÷ layered ideal |",
  );
  console.log("| --- | ---: | ---: | ---: | ---: |");
  for (const [name, s] of samples) {
    const w = summarise(s.wall);
    console.log(
      `| ${name} | ${f(w.median, 1)} (${range(w, 1)}) | ${f(w.median / criticalPathMs, 3)} | ${
        f(w.median / replay, 3)
      } | ${f(w.median / layeredIdealMs, 3)} |`,
    );
  }
  const eager = summarise(samples.get("dagstream eager")!.wall).median / criticalPathMs;
  console.log(
    `\neager makespan ÷ critical path = ${f(eager, 3)} (target ≤ 1.10: ${
      eager <= 1.1 ? "met" : "NOT met"
    })`,
  );
}
console.log(`\nLoad average at end: ${loadAverage()}`);
