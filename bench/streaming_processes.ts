/**
 * Streaming throughput with every party in its own process: events per
 * second of one 20,001-event SSE stream (a 10,000-task random DAG of
 * `mock:echo` tasks, about 15,000 edges: a start and a complete per task,
 * then `execution_complete`), from three servers, each a process started
 * here, read by one client process:
 *
 * - `dagstream`: the bundled server, `src/server/main.ts`, as
 *   `deno task serve` starts it, with `--max-tasks` and `--max-body-bytes`
 *   raised for the DAG; `POST /execute` with `Accept: text/event-stream`.
 * - `hono`: `bench/hono_sse_server.ts`, the library's `StreamingExecutor`
 *   feeding Hono's `streamSSE`, one `writeSSE` per event.
 * - `raw`: `bench/raw_sse_server.ts`, no executor: the very frames the
 *   dagstream server sent (captured once, here), pre-encoded, 64 per chunk.
 *
 * The client (`bench/sse_client.ts`) POSTs the same DAG body to each and
 * counts the events of the answer with a byte-level counter, reading the
 * socket itself 256 KiB at a time (`--transport fetch`: with `fetch`); every stream
 * of every round must hold all 20,001 events. Before the rounds, each
 * server's stream is checked once with `eventsource-parser` (ids 1..N in
 * order, a start and a complete per task, one `execution_complete`). Each
 * round reads one stream from each server, the order rotating from round
 * to round; the ratios are taken per round, then their median and spread.
 *
 * ```sh
 * deno run --allow-run --allow-net=127.0.0.1 --allow-read=/proc --allow-sys=loadavg \
 *   bench/streaming_processes.ts [--warmup 3] [--rounds 15] [--json] [--only dagstream] \
 *   [--profile-dir DIR]
 * ```
 *
 * `--profile-dir DIR` writes CPU profiles of each server into `DIR/<name>/`.
 * Every process started here is stopped at the end, whatever happens.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { createParser } from "eventsource-parser";
import { randomDag } from "./random_dag.ts";
import { cpuSeconds, dagstreamServerArgs, ProcessGroup, type ServerProcess } from "./processes.ts";
import { type ClientResult, CountingClient } from "./sse_client.ts";
import {
  formatLoad,
  formatNumber,
  formatSpread,
  loadAverage,
  pairedRatios,
  type Spread,
  spread,
} from "./stats.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    warmup: { type: "string", default: "3" },
    rounds: { type: "string", default: "15" },
    tasks: { type: "string", default: "10000" },
    "frames-per-chunk": { type: "string", default: "64" },
    only: { type: "string" },
    transport: { type: "string", default: "tcp" },
    "profile-dir": { type: "string" },
    json: { type: "boolean", default: false },
  },
});

function whole(name: keyof typeof flags, min: number): number {
  const n = Number(flags[name]);
  if (!Number.isInteger(n) || n < min) {
    throw new RangeError(`--${name} must be a whole number ≥ ${min}`);
  }
  return n;
}

const TASKS = whole("tasks", 1);
const EXPECTED_EVENTS = 2 * TASKS + 1;
const WARMUP = whole("warmup", 0);
const ROUNDS = whole("rounds", 1);
const FRAMES_PER_CHUNK = whole("frames-per-chunk", 1);
const ALL = ["dagstream", "hono", "raw"] as const;
type Name = typeof ALL[number];
const names: Name[] = flags.only === undefined ? [...ALL] : flags.only.split(",").map((n) => {
  if (!(ALL as readonly string[]).includes(n)) throw new Error(`--only: unknown server ${n}`);
  return n as Name;
});
const profileDir = flags["profile-dir"];
const transport = flags.transport;
if (transport !== "tcp" && transport !== "fetch") {
  throw new Error(`--transport must be tcp or fetch, got ${transport}`);
}

/** Targets of the issue: dagstream events/s ÷ Hono's, and ÷ the raw server's. */
export const TARGETS = { overHono: 4, overRaw: 0.5 };

const dag = randomDag(TASKS, 42, 3, "mock:echo");
const edges = dag.tasks.reduce((n, t) => n + (t.dependsOn?.length ?? 0), 0);
const dagText = JSON.stringify(dag);
const HEADERS = { "Content-Type": "application/json", Accept: "text/event-stream" };

/** Strict check of one stream with a spec parser; returns its bytes. */
async function verify(name: string, url: string): Promise<Uint8Array> {
  const response = await fetch(url, { method: "POST", headers: HEADERS, body: dagText });
  const bytes = new Uint8Array(await response.arrayBuffer());
  if (response.status !== 200) {
    throw new Error(`${name}: HTTP ${response.status}: ${new TextDecoder().decode(bytes)}`);
  }
  const types = new Map<string, number>();
  const started = new Set<string>();
  const completed = new Set<string>();
  let n = 0;
  let idsInOrder = true;
  const parser = createParser({
    onEvent(message) {
      n++;
      if (message.id !== String(n)) idsInOrder = false;
      const type = message.event ?? "message";
      types.set(type, (types.get(type) ?? 0) + 1);
      const data = JSON.parse(message.data);
      if (type === "task_start") started.add(data.taskId);
      if (type === "task_complete" && data.status === "success") completed.add(data.taskId);
    },
  });
  parser.feed(new TextDecoder().decode(bytes));
  const ok = n === EXPECTED_EVENTS && idsInOrder && started.size === TASKS &&
    completed.size === TASKS && types.get("execution_complete") === 1;
  if (!ok) {
    throw new Error(
      `${name}: ${n} events (expected ${EXPECTED_EVENTS}), ids in order: ${idsInOrder}, ` +
        `types ${JSON.stringify(Object.fromEntries(types))}`,
    );
  }
  return bytes;
}

interface Sample extends ClientResult {
  serverCpuMs: number;
}

const loads = { start: loadAverage(), end: [] as number[] };
const group = new ProcessGroup();
const samples = Object.fromEntries(names.map((n) => [n, [] as Sample[]])) as Record<
  Name,
  Sample[]
>;
let exitCodes: Record<string, number | null> = {};
const servers = {} as Record<Name, ServerProcess>;

try {
  const sub = (name: string) => profileDir === undefined ? undefined : `${profileDir}/${name}`;
  servers.dagstream = await group.startServer(
    "dagstream",
    dagstreamServerArgs([
      "--max-tasks",
      String(2 * TASKS),
      "--max-body-bytes",
      String(Math.max(1 << 20, 4 * dagText.length)),
    ]),
    // One JSON log line per request and run on stderr: discarded, as in the
    // other server benchmarks (the writes still happen).
    { stderr: "null", profileDir: sub("dagstream") },
  );
  if (names.includes("hono")) {
    servers.hono = await group.startServer("hono", [
      "run",
      "--allow-net=127.0.0.1",
      "bench/hono_sse_server.ts",
      "--max-tasks",
      String(2 * TASKS),
    ], { profileDir: sub("hono") });
  }
  const reference = await verify("dagstream", `${servers.dagstream.url}execute`);
  if (names.includes("raw")) {
    servers.raw = await group.startServer("raw", [
      "run",
      "--allow-net=127.0.0.1",
      "bench/raw_sse_server.ts",
      "--frames-per-chunk",
      String(FRAMES_PER_CHUNK),
    ], { input: reference, profileDir: sub("raw") });
    await verify("raw", servers.raw.url);
  }
  if (names.includes("hono")) await verify("hono", servers.hono.url);

  const client = await CountingClient.start(group, transport);
  await client.defineBody("dag", dagText);
  const urlOf = (name: Name) =>
    name === "dagstream" ? `${servers.dagstream.url}execute` : servers[name].url;

  for (let round = 0; round < WARMUP + ROUNDS; round++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(round + k) % names.length];
      const cpu0 = cpuSeconds(servers[name].pid);
      const result = await client.count({
        url: urlOf(name),
        method: "POST",
        headers: HEADERS,
        body: "dag",
      });
      const serverCpuMs = (cpuSeconds(servers[name].pid) - cpu0) * 1000;
      if (result.events !== EXPECTED_EVENTS) {
        throw new Error(
          `${name}, round ${round}: ${result.events} events, expected ${EXPECTED_EVENTS}`,
        );
      }
      if (round >= WARMUP) samples[name].push({ ...result, serverCpuMs });
    }
  }
} finally {
  exitCodes = await group.stopAll();
}
loads.end = loadAverage();

interface ServerSummary {
  ms: Spread;
  eventsPerSecond: Spread;
  bytes: number;
  chunks: Spread;
  serverCpuMsPerStream: number;
  clientCpuMsPerStream: Spread;
}

const summary = {} as Record<Name, ServerSummary>;
for (const name of names) {
  const s = samples[name];
  const sum = (f: (x: Sample) => number) => s.reduce((a, x) => a + f(x), 0);
  summary[name] = {
    ms: spread(s.map((x) => x.ms)),
    eventsPerSecond: spread(s.map((x) => EXPECTED_EVENTS / (x.ms / 1000))),
    bytes: s[0].bytes,
    chunks: spread(s.map((x) => x.chunks)),
    // /proc counts CPU time in 10 ms ticks: the mean over all rounds is the meaningful figure.
    serverCpuMsPerStream: sum((x) => x.serverCpuMs) / s.length,
    clientCpuMsPerStream: spread(s.map((x) => x.clientCpuMs)),
  };
}
const msOf = (name: Name) => samples[name].map((x) => x.ms);
const ratios: { overHono?: Spread; overRaw?: Spread } = {};
// events/s of dagstream ÷ events/s of the peer = the peer's ms ÷ dagstream's ms, round by round.
if (names.includes("dagstream") && names.includes("hono")) {
  ratios.overHono = spread(pairedRatios(msOf("hono"), msOf("dagstream")));
}
if (names.includes("dagstream") && names.includes("raw")) {
  ratios.overRaw = spread(pairedRatios(msOf("raw"), msOf("dagstream")));
}

const labels: Record<Name, string> = {
  dagstream: "dagstream server, `POST /execute` SSE",
  hono: "Hono `streamSSE`, one `writeSSE` per event",
  raw: `raw: pre-encoded frames, ${FRAMES_PER_CHUNK} per chunk`,
};
const md: string[] = [
  `## Streaming throughput, one process per server and one for the client\n`,
  `${TASKS} mock:echo tasks, ${edges} edges, ${EXPECTED_EVENTS} events per stream; ` +
  `${WARMUP} warm-up + ${ROUNDS} measured rounds, order rotating; medians (min–max); ` +
  `client transport: ${transport}. ` +
  `Load average ${formatLoad(loads.start)} at start, ${formatLoad(loads.end)} at end.\n`,
  "| server | ms per stream | events/s | bytes | chunks read | server CPU ms/stream | client CPU ms/stream |",
  "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
];
for (const name of names) {
  const s = summary[name];
  md.push(
    `| ${labels[name]} | ${formatSpread(s.ms, 1)} | ${formatNumber(s.eventsPerSecond.median)} | ` +
      `${formatNumber(s.bytes)} | ${formatSpread(s.chunks, 0)} | ${
        s.serverCpuMsPerStream.toFixed(0)
      } | ${formatSpread(s.clientCpuMsPerStream, 1)} |`,
  );
}
if (ratios.overHono || ratios.overRaw) {
  md.push("", "| ratio of events/s, per round | median (min–max) | target | met? |");
  md.push("| --- | ---: | ---: | --- |");
  if (ratios.overHono) {
    md.push(
      `| dagstream ÷ Hono | ${formatSpread(ratios.overHono)} | ≥ ${TARGETS.overHono} | ${
        ratios.overHono.median >= TARGETS.overHono ? "met" : "not met"
      } |`,
    );
  }
  if (ratios.overRaw) {
    md.push(
      `| dagstream ÷ raw | ${formatSpread(ratios.overRaw)} | ≥ ${TARGETS.overRaw} | ${
        ratios.overRaw.median >= TARGETS.overRaw ? "met" : "not met"
      } |`,
    );
  }
}
md.push("", `Server exit codes: ${JSON.stringify(exitCodes)}`);

if (flags.json) {
  console.log(JSON.stringify({
    tasks: TASKS,
    edges,
    events: EXPECTED_EVENTS,
    framesPerChunk: FRAMES_PER_CHUNK,
    warmup: WARMUP,
    rounds: ROUNDS,
    summary,
    ratios,
    targets: TARGETS,
    loadAverage: loads,
    exitCodes,
    markdown: md.join("\n"),
  }));
} else {
  console.log(md.join("\n"));
}
