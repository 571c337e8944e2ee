/**
 * Runs shared through Redis (`--store redis://…`, docs/SCALING.md) against
 * the memory store, in the same run: a Redis started here (`redis-server` on
 * a free port, `--save '' --appendonly no`), one bundled server with
 * `--store memory` (M) and three with `--store redis://…` (A, B, C), each
 * started as `deno task serve` starts it (its permission flags are read from
 * the `serve` task of deno.json), with `--max-tasks` and `--max-body-bytes`
 * raised for the big DAG. Each instance is ready once it has printed its
 * `Listening on` line and, with Redis, once `/health` says
 * `"store":{"kind":"redis","status":"up"}`.
 *
 * 1. Streaming: events per second of one `POST /execute` SSE stream of a
 *    10,000-task random `mock:echo` DAG (20,001 events), on M and on A, in
 *    alternating order from round to round, read by the client process of
 *    `bench/sse_client.ts`. With Redis, once A's stream has ended, the same
 *    run is read whole from B (`GET /runs/<id>/events`: B follows it from
 *    Redis): how long that takes, and whether B's events equal A's (byte for
 *    byte: A's `POST /execute` stream against B's in a checked pass before
 *    the rounds; A's `GET /runs/<id>/events` against B's in every round),
 *    and whether the run's Redis stream holds every event (`XLEN`).
 * 2. Batch: `POST /execute` with `Accept: application/json` of the 5-task
 *    DAG of `bench/server_load.ts`, 64 concurrent loops for a few seconds,
 *    on M and on A alternately; runs per second, and with Redis whether
 *    every answered run was indexed (`ZCARD dagstream:runs`).
 * 3. Reconnect storm: a run on A that emits its events over a couple of
 *    seconds (a chain of `mock:delay` tasks); 300 watchers spread over A, B
 *    and C; each drops its connection after given events (all of them at
 *    the run's middle event at once, the others at random events) and
 *    reconnects to another instance with `Last-Event-ID` of the last event
 *    it saw. Every watcher must have seen every event exactly once, in
 *    order, each equal to the owner's copy.
 *
 * The servers' JSON log lines (stderr) are read here and summed up: lines
 * by `msg`, answers by status, runs by status, and every line of another
 * kind (`"msg":"store"` warnings among them) is reported.
 *
 * ```sh
 * deno task bench:redis
 * deno run -A bench/redis_store.ts [--rounds 7] [--warmup 1] [--batch-seconds 3] \
 *   [--batch-rounds 4] [--concurrency 64] [--watchers 300] [--reconnects 3] [--storms 2] \
 *   [--only streaming,batch,storm] [--log-dir DIR] [--json]
 * ```
 *
 * `-A`: the script starts `Deno.execPath()` and `redis-server`, and reads
 * `/proc/<pid>/` files. `--json` prints one JSON document (the figures, and
 * the Markdown under `markdown`). `--log-dir DIR` also writes each server's
 * stderr to `DIR/<name>.log`. Every process started here is stopped at the
 * end, whatever happens.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { createParser } from "eventsource-parser";
import { randomDag, seededRandom } from "./random_dag.ts";
import { cpuSeconds, dagstreamServerArgs, ProcessGroup, ROOT } from "./processes.ts";
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
    rounds: { type: "string", default: "7" },
    warmup: { type: "string", default: "1" },
    tasks: { type: "string", default: "10000" },
    "batch-seconds": { type: "string", default: "3" },
    "batch-warmup": { type: "string", default: "1" },
    "batch-rounds": { type: "string", default: "4" },
    concurrency: { type: "string", default: "64" },
    watchers: { type: "string", default: "300" },
    reconnects: { type: "string", default: "3" },
    storms: { type: "string", default: "2" },
    "storm-tasks": { type: "string", default: "250" },
    "storm-delay-ms": { type: "string", default: "8" },
    "max-backoff-ms": { type: "string", default: "150" },
    only: { type: "string", default: "streaming,batch,storm" },
    "redis-server": { type: "string", default: "/usr/bin/redis-server" },
    "log-dir": { type: "string" },
    "timeout-s": { type: "string", default: "600" },
    json: { type: "boolean", default: false },
  },
});

function bounded(name: keyof typeof flags, min: number, max: number): number {
  const value = Number(flags[name]);
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new RangeError(`--${name} must be a number from ${min} to ${max}`);
  }
  return value;
}

const ROUNDS = bounded("rounds", 1, 100);
const WARMUP = bounded("warmup", 0, 20);
const TASKS = bounded("tasks", 1, 200_000);
const EVENTS = 2 * TASKS + 1;
const BATCH_SECONDS = bounded("batch-seconds", 0.5, 120);
const BATCH_WARMUP = bounded("batch-warmup", 0, 30);
const BATCH_ROUNDS = bounded("batch-rounds", 1, 50);
const CONCURRENCY = bounded("concurrency", 1, 1024);
const WATCHERS = bounded("watchers", 1, 3000);
const RECONNECTS = bounded("reconnects", 0, 50);
const STORMS = bounded("storms", 1, 20);
const STORM_TASKS = bounded("storm-tasks", 2, 20_000);
const STORM_EVENTS = 2 * STORM_TASKS + 1;
const STORM_DELAY_MS = bounded("storm-delay-ms", 0, 1000);
const MAX_BACKOFF_MS = bounded("max-backoff-ms", 0, 5000);
const TIMEOUT_S = bounded("timeout-s", 10, 3600);
if (RECONNECTS > STORM_EVENTS - 1) {
  throw new RangeError(`--reconnects must be below the storm's ${STORM_EVENTS} events`);
}
const PHASES = ["streaming", "batch", "storm"] as const;
type Phase = typeof PHASES[number];
const only = new Set(
  flags.only.split(",").map((p) => {
    if (!(PHASES as readonly string[]).includes(p)) throw new Error(`--only: unknown phase ${p}`);
    return p as Phase;
  }),
);

const SSE_POST = { "Content-Type": "application/json", Accept: "text/event-stream" };
const JSON_POST = { "Content-Type": "application/json", Accept: "application/json" };
const SSE_GET = { Accept: "text/event-stream" };

const dag = randomDag(TASKS, 42, 3, "mock:echo");
const edges = dag.tasks.reduce((n, t) => n + (t.dependsOn?.length ?? 0), 0);
const DAG_TEXT = JSON.stringify(dag);

/** The 5-task DAG of bench/server_load.ts: a diamond and a lone task, all `mock:echo`. */
const SMALL_DAG = JSON.stringify({
  tasks: [
    { id: "a", tool: "mock:echo", arguments: { n: 1 } },
    { id: "b", tool: "mock:echo", arguments: { from: "$OUTPUT[a].n" }, dependsOn: ["a"] },
    { id: "c", tool: "mock:echo", arguments: { n: 3 }, dependsOn: ["a"] },
    { id: "d", tool: "mock:echo", arguments: { b: "$OUTPUT[b]" }, dependsOn: ["b", "c"] },
    { id: "e", tool: "mock:echo", arguments: { n: 5 } },
  ],
});

/** The storm's run: a chain of waits, one event pair every `STORM_DELAY_MS` or so. */
const STORM_DAG = JSON.stringify({
  tasks: Array.from({ length: STORM_TASKS }, (_, i) => ({
    id: `s${i}`,
    tool: "mock:delay",
    arguments: { ms: STORM_DELAY_MS },
    ...(i === 0 ? {} : { dependsOn: [`s${i - 1}`] }),
  })),
});

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const now = () => performance.now();

// ---------------------------------------------------------------------------
// Processes: redis-server and the dagstream servers, whose stderr is read here

/**
 * Reads `stream` as text until `pattern` matches what came so far, then
 * hands every later line to `onLine` in the background. Throws when the
 * stream ends first or `timeoutMs` pass.
 */
async function awaitLine(
  name: string,
  stream: ReadableStream<Uint8Array>,
  pattern: RegExp,
  timeoutMs: number,
  onLine: (line: string) => void = () => {},
): Promise<{ match: RegExpExecArray; text: string }> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  const timer = setTimeout(
    () => reader.cancel(new Error(`${name}: no ${pattern} in ${timeoutMs} ms`)).catch(() => {}),
    timeoutMs,
  );
  let text = "";
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) {
        throw new Error(`${name} ended (or timed out) before ${pattern}: ${text.slice(-800)}`);
      }
      text += value;
      const match = pattern.exec(text);
      if (match) {
        let pending = text.slice(match.index + match[0].length);
        (async () => {
          while (true) {
            const { value, done } = await reader.read();
            if (done) break;
            pending += value;
            let nl: number;
            while ((nl = pending.indexOf("\n")) >= 0) {
              onLine(pending.slice(0, nl));
              pending = pending.slice(nl + 1);
            }
          }
          if (pending.trim() !== "") onLine(pending);
        })().catch(() => {});
        return { match, text };
      }
    }
  } finally {
    clearTimeout(timer);
  }
}

/** What a server's JSON log lines (stderr) said. */
class ServerLog {
  lines = 0;
  byMsg: Record<string, number> = {};
  requestStatus: Record<string, number> = {};
  runStatus: Record<string, number> = {};
  /** Lines of another kind than requests, succeeded runs and shutdown: counted, the first kept. */
  notable: string[] = [];
  notableCount = 0;
  storeLines = 0;
  readonly done: Promise<void>;
  #file: Deno.FsFile | undefined;

  constructor(stream: ReadableStream<Uint8Array>, file?: Deno.FsFile) {
    this.#file = file;
    this.done = this.#read(stream).catch((error) => this.#note(`(stderr read failed: ${error})`))
      .finally(() => this.#file?.close());
  }

  async #read(stream: ReadableStream<Uint8Array>): Promise<void> {
    let pending = "";
    for await (const bytes of stream) {
      if (this.#file) await this.#file.write(bytes);
      pending += decoder.decode(bytes, { stream: true });
      let nl: number;
      while ((nl = pending.indexOf("\n")) >= 0) {
        this.#line(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
      }
    }
    if (pending.trim() !== "") this.#line(pending);
  }

  #line(line: string): void {
    if (line.trim() === "") return;
    this.lines++;
    const msg = /^\{"time":"[^"]*","msg":"([^"]*)"/.exec(line)?.[1] ??
      /"msg":"([^"]*)"/.exec(line)?.[1] ?? "(not a JSON log line)";
    this.byMsg[msg] = (this.byMsg[msg] ?? 0) + 1;
    if (msg === "request") {
      const status = /"status":(\d+)/.exec(line)?.[1] ?? "?";
      this.requestStatus[status] = (this.requestStatus[status] ?? 0) + 1;
      return;
    }
    if (msg === "run") {
      const status = /"status":"([^"]*)"/.exec(line)?.[1] ?? "?";
      this.runStatus[status] = (this.runStatus[status] ?? 0) + 1;
      if (status === "succeeded") return;
    }
    if (msg === "shutdown" || msg === "shutdown complete") return;
    if (msg === "store") this.storeLines++;
    this.#note(line);
  }

  #note(line: string): void {
    this.notableCount++;
    if (this.notable.length < 20) this.notable.push(line.slice(0, 400));
  }
}

interface Server {
  name: string;
  store: "memory" | "redis";
  child: Deno.ChildProcess;
  pid: number;
  url: string;
  log: ServerLog;
  /** /health's `instance`. */
  instance: string;
  /** ms from spawn to `Listening on`, and to `/health` saying the store is up. */
  listeningMs: number;
  readyMs: number;
}

/** GET /health until it says the store is up (redis) or answers at all (memory). */
async function awaitHealthy(server: Omit<Server, "instance" | "readyMs">, timeoutMs = 15_000) {
  const deadline = now() + timeoutMs;
  let last = "";
  while (now() < deadline) {
    try {
      const response = await fetch(`${server.url}health`);
      const body = await response.json();
      last = `${response.status} ${JSON.stringify(body)}`;
      const store = body.store ?? {};
      if (server.store === "memory" && response.status === 200 && store.kind === "memory") {
        return body.instance as string;
      }
      if (store.kind === "redis" && store.status === "up" && response.status === 200) {
        return body.instance as string;
      }
    } catch (error) {
      last = String(error);
    }
    // Brief polling: the store connects in the background.
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`${server.name}: /health not up in ${timeoutMs} ms; last answer: ${last}`);
}

// ---------------------------------------------------------------------------
// A few Redis commands, spoken directly (RESP) to check what is stored

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let done = 0; done < bytes.length;) done += await conn.write(bytes.subarray(done));
}

/** One Redis command; its answer (integer, simple or bulk string, null). */
async function redisCommand(port: number, ...args: string[]): Promise<string | number | null> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    let request = `*${args.length}\r\n`;
    for (const arg of args) request += `$${encoder.encode(arg).length}\r\n${arg}\r\n`;
    await writeAll(conn, encoder.encode(request));
    let buffer = new Uint8Array(0);
    const chunk = new Uint8Array(64 * 1024);
    while (true) {
      const reply = parseReply(buffer);
      if (reply !== undefined) return reply.value;
      const n = await conn.read(chunk);
      if (n === null) throw new Error("Redis closed the connection");
      const joined = new Uint8Array(buffer.length + n);
      joined.set(buffer);
      joined.set(chunk.subarray(0, n), buffer.length);
      buffer = joined;
    }
  } finally {
    conn.close();
  }
}

function parseReply(buffer: Uint8Array): { value: string | number | null } | undefined {
  let end = -1;
  for (let i = 0; i + 1 < buffer.length; i++) {
    if (buffer[i] === 13 && buffer[i + 1] === 10) {
      end = i;
      break;
    }
  }
  if (end < 0) return undefined;
  const head = decoder.decode(buffer.subarray(0, end));
  const rest = head.slice(1);
  switch (head[0]) {
    case "+":
      return { value: rest };
    case "-":
      throw new Error(`Redis: ${rest}`);
    case ":":
      return { value: Number(rest) };
    case "$": {
      const length = Number(rest);
      if (length < 0) return { value: null };
      if (buffer.length < end + 2 + length + 2) return undefined;
      return { value: decoder.decode(buffer.subarray(end + 2, end + 2 + length)) };
    }
    default:
      throw new Error(`unexpected Redis reply: ${head}`);
  }
}

async function redisInfoField(port: number, section: string, field: string): Promise<string> {
  const info = String(await redisCommand(port, "INFO", section));
  return new RegExp(`^${field}:(.*)$`, "m").exec(info)?.[1]?.trim() ?? "?";
}

// ---------------------------------------------------------------------------
// SSE helpers (in this process)

interface ParsedEvent {
  id: string;
  type: string;
  data: string;
}

function parseEvents(bytes: Uint8Array): ParsedEvent[] {
  const events: ParsedEvent[] = [];
  const parser = createParser({
    onEvent: (m) => events.push({ id: m.id ?? "", type: m.event ?? "message", data: m.data }),
  });
  parser.feed(decoder.decode(bytes));
  return events;
}

/** Problems of a stream that should hold a whole run of `n` events: ids 1..n, one end. */
function checkWholeRun(events: ParsedEvent[], n: number): string[] {
  const problems: string[] = [];
  if (events.length !== n) problems.push(`${events.length} events, expected ${n}`);
  const badId = events.findIndex((e, i) => e.id !== String(i + 1));
  if (badId >= 0) problems.push(`event ${badId + 1} has id ${JSON.stringify(events[badId].id)}`);
  const ends = events.filter((e) => e.type === "execution_complete").length;
  if (ends !== 1 || events.at(-1)?.type !== "execution_complete") {
    problems.push(`${ends} execution_complete events, last event ${events.at(-1)?.type}`);
  }
  const errors = events.filter((e) => e.type === "error").length;
  if (errors > 0) problems.push(`${errors} error events`);
  return problems;
}

/** Where two SSE bodies first differ, event by event; undefined when their events are equal. */
function firstEventDifference(a: ParsedEvent[], b: ParsedEvent[]): string | undefined {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i];
    const y = b[i];
    if (!x || !y || x.id !== y.id || x.type !== y.type || x.data !== y.data) {
      return `event #${i + 1}: ${JSON.stringify(x)?.slice(0, 200)} vs ${
        JSON.stringify(y)?.slice(0, 200)
      }`;
    }
  }
  return undefined;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

async function readBody(url: string, init: RequestInit): Promise<{
  status: number;
  bytes: Uint8Array;
  runId: string | null;
}> {
  const response = await fetch(url, init);
  const bytes = new Uint8Array(await response.arrayBuffer());
  return { status: response.status, bytes, runId: response.headers.get("x-run-id") };
}

// ---------------------------------------------------------------------------
// Run

const startedAt = now();
const loads = { start: loadAverage(), end: [] as number[] };
const group = new ProcessGroup();
const servers: Server[] = [];
let redis: { child: Deno.ChildProcess; port: number; pid: number; version: string } | undefined;
const redisNotes: string[] = [];
let exitCodes: Record<string, number | null> = {};
const problems: string[] = [];
const logDir = flags["log-dir"];
if (logDir !== undefined) Deno.mkdirSync(logDir, { recursive: true });

const watchdog = setTimeout(() => {
  console.error(`redis_store: still running after ${TIMEOUT_S} s; stopping everything`);
  Deno.kill(Deno.pid, "SIGTERM");
}, TIMEOUT_S * 1000);
Deno.unrefTimer(watchdog);

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function startRedis() {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = freePort();
    const child = group.spawn("redis-server", [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
    ], { command: flags["redis-server"], stderr: "null" });
    try {
      const { text } = await awaitLine(
        "redis-server",
        child.stdout,
        /Ready to accept connections[^\n]*\n/,
        15_000,
        (line) => {
          // Warnings after readiness; not the lines of its own shutdown at the end.
          if (/ # /.test(line) && !/shutdown|ready to exit|Saving|DB saved/i.test(line)) {
            redisNotes.push(line.trim().slice(0, 300));
          }
        },
      );
      for (const line of text.split("\n")) {
        if (/ # WARNING/.test(line)) redisNotes.push(line.trim().slice(0, 300));
      }
      const version = /Redis version=([^,\s]+)/.exec(text)?.[1] ?? "?";
      return { child, port, pid: child.pid, version };
    } catch (error) {
      lastError = error;
      await group.stop(child, 2000);
    }
  }
  throw lastError;
}

async function startServer(
  name: string,
  store: "memory" | "redis",
  extra: string[] = [],
): Promise<Server> {
  const storeFlag = store === "memory" ? "memory" : `redis://127.0.0.1:${redis!.port}`;
  const args = dagstreamServerArgs([
    "--store",
    storeFlag,
    "--max-tasks",
    String(2 * TASKS),
    "--max-body-bytes",
    String(Math.max(1 << 20, 4 * DAG_TEXT.length)),
    ...extra,
  ]);
  const t0 = now();
  const child = group.spawn(name, args, { stderr: "piped" });
  const file = logDir === undefined
    ? undefined
    : await Deno.open(`${logDir}/${name}.log`, { write: true, create: true, truncate: true });
  const log = new ServerLog(child.stderr, file);
  const { match } = await awaitLine(
    name,
    child.stdout,
    /Listening on (http:\/\/[^\s/]+)\/?/,
    30_000,
  );
  const listeningMs = now() - t0;
  const partial = { name, store, child, pid: child.pid, url: `${match[1]}/`, log, listeningMs };
  const instance = await awaitHealthy(partial);
  return { ...partial, instance, readyMs: now() - t0 };
}

// Phase results
interface StreamSample extends ClientResult {
  serverCpuMs: number;
  redisCpuMs: number;
}
interface FollowSample extends ClientResult {
  /** From A's stream's end (seen here) to B's stream read whole, lookup of the run id included. */
  sinceAEndMs: number;
  readerCpuMs: number;
  ownerCpuMs: number;
  redisCpuMs: number;
}
const streaming = {
  memory: [] as StreamSample[],
  redis: [] as StreamSample[],
  follow: [] as FollowSample[],
  checks: [] as string[],
  checkedPass: {} as Record<string, unknown>,
  perRound: { byteEqual: 0, eventEqual: 0, xlenOk: 0, rounds: 0 },
};

interface BatchResult {
  ok: number;
  failed: number;
  seconds: number;
  latencies: number[];
  serverCpuSeconds: number;
  redisCpuSeconds: number;
  indexed?: number;
}
const batch = { memory: [] as BatchResult[], redis: [] as BatchResult[] };

interface StormResult {
  runId: string;
  watchers: number;
  eventsPerWatcher: number;
  runMs: number;
  wallMs: number;
  firstConnectByInstance: Record<string, number>;
  plannedReconnects: number;
  reconnectsByTarget: Record<string, number>;
  unplannedReconnects: number;
  reconnectHeadersMs: Spread & { p99: number };
  reconnectFirstEventMs: Spread & { p99: number };
  /** Reconnect → 200 of the wave at the middle event, and of the scattered reconnects. */
  waveHeadersMs: Spread & { p99: number };
  scatteredHeadersMs: Spread & { p99: number };
  headersMsByTarget: Record<string, Spread>;
  watchersPerfect: number;
  eventsReceived: number;
  gaps: number;
  missingEvents: number;
  duplicates: number;
  outOfOrder: number;
  dataMismatches: number;
  httpErrors: Record<string, number>;
  fetchErrors: number;
  errorEvents: number;
  endAfterFirstEndMs: Spread;
  problems: string[];
}
const storms: StormResult[] = [];

try {
  redis = await startRedis();
  const memory = await startServer("M", "memory");
  servers.push(memory);
  const redisServers: Server[] = [];
  for (const name of ["A", "B", "C"]) {
    const server = await startServer(name, "redis", ["--instance-id", `node-${name}`]);
    servers.push(server);
    redisServers.push(server);
  }
  const [a, b, c] = redisServers;
  const redisPort = redis.port;
  const redisPid = redis.pid;

  // -------------------------------------------------------------------------
  // 1. Streaming
  if (only.has("streaming")) {
    // Checked pass: memory's stream, then A's POST stream against B's copy, byte for byte.
    const m0 = await readBody(`${memory.url}execute`, {
      method: "POST",
      headers: SSE_POST,
      body: DAG_TEXT,
    });
    const mProblems = m0.status === 200 ? checkWholeRun(parseEvents(m0.bytes), EVENTS) : [
      `HTTP ${m0.status}: ${decoder.decode(m0.bytes).slice(0, 300)}`,
    ];
    const a0 = await readBody(`${a.url}execute`, {
      method: "POST",
      headers: SSE_POST,
      body: DAG_TEXT,
    });
    const aEvents = a0.status === 200 ? parseEvents(a0.bytes) : [];
    const aProblems = a0.status === 200
      ? checkWholeRun(aEvents, EVENTS)
      : [`HTTP ${a0.status}: ${decoder.decode(a0.bytes).slice(0, 300)}`];
    if (a0.runId === null) aProblems.push("no X-Run-Id header");
    const b0 = await readBody(`${b.url}runs/${a0.runId}/events`, { headers: SSE_GET });
    const bEvents = b0.status === 200 ? parseEvents(b0.bytes) : [];
    const bProblems = b0.status === 200
      ? checkWholeRun(bEvents, EVENTS)
      : [`HTTP ${b0.status}: ${decoder.decode(b0.bytes).slice(0, 300)}`];
    const bytesEqual = sameBytes(a0.bytes, b0.bytes);
    const eventDiff = firstEventDifference(aEvents, bEvents);
    const xlen0 = await redisCommand(redisPort, "XLEN", `dagstream:run:${a0.runId}:events`);
    streaming.checkedPass = {
      memoryProblems: mProblems,
      ownerProblems: aProblems,
      followerProblems: bProblems,
      ownerBytes: a0.bytes.length,
      followerBytes: b0.bytes.length,
      bytesEqual,
      eventsEqual: eventDiff === undefined,
      firstEventDifference: eventDiff,
      xlen: xlen0,
    };
    for (const p of mProblems) problems.push(`streaming check, memory: ${p}`);
    for (const p of aProblems) problems.push(`streaming check, A (POST /execute): ${p}`);
    for (const p of bProblems) problems.push(`streaming check, B (GET events): ${p}`);
    if (!bytesEqual) {
      problems.push(
        `streaming check: B's bytes differ from A's POST stream ` +
          `(${b0.bytes.length} vs ${a0.bytes.length} bytes)` +
          (eventDiff === undefined ? ", events equal" : `; first difference at ${eventDiff}`),
      );
    }
    if (xlen0 !== EVENTS) problems.push(`streaming check: XLEN ${xlen0}, expected ${EVENTS}`);

    const client = await CountingClient.start(group);
    await client.defineBody("dag", DAG_TEXT);
    for (let round = 0; round < WARMUP + ROUNDS; round++) {
      const order = round % 2 === 0 ? ["memory", "redis"] : ["redis", "memory"];
      for (const kind of order) {
        const server = kind === "memory" ? memory : a;
        const cpu0 = cpuSeconds(server.pid);
        const redisCpu0 = cpuSeconds(redisPid);
        const wall0 = Date.now();
        const result = await client.count({
          url: `${server.url}execute`,
          method: "POST",
          headers: SSE_POST,
          body: "dag",
        });
        const endedAt = now();
        const sample: StreamSample = {
          ...result,
          serverCpuMs: (cpuSeconds(server.pid) - cpu0) * 1000,
          redisCpuMs: (cpuSeconds(redisPid) - redisCpu0) * 1000,
        };
        if (result.events !== EVENTS) {
          throw new Error(`${server.name}, round ${round}: ${result.events} events, not ${EVENTS}`);
        }
        if (round >= WARMUP) streaming[kind as "memory" | "redis"].push(sample);
        if (kind === "memory") continue;

        // The same run, read whole from B.
        const list = await (await fetch(`${a.url}runs?limit=1`)).json();
        const newest = list.runs?.[0]; // newest first
        if (!newest || Date.parse(newest.createdAt) < wall0 - 5) {
          throw new Error(`round ${round}: the run just streamed is not the newest in GET /runs`);
        }
        const runId = String(newest.runId);
        const bCpu0 = cpuSeconds(b.pid);
        const aCpu0 = cpuSeconds(a.pid);
        const rCpu0 = cpuSeconds(redisPid);
        const follow = await client.count({
          url: `${b.url}runs/${runId}/events`,
          headers: SSE_GET,
        });
        const followSample: FollowSample = {
          ...follow,
          sinceAEndMs: now() - endedAt,
          readerCpuMs: (cpuSeconds(b.pid) - bCpu0) * 1000,
          ownerCpuMs: (cpuSeconds(a.pid) - aCpu0) * 1000,
          redisCpuMs: (cpuSeconds(redisPid) - rCpu0) * 1000,
        };
        if (follow.events !== EVENTS) {
          problems.push(`round ${round}: B read ${follow.events} events of run ${runId}`);
        }
        if (round >= WARMUP) streaming.follow.push(followSample);
        // Equality, every round: A's copy (its memory) against B's (from Redis).
        const [ownerCopy, followerCopy] = await Promise.all([
          readBody(`${a.url}runs/${runId}/events`, { headers: SSE_GET }),
          readBody(`${b.url}runs/${runId}/events`, { headers: SSE_GET }),
        ]);
        const xlen = await redisCommand(redisPort, "XLEN", `dagstream:run:${runId}:events`);
        streaming.perRound.rounds++;
        if (xlen === EVENTS) streaming.perRound.xlenOk++;
        else problems.push(`round ${round}: XLEN ${xlen} for run ${runId}`);
        if (sameBytes(ownerCopy.bytes, followerCopy.bytes)) {
          streaming.perRound.byteEqual++;
          streaming.perRound.eventEqual++;
        } else {
          const diff = firstEventDifference(
            parseEvents(ownerCopy.bytes),
            parseEvents(followerCopy.bytes),
          );
          if (diff === undefined) streaming.perRound.eventEqual++;
          problems.push(
            `round ${round}: B's copy of ${runId} differs from A's in bytes ` +
              `(${followerCopy.bytes.length} vs ${ownerCopy.bytes.length})` +
              (diff === undefined ? ", events equal" : `, first at ${diff}`),
          );
        }
      }
    }
    await group.stop(client.child);
  }

  // -------------------------------------------------------------------------
  // 2. Batch
  if (only.has("batch")) {
    const load = async (server: Server, seconds: number): Promise<BatchResult> => {
      const url = `${server.url}execute`;
      const latencies: number[] = [];
      let ok = 0;
      let failed = 0;
      const guard = new AbortController();
      const guardTimer = setTimeout(
        () => guard.abort(new Error("overran")),
        seconds * 1000 + 15_000,
      );
      const zcard0 = server.store === "redis"
        ? Number(await redisCommand(redisPort, "ZCARD", "dagstream:runs"))
        : 0;
      const cpu0 = cpuSeconds(server.pid);
      const redisCpu0 = cpuSeconds(redisPid);
      const t0 = now();
      const end = t0 + seconds * 1000;
      const loop = async () => {
        while (now() < end) {
          const start = now();
          try {
            const response = await fetch(url, {
              method: "POST",
              headers: JSON_POST,
              body: SMALL_DAG,
              signal: guard.signal,
            });
            const text = await response.text();
            const r = response.status === 200 ? JSON.parse(text) : undefined;
            if (r?.totalTasks === 5 && r.successfulTasks === 5 && r.results?.length === 5) {
              ok++;
              latencies.push(now() - start);
            } else failed++;
          } catch {
            failed++;
          }
        }
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, loop));
      const elapsed = (now() - t0) / 1000;
      clearTimeout(guardTimer);
      const result: BatchResult = {
        ok,
        failed,
        seconds: elapsed,
        latencies,
        serverCpuSeconds: cpuSeconds(server.pid) - cpu0,
        redisCpuSeconds: cpuSeconds(redisPid) - redisCpu0,
      };
      if (server.store === "redis") {
        // Every run answered is in Redis's index (its commands may still be on their way).
        const deadline = now() + 3000;
        let zcard = 0;
        while (now() < deadline) {
          zcard = Number(await redisCommand(redisPort, "ZCARD", "dagstream:runs"));
          if (zcard - zcard0 >= ok + failed) break;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        result.indexed = zcard - zcard0;
        if (result.indexed < ok) {
          problems.push(`batch: ${ok} runs answered on A, ${result.indexed} indexed in Redis`);
        }
      }
      if (failed > 0) problems.push(`batch on ${server.name}: ${failed} failed requests`);
      return result;
    };
    if (BATCH_WARMUP > 0) {
      await load(memory, BATCH_WARMUP);
      await load(a, BATCH_WARMUP);
    }
    for (let round = 0; round < BATCH_ROUNDS; round++) {
      const order = round % 2 === 0 ? [memory, a] : [a, memory];
      for (const server of order) batch[server.store].push(await load(server, BATCH_SECONDS));
    }
  }

  // -------------------------------------------------------------------------
  // 3. Reconnect storm
  if (only.has("storm")) {
    const instances = [a, b, c];
    for (let storm = 0; storm < STORMS; storm++) {
      const random = seededRandom(1000 + storm);
      const mid = Math.floor(STORM_EVENTS / 2);
      const plans = Array.from({ length: WATCHERS }, (_, w) => {
        const points = new Set<number>(RECONNECTS > 0 ? [mid] : []);
        while (points.size < RECONNECTS) points.add(1 + Math.floor(random() * (STORM_EVENTS - 1)));
        const drops = [...points].sort((x, y) => x - y);
        let at = w % 3;
        const targets = drops.map(() => (at = (at + 1 + Math.floor(random() * 2)) % 3));
        const backoffs = drops.map((p) => p === mid ? 0 : Math.floor(random() * MAX_BACKOFF_MS));
        return { first: w % 3, drops, targets, backoffs };
      });

      const posted = await fetch(`${a.url}runs`, {
        method: "POST",
        headers: JSON_POST,
        body: STORM_DAG,
      });
      const postedBody = await posted.json();
      if (posted.status !== 202) {
        throw new Error(
          `storm: POST /runs answered ${posted.status}: ${JSON.stringify(postedBody)}`,
        );
      }
      const runId = String(postedBody.runId);
      const guard = new AbortController();
      const guardTimer = setTimeout(
        () => guard.abort(new Error("storm overran")),
        STORM_TASKS * (STORM_DELAY_MS + 5) + 60_000,
      );
      const t0 = now();
      let firstEndAt = Infinity;

      interface Connection {
        target: number;
        planned: boolean;
        reconnect: boolean;
        wave: boolean;
        headersMs: number;
        firstEventMs: number;
      }
      const watch = async (w: number) => {
        const plan = plans[w];
        const seen: ParsedEvent[] = [];
        const connections: Connection[] = [];
        const issues: string[] = [];
        const httpErrors: Record<string, number> = {};
        let fetchErrors = 0;
        let errorEvents = 0;
        let last = 0;
        let dropIndex = 0;
        let target = plan.first;
        let unplanned = 0;
        let planned = false;
        let wave = false;
        let sawEnd = false;
        let endedAt = 0;
        for (let attempt = 0; attempt < RECONNECTS + 20 && !sawEnd; attempt++) {
          const connection: Connection = {
            target,
            planned,
            reconnect: attempt > 0,
            wave,
            headersMs: NaN,
            firstEventMs: NaN,
          };
          connections.push(connection);
          const drop = new AbortController();
          let dropping = false;
          const c0 = now();
          try {
            const headers: Record<string, string> = { ...SSE_GET };
            if (last > 0) headers["Last-Event-ID"] = String(last);
            const response = await fetch(`${instances[target].url}runs/${runId}/events`, {
              headers,
              signal: AbortSignal.any([drop.signal, guard.signal]),
            });
            connection.headersMs = now() - c0;
            if (response.status === 204) {
              await response.body?.cancel();
              if (last === STORM_EVENTS) sawEnd = true;
              else issues.push(`204 from ${instances[target].name} after event ${last}`);
              break;
            }
            if (response.status !== 200 || response.body === null) {
              httpErrors[response.status] = (httpErrors[response.status] ?? 0) + 1;
              issues.push(
                `HTTP ${response.status} from ${instances[target].name} after event ${last}: ` +
                  (await response.text()).slice(0, 200),
              );
            } else {
              const parser = createParser({
                onEvent(message) {
                  if (dropping) return;
                  if (message.event === "error") {
                    errorEvents++;
                    issues.push(`error event from ${instances[target].name}: ${message.data}`);
                    return;
                  }
                  if (Number.isNaN(connection.firstEventMs)) connection.firstEventMs = now() - c0;
                  const id = Number(message.id);
                  seen.push({
                    id: message.id ?? "",
                    type: message.event ?? "message",
                    data: message.data,
                  });
                  last = id;
                  if (message.event === "execution_complete") {
                    sawEnd = true;
                    endedAt = now();
                    firstEndAt = Math.min(firstEndAt, endedAt);
                  }
                  if (dropIndex < plan.drops.length && id >= plan.drops[dropIndex]) {
                    dropping = true;
                  }
                },
              });
              const textDecoder = new TextDecoder();
              const reader = response.body.getReader();
              while (true) {
                const { value, done } = await reader.read();
                if (done) break;
                parser.feed(textDecoder.decode(value, { stream: true }));
                if (dropping) {
                  drop.abort();
                  await reader.cancel().catch(() => {});
                  break;
                }
              }
            }
          } catch (error) {
            if (!dropping) {
              if (guard.signal.aborted) {
                issues.push(`storm overran: watcher ${w} stopped after event ${last}`);
                break;
              }
              fetchErrors++;
              issues.push(`fetch error on ${instances[target].name} after event ${last}: ${error}`);
            }
          }
          if (sawEnd && !dropping) break;
          if (dropping) {
            const backoff = plan.backoffs[dropIndex];
            target = plan.targets[dropIndex];
            wave = plan.drops[dropIndex] === mid;
            dropIndex++;
            planned = true;
            if (backoff > 0) await new Promise((resolve) => setTimeout(resolve, backoff));
          } else {
            // The stream ended (or failed) before the end of the run: reconnect like an EventSource.
            unplanned++;
            planned = false;
            wave = false;
            target = (target + 1) % 3;
          }
        }
        if (endedAt === 0) endedAt = now();
        return {
          seen,
          connections,
          issues,
          httpErrors,
          fetchErrors,
          errorEvents,
          unplanned,
          endedAt,
        };
      };
      const outcomes = await Promise.all(Array.from({ length: WATCHERS }, (_, w) => watch(w)));
      clearTimeout(guardTimer);
      const wallMs = now() - t0;

      // The owner's copy of the run.
      const reference = await readBody(`${a.url}runs/${runId}/events`, { headers: SSE_GET });
      const canonical = parseEvents(reference.bytes);
      const referenceProblems = checkWholeRun(canonical, STORM_EVENTS);
      const view = await (await fetch(`${a.url}runs/${runId}`)).json();
      const stormProblems = referenceProblems.map((p) => `owner's copy: ${p}`);
      if (view.status !== "succeeded") stormProblems.push(`run status ${view.status}`);

      let watchersPerfect = 0;
      let eventsReceived = 0;
      let gaps = 0;
      let missingEvents = 0;
      let duplicates = 0;
      let outOfOrder = 0;
      let dataMismatches = 0;
      let fetchErrors = 0;
      let errorEvents = 0;
      let unplannedReconnects = 0;
      const httpErrors: Record<string, number> = {};
      const headersMs: number[] = [];
      const waveMs: number[] = [];
      const scatteredMs: number[] = [];
      const firstEventMs: number[] = [];
      const headersByTarget: Record<string, number[]> = { A: [], B: [], C: [] };
      const reconnectsByTarget: Record<string, number> = { A: 0, B: 0, C: 0 };
      const firstConnectByInstance: Record<string, number> = { A: 0, B: 0, C: 0 };
      let plannedReconnects = 0;
      outcomes.forEach((o, w) => {
        eventsReceived += o.seen.length;
        fetchErrors += o.fetchErrors;
        errorEvents += o.errorEvents;
        unplannedReconnects += o.unplanned;
        for (const [status, n] of Object.entries(o.httpErrors)) {
          httpErrors[status] = (httpErrors[status] ?? 0) + n;
        }
        for (const connection of o.connections) {
          const name = instances[connection.target].name;
          if (!connection.reconnect) {
            firstConnectByInstance[name]++;
            continue;
          }
          if (connection.planned) plannedReconnects++;
          reconnectsByTarget[name]++;
          if (!Number.isNaN(connection.headersMs)) {
            headersMs.push(connection.headersMs);
            headersByTarget[name].push(connection.headersMs);
            if (connection.planned) {
              (connection.wave ? waveMs : scatteredMs).push(connection.headersMs);
            }
          }
          if (!Number.isNaN(connection.firstEventMs)) firstEventMs.push(connection.firstEventMs);
        }
        let previous = 0;
        let perfect = o.seen.length === STORM_EVENTS && o.issues.length === 0;
        for (let i = 0; i < o.seen.length; i++) {
          const event = o.seen[i];
          const id = Number(event.id);
          if (id === previous + 1) {
            // in order
          } else if (id > previous + 1) {
            gaps++;
            missingEvents += id - previous - 1;
            perfect = false;
          } else if (o.seen.slice(0, i).some((e) => e.id === event.id)) {
            duplicates++;
            perfect = false;
          } else {
            outOfOrder++;
            perfect = false;
          }
          const expected = canonical[id - 1];
          if (!expected || expected.type !== event.type || expected.data !== event.data) {
            dataMismatches++;
            perfect = false;
          }
          previous = Math.max(previous, id);
        }
        if (previous < STORM_EVENTS) {
          missingEvents += STORM_EVENTS - previous;
          perfect = false;
        }
        if (perfect) watchersPerfect++;
        for (const issue of o.issues.slice(0, 3)) {
          if (stormProblems.length < 30) stormProblems.push(`watcher ${w}: ${issue}`);
        }
      });
      const withP99 = (values: number[]) => {
        const sorted = [...values].sort((x, y) => x - y);
        const p99 = sorted.length === 0
          ? NaN
          : sorted[Math.min(sorted.length - 1, Math.floor(0.99 * sorted.length))];
        return { ...spread(values), p99 };
      };
      const ends = outcomes.map((o) => o.endedAt - firstEndAt);
      storms.push({
        runId,
        watchers: WATCHERS,
        eventsPerWatcher: STORM_EVENTS,
        runMs: Date.parse(view.finishedAt) - Date.parse(view.startedAt),
        wallMs,
        firstConnectByInstance,
        plannedReconnects,
        reconnectsByTarget,
        unplannedReconnects,
        reconnectHeadersMs: withP99(headersMs),
        reconnectFirstEventMs: withP99(firstEventMs),
        waveHeadersMs: withP99(waveMs),
        scatteredHeadersMs: withP99(scatteredMs),
        headersMsByTarget: Object.fromEntries(
          Object.entries(headersByTarget).map(([name, values]) => [name, spread(values)]),
        ),
        watchersPerfect,
        eventsReceived,
        gaps,
        missingEvents,
        duplicates,
        outOfOrder,
        dataMismatches,
        httpErrors,
        fetchErrors,
        errorEvents,
        endAfterFirstEndMs: spread(ends),
        problems: stormProblems,
      });
      for (const p of stormProblems) problems.push(`storm ${storm + 1}: ${p}`);
    }
  }
  if (redis !== undefined) {
    redisNotes.push(
      `Redis at the end: ${await redisCommand(
        redisPort,
        "DBSIZE",
      )} keys, used_memory ${await redisInfoField(
        redisPort,
        "memory",
        "used_memory_human",
      )}, peak ${await redisInfoField(redisPort, "memory", "used_memory_peak_human")}`,
    );
  }
} finally {
  // The servers first, Redis after them (so that they do not log its going away).
  const serverCodes = await Promise.all(servers.map((s) => group.stop(s.child)));
  exitCodes = {
    ...Object.fromEntries(servers.map((s, i) => [s.name, serverCodes[i]])),
    ...await group.stopAll(),
  };
  await Promise.race([
    Promise.all(servers.map((s) => s.log.done)),
    new Promise((resolve) => setTimeout(resolve, 5000)),
  ]);
  clearTimeout(watchdog);
}
loads.end = loadAverage();
const wallSeconds = (now() - startedAt) / 1000;

// ---------------------------------------------------------------------------
// Report

function commandOutput(command: string, args: string[]): string {
  try {
    const out = new Deno.Command(command, { args, cwd: ROOT, stdout: "piped", stderr: "null" })
      .outputSync();
    return out.success ? decoder.decode(out.stdout).trim() : "?";
  } catch {
    return "?";
  }
}
const commit = commandOutput("git", ["rev-parse", "--short", "HEAD"]);
const dirty = new Deno.Command("git", { args: ["diff", "--quiet", "HEAD", "--"], cwd: ROOT })
  .outputSync().code === 1;
const denoVersion = commandOutput(Deno.execPath(), ["--version"]);
const command = ["deno run -A bench/redis_store.ts", ...Deno.args].join(" ");

const summarise = (samples: { ms: number }[], events: number) => ({
  ms: spread(samples.map((s) => s.ms)),
  eventsPerSecond: spread(samples.map((s) => events / (s.ms / 1000))),
});
const meanOf = (values: number[]) => values.reduce((x, y) => x + y, 0) / (values.length || 1);
const streamingSummary = streaming.memory.length === 0 ? undefined : {
  memory: {
    ...summarise(streaming.memory, EVENTS),
    bytes: streaming.memory[0].bytes,
    serverCpuMsPerStream: meanOf(streaming.memory.map((s) => s.serverCpuMs)),
  },
  redis: {
    ...summarise(streaming.redis, EVENTS),
    bytes: streaming.redis[0].bytes,
    serverCpuMsPerStream: meanOf(streaming.redis.map((s) => s.serverCpuMs)),
    redisCpuMsPerStream: meanOf(streaming.redis.map((s) => s.redisCpuMs)),
  },
  follower: {
    ...summarise(streaming.follow, EVENTS),
    sinceOwnerEndMs: spread(streaming.follow.map((s) => s.sinceAEndMs)),
    bytes: streaming.follow[0]?.bytes,
    readerCpuMsPerStream: meanOf(streaming.follow.map((s) => s.readerCpuMs)),
    redisCpuMsPerStream: meanOf(streaming.follow.map((s) => s.redisCpuMs)),
  },
  redisOverMemory: spread(
    pairedRatios(streaming.memory.map((s) => s.ms), streaming.redis.map((s) => s.ms)),
  ),
  checkedPass: streaming.checkedPass,
  perRound: streaming.perRound,
};

const batchSummary = batch.memory.length === 0 ? undefined : Object.fromEntries(
  (["memory", "redis"] as const).map((kind) => {
    const rounds = batch[kind];
    const latencies = rounds.flatMap((r) => r.latencies).sort((x, y) => x - y);
    const pct = (p: number) =>
      latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
    const seconds = rounds.reduce((x, r) => x + r.seconds, 0);
    return [kind, {
      runsPerSecond: spread(rounds.map((r) => r.ok / r.seconds)),
      runs: rounds.reduce((x, r) => x + r.ok, 0),
      failed: rounds.reduce((x, r) => x + r.failed, 0),
      indexed: kind === "redis" ? rounds.reduce((x, r) => x + (r.indexed ?? 0), 0) : undefined,
      p50Ms: pct(0.5),
      p99Ms: pct(0.99),
      serverCpuPercent: 100 * rounds.reduce((x, r) => x + r.serverCpuSeconds, 0) / seconds,
      redisCpuPercent: 100 * rounds.reduce((x, r) => x + r.redisCpuSeconds, 0) / seconds,
    }];
  }),
);
const batchRatio = batch.memory.length === 0 ? undefined : spread(
  pairedRatios(
    batch.redis.map((r) => r.ok / r.seconds),
    batch.memory.map((r) => r.ok / r.seconds),
  ),
);

const md: string[] = [
  "## Runs shared through Redis: `--store memory` against `--store redis://…`\n",
  `Command: \`${command}\` (${wallSeconds.toFixed(1)} s)  `,
  `Commit: ${commit}${dirty ? " (with uncommitted changes)" : ""}; ` +
  `redis-server ${redis?.version ?? "?"}; ${navigator.hardwareConcurrency} CPUs  `,
  `${denoVersion.split("\n").join("; ")}  `,
  `Load average: ${formatLoad(loads.start)} at start, ${formatLoad(loads.end)} at end  `,
  `Instances: ${
    servers.map((s) =>
      `${s.name} (${s.store}, listening in ${s.listeningMs.toFixed(0)} ms, ready in ${
        s.readyMs.toFixed(0)
      } ms)`
    ).join(", ")
  }\n`,
];

if (streamingSummary) {
  const s = streamingSummary;
  const cp = s.checkedPass as Record<string, unknown>;
  md.push(
    `### 1. One \`POST /execute\` SSE stream, ${formatNumber(TASKS)} mock:echo tasks ` +
      `(${formatNumber(edges)} edges, ${formatNumber(EVENTS)} events)\n`,
    `${WARMUP} warm-up + ${ROUNDS} measured rounds, memory and redis alternating first; ` +
      `read by the client process of bench/sse_client.ts (TCP); medians (min–max).\n`,
    "| stream | ms per stream | events/s | bytes | server CPU ms/stream | redis-server CPU ms/stream |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
    `| M, \`--store memory\`: \`POST /execute\` | ${formatSpread(s.memory.ms, 1)} | ${
      formatSpread(s.memory.eventsPerSecond, 0)
    } | ${formatNumber(s.memory.bytes)} | ${s.memory.serverCpuMsPerStream.toFixed(0)} | – |`,
    `| A, \`--store redis://…\`: \`POST /execute\` | ${formatSpread(s.redis.ms, 1)} | ${
      formatSpread(s.redis.eventsPerSecond, 0)
    } | ${formatNumber(s.redis.bytes)} | ${s.redis.serverCpuMsPerStream.toFixed(0)} | ${
      s.redis.redisCpuMsPerStream.toFixed(0)
    } |`,
    `| B, same run after A's stream ended: \`GET /runs/<id>/events\` | ${
      formatSpread(s.follower.ms, 1)
    } | ${formatSpread(s.follower.eventsPerSecond, 0)} | ${formatNumber(s.follower.bytes ?? 0)} | ${
      s.follower.readerCpuMsPerStream.toFixed(0)
    } (B) | ${s.follower.redisCpuMsPerStream.toFixed(0)} |`,
    "",
    "| figure | median (min–max) |",
    "| --- | ---: |",
    `| events/s of A (redis) ÷ events/s of M (memory), per round | ${
      formatSpread(s.redisOverMemory, 3)
    } |`,
    `| A's stream ended → B's stream read whole, ms (run id lookup on A included) | ${
      formatSpread(s.follower.sinceOwnerEndMs, 1)
    } |`,
    "",
    `Checks: before the rounds, A's \`POST /execute\` stream (${
      formatNumber(Number(cp.ownerBytes ?? 0))
    } bytes) and B's \`GET /runs/<id>/events\` of the same run (${
      formatNumber(Number(cp.followerBytes ?? 0))
    } bytes): byte-equal **${cp.bytesEqual ? "yes" : "no"}**, event-equal **${
      cp.eventsEqual ? "yes" : "no"
    }**, XLEN ${cp.xlen}; ` +
      `every round (${s.perRound.rounds}): A's and B's \`GET /runs/<id>/events\` byte-equal ` +
      `${s.perRound.byteEqual}/${s.perRound.rounds}, event-equal ${s.perRound.eventEqual}/${s.perRound.rounds}, ` +
      `XLEN = ${formatNumber(EVENTS)} ${s.perRound.xlenOk}/${s.perRound.rounds}; ` +
      `every stream of every round had ${formatNumber(EVENTS)} events.\n`,
  );
}

if (batchSummary && batchRatio) {
  const row = (kind: "memory" | "redis", label: string) => {
    const x = batchSummary[kind];
    return `| ${label} | ${formatSpread(x.runsPerSecond, 0)} | ${
      formatNumber(x.runs)
    } | ${x.failed} | ${x.indexed ?? "–"} | ${x.p50Ms?.toFixed(1)} | ${x.p99Ms?.toFixed(1)} | ${
      x.serverCpuPercent.toFixed(0)
    } | ${kind === "redis" ? x.redisCpuPercent.toFixed(0) : "–"} |`;
  };
  md.push(
    `### 2. Batch \`POST /execute\` (Accept: application/json), 5-task mock:echo DAG\n`,
    `${CONCURRENCY} concurrent fetch loops in the benchmark's process; ${BATCH_ROUNDS} rounds of ` +
      `${BATCH_SECONDS} s per store, alternating first, after ${BATCH_WARMUP} s of warm-up each.\n`,
    "| store | runs/s median (min–max) | runs | failed | runs indexed in Redis | p50 ms | p99 ms | server CPU % | redis-server CPU % |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    row("memory", "M, `--store memory`"),
    row("redis", "A, `--store redis://…`"),
    "",
    `Runs/s of redis ÷ memory, per round: ${formatSpread(batchRatio, 3)}\n`,
  );
}

if (storms.length > 0) {
  md.push(
    `### 3. Reconnect storm over A, B and C (one Redis)\n`,
    `A run on A: a chain of ${STORM_TASKS} \`mock:delay\` tasks of ${STORM_DELAY_MS} ms ` +
      `(${STORM_EVENTS} events); ${WATCHERS} watchers, started on A, B and C in turn, each dropping ` +
      `its connection ${RECONNECTS} times: all at event ${
        Math.floor(STORM_EVENTS / 2)
      } at once (reconnecting at once), the others at random events after a random ` +
      `0–${MAX_BACKOFF_MS} ms wait; each reconnects to another instance with \`Last-Event-ID\`.\n`,
    "| storm | run ms | wall ms | reconnects (planned / unplanned) | to A / B / C | reconnect → 200, ms median (p99, max) | reconnect → next event, ms median (p99, max) | last watcher done after first saw the end, ms |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  );
  storms.forEach((s, i) => {
    md.push(
      `| ${i + 1} | ${s.runMs.toFixed(0)} | ${
        s.wallMs.toFixed(0)
      } | ${s.plannedReconnects} / ${s.unplannedReconnects} | ${s.reconnectsByTarget.A} / ${s.reconnectsByTarget.B} / ${s.reconnectsByTarget.C} | ${
        s.reconnectHeadersMs.median.toFixed(1)
      } (${s.reconnectHeadersMs.p99.toFixed(1)}, ${s.reconnectHeadersMs.max.toFixed(1)}) | ${
        s.reconnectFirstEventMs.median.toFixed(1)
      } (${s.reconnectFirstEventMs.p99.toFixed(1)}, ${s.reconnectFirstEventMs.max.toFixed(1)}) | ${
        s.endAfterFirstEndMs.max.toFixed(0)
      } |`,
    );
  });
  md.push(
    "",
    "| storm | watchers with every event once, in order, equal to A's | events received / expected | gaps (events missing) | duplicates | out of order | data mismatches | HTTP errors | fetch errors | error events |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  );
  storms.forEach((s, i) => {
    const http = Object.entries(s.httpErrors).map(([k, v]) => `${v}×${k}`).join(", ") || "0";
    md.push(
      `| ${i + 1} | ${s.watchersPerfect}/${s.watchers} | ${formatNumber(s.eventsReceived)} / ${
        formatNumber(s.watchers * s.eventsPerWatcher)
      } | ${s.gaps} (${s.missingEvents}) | ${s.duplicates} | ${s.outOfOrder} | ${s.dataMismatches} | ${http} | ${s.fetchErrors} | ${s.errorEvents} |`,
    );
  });
  const byTarget = storms.map((s, i) =>
    `storm ${i + 1}: ` +
    Object.entries(s.headersMsByTarget).map(([name, sp]) =>
      `${name} ${formatSpread(sp, 1)} (n=${sp.n})`
    ).join(", ")
  );
  const split = storms.map((s, i) =>
    `storm ${i + 1}: wave ${s.waveHeadersMs.median.toFixed(1)} (p99 ${
      s.waveHeadersMs.p99.toFixed(1)
    }, n=${s.waveHeadersMs.n}), scattered ${s.scatteredHeadersMs.median.toFixed(1)} (p99 ${
      s.scatteredHeadersMs.p99.toFixed(1)
    }, n=${s.scatteredHeadersMs.n})`
  );
  md.push(
    "",
    `Reconnect → 200 by target, ms median (min–max): ${byTarget.join("; ")}  `,
    `Reconnect → 200, the ${WATCHERS} reconnecting at the middle event at once against the ` +
      `scattered ones, ms median: ${split.join("; ")}  `,
    "(The watchers run in the benchmark's own process, on the same cores as the servers " +
      "and Redis.)\n",
  );
}

const logRows = servers.map((s) => {
  const requests = Object.entries(s.log.requestStatus).map(([k, v]) => `${k}: ${v}`).join(", ");
  const runs = Object.entries(s.log.runStatus).map(([k, v]) => `${k}: ${v}`).join(", ");
  return `| ${s.name} | ${formatNumber(s.log.lines)} | ${requests || "–"} | ${
    runs || "–"
  } | ${s.log.storeLines} | ${s.log.notableCount - s.log.storeLines} | ${
    exitCodes[s.name] ?? "signal"
  } |`;
});
md.push(
  "### Server logs (stderr JSON lines)\n",
  '| server | lines | answers by status | runs by status | `"msg":"store"` lines | other notable lines | exit code |',
  "| --- | ---: | --- | --- | ---: | ---: | ---: |",
  ...logRows,
  "",
);
const notable = servers.flatMap((s) => s.log.notable.map((line) => `- ${s.name}: \`${line}\``));
if (notable.length > 0) md.push("Notable log lines (first 20 per server):\n", ...notable, "");
if (redisNotes.length > 0) md.push("redis-server:\n", ...redisNotes.map((n) => `- ${n}`), "");
md.push(
  problems.length === 0
    ? "**Problems: none.**"
    : `**Problems (${problems.length}):**\n\n${
      problems.slice(0, 60).map((p) => `- ${p}`).join("\n")
    }`,
);
md.push("", `Exit codes: ${JSON.stringify(exitCodes)}`);

if (flags.json) {
  console.log(JSON.stringify({
    command,
    commit,
    uncommittedChanges: dirty,
    deno: denoVersion,
    redisVersion: redis?.version,
    loadAverage: loads,
    wallSeconds,
    settings: {
      tasks: TASKS,
      edges,
      events: EVENTS,
      rounds: ROUNDS,
      warmup: WARMUP,
      batchSeconds: BATCH_SECONDS,
      batchRounds: BATCH_ROUNDS,
      concurrency: CONCURRENCY,
      watchers: WATCHERS,
      reconnects: RECONNECTS,
      storms: STORMS,
      stormTasks: STORM_TASKS,
      stormDelayMs: STORM_DELAY_MS,
    },
    instances: servers.map((s) => ({
      name: s.name,
      store: s.store,
      instance: s.instance,
      listeningMs: s.listeningMs,
      readyMs: s.readyMs,
      log: {
        lines: s.log.lines,
        byMsg: s.log.byMsg,
        requestStatus: s.log.requestStatus,
        runStatus: s.log.runStatus,
        storeLines: s.log.storeLines,
        notable: s.log.notable,
      },
    })),
    streaming: streamingSummary,
    batch: batchSummary && { ...batchSummary, redisOverMemory: batchRatio },
    storms,
    redisNotes,
    problems,
    exitCodes,
    markdown: md.join("\n"),
  }));
} else {
  console.log(md.join("\n"));
}
if (problems.length > 0) Deno.exitCode = 1;
