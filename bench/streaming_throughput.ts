/**
 * End-to-end streaming throughput: events per second from the executor,
 * through SSE encoding and HTTP on 127.0.0.1, to a fetch client that reads
 * the whole body and counts the events. A 10,000-task random DAG with a
 * no-op tool gives 20,001 events (a start and a complete per task, then
 * `execution_complete`). Three servers, measured in the same run, in a
 * rotating order each round:
 *
 * - `dagstream`: `handleSSERequest` served by `Deno.serve`;
 * - `hono`: the same `StreamingExecutor` feeding Hono's `streamSSE`, one
 *   `stream.writeSSE({ id, event, data })` per event;
 * - `ceiling`: no executor at all, a `ReadableStream` that enqueues the
 *   same 20,001 frames, pre-encoded, in a few large chunks.
 *
 * The issue's streaming targets are measured with every server in a process
 * of its own by `bench/streaming_processes.ts`; this script keeps the
 * in-process view and the stage breakdown.
 *
 * ```sh
 * deno run -A bench/streaming_throughput.ts                 # 5 warm-up + 15 measured rounds
 * deno run --allow-net=127.0.0.1 --allow-read=bench --allow-sys=loadavg bench/streaming_throughput.ts --json
 * deno run -A bench/streaming_throughput.ts --rounds 30 --client inline --json
 * deno run -A bench/streaming_throughput.ts --only dagstream --no-breakdown   # for --cpu-prof
 * ```
 *
 * After the HTTP rounds, a breakdown times dagstream's stages in process
 * (no socket): validation, the bare executor, the executor emitting events
 * to a no-op sink, the same with SSE encoding, and `handleSSERequest`'s
 * body read to its end. It shows where the time between the ceiling and
 * dagstream goes.
 *
 * By default the client runs in a Worker, on its own thread, as a real
 * client would be its own process; `--client inline` reads on the server's
 * thread instead (then client and server share one core).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Hono } from "hono";
import { streamSSE } from "hono/streaming";
import { createParser } from "eventsource-parser";
import {
  handleSSERequest,
  ParallelExecutor,
  prepareDAG,
  type SSEEvent,
  StreamingExecutor,
  validateDAG,
} from "../mod.ts";
import { encodeSSEEvent } from "../src/sse/mod.ts";
import { randomDag } from "./random_dag.ts";
import { type CountResult, fetchAndCount } from "./sse_count.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  allowNegative: true,
  options: {
    warmup: { type: "string", default: "5" },
    rounds: { type: "string", default: "15" },
    tasks: { type: "string", default: "10000" },
    "chunk-kib": { type: "string", default: "256" },
    client: { type: "string", default: "worker" },
    only: { type: "string" },
    breakdown: { type: "boolean", default: true },
    json: { type: "boolean", default: false },
  },
});

const loadAverage = { start: Deno.loadavg(), end: [] as number[] };
const TASKS = Number(flags.tasks);
const EXPECTED_EVENTS = 2 * TASKS + 1;
const WARMUP = Number(flags.warmup);
const ROUNDS = Number(flags.rounds);
const CHUNK_BYTES = Number(flags["chunk-kib"]) * 1024;
const HOST = "127.0.0.1";

/** The no-op tool. */
const noop = (): Promise<unknown> => Promise.resolve(null);
const dag = randomDag(TASKS, 42, 3, "noop");
const executorConfig = { maxTasks: 2 * TASKS };

// --- (a) dagstream: handleSSERequest on Deno.serve --------------------------
const dagstreamServer = Deno.serve(
  { hostname: HOST, port: 0, onListen() {} },
  (request) => handleSSERequest(request, dag, noop, { maxTasks: 2 * TASKS }),
);

// --- (b) Hono's streamSSE fed by the same executor --------------------------
const hono = new Hono();
hono.get("/", (c) =>
  streamSSE(c, async (stream) => {
    let seq = 0;
    const sink = new WritableStream<SSEEvent>({
      write: (event) =>
        stream.writeSSE({ id: String(++seq), event: event.type, data: JSON.stringify(event.data) }),
    });
    await new StreamingExecutor(noop, executorConfig).executeWithStreaming(dag, sink);
  }));
const honoServer = Deno.serve({ hostname: HOST, port: 0, onListen() {} }, hono.fetch);

// --- (c) ceiling: the same frames, pre-encoded, few large chunks ------------
let ceilingChunks: Uint8Array[] = [];
const ceilingServer = Deno.serve({ hostname: HOST, port: 0, onListen() {} }, () => {
  let next = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (next < ceilingChunks.length) controller.enqueue(ceilingChunks[next++].slice());
      else controller.close();
    },
  }, { highWaterMark: 0 });
  return new Response(body, {
    headers: { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" },
  });
});

const urls: Record<string, string> = {
  dagstream: `http://${HOST}:${dagstreamServer.addr.port}/`,
  hono: `http://${HOST}:${honoServer.addr.port}/`,
  ceiling: `http://${HOST}:${ceilingServer.addr.port}/`,
};
const variants = flags.only ? flags.only.split(",") : ["dagstream", "hono", "ceiling"];

// --- client -------------------------------------------------------------------
let worker: Worker | undefined;
const pending = new Map<number, (m: { result?: CountResult; error?: string }) => void>();
let requestNo = 0;
if (flags.client === "worker") {
  worker = new Worker(new URL("./sse_count.ts", import.meta.url), { type: "module" });
  worker.onmessage = (e) => {
    const done = pending.get(e.data.n);
    pending.delete(e.data.n);
    done?.(e.data);
  };
} else if (flags.client !== "inline") {
  throw new Error(`--client must be worker or inline, got ${flags.client}`);
}

function count(url: string): Promise<CountResult> {
  if (worker === undefined) return fetchAndCount(url);
  const n = ++requestNo;
  return new Promise((resolve, reject) => {
    pending.set(n, (m) => m.result ? resolve(m.result) : reject(new Error(m.error)));
    worker!.postMessage({ n, url });
  });
}

/** Strict check with a spec parser: ids 1..N in order, a start and a complete per task. */
async function verify(name: string, url: string): Promise<Uint8Array> {
  const response = await fetch(url);
  const bytes = new Uint8Array(await response.arrayBuffer());
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
      if (type === "task_complete") completed.add(data.taskId);
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

// Check every variant once with eventsource-parser; the ceiling serves the
// very bytes dagstream sent, split into CHUNK_BYTES pieces.
const reference = await verify("dagstream", urls.dagstream);
ceilingChunks = [];
for (let i = 0; i < reference.length; i += CHUNK_BYTES) {
  ceilingChunks.push(reference.subarray(i, i + CHUNK_BYTES));
}
await verify("hono", urls.hono);
await verify("ceiling", urls.ceiling);

const samples: Record<string, CountResult[]> = Object.fromEntries(variants.map((v) => [v, []]));
for (let round = 0; round < WARMUP + ROUNDS; round++) {
  for (let k = 0; k < variants.length; k++) {
    const name = variants[(round + k) % variants.length];
    const result = await count(urls[name]);
    if (result.events !== EXPECTED_EVENTS) {
      throw new Error(`${name}: ${result.events} events, expected ${EXPECTED_EVENTS}`);
    }
    if (round >= WARMUP) samples[name].push(result);
  }
}

worker?.terminate();
await Promise.all([dagstreamServer.shutdown(), honoServer.shutdown(), ceilingServer.shutdown()]);

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// --- breakdown: dagstream's stages in process, no socket --------------------
const breakdown: { stage: string; medianMs: number }[] = [];
if (flags.breakdown) {
  const prepared = prepareDAG(dag, executorConfig);
  let sinkBytes = 0;
  const stages: [string, () => Promise<unknown> | unknown][] = [
    ["validateDAG (10,000 tasks)", () => validateDAG(dag, executorConfig)],
    [
      "ParallelExecutor.execute, validated DAG, no events",
      () => new ParallelExecutor(noop, executorConfig).execute(prepared),
    ],
    [
      "+ 20,001 events to a no-op sink (executeWithEventSink)",
      () => new StreamingExecutor(noop, executorConfig).executeWithEventSink(prepared, () => {}),
    ],
    [
      "+ SSE encoding of each event (encodeSSEEvent)",
      () =>
        new StreamingExecutor(noop, executorConfig).executeWithEventSink(prepared, (event) => {
          sinkBytes += encodeSSEEvent(event, 1).length;
        }),
    ],
    ["handleSSERequest, body read in process (validation included)", async () => {
      const response = await handleSSERequest(new Request("http://localhost/"), dag, noop, {
        maxTasks: 2 * TASKS,
      });
      for await (const chunk of response.body!) sinkBytes += chunk.length;
    }],
  ];
  const times: number[][] = stages.map(() => []);
  for (let round = 0; round < WARMUP + ROUNDS; round++) {
    for (let k = 0; k < stages.length; k++) {
      const t0 = performance.now();
      await stages[k][1]();
      if (round >= WARMUP) times[k].push(performance.now() - t0);
    }
  }
  stages.forEach(([stage], k) => breakdown.push({ stage, medianMs: median(times[k]) }));
  if (sinkBytes === 0) throw new Error("no output");
}
loadAverage.end = Deno.loadavg();

const summary = Object.fromEntries(variants.map((name) => {
  const ms = samples[name].map((r) => r.ms);
  const med = median(ms);
  return [name, {
    medianMs: med,
    minMs: Math.min(...ms),
    maxMs: Math.max(...ms),
    eventsPerSecond: EXPECTED_EVENTS / (med / 1000),
    bytes: samples[name][0].bytes,
    medianChunks: median(samples[name].map((r) => r.chunks)),
  }];
}));
const eps = (name: string) => summary[name]?.eventsPerSecond;
const ratios = {
  dagstreamOverHono: eps("dagstream") / eps("hono"),
  dagstreamOverCeiling: eps("dagstream") / eps("ceiling"),
};

const fmt = (x: number) => Math.round(x).toLocaleString("en-US");
const la = (l: number[]) => l.map((x) => x.toFixed(2)).join(" ");
const md: string[] = [
  "## Streaming throughput in one process (`handleSSERequest` on `Deno.serve`)\n",
  `${TASKS} tasks, ${EXPECTED_EVENTS} events per stream; client: ${flags.client}; ` +
  `${WARMUP} warm-up + ${ROUNDS} measured rounds (medians); load average ` +
  `${la(loadAverage.start)} at start, ${la(loadAverage.end)} at end\n`,
  "| server | median ms | min–max ms | events/s | bytes | chunks read |",
  "| --- | ---: | ---: | ---: | ---: | ---: |",
];
for (const name of variants) {
  const s = summary[name];
  md.push(
    `| ${name} | ${s.medianMs.toFixed(1)} | ${s.minMs.toFixed(1)}–${s.maxMs.toFixed(1)} | ` +
      `${fmt(s.eventsPerSecond)} | ${fmt(s.bytes)} | ${s.medianChunks} |`,
  );
}
md.push(
  `\ndagstream / hono = ${ratios.dagstreamOverHono.toFixed(2)}×, ` +
    `dagstream / ceiling = ${ratios.dagstreamOverCeiling.toFixed(2)} (in process, client on ` +
    "the same machine; the issue's targets are measured with a process per server by " +
    "bench/streaming_processes.ts)",
);
if (breakdown.length > 0) {
  md.push("\n| dagstream stage, in process | median ms |", "| --- | ---: |");
  for (const b of breakdown) md.push(`| ${b.stage} | ${b.medianMs.toFixed(1)} |`);
}

if (flags.json) {
  console.log(JSON.stringify({
    tasks: TASKS,
    events: EXPECTED_EVENTS,
    client: flags.client,
    summary,
    ratios,
    breakdown,
    loadAverage,
    markdown: md.join("\n"),
  }));
} else {
  console.log(md.join("\n"));
}
