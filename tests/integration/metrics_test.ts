/**
 * `GET /metrics` of the real server (`src/server/main.ts`, with the
 * permissions of `deno task serve`, started with `--token`): after a
 * succeeded, a failed and a cancelled run it counts them, their tasks by
 * outcome, their durations by tool, every event once (however many
 * watched), requests by route template (never a run id), open streams and
 * active runs; it needs the token and answers in the text format's type.
 * With `--store redis://`, each instance counts only the runs it executes.
 */

import assert from "node:assert/strict";
import parsePrometheusTextFormat from "npm:parse-prometheus-text-format@1.1.1";
import { parseSSEStream, readSSEEvents } from "../../src/sse/client.ts";
import { echoDag, holdDag, postDag, startServer } from "./_server.ts";
import { eventually, HAS_REDIS, startRedis, untilStoreUp } from "./_redis.ts";

const TOKEN = "metrics-s3cret";
const AUTH = { Authorization: `Bearer ${TOKEN}` };
const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
const TEMPLATES = new Set([
  "/",
  "/ui/{asset}",
  "/execute",
  "/runs",
  "/runs/{id}",
  "/runs/{id}/events",
  "/tools",
  "/health",
  "/metrics",
  "unmatched",
]);

/** The value of the sample `series` (name and labels exactly as written), if there is one. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** Every value of label `label` in the text. */
function labelValues(text: string, label: string): Set<string> {
  return new Set([...text.matchAll(new RegExp(`[{,]${label}="([^"]*)"`, "g"))].map((m) => m[1]));
}

/** `GET /metrics` with the token: checks the answer's status and type, returns the text. */
async function scrape(url: string): Promise<string> {
  const response = await fetch(url, { headers: AUTH });
  const text = await response.text();
  assert.equal(response.status, 200, text);
  assert.equal(response.headers.get("content-type"), CONTENT_TYPE);
  // Every family reads back with a parser of the format.
  const families: { name: string }[] = parsePrometheusTextFormat(text);
  assert.ok(families.some((f) => f.name === "dagstream_runs_total"));
  return text;
}

/** How many events a run logged: its whole log, replayed. */
async function loggedEvents(url: string): Promise<number> {
  const response = await fetch(url, {
    headers: { ...AUTH, Accept: "text/event-stream", "Last-Event-ID": "0" },
  });
  assert.equal(response.status, 200);
  return (await parseSSEStream(response.body!)).length;
}

Deno.test("GET /metrics: runs, tasks, events, requests and streams of a real server", async () => {
  await using server = await startServer(["--token", TOKEN]);
  const metricsUrl = server.at("/metrics");

  // The token is needed, as on every route but /health and the page.
  const refused = await fetch(metricsUrl);
  assert.equal(refused.status, 401);
  await refused.body?.cancel();
  const head = await fetch(metricsUrl, { method: "HEAD", headers: AUTH });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get("content-type"), CONTENT_TYPE);
  assert.equal(head.body, null);

  // A run that succeeds, watched on its own stream.
  const succeeded = await postDag(
    server.at("/execute"),
    {
      tasks: [
        { id: "slow", tool: "mock:delay", arguments: { ms: 20 } },
        { id: "fast", tool: "mock:echo", arguments: { x: 1 }, dependsOn: ["slow"] },
      ],
    },
    "text/event-stream",
    AUTH,
  );
  assert.equal(succeeded.status, 200);
  const succeededId = succeeded.headers.get("x-run-id")!;
  const succeededEvents = await parseSSEStream(succeeded.body!);
  assert.equal(succeededEvents.at(-1)?.type, "execution_complete");

  // A run that fails: one task fails, its dependent is skipped.
  const failed = await postDag(
    server.at("/execute"),
    {
      tasks: [
        { id: "bad", tool: "mock:fail", arguments: { message: "no" } },
        { id: "after", tool: "mock:echo", dependsOn: ["bad"] },
      ],
    },
    "application/json",
    AUTH,
  );
  const failedResult = await failed.json();
  assert.equal(failed.status, 200);
  assert.equal(failedResult.failedTasks, 2);
  const failedId = failed.headers.get("x-run-id")!;

  // A run held open, watched: one stream open, one run active.
  const started = await postDag(server.at("/runs"), holdDag(), undefined, AUTH);
  assert.equal(started.status, 202);
  const heldId: string = (await started.json()).runId;
  const watch = await fetch(server.at(`/runs/${heldId}/events`), {
    headers: { ...AUTH, Accept: "text/event-stream" },
  });
  assert.equal(watch.status, 200);
  const events = readSSEEvents(watch.body!)[Symbol.asyncIterator]();
  const first = await events.next();
  assert.equal(!first.done && first.value.type, "task_start");

  const during = await scrape(metricsUrl);
  assert.equal(sample(during, "dagstream_sse_watchers"), 1);
  assert.equal(sample(during, "dagstream_runs_active"), 1);

  // Cancelled; its stream ends with the run.
  const cancel = await fetch(server.at(`/runs/${heldId}`), { method: "DELETE", headers: AUTH });
  assert.equal(cancel.status, 202);
  await cancel.body?.cancel();
  while (!(await events.next()).done) {
    // the rest of the run's events
  }
  const view = await fetch(server.at(`/runs/${heldId}`), { headers: AUTH });
  assert.equal((await view.json()).status, "cancelled");
  const missing = await fetch(server.at("/nope"), { headers: AUTH });
  assert.equal(missing.status, 404);
  await missing.body?.cancel();

  // Each run's log, replayed: a second watcher of each, which must not count again.
  let logged = 0;
  for (const id of [succeededId, failedId, heldId]) {
    logged += await loggedEvents(server.at(`/runs/${id}/events`));
  }
  assert.ok(logged > succeededEvents.length);

  const text = await scrape(metricsUrl);
  assert.equal(sample(text, 'dagstream_runs_total{status="succeeded"}'), 1);
  assert.equal(sample(text, 'dagstream_runs_total{status="failed"}'), 1);
  assert.equal(sample(text, 'dagstream_runs_total{status="cancelled"}'), 1);
  assert.equal(sample(text, "dagstream_runs_active"), 0);
  assert.equal(sample(text, "dagstream_sse_watchers"), 0);
  // slow and fast; bad and the cancelled hold; after, skipped.
  assert.equal(sample(text, 'dagstream_tasks_total{status="success"}'), 2);
  assert.equal(sample(text, 'dagstream_tasks_total{status="error"}'), 2);
  assert.equal(sample(text, 'dagstream_tasks_total{status="skipped"}'), 1);
  // mock:delay ran twice (slow, hold); the skipped task is not observed.
  assert.equal(sample(text, 'dagstream_task_duration_seconds_count{tool="mock:delay"}'), 2);
  assert.equal(
    sample(text, 'dagstream_task_duration_seconds_bucket{tool="mock:delay",le="+Inf"}'),
    2,
  );
  assert.ok(sample(text, 'dagstream_task_duration_seconds_sum{tool="mock:delay"}')! > 0);
  assert.equal(sample(text, 'dagstream_task_duration_seconds_count{tool="mock:echo"}'), 1);
  assert.equal(sample(text, 'dagstream_task_duration_seconds_count{tool="mock:fail"}'), 1);
  assert.deepEqual(labelValues(text, "tool"), new Set(["mock:delay", "mock:echo", "mock:fail"]));
  // Every event each run logged, once: not once per watcher.
  assert.equal(sample(text, "dagstream_events_total"), logged);
  assert.equal(sample(text, "dagstream_task_retries_total"), 0);

  // Requests, by route template and status.
  assert.equal(sample(text, 'dagstream_http_requests_total{route="/runs/{id}",status="200"}'), 1);
  assert.equal(sample(text, 'dagstream_http_requests_total{route="/runs/{id}",status="202"}'), 1);
  assert.equal(sample(text, 'dagstream_http_requests_total{route="/execute",status="200"}'), 2);
  assert.equal(sample(text, 'dagstream_http_requests_total{route="/runs",status="202"}'), 1);
  assert.equal(
    sample(text, 'dagstream_http_requests_total{route="/runs/{id}/events",status="200"}'),
    4,
  );
  assert.equal(sample(text, 'dagstream_http_requests_total{route="unmatched",status="404"}'), 1);
  assert.equal(sample(text, 'dagstream_http_requests_total{route="/metrics",status="401"}'), 1);
  assert.equal(sample(text, 'dagstream_http_requests_total{route="/metrics",status="200"}'), 2);
  assert.equal(
    sample(text, 'dagstream_http_request_duration_seconds_count{route="/execute"}'),
    2,
  );
  for (const route of labelValues(text, "route")) assert.ok(TEMPLATES.has(route), route);
  for (const id of [succeededId, failedId, heldId]) assert.ok(!text.includes(id), id);

  // The process' own.
  assert.ok(sample(text, "process_resident_memory_bytes")! > 0);
  assert.ok(sample(text, "process_cpu_seconds_total")! > 0);
  assert.ok(sample(text, "process_start_time_seconds")! > 1.7e9);
});

Deno.test({
  name: "GET /metrics with --store redis://: an instance counts the runs it executes, not others'",
  ignore: !HAS_REDIS,
  async fn() {
    await using redis = await startRedis();
    const flags = ["--token", TOKEN, "--store", redis.url];
    await using a = await startServer([...flags, "--instance-id", "A"]);
    await using b = await startServer([...flags, "--instance-id", "B"]);
    await Promise.all([untilStoreUp(a), untilStoreUp(b)]);

    // Executed on A, then streamed from B (a copy B reads from Redis).
    const response = await postDag(a.at("/execute"), echoDag(2), "application/json", AUTH);
    assert.equal(response.status, 200);
    await response.body?.cancel();
    const runId = response.headers.get("x-run-id")!;
    // A writes its copy to Redis in the background: B knows the run once it is there.
    await eventually(async () => {
      const view = await fetch(b.at(`/runs/${runId}`), { headers: AUTH });
      return view.status === 200 && (await view.json()).status === "succeeded";
    }, "B sees the run's end");
    const replayed = await loggedEvents(b.at(`/runs/${runId}/events`));
    assert.ok(replayed > 0);

    const onA = await scrape(a.at("/metrics"));
    assert.equal(sample(onA, 'dagstream_runs_total{status="succeeded"}'), 1);
    assert.equal(sample(onA, 'dagstream_tasks_total{status="success"}'), 2);
    assert.equal(sample(onA, "dagstream_events_total"), replayed);

    const onB = await scrape(b.at("/metrics"));
    for (const status of ["succeeded", "failed", "cancelled"]) {
      assert.equal(sample(onB, `dagstream_runs_total{status="${status}"}`), 0);
    }
    assert.equal(sample(onB, 'dagstream_tasks_total{status="success"}'), 0);
    assert.equal(sample(onB, "dagstream_events_total"), 0);
    assert.equal(
      sample(onB, 'dagstream_http_requests_total{route="/runs/{id}/events",status="200"}'),
      1,
    );
  },
});

Deno.test("GET /metrics: retries are counted, and a retried task's duration once", async () => {
  await using server = await startServer(["--token", TOKEN]);
  const response = await postDag(
    server.at("/execute"),
    {
      tasks: [{
        id: "flaky",
        tool: "mock:flaky",
        arguments: { failures: 2 },
        retry: { attempts: 3, delayMs: 0 },
      }],
    },
    "application/json",
    AUTH,
  );
  const result = await response.json();
  assert.equal(result.results[0].attempts, 3, JSON.stringify(result));
  const text = await scrape(server.at("/metrics"));
  assert.equal(sample(text, "dagstream_task_retries_total"), 2);
  assert.equal(sample(text, 'dagstream_tasks_total{status="success"}'), 1);
  assert.equal(sample(text, 'dagstream_tasks_total{status="error"}'), 0);
  assert.equal(sample(text, 'dagstream_task_duration_seconds_count{tool="mock:flaky"}'), 1);
});
