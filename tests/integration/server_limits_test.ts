/**
 * Integration tests of the bundled server's limits and access control, over
 * real HTTP against the real process: body size (413), active runs (503 with
 * Retry-After), bearer token (401, `access_token` for EventSource) and CORS.
 */

import assert from "node:assert/strict";
import { readSSEEvents } from "../../src/sse/client.ts";
import { assertProblem, echoDag, holdDag, postDag, startServer, waitForRunEnd } from "./_server.ts";

const SSE = "text/event-stream";

/** A valid DAG whose JSON text is exactly `bytes` long (padded with spaces). */
function dagOfSize(bytes: number): string {
  const json = JSON.stringify(echoDag(1));
  assert.ok(json.length <= bytes);
  return json + " ".repeat(bytes - json.length);
}

Deno.test("a body over --max-body-bytes answers 413; one at the limit is accepted", async (t) => {
  await using server = await startServer(["--max-body-bytes", "300"]);
  const post = (path: string, body: BodyInit, accept = "application/json") =>
    fetch(server.at(path), {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: accept },
      body,
    });

  await t.step("exactly the limit → accepted", async () => {
    const response = await post("/runs", dagOfSize(300));
    assert.equal(response.status, 202);
    await response.body?.cancel();
  });
  for (const [path, accept] of [["/runs", "application/json"], ["/execute", SSE]]) {
    await t.step(`one byte over (Content-Length) → 413 on ${path}`, async () => {
      await assertProblem(await post(path, dagOfSize(301), accept), 413);
    });
  }
  await t.step("a large streamed body without Content-Length → 413", async () => {
    const chunk = new TextEncoder().encode(" ".repeat(100));
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent === 0) controller.enqueue(new TextEncoder().encode(JSON.stringify(echoDag(1))));
        else if (sent < 20) controller.enqueue(chunk);
        else controller.close();
        sent++;
      },
    });
    await assertProblem(await post("/execute", body, SSE), 413);
  });
  await t.step("no run was started by a refused body", async () => {
    const { runs } = await (await fetch(server.at("/runs"))).json();
    assert.equal(runs.length, 1);
  });
});

Deno.test("over --max-active-runs: 503 with Retry-After until a run ends", async () => {
  await using server = await startServer(["--max-active-runs", "1"]);
  const held = await postDag(server.at("/runs"), holdDag());
  assert.equal(held.status, 202);
  const { runId } = await held.json();
  assert.equal((await (await fetch(server.at("/health"))).json()).activeRuns, 1);

  for (
    const [path, accept] of [["/runs", "application/json"], ["/execute", SSE], [
      "/execute",
      "application/json",
    ]]
  ) {
    const response = await postDag(server.at(path), echoDag(1), accept);
    const retryAfter = response.headers.get("retry-after");
    await assertProblem(response, 503);
    assert.match(retryAfter ?? "", /^\d+$/, `Retry-After on ${path} (${accept})`);
    assert.ok(Number(retryAfter) >= 1);
  }
  // A refused request starts nothing.
  assert.equal((await (await fetch(server.at("/runs"))).json()).runs.length, 1);

  // Cancel the run holding the only slot; once it is over, runs start again.
  const deleted = await fetch(server.at(`/runs/${runId}`), { method: "DELETE" });
  assert.equal(deleted.status, 202);
  await deleted.body?.cancel();
  assert.equal((await waitForRunEnd(server, runId)).status, "cancelled");
  assert.equal((await (await fetch(server.at("/health"))).json()).activeRuns, 0);
  const again = await postDag(server.at("/execute"), echoDag(1), "application/json");
  assert.equal(again.status, 200);
  assert.equal((await again.json()).successfulTasks, 1);
});

Deno.test("--token: 401 without or with a wrong bearer token; Bearer and access_token work", async (t) => {
  const token = "s3cret-token";
  await using server = await startServer(["--token", token]);
  const auth = { Authorization: `Bearer ${token}` };

  await t.step("401 without a token, with a wrong one, or another scheme", async () => {
    for (
      const headers of [
        {} as Record<string, string>,
        { Authorization: "Bearer wrong" },
        { Authorization: `Bearer ${token}x` },
        { Authorization: `Basic ${btoa(`user:${token}`)}` },
        { Authorization: token },
      ]
    ) {
      const response = await fetch(server.at("/tools"), { headers });
      assert.match(response.headers.get("www-authenticate") ?? "", /^Bearer/);
      await assertProblem(response, 401);
    }
    await assertProblem(await postDag(server.at("/execute"), echoDag(1), SSE), 401);
    await assertProblem(await postDag(server.at("/runs"), echoDag(1)), 401);
    await assertProblem(await fetch(server.at("/runs")), 401);
    // An unknown run is not revealed to a client without the token.
    await assertProblem(await fetch(server.at("/runs/unknown")), 401);
    await assertProblem(await fetch(server.at("/runs/unknown"), { method: "DELETE" }), 401);
  });

  await t.step("/health answers without a token", async () => {
    const response = await fetch(server.at("/health"));
    assert.equal(response.status, 200);
    assert.equal((await response.json()).status, "ok");
  });

  let runId = "";
  await t.step("Authorization: Bearer works on every route", async () => {
    const tools = await fetch(server.at("/tools"), { headers: auth });
    assert.equal(tools.status, 200);
    await tools.body?.cancel();
    const lower = await fetch(server.at("/tools"), {
      headers: { authorization: `bearer ${token}` },
    });
    assert.equal(lower.status, 200, "the scheme is case-insensitive");
    await lower.body?.cancel();

    const stream = await postDag(server.at("/execute"), echoDag(2), SSE, auth);
    assert.equal(stream.status, 200);
    const events = [];
    for await (const event of readSSEEvents(stream.body!)) events.push(event);
    assert.equal(events.at(-1)?.type, "execution_complete");

    const started = await postDag(server.at("/runs"), echoDag(3), "application/json", auth);
    assert.equal(started.status, 202);
    runId = (await started.json()).runId;
    const run = await waitForRunEnd(server, runId, { headers: auth });
    assert.equal(run.status, "succeeded");
    const list = await fetch(server.at("/runs"), { headers: auth });
    assert.equal((await list.json()).runs.length, 2);
    await assertProblem(
      await fetch(server.at(`/runs/${runId}`), { method: "DELETE", headers: auth }),
      409,
    );
  });

  await t.step("GET /runs/<id>/events: 401 without a token, 200 with Bearer", async () => {
    await assertProblem(await fetch(server.at(`/runs/${runId}/events`)), 401);
    await assertProblem(
      await fetch(server.at(`/runs/${runId}/events?access_token=wrong`)),
      401,
    );
    const response = await fetch(server.at(`/runs/${runId}/events`), { headers: auth });
    assert.equal(response.status, 200);
    const events = [];
    for await (const event of readSSEEvents(response.body!)) events.push(event);
    assert.equal(events.length, 7);
  });

  await t.step("EventSource (no headers possible) with ?access_token", async () => {
    const source = new EventSource(
      server.at(`/runs/${runId}/events?access_token=${encodeURIComponent(token)}`),
    );
    const ids = await new Promise<string[]>((resolve, reject) => {
      const seen: string[] = [];
      source.onerror = (event) => {
        if (!(event instanceof MessageEvent)) reject(new Error("EventSource failed"));
      };
      for (const type of ["task_start", "task_complete"]) {
        source.addEventListener(type, (e) => seen.push((e as MessageEvent).lastEventId));
      }
      source.addEventListener("execution_complete", (e) => {
        seen.push((e as MessageEvent).lastEventId);
        resolve(seen);
      });
    }).finally(() => source.close());
    assert.deepEqual(ids, ["1", "2", "3", "4", "5", "6", "7"]);
  });
});

Deno.test("DAGSTREAM_TOKEN in the environment requires the token too", async () => {
  await using server = await startServer([], { DAGSTREAM_TOKEN: "from-env" });
  await assertProblem(await fetch(server.at("/tools")), 401);
  const response = await fetch(server.at("/tools"), {
    headers: { Authorization: "Bearer from-env" },
  });
  assert.equal(response.status, 200);
  await response.body?.cancel();
});

Deno.test("without --cors-origin a foreign origin gets 403 and no CORS headers", async () => {
  await using server = await startServer();
  const headers = { Origin: "https://app.example" };
  const health = await fetch(server.at("/health"), { headers });
  for (const [name] of health.headers) assert.ok(!name.startsWith("access-control-"), name);
  await assertProblem(health, 403);
  const preflight = await fetch(server.at("/execute"), {
    method: "OPTIONS",
    headers: { ...headers, "Access-Control-Request-Method": "POST" },
  });
  assert.equal(preflight.headers.get("access-control-allow-origin"), null);
  await assertProblem(preflight, 403);
  const own = await fetch(server.at("/execute"), { method: "OPTIONS" });
  assert.equal(own.status, 204);
  assert.equal(own.headers.get("allow"), "POST, OPTIONS");
  assert.equal(own.headers.get("access-control-allow-methods"), null);
  await own.body?.cancel();
});

Deno.test("--cors-origin: CORS headers on every answer, preflight before auth", async (t) => {
  const origin = "https://app.example";
  await using server = await startServer(["--cors-origin", origin, "--token", "tok"]);
  const headers = { Origin: origin };
  const auth = { ...headers, Authorization: "Bearer tok" };
  const assertCors = (response: Response) => {
    assert.equal(response.headers.get("access-control-allow-origin"), origin);
    assert.match(response.headers.get("vary") ?? "", /Origin/);
    const exposed = (response.headers.get("access-control-expose-headers") ?? "").toLowerCase();
    for (const name of ["x-run-id", "location", "retry-after"]) assert.ok(exposed.includes(name));
  };

  await t.step("preflight OPTIONS answers 204 without a token", async () => {
    const response = await fetch(server.at("/execute"), {
      method: "OPTIONS",
      headers: {
        ...headers,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
      },
    });
    assert.equal(response.status, 204);
    assertCors(response);
    const methods = response.headers.get("access-control-allow-methods") ?? "";
    assert.ok(methods.split(",").map((m) => m.trim()).includes("POST"));
    const allowed = (response.headers.get("access-control-allow-headers") ?? "").toLowerCase();
    for (const name of ["authorization", "content-type", "last-event-id"]) {
      assert.ok(allowed.includes(name), name);
    }
    await response.body?.cancel();
  });
  await t.step("JSON, SSE and problem answers carry the CORS headers", async () => {
    const health = await fetch(server.at("/health"), { headers });
    assertCors(health);
    await health.body?.cancel();

    const stream = await postDag(server.at("/execute"), echoDag(1), SSE, auth);
    assert.equal(stream.status, 200);
    assert.equal(stream.headers.get("content-type"), "text/event-stream");
    assertCors(stream);
    assert.match(await stream.text(), /event: execution_complete/);

    const unauthorised = await fetch(server.at("/tools"), { headers });
    assertCors(unauthorised);
    await assertProblem(unauthorised, 401);
    const missing = await fetch(server.at("/missing"), { headers: auth });
    assertCors(missing);
    await assertProblem(missing, 404);
  });
});
