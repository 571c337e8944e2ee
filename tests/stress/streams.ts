/**
 * Stress of the server's streams, against the real process on 127.0.0.1:
 *
 * 1. `--streams` (1,000) concurrent `POST /execute` SSE streams, all open at once.
 * 2. 1,000 watchers (`GET /runs/<id>/events`) on 10 detached runs.
 * 3. Random disconnects: `POST /execute` clients and watchers leave at random
 *    points; runs of the first are cancelled, runs of the second are not.
 * 4. Slow and stalled readers of a 15 MB run with an 8 MiB log: slow ones get
 *    `events_lost` (never a silent gap), fast ones get every event (80 slow
 *    readers), memory stays bounded (250 slow readers, the server's fan-out
 *    saturated).
 * 5. Reconnect storms with `Last-Event-ID`: no duplicate, no gap; and 20,000
 *    connect/leave cycles on an idle run.
 *
 * Phases 1, 2, 3 and 5 run `--rounds` times on one server: resident memory
 * (VmRSS of the server process, from /proc) is read before, after each phase
 * and each round; a leak shows as growth from round to round. `--heap-mib N`
 * caps that server's V8 heap: it must then go through every round without
 * running out of memory. `--slow 0 --slow-max 0` skips phase 4.
 *
 * ```sh
 * ulimit -n 8192   # 1,000 streams need about 2,100 descriptors per side
 * deno run -A tests/stress/streams.ts [--streams 1000] [--watchers 1000] \
 *   [--disconnects 1000] [--slow 80] [--slow-max 250] [--storm 300] [--idle-cycles 20000]
 * ```
 *
 * @module
 */

import {
  flags,
  memoryMiB,
  openFds,
  post,
  readStream,
  Report,
  requireOpenFiles,
  runProblem,
  sampleMemory,
  type ServerProcess,
  sleep,
  start,
  waitIdle,
  type WireEvent,
} from "./_lib.ts";

const options = flags({
  streams: 1000,
  watchers: 1000,
  disconnects: 1000,
  slow: 80,
  "slow-max": 250,
  storm: 300,
  "idle-cycles": 20_000,
  hold: 15_000,
  rounds: 2,
  "heap-mib": 0,
});
requireOpenFiles(2 * Math.max(options.streams, options.watchers) + 200);

const report = new Report();
let failures = 0;
function fail(message: string): void {
  failures++;
  if (failures <= 20) console.error(`FAIL ${message}`);
}

/** Settles the server after a phase: no active run, a moment for the GC. */
async function afterPhase(server: ServerProcess, label: string): Promise<void> {
  if (!(await waitIdle(server))) fail(`${label}: runs still active a minute later`);
  await sleep(3000);
  sampleMemory(report, server, `after ${label}`);
  report.set(`open fds after ${label}`, openFds(server.pid));
}

const server = await start(
  ["--max-active-runs", "5000", "--heartbeat-ms", "5000"],
  false,
  options["heap-mib"],
);
try {
  // Warm up: the code paths compiled, a few runs kept.
  for (let i = 0; i < 50; i++) {
    await (await post(server, "/execute", { tasks: [{ id: "a", tool: "mock:echo" }] })).text();
  }
  await sleep(1000);
  const baseline = sampleMemory(report, server, "baseline");
  report.set("open fds baseline", openFds(server.pid));
  const afterRounds: number[] = [];
  for (let round = 1; round <= options.rounds; round++) {
    report.set("round", round);

    // 1. Concurrent POST /execute streams, all held open by a delay.
    {
      const n = options.streams;
      const fan = Array.from({ length: 10 }, (_, i) => ({
        id: `f${i}`,
        tool: "mock:echo",
        arguments: { i, from: "$OUTPUT[hold]" },
      }));
      const dag = {
        tasks: [
          { id: "hold", tool: "mock:delay", arguments: { ms: options.hold } },
          ...fan,
          { id: "end", tool: "mock:echo", dependsOn: fan.map((t) => t.id) },
        ],
      };
      let open = 0;
      let maxOpen = 0;
      let done = 0;
      let events = 0;
      const t0 = performance.now();
      let allOpenMs = 0;
      await Promise.all(Array.from({ length: n }, async () => {
        const response = await post(server, "/execute", dag);
        if (response.status !== 200) return fail(`stream answered ${response.status}`);
        const { events: got } = await readStream(response.body!, {
          onEvent: (e) => {
            if (e.type === "task_start" && e.data.taskId === "hold") {
              open++;
              if (open === n) allOpenMs = performance.now() - t0;
              if (done === 0) maxOpen = Math.max(maxOpen, open);
            }
            if (e.type === "execution_complete") done++;
          },
        });
        events += got.length;
        const problem = runProblem(got, dag.tasks.length);
        if (problem) fail(`stream: ${problem}`);
      }));
      report.set("1. concurrent POST /execute streams", {
        streams: n,
        maxOpenAtOnce: maxOpen,
        allOpenAfterMs: Math.round(allOpenMs),
        events,
        peakRssMiB: memoryMiB(server.pid, "VmHWM"),
      });
      if (maxOpen !== n) fail(`only ${maxOpen} of ${n} streams were open at once`);
      await afterPhase(server, "1 (streams)");
    }

    // 2. Watchers on detached runs.
    {
      const runs = 10;
      const perRun = Math.ceil(options.watchers / runs);
      const dag = {
        tasks: [
          { id: "hold", tool: "mock:delay", arguments: { ms: 5000 } },
          ...Array.from({ length: 50 }, (_, i) => ({
            id: `e${i}`,
            tool: "mock:echo",
            arguments: { i, x: "$OUTPUT[hold].waitedMs" },
          })),
        ],
      };
      let events = 0;
      let identical = 0;
      await Promise.all(Array.from({ length: runs }, async () => {
        const { runId } = await (await post(server, "/runs", dag, "application/json")).json();
        const logs = await Promise.all(Array.from({ length: perRun }, async () => {
          const response = await fetch(server.at(`/runs/${runId}/events`), {
            headers: { Accept: "text/event-stream" },
          });
          if (response.status !== 200) {
            fail(`watcher answered ${response.status}`);
            return [];
          }
          const { events: got } = await readStream(response.body!);
          events += got.length;
          const problem = runProblem(got, dag.tasks.length);
          if (problem) fail(`watcher: ${problem}`);
          return got;
        }));
        const first = JSON.stringify(logs[0]);
        identical += logs.filter((l) => JSON.stringify(l) === first).length;
      }));
      report.set("2. watchers of detached runs", {
        watchers: runs * perRun,
        runs,
        events,
        watchersWithTheSameLog: identical,
        peakRssMiB: memoryMiB(server.pid, "VmHWM"),
      });
      await afterPhase(server, "2 (watchers)");
    }

    // 3. Random disconnects.
    {
      const n = options.disconnects;
      const dag = {
        tasks: [
          { id: "a", tool: "mock:delay", arguments: { ms: 300 } },
          ...Array.from(
            { length: 5 },
            (_, i) => ({ id: `b${i}`, tool: "mock:echo", dependsOn: ["a"] }),
          ),
          {
            id: "c",
            tool: "mock:delay",
            // Long enough for the server to notice every leaver under the
            // burst (the detection latency is reported below).
            arguments: { ms: 5000 },
            dependsOn: ["b0", "b1", "b2", "b3", "b4"],
          },
          { id: "d", tool: "mock:echo", dependsOn: ["c"] },
        ],
      };
      const total = 2 * dag.tasks.length + 1;
      const leftEarly: string[] = [];
      const stayed: string[] = [];
      let ambiguous = 0;
      const detached: string[] = [];
      for (let i = 0; i < 20; i++) {
        detached.push((await (await post(server, "/runs", dag, "application/json")).json()).runId);
      }
      let watchersLeft = 0;
      await Promise.all(Array.from({ length: n }, async (_, i) => {
        // Leave after k events (0: right after the headers), or never.
        const k = Math.random() < 0.25 ? Infinity : Math.floor(Math.random() * total);
        if (i % 5 === 4) {
          const runId = detached[i % detached.length];
          const response = await fetch(server.at(`/runs/${runId}/events`), {
            headers: { Accept: "text/event-stream" },
          });
          if (k === 0) await response.body?.cancel();
          else if (response.body) {
            let seen = 0;
            await readStream(response.body, { onEvent: () => ++seen >= k ? "stop" : undefined });
          }
          if (k !== Infinity) watchersLeft++;
          return;
        }
        const response = await post(server, "/execute", dag);
        const runId = response.headers.get("x-run-id")!;
        let sawLastDelayEnd = false;
        if (k === 0) await response.body?.cancel();
        else {
          let seen = 0;
          await readStream(response.body!, {
            onEvent: (e) => {
              if (e.type === "task_complete" && e.data.taskId === "c") sawLastDelayEnd = true;
              return ++seen >= k ? "stop" : undefined;
            },
          });
        }
        if (k >= total) stayed.push(runId);
        else if (!sawLastDelayEnd) leftEarly.push(runId);
        else ambiguous++; // left during the last few events: either outcome is right
      }));
      await waitIdle(server);
      const statusOf = async (id: string) =>
        (await (await fetch(server.at(`/runs/${id}`))).json()).status as string;
      const early = await Promise.all(leftEarly.map(statusOf));
      const kept = await Promise.all(stayed.map(statusOf));
      const watched = await Promise.all(detached.map(statusOf));
      const cancelled = early.filter((s) => s === "cancelled").length;
      // How long after its client left each run was cancelled: the running
      // task's time until it was interrupted (clients leave while a or c runs).
      const latencies: number[] = [];
      for (const id of leftEarly) {
        const body = await (await fetch(server.at(`/runs/${id}`))).json();
        const interrupted = body.result.results.find((r: { error?: string }) =>
          /client disconnected/.test(r.error ?? "")
        );
        if (interrupted?.taskId === "a") latencies.push(interrupted.executionTimeMs);
      }
      latencies.sort((x, y) => x - y);
      const q = (p: number) => Math.round(latencies[Math.floor(p * (latencies.length - 1))] ?? 0);
      if (cancelled !== early.length) {
        fail(`${early.length - cancelled} runs left early were not cancelled`);
      }
      if (kept.some((s) => s !== "succeeded")) fail(`a run whose client stayed did not succeed`);
      if (watched.some((s) => s !== "succeeded")) {
        fail(`a watched run was cancelled by its watchers`);
      }
      report.set("3. random disconnects", {
        clients: n,
        executeClientsLeftBeforeTheEnd: leftEarly.length,
        ofThemCancelled: cancelled,
        executeClientsStayed: stayed.length,
        ofThemSucceeded: kept.filter((s) => s === "succeeded").length,
        leftDuringTheLastEvents: ambiguous,
        leftWhileTaskARan: latencies.length,
        taskATimeUntilCancelledMsP50P90Max: [q(0.5), q(0.9), q(1)],
        watchersLeft,
        detachedRuns: detached.length,
        detachedRunsSucceeded: watched.filter((s) => s === "succeeded").length,
      });
      await afterPhase(server, "3 (disconnects)");
    }

    // 5. Reconnect storms with Last-Event-ID (on this server; 4 needs its own log size).
    {
      const chain = Array.from({ length: 300 }, (_, i) => ({
        id: `s${i}`,
        tool: "mock:delay",
        arguments: { ms: 5 },
        dependsOn: i > 0 ? [`s${i - 1}`] : [],
      }));
      const dag = { tasks: chain };
      const { runId } = await (await post(server, "/runs", dag, "application/json")).json();
      let reconnects = 0;
      let perfect = 0;
      const canonical: WireEvent[][] = [];
      await Promise.all(Array.from({ length: options.storm }, async (_, c) => {
        const got: WireEvent[] = [];
        let last = 0;
        for (let attempt = 0; attempt < 10_000; attempt++) {
          const useQuery = attempt % 2 === 1;
          const response = await fetch(
            server.at(`/runs/${runId}/events${useQuery ? `?lastEventId=${last}` : ""}`),
            {
              headers: useQuery
                ? { Accept: "text/event-stream" }
                : { Accept: "text/event-stream", "Last-Event-ID": String(last) },
            },
          );
          if (response.status === 204) break; // over, nothing left to replay
          if (response.status !== 200) return fail(`storm: ${response.status}`);
          reconnects++;
          const budget = 1 + Math.floor(Math.random() * 50);
          let taken = 0;
          const { stopped } = await readStream(response.body!, {
            onEvent: (e) => {
              got.push(e);
              last = e.id ?? last;
              return ++taken >= budget ? "stop" : undefined;
            },
          });
          if (!stopped) break; // the server closed: the run is over
        }
        const problem = runProblem(got, chain.length);
        if (problem) fail(`storm client ${c}: ${problem}`);
        else perfect++;
        if (c === 0) canonical.push(got);
      }));
      const full = await fetch(server.at(`/runs/${runId}/events`), {
        headers: { Accept: "text/event-stream" },
      });
      const reference = (await readStream(full.body!)).events;
      if (JSON.stringify(reference) !== JSON.stringify(canonical[0])) {
        fail("a storm client's events differ from the run's log");
      }
      report.set("5a. reconnect storm with Last-Event-ID", {
        clients: options.storm,
        reconnects,
        eventsPerRun: reference.length,
        clientsWithEveryEventOnce: perfect,
      });

      // Connect and leave, many times, while the run is idle (one long task).
      const hold = await (await post(server, "/runs", {
        tasks: [{ id: "hold", tool: "mock:delay", arguments: { ms: 600_000 } }],
      }, "application/json")).json();
      await sleep(1000);
      const before = memoryMiB(server.pid);
      const cycles = options["idle-cycles"];
      const concurrency = 200;
      let doneCycles = 0;
      await Promise.all(Array.from({ length: concurrency }, async () => {
        while (doneCycles < cycles) {
          doneCycles++;
          const response = await fetch(server.at(`/runs/${hold.runId}/events`), {
            headers: { Accept: "text/event-stream" },
          });
          const reader = response.body!.getReader();
          await reader.read(); // retry: + task_start
          await reader.cancel();
        }
      }));
      await sleep(3000);
      const after = memoryMiB(server.pid);
      await fetch(server.at(`/runs/${hold.runId}`), { method: "DELETE" });
      report.set("5b. connect/leave cycles on an idle run", {
        cycles: doneCycles,
        rssBeforeMiB: before,
        rssAfterMiB: after,
      });
      await afterPhase(server, "5 (storms)");
    }
    afterRounds.push(memoryMiB(server.pid));
  }
  report.set("rss baseline, after each round, peak (MiB)", {
    baseline,
    afterRounds,
    peak: memoryMiB(server.pid, "VmHWM"),
  });
} finally {
  await server.stop();
}

// 4. Slow and stalled readers, on a server whose run log keeps 8 MiB: with
// --slow readers (default 80) fast readers must get every event; with
// --slow-max (default 250) the server's fan-out is saturated (on loopback a
// reader that does not read still absorbs ~36 MB of socket buffers, i.e. the
// whole run): memory must stay bounded, and what the fast readers got is
// reported.
async function slowReaders(slow: number, assertFast: boolean): Promise<void> {
  const label = `4. ${slow} slow and stalled readers, 20 fast ones`;
  const logBytes = 8 * 1024 * 1024;
  const slowServer = await start(["--max-run-log-bytes", String(logBytes), "--heartbeat-ms", "0"]);
  try {
    await (await post(slowServer, "/execute", { tasks: [{ id: "a", tool: "mock:echo" }] })).text();
    await sleep(1000);
    const baseline = memoryMiB(slowServer.pid);
    const tasks: Record<string, unknown>[] = [
      { id: "seed", tool: "mock:echo", arguments: { s: "x".repeat(16 * 1024) } },
    ];
    // 20 layers of 48 outputs of 16 KiB (768 KiB), one every 200 ms: a
    // reader that keeps up reads about 4 MB/s; 15 MB in all.
    for (let layer = 0; layer < 20; layer++) {
      tasks.push({
        id: `gate${layer}`,
        tool: "mock:delay",
        arguments: { ms: layer === 0 ? 1000 : 200 },
        dependsOn: [layer === 0 ? "seed" : `gate${layer - 1}`],
      });
      for (let i = 0; i < 48; i++) {
        tasks.push({
          id: `l${layer}e${i}`,
          tool: "mock:echo",
          arguments: { copy: "$OUTPUT[seed].s" },
          dependsOn: [`gate${layer}`],
        });
      }
    }
    const started = await post(slowServer, "/runs", { tasks }, "application/json");
    if (started.status !== 202) throw new Error(`POST /runs: ${await started.text()}`);
    const { runId } = await started.json();
    const open = () =>
      fetch(slowServer.at(`/runs/${runId}/events`), { headers: { Accept: "text/event-stream" } });
    const fastCount = 20;
    const slowCount = Math.floor(slow * 0.75);
    const stalledCount = slow - slowCount;
    let releaseStalled!: () => void;
    const stalledHold = new Promise<void>((resolve) => (releaseStalled = resolve));
    const fastResponses = await Promise.all(Array.from({ length: fastCount }, open));
    const slowResponses = await Promise.all(Array.from({ length: slowCount }, open));
    const stalledResponses = await Promise.all(Array.from({ length: stalledCount }, open));
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, memoryMiB(slowServer.pid))), 50);
    const outcome = { complete: 0, eventsLost: 0, broken: 0 };
    const judge = (events: WireEvent[]) => {
      const last = events.at(-1);
      if (last?.type === "error" && last.data.code === "events_lost") {
        // Contiguous from 1 up to the loss, then the error (no id), nothing after.
        const before = events.slice(0, -1);
        const contiguous = before.every((e, i) => e.id === i + 1);
        if (contiguous && last.id === undefined && (last.data.missedEvents as number) > 0) {
          outcome.eventsLost++;
        } else outcome.broken++;
      } else if (runProblem(events, tasks.length) === undefined) outcome.complete++;
      else outcome.broken++;
    };
    const t0 = performance.now();
    let chars = 0;
    const fast = { complete: 0, eventsLost: 0, broken: 0 };
    const fastDone = Promise.all(fastResponses.map(async (r) => {
      const read = await readStream(r.body!, { light: true });
      chars += read.chars;
      const problem = runProblem(read.events, tasks.length);
      const last = read.events.at(-1);
      if (problem === undefined) fast.complete++;
      else if (last?.type === "error" && last.data.code === "events_lost") fast.eventsLost++;
      else fast.broken++;
      if (problem && assertFast) fail(`fast reader: ${problem}`);
    }));
    const slowDone = Promise.all(slowResponses.map(async (r) => {
      const read = await readStream(r.body!, { pauseMs: 1000, light: true });
      chars += read.chars;
      judge(read.events);
    }));
    const stalledDone = Promise.all(stalledResponses.map(async (r) => {
      const read = await readStream(r.body!, { holdUntil: stalledHold, light: true });
      chars += read.chars;
      judge(read.events);
    }));
    // The stalled readers read nothing until the fast ones are done.
    await fastDone;
    const fastSeconds = (performance.now() - t0) / 1000;
    releaseStalled();
    await Promise.all([slowDone, stalledDone]);
    clearInterval(sampler);
    if (outcome.broken > 0 || fast.broken > 0) fail(`${label}: a reader got a gap or a bad ending`);
    report.set(label, {
      runEventsMB: 15,
      logLimitMiB: logBytes / 1024 / 1024,
      fastReaders: fast,
      fastReadersDoneAfterS: Math.round(fastSeconds * 10) / 10,
      slowReaders: slowCount,
      stalledReaders: stalledCount,
      slowAndStalled: outcome,
      deliveredMB: Math.round(chars / 1e6),
      rssBaselineMiB: baseline,
      rssPeakMiB: peak,
    });
    await sleep(3000);
    report.set(`rss after ${slow} slow readers (MiB)`, memoryMiB(slowServer.pid));
  } finally {
    await slowServer.stop();
  }
}
if (options.slow > 0) await slowReaders(options.slow, true);
if (options["slow-max"] > 0) await slowReaders(options["slow-max"], false);

report.set("failures", failures);
report.print("STREAMS");
if (failures > 0) Deno.exit(1);
