/**
 * Server load: the real dagstream server process (`src/server/main.ts`)
 * against a bare `Deno.serve` JSON endpoint (`bench/bare_server.ts`), both
 * started here on 127.0.0.1, in the same run.
 *
 * The streams are held first, on the fresh server, then the batch load runs.
 *
 * 1. Batch throughput: N concurrent fetch loops POST a 5-task `mock:echo`
 *    DAG (`Accept: application/json`) for a fixed time and count answers
 *    checked as correct, per second. The bare server reads the same body
 *    and answers the very JSON dagstream gave for it. The two servers are
 *    measured alternately, `--rounds` rounds (default 2: bare, dagstream,
 *    dagstream, bare), each round giving each server `--duration` ÷
 *    `--rounds` seconds, after a warm-up of each; the ratio of requests/s is
 *    given over all rounds and per round (median, min–max).
 * 2. Concurrent streams: 1,000 SSE streams held open on the dagstream
 *    server, first as watchers of one run (`POST /runs`, then
 *    `GET /runs/<id>/events` × 1,000), then as 1,000 runs of their own
 *    (`POST /execute` with `Accept: text/event-stream`). Each run is a
 *    long `mock:delay` then a `mock:echo`; `--heartbeat-ms 1000` keeps
 *    keep-alive comments flowing meanwhile. The server's RSS
 *    (`/proc/<pid>/status` VmRSS) is read before and while the streams are
 *    open; every stream must then receive all its events (ids 1-5, in
 *    order): events lost must be 0. For reference, the bare server then
 *    holds as many plain `ReadableStream` SSE bodies (`GET /sse`), with
 *    the same events and keep-alives, measured the same way.
 *
 * ```sh
 * ulimit -n 4096   # if `ulimit -n` is lower: 1,000 streams use 2,000+ sockets
 * deno run -A bench/server_load.ts
 * deno run -A bench/server_load.ts --duration 20 --concurrency 32 --streams 500 --json
 * deno run -A bench/server_load.ts --skip-streams --profile-dir /tmp/prof   # CPU profiles of both servers
 * ```
 *
 * `-A`: the script starts `Deno.execPath()` (an unrestricted `--allow-run`)
 * and reads `/proc/<pid>/` files, which Deno allows only with all
 * permissions. `--json` prints one JSON document (the figures, and the
 * Markdown under `markdown`). `--profile-dir DIR` writes each server's CPU
 * profiles into `DIR/<name>/`.
 *
 * Both servers are stopped (SIGTERM) at the end, whatever happens.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { createParser } from "eventsource-parser";
import {
  cpuSeconds,
  dagstreamServerArgs,
  openFileLimit,
  ProcessGroup,
  rssKiB,
  type ServerProcess,
  settledRssKiB,
} from "./processes.ts";
import { formatSpread, median, pairedRatios, type Spread, spread } from "./stats.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    duration: { type: "string", default: "10" },
    warmup: { type: "string", default: "2" },
    concurrency: { type: "string", default: "64" },
    rounds: { type: "string", default: "2" },
    streams: { type: "string", default: "1000" },
    "delay-ms": { type: "string", default: "8000" },
    "heartbeat-ms": { type: "string", default: "1000" },
    "skip-load": { type: "boolean", default: false },
    "skip-streams": { type: "boolean", default: false },
    "profile-dir": { type: "string" },
    json: { type: "boolean", default: false },
  },
});

const DURATION_S = bounded("duration", 1, 120);
const WARMUP_S = bounded("warmup", 0, 30);
const CONCURRENCY = bounded("concurrency", 1, 512);
const ROUNDS = bounded("rounds", 1, 100);
/** The target: dagstream's batch requests/s ÷ the bare server's, at least. */
const BATCH_TARGET = 0.6;
const STREAMS = bounded("streams", 1, 5000);
const DELAY_MS = bounded("delay-ms", 1000, 60_000);
const HEARTBEAT_MS = bounded("heartbeat-ms", 100, 60_000);

function bounded(name: keyof typeof flags, min: number, max: number): number {
  const value = Number(flags[name]);
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new RangeError(`--${name} must be a number from ${min} to ${max}`);
  }
  return value;
}

const JSON_HEADERS = { "Content-Type": "application/json", Accept: "application/json" };
const SSE_HEADERS = { "Content-Type": "application/json", Accept: "text/event-stream" };

/** The 5-task DAG of the batch test: a diamond and a lone task, all `mock:echo`. */
const SMALL_DAG = JSON.stringify({
  tasks: [
    { id: "a", tool: "mock:echo", arguments: { n: 1 } },
    { id: "b", tool: "mock:echo", arguments: { from: "$OUTPUT[a].n" }, dependsOn: ["a"] },
    { id: "c", tool: "mock:echo", arguments: { n: 3 }, dependsOn: ["a"] },
    { id: "d", tool: "mock:echo", arguments: { b: "$OUTPUT[b]" }, dependsOn: ["b", "c"] },
    { id: "e", tool: "mock:echo", arguments: { n: 5 } },
  ],
});

/** The DAG of each stream: a long wait, then an echo: 5 events (ids 1-5). */
const LONG_DAG = JSON.stringify({
  tasks: [
    { id: "wait", tool: "mock:delay", arguments: { ms: DELAY_MS } },
    { id: "after", tool: "mock:echo", arguments: { waited: "$OUTPUT[wait]" }, dependsOn: ["wait"] },
  ],
});
const STREAM_EVENT_TYPES = [
  "task_start",
  "task_complete",
  "task_start",
  "task_complete",
  "execution_complete",
];

// ---------------------------------------------------------------------------
// Processes

const group = new ProcessGroup();

/** Starts `deno <args>`; the dagstream server's per-request log lines go to /dev/null. */
function startServer(name: string, args: string[]): Promise<ServerProcess> {
  const profile = flags["profile-dir"];
  return group.startServer(name, args, {
    // The dagstream server logs a JSON line per request on stderr; it goes to
    // /dev/null (the writes still happen, as in production).
    stderr: "null",
    profileDir: profile === undefined ? undefined : `${profile}/${name}`,
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

// ---------------------------------------------------------------------------
// 1. Batch load

interface LoadResult {
  ok: number;
  failed: number;
  seconds: number;
  latencies: number[];
  /** CPU seconds the server process used meanwhile (all its threads). */
  serverCpuSeconds: number;
  /** CPU seconds this process (the load generator) used meanwhile. */
  clientCpuSeconds: number;
}

/** N fetch loops POSTing `body` to `url` for `seconds`; counts checked answers. */
async function load(
  serverPid: number,
  url: string,
  body: string,
  expected: string,
  seconds: number,
  concurrency: number,
): Promise<LoadResult> {
  const latencies: number[] = [];
  let ok = 0;
  let failed = 0;
  // One guard for the whole phase: a request still hanging 15 s after the
  // end is aborted, so the phase is bounded whatever the server does.
  const guard = new AbortController();
  const guardTimer = setTimeout(
    () => guard.abort(new Error("phase overran")),
    seconds * 1000 + 15_000,
  );
  const serverCpu0 = cpuSeconds(serverPid);
  const clientCpu0 = cpuSeconds(Deno.pid);
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  const loop = async () => {
    while (performance.now() < end) {
      const start = performance.now();
      try {
        const response = await fetch(url, {
          method: "POST",
          headers: JSON_HEADERS,
          body,
          signal: guard.signal,
        });
        const text = await response.text();
        if (response.status === 200 && sameResult(text, expected)) {
          ok++;
          latencies.push(performance.now() - start);
        } else failed++;
      } catch {
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  const elapsed = (performance.now() - t0) / 1000;
  clearTimeout(guardTimer);
  return {
    ok,
    failed,
    seconds: elapsed,
    latencies,
    serverCpuSeconds: cpuSeconds(serverPid) - serverCpu0,
    clientCpuSeconds: cpuSeconds(Deno.pid) - clientCpu0,
  };
}

/** Both answers describe 5 successful tasks (timings differ from run to run). */
function sameResult(text: string, expected: string): boolean {
  if (text === expected) return true;
  try {
    const r = JSON.parse(text);
    return r.totalTasks === 5 && r.successfulTasks === 5 && r.results?.length === 5;
  } catch {
    return false;
  }
}

function merge(a: LoadResult, b: LoadResult): LoadResult {
  return {
    ok: a.ok + b.ok,
    failed: a.failed + b.failed,
    seconds: a.seconds + b.seconds,
    latencies: a.latencies.concat(b.latencies),
    serverCpuSeconds: a.serverCpuSeconds + b.serverCpuSeconds,
    clientCpuSeconds: a.clientCpuSeconds + b.clientCpuSeconds,
  };
}

function summarise(r: LoadResult) {
  const sorted = Float64Array.from(r.latencies).sort();
  return {
    requests: r.ok,
    failed: r.failed,
    seconds: r.seconds,
    requestsPerSecond: r.ok / r.seconds,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    serverCpuPercent: 100 * r.serverCpuSeconds / r.seconds,
    serverCpuMicrosPerRequest: 1e6 * r.serverCpuSeconds / r.ok,
    clientCpuPercent: 100 * r.clientCpuSeconds / r.seconds,
  };
}

// ---------------------------------------------------------------------------
// 2. Concurrent streams

interface StreamOutcome {
  status: number;
  ids: string[];
  types: string[];
  keepAlives: number;
  error?: string;
}

/**
 * Opens one SSE stream and reads it to its end. `onFirstEvent` is called
 * once the first event has arrived (the stream is really open).
 */
async function watch(
  url: string,
  init: RequestInit,
  onFirstEvent: () => void,
  signal: AbortSignal,
): Promise<StreamOutcome> {
  const outcome: StreamOutcome = { status: 0, ids: [], types: [], keepAlives: 0 };
  let first = true;
  try {
    const response = await fetch(url, { ...init, signal });
    outcome.status = response.status;
    if (response.status !== 200 || response.body === null) {
      await response.body?.cancel();
      onFirstEvent();
      return outcome;
    }
    const parser = createParser({
      onEvent(message) {
        outcome.ids.push(message.id ?? "");
        outcome.types.push(message.event ?? "message");
        if (first) {
          first = false;
          onFirstEvent();
        }
      },
      onComment(comment) {
        if (comment.trim() === "keep-alive") outcome.keepAlives++;
      },
    });
    const decoder = new TextDecoder();
    for await (const chunk of response.body) parser.feed(decoder.decode(chunk, { stream: true }));
  } catch (error) {
    outcome.error = error instanceof Error ? error.message : String(error);
  }
  if (first) onFirstEvent();
  return outcome;
}

interface StreamPhase {
  streams: number;
  openedInMs: number;
  rssBeforeKiB: number;
  rssOpenKiB: number;
  rssAfterKiB: number;
  perStreamKiB: number;
  complete: number;
  eventsExpected: number;
  eventsReceived: number;
  eventsLost: number;
  badStatus: number;
  errors: number;
  keepAlivesMedian: number;
  keepAlivesMin: number;
  wallMs: number;
}

/**
 * Holds `count` streams open on `server`, opened by `open(i, onFirstEvent,
 * signal)`, measures its RSS and checks every stream's events.
 */
async function holdStreams(
  server: ServerProcess,
  count: number,
  open: (onFirstEvent: () => void, signal: AbortSignal) => Promise<StreamOutcome>,
  beforeOpening?: () => Promise<void>,
): Promise<StreamPhase> {
  const rssBeforeKiB = (await settledRssKiB(server.pid)).kib;
  await beforeOpening?.();
  const guard = new AbortController();
  const guardTimer = setTimeout(() => guard.abort(new Error("streams overran")), DELAY_MS + 60_000);
  let opened = 0;
  let allOpen!: () => void;
  const allOpened = new Promise<void>((resolve) => allOpen = resolve);
  const t0 = performance.now();
  const outcomes: Promise<StreamOutcome>[] = [];
  for (let i = 0; i < count; i++) {
    outcomes.push(open(() => {
      if (++opened === count) allOpen();
    }, guard.signal));
  }
  await allOpened;
  const openedInMs = performance.now() - t0;
  if (openedInMs > DELAY_MS - 2.5 * HEARTBEAT_MS) {
    console.error(
      `warning: opening took ${Math.round(openedInMs)} ms; raise --delay-ms ` +
        "so that streams stay open a few heartbeats",
    );
  }
  // With every stream open, wait two heartbeats, then sample RSS a few times.
  await sleep(2 * HEARTBEAT_MS);
  const samples: number[] = [];
  for (let k = 0; k < 3; k++) {
    samples.push(rssKiB(server.pid));
    await sleep(HEARTBEAT_MS / 4);
  }
  const rssOpenKiB = median(samples);
  const results = await Promise.all(outcomes);
  const wallMs = performance.now() - t0;
  clearTimeout(guardTimer);
  const rssAfterKiB = (await settledRssKiB(server.pid)).kib;

  const expectedIds = STREAM_EVENT_TYPES.map((_, k) => String(k + 1));
  let complete = 0;
  let received = 0;
  let badStatus = 0;
  let errors = 0;
  for (const r of results) {
    if (r.status !== 200) badStatus++;
    if (r.error !== undefined) errors++;
    received += r.ids.length;
    if (
      r.ids.length === expectedIds.length && r.ids.every((id, k) => id === expectedIds[k]) &&
      r.types.every((t, k) => t === STREAM_EVENT_TYPES[k])
    ) complete++;
  }
  const keepAlives = results.map((r) => r.keepAlives);
  const eventsExpected = count * expectedIds.length;
  return {
    streams: count,
    openedInMs,
    rssBeforeKiB,
    rssOpenKiB,
    rssAfterKiB,
    perStreamKiB: (rssOpenKiB - rssBeforeKiB) / count,
    complete,
    eventsExpected,
    eventsReceived: received,
    eventsLost: eventsExpected - received,
    badStatus,
    errors,
    keepAlivesMedian: median(keepAlives),
    keepAlivesMin: Math.min(...keepAlives),
    wallMs,
  };
}

// ---------------------------------------------------------------------------
// Main

const limit = openFileLimit();
if (!flags["skip-streams"] && limit < 2 * STREAMS + 512) {
  console.error(
    `The open-file limit is ${limit}; ${STREAMS} streams need about ${2 * STREAMS + 512}.\n` +
      `Raise it first, e.g. \`ulimit -n 4096\`, or pass --streams ${
        Math.floor((limit - 512) / 2)
      }.`,
  );
  Deno.exit(2);
}

const loadAverage = { start: Deno.loadavg(), end: [] as number[] };
if (!Number.isInteger(ROUNDS)) throw new RangeError("--rounds must be a whole number");
const report: Record<string, unknown> = {
  concurrency: CONCURRENCY,
  durationSeconds: DURATION_S,
  batchTarget: BATCH_TARGET,
  streams: STREAMS,
  delayMs: DELAY_MS,
  heartbeatMs: HEARTBEAT_MS,
};
let exitCodes: Record<string, number | null> = {};

try {
  const dagstream = await startServer(
    "dagstream",
    dagstreamServerArgs(["--heartbeat-ms", String(HEARTBEAT_MS)]),
  );
  // dagstream's answer to the batch DAG: the bare server answers exactly this.
  const first = await fetch(`${dagstream.url}execute`, {
    method: "POST",
    headers: JSON_HEADERS,
    body: SMALL_DAG,
  });
  const expected = await first.text();
  if (first.status !== 200 || !sameResult(expected, expected)) {
    throw new Error(`POST /execute answered ${first.status}: ${expected}`);
  }
  const bare = await startServer("bare", [
    "run",
    "--allow-net=127.0.0.1",
    "bench/bare_server.ts",
    "--port",
    "0",
    "--json",
    expected,
  ]);
  report.rssIdleKiB = { dagstream: rssKiB(dagstream.pid), bare: rssKiB(bare.pid) };

  if (!flags["skip-streams"]) {
    // (a) 1,000 watchers of one run, started just before they connect.
    let runId = "";
    report.watchers = await holdStreams(
      dagstream,
      STREAMS,
      (onFirst, signal) =>
        watch(
          `${dagstream.url}runs/${runId}/events`,
          { headers: { Accept: "text/event-stream" } },
          onFirst,
          signal,
        ),
      async () => {
        const started = await fetch(`${dagstream.url}runs`, {
          method: "POST",
          headers: JSON_HEADERS,
          body: LONG_DAG,
        });
        const body = await started.json();
        if (started.status !== 202 || typeof body.runId !== "string") {
          throw new Error(`POST /runs answered ${started.status}`);
        }
        runId = body.runId;
      },
    );
    // (c, for reference) the same number of plain streams held by the bare server.
    report.bareStreams = await holdStreams(
      bare,
      STREAMS,
      (onFirst, signal) =>
        watch(
          `${bare.url}sse?ms=${DELAY_MS}&heartbeat=${HEARTBEAT_MS}`,
          { headers: { Accept: "text/event-stream" } },
          onFirst,
          signal,
        ),
    );
    // (b) 1,000 runs, each streamed to its own client.
    report.executeStreams = await holdStreams(
      dagstream,
      STREAMS,
      (onFirst, signal) =>
        watch(
          `${dagstream.url}execute`,
          { method: "POST", headers: SSE_HEADERS, body: LONG_DAG },
          onFirst,
          signal,
        ),
    );
  }
  if (!flags["skip-load"]) {
    const targets = { dagstream: `${dagstream.url}execute`, bare: bare.url };
    const pidOf = { dagstream: dagstream.pid, bare: bare.pid };
    const phase = (name: "dagstream" | "bare", seconds: number) =>
      load(pidOf[name], targets[name], SMALL_DAG, expected, seconds, CONCURRENCY);
    for (const name of ["dagstream", "bare"] as const) await phase(name, WARMUP_S);
    // Each round gives each server DURATION_S / ROUNDS seconds; the order
    // alternates (bare, dagstream, dagstream, bare, …).
    const perPhase = DURATION_S / ROUNDS;
    const results = { dagstream: [] as LoadResult[], bare: [] as LoadResult[] };
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0
        ? ["bare", "dagstream"] as const
        : ["dagstream", "bare"] as const;
      for (const name of order) results[name].push(await phase(name, perPhase));
    }
    const rps = (r: LoadResult) => r.ok / r.seconds;
    const batch = {
      rounds: ROUNDS,
      secondsPerPhase: perPhase,
      dagstream: summarise(results.dagstream.reduce(merge)),
      bare: summarise(results.bare.reduce(merge)),
      ratio: 0,
      ratioPerRound: spread(pairedRatios(results.dagstream.map(rps), results.bare.map(rps))),
      rssAfterKiB: { dagstream: rssKiB(dagstream.pid), bare: rssKiB(bare.pid) },
    };
    batch.ratio = batch.dagstream.requestsPerSecond / batch.bare.requestsPerSecond;
    report.batch = batch;
  }
} finally {
  exitCodes = await group.stopAll();
}
loadAverage.end = Deno.loadavg();
report.exitCodes = exitCodes;
report.loadAverage = loadAverage;

// ---------------------------------------------------------------------------
// Report

const fmt = (x: number, digits = 0) =>
  x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
const la = (l: number[]) => l.map((x) => x.toFixed(2)).join(" ");
const md: string[] = [
  "## Server load: the bundled server against a bare `Deno.serve`\n",
  `Load average at start ${la(loadAverage.start)}, at end ${la(loadAverage.end)}; ` +
  `${CONCURRENCY} concurrent loops, ${DURATION_S} s per server in ${ROUNDS} rounds ` +
  `(after ${WARMUP_S} s warm-up each).\n`,
];
const batch = report.batch as
  | {
    dagstream: ReturnType<typeof summarise>;
    bare: ReturnType<typeof summarise>;
    ratio: number;
    ratioPerRound: Spread;
    rssAfterKiB: Record<string, number>;
  }
  | undefined;
if (batch) {
  md.push(
    "| server | requests/s | p50 ms | p99 ms | requests | failed | server CPU | " +
      "server CPU µs/request | load generator CPU |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  );
  for (const name of ["dagstream", "bare"] as const) {
    const s = batch[name];
    md.push(
      `| ${name} | ${fmt(s.requestsPerSecond)} | ${fmt(s.p50Ms, 2)} | ${fmt(s.p99Ms, 2)} | ` +
        `${fmt(s.requests)} | ${s.failed} | ${fmt(s.serverCpuPercent)}% | ` +
        `${fmt(s.serverCpuMicrosPerRequest)} | ${fmt(s.clientCpuPercent)}% |`,
    );
  }
  md.push(
    `\ndagstream / bare = ${batch.ratio.toFixed(2)} over all rounds; per round ` +
      `${formatSpread(batch.ratioPerRound)} (target ≥ ${BATCH_TARGET}: ${
        batch.ratioPerRound.median >= BATCH_TARGET ? "met" : "not met"
      })\n`,
  );
}
const labels = {
  watchers: "GET /runs/<id>/events watchers of one run",
  executeStreams: "POST /execute SSE streams (one run each)",
  bareStreams: "plain ReadableStream SSE bodies on the bare server (reference)",
};
for (const key of ["watchers", "executeStreams", "bareStreams"] as const) {
  const p = report[key] as StreamPhase | undefined;
  if (!p) continue;
  const label = `${p.streams} ${labels[key]}`;
  md.push(
    `${label}: opened in ${fmt(p.openedInMs)} ms; RSS ${fmt(p.rssBeforeKiB / 1024, 1)} MiB ` +
      `before, ${fmt(p.rssOpenKiB / 1024, 1)} MiB open (${fmt(p.perStreamKiB, 1)} KiB per ` +
      `stream), ${fmt(p.rssAfterKiB / 1024, 1)} MiB after; complete streams ${p.complete}/` +
      `${p.streams}; events ${p.eventsReceived}/${p.eventsExpected} (lost ${p.eventsLost}); ` +
      `keep-alives per stream: median ${p.keepAlivesMedian}, min ${p.keepAlivesMin}; ` +
      `bad status ${p.badStatus}, errors ${p.errors}`,
  );
}
md.push(`\nserver exit codes: ${JSON.stringify(exitCodes)}`);

if (flags.json) {
  console.log(JSON.stringify({ ...report, markdown: md.join("\n") }));
} else {
  console.log(md.join("\n"));
}
