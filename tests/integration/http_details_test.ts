/**
 * HTTP details of the real server process: HEAD on every GET route, OPTIONS
 * on every route, media-type parameters in `Accept`, `Last-Event-ID` past the
 * end of a run, and 400s that never echo much of what they reject.
 */

import assert from "node:assert/strict";
import { readSSEEvents } from "../../src/sse/client.ts";
import {
  assertProblem,
  echoDag,
  holdDag,
  postDag,
  rawRequest,
  startRun,
  startServer,
  waitForRunEnd,
} from "./_server.ts";

const SSE = "text/event-stream";

Deno.test("HEAD answers every GET route with the GET's status and headers, no body", async (t) => {
  await using server = await startServer();
  const finished = await startRun(server, echoDag(2));
  await waitForRunEnd(server, finished);
  const paths = [
    "/runs",
    `/runs/${finished}`,
    "/tools",
    "/health",
    "/runs/unknown-id",
    `/runs/${finished}/events?lastEventId=2`,
  ];
  for (const path of paths) {
    await t.step(`HEAD ${path}`, async () => {
      const get = await fetch(server.at(path), { headers: { Accept: SSE } });
      const getBody = new Uint8Array(await get.arrayBuffer());
      // Raw, so the bytes after the head (there must be none) are seen too.
      const head = await rawRequest(server.at(path), "HEAD", { Accept: SSE });
      assert.equal(head.status, get.status);
      assert.equal(head.body, "");
      assert.equal(head.headers.get("content-type"), get.headers.get("content-type"));
      if (!get.headers.get("content-type")?.startsWith(SSE)) {
        assert.equal(head.headers.get("content-length"), String(getBody.byteLength));
      }
    });
  }
  await t.step("HEAD of a live run's stream neither hangs nor disturbs the run", async () => {
    const live = await startRun(server, holdDag());
    const head = await rawRequest(server.at(`/runs/${live}/events`), "HEAD", { Accept: SSE });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("content-type"), SSE);
    assert.equal(head.body, "");
    const run = await fetch(server.at(`/runs/${live}`));
    assert.equal((await run.json()).status, "running");
    const deleted = await fetch(server.at(`/runs/${live}`), { method: "DELETE" });
    assert.equal(deleted.status, 202);
    await deleted.body?.cancel();
  });
});

Deno.test("OPTIONS answers every route with 204 and Allow", async (t) => {
  await using server = await startServer();
  const cases: [string, string][] = [
    ["/execute", "POST, OPTIONS"],
    ["/runs", "GET, POST, HEAD, OPTIONS"],
    ["/runs/x", "GET, DELETE, HEAD, OPTIONS"],
    ["/runs/x/events", "GET, HEAD, OPTIONS"],
    ["/tools", "GET, HEAD, OPTIONS"],
    ["/health", "GET, HEAD, OPTIONS"],
  ];
  for (const [path, allow] of cases) {
    await t.step(path, async () => {
      const response = await fetch(server.at(path), { method: "OPTIONS" });
      assert.equal(response.status, 204);
      assert.deepEqual(
        (response.headers.get("allow") ?? "").split(",").map((m) => m.trim()).sort(),
        allow.split(", ").sort(),
      );
      assert.equal(response.headers.get("access-control-allow-methods"), null);
      await response.body?.cancel();
    });
  }
  await t.step("an unknown route is still 404", async () => {
    await assertProblem(await fetch(server.at("/nope"), { method: "OPTIONS" }), 404);
  });
});

Deno.test("Accept: media-type parameters (charset=utf-8) still mean SSE", async (t) => {
  await using server = await startServer();
  for (const accept of [`${SSE}; charset=utf-8`, `${SSE};charset=UTF-8;q=0.9, */*;q=0.1`]) {
    await t.step(`POST /execute, ${accept}`, async () => {
      const response = await postDag(server.at("/execute"), echoDag(1), accept);
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("content-type"), SSE);
      assert.match(await response.text(), /event: execution_complete/);
    });
  }
  await t.step("GET /runs/<id>/events", async () => {
    const runId = await startRun(server, echoDag(1));
    await waitForRunEnd(server, runId);
    const response = await fetch(server.at(`/runs/${runId}/events`), {
      headers: { Accept: `${SSE}; charset=utf-8` },
    });
    assert.equal(response.status, 200);
    assert.match(await response.text(), /event: execution_complete/);
  });
  await t.step("a parameter does not make JSON acceptable where it is not", async () => {
    const runId = await startRun(server, echoDag(1));
    const response = await fetch(server.at(`/runs/${runId}/events`), {
      headers: { Accept: "application/json; charset=utf-8" },
    });
    await assertProblem(response, 406);
  });
});

Deno.test("Last-Event-ID past the run's last event → 400, for finished and running runs", async (t) => {
  await using server = await startServer();
  await t.step("finished run: its last id replays nothing (204), one more is 400", async () => {
    const runId = await startRun(server, echoDag(2)); // 2 starts, 2 completes, 1 end: ids 1..5
    await waitForRunEnd(server, runId);
    const at = (last: string) =>
      fetch(server.at(`/runs/${runId}/events`), {
        headers: { Accept: SSE, "Last-Event-ID": last },
      });
    const last = await at("5");
    assert.equal(last.status, 204);
    await last.body?.cancel();
    for (const past of ["6", "999999999999999"]) {
      const body = await assertProblem(await at(past), 400);
      assert.match(String(body.detail), /past the run's last event \(5\)/);
    }
    const query = await fetch(server.at(`/runs/${runId}/events?lastEventId=6`));
    await assertProblem(query, 400);
  });
  await t.step("running run: ids it has sent are fine, later ones are 400", async () => {
    const runId = await startRun(server, holdDag());
    const live = await fetch(server.at(`/runs/${runId}/events`), { headers: { Accept: SSE } });
    const events = readSSEEvents(live.body!)[Symbol.asyncIterator]();
    const first = await events.next(); // task_start of "hold": id 1 exists now
    assert.equal(first.value?.id, "1");
    const past = await fetch(server.at(`/runs/${runId}/events`), {
      headers: { Accept: SSE, "Last-Event-ID": "2" },
    });
    await assertProblem(past, 400);
    const deleted = await fetch(server.at(`/runs/${runId}`), { method: "DELETE" });
    assert.equal(deleted.status, 202);
    await deleted.body?.cancel();
    await events.return?.();
  });
});

Deno.test("a 400 never echoes more than 100 characters of what it rejects", async () => {
  await using server = await startServer();
  const runId = await startRun(server, echoDag(1));
  await waitForRunEnd(server, runId);
  const long = "x".repeat(5000);
  const answers = [
    await fetch(server.at(`/runs/${runId}/events`), { headers: { "Last-Event-ID": long } }),
    await fetch(server.at(`/runs/${runId}/events?lastEventId=${long}`)),
    await fetch(server.at(`/runs/%E0%A4%A${long}`)),
  ];
  for (const response of answers) {
    const body = await assertProblem(response, 400);
    const detail = String(body.detail);
    assert.ok(detail.includes("x".repeat(80)), detail);
    assert.ok(!detail.includes("x".repeat(101)), detail);
    assert.ok(detail.length < 400, `${detail.length} characters`);
  }
});
