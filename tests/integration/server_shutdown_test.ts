/**
 * Integration tests of the bundled server's graceful shutdown: on SIGTERM or
 * SIGINT, open streams get an `error` event (code "shutdown") and close,
 * runs are cancelled, and the process exits 0.
 */

import assert from "node:assert/strict";
import { readSSEEvents, type ReceivedSSEEvent } from "../../src/sse/client.ts";
import { holdDag, postDag, startServer } from "./_server.ts";

const SSE = "text/event-stream";

Deno.test("SIGTERM with open streams: each gets an error event (shutdown), the process exits 0", async () => {
  const server = await startServer();
  try {
    // A POST /execute stream and a watcher of a detached run, both held open.
    const execute = await postDag(server.at("/execute"), holdDag(), SSE);
    assert.equal(execute.status, 200);
    const started = await postDag(server.at("/runs"), holdDag());
    const { runId } = await started.json();
    const watcher = await fetch(server.at(`/runs/${runId}/events`), { headers: { Accept: SSE } });
    assert.equal(watcher.status, 200);

    const streams = [execute, watcher].map((response) => {
      const events = readSSEEvents(response.body!)[Symbol.asyncIterator]();
      return { response, events };
    });
    // Both streams are live: their first event (task_start) has arrived.
    for (const { events } of streams) {
      const first = await events.next();
      assert.equal(first.value?.type, "task_start");
    }

    server.kill("SIGTERM");
    for (const { events } of streams) {
      const rest: ReceivedSSEEvent[] = [];
      while (true) {
        const next = await events.next();
        if (next.done) break; // the server closed the stream
        rest.push(next.value);
      }
      const last = rest.at(-1);
      assert.equal(last?.type, "error");
      const data = last!.data as { code?: string; error: string; timestamp: string };
      assert.equal(data.code, "shutdown");
      assert.equal(typeof data.error, "string");
      assert.equal(last!.id, undefined, "the shutdown error is not part of the run's log");
    }
    const status = await server.status;
    assert.equal(status.success, true);
    assert.equal(status.code, 0);
  } finally {
    await server.stop();
  }
});

Deno.test("SIGTERM with an active detached run and no watcher exits 0", async () => {
  const server = await startServer();
  try {
    const started = await postDag(server.at("/runs"), holdDag());
    assert.equal(started.status, 202);
    await started.body?.cancel();
    const health = await (await fetch(server.at("/health"))).json();
    assert.equal(health.activeRuns, 1);
    server.kill("SIGTERM");
    const status = await server.stop(); // also reads stderr to its end
    assert.equal(status.code, 0);
    assert.match(server.stderr(), /"msg":"shutdown","signal":"SIGTERM"/);
    assert.match(server.stderr(), /"msg":"run".*"status":"cancelled"/);
  } finally {
    await server.stop();
  }
});

Deno.test("SIGINT on an idle server exits 0", async () => {
  const server = await startServer();
  try {
    server.kill("SIGINT");
    assert.equal((await server.status).code, 0);
  } finally {
    await server.stop();
  }
});
