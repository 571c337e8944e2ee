/**
 * Small, fast versions of the stress scripts of `tests/stress/` (which run
 * by hand at full size): random disconnects, reconnect storms with
 * `Last-Event-ID`, slow readers against a bounded log, SIGTERM under load,
 * plus the bounds the stress runs led to (kept runs, progress, leaving
 * readers). Real server process on 127.0.0.1:0 unless said otherwise.
 */

import assert from "node:assert/strict";
import { readSSEEvents } from "../../mod.ts";
import type { ReceivedSSEEvent } from "../../src/sse/mod.ts";
import { builtinTools, createApp, createToolRegistry } from "../../src/server/mod.ts";
import { RunLog } from "../../src/sse/run-log.ts";
import { postDag, startGatedServer, startServer, waitForRunEnd } from "./_server.ts";
import { FakeClock } from "../unit/_fake_clock.ts";

const SSE = "text/event-stream";

async function readAll(response: Response): Promise<ReceivedSSEEvent[]> {
  const events: ReceivedSSEEvent[] = [];
  for await (const event of readSSEEvents(response.body!)) events.push(event);
  return events;
}

/** Reads `n` events, then leaves (cancels the body). */
async function readThenLeave(response: Response, n: number): Promise<ReceivedSSEEvent[]> {
  const events: ReceivedSSEEvent[] = [];
  if (n === 0) {
    await response.body!.cancel();
    return events;
  }
  for await (const event of readSSEEvents(response.body!)) {
    events.push(event);
    if (events.length >= n) break; // leaving the loop cancels the body
  }
  return events;
}

function assertWholeRun(events: ReceivedSSEEvent[], tasks: number): void {
  assert.deepEqual(events.map((e) => Number(e.id)), events.map((_, i) => i + 1), "ids 1..n");
  assert.equal(events.at(-1)?.type, "execution_complete");
  assert.equal(events.filter((e) => e.type === "task_start").length, tasks);
  assert.equal(events.filter((e) => e.type === "task_complete").length, tasks);
}

Deno.test("random disconnects: POST /execute runs left early are cancelled, watched runs are not", async () => {
  await using gated = await startGatedServer();
  const { server } = gated;
  // a (delay) -> b1..b3 -> c (long delay) -> d: leaving before c ends must cancel.
  const dag = {
    tasks: [
      { id: "a", tool: "mock:delay", arguments: { ms: 50 } },
      ...[1, 2, 3].map((i) => ({ id: `b${i}`, tool: "mock:echo", dependsOn: ["a"] })),
      { id: "c", tool: "mock:delay", arguments: { ms: 60_000 }, dependsOn: ["b1", "b2", "b3"] },
      { id: "d", tool: "mock:echo", dependsOn: ["c"] },
    ],
  };
  // The watched run is held at a gate until every watcher has left.
  const key = `w-${crypto.randomUUID()}`;
  const watched = await (await postDag(server.at("/runs"), {
    tasks: [{ id: "w", tool: "gate:wait", arguments: { key } }],
  })).json();
  // Leave after 0..9 events: all before c's end, which never comes on its own.
  const ids = await Promise.all(Array.from({ length: 30 }, async (_, i) => {
    const response = await postDag(server.at("/execute"), dag, SSE);
    await readThenLeave(response, i % 10);
    return response.headers.get("x-run-id")!;
  }));
  const watchers = await Promise.all(Array.from({ length: 10 }, async (_, i) => {
    const response = await fetch(server.at(`/runs/${watched.runId}/events`), {
      headers: { Accept: SSE },
    });
    return readThenLeave(response, i % 3);
  }));
  assert.equal(watchers.length, 10);
  for (const id of ids) assert.equal((await waitForRunEnd(server, id)).status, "cancelled");
  const stillRunning = await (await fetch(server.at(`/runs/${watched.runId}`))).json();
  assert.equal(stillRunning.status, "running", "watchers leaving did not end the watched run");
  await gated.release(key);
  assert.equal((await waitForRunEnd(server, watched.runId)).status, "succeeded");
  const health = await (await fetch(server.at("/health"))).json();
  assert.deepEqual([health.status, health.activeRuns], ["ok", 0]);
});

Deno.test("reconnect storm: clients that leave and come back with Last-Event-ID miss nothing, twice nothing", async () => {
  await using server = await startServer();
  const n = 40;
  const dag = {
    tasks: Array.from({ length: n }, (_, i) => ({
      id: `s${i}`,
      tool: "mock:delay",
      arguments: { ms: 2 },
      dependsOn: i > 0 ? [`s${i - 1}`] : [],
    })),
  };
  const { runId } = await (await postDag(server.at("/runs"), dag)).json();
  const logs = await Promise.all(Array.from({ length: 20 }, async (_, c) => {
    const got: ReceivedSSEEvent[] = [];
    for (let attempt = 0;; attempt++) {
      const last = got.at(-1)?.id ?? "0";
      const viaQuery = attempt % 2 === 1;
      const response = await fetch(
        server.at(`/runs/${runId}/events${viaQuery ? `?lastEventId=${last}` : ""}`),
        { headers: viaQuery ? { Accept: SSE } : { Accept: SSE, "Last-Event-ID": last } },
      );
      if (response.status === 204) break; // over, nothing left
      assert.equal(response.status, 200);
      const take = 1 + ((c + attempt) % 3);
      const events = await readThenLeave(response, take);
      got.push(...events);
      if (events.length < take || events.at(-1)?.type === "execution_complete") break;
    }
    return got;
  }));
  const reference = await readAll(
    await fetch(server.at(`/runs/${runId}/events`), { headers: { Accept: SSE } }),
  );
  assertWholeRun(reference, n);
  for (const log of logs) assert.deepEqual(log, reference);
});

Deno.test("a reader whose next events gave way gets events_lost; one that keeps up gets every event", async () => {
  // A 256 KiB log; the run writes 40 outputs of 8 KiB (330 KB). Before each
  // one a gate holds the run until the reader has read up to it.
  await using gated = await startGatedServer(["--max-run-log-bytes", String(256 * 1024)]);
  const { server } = gated;
  const gate = crypto.randomUUID();
  const tasks: Record<string, unknown>[] = [];
  for (let i = 0; i < 40; i++) {
    tasks.push({
      id: `g${i}`,
      tool: "gate:wait",
      arguments: { key: `${gate}-${i}` },
      dependsOn: i > 0 ? [`e${i - 1}`] : [],
    });
    tasks.push({
      id: `e${i}`,
      tool: "mock:echo",
      arguments: { s: "x".repeat(8 * 1024) },
      dependsOn: [`g${i}`],
    });
  }
  const { runId } = await (await postDag(server.at("/runs"), { tasks })).json();
  const open = (lastEventId: number) =>
    fetch(server.at(`/runs/${runId}/events`), {
      headers: { Accept: SSE, "Last-Event-ID": String(lastEventId) },
    });
  // The reader opens each gate once it has read that the gate is waiting.
  const all: ReceivedSSEEvent[] = [];
  for await (const event of readSSEEvents((await open(0)).body!)) {
    all.push(event);
    if (event.type === "task_progress") {
      await gated.release(`${gate}-${(event.data as { taskId: string }).taskId.slice(1)}`);
    }
  }
  assertWholeRun(all, tasks.length);
  assert.equal(all.filter((e) => e.type === "task_progress").length, 40, "one per gate");
  // The log kept only its last 256 KiB: the start of the run gave way.
  const late = await readAll(await open(2));
  assert.equal(late.length, 1);
  const lost = late[0];
  assert.equal(lost.type, "error");
  assert.equal(lost.id, undefined, "not part of the run's log");
  const data = lost.data as { code: string; missedEvents: number; resultUrl: string };
  assert.equal(data.code, "events_lost");
  assert.ok(data.missedEvents > 0);
  assert.equal(data.resultUrl, `/runs/${runId}`);
  // A reader that is only a little behind gets the rest, without a gap.
  const tail = await readAll(await open(all.length - 3));
  assert.deepEqual(tail, all.slice(-3));
  // The full result is where the error says.
  const result = await (await fetch(server.at(data.resultUrl))).json();
  assert.equal(result.result.successfulTasks, tasks.length);
});

Deno.test("SIGTERM under load: every stream gets its shutdown event, batch requests their result, exit 0", async () => {
  const server = await startServer();
  try {
    const hold = { tasks: [{ id: "hold", tool: "mock:delay", arguments: { ms: 600_000 } }] };
    const streams = await Promise.all(
      Array.from({ length: 20 }, () => postDag(server.at("/execute"), hold, SSE)),
    );
    const { runId } = await (await postDag(server.at("/runs"), hold)).json();
    const watchers = await Promise.all(
      Array.from(
        { length: 20 },
        () => fetch(server.at(`/runs/${runId}/events`), { headers: { Accept: SSE } }),
      ),
    );
    const readers = [...streams, ...watchers].map((r) =>
      readSSEEvents(r.body!)[Symbol.asyncIterator]()
    );
    // Every stream is live: its task_start has arrived.
    for (const reader of readers) assert.equal((await reader.next()).value?.type, "task_start");
    const batch = Array.from(
      { length: 5 },
      () => postDag(server.at("/execute"), hold, "application/json"),
    );
    // The batch requests' runs are active too before the signal.
    while ((await (await fetch(server.at("/health"))).json()).activeRuns < 26) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }

    server.kill("SIGTERM");
    for (const reader of readers) {
      const rest: ReceivedSSEEvent[] = [];
      for (let next = await reader.next(); !next.done; next = await reader.next()) {
        rest.push(next.value);
      }
      assert.equal(rest.at(-1)?.type, "error");
      assert.equal((rest.at(-1)!.data as { code: string }).code, "shutdown");
    }
    for (const response of await Promise.all(batch)) {
      assert.equal(response.status, 200);
      const result = await response.json();
      assert.match(result.results[0].error, /aborted: server shutting down/);
    }
    const status = await server.status;
    assert.equal(status.code, 0);
    await server.stop();
    assert.match(server.stderr(), /"msg":"shutdown complete"/, "ended before the deadline");
    assert.doesNotMatch(server.stderr(), /shutdown deadline passed/);
  } finally {
    await server.stop();
  }
});

Deno.test("in process, shutdown under load leaves no timer, socket or run behind (sanitizers)", async () => {
  const app = createApp({ log: () => {}, heartbeatMs: 10 });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (request) => app.handle(request),
  );
  const base = `http://127.0.0.1:${server.addr.port}`;
  const hold = { tasks: [{ id: "hold", tool: "mock:delay", arguments: { ms: 600_000 } }] };
  const post = (path: string, accept: string) =>
    fetch(`${base}${path}`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: accept },
      body: JSON.stringify(hold),
    });
  const streams = await Promise.all(Array.from({ length: 10 }, () => post("/execute", SSE)));
  const { runId } = await (await post("/runs", "application/json")).json();
  const watchers = await Promise.all(
    Array.from(
      { length: 10 },
      () => fetch(`${base}/runs/${runId}/events`, { headers: { Accept: SSE } }),
    ),
  );
  const reading = [...streams, ...watchers].map(readAll);
  await app.shutdown();
  await server.shutdown();
  for (const events of await Promise.all(reading)) {
    assert.equal(events.at(-1)?.type, "error");
    assert.equal((events.at(-1)!.data as { code: string }).code, "shutdown");
  }
  assert.equal(app.runs.activeCount, 0);
});

Deno.test("a reader that leaves an idle run is let go at once, not at the run's next event", async () => {
  const log = new RunLog(1024);
  const left = new AbortController();
  let woke = false;
  const waiting = log.changed(left.signal).then(() => (woke = true));
  await Promise.resolve();
  assert.equal(woke, false);
  left.abort();
  await waiting;
  assert.equal(woke, true);
  // A reader that stays is woken by the next event as before.
  const staying = log.changed();
  log.append({ type: "error", data: { error: "x", timestamp: "t" } });
  await staying;
});

Deno.test("finished runs keep at most maxKeptRunBytes; the last one to finish always stays", async () => {
  const app = createApp({ log: () => {}, maxKeptRunBytes: 200_000 });
  try {
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const response = await app.handle(
        new Request("http://x/execute", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({
            tasks: [{ id: "a", tool: "mock:echo", arguments: { s: "x".repeat(60_000) } }],
          }),
        }),
      );
      ids.push(response.headers.get("x-run-id")!);
      await response.body?.cancel();
    }
    const kept = app.runs.list();
    assert.ok(kept.length >= 1 && kept.length < 10, `${kept.length} runs kept`);
    assert.equal(kept.at(-1)!.id, ids.at(-1), "the newest stays");
    assert.ok(kept.reduce((n, run) => n + run.keptBytes, 0) <= 200_000 + kept.at(-1)!.keptBytes);
    const gone = await app.handle(new Request(`http://x/runs/${ids[0]}`));
    assert.equal(gone.status, 404);
    await gone.body?.cancel();
  } finally {
    await app.shutdown();
  }
});

Deno.test("a tool reporting progress in a loop cannot flood its run's log", async () => {
  const tools = createToolRegistry({
    ...builtinTools,
    "test:chatty": {
      description: "reports progress 5000 times, then returns",
      inputSchema: { type: "object" },
      run(_args, ctx) {
        for (let i = 0; i < 5000; i++) ctx.progress?.({ progress: i, message: "m".repeat(500) });
        return { done: true };
      },
    },
  });
  // The log keeps a burst of 64 reports, then 10 a second: on a clock that
  // does not move, exactly the burst.
  using _clock = new FakeClock();
  const app = createApp({ log: () => {}, tools });
  try {
    const response = await app.handle(
      new Request("http://x/execute", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: SSE },
        body: JSON.stringify({ tasks: [{ id: "c", tool: "test:chatty" }] }),
      }),
    );
    const events = await readAll(response);
    const progress = events.filter((e) => e.type === "task_progress").length;
    assert.equal(progress, 64, "progress events kept of 5000");
    assert.deepEqual(events.filter((e) => e.type !== "task_progress").map((e) => e.type), [
      "task_start",
      "task_complete",
      "execution_complete",
    ]);
  } finally {
    await app.shutdown();
  }
});
