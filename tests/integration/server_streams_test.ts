/**
 * Integration tests of the bundled server's event streams: progressive
 * delivery, Deno's real `EventSource` with reconnection and `Last-Event-ID`,
 * replay of finished runs, several watchers, a slow watcher losing its place
 * in a bounded log, and what a client leaving does to its run.
 */

import assert from "node:assert/strict";
import { parseSSEStream, readSSEEvents } from "../../src/sse/client.ts";
import type { DAGStructure } from "../../src/dag/types.ts";
import {
  echoDag,
  holdDag,
  postDag,
  startGatedServer,
  startRun,
  startServer,
  waitForRunEnd,
} from "./_server.ts";

const SSE = "text/event-stream";
const EVENT_TYPES = ["task_start", "task_complete", "execution_complete", "error"] as const;

// deno-lint-ignore no-explicit-any
type Data = any;

/** An event as a client received it. */
interface Received {
  id: number | undefined;
  type: string;
  data: Data;
}

/**
 * Opens Deno's `EventSource` on `url` and collects the run's events until
 * `stop` says so; then closes it. A transport error rejects.
 */
function watch(
  url: string,
  stop: (event: Received, all: Received[]) => boolean,
): { source: EventSource; events: Promise<Received[]> } {
  const source = new EventSource(url);
  const received: Received[] = [];
  const events = new Promise<Received[]>((resolve, reject) => {
    let over = false;
    const onEvent = (message: Event) => {
      if (over) return;
      if (!(message instanceof MessageEvent)) {
        // The transport's own error (no data): the server closed or failed.
        over = true;
        source.close();
        reject(new Error(`EventSource error before the end (got ${received.length} events)`));
        return;
      }
      const event: Received = {
        id: message.lastEventId === "" ? undefined : Number(message.lastEventId),
        type: message.type,
        data: JSON.parse(message.data),
      };
      received.push(event);
      if (stop(event, received)) {
        over = true;
        source.close();
        resolve(received);
      }
    };
    for (const type of EVENT_TYPES) source.addEventListener(type, onEvent);
  });
  return { source, events };
}

function isEnd(event: Received): boolean {
  return event.type === "execution_complete" ||
    (event.type === "error" && event.id === undefined);
}

/** Asserts ids are exactly `from..to`, each once, in order. */
function assertIds(events: Received[], from: number, to: number): void {
  assert.deepEqual(
    events.map((e) => e.id),
    Array.from({ length: to - from + 1 }, (_, i) => from + i),
  );
}

/** Reads all events of a fetch response body. */
async function readAll(response: Response): Promise<Received[]> {
  const events: Received[] = [];
  for await (const event of readSSEEvents(response.body!)) {
    events.push({
      id: event.id === undefined ? undefined : Number(event.id),
      type: event.type,
      data: event.data,
    });
  }
  return events;
}

/** A chain a → b → c → d → e with short delays between echo tasks. */
const CHAIN: DAGStructure = {
  tasks: [
    { id: "a", tool: "mock:echo", arguments: { n: 1 } },
    { id: "b", tool: "mock:delay", arguments: { ms: 20 }, dependsOn: ["a"] },
    { id: "c", tool: "mock:echo", arguments: { n: 3 }, dependsOn: ["b"] },
    { id: "d", tool: "mock:delay", arguments: { ms: 20 }, dependsOn: ["c"] },
    { id: "e", tool: "mock:echo", arguments: { n: 5 }, dependsOn: ["d"] },
  ],
};
const CHAIN_EVENTS = CHAIN.tasks.length * 2 + 1;

Deno.test("events are progressive: a's task_complete arrives while b is still running", async () => {
  await using server = await startServer();
  const dag = {
    tasks: [
      { id: "a", tool: "mock:echo", arguments: { first: true } },
      { id: "b", tool: "mock:delay", arguments: { ms: 60_000 }, dependsOn: ["a"] },
    ],
  };
  const response = await postDag(server.at("/execute"), dag, SSE);
  const runId = response.headers.get("x-run-id")!;
  const events = [];
  let released = false;
  for await (const event of readSSEEvents(response.body!)) {
    events.push(event);
    const data = event.data as { taskId?: string };
    if (event.type === "task_complete" && data.taskId === "a" && !released) {
      // b waits a minute: the run cannot be over, so this event came live.
      assert.ok(!events.some((e) => e.type === "execution_complete"));
      const run = await (await fetch(server.at(`/runs/${runId}`))).json();
      assert.equal(run.status, "running");
      released = true;
      const cancelled = await fetch(server.at(`/runs/${runId}`), { method: "DELETE" });
      assert.equal(cancelled.status, 202);
      await cancelled.body?.cancel();
    }
  }
  assert.ok(released, "a's task_complete arrived");
  const bComplete = events.find((e) =>
    e.type === "task_complete" && (e.data as { taskId: string }).taskId === "b"
  );
  assert.equal((bComplete?.data as { status: string }).status, "error");
  assert.equal(events.at(-1)?.type, "execution_complete", "the stream still ends properly");
  assert.equal((await waitForRunEnd(server, runId)).status, "cancelled");
});

Deno.test("EventSource: close after a few events, reconnect with ?lastEventId=N: no duplicate, no gap", async () => {
  await using server = await startServer();
  const runId = await startRun(server, CHAIN);
  const url = server.at(`/runs/${runId}/events`);

  // First connection: leave after a's task_complete (id 2) or later.
  const first = watch(url, (e) => e.type === "task_complete" && e.data.taskId === "a");
  const before = await first.events;
  const last = before.at(-1)!.id!;
  assertIds(before, 1, last);

  // The run goes on without a watcher (leaving does not cancel it).
  const second = watch(`${url}?lastEventId=${last}`, isEnd);
  const after = await second.events;
  assertIds([...before, ...after], 1, CHAIN_EVENTS);
  assert.equal(after.at(-1)!.type, "execution_complete");
  assert.equal(after.at(-1)!.data.successCount, 5);
  assert.equal((await waitForRunEnd(server, runId)).status, "succeeded");
});

Deno.test("EventSource reconnects by itself with Last-Event-ID, gets no duplicate, and stops on 204", async () => {
  // A short retry makes Deno's EventSource come back quickly after the
  // server closes the stream of a finished run.
  await using server = await startServer(["--retry-ms", "20"]);
  const runId = await startRun(server, CHAIN);
  const source = new EventSource(server.at(`/runs/${runId}/events`));
  const received: Received[] = [];
  let opens = 0;
  await new Promise<void>((resolve) => {
    source.onopen = () => opens++;
    source.onerror = (event) => {
      if (event instanceof MessageEvent) return;
      // The server closed the stream once the run was over: the EventSource
      // reconnects with Last-Event-ID, and the server answers 204 (nothing
      // left to replay), which closes the EventSource for good. Without the
      // 204 it would reconnect forever and this promise would never settle.
      if (source.readyState === EventSource.CLOSED) resolve();
    };
    for (const type of EVENT_TYPES) {
      source.addEventListener(type, (message) => {
        if (!(message instanceof MessageEvent)) return;
        received.push({
          id: Number(message.lastEventId),
          type: message.type,
          data: JSON.parse(message.data),
        });
      });
    }
  });
  source.close();
  assert.equal(opens, 1, "the reconnect got 204, not a second stream");
  assertIds(received, 1, CHAIN_EVENTS);
});

Deno.test("GET /runs/<id>/events of a finished run with nothing left to replay answers 204", async () => {
  await using server = await startServer();
  const runId = await startRun(server, CHAIN);
  const url = server.at(`/runs/${runId}/events`);
  const all = await fetch(url, { headers: { Accept: SSE } });
  const events = await parseSSEStream(all.body!);
  const last = Number(events.at(-1)!.id);
  assert.equal(events.at(-1)!.type, "execution_complete");
  const again = await fetch(url, { headers: { Accept: SSE, "Last-Event-ID": String(last) } });
  assert.equal(again.status, 204);
  await again.body?.cancel();
  const before = await fetch(url, { headers: { Accept: SSE, "Last-Event-ID": String(last - 1) } });
  assert.equal(before.status, 200);
  const tail = await parseSSEStream(before.body!);
  assert.deepEqual(tail.map((e) => e.id), [String(last)]);
});

Deno.test("fetch with a Last-Event-ID header resumes mid-run: no duplicate, no gap", async () => {
  await using server = await startServer();
  const runId = await startRun(server, CHAIN);
  const url = server.at(`/runs/${runId}/events`);
  const first = await fetch(url, { headers: { Accept: SSE } });
  const before: Received[] = [];
  for await (const event of readSSEEvents(first.body!)) {
    before.push({ id: Number(event.id), type: event.type, data: event.data });
    if (before.length === 3) break; // leaving the loop cancels the body
  }
  assertIds(before, 1, 3);
  const second = await fetch(url, { headers: { Accept: SSE, "Last-Event-ID": "3" } });
  assert.equal(second.status, 200);
  const after = await readAll(second);
  assertIds([...before, ...after], 1, CHAIN_EVENTS);
  assert.equal(after.at(-1)!.type, "execution_complete");
});

Deno.test("a finished run's stream replays from Last-Event-ID, then closes", async (t) => {
  await using server = await startServer();
  const response = await postDag(server.at("/execute"), CHAIN, "application/json");
  const runId = response.headers.get("x-run-id")!;
  assert.equal((await response.json()).totalTasks, 5);
  const url = server.at(`/runs/${runId}/events`);

  await t.step("no Last-Event-ID: everything, then the stream closes", async () => {
    const answer = await fetch(url);
    assert.equal(answer.status, 200);
    assert.equal(answer.headers.get("content-type"), "text/event-stream");
    assert.equal(answer.headers.get("cache-control"), "no-cache");
    assert.equal(answer.headers.get("connection"), "keep-alive");
    assert.equal(answer.headers.get("x-accel-buffering"), "no");
    assert.equal(answer.headers.get("x-run-id"), runId);
    const text = await answer.text(); // resolves: the stream closed
    assert.ok(text.startsWith("retry: 2000\n\n"));
    assertIds(await readAll(new Response(text)), 1, CHAIN_EVENTS);
  });
  await t.step("Last-Event-ID: 4 replays 5..N", async () => {
    const events = await readAll(await fetch(url, { headers: { "Last-Event-ID": "4" } }));
    assertIds(events, 5, CHAIN_EVENTS);
  });
  await t.step("?lastEventId=0 replays all", async () => {
    assertIds(await readAll(await fetch(`${url}?lastEventId=0`)), 1, CHAIN_EVENTS);
  });
  await t.step("past the last event of a finished run: 204, nothing to replay", async () => {
    const answer = await fetch(url, { headers: { "Last-Event-ID": String(CHAIN_EVENTS) } });
    assert.equal(answer.status, 204);
    assert.equal(await answer.text(), "");
  });
});

Deno.test("two EventSource watchers on one run both get every event", async () => {
  await using server = await startServer();
  const dag = {
    tasks: [
      { id: "gate", tool: "mock:delay", arguments: { ms: 30 } },
      ...echoDag(6).tasks.map((t) => ({ ...t, dependsOn: ["gate"] })),
    ],
  };
  const runId = await startRun(server, dag);
  const url = server.at(`/runs/${runId}/events`);
  const [one, two] = await Promise.all([watch(url, isEnd).events, watch(url, isEnd).events]);
  const total = dag.tasks.length * 2 + 1;
  assertIds(one, 1, total);
  assertIds(two, 1, total);
  assert.deepEqual(one, two);
  assert.equal(one.at(-1)!.type, "execution_complete");
});

Deno.test("a slow watcher loses its place in a small log (events_lost) while a fast one completes", async () => {
  // Kernel socket buffers absorb a few MiB for a watcher that does not read
  // (about 4 MiB on Linux), so the run streams ~12 MiB: 48 task_complete
  // events of 256 KB each (one echo output referenced 48 times). Before each
  // one a gate holds the run until the fast reader has read up to it, so the
  // fast reader is never a whole log (1 MB, four such events) behind.
  const blobBytes = 256_000;
  const copies = 48;
  await using gated = await startGatedServer([
    "--max-run-log-bytes",
    "1000000",
    "--max-event-payload-bytes",
    "400000",
  ]);
  const { server } = gated;
  const gate = crypto.randomUUID();
  const tasks: DAGStructure["tasks"] = [
    { id: "blob", tool: "mock:echo", arguments: { text: "x".repeat(blobBytes) } },
  ];
  let previous = "blob";
  for (let i = 0; i < copies; i++) {
    tasks.push({
      id: `wait${i}`,
      tool: "gate:wait",
      arguments: { key: `${gate}-${i}` },
      dependsOn: [previous],
    });
    tasks.push({
      id: `big${i}`,
      tool: "mock:echo",
      arguments: { copy: "$OUTPUT[blob].text" },
      dependsOn: [`wait${i}`],
    });
    previous = `big${i}`;
  }
  // Each gate reports one task_progress once it blocks.
  const total = tasks.length * 2 + copies + 1;

  // The fast watcher is the POST /execute stream itself: attached when the run starts.
  const fast = await postDag(server.at("/execute"), { tasks }, SSE);
  const runId = fast.headers.get("x-run-id")!;
  const slow = await fetch(server.at(`/runs/${runId}/events`), { headers: { Accept: SSE } });
  assert.equal(slow.status, 200);

  // The fast reader opens each gate once it has read that the gate is waiting.
  const fastEvents: Received[] = [];
  for await (const event of readSSEEvents(fast.body!)) {
    const data = event.data as Data;
    fastEvents.push({ id: Number(event.id), type: event.type, data });
    if (event.type === "task_progress") await gated.release(`${gate}-${data.taskId.slice(4)}`);
  }
  assertIds(fastEvents, 1, total);
  assert.equal(fastEvents.at(-1)!.type, "execution_complete");
  assert.equal(fastEvents.at(-1)!.data.successCount, tasks.length);
  // The run finished although the slow watcher has not read a byte.
  assert.equal((await waitForRunEnd(server, runId)).status, "succeeded");

  const slowEvents = await readAll(slow); // resolves: the server closed the stream
  const lost = slowEvents.at(-1)!;
  assert.equal(lost.type, "error");
  assert.equal(lost.id, undefined, "the events_lost error is not part of the run's log");
  assert.equal(lost.data.code, "events_lost");
  assert.equal(lost.data.resultUrl, `/runs/${runId}`);
  assert.match(lost.data.error, new RegExp(`/runs/${runId}`));
  const kept = slowEvents.slice(0, -1);
  assertIds(kept, 1, kept.length);
  assert.ok(Number.isInteger(lost.data.missedEvents) && lost.data.missedEvents > 0);
  assert.ok(kept.length + lost.data.missedEvents < total);

  // The full result is where the error said.
  const run = await (await fetch(server.at(lost.data.resultUrl))).json();
  assert.equal(run.result.results.at(-1).output.copy.length, blobBytes);
});

Deno.test("a watcher that comes back after its next event gave way gets events_lost with the count", async () => {
  await using server = await startServer(["--max-run-log-bytes", "4096"]);
  const response = await postDag(server.at("/execute"), echoDag(50), "application/json");
  const runId = response.headers.get("x-run-id")!;
  assert.equal((await response.json()).successfulTasks, 50);
  // 101 events of ~150 bytes: the log keeps only the last few dozen.
  const fromZero = await readAll(await fetch(server.at(`/runs/${runId}/events`)));
  assert.equal(fromZero.length, 1);
  assert.equal(fromZero[0].data.code, "events_lost");
  const missed = fromZero[0].data.missedEvents;
  assert.ok(missed > 0 && missed < 101);

  // Resuming after the last lost id: everything kept, up to the end.
  const resumed = await readAll(
    await fetch(server.at(`/runs/${runId}/events`), { headers: { "Last-Event-ID": `${missed}` } }),
  );
  assertIds(resumed, missed + 1, 101);
  const fromOne = await readAll(
    await fetch(server.at(`/runs/${runId}/events?lastEventId=1`)),
  );
  assert.equal(fromOne.length, 1);
  assert.equal(fromOne[0].data.code, "events_lost");
  assert.equal(fromOne[0].data.missedEvents, missed - 1);
});

Deno.test("leaving POST /execute (SSE) cancels the run", async () => {
  await using server = await startServer();
  const response = await postDag(server.at("/execute"), holdDag(), SSE);
  const runId = response.headers.get("x-run-id")!;
  for await (const event of readSSEEvents(response.body!)) {
    assert.equal(event.type, "task_start"); // the run is under way
    break; // leaving the loop cancels the body: the client goes away
  }
  const run = await waitForRunEnd(server, runId);
  assert.equal(run.status, "cancelled");
});

Deno.test("leaving POST /execute (JSON) before the answer cancels the run", async () => {
  await using server = await startServer();
  const controller = new AbortController();
  const answer = fetch(server.at("/execute"), {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(holdDag()),
    signal: controller.signal,
  }).catch((error) => error);
  // Wait until the run is under way (it holds for a minute), then leave.
  let runs: { runId: string; status: string }[] = [];
  while (runs.length === 0) runs = (await (await fetch(server.at("/runs"))).json()).runs;
  assert.equal(runs[0].status, "running");
  controller.abort();
  assert.equal((await answer).name, "AbortError");
  assert.equal((await waitForRunEnd(server, runs[0].runId)).status, "cancelled");
});

Deno.test("leaving GET /runs/<id>/events does not cancel the run", async () => {
  await using gated = await startGatedServer();
  const { server } = gated;
  // a -> b (held at a gate) -> c: both runs are certainly still going when
  // their clients leave.
  const heldBy = (key: string) => ({
    tasks: [
      { id: "a", tool: "mock:echo" },
      { id: "b", tool: "gate:wait", arguments: { key }, dependsOn: ["a"] },
      { id: "c", tool: "mock:echo", dependsOn: ["b"] },
    ],
  });
  const key = `watched-${crypto.randomUUID()}`;
  // Control: the same leave on POST /execute is noticed and cancels that run.
  const control = await postDag(
    server.at("/execute"),
    heldBy(`never-${crypto.randomUUID()}`),
    SSE,
  );
  const controlId = control.headers.get("x-run-id")!;
  const runId = await startRun(server, heldBy(key));
  const watcher = await fetch(server.at(`/runs/${runId}/events`), { headers: { Accept: SSE } });
  // The watcher leaves first, then the control client, the same way.
  for await (const event of readSSEEvents(watcher.body!)) {
    assert.equal(event.type, "task_start");
    break;
  }
  for await (const event of readSSEEvents(control.body!)) {
    assert.equal(event.type, "task_start");
    break;
  }
  assert.equal((await waitForRunEnd(server, controlId)).status, "cancelled");
  // The watched run is still held at its gate: its watcher leaving changed nothing.
  assert.equal((await (await fetch(server.at(`/runs/${runId}`))).json()).status, "running");
  await gated.release(key);
  const run = await waitForRunEnd(server, runId);
  assert.equal(run.status, "succeeded", "the watched run went on without its watcher");
  // And the watcher may come back for the rest.
  const back = await readAll(
    await fetch(server.at(`/runs/${runId}/events`), { headers: { "Last-Event-ID": "1" } }),
  );
  assertIds(back, 2, back.length + 1);
  assert.deepEqual(back.filter((e) => e.type !== "task_progress").map((e) => e.type), [
    "task_complete",
    "task_start",
    "task_complete",
    "task_start",
    "task_complete",
    "execution_complete",
  ]);
});

Deno.test("idle streams get keep-alive comments; retry is configurable", async () => {
  await using server = await startServer(["--heartbeat-ms", "30", "--retry-ms", "1234"]);
  const runId = await startRun(server, holdDag());
  const response = await fetch(server.at(`/runs/${runId}/events`));
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes(": keep-alive\n\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  await reader.cancel();
  assert.ok(text.startsWith("retry: 1234\n\n"));
  assert.match(text, /^retry: 1234\n\nid: 1\nevent: task_start\n/);
  assert.ok(text.includes(": keep-alive\n\n"));
  await (await fetch(server.at(`/runs/${runId}`), { method: "DELETE" })).body?.cancel();
  assert.equal((await waitForRunEnd(server, runId)).status, "cancelled");
});

Deno.test("an output over --max-event-payload-bytes streams truncated; the result keeps it whole", async () => {
  await using server = await startServer(["--max-event-payload-bytes", "1024"]);
  const big = "y".repeat(5000);
  const response = await postDag(server.at("/execute"), {
    tasks: [{ id: "big", tool: "mock:echo", arguments: { big } }],
  }, SSE);
  const runId = response.headers.get("x-run-id")!;
  const events = await readAll(response);
  const complete = events.find((e) => e.type === "task_complete")!;
  assert.equal(complete.data.truncated, true);
  assert.equal(complete.data.outputBytes, JSON.stringify({ big }).length);
  assert.equal(typeof complete.data.output, "string");
  assert.ok(JSON.stringify(complete.data).length <= 1024);
  const run = await waitForRunEnd(server, runId);
  assert.deepEqual((run.result as Data).results[0].output, { big });
});
