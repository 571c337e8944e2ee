/**
 * Integration tests of the bundled server's command line: executor flags
 * reach the runs, run retention, bad flags, `--help`.
 */

import assert from "node:assert/strict";
import { readSSEEvents, type ReceivedSSEEvent } from "../../src/sse/client.ts";
import { assertProblem, echoDag, postDag, runMain, startServer, waitForRunEnd } from "./_server.ts";

const SSE = "text/event-stream";

function taskOf(event: ReceivedSSEEvent): string | undefined {
  return (event.data as { taskId?: string }).taskId;
}

Deno.test("--max-tasks: a DAG over the limit is 422 at path tasks", async () => {
  await using server = await startServer(["--max-tasks", "3"]);
  const ok = await postDag(server.at("/execute"), echoDag(3), "application/json");
  assert.equal(ok.status, 200);
  await ok.body?.cancel();
  const problem = await assertProblem(await postDag(server.at("/runs"), echoDag(4)), 422);
  assert.deepEqual((problem.errors as { path: string }[]).map((e) => e.path), ["tasks"]);
});

Deno.test("--task-timeout: a task running too long fails with 'timed out'", async () => {
  await using server = await startServer(["--task-timeout", "50"]);
  const response = await postDag(server.at("/execute"), {
    tasks: [
      { id: "slow", tool: "mock:delay", arguments: { ms: 60_000 } },
      { id: "quick", tool: "mock:echo" },
    ],
  }, "application/json");
  const result = await response.json();
  assert.equal(result.results[0].status, "error");
  assert.match(result.results[0].error, /timed out/);
  assert.equal(result.results[1].status, "success");
});

Deno.test("--max-concurrency 1: no task starts before the previous one completed", async () => {
  await using server = await startServer(["--max-concurrency", "1"]);
  const dag = {
    tasks: ["a", "b", "c", "d"].map((id) => ({
      id,
      tool: "mock:delay",
      arguments: { ms: 2 },
    })),
  };
  const response = await postDag(server.at("/execute"), dag, SSE);
  const kinds = [];
  for await (const event of readSSEEvents(response.body!)) kinds.push(event.type);
  assert.deepEqual(kinds, [
    ...Array(4).fill(["task_start", "task_complete"]).flat(),
    "execution_complete",
  ]);
});

Deno.test("--scheduling: eager starts a ready task at once, layered waits for its layer", async (t) => {
  // a is quick; b holds for a minute; c depends on a only (same layers as b's).
  const dag = {
    tasks: [
      { id: "a", tool: "mock:echo" },
      { id: "b", tool: "mock:delay", arguments: { ms: 60_000 } },
      { id: "c", tool: "mock:echo", dependsOn: ["a"] },
    ],
  };
  await t.step("eager (default): c completes while b still holds", async () => {
    await using server = await startServer();
    const response = await postDag(server.at("/execute"), dag, SSE);
    const runId = response.headers.get("x-run-id")!;
    for await (const event of readSSEEvents(response.body!)) {
      if (event.type === "task_complete" && taskOf(event) === "b") {
        assert.fail("b cannot end before the DELETE");
      }
      if (event.type === "task_complete" && taskOf(event) === "c") {
        assert.equal((event.data as { status: string }).status, "success");
        break; // leaving cancels the run
      }
    }
    assert.equal((await waitForRunEnd(server, runId)).status, "cancelled");
  });
  await t.step("layered: c does not start before b's layer is over", async () => {
    await using server = await startServer(["--scheduling", "layered"]);
    const response = await postDag(server.at("/execute"), dag, SSE);
    const runId = response.headers.get("x-run-id")!;
    const events: ReceivedSSEEvent[] = [];
    for await (const event of readSSEEvents(response.body!)) {
      events.push(event);
      if (event.type === "task_complete" && taskOf(event) === "a") {
        const cancelled = await fetch(server.at(`/runs/${runId}`), { method: "DELETE" });
        assert.equal(cancelled.status, 202);
        await cancelled.body?.cancel();
      }
    }
    const index = (type: string, id: string) =>
      events.findIndex((e) => e.type === type && taskOf(e) === id);
    const cStart = index("task_start", "c");
    assert.ok(cStart === -1 || cStart > index("task_complete", "b"));
    const cComplete = events[index("task_complete", "c")].data as { status: string };
    assert.equal(cComplete.status, "error", "c never ran: the run was cancelled first");
  });
});

Deno.test("--max-runs: the oldest finished runs give way", async () => {
  await using server = await startServer(["--max-runs", "2"]);
  const ids = [];
  for (let i = 0; i < 3; i++) {
    const response = await postDag(server.at("/execute"), echoDag(1), "application/json");
    ids.push(response.headers.get("x-run-id")!);
    await response.body?.cancel();
  }
  const { runs } = await (await fetch(server.at("/runs"))).json();
  assert.deepEqual(
    runs.map((r: { runId: string }) => r.runId),
    ids.slice(1).reverse(),
    "newest first",
  );
  await assertProblem(await fetch(server.at(`/runs/${ids[0]}`)), 404);
  await assertProblem(await fetch(server.at(`/runs/${ids[0]}/events`)), 404);
});

Deno.test("--run-ttl-seconds 0: a finished run is forgotten at once, an active one kept", async () => {
  await using server = await startServer(["--run-ttl-seconds", "0"]);
  const done = await postDag(server.at("/execute"), echoDag(1), "application/json");
  const doneId = done.headers.get("x-run-id")!;
  await done.body?.cancel();
  await assertProblem(await fetch(server.at(`/runs/${doneId}`)), 404);
  const held = await postDag(server.at("/runs"), {
    tasks: [{ id: "hold", tool: "mock:delay", arguments: { ms: 60_000 } }],
  });
  const { runId } = await held.json();
  assert.equal((await (await fetch(server.at(`/runs/${runId}`))).json()).status, "running");
  const deleted = await fetch(server.at(`/runs/${runId}`), { method: "DELETE" });
  assert.equal(deleted.status, 202);
  await deleted.body?.cancel();
});

Deno.test("bad flags exit 2 with a message; --help and --version exit 0", async (t) => {
  for (
    const args of [
      ["--port", "abc"],
      ["--max-body-bytes", "0"],
      ["--scheduling", "random"],
      ["--no-such-flag"],
    ]
  ) {
    await t.step(args.join(" "), async () => {
      const { code, stdout, stderr } = await runMain(args);
      assert.equal(code, 2);
      assert.equal(stdout, "");
      assert.match(stderr, /^dagstream: .+\n/);
    });
  }
  await t.step("--help", async () => {
    const { code, stdout } = await runMain(["--help"]);
    assert.equal(code, 0);
    for (const flag of ["--port", "--token", "--max-active-runs", "--max-run-log-bytes"]) {
      assert.ok(stdout.includes(flag), flag);
    }
  });
  await t.step("--version", async () => {
    const { code, stdout } = await runMain(["--version"]);
    assert.equal(code, 0);
    assert.match(stdout, /^dagstream \d+\.\d+\.\d+/);
  });
});
