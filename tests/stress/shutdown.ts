/**
 * Graceful shutdown under load, against the real server (`main.ts`) on
 * 127.0.0.1: `--streams` `POST /execute` streams and `--watchers` watchers
 * of detached runs, all with tasks running, `--batch` batch requests
 * waiting, `--slow` slow readers and `--stalled` readers that never read;
 * then SIGTERM.
 *
 * Checks: every stream that reads gets its `error` event (`code:
 * "shutdown"`) and then its end; batch requests get their (cancelled)
 * result; the process exits 0 within the 5 s deadline, having logged
 * "shutdown complete" (it did not need the deadline); no child process
 * is left.
 *
 * ```sh
 * ulimit -n 8192
 * deno run -A tests/stress/shutdown.ts [--streams 500] [--watchers 500] [--batch 100] \
 *   [--slow 50] [--stalled 20]
 * ```
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
  sleep,
  start,
  type WireEvent,
} from "./_lib.ts";

const options = flags({ streams: 500, watchers: 500, batch: 100, slow: 50, stalled: 20 });
const total = options.streams + options.watchers + options.batch + options.slow + options.stalled;
requireOpenFiles(2 * total + 200);

const report = new Report();
const server = await start(["--max-active-runs", "5000"]);
const hold = {
  tasks: [
    { id: "hold", tool: "mock:delay", arguments: { ms: 600_000 } },
    { id: "after", tool: "mock:echo", dependsOn: ["hold"] },
  ],
};
const failures: string[] = [];

try {
  // Everything running: each stream has its first event before the signal.
  let started = 0;
  let allStarted!: () => void;
  const everyoneStarted = new Promise<void>((resolve) => (allStarted = resolve));
  const readers = options.streams + options.watchers + options.slow;
  const onFirst = () => {
    if (++started === readers) allStarted();
  };
  let sigtermAt = 0;
  const ends: { kind: string; last?: WireEvent; msAfterSignal: number }[] = [];
  const readUntilEnd = async (kind: string, response: Response, pauseMs = 0) => {
    let first = true;
    const { events } = await readStream(response.body!, {
      pauseMs,
      onEvent: () => {
        if (first) onFirst();
        first = false;
      },
    });
    ends.push({ kind, last: events.at(-1), msAfterSignal: performance.now() - sigtermAt });
  };
  const work: Promise<unknown>[] = [];
  for (let i = 0; i < options.streams; i++) {
    work.push(post(server, "/execute", hold).then((r) => readUntilEnd("execute stream", r)));
  }
  const detached: string[] = [];
  for (let i = 0; i < Math.max(1, Math.ceil(options.watchers / 10)); i++) {
    detached.push((await (await post(server, "/runs", hold, "application/json")).json()).runId);
  }
  const watch = () =>
    fetch(server.at(`/runs/${detached[Math.floor(Math.random() * detached.length)]}/events`), {
      headers: { Accept: "text/event-stream" },
    });
  for (let i = 0; i < options.watchers; i++) {
    work.push(watch().then((r) => readUntilEnd("watcher", r)));
  }
  for (let i = 0; i < options.slow; i++) {
    work.push(watch().then((r) => readUntilEnd("slow reader", r, 500)));
  }
  const batchOutcomes: string[] = [];
  for (let i = 0; i < options.batch; i++) {
    work.push(
      post(server, "/execute", hold, "application/json").then(
        async (r) => {
          const body = await r.json();
          const cancelled = body.results?.every((x: { status: string; error?: string }) =>
            x.status === "error" && /shutting down|aborted/.test(x.error ?? "")
          );
          batchOutcomes.push(`${r.status}${cancelled ? " cancelled result" : " other"}`);
        },
        (e) => batchOutcomes.push(`connection error: ${e.message}`),
      ),
    );
  }
  const stalled: Response[] = [];
  for (let i = 0; i < options.stalled; i++) stalled.push(await watch());
  await everyoneStarted;
  const health = await (await fetch(server.at("/health"))).json();
  report.set("under load before SIGTERM", {
    executeStreams: options.streams,
    watchers: options.watchers,
    slowReaders: options.slow,
    stalledReaders: options.stalled,
    batchRequests: options.batch,
    activeRuns: health.activeRuns,
    openFds: openFds(server.pid),
    rssMiB: memoryMiB(server.pid),
    childProcesses: childrenOf(server.pid).length,
  });

  sigtermAt = performance.now();
  server.kill("SIGTERM");
  const status = await server.status;
  const exitMs = performance.now() - sigtermAt;
  await Promise.all(work);
  for (const r of stalled) await r.body?.cancel().catch(() => {});

  const byKind: Record<string, { n: number; shutdownEvent: number; maxMs: number }> = {};
  for (const end of ends) {
    const k = (byKind[end.kind] ??= { n: 0, shutdownEvent: 0, maxMs: 0 });
    k.n++;
    if (end.last?.type === "error" && end.last.data.code === "shutdown") k.shutdownEvent++;
    else {failures.push(
        `${end.kind} ended with ${end.last?.type} ${JSON.stringify(end.last?.data)}`,
      );}
    k.maxMs = Math.max(k.maxMs, Math.round(end.msAfterSignal));
  }
  const batch: Record<string, number> = {};
  for (const o of batchOutcomes) batch[o] = (batch[o] ?? 0) + 1;
  const log = server.stderr();
  const graceful = /"msg":"shutdown complete","durationMs":([\d.]+)/.exec(log);
  const cancelledRuns = (log.match(/"msg":"run".*?"status":"cancelled"/g) ?? []).length;
  report.set("after SIGTERM", {
    exitCode: status.code,
    exitMs: Math.round(exitMs),
    shutdownCompleteLoggedMs: graceful ? Number(graceful[1]) : null,
    deadlinePassed: log.includes("shutdown deadline passed"),
    streams: byKind,
    batch,
    runsLoggedCancelled: cancelledRuns,
    processGone: !alive(server.pid),
  });
  if (status.code !== 0) failures.push(`exit code ${status.code}`);
  if (!graceful) failures.push("no 'shutdown complete' in the log: the deadline ended the process");
  if (exitMs > 5000) failures.push(`exit after ${Math.round(exitMs)} ms`);
  await sleep(100);
  if (alive(server.pid)) failures.push("the process is still there");
} finally {
  await server.stop();
}
report.set("failures", failures.slice(0, 20));
report.print("SHUTDOWN");
if (failures.length > 0) Deno.exit(1);
