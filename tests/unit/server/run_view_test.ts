/**
 * What the routes show of a run, and what a kept run counts against
 * --max-kept-run-bytes: its tasks now too, since GET /runs/<id> shows them.
 */

import assert from "node:assert/strict";
import { createApp } from "../../../src/server/app.ts";

const HEADERS = { "Content-Type": "application/json", Accept: "application/json" };

async function execute(app: ReturnType<typeof createApp>, dag: unknown) {
  const response = await app.handle(
    new Request("http://127.0.0.1:8000/execute", {
      method: "POST",
      headers: HEADERS,
      body: JSON.stringify(dag),
    }),
  );
  assert.equal(response.status, 200);
  await response.body?.cancel();
  return response.headers.get("x-run-id")!;
}

Deno.test("run view: a kept run counts its tasks; a bigger DAG keeps more", async () => {
  const app = createApp({ log: () => {}, instanceId: "unit" });
  try {
    const small = await execute(app, { tasks: [{ id: "a", tool: "mock:echo" }] });
    const padded = await execute(app, {
      tasks: [{ id: "a", tool: "mock:echo", arguments: { pad: "x".repeat(20_000) } }],
    });
    const [one, two] = [app.runs.get(small)!, app.runs.get(padded)!];
    // The padded run's events and output also carry the 20,000 characters:
    // its tasks alone add at least as much again.
    assert.ok(two.keptBytes - one.keptBytes >= 3 * 20_000, `${one.keptBytes} ${two.keptBytes}`);
  } finally {
    await app.shutdown();
  }
});

Deno.test("run view: GET /runs/<id> has the DAG and the times; GET /runs items do not carry it", async () => {
  const app = createApp({ log: () => {}, instanceId: "unit" });
  try {
    const dag = { tasks: [{ id: "a", tool: "mock:echo", arguments: { n: 1 } }] };
    const id = await execute(app, dag);
    const get = (path: string) =>
      app.handle(new Request(`http://127.0.0.1:8000${path}`, { headers: HEADERS }))
        .then((r) => r.json());
    const run = await get(`/runs/${id}`);
    assert.deepEqual(Object.keys(run), [
      "runId",
      "status",
      "createdAt",
      "startedAt",
      "finishedAt",
      "instance",
      "result",
      "dag",
    ]);
    assert.deepEqual(run.dag, dag);
    assert.equal(run.instance, "unit");
    const { runs } = await get("/runs");
    assert.deepEqual(runs, [{
      runId: id,
      status: "succeeded",
      instance: "unit",
      createdAt: run.createdAt,
      startedAt: run.startedAt,
      finishedAt: run.finishedAt,
    }]);
  } finally {
    await app.shutdown();
  }
});

Deno.test("run view: an instance id that is not one is refused by createApp", () => {
  assert.throws(() => createApp({ log: () => {}, instanceId: "no spaces" }), RangeError);
});
