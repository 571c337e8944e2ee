/**
 * Memory under stalled watchers: the bundled server process, one finished
 * 10,000-task `mock:echo` run (started with `POST /runs`; its event stream
 * read to the end says it has finished), then 1,000 watchers of that run
 * that stop reading. Each is a raw TCP connection (`Deno.connect`) that
 * sends `GET /runs/<id>/events` and reads once, at most 64 bytes (enough
 * to check the status line), then never again: the server has about 3 MB
 * of events to send each of them, and whatever the sockets do not take
 * stays with the server.
 *
 * Measured: the server's RSS (`VmRSS` of `/proc/<pid>/status`, read once it
 * has stopped moving) before the watchers connect and once they have all
 * stalled; the growth in MiB and per watcher in KiB. And a fast watcher of
 * the same run, reading everything (the client process of
 * `bench/sse_client.ts`), timed before the stalled watchers connect, while
 * they are connected, and after they have left; its time with them is
 * compared with its time without them (before and after together). The
 * round is repeated `--rounds` times, each with a fresh server.
 *
 * ```sh
 * deno run -A bench/stalled_watchers.ts [--watchers 1000] [--tasks 10000] [--fast-reads 15] \
 *   [--rounds 1] [--json]
 * ```
 *
 * `-A`: the script starts `Deno.execPath()` (an unrestricted `--allow-run`)
 * and reads `/proc/<pid>/` files, which Deno allows only with all
 * permissions. 1,000 watchers need 1,000 file descriptors here and as many
 * in the server: `ulimit -n` must allow it (the script checks). The
 * server's `--max-watchers` (10,000 by default) is left as it is.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { randomDag } from "./random_dag.ts";
import {
  cpuSeconds,
  dagstreamServerArgs,
  openFileLimit,
  ProcessGroup,
  type ServerProcess,
  settledRssKiB,
} from "./processes.ts";
import { CountingClient } from "./sse_client.ts";
import {
  formatLoad,
  formatNumber,
  formatSpread,
  loadAverage,
  type Spread,
  spread,
} from "./stats.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    watchers: { type: "string", default: "1000" },
    tasks: { type: "string", default: "10000" },
    "fast-reads": { type: "string", default: "15" },
    "fast-warmup": { type: "string", default: "5" },
    rounds: { type: "string", default: "1" },
    "open-batch": { type: "string", default: "100" },
    json: { type: "boolean", default: false },
  },
});

function whole(name: Exclude<keyof typeof flags, "json">, min: number): number {
  const n = Number(flags[name]);
  if (!Number.isInteger(n) || n < min) {
    throw new RangeError(`--${name} must be a whole number ≥ ${min}`);
  }
  return n;
}

const WATCHERS = whole("watchers", 1);
const TASKS = whole("tasks", 1);
const FAST_READS = whole("fast-reads", 1);
const FAST_WARMUP = whole("fast-warmup", 0);
const ROUNDS = whole("rounds", 1);
const OPEN_BATCH = whole("open-batch", 1);
const EXPECTED_EVENTS = 2 * TASKS + 1;

/** The targets: RSS growth for 1,000 stalled watchers, in all and each. */
export const TARGETS = { totalMiB: 256, perWatcherKiB: 256, fastWithOverWithout: 1.25 };

const limit = openFileLimit();
if (limit < WATCHERS + 256) {
  console.error(
    `The open-file limit is ${limit}; ${WATCHERS} watchers need about ${WATCHERS + 256} ` +
      `here and in the server. Raise it first, e.g. \`ulimit -n 4096\`, or pass --watchers ${
        Math.max(1, limit - 256)
      }.`,
  );
  Deno.exit(2);
}

const dag = randomDag(TASKS, 42, 3, "mock:echo");
const dagText = JSON.stringify(dag);
const JSON_HEADERS = { "Content-Type": "application/json", Accept: "application/json" };
const SSE_HEADERS = { Accept: "text/event-stream" };
const encoder = new TextEncoder();

/** One stalled watcher: the connection, and what its single read gave. */
interface Stalled {
  conn: Deno.TcpConn;
  first: string;
}

/** Opens one watcher, reads once (≤ 64 bytes), and leaves the rest unread. */
async function openStalled(server: ServerProcess, path: string): Promise<Stalled> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    const request = encoder.encode(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\n` +
        `Accept: text/event-stream\r\n\r\n`,
    );
    let written = 0;
    while (written < request.length) written += await conn.write(request.subarray(written));
    const buffer = new Uint8Array(64);
    const n = await conn.read(buffer);
    const first = n === null ? "" : new TextDecoder().decode(buffer.subarray(0, n));
    if (!first.startsWith("HTTP/1.1 200")) {
      throw new Error(`a watcher got ${JSON.stringify(first)} instead of a 200 answer`);
    }
    return { conn, first };
  } catch (error) {
    conn.close();
    throw error;
  }
}

/** What one round measured. */
interface Round {
  runId: string;
  rssIdleKiB: number;
  rssBeforeKiB: number;
  rssStalledKiB: number;
  rssAfterCloseKiB: number;
  settledMs: { before: number; stalled: number; afterClose: number };
  settled: boolean;
  growthMiB: number;
  perWatcherKiB: number;
  openedInMs: number;
  /** The fast watcher's ms before, with and after the stalled ones; `without`: before and after. */
  fastMs: { before: Spread; stalled: Spread; afterClose: Spread; without: Spread };
  healthMsStalled: number;
  /**
   * The server's CPU use while its RSS settled: before the watchers came,
   * and after they opened (filling their sockets until they stall).
   */
  serverCpuPercent: { idle: number; stalled: number };
  serverExitCode: number | null;
}

async function round(group: ProcessGroup, client: CountingClient): Promise<Round> {
  const server = await group.startServer(
    "dagstream",
    dagstreamServerArgs([
      "--max-tasks",
      String(2 * TASKS),
      "--max-body-bytes",
      String(Math.max(1 << 20, 4 * dagText.length)),
    ]),
    { stderr: "null" },
  );
  const stalled: Stalled[] = [];
  let figures: Omit<Round, "serverExitCode">;
  try {
    const rssIdleKiB = (await settledRssKiB(server.pid)).kib;
    const started = await fetch(`${server.url}runs`, {
      method: "POST",
      headers: JSON_HEADERS,
      body: dagText,
    });
    const answer = await started.json();
    if (started.status !== 202 || typeof answer.runId !== "string") {
      throw new Error(`POST /runs answered ${started.status}: ${JSON.stringify(answer)}`);
    }
    const runId: string = answer.runId;
    const eventsUrl = `${server.url}runs/${runId}/events`;
    const fastRead = async () => {
      const r = await client.count({ url: eventsUrl, headers: SSE_HEADERS });
      if (r.events !== EXPECTED_EVENTS) {
        throw new Error(`the fast watcher got ${r.events} events, expected ${EXPECTED_EVENTS}`);
      }
      return r.ms;
    };
    const fastReads = async (reads = FAST_READS) => {
      const ms: number[] = [];
      for (let k = 0; k < reads; k++) ms.push(await fastRead());
      return ms;
    };
    // The first read follows the run live and ends with it: the run is over.
    await fastRead();
    const state = await (await fetch(`${server.url}runs/${runId}`)).json();
    if (state.status !== "succeeded") throw new Error(`the run ended ${state.status}`);

    await fastReads(FAST_WARMUP);
    const fastBefore = await fastReads();
    const idleCpu0 = cpuSeconds(server.pid);
    const before = await settledRssKiB(server.pid);
    const idleCpuPercent = (100 * (cpuSeconds(server.pid) - idleCpu0)) / (before.ms / 1000);

    const t0 = performance.now();
    const path = `/runs/${runId}/events`;
    for (let i = 0; i < WATCHERS; i += OPEN_BATCH) {
      const batch = Math.min(OPEN_BATCH, WATCHERS - i);
      const opened = await Promise.allSettled(
        Array.from({ length: batch }, () => openStalled(server, path)),
      );
      for (const o of opened) if (o.status === "fulfilled") stalled.push(o.value);
      const failed = opened.find((o) => o.status === "rejected");
      if (failed) throw (failed as PromiseRejectedResult).reason;
    }
    const openedInMs = performance.now() - t0;
    const stalledCpu0 = cpuSeconds(server.pid);
    const during = await settledRssKiB(server.pid);
    const stalledCpuPercent = (100 * (cpuSeconds(server.pid) - stalledCpu0)) / (during.ms / 1000);

    const fastStalled = await fastReads();
    const h0 = performance.now();
    const health = await fetch(`${server.url}health`);
    await health.body?.cancel();
    const healthMsStalled = performance.now() - h0;
    if (health.status !== 200) throw new Error(`/health answered ${health.status}`);

    for (const s of stalled.splice(0)) s.conn.close();
    const fastAfter = await fastReads();
    const after = await settledRssKiB(server.pid);
    const growth = during.kib - before.kib;
    figures = {
      runId,
      rssIdleKiB,
      rssBeforeKiB: before.kib,
      rssStalledKiB: during.kib,
      rssAfterCloseKiB: after.kib,
      settledMs: { before: before.ms, stalled: during.ms, afterClose: after.ms },
      settled: before.settled && during.settled && after.settled,
      growthMiB: growth / 1024,
      perWatcherKiB: growth / WATCHERS,
      openedInMs,
      fastMs: {
        before: spread(fastBefore),
        stalled: spread(fastStalled),
        afterClose: spread(fastAfter),
        without: spread([...fastBefore, ...fastAfter]),
      },
      healthMsStalled,
      serverCpuPercent: { idle: idleCpuPercent, stalled: stalledCpuPercent },
    };
  } finally {
    for (const s of stalled) s.conn.close();
    await group.stop(server.child);
  }
  return { ...figures, serverExitCode: await server.child.status.then((s) => s.code) };
}

const loads = { start: loadAverage(), end: [] as number[] };
const group = new ProcessGroup();
const rounds: Round[] = [];
let exitCodes: Record<string, number | null> = {};
try {
  const client = await CountingClient.start(group);
  for (let r = 0; r < ROUNDS; r++) rounds.push(await round(group, client));
} finally {
  exitCodes = await group.stopAll();
}
loads.end = loadAverage();

const growthMiB = spread(rounds.map((r) => r.growthMiB));
const perWatcherKiB = spread(rounds.map((r) => r.perWatcherKiB));
const fastRatio = spread(rounds.map((r) => r.fastMs.stalled.median / r.fastMs.without.median));
const mib = (kib: number) => formatNumber(kib / 1024, 1);

const md: string[] = [
  `## ${WATCHERS} stalled watchers of one finished ${TASKS}-task run\n`,
  `Each watcher: \`GET /runs/<id>/events\` on its own TCP connection, one read of ≤ 64 bytes, ` +
  `then none; ${EXPECTED_EVENTS} events to send each. ${ROUNDS} round(s), a fresh server each; ` +
  `fast watcher: ${FAST_WARMUP} warm-up reads, then ${FAST_READS} full reads per phase ` +
  `(medians; "without" = before and after together). Load average ` +
  `${formatLoad(loads.start)} at start, ${formatLoad(loads.end)} at end.\n`,
  "| round | RSS idle → before → stalled → after closing, MiB | growth MiB | KiB per watcher | " +
  "opened in ms | fast watcher ms: before / stalled / after | /health ms while stalled | " +
  "server CPU % while RSS settled, before / after opening |",
  "| ---: | --- | ---: | ---: | ---: | --- | ---: | ---: |",
];
rounds.forEach((r, i) => {
  md.push(
    `| ${i + 1} | ${mib(r.rssIdleKiB)} → ${mib(r.rssBeforeKiB)} → ${mib(r.rssStalledKiB)} → ` +
      `${mib(r.rssAfterCloseKiB)}${r.settled ? "" : " (RSS still moving)"} | ` +
      `${r.growthMiB.toFixed(1)} | ${r.perWatcherKiB.toFixed(1)} | ${r.openedInMs.toFixed(0)} | ` +
      `${r.fastMs.before.median.toFixed(1)} / ${r.fastMs.stalled.median.toFixed(1)} / ` +
      `${r.fastMs.afterClose.median.toFixed(1)} | ${r.healthMsStalled.toFixed(1)} | ` +
      `${r.serverCpuPercent.idle.toFixed(0)} / ${r.serverCpuPercent.stalled.toFixed(0)} |`,
  );
});
md.push(
  "",
  "| figure | measured | target | met? |",
  "| --- | ---: | ---: | --- |",
  `| RSS growth, ${WATCHERS} stalled watchers | ${formatSpread(growthMiB, 1)} MiB | ` +
    `≤ ${TARGETS.totalMiB} MiB | ${growthMiB.median <= TARGETS.totalMiB ? "met" : "not met"} |`,
  `| RSS growth per watcher | ${formatSpread(perWatcherKiB, 1)} KiB | ` +
    `≤ ${TARGETS.perWatcherKiB} KiB | ${
      perWatcherKiB.median <= TARGETS.perWatcherKiB ? "met" : "not met"
    } |`,
  `| fast watcher, with ÷ without the stalled ones | ${
    formatSpread(fastRatio)
  } | unaffected (≤ ${TARGETS.fastWithOverWithout} taken as such) | ${
    fastRatio.median <= TARGETS.fastWithOverWithout ? "met" : "not met"
  } |`,
  "",
  `Server exit codes, round by round: ${JSON.stringify(rounds.map((r) => r.serverExitCode))}; ` +
    `others: ${JSON.stringify(exitCodes)}`,
);

if (flags.json) {
  console.log(JSON.stringify({
    watchers: WATCHERS,
    tasks: TASKS,
    events: EXPECTED_EVENTS,
    fastReads: FAST_READS,
    rounds,
    growthMiB,
    perWatcherKiB,
    fastWithOverWithout: fastRatio,
    targets: TARGETS,
    loadAverage: loads,
    exitCodes,
    markdown: md.join("\n"),
  }));
} else {
  console.log(md.join("\n"));
}
