/**
 * Integration tests of the server's memory bounds over real HTTP against the
 * real process: `--max-log-bytes-total` (finished runs are forgotten first,
 * oldest first; then new runs get 503 with Retry-After while active runs
 * fill it) and `--max-watchers` (503 for the stream past the cap, no run
 * started; a place frees when a stream closes). Ordering is proved by what
 * the client has received, never by sleeping.
 */

import assert from "node:assert/strict";
import { readSSEEvents } from "../../src/sse/client.ts";
import {
  assertProblem,
  echoDag,
  holdDag,
  postDag,
  type ServerProcess,
  startServer,
  waitForRunEnd,
} from "./_server.ts";

const SSE = "text/event-stream";
const JSON_TYPE = "application/json";

/** Reads `runId`'s events until `taskId`'s `task_complete` is in (so it is in the log), then leaves. */
async function awaitTaskComplete(
  server: ServerProcess,
  runId: string,
  taskId: string,
): Promise<void> {
  const response = await fetch(server.at(`/runs/${runId}/events`), { headers: { Accept: SSE } });
  assert.equal(response.status, 200);
  for await (const event of readSSEEvents(response.body!)) {
    // Leaving the loop cancels the stream.
    if (event.type === "task_complete" && (event.data as { taskId: string }).taskId === taskId) {
      return;
    }
  }
  throw new Error(`the stream of ${runId} ended without ${taskId}'s task_complete`);
}

async function status(server: ServerProcess, runId: string): Promise<number> {
  const response = await fetch(server.at(`/runs/${runId}`));
  await response.body?.cancel();
  return response.status;
}

/** POSTs `dag` to `/runs` and returns the answer, whatever its status. */
async function postRun(server: ServerProcess, dag: unknown): Promise<Response> {
  return await postDag(server.at("/runs"), dag, JSON_TYPE);
}

Deno.test("--max-log-bytes-total: finished runs are forgotten first, oldest first; then new runs get 503", async () => {
  await using server = await startServer(["--max-log-bytes-total", "300000"]);
  const payload = "x".repeat(50_000);

  // Three finished runs of about 50 KB of events each.
  const finished: string[] = [];
  for (let i = 0; i < 3; i++) {
    const response = await postRun(server, {
      tasks: [{ id: "e", tool: "mock:echo", arguments: { s: payload } }],
    });
    assert.equal(response.status, 202);
    const { runId } = await response.json();
    assert.equal((await waitForRunEnd(server, runId)).status, "succeeded");
    finished.push(runId);
  }

  // Active runs of about 50 KB each (an echo, then a task that waits until
  // cancelled), one at a time: each one's echo is in its log before the next.
  const active: string[] = [];
  const forgottenAfterEach: number[] = [];
  let refused: Response | undefined;
  for (let i = 0; i < 20 && refused === undefined; i++) {
    const response = await postRun(server, {
      tasks: [
        { id: "hold", tool: "mock:delay", arguments: { ms: 600_000 } },
        { id: "e", tool: "mock:echo", arguments: { s: payload } },
      ],
    });
    if (response.status === 503) {
      refused = response;
      break;
    }
    assert.equal(response.status, 202, await response.clone().text());
    const { runId } = await response.json();
    active.push(runId);
    await awaitTaskComplete(server, runId, "e");

    // What is gone is always the oldest finished runs, never an active one.
    const kept = await Promise.all(finished.map((id) => status(server, id)));
    const gone = kept.findIndex((s) => s === 200);
    const forgotten = gone === -1 ? kept.length : gone;
    assert.deepEqual(
      kept,
      [...Array(forgotten).fill(404), ...Array(kept.length - forgotten).fill(200)],
      "finished runs are forgotten oldest first",
    );
    forgottenAfterEach.push(forgotten);
    for (const id of active) assert.equal(await status(server, id), 200, "active runs stay");
  }
  assert.ok(refused, "a new run was refused once active runs filled the budget");
  assert.ok(active.length >= 3, `${active.length} active runs fit`);
  // Finished runs gave way one by one, all before any run was refused.
  assert.deepEqual(forgottenAfterEach, [...forgottenAfterEach].sort((a, b) => a - b));
  assert.ok(forgottenAfterEach.some((n) => n > 0 && n < finished.length), `${forgottenAfterEach}`);
  for (const id of finished) assert.equal(await status(server, id), 404);

  const retryAfter = refused.headers.get("retry-after");
  const problem = await assertProblem(refused, 503);
  assert.match(retryAfter ?? "", /^\d+$/);
  assert.match(String(problem.detail), /--max-log-bytes-total 300000/);
  for (const [path, accept] of [["/execute", SSE], ["/execute", JSON_TYPE]]) {
    const again = await postDag(server.at(path), echoDag(1), accept);
    assert.ok(again.headers.get("retry-after"));
    const body = await assertProblem(again, 503);
    assert.match(String(body.detail), /max-log-bytes-total/, `${path} ${accept}`);
  }
  const { runs } = await (await fetch(server.at("/runs"))).json();
  assert.equal(runs.length, active.length, "a refused request starts nothing");

  // One active run ends: its log is a finished run's now, and may give way.
  const deleted = await fetch(server.at(`/runs/${active[0]}`), { method: "DELETE" });
  assert.equal(deleted.status, 202);
  await deleted.body?.cancel();
  assert.equal((await waitForRunEnd(server, active[0])).status, "cancelled");
  const accepted = await postRun(server, echoDag(1));
  assert.equal(accepted.status, 202);
  const { runId } = await accepted.json();
  assert.equal((await waitForRunEnd(server, runId)).status, "succeeded");
});

Deno.test("--max-watchers 2: the third stream gets 503 and starts no run; a closed stream frees its place", async () => {
  await using server = await startServer(["--max-watchers", "2"]);
  const held = await postRun(server, holdDag(600_000));
  assert.equal(held.status, 202);
  const { runId } = await held.json();
  const watch = () => fetch(server.at(`/runs/${runId}/events`), { headers: { Accept: SSE } });

  // Two streams: a watcher, and a POST /execute stream whose run waits.
  const first = await watch();
  assert.equal(first.status, 200);
  const second = await postDag(server.at("/execute"), holdDag(600_000), SSE);
  assert.equal(second.status, 200);
  const secondRun = second.headers.get("x-run-id")!;
  const runsBefore = (await (await fetch(server.at("/runs"))).json()).runs.length;
  assert.equal(runsBefore, 2);

  // A third stream, either way: 503 with Retry-After; no run started.
  for (const third of [await watch(), await postDag(server.at("/execute"), echoDag(1), SSE)]) {
    const retryAfter = third.headers.get("retry-after");
    const problem = await assertProblem(third, 503);
    assert.match(retryAfter ?? "", /^\d+$/);
    assert.match(
      String(problem.detail),
      /too many open event streams \(at most 2, --max-watchers\)/,
    );
  }
  assert.equal((await (await fetch(server.at("/runs"))).json()).runs.length, runsBefore);
  // A batch (JSON) answer is no stream: it is not limited.
  const batch = await postDag(server.at("/execute"), echoDag(1), JSON_TYPE);
  assert.equal(batch.status, 200);
  assert.equal((await batch.json()).successfulTasks, 1);

  // The server ends the second stream (its run is cancelled): once the client
  // has read that stream's end, its place is free.
  const deleted = await fetch(server.at(`/runs/${secondRun}`), { method: "DELETE" });
  assert.equal(deleted.status, 202);
  await deleted.body?.cancel();
  const events = [];
  for await (const event of readSSEEvents(second.body!)) events.push(event.type);
  assert.equal(events.at(-1), "execution_complete");
  const replacement = await watch();
  assert.equal(replacement.status, 200, "a new stream is accepted once one closed");

  // Full again; a client that leaves frees its place too (noticed by the
  // server shortly after: polled, at most 500 times).
  await assertProblem(await watch(), 503);
  await first.body!.cancel();
  let reopened: Response | undefined;
  for (let attempt = 0; attempt < 500 && reopened === undefined; attempt++) {
    const response = await watch();
    if (response.status === 200) reopened = response;
    else {
      await assertProblem(response, 503);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
  assert.ok(reopened, "the place of a client that left is taken again");
  await reopened.body!.cancel();
  await replacement.body!.cancel();
});
