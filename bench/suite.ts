/**
 * Every comparison of the performance targets in one command, each against
 * its anchor measured in the same run, summed up in one table: figure,
 * ratio (median, with the min–max spread over rounds), target, met or not.
 *
 * ```sh
 * deno task bench              # quick form: small round counts, under 2 minutes on 2 cores
 * deno task bench --profile    # + CPU profiles and the top self-time table of each headline figure
 * deno task bench:full         # full form: the larger runs, with every script's own tables
 * deno run -A bench/suite.ts [--full] [--profile] [--only executor,streaming,batch,watchers] [--json]
 * ```
 *
 * Each part is a script of its own, started as a child process with
 * `Deno.execPath()` and `--json`; the figures come from its JSON answer:
 *
 * | part | script | compares |
 * | --- | --- | --- |
 * | executor | `executor_report.ts` | `execute()` and `runPrepared()` vs p-graph at 10k tasks; 100k vs 10 × 10k; makespan vs critical path (60 tasks; 200 in the full form) |
 * | streaming | `streaming_processes.ts` | the bundled server's SSE stream vs Hono `streamSSE` and a raw server, each a process, read by a client process |
 * | batch | `server_load.ts --skip-streams` | batch `POST /execute` vs a bare `Deno.serve`, 64 concurrent clients |
 * | watchers | `stalled_watchers.ts` | server RSS with 1,000 stalled watchers; a fast watcher with and without them |
 *
 * The full form also runs `server_load.ts` with its 1,000 held streams and
 * the in-process `streaming_throughput.ts` (with its stage breakdown), and
 * prints each script's Markdown tables before the summary.
 *
 * The header gives the commit (`git rev-parse --short HEAD`, and whether
 * `src/` or `mod.ts` differ from it), `deno --version` and the load
 * average at start and end.
 *
 * Permissions: `-A`. The scripts start `Deno.execPath()`, whose path
 * depends on the installation, so `--allow-run` cannot be narrowed to it
 * (and an unrestricted `--allow-run` is as good as `-A`); they read
 * `/proc/<pid>/` files, which Deno allows only with all permissions. The
 * children that are not launchers run with narrow flags (the servers as
 * `deno task serve` runs them, the client with `--allow-net=127.0.0.1`,
 * the executor report with `--allow-sys=loadavg`).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { readProfiles, selfTimeTable } from "./self_time.ts";
import { formatLoad, formatNumber, formatSpread, loadAverage, type Spread } from "./stats.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    full: { type: "boolean", default: false },
    profile: { type: "boolean", default: false },
    only: { type: "string" },
    json: { type: "boolean", default: false },
  },
});

const PARTS = ["executor", "streaming", "batch", "watchers"] as const;
type Part = typeof PARTS[number];
const parts: Part[] = flags.only === undefined ? [...PARTS] : flags.only.split(",").map((p) => {
  if (!(PARTS as readonly string[]).includes(p)) throw new Error(`--only: unknown part ${p}`);
  return p as Part;
});
const FULL = flags.full;
const ROOT = new URL("../", import.meta.url);
const t0 = performance.now();
const note = (text: string) =>
  console.error(`[bench ${((performance.now() - t0) / 1000).toFixed(1)} s] ${text}`);

let interrupted = false;

/** Runs a command and returns its stdout (stderr passes through); throws on failure. */
async function run(command: string, args: string[]): Promise<string> {
  const child = new Deno.Command(command, {
    args,
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  // Stopped with the suite: SIGINT/SIGTERM here forwards SIGTERM to it (it
  // stops its own children), and the suite ends once it has.
  const forward = () => {
    interrupted = true;
    try {
      child.kill("SIGTERM");
    } catch {
      // already gone
    }
  };
  Deno.addSignalListener("SIGINT", forward);
  Deno.addSignalListener("SIGTERM", forward);
  try {
    const { code, stdout } = await child.output();
    if (interrupted) {
      console.error("bench: interrupted");
      Deno.exit(130);
    }
    const text = new TextDecoder().decode(stdout);
    if (code !== 0) {
      throw new Error(`${command} ${args.join(" ")} exited with ${code}: ${text.slice(-2000)}`);
    }
    return text;
  } finally {
    Deno.removeSignalListener("SIGINT", forward);
    Deno.removeSignalListener("SIGTERM", forward);
  }
}

/** Runs `deno <args>` (a bench script with `--json`) and parses its JSON answer. */
async function script(label: string, args: string[]): Promise<Record<string, unknown>> {
  const started = performance.now();
  note(`${label}: deno ${args.join(" ")}`);
  const text = await run(Deno.execPath(), args);
  const last = text.trim().split("\n").pop() ?? "";
  const parsed = JSON.parse(last);
  note(`${label}: done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return parsed;
}

async function commandText(command: string, args: string[]): Promise<string> {
  try {
    return (await run(command, args)).trim();
  } catch (error) {
    return `unknown (${error instanceof Error ? error.message.split("\n")[0] : error})`;
  }
}

// ---------------------------------------------------------------------------
// Header

const commit = await commandText("git", ["rev-parse", "--short", "HEAD"]);
// --no-optional-locks: a read that never writes the index.
const changed = await commandText("git", [
  "--no-optional-locks",
  "status",
  "--porcelain",
  "--",
  "src",
  "mod.ts",
]);
const denoVersion = await commandText(Deno.execPath(), ["--version"]);
const loads = { start: loadAverage(), end: [] as number[] };

// ---------------------------------------------------------------------------
// The parts

const quick = {
  executor: [
    "--warmup",
    "10",
    "--runs",
    "40",
    "--runs-1k",
    "0",
    "--big-warmup",
    "1",
    "--big-runs",
    "3",
    "--small-timed-warmup",
    "1",
    "--small-timed-runs",
    "5",
    "--timed-runs",
    "0",
    "--async-10k-runs",
    "0",
  ],
  streaming: ["--warmup", "3", "--rounds", "15"],
  batch: ["--skip-streams", "--duration", "8", "--rounds", "4", "--warmup", "1"],
  watchers: ["--rounds", "1", "--fast-reads", "15"],
};
const full = {
  executor: ["--async-10k-runs", "1"],
  streaming: ["--warmup", "5", "--rounds", "15"],
  batch: ["--rounds", "4"],
  watchers: ["--rounds", "3", "--fast-reads", "30"],
};
const argsOf = FULL ? full : quick;
const results: Partial<Record<Part | "inProcess", Record<string, unknown>>> = {};
const failures: Record<string, string> = {};

async function part(name: Part | "inProcess", args: string[]) {
  try {
    results[name] = await script(name, args);
  } catch (error) {
    failures[name] = error instanceof Error ? error.message : String(error);
    note(`${name} FAILED: ${failures[name]}`);
  }
}

if (parts.includes("executor")) {
  await part("executor", [
    "run",
    "--allow-sys=loadavg",
    "bench/executor_report.ts",
    "--json",
    ...argsOf.executor,
  ]);
}
if (parts.includes("streaming")) {
  await part("streaming", [
    "run",
    "-A",
    "bench/streaming_processes.ts",
    "--json",
    ...argsOf.streaming,
  ]);
  if (FULL) {
    await part("inProcess", [
      "run",
      "--allow-net=127.0.0.1",
      "--allow-read=bench",
      "--allow-sys=loadavg",
      "bench/streaming_throughput.ts",
      "--json",
    ]);
  }
}
if (parts.includes("batch")) {
  await part("batch", ["run", "-A", "bench/server_load.ts", "--json", ...argsOf.batch]);
}
if (parts.includes("watchers")) {
  await part("watchers", ["run", "-A", "bench/stalled_watchers.ts", "--json", ...argsOf.watchers]);
}

// ---------------------------------------------------------------------------
// Profiles: separate short runs with the profiler on, so that the figures
// above are measured without it.

const profiles: { figure: string; table: string }[] = [];
if (flags.profile) {
  const dir = await Deno.makeTempDir({ prefix: "dagstream-bench-profiles-" });
  note(`CPU profiles in ${dir}`);
  const jobs: { figure: string; part: Part; args: string[]; profileOf: string }[] = [
    {
      figure: "execute(), 10k no-op tasks (100 runs)",
      part: "executor",
      args: [
        "run",
        "--cpu-prof",
        `--cpu-prof-dir=${dir}/execute`,
        "bench/executor_profile.ts",
        "--call",
        "execute",
        "--runs",
        "100",
      ],
      profileOf: `${dir}/execute`,
    },
    {
      figure: "runPrepared(), 10k no-op tasks (200 runs)",
      part: "executor",
      args: [
        "run",
        "--cpu-prof",
        `--cpu-prof-dir=${dir}/runPrepared`,
        "bench/executor_profile.ts",
        "--call",
        "runPrepared",
        "--runs",
        "200",
      ],
      profileOf: `${dir}/runPrepared`,
    },
    {
      figure: "execute(), 100k no-op tasks (5 runs)",
      part: "executor",
      args: [
        "run",
        "--cpu-prof",
        `--cpu-prof-dir=${dir}/execute100k`,
        "bench/executor_profile.ts",
        "--call",
        "execute",
        "--size",
        "100000",
        "--runs",
        "5",
      ],
      profileOf: `${dir}/execute100k`,
    },
    {
      figure: "the bundled server streaming 20,001 events (11 streams)",
      part: "streaming",
      args: [
        "run",
        "-A",
        "bench/streaming_processes.ts",
        "--json",
        "--only",
        "dagstream",
        "--warmup",
        "1",
        "--rounds",
        "10",
        "--profile-dir",
        `${dir}/streaming`,
      ],
      profileOf: `${dir}/streaming/dagstream`,
    },
    {
      figure: "the bundled server under batch POST /execute (4 s)",
      part: "batch",
      args: [
        "run",
        "-A",
        "bench/server_load.ts",
        "--json",
        "--skip-streams",
        "--duration",
        "3",
        "--rounds",
        "1",
        "--warmup",
        "1",
        "--profile-dir",
        `${dir}/batch`,
      ],
      profileOf: `${dir}/batch/dagstream`,
    },
  ];
  for (const job of jobs) {
    if (!parts.includes(job.part)) continue;
    try {
      const started = performance.now();
      note(`profile: ${job.figure}`);
      await run(Deno.execPath(), job.args);
      note(`profile: done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
      profiles.push({
        figure: job.figure,
        table: selfTimeTable(await readProfiles([job.profileOf]), 12),
      });
    } catch (error) {
      failures[`profile: ${job.figure}`] = error instanceof Error ? error.message : String(error);
    }
  }
}
loads.end = loadAverage();
const wallSeconds = (performance.now() - t0) / 1000;

// ---------------------------------------------------------------------------
// Summary

interface Row {
  figure: string;
  measured: string;
  ratio: Spread | undefined;
  digits: number;
  target: string;
  met: boolean | undefined;
}

const rows: Row[] = [];
// deno-lint-ignore no-explicit-any
const get = (object: any, path: string): any => path.split(".").reduce((o, k) => o?.[k], object);
const ms = (x: number | undefined, digits = 1) => x === undefined ? "?" : `${x.toFixed(digits)} ms`;

function row(
  figure: string,
  measured: string,
  ratio: Spread | undefined,
  target: { atMost?: number; atLeast?: number; text?: string },
  digits = 2,
) {
  const t = target.atMost ?? target.atLeast;
  const met = ratio === undefined || t === undefined
    ? undefined
    : target.atMost !== undefined
    ? ratio.median <= target.atMost
    : ratio.median >= target.atLeast!;
  rows.push({
    figure,
    measured,
    ratio,
    digits,
    target: target.text ?? (target.atMost !== undefined ? `≤ ${t}` : `≥ ${t}`),
    met,
  });
}

const ex = results.executor;
if (ex) {
  const cpu = (name: string) => get(ex, `noop10k.cpuMs.${name}.median`);
  row(
    "10k-task DAG: `execute()` ÷ p-graph `new PGraph().run()` (CPU, per round)",
    `${ms(cpu("dagstream execute()"))} vs ${ms(cpu("p-graph new+run()"))}`,
    get(ex, "noop10k.executeOverPGraph.perRoundCpu"),
    { atMost: 0.5 },
  );
  row(
    "10k-task DAG: `runPrepared()` ÷ p-graph `run()` (scheduler alone)",
    `${ms(cpu("dagstream runPrepared()"))} vs ${ms(cpu("p-graph run()"))}`,
    get(ex, "noop10k.runPreparedOverPGraphRun.perRoundCpu"),
    { atMost: 0.25 },
  );
  for (const call of ["execute", "runPrepared"]) {
    const l = get(ex, `linear.${call}`);
    if (l === undefined) continue;
    row(
      `100k tasks: \`${call}()\` time per task ÷ at 10k`,
      `${l.usPerTask10k.toFixed(2)} → ${l.usPerTaskBig.toFixed(2)} µs/task`,
      l.perRoundCpu,
      { atMost: 1.2 },
    );
  }
  for (const key of ["makespanSmall", "makespan"]) {
    const m = get(ex, key);
    if (m === undefined) continue;
    row(
      `makespan, ${m.size} timed tasks, eager ÷ critical path`,
      `${ms(get(m, "wallMs.dagstream eager.median"))} vs ${m.criticalPathMs} ms`,
      m.eagerOverCriticalPath,
      { atMost: 1.1 },
      3,
    );
  }
}
const st = results.streaming;
if (st) {
  const eps = (name: string) => formatNumber(get(st, `summary.${name}.eventsPerSecond.median`));
  row(
    "SSE stream of 20,001 events: bundled server ÷ Hono `streamSSE` (events/s)",
    `${eps("dagstream")} vs ${eps("hono")} events/s`,
    get(st, "ratios.overHono"),
    { atLeast: 4 },
  );
  row(
    "SSE stream of 20,001 events: bundled server ÷ raw pre-encoded frames",
    `${eps("dagstream")} vs ${eps("raw")} events/s`,
    get(st, "ratios.overRaw"),
    { atLeast: 0.5 },
  );
}
const ba = results.batch;
if (ba) {
  const rps = (name: string) => formatNumber(get(ba, `batch.${name}.requestsPerSecond`));
  row(
    "batch `POST /execute`, 5 tasks, 64 clients ÷ bare `Deno.serve` (requests/s)",
    `${rps("dagstream")} vs ${rps("bare")} requests/s`,
    get(ba, "batch.ratioPerRound"),
    { atLeast: 0.6 },
  );
}
const wa = results.watchers;
if (wa) {
  const n = get(wa, "watchers");
  const growth: Spread = get(wa, "growthMiB");
  const each: Spread = get(wa, "perWatcherKiB");
  row(`${n} stalled watchers: server RSS growth, MiB`, `${growth.median.toFixed(1)} MiB`, growth, {
    atMost: 256,
  }, 1);
  row(`${n} stalled watchers: RSS growth per watcher, KiB`, `${each.median.toFixed(1)} KiB`, each, {
    atMost: 256,
  }, 1);
  const rounds = get(wa, "rounds") as { fastMs: { without: Spread; stalled: Spread } }[];
  row(
    `fast watcher of the same run: time with ÷ without the ${n} stalled ones`,
    rounds.map((r) =>
      `${r.fastMs.stalled.median.toFixed(1)} vs ${r.fastMs.without.median.toFixed(1)} ms`
    ).join("; "),
    get(wa, "fastWithOverWithout"),
    { atMost: 1.25, text: "unaffected (≤ 1.25)" },
  );
}

const md: string[] = [];
md.push(`# dagstream benchmarks, ${FULL ? "full" : "quick"} form\n`);
md.push(
  `Commit ${commit}${changed === "" ? "" : " with uncommitted changes in src/ or mod.ts"}; ` +
    `${denoVersion.split("\n").join(", ")}; ${navigator.hardwareConcurrency} CPUs; ` +
    `load average ${formatLoad(loads.start)} at start, ${formatLoad(loads.end)} at end; ` +
    `${new Date().toISOString()}; wall time ${wallSeconds.toFixed(0)} s.\n`,
);
if (FULL) {
  for (const [name, r] of Object.entries(results)) {
    if (typeof r?.markdown === "string") md.push(`<!-- ${name} -->\n${r.markdown}\n`);
  }
}
md.push("## Summary\n");
md.push("| figure | measured (median) | ratio, median (min–max) | target | met? |");
md.push("| --- | --- | ---: | ---: | --- |");
for (const r of rows) {
  md.push(
    `| ${r.figure} | ${r.measured} | ${r.ratio ? formatSpread(r.ratio, r.digits) : "?"} | ` +
      `${r.target} | ${r.met === undefined ? "?" : r.met ? "met" : "**not met**"} |`,
  );
}
for (const [name, message] of Object.entries(failures)) md.push(`\n**${name} failed**: ${message}`);
for (const p of profiles) md.push(`\n### Top self time: ${p.figure}\n\n${p.table}`);

if (flags.json) {
  console.log(JSON.stringify({
    commit,
    uncommittedChanges: changed !== "",
    deno: denoVersion,
    loadAverage: loads,
    wallSeconds,
    full: FULL,
    rows,
    failures,
    results,
    markdown: md.join("\n"),
  }));
} else {
  console.log(md.join("\n"));
}
if (Object.keys(failures).length > 0) Deno.exitCode = 1;
