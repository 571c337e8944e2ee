/**
 * Memory under hostile input, against the real server process on 127.0.0.1
 * (resident memory is the server's `VmRSS` from /proc, read from here):
 *
 * 1. Amplified logs: `--runs` (20) runs of a 130 KB DAG — one task echoing
 *    60 KB, then a chain of 990 `mock:echo` tasks each passing on the one
 *    before by `$OUTPUT` reference (every event near the 64 KiB payload cap),
 *    and a `mock:delay` that keeps the run active. First with the default
 *    limits (the logs together stay under `--max-log-bytes-total`, 512 MiB),
 *    then with `--max-log-bytes-total` `--small-total-mib` (64): new runs get
 *    503 with Retry-After once the active ones fill it.
 * 2. Stalled watchers: `--watchers` (1,000) connections that ask for the
 *    events of one finished `--tasks` (10,000)-task run and never read a byte
 *    (raw TCP), against the cost of as many idle watchers (of a run with no
 *    events yet); meanwhile a fast watcher reads the whole run.
 *
 * Each phase (`defaults`, `small` for 1; `watchers` for 2) has a server of
 * its own; `--phases defaults,small,watchers` picks.
 *
 * ```sh
 * ulimit -n 4096   # 1,000 watchers need about 1,100 descriptors per side
 * deno run -A tests/stress/memory.ts [--runs 20] [--small-total-mib 64] \
 *   [--watchers 1000] [--tasks 10000] [--pad 1000] [--phases defaults,small,watchers]
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  memoryMiB,
  post,
  readStream,
  Report,
  requireOpenFiles,
  runProblem,
  type ServerProcess,
  sleep,
  start,
} from "./_lib.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string", default: "20" },
    "small-total-mib": { type: "string", default: "64" },
    watchers: { type: "string", default: "1000" },
    tasks: { type: "string", default: "10000" },
    pad: { type: "string", default: "1000" },
    phases: { type: "string", default: "defaults,small,watchers" },
  },
  strict: true,
});
const options = {
  runs: Number(values.runs),
  smallTotalMiB: Number(values["small-total-mib"]),
  watchers: Number(values.watchers),
  tasks: Number(values.tasks),
  pad: Number(values.pad),
  phases: new Set(values.phases!.split(",")),
};
for (const [name, value] of Object.entries(options)) {
  if (typeof value === "number" && !(Number.isInteger(value) && value >= 0)) {
    throw new Error(`--${name} must be a whole number`);
  }
}
if (options.runs > 200 || options.watchers > 5000 || options.tasks > 100_000) {
  throw new Error("at most 200 runs, 5,000 watchers and 100,000 tasks");
}
requireOpenFiles(options.watchers + 200);

const report = new Report();
let failures = 0;
function fail(message: string): void {
  failures++;
  if (failures <= 20) console.error(`FAIL ${message}`);
}

/** Resident memory once it stops moving (two samples 500 ms apart within 1%, at most 15 s). */
async function settledMiB(server: ServerProcess): Promise<number> {
  let last = memoryMiB(server.pid);
  for (let i = 0; i < 30; i++) {
    await sleep(500);
    const now = memoryMiB(server.pid);
    if (Math.abs(now - last) <= last / 100) return now;
    last = now;
  }
  return last;
}

/** One task echoing 60 KB, a chain of 990 echoes passing it on, and a task that waits. */
function amplifiedDag(): { tasks: Record<string, unknown>[] } {
  const tasks: Record<string, unknown>[] = [
    { id: "big", tool: "mock:echo", arguments: { s: "x".repeat(60_000) } },
    { id: "slow", tool: "mock:delay", arguments: { ms: 600_000 } },
  ];
  for (let i = 1; i <= 990; i++) {
    const prev = i === 1 ? "big" : `e${i - 1}`;
    tasks.push({ id: `e${i}`, tool: "mock:echo", arguments: { v: `$OUTPUT[${prev}]` } });
  }
  return { tasks };
}

/**
 * Follows a run's events until the chain's last task completed: reconnects
 * past events that gave way (the log is bounded), so the run's progress is
 * known without reading it all.
 */
async function awaitChainEnd(server: ServerProcess, runId: string): Promise<string> {
  let after = 0;
  for (let attempt = 0; attempt < 100; attempt++) {
    const response = await fetch(server.at(`/runs/${runId}/events`), {
      headers: { Accept: "text/event-stream", "Last-Event-ID": String(after) },
    });
    if (response.status !== 200) return `watch: ${response.status} ${await response.text()}`;
    let done = false;
    const { events } = await readStream(response.body!, {
      light: true,
      onEvent(event) {
        if (event.id !== undefined) after = event.id;
        if (event.type === "task_complete" && event.data.taskId === "e990") {
          done = true;
          return "stop";
        }
      },
    });
    if (done) return "";
    const last = events.at(-1);
    if (last?.type === "error" && last.data.code === "events_lost") {
      after += last.data.missedEvents as number;
      continue;
    }
    return `the stream ended without e990: ${last?.type} ${JSON.stringify(last?.data)}`;
  }
  return "gave up after 100 reconnects";
}

async function cancelAll(server: ServerProcess, ids: string[]): Promise<void> {
  await Promise.all(ids.map(async (id) => {
    const response = await fetch(server.at(`/runs/${id}`), { method: "DELETE" });
    await response.body?.cancel();
  }));
}

async function amplified(label: string, flags: string[], sequential: boolean): Promise<void> {
  const server = await start(["--heartbeat-ms", "0", ...flags]);
  const ids: string[] = [];
  try {
    await (await post(server, "/execute", { tasks: [{ id: "a", tool: "mock:echo" }] })).text();
    const before = await settledMiB(server);
    const dag = amplifiedDag();
    const body = JSON.stringify(dag).length;
    const refused: { status: number; retryAfter: string | null; detail: string }[] = [];
    const t0 = performance.now();
    const one = async () => {
      const response = await post(server, "/runs", dag, "application/json");
      if (response.status !== 202) {
        const problem = await response.json();
        refused.push({
          status: response.status,
          retryAfter: response.headers.get("retry-after"),
          detail: problem.detail,
        });
        return;
      }
      const { runId } = await response.json();
      ids.push(runId);
      const problem = await awaitChainEnd(server, runId);
      if (problem) fail(`${label}: run ${runId}: ${problem}`);
    };
    if (sequential) { for (let i = 0; i < options.runs; i++) await one(); }
    else await Promise.all(Array.from({ length: options.runs }, one));
    const seconds = Math.round((performance.now() - t0) / 100) / 10;
    const after = await settledMiB(server);
    report.set(label, {
      flags: flags.join(" ") || "(defaults)",
      requestBytes: body,
      runsAccepted: ids.length,
      runsRefused: refused.length,
      firstRefusal: refused[0],
      chainsDoneAfterS: seconds,
      rssBeforeMiB: before,
      rssAfterMiB: after,
      rssPeakMiB: memoryMiB(server.pid, "VmHWM"),
      rssGrowthPerAcceptedRunMiB: ids.length === 0
        ? undefined
        : Math.round((after - before) / ids.length * 10) / 10,
    });
    if (refused.some((r) => r.status !== 503 || !/^\d+$/.test(r.retryAfter ?? ""))) {
      fail(`${label}: a refusal was not 503 with Retry-After`);
    }
  } finally {
    await cancelAll(server, ids);
    await server.stop();
  }
}

/** Opens `n` connections asking for `path` as an event stream; they never read. */
async function openStalled(server: ServerProcess, path: string, n: number): Promise<Deno.Conn[]> {
  const { hostname, port } = new URL(server.url);
  const request = new TextEncoder().encode(
    `GET ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nAccept: text/event-stream\r\n\r\n`,
  );
  const conns: Deno.Conn[] = [];
  for (let i = 0; i < n; i++) {
    const conn = await Deno.connect({ hostname, port: Number(port) });
    await conn.write(request);
    conns.push(conn);
  }
  return conns;
}

async function watchers(): Promise<void> {
  const n = options.watchers;
  const server = await start([
    "--heartbeat-ms",
    "0",
    "--max-tasks",
    String(options.tasks),
    ...(n + 10 > 10_000 ? ["--max-watchers", String(n + 10)] : []),
  ]);
  try {
    await (await post(server, "/execute", { tasks: [{ id: "a", tool: "mock:echo" }] })).text();
    // Idle watchers: a run with no event to send them.
    const held = await post(server, "/runs", {
      tasks: [{ id: "hold", tool: "mock:delay", arguments: { ms: 600_000 } }],
    }, "application/json");
    const { runId: heldId } = await held.json();
    await sleep(500);
    const idleBefore = await settledMiB(server);
    const idle = await openStalled(server, `/runs/${heldId}/events`, n);
    const idleAfter = await settledMiB(server);
    for (const conn of idle) conn.close();
    await cancelAll(server, [heldId]);
    await sleep(1000);

    // One finished run of `tasks` echoes, each passing on `pad` characters.
    const tasks: Record<string, unknown>[] = [
      { id: "seed", tool: "mock:echo", arguments: { s: "p".repeat(options.pad) } },
    ];
    for (let i = 1; i < options.tasks; i++) {
      tasks.push({ id: `t${i}`, tool: "mock:echo", arguments: { i, pad: "$OUTPUT[seed].s" } });
    }
    const started = await post(server, "/runs", { tasks }, "application/json");
    if (started.status !== 202) throw new Error(`POST /runs: ${await started.text()}`);
    const { runId } = await started.json();
    const path = `/runs/${runId}/events`;
    const t = performance.now();
    const first = await readStream((await fetch(server.at(path))).body!, { light: true });
    const aloneMs = Math.round(performance.now() - t);
    const problem = runProblem(first.events, options.tasks);
    if (problem) fail(`the first reader: ${problem}`);
    const runBytes = first.chars;

    const before = await settledMiB(server);
    const t0 = performance.now();
    const stalled = await openStalled(server, path, n);
    const openSeconds = (performance.now() - t0) / 1000;
    const after = await settledMiB(server);

    // A fast watcher of the same run meanwhile.
    const t1 = performance.now();
    const fast = await readStream((await fetch(server.at(path))).body!, { light: true });
    const fastMs = Math.round(performance.now() - t1);
    const fastProblem = runProblem(fast.events, options.tasks);
    if (fastProblem) fail(`a fast watcher beside ${n} stalled ones: ${fastProblem}`);
    for (const conn of stalled) conn.close();
    await sleep(1000);
    report.set(`${n} stalled watchers of one finished ${options.tasks}-task run`, {
      runEventsMB: Math.round(runBytes / 1e5) / 10,
      fastWatcherAloneMs: aloneMs,
      idleWatchers: {
        rssBeforeMiB: idleBefore,
        rssAfterMiB: idleAfter,
        perWatcherKiB: Math.round((idleAfter - idleBefore) * 1024 / n),
      },
      stalledWatchers: {
        openedInS: Math.round(openSeconds * 10) / 10,
        rssBeforeMiB: before,
        rssAfterMiB: after,
        perWatcherKiB: Math.round((after - before) * 1024 / n),
      },
      fastWatcherBeside: {
        events: fast.events.length,
        complete: fastProblem === undefined,
        ms: fastMs,
      },
      rssAfterClosingMiB: memoryMiB(server.pid),
      rssPeakMiB: memoryMiB(server.pid, "VmHWM"),
    });
  } finally {
    await server.stop();
  }
}

if (options.phases.has("defaults")) {
  await amplified(`1a. ${options.runs} amplified runs at once, default limits`, [], false);
}
if (options.phases.has("small")) {
  await amplified(
    `1b. ${options.runs} amplified runs one after the other, --max-log-bytes-total ${options.smallTotalMiB} MiB`,
    ["--max-log-bytes-total", String(options.smallTotalMiB * 1024 * 1024)],
    true,
  );
}
if (options.phases.has("watchers")) await watchers();

report.set("failures", failures);
report.print("MEMORY");
if (failures > 0) Deno.exit(1);
