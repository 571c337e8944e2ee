/**
 * Following a run on a server (`deno task run --server`), against a fake
 * server on 127.0.0.1 whose answers the test writes: a stream that ends
 * or breaks off early is reopened with `Last-Event-ID`; a 204 ends the
 * follow; events that gave way are completed from the run's result; the
 * server's refusals are RunSourceErrors with the problem's detail and
 * paths; a cancel is a `DELETE` with the token.
 */

import assert from "node:assert/strict";
import { RunSourceError } from "../../../src/client/run-source.ts";
import { startRemoteRun } from "../../../src/client/remote-run.ts";

const DAG = { tasks: [{ id: "a", tool: "mock:echo" }, { id: "b", tool: "mock:echo" }] };
const TS = "2026-01-01T00:00:00.000Z";

/** One SSE frame. */
function frame(type: string, data: Record<string, unknown>, id?: number): string {
  return `${id === undefined ? "" : `id: ${id}\n`}event: ${type}\ndata: ${
    JSON.stringify(data)
  }\n\n`;
}

const EVENTS = [
  frame("task_start", { taskId: "a", tool: "mock:echo", timestamp: TS }, 1),
  frame("task_complete", {
    taskId: "a",
    tool: "mock:echo",
    status: "success",
    output: 1,
    executionTimeMs: 1,
    timestamp: TS,
  }, 2),
  frame("task_start", { taskId: "b", tool: "mock:echo", timestamp: TS }, 3),
  frame("task_complete", {
    taskId: "b",
    tool: "mock:echo",
    status: "success",
    output: 2,
    executionTimeMs: 1,
    timestamp: TS,
  }, 4),
  frame("execution_complete", {
    totalTasks: 2,
    successCount: 2,
    errorCount: 0,
    totalExecutionTimeMs: 3,
    timestamp: TS,
  }, 5),
];

/** {@linkcode EVENTS} as {@linkcode follow} hands them on. */
const FOLLOWED = [
  "task_start a",
  "task_complete a",
  "task_start b",
  "task_complete b",
  "execution_complete",
];

/** A request the fake server received. */
interface Seen {
  method: string;
  path: string;
  headers: Headers;
}

/** A fake server: `answer` writes each answer; every request is recorded. */
async function fakeServer(
  answer: (request: Request, seen: Seen[]) => Response | Promise<Response>,
) {
  const seen: Seen[] = [];
  const { promise: listening, resolve } = Promise.withResolvers<URL>();
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: ({ port }) => resolve(new URL(`http://127.0.0.1:${port}/`)),
  }, (request) => {
    seen.push({
      method: request.method,
      path: new URL(request.url).pathname,
      headers: request.headers,
    });
    return answer(request, seen);
  });
  const url = await listening;
  return {
    url,
    seen,
    async [Symbol.asyncDispose]() {
      await server.shutdown();
    },
  };
}

const accepted = () =>
  Response.json({ runId: "r1", eventsUrl: "/runs/r1/events" }, { status: 202 });

const sse = (body: string | ReadableStream<Uint8Array>) =>
  new Response(body, { headers: { "Content-Type": "text/event-stream" } });

/** The events `follow` hands on, as `type taskId`. */
async function follow(run: { follow(on: (type: string, data: unknown) => void): Promise<void> }) {
  const got: string[] = [];
  await run.follow((type, data) => {
    const taskId = (data as { taskId?: string }).taskId;
    got.push(taskId === undefined ? type : `${type} ${taskId}`);
  });
  return got;
}

Deno.test("remote run: POST /runs with the file's text and the token, then its event stream", async () => {
  const bodies: string[] = [];
  await using server = await fakeServer(async (request) => {
    if (request.method === "POST") {
      bodies.push(await request.text());
      return accepted();
    }
    return sse(EVENTS.join(""));
  });
  const text = JSON.stringify(DAG, null, 2);
  const run = await startRemoteRun(text, DAG, { server: server.url, token: "s3cret" });
  assert.equal(run.runId, "r1");
  assert.deepEqual(run.tasks.map((t) => t.id), ["a", "b"]);
  assert.deepEqual(await follow(run), FOLLOWED);
  assert.deepEqual(bodies, [text], "the file is sent as it is");
  const [post, events] = server.seen;
  assert.equal(post.path, "/runs");
  assert.equal(post.headers.get("authorization"), "Bearer s3cret");
  assert.equal(post.headers.get("accept"), "application/json");
  assert.equal(events.path, "/runs/r1/events");
  assert.equal(events.headers.get("authorization"), "Bearer s3cret");
  assert.equal(events.headers.get("accept"), "text/event-stream");
  await run.close();
});

/**
 * An event stream server over raw TCP, for what `Deno.serve` cannot do:
 * break a connection off in the middle of a response. Serves
 * `responses.length` connections, one response each, in order: `end`
 * finishes the body properly, `break` closes the connection after the
 * frames, mid-body. Records each request's `Last-Event-ID`.
 */
function rawEventServer(responses: { frames: string; then: "end" | "break" }[]) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const lastEventIds: (string | undefined)[] = [];
  const encoder = new TextEncoder();
  const serving = (async () => {
    for (const { frames, then } of responses) {
      const conn = await listener.accept();
      let head = "";
      const buffer = new Uint8Array(4096);
      while (!head.includes("\r\n\r\n")) {
        const n = await conn.read(buffer);
        if (n === null) break;
        head += new TextDecoder().decode(buffer.subarray(0, n));
      }
      lastEventIds.push(/^last-event-id: *(\S+)/im.exec(head)?.[1]);
      const body = encoder.encode(frames);
      const chunk = `${body.length.toString(16)}\r\n${frames}\r\n`;
      const text = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n" +
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunk +
        (then === "end" ? "0\r\n\r\n" : "");
      const bytes = encoder.encode(text);
      for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
      conn.close();
    }
    listener.close();
  })();
  return {
    url: `http://127.0.0.1:${listener.addr.port}/runs/r1/events`,
    lastEventIds,
    serving,
  };
}

Deno.test("remote run: a stream that ends or breaks off early is reopened after the last event received", async () => {
  const events = rawEventServer([
    { frames: EVENTS.slice(0, 2).join(""), then: "end" },
    { frames: EVENTS[2], then: "break" },
    { frames: EVENTS.slice(3).join(""), then: "end" },
  ]);
  await using server = await fakeServer(() =>
    Response.json({ runId: "r1", eventsUrl: events.url }, { status: 202 })
  );
  const run = await startRemoteRun("{}", DAG, { server: server.url, retryDelaysMs: [0, 0, 0] });
  assert.deepEqual(await follow(run), FOLLOWED);
  await events.serving;
  assert.deepEqual(events.lastEventIds, ["0", "2", "3"]);
  await run.close();
});

Deno.test("remote run: a 204 says the run is over with nothing left to read", async () => {
  let streams = 0;
  await using server = await fakeServer((request) => {
    if (request.method === "POST") return accepted();
    return ++streams === 1 ? sse(EVENTS.slice(0, 4).join("")) : new Response(null, { status: 204 });
  });
  const run = await startRemoteRun("{}", DAG, { server: server.url, retryDelaysMs: [0] });
  assert.equal((await follow(run)).length, 4);
  assert.equal(run.lastEventId, 4);
  await run.close();
});

Deno.test("remote run: events that gave way are skipped, and their tasks completed from the result", async () => {
  await using server = await fakeServer((request, seen) => {
    if (request.method === "POST") return accepted();
    if (new URL(request.url).pathname === "/runs/r1") {
      return Response.json({
        runId: "r1",
        status: "succeeded",
        result: {
          results: [
            { taskId: "a", status: "success", output: 1, executionTimeMs: 1 },
            { taskId: "b", status: "error", error: "boom", executionTimeMs: 2 },
          ],
        },
      });
    }
    if (seen.filter((s) => s.path.endsWith("/events")).length === 1) {
      const lost = frame("error", {
        error: "events were lost",
        code: "events_lost",
        missedEvents: 3,
        timestamp: TS,
      });
      return sse(EVENTS[0] + lost); // events 2-4 gave way
    }
    return sse(EVENTS[4]);
  });
  const run = await startRemoteRun("{}", DAG, { server: server.url, retryDelaysMs: [0] });
  assert.deepEqual(await follow(run), [
    "task_start a",
    "execution_complete",
    "task_complete a",
    "task_complete b",
    "execution_complete", // from the result too: the view ignores a second one
  ]);
  const streams = server.seen.filter((s) => s.path.endsWith("/events"));
  assert.equal(streams[1].headers.get("last-event-id"), "4", "after the events that gave way");
  await run.close();
});

Deno.test("remote run: a refusal is the problem's detail with each problem's path", async () => {
  await using server = await fakeServer(() =>
    Response.json({
      type: "https://dagstream.dev/problems/invalid-dag",
      title: "Unprocessable Content",
      status: 422,
      detail: "the DAG is invalid (1 problem)",
      errors: [{ path: "tasks[0].tool", message: 'unknown tool "nope"' }],
    }, { status: 422, headers: { "Content-Type": "application/problem+json" } })
  );
  await assert.rejects(startRemoteRun("{}", DAG, { server: server.url }), (error) => {
    assert.ok(error instanceof RunSourceError);
    assert.equal(error.message, "the server refused the run (422): the DAG is invalid (1 problem)");
    assert.deepEqual(error.issues, [{ path: "tasks[0].tool", message: 'unknown tool "nope"' }]);
    return true;
  });
});

Deno.test("remote run: a 401 says how to give the token; a server that keeps failing is given up on", async () => {
  await using refusing = await fakeServer(() =>
    Response.json({ detail: "a valid bearer token is required" }, { status: 401 })
  );
  await assert.rejects(
    startRemoteRun("{}", DAG, { server: refusing.url }),
    /\(401\): a valid bearer token is required \(give --token, or set DAGSTREAM_TOKEN\)$/,
  );
  await using failing = await fakeServer((request) =>
    request.method === "POST"
      ? accepted()
      : Response.json({ detail: "the server is shutting down" }, { status: 503 })
  );
  const run = await startRemoteRun("{}", DAG, { server: failing.url, retryDelaysMs: [0, 0] });
  await assert.rejects(
    follow(run),
    /^RunSourceError: the server refused the run's events \(503\): the server is shutting down; gave up after 3 attempts$/,
  );
  await run.close();
});

Deno.test("remote run: a run gone from the server is no reason to ask again", async () => {
  await using server = await fakeServer((request) =>
    request.method === "POST" ? accepted() : Response.json({ detail: "no run r1" }, { status: 404 })
  );
  const run = await startRemoteRun("{}", DAG, { server: server.url, retryDelaysMs: [0, 0, 0] });
  await assert.rejects(follow(run), /\(404\): no run r1$/);
  assert.equal(server.seen.length, 2, "one POST, one GET");
  await run.close();
});

Deno.test("remote run: cancel is a DELETE of the run, with the token; a server behind a path prefix keeps it", async () => {
  await using server = await fakeServer((request) =>
    request.method === "POST" ? accepted() : Response.json({ runId: "r1" }, { status: 202 })
  );
  const prefixed = new URL("dagstream/", server.url);
  const run = await startRemoteRun("{}", DAG, { server: prefixed, token: "t" });
  await run.cancel();
  const [post, cancel] = server.seen;
  assert.equal(post.path, "/dagstream/runs");
  assert.equal(cancel.method, "DELETE");
  assert.equal(cancel.path, "/dagstream/runs/r1");
  assert.equal(cancel.headers.get("authorization"), "Bearer t");
  await run.close();
});

Deno.test("remote run: close() ends a follow that waits to reconnect", async () => {
  await using server = await fakeServer((request) =>
    request.method === "POST" ? accepted() : sse(EVENTS[0])
  );
  const run = await startRemoteRun("{}", DAG, { server: server.url, retryDelaysMs: [60_000] });
  const seenFirst = Promise.withResolvers<void>();
  const following = run.follow(() => seenFirst.resolve());
  await seenFirst.promise;
  await run.close();
  await assert.rejects(following, /stopped following the run/);
});
