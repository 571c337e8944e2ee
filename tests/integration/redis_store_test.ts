/**
 * --store redis://: server instances share their runs through a real
 * redis-server (started per test on a free port). A run executing on one
 * instance is listed, shown, streamed live, resumed and cancelled from
 * another; a finished run outlives its instance; losing Redis makes the
 * instance say so (503) until Redis is back. Skipped without redis-server.
 */

import assert from "node:assert/strict";
import { readSSEEvents } from "../../src/sse/client.ts";
import type { ReceivedSSEEvent as SSEEvent } from "../../src/sse/client.ts";
import { holdDag, postDag, type ServerProcess, startRun, startServer } from "./_server.ts";
import { HAS_REDIS, type RedisProcess, startRedis } from "./_redis.ts";

function redisTest(name: string, fn: () => Promise<void>) {
  Deno.test({ name: `redis store: ${name}`, ignore: !HAS_REDIS, fn });
}

/** Two instances, A and B, on one Redis. */
async function twoInstances(redis: RedisProcess, flags: string[] = []) {
  const a = await startServer(["--store", redis.url, "--instance-id", "A", ...flags]);
  const b = await startServer(["--store", redis.url, "--instance-id", "B", ...flags]);
  await Promise.all([untilStoreUp(a), untilStoreUp(b)]);
  return { a, b };
}

/** Waits until the instance's /health says the store is up (it connects in the background). */
async function untilStoreUp(server: ServerProcess): Promise<void> {
  await server.untilStderr(() => true); // the process is running
  for (;;) {
    const health = await (await fetch(server.at("/health"))).json();
    if (health.store?.status === "up") return;
    // It reconnects with a backoff of at most 2 s; ask again meanwhile.
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Reads a stream's events as they come, one by one. */
async function openEvents(server: ServerProcess, runId: string, lastEventId?: number) {
  const headers: Record<string, string> = { Accept: "text/event-stream" };
  if (lastEventId !== undefined) headers["Last-Event-ID"] = String(lastEventId);
  const response = await fetch(server.at(`/runs/${runId}/events`), { headers });
  return { response, events: readSSEEvents(response.body!)[Symbol.asyncIterator]() };
}

async function allEvents(server: ServerProcess, runId: string, lastEventId?: number) {
  const { response, events } = await openEvents(server, runId, lastEventId);
  assert.equal(response.status, 200);
  const out: SSEEvent[] = [];
  for (let next = await events.next(); !next.done; next = await events.next()) out.push(next.value);
  return out;
}

redisTest(
  "a run started on A is listed, shown and streamed live on B, and cancelled from B",
  async () => {
    await using redis = await startRedis();
    const { a, b } = await twoInstances(redis);
    await using _a = a;
    await using _b = b;
    const dag = holdDag();
    const runId = await startRun(a, dag);

    // Visible on B as soon as A answered 202, with A as its instance.
    const listed = (await (await fetch(b.at("/runs"))).json()).runs;
    assert.deepEqual(
      listed.map((
        r: { runId: string; instance: string; status: string },
      ) => [r.runId, r.instance, r.status]),
      [
        [runId, "A", "running"],
      ],
    );
    const shown = await (await fetch(b.at(`/runs/${runId}`))).json();
    assert.equal(shown.instance, "A");
    assert.deepEqual(shown.dag, dag);

    // B streams it live: the task's start arrives while the task still runs on A.
    const { response, events } = await openEvents(b, runId);
    assert.equal(response.status, 200);
    const first = await events.next();
    assert.equal(first.value?.type, "task_start");
    assert.equal(first.value?.id, "1");

    // DELETE on B reaches the run on A: its tool's signal aborts, the run ends cancelled.
    const deleted = await fetch(b.at(`/runs/${runId}`), { method: "DELETE" });
    assert.equal(deleted.status, 202);
    assert.deepEqual(await deleted.json(), { runId, status: "cancelled" });
    const rest: SSEEvent[] = [];
    for (let next = await events.next(); !next.done; next = await events.next()) {
      rest.push(
        next.value,
      );
    }
    assert.deepEqual(rest.map((e) => [e.id, e.type]), [["2", "task_complete"], [
      "3",
      "execution_complete",
    ]]);
    assert.match((rest[0].data as { error: string }).error, /cancelled by DELETE/);

    // Both instances agree on the end; a second DELETE is 409 from either.
    for (const server of [a, b]) {
      const run = await (await fetch(server.at(`/runs/${runId}`))).json();
      assert.equal(run.status, "cancelled");
      assert.equal((await fetch(server.at(`/runs/${runId}`), { method: "DELETE" })).status, 409);
    }
    assert.equal((await fetch(b.at("/runs/nope"), { method: "DELETE" })).status, 404);
    assert.equal((await fetch(b.at("/runs/nope"))).status, 404);
  },
);

redisTest(
  "an instance killed mid-run: another ends its run failed with instance_lost, for every watcher",
  async () => {
    await using redis = await startRedis();
    const { a, b } = await twoInstances(redis);
    await using _b = b;
    const runId = await startRun(a, {
      tasks: [
        { id: "quick", tool: "mock:echo", arguments: { n: 1 } },
        { id: "hold", tool: "mock:delay", arguments: { ms: 600_000 }, dependsOn: ["quick"] },
      ],
    });
    const { events } = await openEvents(b, runId);
    const seen: SSEEvent[] = [];
    while (seen.length < 3) seen.push((await events.next()).value!); // quick done, hold started
    a.kill("SIGKILL");
    await a.stop();
    // Its lease lapses within 10 s; B (which renews its own) then ends the run.
    for (let next = await events.next(); !next.done; next = await events.next()) {
      seen.push(next.value);
    }
    assert.deepEqual(seen.map((e) => [e.id, e.type]), [
      ["1", "task_start"],
      ["2", "task_complete"],
      ["3", "task_start"],
      ["4", "error"],
      ["5", "execution_complete"],
    ]);
    const error = seen[3].data as { code: string; error: string };
    assert.equal(error.code, "instance_lost");
    assert.match(error.error, /instance A was lost/);
    const done = seen[4].data as { totalTasks: number; successCount: number; errorCount: number };
    assert.deepEqual([done.totalTasks, done.successCount, done.errorCount], [2, 1, 1]);
    const run = await (await fetch(b.at(`/runs/${runId}`))).json();
    assert.equal(run.status, "failed");
    assert.match(run.error, /instance A was lost/);
    // A watcher that comes later gets the same end, replayed.
    assert.deepEqual((await allEvents(b, runId)).map((e) => e.id), ["1", "2", "3", "4", "5"]);
  },
);

redisTest(
  "resuming on B after any event replays exactly the rest; past the end is 400, at the end 204",
  async () => {
    await using redis = await startRedis();
    const { a, b } = await twoInstances(redis);
    await using _a = a;
    await using _b = b;
    const tasks = Array.from({ length: 30 }, (_, i) => ({
      id: `t${i}`,
      tool: "mock:echo",
      arguments: { i },
      ...(i === 0 ? {} : { dependsOn: [`t${i - 1}`] }),
    }));
    const runId = await startRun(a, { tasks });
    const onA = await allEvents(a, runId);
    assert.equal(onA.length, 61);
    assert.deepEqual(onA.map((e) => Number(e.id)), Array.from({ length: 61 }, (_, i) => i + 1));
    for (const after of [0, 1, 17, 60]) {
      const onB = await allEvents(b, runId, after === 0 ? undefined : after);
      assert.deepEqual(onB, onA.slice(after), `after ${after}`);
    }
    assert.equal(
      (await fetch(b.at(`/runs/${runId}/events`), {
        headers: { Accept: "text/event-stream", "Last-Event-ID": "61" },
      })).status,
      204,
    );
    const past = await fetch(b.at(`/runs/${runId}/events`), {
      headers: { Accept: "text/event-stream", "Last-Event-ID": "62" },
    });
    assert.equal(past.status, 400);
    await past.body?.cancel();
  },
);

redisTest("a finished run outlives the instance that ran it, until --run-ttl-seconds", async () => {
  await using redis = await startRedis();
  const { a, b } = await twoInstances(redis, ["--run-ttl-seconds", "2"]);
  await using _b = b;
  const runId = await startRun(a, { tasks: [{ id: "x", tool: "mock:echo", arguments: { n: 1 } }] });
  const events = await allEvents(a, runId);
  await a.stop();
  const run = await (await fetch(b.at(`/runs/${runId}`))).json();
  assert.equal(run.status, "succeeded");
  assert.equal(run.instance, "A");
  assert.deepEqual(await allEvents(b, runId), events);
  // Then it expires: 404, and it leaves the list.
  for (;;) {
    const response = await fetch(b.at(`/runs/${runId}`));
    await response.body?.cancel();
    if (response.status === 404) break;
    assert.equal(response.status, 200);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.deepEqual((await (await fetch(b.at("/runs"))).json()).runs, []);
});

redisTest(
  "without Redis, /health is 503 and new runs get 503 with Retry-After; once back, both recover",
  async () => {
    await using redis = await startRedis();
    await using server = await startServer(["--store", redis.url]);
    await untilStoreUp(server);
    await redis.stop();
    for (;;) {
      const health = await fetch(server.at("/health"));
      const body = await health.json();
      if (health.status === 503) {
        assert.deepEqual(body.store, { kind: "redis", status: "down" });
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const refused = await postDag(server.at("/runs"), holdDag(10));
    assert.equal(refused.status, 503);
    assert.equal(refused.headers.get("retry-after"), "1");
    assert.match((await refused.json()).detail, /run store \(Redis\) cannot be reached/);
    // Redis comes back empty: the instance reconnects by itself.
    await redis.start();
    await untilStoreUp(server);
    const runId = await startRun(server, { tasks: [{ id: "x", tool: "mock:echo" }] });
    assert.equal((await allEvents(server, runId)).at(-1)?.type, "execution_complete");
    // It listens for cancellations again: a DELETE from another instance reaches its run.
    await using other = await startServer(["--store", redis.url]);
    await untilStoreUp(other);
    const held = await startRun(server, holdDag());
    assert.equal((await fetch(other.at(`/runs/${held}`), { method: "DELETE" })).status, 202);
    const events = await allEvents(server, held);
    assert.match((events[1].data as { error: string }).error, /cancelled by DELETE/);
    // Still the same process: it answered throughout and never exited.
    assert.equal((await (await fetch(server.at("/health"))).json()).status, "ok");
  },
);

redisTest(
  "--store takes memory or a redis:// URL; anything else exits 2 without showing a password",
  async () => {
    for (const bad of ["http://u:secret@h:1", "redis//u:secret@h", "postgres://x"]) {
      const { code, stderr } = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-net",
          "--allow-env",
          "src/server/main.ts",
          "--port",
          "0",
          "--store",
          bad,
        ],
        stdout: "null",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(stderr);
      assert.equal(code, 2, bad);
      assert.match(text, /--store must be "memory" or a redis:\/\/ URL/);
      assert.doesNotMatch(text, /secret/);
    }
  },
);

redisTest(
  "--max-runs bounds the finished runs Redis keeps, as in memory: the oldest go first",
  async () => {
    await using redis = await startRedis();
    await using server = await startServer(["--store", redis.url, "--max-runs", "2"]);
    await untilStoreUp(server);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const id = await startRun(server, {
        tasks: [{ id: "x", tool: "mock:echo", arguments: { i } }],
      });
      await allEvents(server, id); // over before the next one
      ids.push(id);
    }
    // Within a couple of lease ticks (2 s each) the two oldest are deleted.
    for (;;) {
      const response = await fetch(server.at(`/runs/${ids[0]}`));
      await response.body?.cancel();
      if (response.status === 404) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(
      await fetch(server.at(`/runs/${ids[1]}`)).then((r) => r.body?.cancel().then(() => r.status)),
      404,
    );
    const listed = (await (await fetch(server.at("/runs"))).json()).runs.map((
      r: { runId: string },
    ) => r.runId);
    assert.deepEqual(listed, ids.slice(2));
  },
);
