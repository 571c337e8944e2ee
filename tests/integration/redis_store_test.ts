/**
 * --store redis://: server instances share their runs through a real
 * redis-server (started per test on a free port). POST /runs puts a run on
 * the shared queue, any instance with a free slot executes it; the others
 * list, show, stream live, resume and cancel it; a killed instance's run ends
 * failed for every watcher; a finished run outlives its instance; losing
 * Redis makes the instance say so (503) until Redis is back. Skipped without
 * redis-server.
 */

import assert from "node:assert/strict";
import { createClient } from "npm:@redis/client@6.3.1";
import { readSSEEvents } from "../../src/sse/client.ts";
import type { ReceivedSSEEvent as SSEEvent } from "../../src/sse/client.ts";
import { holdDag, postDag, type ServerProcess, startRun, startServer } from "./_server.ts";
import { eventually, HAS_REDIS, type RedisProcess, startRedis, untilStoreUp } from "./_redis.ts";

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

/** Reads a stream's events as they come, one by one. */
async function openEvents(server: ServerProcess, runId: string, lastEventId?: number) {
  const headers: Record<string, string> = { Accept: "text/event-stream" };
  if (lastEventId !== undefined) headers["Last-Event-ID"] = String(lastEventId);
  const response = await fetch(server.at(`/runs/${runId}/events`), { headers });
  return { response, events: readSSEEvents(response.body!)[Symbol.asyncIterator]() };
}

/** Two instances on a fresh Redis, and a run of `tasks` placed on one of them. */
async function placedRun(tasks: unknown[]) {
  const redis = await startRedis();
  const pair = await twoInstances(redis);
  const runId = await startRun(pair.a, { tasks });
  return {
    redis,
    pair,
    runId,
    ...(await placed(pair, runId)),
    async [Symbol.asyncDispose]() {
      await pair.a.stop();
      await pair.b.stop();
      await redis.stop();
    },
  };
}

/** Waits until the run is taken from the queue; returns the instance executing it and the other. */
async function placed(pair: { a: ServerProcess; b: ServerProcess }, runId: string) {
  let run: { status: string; instance?: string } = { status: "queued" };
  await eventually(async () => {
    run = await (await fetch(pair.a.at(`/runs/${runId}`))).json();
    return run.status !== "queued";
  }, `run ${runId} is taken from the queue`);
  return run.instance === "A"
    ? { owner: pair.a, ownerId: "A", other: pair.b }
    : { owner: pair.b, ownerId: "B", other: pair.a };
}

/** The rest of a one-task run's stream after its start: the task cancelled with `reason`, then the end. */
/** Every event a stream still sends, until it ends. */
async function remaining(events: AsyncIterator<SSEEvent>): Promise<SSEEvent[]> {
  const out: SSEEvent[] = [];
  for (let next = await events.next(); !next.done; next = await events.next()) out.push(next.value);
  return out;
}

async function assertCancelledAfterStart(
  events: AsyncIterator<SSEEvent>,
  reason: RegExp,
): Promise<void> {
  const rest = await remaining(events);
  assert.deepEqual(rest.map((e) => [e.id, e.type]), [
    ["2", "task_complete"],
    ["3", "execution_complete"],
  ]);
  assert.match((rest[0].data as { error: string }).error, reason);
}

/** `n` mock:echo tasks, each depending on the one before: 2n + 1 events, one at a time. */
function echoChain(n: number) {
  return Array.from({ length: n }, (_, i) => ({
    id: `t${i}`,
    tool: "mock:echo",
    arguments: { i },
    ...(i === 0 ? {} : { dependsOn: [`t${i - 1}`] }),
  }));
}

/** The HTTP status of `GET /runs/<id>` on `server`. */
async function statusOf(server: ServerProcess, runId: string): Promise<number> {
  const response = await fetch(server.at(`/runs/${runId}`));
  await response.body?.cancel();
  return response.status;
}

/** Waits until `server` no longer knows run `runId` (404). */
async function untilGone(server: ServerProcess, runId: string, what: string): Promise<void> {
  await eventually(async () => await statusOf(server, runId) === 404, what);
}

/** One instance on a fresh Redis. */
async function oneInstance(flags: string[] = []) {
  const redis = await startRedis();
  const server = await startServer(["--store", redis.url, ...flags]);
  await untilStoreUp(server);
  return {
    redis,
    server,
    async [Symbol.asyncDispose]() {
      await server.stop();
      await redis.stop();
    },
  };
}

async function allEvents(server: ServerProcess, runId: string, lastEventId?: number) {
  const { response, events } = await openEvents(server, runId, lastEventId);
  assert.equal(response.status, 200);
  return await remaining(events);
}

redisTest(
  "a run of the shared queue is listed, shown and streamed live on the other instance, and cancelled from it",
  async () => {
    await using redis = await startRedis();
    const pair = await twoInstances(redis);
    await using _a = pair.a;
    await using _b = pair.b;
    const dag = holdDag();
    const response = await postDag(pair.a.at("/runs"), dag);
    assert.equal(response.status, 202);
    const { runId, status } = await response.json();
    assert.equal(status, "queued");

    // Visible on B as soon as A answered 202.
    const listed = (await (await fetch(pair.b.at("/runs"))).json()).runs;
    assert.deepEqual(listed.map((r: { runId: string }) => r.runId), [runId]);
    assert.ok(["queued", "running"].includes(listed[0].status));

    const { ownerId, other } = await placed(pair, runId);
    const shown = await (await fetch(other.at(`/runs/${runId}`))).json();
    assert.equal(shown.instance, ownerId);
    assert.deepEqual(shown.dag, dag);
    assert.ok(Date.parse(shown.startedAt) >= Date.parse(shown.createdAt));

    // The other instance streams it live: the task's start arrives while it still runs.
    const { response: stream, events } = await openEvents(other, runId);
    assert.equal(stream.status, 200);
    const first = await events.next();
    assert.deepEqual([first.value?.id, first.value?.type], ["1", "task_start"]);

    // DELETE there reaches the run: its tool's signal aborts, the run ends cancelled.
    const deleted = await fetch(other.at(`/runs/${runId}`), { method: "DELETE" });
    assert.equal(deleted.status, 202);
    assert.deepEqual(await deleted.json(), { runId, status: "cancelled" });
    await assertCancelledAfterStart(events, /cancelled by DELETE/);

    // Both instances agree on the end; a second DELETE is 409 from either.
    for (const server of [pair.a, pair.b]) {
      const run = await (await fetch(server.at(`/runs/${runId}`))).json();
      assert.equal(run.status, "cancelled");
      assert.equal((await fetch(server.at(`/runs/${runId}`), { method: "DELETE" })).status, 409);
    }
    assert.equal((await fetch(pair.b.at("/runs/nope"), { method: "DELETE" })).status, 404);
    assert.equal((await fetch(pair.b.at("/runs/nope"))).status, 404);
  },
);

redisTest(
  "runs spread over instances by free slots; the rest wait queued; a full queue is 503",
  async () => {
    await using redis = await startRedis();
    const flags = ["--max-active-runs", "1", "--max-queued-runs", "1"];
    const pair = await twoInstances(redis, flags);
    await using _a = pair.a;
    await using _b = pair.b;
    // All submitted to A: one slot each, so one runs on A, one on B, one waits.
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push(await startRun(pair.a, holdDag()));
      if (i < 2) await placed(pair, ids[i]); // taken before the next one comes
    }
    const statuses = async () =>
      Object.fromEntries(
        (await (await fetch(pair.b.at("/runs"))).json()).runs.map((
          r: { runId: string; status: string; instance?: string },
        ) => [r.runId, [r.status, r.instance ?? null]]),
      );
    const now = await statuses();
    assert.deepEqual(new Set([now[ids[0]][1], now[ids[1]][1]]), new Set(["A", "B"]));
    assert.deepEqual(now[ids[2]], ["queued", null]);
    // The queue holds one run: the next is refused, with Retry-After.
    const full = await postDag(pair.a.at("/runs"), holdDag());
    assert.equal(full.status, 503);
    assert.equal(full.headers.get("retry-after"), "1");
    assert.match((await full.json()).detail, /--max-queued-runs/);
    // A watcher of the waiting run gets its events once an instance takes it.
    const { events } = await openEvents(pair.b, ids[2]);
    const cancelled = await fetch(pair.b.at(`/runs/${ids[0]}`), { method: "DELETE" });
    assert.equal(cancelled.status, 202);
    const first = await events.next();
    assert.deepEqual([first.value?.id, first.value?.type], ["1", "task_start"]);
    const { ownerId } = await placed(pair, ids[2]);
    assert.equal(ownerId, now[ids[0]][1], "the freed slot took it");
    // A queued run cancelled before it starts ends at once, with no event.
    const waiting = await startRun(pair.a, holdDag());
    const gone = await fetch(pair.b.at(`/runs/${waiting}`), { method: "DELETE" });
    assert.deepEqual(await gone.json(), { runId: waiting, status: "cancelled" });
    const run = await (await fetch(pair.a.at(`/runs/${waiting}`))).json();
    assert.equal(run.status, "cancelled");
    assert.equal(run.instance, undefined);
    for (const id of ids.slice(1)) {
      await (await fetch(pair.a.at(`/runs/${id}`), { method: "DELETE" })).body?.cancel();
    }
  },
);

redisTest(
  "an instance killed mid-run: another ends its run failed with instance_lost, for every watcher",
  async () => {
    await using placedOne = await placedRun([
      { id: "quick", tool: "mock:echo", arguments: { n: 1 } },
      { id: "hold", tool: "mock:delay", arguments: { ms: 600_000 }, dependsOn: ["quick"] },
    ]);
    const { redis, runId, owner, ownerId, other } = placedOne;
    const { events } = await openEvents(other, runId);
    const seen: SSEEvent[] = [];
    while (seen.length < 3) seen.push((await events.next()).value!); // quick done, hold started
    owner.kill("SIGKILL");
    await owner.stop();
    // A new process under the same instance id at once (a supervisor restarting
    // it) holds the lease, but not the dead process's runs.
    await using _restarted = await startServer(["--store", redis.url, "--instance-id", ownerId]);
    // The dead process's lease lapses within 10 s; the other instance ends the run.
    seen.push(...await remaining(events));
    assert.deepEqual(seen.map((e) => [e.id, e.type]), [
      ["1", "task_start"],
      ["2", "task_complete"],
      ["3", "task_start"],
      ["4", "error"],
      ["5", "execution_complete"],
    ]);
    const error = seen[3].data as { code: string; error: string };
    assert.equal(error.code, "instance_lost");
    assert.match(error.error, new RegExp(`instance ${ownerId} was lost`));
    const done = seen[4].data as { totalTasks: number; successCount: number; errorCount: number };
    assert.deepEqual([done.totalTasks, done.successCount, done.errorCount], [2, 1, 1]);
    const run = await (await fetch(other.at(`/runs/${runId}`))).json();
    assert.equal(run.status, "failed");
    assert.match(run.error, /was lost/);
    // A watcher that comes later gets the same end, replayed.
    assert.deepEqual((await allEvents(other, runId)).map((e) => e.id), ["1", "2", "3", "4", "5"]);
  },
);

redisTest(
  "resuming on the other instance after any event replays exactly the rest; past the end is 400, at the end 204",
  async () => {
    await using redis = await startRedis();
    const pair = await twoInstances(redis);
    await using _a = pair.a;
    await using _b = pair.b;
    const tasks = echoChain(30);
    const runId = await startRun(pair.a, { tasks });
    const { owner, other } = await placed(pair, runId);
    const onOwner = await allEvents(owner, runId);
    assert.equal(onOwner.length, 61);
    assert.deepEqual(onOwner.map((e) => Number(e.id)), Array.from({ length: 61 }, (_, i) => i + 1));
    for (const after of [0, 1, 17, 60]) {
      const onOther = await allEvents(other, runId, after === 0 ? undefined : after);
      assert.deepEqual(onOther, onOwner.slice(after), `after ${after}`);
    }
    const atEnd = await fetch(other.at(`/runs/${runId}/events`), {
      headers: { Accept: "text/event-stream", "Last-Event-ID": "61" },
    });
    assert.equal(atEnd.status, 204);
    const past = await fetch(other.at(`/runs/${runId}/events`), {
      headers: { Accept: "text/event-stream", "Last-Event-ID": "62" },
    });
    assert.equal(past.status, 400);
    await past.body?.cancel();
  },
);

redisTest("a finished run outlives the instance that ran it, until --run-ttl-seconds", async () => {
  await using redis = await startRedis();
  const pair = await twoInstances(redis, ["--run-ttl-seconds", "2"]);
  await using _a = pair.a;
  await using _b = pair.b;
  const runId = await startRun(pair.a, {
    tasks: [{ id: "x", tool: "mock:echo", arguments: { n: 1 } }],
  });
  const { owner, ownerId, other } = await placed(pair, runId);
  const events = await allEvents(owner, runId);
  await owner.stop();
  const run = await (await fetch(other.at(`/runs/${runId}`))).json();
  assert.equal(run.status, "succeeded");
  assert.equal(run.instance, ownerId);
  assert.deepEqual(await allEvents(other, runId), events);
  // Then it expires: 404, and it leaves the list.
  await eventually(async () => {
    const response = await fetch(other.at(`/runs/${runId}`));
    await response.body?.cancel();
    if (response.status === 404) return true;
    assert.equal(response.status, 200);
    return false;
  }, "the finished run expires");
  assert.deepEqual((await (await fetch(other.at("/runs"))).json()).runs, []);
});

redisTest(
  "without Redis, /health is 503 and new runs get 503 with Retry-After; once back, both recover",
  async () => {
    await using one = await oneInstance();
    const { redis, server } = one;
    await redis.stop();
    await eventually(async () => {
      const health = await fetch(server.at("/health"));
      const body = await health.json();
      if (health.status !== 503) return false;
      assert.deepEqual(body.store, { kind: "redis", status: "down" });
      return true;
    }, "/health says the store is down");
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
    await untilGone(server, ids[0], "the oldest run is deleted");
    assert.equal(await statusOf(server, ids[1]), 404);
    const listed = (await (await fetch(server.at("/runs"))).json()).runs.map((
      r: { runId: string },
    ) => r.runId);
    assert.deepEqual(listed, ids.slice(2).reverse());
  },
);

redisTest("queued runs are never forgotten for --max-runs, however many wait", async () => {
  await using redis = await startRedis();
  await using server = await startServer([
    "--store",
    redis.url,
    "--max-active-runs",
    "1",
    "--max-runs",
    "2",
  ]);
  await untilStoreUp(server);
  // Three runs that finish, then five that wait (one slot): all but the two
  // newest are past --max-runs 2.
  const finished: string[] = [];
  for (let i = 0; i < 3; i++) {
    const id = await startRun(server, {
      tasks: [{ id: "x", tool: "mock:echo", arguments: { i } }],
    });
    await allEvents(server, id);
    finished.push(id);
  }
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) ids.push(await startRun(server, holdDag()));
  // A pass of the trim (on a lease tick) deletes the finished ones...
  await untilGone(server, finished[0], "the oldest finished run is deleted");
  // ...and none of those that wait or run.
  const statuses: string[] = [];
  for (const id of ids) {
    const response = await fetch(server.at(`/runs/${id}`));
    assert.equal(response.status, 200, id);
    statuses.push((await response.json()).status);
  }
  assert.deepEqual(statuses.sort(), ["queued", "queued", "queued", "queued", "running"]);
  for (const id of ids) {
    await (await fetch(server.at(`/runs/${id}`), { method: "DELETE" })).body?.cancel();
  }
});

redisTest(
  "an instance that was frozen past its lease cannot write to its run any more, and stops it",
  async () => {
    await using placedOne = await placedRun([
      { id: "first", tool: "mock:delay", arguments: { ms: 500 } },
      { id: "second", tool: "mock:delay", arguments: { ms: 60_000 }, dependsOn: ["first"] },
    ]);
    const { runId, owner, other } = placedOne;
    const { events } = await openEvents(other, runId);
    assert.equal((await events.next()).value?.type, "task_start");
    owner.kill("SIGSTOP"); // frozen: no lease renewal, the task's timer waits
    const seen = await remaining(events);
    assert.deepEqual(seen.map((e) => e.type), ["error", "execution_complete"]);
    owner.kill("SIGCONT");
    // Back, it finds its run ended elsewhere: it stops it instead of writing on.
    await eventually(async () => {
      const run = await (await fetch(owner.at(`/runs/${runId}`))).json();
      if (run.status === "running") return false;
      assert.equal(run.status, "failed");
      assert.match(run.error, /could not be reached for too long/);
      return true;
    }, "the frozen instance stops its run");
    const replay = await allEvents(other, runId);
    assert.deepEqual(replay.map((e) => [e.id, e.type]), [
      ["1", "task_start"],
      ["2", "error"],
      ["3", "execution_complete"],
    ]);
    assert.equal((await (await fetch(other.at(`/runs/${runId}`))).json()).status, "failed");
  },
);

redisTest(
  "SIGTERM of the executing instance: its run ends cancelled (shutdown), seen from the other",
  async () => {
    await using placedOne = await placedRun([
      { id: "hold", tool: "mock:delay", arguments: { ms: 600_000 } },
    ]);
    const { runId, owner, other } = placedOne;
    const { events } = await openEvents(other, runId);
    assert.equal((await events.next()).value?.type, "task_start");
    owner.kill("SIGTERM");
    await assertCancelledAfterStart(events, /server shutting down/);
    assert.equal((await owner.status).code, 0);
    const run = await (await fetch(other.at(`/runs/${runId}`))).json();
    assert.equal(run.status, "cancelled");
  },
);

redisTest(
  "Redis away for longer than a lease: the runs executing then fail with store_unavailable",
  async () => {
    await using one = await oneInstance();
    const { redis, server } = one;
    const runId = await startRun(server, holdDag());
    // Once this instance has taken it from the queue, its stream is the run's own log.
    await eventually(
      async () => (await (await fetch(server.at(`/runs/${runId}`))).json()).status !== "queued",
      "the run is taken from the queue",
    );
    const { events } = await openEvents(server, runId);
    assert.equal((await events.next()).value?.type, "task_start");
    await redis.stop();
    // Away for more than the 10 s of a lease, measured by the server itself.
    await server.untilStderr((log) => log.includes('"msg":"store"'));
    await new Promise((resolve) => setTimeout(resolve, 10_500));
    await redis.start();
    const rest = await remaining(events);
    assert.deepEqual(rest.map((e) => [e.id, e.type]), [
      ["2", "error"],
      ["3", "task_complete"],
      ["4", "execution_complete"],
    ]);
    assert.equal((rest[0].data as { code: string }).code, "store_unavailable");
    const run = await (await fetch(server.at(`/runs/${runId}`))).json();
    assert.equal(run.status, "failed");
    assert.match(run.error, /could not be reached for too long/);
  },
);

redisTest(
  "a queued run read by an instance that died before taking it is taken by another",
  async () => {
    await using redis = await startRedis();
    // An instance queues a run and stops at once, before any instance takes it.
    const first = await startServer(["--store", redis.url, "--max-active-runs", "1"]);
    await untilStoreUp(first);
    const busy = await startRun(first, holdDag()); // its one slot is taken...
    const runId = await startRun(first, { tasks: [{ id: "x", tool: "mock:echo" }] }); // ...so this waits
    // A consumer of the group reads the run's queue entry and dies without taking it.
    const ghost = createClient({ url: redis.url });
    await ghost.connect();
    const read = await ghost.xReadGroup("dagstream", "ghost", { key: "dagstream:queue", id: ">" }, {
      COUNT: 10,
    }) as { messages: { message: Record<string, string> }[] }[] | null;
    assert.deepEqual(read?.[0].messages.map((m) => m.message.runId), [runId]);
    ghost.destroy();
    await (await fetch(first.at(`/runs/${busy}`), { method: "DELETE" })).body?.cancel();
    await first.stop();
    // Another instance takes it over once the entry has been pending for 10 s.
    await using second = await startServer(["--store", redis.url]);
    await untilStoreUp(second);
    const events = await allEvents(second, runId);
    assert.equal(events.at(-1)?.type, "execution_complete");
    const run = await (await fetch(second.at(`/runs/${runId}`))).json();
    assert.equal(run.status, "succeeded");
  },
);

redisTest(
  "--max-log-bytes-total bounds the events all runs keep in Redis: the oldest finished runs go",
  async () => {
    await using one = await oneInstance([
      "--max-log-bytes-total",
      "20000",
      "--max-event-payload-bytes",
      "1024",
    ]);
    const { server } = one;
    const chain = echoChain(30);
    // Three runs of about 8 KB of events each: only two fit.
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const id = await startRun(server, { tasks: chain });
      assert.equal((await allEvents(server, id)).length, 61);
      ids.push(id);
    }
    await untilGone(server, ids[0], "the oldest run is deleted");
    const listed = (await (await fetch(server.at("/runs"))).json()).runs.map((
      r: { runId: string },
    ) => r.runId);
    assert.deepEqual(listed, ids.slice(1).reverse());
    assert.equal((await allEvents(server, ids[2])).length, 61);
  },
);

redisTest(
  "GET /runs pages through every instance's runs, newest first, from any instance",
  async () => {
    await using placedOne = await placedRun([{
      id: "hold",
      tool: "mock:delay",
      arguments: { ms: 60_000 },
    }]);
    const { pair, runId: held } = placedOne;
    const finished: string[] = [];
    for (const [k, server] of [pair.a, pair.b, pair.a, pair.b, pair.a].entries()) {
      const id = await startRun(server, {
        tasks: [{ id: "e", tool: "mock:echo", arguments: { k } }],
      });
      await eventually(
        async () =>
          (await statusOf(server, id)) === 200 &&
          (await (await fetch(server.at(`/runs/${id}`))).json()).status === "succeeded",
        `${id} ends`,
      );
      finished.push(id);
    }
    const newestFirst = [...finished].reverse();
    for (const server of [pair.a, pair.b]) {
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await (await fetch(
          server.at(`/runs?limit=2${cursor === undefined ? "" : `&cursor=${cursor}`}`),
        )).json();
        seen.push(...page.runs.map((r: { runId: string }) => r.runId));
        cursor = page.nextCursor;
      } while (cursor !== undefined);
      assert.deepEqual(seen, [...newestFirst, held]);
      const running = await (await fetch(server.at("/runs?status=running"))).json();
      assert.deepEqual(running.runs.map((r: { runId: string }) => r.runId), [held]);
    }
    const bad = await fetch(pair.b.at("/runs?cursor=x!"));
    assert.equal(bad.status, 400);
    await bad.body?.cancel();
    const cancel = await fetch(pair.a.at(`/runs/${held}`), { method: "DELETE" });
    await cancel.body?.cancel();
  },
);
