/**
 * Soak: for `--duration` seconds, `--concurrency` clients mix everything the
 * other stress scripts do, against the fault server (built-in tools plus the
 * faulty `bad:*` ones) on 127.0.0.1: streams read to the end, streams left
 * at random points, detached runs watched with reconnects and
 * `Last-Event-ID`, batch answers, bad requests of every kind, slow readers,
 * cancellations and reads of every route. Then SIGTERM.
 *
 * Reports requests, runs, events, errors (any 5xx, any broken invariant,
 * any "internal error" the server logged), peak and final memory, and the
 * shutdown. Exits 1 if anything went wrong.
 *
 * ```sh
 * ulimit -n 8192
 * deno run -A tests/stress/soak.ts [--duration 600] [--concurrency 64] [--heap-mib 0] [--max-runs 0]
 * ```
 *
 * `--heap-mib N` caps the server's V8 heap at N MiB: it must then run the
 * whole soak without running out of memory. `--max-runs N` passes that flag.
 *
 * @module
 */

import {
  alive,
  childrenOf,
  flags,
  memoryMiB,
  openFds,
  post,
  readStream,
  Report,
  requireOpenFiles,
  runProblem,
  sleep,
  start,
  waitIdle,
  type WireEvent,
} from "./_lib.ts";

const options = flags({ duration: 600, concurrency: 64, "max-runs": 0, "heap-mib": 0 });
requireOpenFiles(4 * options.concurrency + 200);

const report = new Report();
const counts = {
  requests: 0,
  runs: 0,
  events: 0,
  streamsRead: 0,
  streamsLeft: 0,
  watchers: 0,
  reconnects: 0,
  reconnectsToAForgottenRun: 0,
  batch: 0,
  badRequests: 0,
  slowReaders: 0,
  eventsLostNotices: 0,
  deletes: 0,
  reads: 0,
  status5xx: 0,
  errors: 0,
};
const errorSamples: string[] = [];
function error(message: string): void {
  counts.errors++;
  if (errorSamples.length < 20) errorSamples.push(message);
}

const server = await start(
  [
    "--task-timeout",
    "2000",
    "--max-active-runs",
    "5000",
    "--heartbeat-ms",
    "2000",
    ...(options["max-runs"] > 0 ? ["--max-runs", String(options["max-runs"])] : []),
  ],
  true,
  options["heap-mib"],
);

async function request(input: string, init?: RequestInit): Promise<Response> {
  counts.requests++;
  const response = await fetch(server.at(input), init);
  if (response.status >= 500) {
    counts.status5xx++;
    error(`${init?.method ?? "GET"} ${input}: ${response.status} ${await response.text()}`);
  }
  return response;
}

function pick<T>(items: readonly T[]): T {
  return items[Math.floor(Math.random() * items.length)];
}

const TOOLS = [
  "mock:echo",
  "mock:echo",
  "mock:echo",
  "mock:delay",
  "mock:delay",
  "mock:fail",
  "bad:throw-null",
  "bad:throw-symbol",
  "bad:throw-proxy",
  "bad:throw-bad-error",
  "bad:reject",
  "bad:never",
  "bad:thenable-throws",
  "bad:undefined",
  "bad:bigint",
  "bad:circular",
  "bad:huge",
  "bad:wide",
  "bad:deep",
  "bad:flaky-json",
  "bad:getter-throws",
  "bad:ignore-abort",
  "bad:throw-after-timeout",
  "bad:progress-spam",
] as const;

/** A random DAG of good and faulty tools, some passing outputs on. */
function randomDag(maxTasks = 25): { tasks: Record<string, unknown>[] } {
  const n = 1 + Math.floor(Math.random() * maxTasks);
  const tasks: Record<string, unknown>[] = [];
  for (let i = 0; i < n; i++) {
    const tool = pick(TOOLS);
    const task: Record<string, unknown> = { id: `t${i}`, tool };
    if (tool === "mock:delay") task.arguments = { ms: Math.floor(Math.random() * 200) };
    if (tool === "bad:huge") task.arguments = { bytes: Math.floor(Math.random() * 300_000) };
    if (tool === "bad:flaky-json") task.arguments = { after: Math.floor(Math.random() * 4) };
    if (tool === "mock:echo" && i > 0 && Math.random() < 0.5) {
      task.arguments = { from: `$OUTPUT[t${Math.floor(Math.random() * i)}]` };
    }
    const deps = new Set<string>();
    for (let d = 0; d < 2 && i > 0; d++) {
      if (Math.random() < 0.4) deps.add(`t${Math.floor(Math.random() * i)}`);
    }
    if (deps.size > 0) task.dependsOn = [...deps];
    tasks.push(task);
  }
  return { tasks };
}

const knownRuns: string[] = [];
function remember(runId: string | null): void {
  if (runId === null) return;
  knownRuns.push(runId);
  if (knownRuns.length > 500) knownRuns.shift();
}

async function streamToEnd(): Promise<void> {
  const dag = randomDag();
  counts.runs++;
  const response = await post(server, "/execute", dag);
  counts.requests++;
  if (response.status !== 200) return error(`stream: ${response.status} ${await response.text()}`);
  remember(response.headers.get("x-run-id"));
  const { events } = await readStream(response.body!);
  counts.events += events.length;
  counts.streamsRead++;
  const problem = runProblem(events, dag.tasks.length);
  if (problem) error(`stream: ${problem}`);
}

async function streamAndLeave(): Promise<void> {
  const dag = randomDag();
  counts.runs++;
  const response = await post(server, "/execute", dag);
  counts.requests++;
  if (response.status !== 200) return error(`leave: ${response.status}`);
  remember(response.headers.get("x-run-id"));
  const k = Math.floor(Math.random() * 2 * dag.tasks.length);
  let seen = 0;
  const { events } = await readStream(response.body!, {
    onEvent: () => (++seen >= k ? "stop" : undefined),
  });
  counts.events += events.length;
  counts.streamsLeft++;
}

async function watchWithReconnects(): Promise<void> {
  const dag = randomDag();
  counts.runs++;
  const started = await request("/runs", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(dag),
  });
  if (started.status !== 202) return error(`POST /runs: ${started.status}`);
  const { runId } = await started.json();
  remember(runId);
  await Promise.all(Array.from({ length: 1 + Math.floor(Math.random() * 3) }, async () => {
    counts.watchers++;
    const got: WireEvent[] = [];
    let last = 0;
    for (let attempt = 0; attempt < 1000; attempt++) {
      const response = await request(`/runs/${runId}/events`, {
        headers: { Accept: "text/event-stream", "Last-Event-ID": String(last) },
      });
      if (response.status === 204) break;
      if (response.status === 404 && attempt > 0) {
        // The run ended and was forgotten (--max-kept-run-bytes) while this
        // client was away: what it missed is gone with it, as documented.
        counts.reconnectsToAForgottenRun++;
        return;
      }
      if (response.status !== 200) return error(`watch: ${response.status}`);
      if (attempt > 0) counts.reconnects++;
      const budget = Math.random() < 0.3 ? Infinity : 1 + Math.floor(Math.random() * 10);
      let taken = 0;
      const { stopped } = await readStream(response.body!, {
        onEvent: (e) => {
          got.push(e);
          last = e.id ?? last;
          return ++taken >= budget ? "stop" : undefined;
        },
      });
      if (!stopped) break;
    }
    counts.events += got.length;
    const problem = runProblem(got, dag.tasks.length);
    if (problem) error(`watch with reconnects: ${problem}`);
  }));
}

async function batch(): Promise<void> {
  const dag = randomDag();
  counts.runs++;
  const response = await post(server, "/execute", dag, "application/json");
  counts.requests++;
  if (response.status !== 200) return error(`batch: ${response.status}`);
  const result = await response.json();
  counts.batch++;
  if (result.results?.length !== dag.tasks.length) error("batch: wrong number of results");
}

const encoder = new TextEncoder();
const BAD: [string, () => RequestInit & { path: string }, number][] = [
  ["bad JSON", () => ({ path: "/execute", method: "POST", body: '{"tasks":[' }), 400],
  ["invalid UTF-8", () => ({
    path: "/runs",
    method: "POST",
    body: Uint8Array.from([123, 0xff, 125]),
  }), 400],
  ["empty body", () => ({ path: "/execute", method: "POST", body: "" }), 400],
  ["wrong type", () => ({ path: "/execute", method: "POST", body: '{"tasks":[{"id":1}]}' }), 422],
  ["cycle", () => {
    const k = 1 + Math.floor(Math.random() * 500);
    const tasks = Array.from({ length: k }, (_, i) => ({
      id: `c${i}`,
      tool: "mock:echo",
      dependsOn: [`c${(i + 1) % k}`],
    }));
    return { path: "/runs", method: "POST", body: JSON.stringify({ tasks }) };
  }, 422],
  ["duplicate", () => ({
    path: "/execute",
    method: "POST",
    body: '{"tasks":[{"id":"a","tool":"mock:echo"},{"id":"a","tool":"mock:echo"}]}',
  }), 422],
  ["too many tasks", () => ({
    path: "/execute",
    method: "POST",
    body: JSON.stringify({
      tasks: Array.from({ length: 1001 }, (_, i) => ({ id: `t${i}`, tool: "mock:echo" })),
    }),
  }), 422],
  ["deep", () => ({
    path: "/execute",
    method: "POST",
    body: `{"tasks":[{"id":"a","tool":"mock:echo","arguments":{"v":${
      "[".repeat(100_000) + "]".repeat(100_000)
    }}}]}`,
  }), 422],
  ["too large", () => ({
    path: "/runs",
    method: "POST",
    body: encoder.encode(" ".repeat(1024 * 1024 + 1)),
  }), 413],
  ["unknown tool", () => ({
    path: "/execute",
    method: "POST",
    body: '{"tasks":[{"id":"a","tool":"nope"}]}',
  }), 422],
  ["unknown route", () => ({ path: "/nope", method: "GET" }), 404],
  ["odd method", () => ({ path: "/execute", method: "PATCH" }), 405],
  ["unknown run", () => ({ path: "/runs/nope", method: "GET" }), 404],
];

async function badRequest(): Promise<void> {
  const [name, make, status] = pick(BAD);
  const { path, ...init } = make();
  const headers: Record<string, string> = { Accept: "application/json" };
  if (init.method === "POST") headers["Content-Type"] = "application/json";
  const response = await request(path, { ...init, headers });
  const text = await response.text();
  counts.badRequests++;
  if (response.status !== status) error(`${name}: ${response.status} instead of ${status}`);
  else if (response.headers.get("content-type") !== "application/problem+json") {
    error(`${name}: not a problem`);
  } else if (JSON.parse(text).status !== status) error(`${name}: problem status`);
}

async function slowReader(): Promise<void> {
  const tasks = [
    { id: "seed", tool: "bad:huge", arguments: { bytes: 20_000 } },
    ...Array.from({ length: 200 }, (_, i) => ({
      id: `e${i}`,
      tool: "mock:echo",
      arguments: { s: "$OUTPUT[seed]" },
    })),
  ];
  counts.runs++;
  const response = await post(server, "/execute", { tasks });
  counts.requests++;
  if (response.status !== 200) return error(`slow: ${response.status}`);
  remember(response.headers.get("x-run-id"));
  const { events } = await readStream(response.body!, { pauseMs: 200 });
  counts.events += events.length;
  counts.slowReaders++;
  const last = events.at(-1);
  if (last?.type === "error" && last.data.code === "events_lost") counts.eventsLostNotices++;
  else {
    const problem = runProblem(events, tasks.length);
    if (problem) error(`slow reader: ${problem}`);
  }
}

async function cancel(): Promise<void> {
  if (knownRuns.length === 0) return;
  const response = await request(`/runs/${pick(knownRuns)}`, { method: "DELETE" });
  await response.body?.cancel();
  counts.deletes++;
  if (![202, 404, 409].includes(response.status)) error(`DELETE: ${response.status}`);
}

async function reads(): Promise<void> {
  const path = pick([
    "/health",
    "/tools",
    "/runs",
    knownRuns.length > 0 ? `/runs/${pick(knownRuns)}` : "/health",
  ]);
  const response = await request(path);
  counts.reads++;
  if (response.status !== 200 && response.status !== 404) error(`GET ${path}: ${response.status}`);
  await response.json();
}

const ACTIONS: [number, () => Promise<void>][] = [
  [25, streamToEnd],
  [15, streamAndLeave],
  [15, watchWithReconnects],
  [10, batch],
  [20, badRequest],
  [3, slowReader],
  [5, cancel],
  [7, reads],
];
const totalWeight = ACTIONS.reduce((n, [w]) => n + w, 0);
function action(): () => Promise<void> {
  let r = Math.random() * totalWeight;
  for (const [w, f] of ACTIONS) {
    if ((r -= w) < 0) return f;
  }
  return reads;
}

try {
  await sleep(500);
  const baseline = memoryMiB(server.pid);
  report.set("baseline rss (MiB)", baseline);
  report.set("baseline open fds", openFds(server.pid));
  const t0 = performance.now();
  const end = t0 + options.duration * 1000;
  let peak = baseline;
  let peakFds = 0;
  const timeline: number[] = [];
  let died = false;
  const sampler = setInterval(() => {
    if (!alive(server.pid)) {
      if (!died) error(`the server died:\n${server.stderr().split("\n").slice(-15).join("\n")}`);
      died = true;
      return;
    }
    const rss = memoryMiB(server.pid);
    peak = Math.max(peak, rss);
    peakFds = Math.max(peakFds, openFds(server.pid));
    const elapsed = performance.now() - t0;
    const slot = Math.floor((elapsed / (options.duration * 1000)) * 10);
    if (timeline.length <= slot && slot < 10) timeline.push(rss);
  }, 1000);
  const progress = setInterval(() => {
    if (!died) report.set("progress", { ...counts, rssMiB: memoryMiB(server.pid) });
  }, 30_000);
  await Promise.all(Array.from({ length: options.concurrency }, async () => {
    while (performance.now() < end && !died) {
      try {
        await action()();
      } catch (e) {
        error(`client: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }));
  clearInterval(sampler);
  clearInterval(progress);
  if (died) {
    const tail = server.stderr().split("\n").filter((l) => !l.startsWith('{"time"')).slice(-40);
    throw new Error(`the server died; its last words:\n${tail.join("\n")}`);
  }
  const idle = await waitIdle(server, 30_000);
  if (!idle) error("runs still active 30 s after the load stopped");
  await sleep(5000);
  const final = memoryMiB(server.pid);
  const health = await (await fetch(server.at("/health"))).json();
  const kept = (await (await fetch(server.at("/runs"))).json()).runs.length;
  if (health.status !== "ok") error("unhealthy after the soak");
  const internal = server.stderr().split("\n").filter((l) => l.includes('"internal error"'));
  if (internal.length > 0) error(`the server logged ${internal.length} internal errors`);
  const children = childrenOf(server.pid);
  report.set("soak", {
    durationS: options.duration,
    concurrency: options.concurrency,
    ...counts,
    internalErrorsLogged: internal.length,
    runsKeptAtTheEnd: kept,
    rssBaselineMiB: baseline,
    rssPeakMiB: peak,
    rssFinalMiB: final,
    rssEvery10pctMiB: timeline,
    peakOpenFds: peakFds,
    finalOpenFds: openFds(server.pid),
    childProcesses: children.length,
  });
  const t1 = performance.now();
  server.kill("SIGTERM");
  const status = await server.status;
  report.set("shutdown after soak", {
    exitCode: status.code,
    ms: Math.round(performance.now() - t1),
    processGone: !alive(server.pid),
  });
  if (status.code !== 0) error(`exit code ${status.code}`);
} finally {
  await server.stop();
}
report.set("errors", errorSamples);
report.print("SOAK");
if (counts.errors > 0) Deno.exit(1);
