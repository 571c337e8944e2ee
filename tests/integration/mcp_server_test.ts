/**
 * The bundled server as an MCP workflow gateway, against real MCP servers:
 * the fixture (built with the SDK) over stdio and over Streamable HTTP, and
 * `@modelcontextprotocol/server-everything` started through `npx`. The
 * server runs with the narrowest permissions derived from its config.
 */

import assert from "node:assert/strict";
import { readSSEEvents, type ReceivedSSEEvent } from "../../src/sse/client.ts";
import type { DAGStructure } from "../../src/dag/types.ts";
import { fixtureStdioEntry, startHttpFixture } from "../fixtures/mcp_fixture.ts";
import { postDag, type ServerProcess, startWithMcpServers, waitForRunEnd } from "./_server.ts";

const SSE = "text/event-stream";
/** server-everything, pinned: its tool names change between releases. */
const EVERYTHING = "@modelcontextprotocol/server-everything@2026.8.31";

// deno-lint-ignore no-explicit-any
type Data = any;

const startGateway = startWithMcpServers;

/** POSTs a DAG for a JSON answer. */
async function runJson(server: ServerProcess, dag: DAGStructure): Promise<Data> {
  const response = await postDag(server.at("/execute"), dag, "application/json");
  const body = await response.json();
  assert.equal(response.status, 200, JSON.stringify(body));
  return body;
}

/** The output of a one-task DAG, which must succeed. */
async function call(server: ServerProcess, tool: string, args: Record<string, unknown> = {}) {
  const result = await runJson(server, { tasks: [{ id: "t", tool, arguments: args }] });
  assert.equal(result.results[0].status, "success", JSON.stringify(result.results[0]));
  return result.results[0].output;
}

/** Starts a detached run; returns its id and its live event stream. */
async function startWatchedRun(server: ServerProcess, dag: DAGStructure) {
  const response = await postDag(server.at("/runs"), dag);
  assert.equal(response.status, 202);
  const { runId } = await response.json();
  const events = await fetch(server.at(`/runs/${runId}/events`), { headers: { Accept: SSE } });
  assert.equal(events.status, 200);
  return { runId, events: readSSEEvents(events.body!)[Symbol.asyncIterator]() };
}

/** Reads events until one matches `predicate`; returns every event read. */
async function readUntil(
  events: AsyncIterator<ReceivedSSEEvent>,
  predicate: (event: ReceivedSSEEvent) => boolean,
): Promise<ReceivedSSEEvent[]> {
  const seen: ReceivedSSEEvent[] = [];
  while (true) {
    const { value, done } = await events.next();
    if (done) throw new Error(`the stream ended first: ${JSON.stringify(seen)}`);
    seen.push(value);
    if (predicate(value)) return seen;
  }
}

/** Reads the stream to its end. */
async function readAll(events: AsyncIterator<ReceivedSSEEvent>): Promise<ReceivedSSEEvent[]> {
  const seen: ReceivedSSEEvent[] = [];
  while (true) {
    const { value, done } = await events.next();
    if (done) return seen;
    seen.push(value);
  }
}

/** Polls /health until `name` has `status`. */
async function untilHealth(server: ServerProcess, name: string, status: "up" | "down") {
  let last: Data;
  for (let i = 0; i < 1000; i++) {
    last = await (await fetch(server.at("/health"))).json();
    if (last.mcpServers?.[name]?.status === status) return last;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${name} never became ${status}: ${JSON.stringify(last)}`);
}

/** Every process as `[pid, ppid, state]`, from `ps` (Deno may not read /proc); null without ps. */
async function processTable(): Promise<[number, number, string][] | null> {
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command("ps", {
      args: ["-e", "-o", "pid=,ppid=,stat="],
      stdout: "piped",
      stderr: "null",
    }).output();
  } catch {
    return null;
  }
  return new TextDecoder().decode(output.stdout).trim().split("\n").map((line) => {
    const [pid, ppid, stat] = line.trim().split(/\s+/);
    return [Number(pid), Number(ppid), stat ?? ""];
  });
}

/** Process ids of every descendant of `pid`; null when `ps` is missing. */
async function descendants(pid: number): Promise<number[] | null> {
  const table = await processTable();
  if (table === null) return null;
  const out: number[] = [];
  const stack = [pid];
  while (stack.length > 0) {
    const p = stack.pop()!;
    for (const [child, ppid] of table) {
      if (ppid === p) {
        out.push(child);
        stack.push(child);
      }
    }
  }
  return out;
}

/** Asserts that none of `pids` is running (zombies aside), allowing them a few seconds to go. */
async function assertAllGone(pids: number[]) {
  let left: number[] = [];
  for (let i = 0; i < 250; i++) {
    const table = await processTable() ?? [];
    const running = new Set(table.filter(([, , stat]) => !stat.startsWith("Z")).map(([p]) => p));
    left = pids.filter((pid) => running.has(pid));
    if (left.length === 0) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`orphan processes left: ${left.join(", ")}`);
}

Deno.test("mcp gateway: /tools, /health, 422 for unknown servers and tools, outputs, $OUTPUT, progress", async (t) => {
  await using web = await startHttpFixture();
  await using gateway = await startGateway({
    fx: fixtureStdioEntry(),
    web: { url: web.url },
    broken: { command: "/nonexistent/dagstream-mcp-server" },
  });
  const { server } = gateway;

  await t.step("GET /tools lists <server>:<tool> with descriptions and input schemas", async () => {
    const { tools } = await (await fetch(server.at("/tools"))).json();
    const names = tools.map((x: Data) => x.name);
    for (const name of ["fx:add", "fx:wait", "web:add", "web:progress", "mock:echo"]) {
      assert.ok(names.includes(name), `${name} in ${names}`);
    }
    assert.deepEqual(names, [...names].sort());
    const add = tools.find((x: Data) => x.name === "web:add");
    assert.match(add.description, /Adds a and b/);
    assert.deepEqual(add.inputSchema.required, ["a", "b"]);
  });

  await t.step("GET /health says which MCP servers are up and why one is down", async () => {
    const health = await (await fetch(server.at("/health"))).json();
    assert.equal(health.status, "ok");
    assert.equal(typeof health.uptimeSeconds, "number");
    assert.equal(health.activeRuns, 0);
    assert.deepEqual(health.mcpServers.fx, { status: "up", transport: "stdio", tools: 14 });
    assert.deepEqual(health.mcpServers.web, { status: "up", transport: "http", tools: 14 });
    assert.equal(health.mcpServers.broken.status, "down");
    assert.match(health.mcpServers.broken.error, /ENOENT/);
    assert.match(server.stderr(), /"msg":"mcp servers","up":\["fx","web"\],"down":\["broken"\]/);
  });

  await t.step(
    "a DAG naming an unknown server or tool is rejected with 422 before it runs",
    async () => {
      const response = await postDag(server.at("/execute"), {
        tasks: [
          { id: "a", tool: "fx:add", arguments: { a: 1, b: 2 } },
          { id: "b", tool: "nope:echo" },
          { id: "c", tool: "fx:nope" },
          { id: "d", tool: "broken:anything" },
        ],
      }, SSE);
      assert.equal(response.status, 422);
      const problem = await response.json();
      assert.deepEqual(problem.errors, [
        {
          path: "tasks[1].tool",
          message: 'unknown tool "nope:echo": no MCP server "nope" is configured ' +
            "(the configured servers are broken, fx, web)",
        },
        {
          path: "tasks[2].tool",
          message: 'unknown tool "fx:nope": MCP server "fx" has no tool "nope"',
        },
        {
          path: "tasks[3].tool",
          message: 'unknown tool "broken:anything": MCP server "broken" is down ' +
            "(spawn /nonexistent/dagstream-mcp-server ENOENT), so its tools are not known",
        },
      ]);
    },
  );

  await t.step(
    "outputs, errors and schema failures across both transports, wired by $OUTPUT",
    async () => {
      const result = await runJson(server, {
        tasks: [
          { id: "sum", tool: "fx:add", arguments: { a: 2, b: 3 } },
          { id: "again", tool: "web:add", arguments: { a: "$OUTPUT[sum].sum", b: 10 } },
          { id: "said", tool: "web:text", arguments: { text: "total" } },
          {
            id: "echo",
            tool: "mock:echo",
            arguments: { n: "$OUTPUT[again].sum", s: "$OUTPUT[said]" },
          },
          { id: "bad", tool: "fx:add", arguments: { a: "$OUTPUT[said]", b: 1 } },
          { id: "err", tool: "web:fail", arguments: { message: "disk on fire" } },
          { id: "many", tool: "fx:multi" },
        ],
      });
      const by = Object.fromEntries(result.results.map((r: Data) => [r.taskId, r]));
      assert.deepEqual(by.sum.output, { sum: 5 });
      assert.deepEqual(by.again.output, { sum: 15 });
      assert.equal(by.said.output, "total");
      assert.deepEqual(by.echo.output, { n: 15, s: "total" });
      assert.equal(by.bad.status, "error");
      assert.equal(
        by.bad.error,
        'invalid arguments for "fx:add": arguments.a must be number (got a string)',
      );
      assert.equal(by.err.status, "error");
      assert.equal(by.err.error, "disk on fire");
      assert.equal(by.many.output.length, 2);
    },
  );

  await t.step("MCP progress notifications stream as task_progress events, in place", async () => {
    const key = `p-${crypto.randomUUID()}`;
    const { runId, events } = await startWatchedRun(server, {
      tasks: [{ id: "slow", tool: "web:progress", arguments: { steps: 2, key } }],
    });
    let progress = 0;
    const before = await readUntil(events, (e) => e.type === "task_progress" && ++progress === 2);
    // Both reports arrived while the tool still waits: now let it finish.
    assert.deepEqual(await call(server, "web:release", { key }), { released: 1 });
    const after = await readAll(events);
    const all = [...before, ...after];
    assert.deepEqual(all.map((e) => e.type), [
      "task_start",
      "task_progress",
      "task_progress",
      "task_complete",
      "execution_complete",
    ]);
    const [p1, p2] = all.filter((e) => e.type === "task_progress").map((e) => e.data as Data);
    assert.equal(p1.taskId, "slow");
    assert.equal(p1.tool, "web:progress");
    assert.deepEqual([p1.progress, p1.total, p1.message], [1, 2, "step 1"]);
    assert.deepEqual([p2.progress, p2.total, p2.message], [2, 2, "step 2"]);
    assert.match(p2.timestamp, /^\d{4}-\d\d-\d\dT/);
    assert.equal((await waitForRunEnd(server, runId)).status, "succeeded");
  });

  await t.step("DELETE /runs/<id> cancels the in-flight MCP call in the server", async () => {
    const key = `c-${crypto.randomUUID()}`;
    const { runId, events } = await startWatchedRun(server, {
      tasks: [{ id: "w", tool: "fx:wait", arguments: { key } }],
    });
    await readUntil(events, (e) => e.type === "task_progress");
    assert.equal((await fetch(server.at(`/runs/${runId}`), { method: "DELETE" })).status, 202);
    const rest = await readAll(events);
    const complete = rest.find((e) => e.type === "task_complete")!.data as Data;
    assert.equal(complete.status, "error");
    assert.match(complete.error, /^aborted: cancelled by DELETE/);
    // Answers only once the fixture saw the cancellation of that very call.
    assert.deepEqual(await call(server, "fx:cancelled", { key }), { key, cancelled: 1 });
  });
});

Deno.test("mcp gateway: a task timeout cancels the MCP call in the server", async () => {
  await using gateway = await startGateway({ fx: fixtureStdioEntry() }, ["--task-timeout", "300"]);
  const { server } = gateway;
  const key = `t-${crypto.randomUUID()}`;
  const result = await runJson(server, {
    tasks: [{ id: "w", tool: "fx:wait", arguments: { key } }],
  });
  assert.equal(result.results[0].status, "error");
  assert.match(result.results[0].error, /timed out after 300 ms/);
  assert.deepEqual(await call(server, "fx:cancelled", { key }), { key, cancelled: 1 });
});

Deno.test("mcp gateway: a server killed mid-run fails its running tasks, then is reconnected", async () => {
  await using gateway = await startGateway({ fx: fixtureStdioEntry() });
  const { server } = gateway;
  const { pid } = await call(server, "fx:pid");

  const { runId, events } = await startWatchedRun(server, {
    tasks: [
      { id: "w1", tool: "fx:wait", arguments: { key: "never-1" } },
      { id: "w2", tool: "fx:wait", arguments: { key: "never-2" } },
      { id: "after", tool: "fx:add", arguments: { a: 1, b: 1 }, dependsOn: ["w1"] },
      { id: "local", tool: "mock:echo", arguments: { ok: true } },
    ],
  });
  let waiting = 0;
  const before = await readUntil(events, (e) => e.type === "task_progress" && ++waiting === 2);
  // Both calls are in the MCP server now: kill it.
  Deno.kill(pid, "SIGKILL");
  const all = [...before, ...await readAll(events)];
  const completes = Object.fromEntries(
    all.filter((e) => e.type === "task_complete").map((e) => [(e.data as Data).taskId, e.data]),
  ) as Record<string, Data>;
  for (const id of ["w1", "w2"]) {
    assert.equal(completes[id].status, "error");
    assert.equal(
      completes[id].error,
      'MCP server "fx" disconnected while "fx:wait" was running: the server process exited; ' +
        "it is being reconnected",
    );
  }
  assert.equal(completes.after.error, "Dependency w1 failed");
  assert.equal(completes.local.status, "success");
  assert.equal(all.at(-1)!.type, "execution_complete");
  assert.equal((await waitForRunEnd(server, runId)).status, "failed");
  await server.untilStderr((log) => /"msg":"mcp server lost","server":"fx"/.test(log));

  // Reconnected (with backoff) for later runs: a new process serves them.
  await untilHealth(server, "fx", "up");
  const again = await call(server, "fx:pid");
  assert.notEqual(again.pid, pid);
  assert.deepEqual(await call(server, "fx:add", { a: 20, b: 22 }), { sum: 42 });
});

// server-everything through npx: fetched from the npm registry on first use.
const npxProbe = await (async () => {
  try {
    const probe = await new Deno.Command("npx", {
      args: ["-y", EVERYTHING],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    if (probe.success) return undefined;
    return `npx could not run ${EVERYTHING}: ${new TextDecoder().decode(probe.stderr).slice(-400)}`;
  } catch (error) {
    return `npx is not available (${error instanceof Error ? error.message : error})`;
  }
})();
if (npxProbe !== undefined) console.warn(`SKIPPING the server-everything test: ${npxProbe}`);

Deno.test({
  name: "mcp gateway: server-everything (npx) echo and get-sum in a DAG with $OUTPUT; no orphans",
  ignore: npxProbe !== undefined,
  async fn() {
    const gateway = await startGateway({
      everything: { command: "npx", args: ["-y", EVERYTHING] },
      fx: fixtureStdioEntry(),
    });
    const { server } = gateway;
    try {
      const { tools } = await (await fetch(server.at("/tools"))).json();
      const echo = tools.find((x: Data) => x.name === "everything:echo");
      assert.ok(echo, "everything:echo is listed");
      assert.deepEqual(echo.inputSchema.required, ["message"]);

      const response = await postDag(server.at("/execute"), {
        tasks: [
          { id: "sum", tool: "everything:get-sum", arguments: { a: 2, b: 3 } },
          { id: "echo", tool: "everything:echo", arguments: { message: "$OUTPUT[sum]" } },
          { id: "n", tool: "mock:echo", arguments: { v: 42 } },
          { id: "bad", tool: "everything:echo", arguments: { message: "$OUTPUT[n].v" } },
        ],
      }, SSE);
      assert.equal(response.status, 200);
      const events: ReceivedSSEEvent[] = [];
      for await (const event of readSSEEvents(response.body!)) events.push(event);
      const completes = Object.fromEntries(
        events.filter((e) => e.type === "task_complete").map((
          e,
        ) => [(e.data as Data).taskId, e.data]),
      ) as Record<string, Data>;
      assert.equal(completes.sum.output, "The sum of 2 and 3 is 5.");
      assert.equal(completes.echo.output, "Echo: The sum of 2 and 3 is 5.");
      assert.equal(completes.bad.status, "error");
      assert.match(
        completes.bad.error,
        /invalid arguments for "everything:echo": arguments\.message must be string/,
      );
      assert.equal(events.at(-1)!.type, "execution_complete");

      // The same mistake in a literal argument is refused before anything runs.
      const refused = await postDag(server.at("/execute"), {
        tasks: [{ id: "bad", tool: "everything:echo", arguments: { message: 42 } }],
      });
      assert.equal(refused.status, 422);
      assert.deepEqual((await refused.json()).errors, [
        { path: "tasks[0].arguments.message", message: "must be string (got 42)" },
      ]);
    } finally {
      // Every process the server started (npx, its shell, node, the fixture)
      // is gone once it has shut down.
      const children = await descendants(server.pid);
      const status = await server.stop();
      await Deno.remove(gateway.configPath);
      assert.equal(status.code, 0);
      if (children === null) {
        console.warn("no `ps` on this machine: the orphan check is skipped");
      } else {
        // npx, its shell and node for server-everything, and the fixture.
        assert.ok(children.length >= 3, `the server's child processes: ${children}`);
        await assertAllGone(children);
      }
    }
  },
});

Deno.test("mcp gateway: too few permissions or a bad config exit with status 2 and say what to do", async () => {
  const main = new URL("../../src/server/main.ts", import.meta.url).pathname;
  const path = await Deno.makeTempFile({ prefix: "dagstream-mcp-", suffix: ".json" });
  const serve = async (permissions: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--unstable-no-legacy-abort",
        ...permissions,
        main,
        "--port",
        "0",
        "--mcp-config",
        path,
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
  };
  try {
    await Deno.writeTextFile(path, JSON.stringify({ mcpServers: { fx: fixtureStdioEntry() } }));
    const narrow = await serve(["--allow-net", "--allow-env=DAGSTREAM_*"]);
    assert.equal(narrow.code, 2);
    assert.match(narrow.stderr, new RegExp(`--mcp-config needs permission to read ${path}`));
    assert.match(narrow.stderr, /deno task serve:mcp --mcp-config/);

    const readable = await serve([
      "--allow-net",
      "--allow-env=DAGSTREAM_*",
      `--allow-read=${path}`,
    ]);
    assert.equal(readable.code, 2);
    assert.match(readable.stderr, new RegExp(`--allow-run=${Deno.execPath()}`));
    assert.match(
      readable.stderr,
      /The narrowest command that runs them:\n {2}deno run .*--ignore-env/,
    );

    await Deno.writeTextFile(path, JSON.stringify({ mcpServers: { fx: { command: "" } } }));
    const invalid = await serve(["--allow-net", "--allow-env=DAGSTREAM_*", `--allow-read=${path}`]);
    assert.equal(invalid.code, 2);
    assert.match(
      invalid.stderr,
      new RegExp(`invalid MCP config ${path}:\n  mcpServers.fx.command: must not be empty`),
    );
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("mcp gateway: SIGTERM while MCP servers are starting stops them and exits 0", async () => {
  const main = new URL("../../src/server/main.ts", import.meta.url).pathname;
  const path = await Deno.makeTempFile({ prefix: "dagstream-mcp-", suffix: ".json" });
  // A stdio server that never answers `initialize`: startup waits for it.
  await Deno.writeTextFile(
    path,
    JSON.stringify({
      mcpServers: {
        mute: { command: Deno.execPath(), args: ["eval", "setInterval(() => {}, 1000)"] },
      },
    }),
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--unstable-no-legacy-abort", "--allow-all", main, "--port", "0"],
    env: { DAGSTREAM_MCP_CONFIG: path }, // the variable works like the flag
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = child.output();
  try {
    let started: number[] | null = [];
    for (let i = 0; i < 500 && started !== null && started.length === 0; i++) {
      started = await descendants(child.pid);
      if (started !== null && started.length === 0) await new Promise((r) => setTimeout(r, 20));
    }
    child.kill("SIGTERM");
    const { code, stdout, stderr } = await output;
    assert.equal(code, 0, new TextDecoder().decode(stderr));
    assert.doesNotMatch(new TextDecoder().decode(stdout), /Listening on/);
    assert.match(new TextDecoder().decode(stderr), /"msg":"shutdown","signal":"SIGTERM"/);
    if (started === null) console.warn("no `ps` on this machine: the orphan check is skipped");
    else {
      assert.ok(started.length > 0, "the MCP server process had started");
      await assertAllGone(started);
    }
  } finally {
    await Deno.remove(path);
  }
});
