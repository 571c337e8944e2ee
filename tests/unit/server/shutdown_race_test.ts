/**
 * A request whose body is still arriving when shutdown begins must not
 * start a run afterwards: shutdown has already cancelled the runs it knew
 * of, closed the streams and the MCP servers, and waits for no new run.
 */

import assert from "node:assert/strict";
import { createApp } from "../../../src/server/app.ts";

/**
 * A POST whose JSON body the test finishes when it chooses. Its first 10
 * bytes come on the first read; `restRequested` resolves when the reader
 * asks for more (the handler is then waiting in the middle of the body),
 * and that read is answered only by `finish()`.
 */
function heldPost(path: string, accept: string) {
  const text = JSON.stringify({
    tasks: [{ id: "a", tool: "mock:delay", arguments: { ms: 60_000 } }],
  });
  const bytes = new TextEncoder().encode(text);
  const restRequested = Promise.withResolvers<void>();
  const finished = Promise.withResolvers<void>();
  let pulls = 0;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      pulls++;
      if (pulls === 1) {
        controller.enqueue(bytes.subarray(0, 10));
        return;
      }
      restRequested.resolve();
      await finished.promise;
      controller.enqueue(bytes.subarray(10));
      controller.close();
    },
  }, { highWaterMark: 0 });
  const request = new Request(`http://127.0.0.1:8000${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", accept },
    body,
  });
  return {
    request,
    restRequested: restRequested.promise,
    finish: () => finished.resolve(),
  };
}

for (
  const [path, accept] of [
    ["/runs", "application/json"],
    ["/execute", "application/json"],
    ["/execute", "text/event-stream"],
  ] as const
) {
  Deno.test(`shutdown while the body of POST ${path} (${accept}) arrives: 503, no run`, async () => {
    const app = createApp({ log: () => {} });
    const { request, restRequested, finish } = heldPost(path, accept);
    const answer = app.handle(request);
    // The handler has read the first bytes and waits for the rest of the
    // body; shutdown runs to its end before that rest arrives.
    await restRequested;
    await app.shutdown();
    finish();
    const response = await answer;
    assert.equal(response.status, 503);
    assert.match((await response.json()).detail, /shutting down/);
    assert.equal(app.runs.activeCount, 0);
    assert.equal(app.runs.list().length, 0);
  });
}

Deno.test("a POST /execute stream whose body trickles in holds no stream's place", async () => {
  const app = createApp({ log: () => {}, maxWatchers: 1 });
  const held = heldPost("/execute", "text/event-stream");
  const answer = app.handle(held.request);
  await held.restRequested;
  // Meanwhile another client takes the only place.
  const started = await app.handle(
    new Request("http://127.0.0.1:8000/runs", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ tasks: [{ id: "b", tool: "mock:delay", arguments: { ms: 60_000 } }] }),
    }),
  );
  const { runId } = await started.json();
  const watcher = await app.handle(new Request(`http://127.0.0.1:8000/runs/${runId}/events`));
  assert.equal(watcher.status, 200);
  // The trickled body is in now: no place for its stream, so no run either.
  held.finish();
  const response = await answer;
  assert.equal(response.status, 503);
  assert.match((await response.json()).detail, /--max-watchers/);
  assert.equal(app.runs.list().length, 1);
  await watcher.body?.cancel();
  await app.shutdown();
});
