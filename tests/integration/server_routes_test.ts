/**
 * Integration tests of the bundled server's routes and status codes, over
 * real HTTP against the real process (`src/server/main.ts` on port 0).
 */

import assert from "node:assert/strict";
import { readSSEEvents } from "../../src/sse/client.ts";
import {
  assertProblem,
  echoDag,
  holdDag,
  postDag,
  rawRequest,
  startServer,
  waitForRunEnd,
} from "./_server.ts";

const SSE = "text/event-stream";
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

const FAILING_DAG = {
  tasks: [
    { id: "ok", tool: "mock:echo", arguments: { x: 1 } },
    { id: "broken", tool: "mock:fail", arguments: { message: "boom" } },
    { id: "after", tool: "mock:echo", dependsOn: ["broken"] },
  ],
};

Deno.test("POST /execute with Accept: text/event-stream streams the exact wire format", async () => {
  await using server = await startServer();
  const dag = {
    tasks: [
      { id: "a", tool: "mock:echo", arguments: { greeting: "héllo ✓" } },
      { id: "b", tool: "mock:delay", arguments: { ms: 5 }, dependsOn: ["a"] },
      { id: "c", tool: "mock:echo", arguments: { from: "$OUTPUT[b].waitedMs" } },
    ],
  };
  const response = await postDag(server.at("/execute"), dag, SSE);
  assert.equal(response.status, 200);
  // Exactly these headers, compared verbatim (no charset parameter).
  assert.equal(response.headers.get("content-type"), "text/event-stream");
  assert.equal(response.headers.get("cache-control"), "no-cache");
  assert.equal(response.headers.get("connection"), "keep-alive");
  assert.equal(response.headers.get("x-accel-buffering"), "no");
  const runId = response.headers.get("x-run-id");
  assert.match(runId ?? "", /^[\w-]+$/);

  // text() resolving at all proves the server closed the stream.
  const text = await response.text();
  assert.ok(
    text.startsWith("retry: 2000\n\n"),
    `first block: ${JSON.stringify(text.slice(0, 40))}`,
  );
  const blocks = text.slice("retry: 2000\n\n".length).split("\n\n");
  assert.equal(blocks.pop(), "", "the stream ends with a complete frame");
  const frames = blocks.filter((b) => !b.startsWith(":"));
  const events = frames.map((block) => {
    const match = /^id: (\d+)\nevent: (\w+)\ndata: (.*)$/.exec(block);
    assert.ok(match, `frame has the form id/event/data: ${JSON.stringify(block)}`);
    return { id: Number(match[1]), type: match[2], data: JSON.parse(match[3]) };
  });
  assert.deepEqual(events.map((e) => e.id), events.map((_, i) => i + 1), "ids count 1..N");
  assert.equal(events.length, 3 * 2 + 1);
  assert.equal(events.at(-1)!.type, "execution_complete", "closes after execution_complete");
  for (const e of events) assert.match(e.data.timestamp, ISO);

  const completes = events.filter((e) => e.type === "task_complete");
  assert.deepEqual(
    completes.map((e) => e.data.taskId),
    ["a", "b", "c"],
    "b depends on a, c on b (via $OUTPUT)",
  );
  for (const e of completes) {
    assert.equal(e.data.status, "success");
    assert.equal(typeof e.data.executionTimeMs, "number");
  }
  assert.deepEqual(completes[0].data.output, { greeting: "héllo ✓" });
  assert.deepEqual(completes[2].data.output, { from: 5 });
  // A task's start precedes its completion.
  for (const id of ["a", "b", "c"]) {
    const start = events.findIndex((e) => e.type === "task_start" && e.data.taskId === id);
    const end = events.findIndex((e) => e.type === "task_complete" && e.data.taskId === id);
    assert.ok(start >= 0 && start < end, `task_start ${id} before its task_complete`);
  }
  const summary = events.at(-1)!.data;
  assert.equal(summary.totalTasks, 3);
  assert.equal(summary.successCount, 3);
  assert.equal(summary.errorCount, 0);
  assert.equal(typeof summary.totalExecutionTimeMs, "number");
  assert.equal(typeof summary.speedup, "number");

  const run = await waitForRunEnd(server, runId!);
  assert.equal(run.status, "succeeded");
});

Deno.test("POST /execute streams a failing task as task_complete error, not as a broken stream", async () => {
  await using server = await startServer();
  const response = await postDag(server.at("/execute"), FAILING_DAG, SSE);
  assert.equal(response.status, 200);
  const events = [];
  for await (const event of readSSEEvents(response.body!)) events.push(event);
  assert.deepEqual(events.map((e) => e.id), events.map((_, i) => String(i + 1)));
  const byTask = new Map(
    events.filter((e) => e.type === "task_complete").map((e) => [
      (e.data as { taskId: string }).taskId,
      e.data as { status: string; error?: string },
    ]),
  );
  assert.equal(byTask.get("ok")?.status, "success");
  assert.equal(byTask.get("broken")?.status, "error");
  assert.equal(byTask.get("broken")?.error, "boom");
  assert.equal(byTask.get("after")?.status, "error");
  assert.match(byTask.get("after")?.error ?? "", /Dependency broken failed/);
  const last = events.at(-1)!;
  assert.equal(last.type, "execution_complete");
  assert.deepEqual(
    [
      (last.data as { successCount: number }).successCount,
      (last.data as { errorCount: number })
        .errorCount,
    ],
    [1, 2],
  );
  const run = await waitForRunEnd(server, response.headers.get("x-run-id")!);
  assert.equal(run.status, "failed");
});

Deno.test("POST /execute answers JSON or SSE by Accept, q-values honoured", async (t) => {
  await using server = await startServer();
  const dag = echoDag(2);
  const cases: [string, "json" | "sse"][] = [
    ["*/*", "json"],
    ["application/json", "json"],
    ["application/*", "json"],
    ["text/event-stream", "sse"],
    ["TEXT/Event-Stream", "sse"],
    ["text/*", "sse"],
    ["text/event-stream;q=0.5, application/json;q=0.9", "json"],
    ["application/json;q=0.2, text/event-stream;q=0.8", "sse"],
    ["text/html, application/json;q=0.1", "json"],
    ["text/html, */*;q=0.1", "json"],
  ];
  for (const [accept, kind] of cases) {
    await t.step(`Accept: ${accept} → ${kind}`, async () => {
      const response = await postDag(server.at("/execute"), dag, accept);
      assert.equal(response.status, 200);
      assert.ok(response.headers.get("x-run-id"));
      if (kind === "json") {
        assert.equal(response.headers.get("content-type"), "application/json");
        const body = await response.json();
        assert.equal(body.totalTasks, 2);
        assert.equal(body.successfulTasks, 2);
      } else {
        assert.equal(response.headers.get("content-type"), "text/event-stream");
        const text = await response.text();
        assert.ok(text.startsWith("retry: 2000\n\n"));
        assert.match(text, /event: execution_complete\n/);
      }
    });
  }

  await t.step("no Accept header at all → JSON", async () => {
    const response = await rawRequest(
      server.at("/execute"),
      "POST",
      { "Content-Type": "application/json" },
      new TextEncoder().encode(JSON.stringify(dag)),
    );
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "application/json");
    assert.ok(response.headers.get("x-run-id"));
    assert.equal(JSON.parse(response.body).totalTasks, 2);
  });

  for (
    const accept of [
      "text/html",
      "application/xml, text/plain",
      "text/event-stream;q=0, application/json;q=0",
    ]
  ) {
    await t.step(`Accept: ${accept} → 406, and no run starts`, async () => {
      const before = (await (await fetch(server.at("/runs"))).json()).runs.length;
      const response = await postDag(server.at("/execute"), dag, accept);
      await assertProblem(response, 406);
      const after = (await (await fetch(server.at("/runs"))).json()).runs.length;
      assert.equal(after, before);
    });
  }
});

Deno.test("POST /execute JSON answers the DAGExecutionResult; the run is at GET /runs/<X-Run-Id>", async () => {
  await using server = await startServer();
  const response = await postDag(server.at("/execute"), FAILING_DAG, "application/json");
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "application/json");
  const runId = response.headers.get("x-run-id")!;
  const result = await response.json();
  assert.deepEqual(result.results.map((r: { taskId: string }) => r.taskId), [
    "ok",
    "broken",
    "after",
  ], "results in declaration order");
  assert.equal(result.totalTasks, 3);
  assert.equal(result.successfulTasks, 1);
  assert.equal(result.failedTasks, 2);
  assert.equal(typeof result.executionTimeMs, "number");
  assert.equal(typeof result.parallelizationLayers, "number");
  assert.deepEqual(result.results[0].output, { x: 1 });
  assert.deepEqual(
    result.errors.map((e: { taskId: string }) => e.taskId).sort(),
    ["after", "broken"],
  );

  const runResponse = await fetch(server.at(`/runs/${runId}`));
  assert.equal(runResponse.status, 200);
  assert.equal(runResponse.headers.get("content-type"), "application/json");
  const run = await runResponse.json();
  assert.equal(run.runId, runId);
  assert.equal(run.status, "failed");
  assert.deepEqual(run.result, result);
});

Deno.test("POST /runs starts a detached run: 202, Location, links; GET /runs lists it; GET /runs/<id> ends succeeded", async () => {
  await using server = await startServer();
  const dag = {
    tasks: [
      { id: "wait", tool: "mock:delay", arguments: { ms: 20 } },
      { id: "echo", tool: "mock:echo", arguments: { w: "$OUTPUT[wait].waitedMs" } },
    ],
  };
  const response = await postDag(server.at("/runs"), dag);
  assert.equal(response.status, 202);
  assert.equal(response.headers.get("content-type"), "application/json");
  const body = await response.json();
  assert.deepEqual(Object.keys(body).sort(), ["eventsUrl", "resultUrl", "runId", "status"]);
  assert.equal(body.status, "running");
  assert.equal(response.headers.get("location"), `/runs/${body.runId}`);
  assert.equal(body.resultUrl, `/runs/${body.runId}`);
  assert.equal(body.eventsUrl, `/runs/${body.runId}/events`);

  const list = await (await fetch(server.at("/runs"))).json();
  const listed = list.runs.find((r: { runId: string }) => r.runId === body.runId);
  assert.ok(listed, "GET /runs lists the new run");
  const { instance } = await (await fetch(server.at("/health"))).json();
  if (listed.status === "running") {
    assert.deepEqual(Object.keys(listed).sort(), [
      "createdAt",
      "instance",
      "runId",
      "startedAt",
      "status",
    ]);
  }
  assert.match(listed.createdAt, ISO);
  assert.equal(listed.startedAt, listed.createdAt, "a run starts when it is accepted");
  assert.equal(listed.instance, instance);
  assert.ok(["running", "succeeded"].includes(listed.status));

  const run = await waitForRunEnd(server, body.runId);
  assert.equal(run.status, "succeeded");
  assert.deepEqual((run.result as { results: { output: unknown }[] }).results[1].output, { w: 20 });
  assert.equal(run.instance, instance);
  assert.match(run.finishedAt as string, ISO);
  assert.ok(Date.parse(run.finishedAt as string) >= Date.parse(run.startedAt as string));
  // The DAG as submitted, for a viewer that opens the run later.
  assert.deepEqual(run.dag, dag);
  const after = await (await fetch(server.at("/runs"))).json();
  const ended = after.runs.find((r: { runId: string }) => r.runId === body.runId);
  assert.equal(ended.status, "succeeded");
  assert.equal(ended.finishedAt, run.finishedAt);
  assert.equal(ended.dag, undefined, "lists carry no DAG");
  assert.equal(ended.result, undefined, "nor results");
});

Deno.test("--instance-id names the instance in /health and on its runs; a bad one exits 2", async () => {
  {
    await using server = await startServer(["--instance-id", "eu-1.a"]);
    const health = await (await fetch(server.at("/health"))).json();
    assert.equal(health.instance, "eu-1.a");
    const response = await postDag(server.at("/runs"), {
      tasks: [{ id: "a", tool: "mock:echo", depends_on: [] }],
    });
    const { runId } = await response.json();
    const run = await waitForRunEnd(server, runId);
    assert.equal(run.instance, "eu-1.a");
    // Normalised as the run executed it: depends_on reads as dependsOn.
    assert.deepEqual(run.dag, { tasks: [{ id: "a", tool: "mock:echo", dependsOn: [] }] });
  }
  {
    // Without the flag, a random id, different at each start.
    await using one = await startServer();
    await using two = await startServer();
    const ids = await Promise.all(
      [one, two].map(async (s) => (await (await fetch(s.at("/health"))).json()).instance),
    );
    assert.match(ids[0], /^[0-9a-f]{12}$/);
    assert.notEqual(ids[0], ids[1]);
  }
  for (const bad of ["-x", "a b", "x".repeat(65), "é"]) {
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-net",
        "--allow-env=DAGSTREAM_*",
        "src/server/main.ts",
        "--port",
        "0",
        `--instance-id=${bad}`,
      ],
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(code, 2, bad);
    assert.match(new TextDecoder().decode(stderr), /--instance-id must be 1-64 letters/);
  }
});

Deno.test("POST /runs with a failing DAG ends failed, with the result", async () => {
  await using server = await startServer();
  const response = await postDag(server.at("/runs"), FAILING_DAG);
  assert.equal(response.status, 202);
  const { runId } = await response.json();
  const run = await waitForRunEnd(server, runId);
  assert.equal(run.status, "failed");
  assert.equal((run.result as { failedTasks: number }).failedTasks, 2);
});

Deno.test("DELETE /runs/<id>: 202 while running, then cancelled; 409 once over; 404 unknown", async () => {
  await using server = await startServer();
  const started = await postDag(server.at("/runs"), {
    tasks: [
      { id: "hold", tool: "mock:delay", arguments: { ms: 60_000 } },
      { id: "next", tool: "mock:echo", dependsOn: ["hold"] },
    ],
  });
  const { runId } = await started.json();
  // The run is held open by a one-minute delay: it is certainly running.
  const running = await (await fetch(server.at(`/runs/${runId}`))).json();
  assert.equal(running.status, "running");
  assert.equal(running.result, undefined);
  assert.equal((await (await fetch(server.at("/health"))).json()).activeRuns, 1);

  const deleted = await fetch(server.at(`/runs/${runId}`), { method: "DELETE" });
  assert.equal(deleted.status, 202);
  assert.equal(deleted.headers.get("content-type"), "application/json");
  const deletedBody = await deleted.json();
  assert.equal(deletedBody.runId, runId);
  assert.equal(deletedBody.status, "cancelled");

  // The tool's signal aborted: the one-minute delay ends now, not in a minute.
  const run = await waitForRunEnd(server, runId);
  assert.equal(run.status, "cancelled");
  const result = run.result as {
    failedTasks: number;
    results: { taskId: string; status: string; error: string }[];
  };
  assert.equal(result.failedTasks, 2);
  for (const task of result.results) {
    assert.equal(task.status, "error");
    assert.match(task.error, /cancelled by DELETE/, "the abort reason reaches every task");
  }
  assert.equal((await (await fetch(server.at("/health"))).json()).activeRuns, 0);

  const again = await fetch(server.at(`/runs/${runId}`), { method: "DELETE" });
  const conflict = await assertProblem(again, 409);
  assert.equal(conflict.status, 409, "the run's status does not override the problem's");
  assert.equal(conflict.runStatus, "cancelled");

  const finished = await postDag(server.at("/execute"), echoDag(1), "application/json");
  const finishedId = finished.headers.get("x-run-id")!;
  await finished.body?.cancel();
  await waitForRunEnd(server, finishedId);
  await assertProblem(await fetch(server.at(`/runs/${finishedId}`), { method: "DELETE" }), 409);

  await assertProblem(await fetch(server.at("/runs/no-such-run"), { method: "DELETE" }), 404);
  await assertProblem(await fetch(server.at("/runs/no-such-run")), 404);
  await assertProblem(await fetch(server.at("/runs/no-such-run/events")), 404);
  // A run id with a malformed percent-encoding is a client error, not a 500.
  await assertProblem(await fetch(server.at("/runs/%E0%A4%A")), 400);
  await assertProblem(await fetch(server.at("/runs/%E0%A4%A"), { method: "DELETE" }), 400);
  await assertProblem(await fetch(server.at("/runs/%/events")), 400);
  await assertProblem(await fetch(server.at(`/runs/${encodeURIComponent("a b")}`)), 404);
});

Deno.test("GET /tools lists the built-in tools with descriptions and input schemas", async () => {
  await using server = await startServer();
  const response = await fetch(server.at("/tools"));
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "application/json");
  const body = await response.json();
  assert.deepEqual(Object.keys(body), ["tools"]);
  const names = body.tools.map((t: { name: string }) => t.name);
  for (const name of ["mock:delay", "mock:echo", "mock:fail"]) assert.ok(names.includes(name));
  for (const tool of body.tools) {
    assert.deepEqual(Object.keys(tool).sort(), ["description", "inputSchema", "name"]);
    assert.equal(typeof tool.description, "string");
    assert.ok(tool.description.length > 0);
    assert.equal(typeof tool.inputSchema, "object");
    assert.equal(tool.inputSchema.type, "object");
  }
});

Deno.test("GET /health answers status, version and numbers that are numbers", async () => {
  await using server = await startServer();
  const response = await fetch(server.at("/health"));
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "application/json");
  const body = await response.json();
  assert.equal(body.status, "ok");
  assert.equal(typeof body.version, "string");
  assert.ok(Number.isInteger(body.uptimeSeconds) && body.uptimeSeconds >= 0);
  assert.equal(body.activeRuns, 0);
});

Deno.test("unknown routes answer 404 and wrong methods 405 with Allow", async (t) => {
  await using server = await startServer();
  for (const path of ["/nope", "/ui/", "/ui/nope.js", "/runs/a/b/c", "/execute/", "/tools/x"]) {
    await t.step(`404 ${path}`, async () => {
      await assertProblem(await fetch(server.at(path)), 404);
    });
  }
  const cases: [string, string, string[]][] = [
    ["GET", "/execute", ["OPTIONS", "POST"]],
    ["PUT", "/execute", ["OPTIONS", "POST"]],
    ["DELETE", "/runs", ["GET", "HEAD", "OPTIONS", "POST"]],
    ["POST", "/runs/some-id", ["DELETE", "GET", "HEAD", "OPTIONS"]],
    ["PATCH", "/runs/some-id", ["DELETE", "GET", "HEAD", "OPTIONS"]],
    ["POST", "/runs/some-id/events", ["GET", "HEAD", "OPTIONS"]],
    ["POST", "/tools", ["GET", "HEAD", "OPTIONS"]],
    ["DELETE", "/health", ["GET", "HEAD", "OPTIONS"]],
  ];
  for (const [method, path, allowed] of cases) {
    await t.step(`405 ${method} ${path}`, async () => {
      const response = await fetch(server.at(path), { method });
      const allow = response.headers.get("allow") ?? "";
      await assertProblem(response, 405);
      assert.deepEqual(allow.split(",").map((m) => m.trim()).sort(), allowed);
    });
  }
});

Deno.test("request bodies: 400 malformed JSON or UTF-8, 415 non-JSON type, JSON types accepted", async (t) => {
  await using server = await startServer();
  const post = (body: BodyInit, contentType?: string) =>
    fetch(server.at("/runs"), {
      method: "POST",
      headers: contentType === undefined ? {} : { "Content-Type": contentType },
      body,
    });
  for (const route of ["/execute", "/runs"]) {
    await t.step(`400 malformed JSON on ${route}`, async () => {
      const response = await fetch(server.at(route), {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
        body: '{"tasks": [',
      });
      await assertProblem(response, 400);
    });
  }
  await t.step("400 invalid UTF-8", async () => {
    const bytes = new Uint8Array([
      ...new TextEncoder().encode('{"tasks":[{"id":"'),
      0xff,
      0xfe,
      ...new TextEncoder().encode('","tool":"mock:echo"}]}'),
    ]);
    await assertProblem(await post(bytes, "application/json"), 400);
  });
  await t.step("400 empty body", async () => {
    await assertProblem(await post("", "application/json"), 400);
  });
  await t.step("415 missing Content-Type", async () => {
    const response = await rawRequest(
      server.at("/runs"),
      "POST",
      {},
      new TextEncoder().encode(JSON.stringify(echoDag(1))),
    );
    assert.equal(response.status, 415);
    assert.equal(response.headers.get("content-type"), "application/problem+json");
    assert.equal(JSON.parse(response.body).status, 415);
  });
  for (const type of ["text/plain", "application/xml", "multipart/form-data; boundary=x"]) {
    await t.step(`415 Content-Type: ${type}`, async () => {
      await assertProblem(await post(JSON.stringify(echoDag(1)), type), 415);
    });
  }
  await t.step("415 form data that is not JSON", async () => {
    await assertProblem(await post("a=1&b=2", "application/x-www-form-urlencoded"), 415);
  });
  for (
    const type of [
      "application/json",
      "Application/JSON; charset=utf-8",
      "application/vnd.dagstream+json",
    ]
  ) {
    await t.step(`202 Content-Type: ${type}`, async () => {
      const response = await post(JSON.stringify(echoDag(1)), type);
      assert.equal(response.status, 202);
      await response.body?.cancel();
    });
  }
});

Deno.test("invalid DAGs and unknown tools answer 422 with errors [{path, message}], before any SSE byte", async (t) => {
  await using server = await startServer();
  const deep: Record<string, unknown> = {};
  let cursor = deep;
  for (let i = 0; i < 70; i++) {
    cursor.next = {};
    cursor = cursor.next as Record<string, unknown>;
  }
  const cases: [string, unknown, string][] = [
    ["no tasks field", { steps: [] }, "tasks"],
    ["unknown tool", { tasks: [{ id: "a", tool: "nope:tool" }] }, "tasks[0].tool"],
    [
      "unknown dependency",
      { tasks: [{ id: "a", tool: "mock:echo", dependsOn: ["zz"] }] },
      "tasks[0].dependsOn[0]",
    ],
    [
      "duplicate id names the later occurrence",
      { tasks: [{ id: "a", tool: "mock:echo" }, { id: "a", tool: "mock:echo" }] },
      "tasks[1].id",
    ],
    [
      "cycle",
      {
        tasks: [
          { id: "a", tool: "mock:echo", dependsOn: ["b"] },
          { id: "b", tool: "mock:echo", dependsOn: ["a"] },
        ],
      },
      "tasks[",
    ],
    ["non-string tool", { tasks: [{ id: "a", tool: 42 }] }, "tasks[0].tool"],
    ["null arguments", { tasks: [{ id: "a", tool: "mock:echo", arguments: null }] }, "tasks[0]"],
    [
      "both dependsOn and depends_on",
      {
        tasks: [
          { id: "a", tool: "mock:echo" },
          { id: "b", tool: "mock:echo", dependsOn: ["a"], depends_on: ["a"] },
        ],
      },
      "tasks[1]",
    ],
    [
      "arguments nested deeper than 64 levels",
      { tasks: [{ id: "a", tool: "mock:echo", arguments: deep }] },
      "tasks[0].arguments",
    ],
    ["a JSON array", [], ""],
  ];
  for (const [name, dag, path] of cases) {
    for (const [route, accept] of [["/execute", SSE], ["/runs", "application/json"]]) {
      await t.step(`${name} on ${route}`, async () => {
        const response = await postDag(server.at(route), dag, accept);
        const problem = await assertProblem(response, 422);
        const errors = problem.errors as { path: string; message: string }[];
        assert.ok(Array.isArray(errors) && errors.length > 0, "errors lists the problems");
        for (const e of errors) {
          assert.equal(typeof e.path, "string");
          assert.equal(typeof e.message, "string");
        }
        assert.ok(
          errors.some((e) => e.path.startsWith(path)),
          `a path starts with ${path}: ${JSON.stringify(errors)}`,
        );
        if (name === "cycle") {
          assert.ok(errors.some((e) => /Circular dependency detected/.test(e.message)));
        }
      });
    }
  }
  await t.step("every problem at once", async () => {
    const response = await postDag(server.at("/runs"), {
      tasks: [
        { id: "a", tool: "nope:one" },
        { id: "b", tool: "mock:echo", dependsOn: ["missing"] },
        { id: "a", tool: "mock:echo" },
      ],
    });
    const problem = await assertProblem(response, 422);
    const paths = (problem.errors as { path: string }[]).map((e) => e.path).sort();
    assert.deepEqual(paths, ["tasks[0].tool", "tasks[1].dependsOn[0]", "tasks[2].id"]);
  });
  await t.step("no run was started by any invalid request", async () => {
    const { runs } = await (await fetch(server.at("/runs"))).json();
    assert.equal(runs.length, 0);
  });
});

Deno.test("GET /runs/<id>/events: Last-Event-ID that is not a whole number → 400", async (t) => {
  await using server = await startServer();
  const response = await postDag(server.at("/runs"), echoDag(1));
  const { runId } = await response.json();
  for (const bad of ["abc", "-1", "1.5", "1e3", "0x10", " "]) {
    await t.step(`header ${JSON.stringify(bad)}`, async () => {
      const answer = await fetch(server.at(`/runs/${runId}/events`), {
        headers: { "Last-Event-ID": bad, Accept: SSE },
      });
      await assertProblem(answer, 400);
    });
  }
  await t.step("query ?lastEventId=x", async () => {
    await assertProblem(await fetch(server.at(`/runs/${runId}/events?lastEventId=x`)), 400);
  });
});

Deno.test("a run held open is visible as running, and cancelled runs keep their result", async () => {
  await using server = await startServer();
  const held = await postDag(server.at("/runs"), holdDag());
  const { runId } = await held.json();
  const list = await (await fetch(server.at("/runs"))).json();
  assert.deepEqual(list.runs.map((r: { status: string }) => r.status), ["running"]);
  await (await fetch(server.at(`/runs/${runId}`), { method: "DELETE" })).body?.cancel();
  const run = await waitForRunEnd(server, runId);
  assert.equal(run.status, "cancelled");
  assert.equal((run.result as { totalTasks: number }).totalTasks, 1);
});
