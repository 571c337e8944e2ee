/**
 * Prints the core executor figures of docs/BENCHMARKS.md as Markdown tables:
 * medians over many interleaved runs, µs per task and ratios to p-graph,
 * linear growth from 10,000 to 100,000 tasks, and makespan over critical
 * path for eager and layered scheduling (60 and 200 timed tasks).
 *
 * ```sh
 * deno task bench:report            # 30 warm-up + 100 measured rounds
 * deno task bench:report --runs 100 --warmup 50 --async-10k-runs 0
 * deno run --allow-sys=loadavg bench/executor_report.ts --runs 15 --warmup 5 --runs-1k 0 \
 *   --big-runs 3 --timed-runs 0 --small-timed-runs 5 --async-10k-runs 0 --json
 * ```
 *
 * Each round runs every implementation once, in a rotating order, so drift
 * (machine load, CPU frequency, heap growth) spreads evenly over them, and
 * ratios are also given per round. Every no-op sample records wall-clock time
 * and the process's CPU time (user + system, all threads, GC threads
 * included): on a shared machine other processes inflate wall time but not
 * CPU time, so the CPU figures are the load-independent ones.
 *
 * Linear growth: each round runs `execute()` and `runPrepared()` once on the
 * 100,000-task DAG and ten times in a row on the 10,000-task one (the same
 * number of tasks), so the per-round ratio is directly the ratio of times
 * per task. `--big-runs 0` leaves it out (the large DAG is then not built).
 *
 * `--json` prints one JSON document instead (the figures, the targets, and
 * the Markdown under `markdown`), for `bench/suite.ts`.
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
  DELAY_RANGE,
  makeLinearCase,
  NOOP_SEED,
  NOOP_SIZE,
  noopEdges,
  noopLayers,
  noopRunners,
  type Runner,
  SMALL_NOOP_SIZE,
  smallNoopDag,
  smallNoopRunners,
  smallTimedCase,
  TIMED_SEED,
  type TimedCase,
  timedCase,
  verifyNoopRunners,
} from "./executor_cases.ts";
import {
  formatLoad,
  formatSpread,
  loadAverage,
  pairedRatios,
  type Spread,
  spread,
} from "./stats.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    warmup: { type: "string", default: "30" },
    runs: { type: "string", default: "100" },
    "runs-1k": { type: "string", default: "100" },
    "big-size": { type: "string", default: "100000" },
    "big-warmup": { type: "string", default: "1" },
    "big-runs": { type: "string", default: "10" },
    "small-timed-warmup": { type: "string", default: "3" },
    "small-timed-runs": { type: "string", default: "15" },
    "timed-warmup": { type: "string", default: "3" },
    "timed-runs": { type: "string", default: "15" },
    "async-10k-runs": { type: "string", default: "3" },
    json: { type: "boolean", default: false },
  },
});
const count = (name: Exclude<keyof typeof flags, "json">): number => {
  const n = Number(flags[name]);
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`--${name} must be a whole number`);
  return n;
};

/** The issue's targets. */
export const TARGETS = {
  /** `execute()` ÷ p-graph new+run(), at most. */
  executeOverPGraph: 0.5,
  /** `runPrepared()` ÷ p-graph run(), at most. */
  runPreparedOverPGraphRun: 0.25,
  /** Time per task at 100k ÷ at 10k, at most. */
  linear: 1.2,
  /** Eager makespan ÷ critical path, at most. */
  makespan: 1.1,
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
const md: string[] = [];
const out = (line = "") => md.push(line);

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

/** Ratios of `a` to `b`, the per-round CPU ones as a spread, for the JSON figures. */
interface RatioFigures {
  /** CPU time ratio round by round: median, min, max. */
  perRoundCpu: Spread;
  /** Ratio of the CPU means. */
  ofCpuMeans: number;
  /** Ratio of the wall-clock medians. */
  ofWallMedians: number;
}

function ratios(samples: Map<string, Samples>, a: string, b: string): RatioFigures {
  const x = samples.get(a)!;
  const y = samples.get(b)!;
  return {
    perRoundCpu: spread(pairedRatios(x.cpu, y.cpu)),
    ofCpuMeans: summarise(x.cpu).mean / summarise(y.cpu).mean,
    ofWallMedians: summarise(x.wall).median / summarise(y.wall).median,
  };
}

/**
 * A row of the ratio table: CPU means, medians, per round (p10–p90), wall
 * medians, and the verdict, taken on the per-round median (as the summary
 * of `bench/suite.ts` does).
 */
function ratioLine(samples: Map<string, Samples>, a: string, b: string, target?: number): string {
  const x = samples.get(a)!;
  const y = samples.get(b)!;
  const cx = summarise(x.cpu);
  const cy = summarise(y.cpu);
  const paired = summarise(pairedRatios(x.cpu, y.cpu));
  const wall = summarise(x.wall).median / summarise(y.wall).median;
  const verdict = target === undefined ? "–" : paired.median <= target ? "met" : "not met";
  return `| ${a} ÷ ${b} | ${f(cx.mean / cy.mean)} | ${f(cx.median / cy.median)} | ${
    f(paired.median)
  } (${range(paired)}) | ${f(wall)} | ${
    target === undefined ? "–" : `≤ ${f(target)}`
  } | ${verdict} |`;
}

const warmup = count("warmup");
const runs = count("runs");
if (runs === 0) throw new RangeError("--runs must be at least 1");
const figures: Record<string, unknown> = {
  deno: Deno.version.deno,
  v8: Deno.version.v8,
  target: Deno.build.target,
  cpus: navigator.hardwareConcurrency,
  forcedGc: gc !== undefined,
  targets: TARGETS,
};
const loads = { start: loadAverage(), end: [] as number[] };

await verifyNoopRunners();
await verifyNoopRunners(smallNoopDag);

out(`# dagstream core executor benchmark\n`);
out(
  `Deno ${Deno.version.deno}, V8 ${Deno.version.v8}, ${Deno.build.target}, ` +
    `${navigator.hardwareConcurrency} CPUs; forced GC before each sample: ${gc ? "yes" : "no"}; ` +
    `load average at start: ${formatLoad(loads.start)}\n`,
);

// 1. Scheduling overhead, 10k tasks
const { "async.auto": auto10k, ...noop10k } = noopRunners;
const samples10k = await measure(noop10k, warmup, runs);
out(
  `## Scheduling overhead: ${NOOP_SIZE} tasks, ${noopEdges} edges, ${noopLayers} layers ` +
    `(randomDag seed ${NOOP_SEED}), no-op tool\n`,
);
out(`${warmup} warm-up + ${runs} measured rounds.\n`);
out(noopTable(NOOP_SIZE, samples10k));
out();
out(
  "| ratio | CPU means | CPU medians | CPU per round, median (p10–p90) | wall medians | target | met? |",
);
out("| --- | ---: | ---: | ---: | ---: | ---: | --- |");
out(ratioLine(samples10k, "dagstream execute()", "p-graph new+run()", TARGETS.executeOverPGraph));
out(
  ratioLine(
    samples10k,
    "dagstream runPrepared()",
    "p-graph run()",
    TARGETS.runPreparedOverPGraphRun,
  ),
);
// For reference: the scheduler alone against p-graph as documented (no target).
out(ratioLine(samples10k, "dagstream runPrepared()", "p-graph new+run()"));
figures.noop10k = {
  size: NOOP_SIZE,
  edges: noopEdges,
  layers: noopLayers,
  warmup,
  runs,
  cpuMs: Object.fromEntries([...samples10k].map(([n, s]) => [n, spread(s.cpu)])),
  wallMs: Object.fromEntries([...samples10k].map(([n, s]) => [n, spread(s.wall)])),
  executeOverPGraph: ratios(samples10k, "dagstream execute()", "p-graph new+run()"),
  runPreparedOverPGraphRun: ratios(samples10k, "dagstream runPrepared()", "p-graph run()"),
  runPreparedOverPGraph: ratios(samples10k, "dagstream runPrepared()", "p-graph new+run()"),
};

const asyncRuns = count("async-10k-runs");
if (asyncRuns > 0) {
  const s = (await measure({ "async.auto": auto10k }, 1, asyncRuns)).get("async.auto")!;
  const c = summarise(s.cpu);
  const w = summarise(s.wall);
  out(
    `\nasync.auto, same 10k DAG (1 warm-up + ${asyncRuns} runs): CPU ${f(c.median)} ms ` +
      `(${f((c.median * 1000) / NOOP_SIZE)} µs/task), wall ${f(w.median)} ms; its graph check ` +
      `is O(V²), so it is compared at 1,000 tasks below.`,
  );
  figures.async10kCpuMs = spread(s.cpu);
}

// 1b. 1k tasks, where async.auto is affordable
const runs1k = count("runs-1k");
if (runs1k > 0) {
  const samples1k = await measure({ ...smallNoopRunners }, warmup, runs1k);
  out(`\n## Scheduling overhead: ${SMALL_NOOP_SIZE} tasks (same generator and seed)\n`);
  out(noopTable(SMALL_NOOP_SIZE, samples1k));
  figures.noop1k = {
    size: SMALL_NOOP_SIZE,
    runs: runs1k,
    cpuMs: Object.fromEntries([...samples1k].map(([n, s]) => [n, spread(s.cpu)])),
    executeOverAsyncAuto: ratios(samples1k, "dagstream execute()", "async.auto"),
  };
}

// 1c. Linear growth: 100k tasks against 10 × 10k
const bigRuns = count("big-runs");
if (bigRuns > 0) {
  const linear = makeLinearCase(count("big-size"));
  await linear.verify();
  const bigWarmup = count("big-warmup");
  const samples = await measure(linear.runners, bigWarmup, bigRuns);
  const label = `${linear.size / 1000}k`;
  out(
    `\n## Linear growth: ${linear.size} tasks (${linear.edges} edges, same generator and seed) ` +
      `against ${linear.repeats} runs of the ${NOOP_SIZE}-task DAG\n`,
  );
  out(
    `${bigWarmup} warm-up + ${bigRuns} measured rounds; each sample runs ${linear.size} tasks ` +
      `either way, so the ratio is the ratio of times per task.\n`,
  );
  out(
    "| call | µs/task at 10k (CPU median) | µs/task at " + label +
      " (CPU median) | ratio per round, CPU median (min–max) | wall medians | target | met? |",
  );
  out("| --- | ---: | ---: | ---: | ---: | ---: | --- |");
  const linearFigures: Record<string, unknown> = {
    size: linear.size,
    edges: linear.edges,
    repeats: linear.repeats,
    warmup: bigWarmup,
    runs: bigRuns,
  };
  for (const call of ["execute()", "runPrepared()"]) {
    const small = samples.get(`${call} 10k ×${linear.repeats}`)!;
    const big = samples.get(`${call} ${label}`)!;
    const perRound = spread(pairedRatios(big.cpu, small.cpu));
    const us = (s: Samples) => (summarise(s.cpu).median * 1000) / linear.size;
    const wall = summarise(big.wall).median / summarise(small.wall).median;
    out(
      `| ${call} | ${f(us(small))} | ${f(us(big))} | ${formatSpread(perRound)} | ${f(wall)} | ` +
        `≤ ${f(TARGETS.linear)} | ${perRound.median <= TARGETS.linear ? "met" : "not met"} |`,
    );
    linearFigures[call.replace("()", "")] = {
      usPerTask10k: us(small),
      usPerTaskBig: us(big),
      perRoundCpu: perRound,
      ofWallMedians: wall,
    };
  }
  figures.linear = linearFigures;
}

// 2. Makespan vs critical path
function makespan(c: TimedCase, warmupRounds: number, measured: number, seed: number) {
  return measure(c.runners, warmupRounds, measured).then((samples) => {
    out(
      `\n## Makespan: ${c.size} tasks (seed ${seed}), ${c.layers} layers, ` +
        `delays ${DELAY_RANGE[0]}–${DELAY_RANGE[1]} ms\n`,
    );
    out(
      `Critical path ${c.criticalPathMs} ms over ${c.criticalPath.length} tasks ("critical path ` +
        `replayed" sleeps through them one after another, no scheduler: the floor that timers ` +
        `allow); layered ideal (sum of each layer's longest task) ` +
        `${c.layeredIdealMs} ms; sequential ${c.sequentialMs} ms. ` +
        `${warmupRounds} warm-up + ${measured} measured rounds.\n`,
    );
    const replay = summarise(samples.get("critical path replayed")!.wall).median;
    out(
      "| run | makespan ms median (p10–p90) | ÷ critical path | ÷ replayed critical path | ÷ layered ideal |",
    );
    out("| --- | ---: | ---: | ---: | ---: |");
    for (const [name, s] of samples) {
      const w = summarise(s.wall);
      out(
        `| ${name} | ${f(w.median, 1)} (${range(w, 1)}) | ${f(w.median / c.criticalPathMs, 3)} | ${
          f(w.median / replay, 3)
        } | ${f(w.median / c.layeredIdealMs, 3)} |`,
      );
    }
    const eager = spread(samples.get("dagstream eager")!.wall.map((ms) => ms / c.criticalPathMs));
    out(
      `\neager makespan ÷ critical path, per round: ${formatSpread(eager, 3)} (target ≤ ${
        f(TARGETS.makespan)
      }: ${eager.median <= TARGETS.makespan ? "met" : "NOT met"})`,
    );
    return {
      size: c.size,
      layers: c.layers,
      criticalPathMs: c.criticalPathMs,
      layeredIdealMs: c.layeredIdealMs,
      runs: measured,
      wallMs: Object.fromEntries([...samples].map(([n, s]) => [n, spread(s.wall)])),
      eagerOverCriticalPath: eager,
      replayedOverCriticalPath: replay / c.criticalPathMs,
    };
  });
}

const smallTimedRuns = count("small-timed-runs");
if (smallTimedRuns > 0) {
  figures.makespanSmall = await makespan(
    smallTimedCase,
    count("small-timed-warmup"),
    smallTimedRuns,
    TIMED_SEED,
  );
}
const timedRuns = count("timed-runs");
if (timedRuns > 0) {
  figures.makespan = await makespan(timedCase, count("timed-warmup"), timedRuns, TIMED_SEED);
}
loads.end = loadAverage();
out(`\nLoad average at end: ${formatLoad(loads.end)}`);
figures.loadAverage = loads;

if (flags.json) {
  console.log(JSON.stringify({ ...figures, markdown: md.join("\n") }));
} else {
  console.log(md.join("\n"));
}
