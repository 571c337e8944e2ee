/**
 * dagstream is importable from anywhere: an app in a temporary directory
 * outside the repository, with no deno.json, import map or package.json of
 * its own, imports the entry points by file URL and runs with the narrowest
 * permissions — exactly what the README tells a user to write and run.
 */

import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url);
const entry = (path: string) => new URL(path, ROOT).href;

/** What the app prints, one JSON line. */
interface AppReport {
  dag: { statuses: string[]; output: unknown; speedup: number; successRate: number };
  http: { status: number; contentType: string | null; sseHeader: string; events: string[] };
  health: { status: string; activeRuns: number };
  tool: unknown;
}

const APP = `
import { ParallelExecutor, readSSEEvents } from ${JSON.stringify(entry("mod.ts"))};
import { builtinTools, createApp, createToolRegistry } from ${
  JSON.stringify(entry("src/server/mod.ts"))
};
import { SSE_HEADERS } from ${JSON.stringify(entry("src/sse/mod.ts"))};

// A DAG run in-process.
const executor = new ParallelExecutor(async (tool, args) => ({ tool, args }));
const result = await executor.execute({
  tasks: [
    { id: "a", tool: "echo", arguments: { n: 1 } },
    { id: "b", tool: "echo", arguments: { fromA: "$OUTPUT[a].args.n" } },
  ],
});
const stats = executor.getStats(result);

// The bundled server's app, with a tool of this app, on a free port.
const tools = createToolRegistry({
  ...builtinTools,
  "math:add": {
    description: "Adds a and b",
    inputSchema: { type: "object", properties: { a: { type: "number" }, b: { type: "number" } } },
    run: (args) => Number(args.a) + Number(args.b),
  },
});
const app = createApp({ tools, log: () => {} });
const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.handle);
const base = "http://127.0.0.1:" + server.addr.port;
const response = await fetch(base + "/execute", {
  method: "POST",
  headers: { accept: "text/event-stream", "content-type": "application/json" },
  body: JSON.stringify({
    tasks: [
      { id: "sum", tool: "math:add", arguments: { a: 2, b: 3 } },
      { id: "echo", tool: "mock:echo", arguments: { sum: "$OUTPUT[sum]" } },
    ],
  }),
});
const events = [];
let echoed;
for await (const event of readSSEEvents(response.body)) {
  events.push(event.type);
  if (event.type === "task_complete" && event.data.taskId === "echo") echoed = event.data.output;
}
const health = await (await fetch(base + "/health")).json();
await app.shutdown();
await server.shutdown();

console.log(JSON.stringify({
  dag: {
    statuses: result.results.map((r) => r.status),
    output: result.results[1].output,
    speedup: executor.calculateSpeedup(result),
    successRate: stats.successRate,
  },
  http: {
    status: response.status,
    contentType: response.headers.get("content-type"),
    sseHeader: SSE_HEADERS["Content-Type"],
    events,
  },
  health: { status: health.status, activeRuns: health.activeRuns },
  tool: echoed,
}));
`;

const MCP_APP = `
import { mcpPermissions, parseMcpConfig } from ${JSON.stringify(entry("src/tools/mcp-entry.ts"))};

const config = parseMcpConfig({ mcpServers: { e: { command: "npx", args: ["x"] } } }, "mcp.json");
console.log(JSON.stringify(mcpPermissions(config, "mcp.json").run));
`;

/**
 * Writes `source` as `app.ts` in a new temporary directory outside the
 * repository, runs `deno run <flags> app.ts` there, and removes the directory.
 */
async function runOutside(source: string, flags: string[]): Promise<Deno.CommandOutput> {
  const dir = await Deno.makeTempDir({ prefix: "dagstream-outside-" });
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), 120_000);
  try {
    assert.ok(!dir.startsWith(ROOT.pathname), `${dir} is outside ${ROOT.pathname}`);
    await Deno.writeTextFile(`${dir}/app.ts`, source);
    return await new Deno.Command(Deno.execPath(), {
      args: ["run", ...flags, "app.ts"],
      cwd: dir,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: stop.signal,
    }).output();
  } finally {
    clearTimeout(timer);
    await Deno.remove(dir, { recursive: true });
  }
}

function decode(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}

Deno.test("an app outside the repository imports mod.ts, ./server and ./sse by file URL and runs with --allow-net=127.0.0.1 only", async () => {
  const output = await runOutside(APP, ["--allow-net=127.0.0.1"]);
  const stdout = decode(output.stdout);
  const stderr = decode(output.stderr);
  assert.equal(output.code, 0, `exit code ${output.code}\nstdout: ${stdout}\nstderr: ${stderr}`);
  const report: AppReport = JSON.parse(stdout.trim());
  assert.deepEqual(report.dag.statuses, ["success", "success"]);
  assert.deepEqual(report.dag.output, { tool: "echo", args: { fromA: 1 } });
  assert.equal(typeof report.dag.speedup, "number");
  assert.equal(report.dag.successRate, 100);
  assert.equal(report.http.status, 200);
  assert.equal(report.http.contentType, "text/event-stream");
  assert.equal(report.http.sseHeader, "text/event-stream");
  assert.deepEqual(report.http.events, [
    "task_start",
    "task_complete",
    "task_start",
    "task_complete",
    "execution_complete",
  ]);
  assert.deepEqual(report.tool, { sum: 5 });
  assert.deepEqual(report.health, { status: "ok", activeRuns: 0 });
});

Deno.test("an app outside the repository imports ./mcp by file URL and runs with --ignore-env only", async () => {
  // The MCP SDK's dependencies read a few environment variables when loaded.
  const output = await runOutside(MCP_APP, ["--ignore-env"]);
  const stdout = decode(output.stdout);
  const stderr = decode(output.stderr);
  assert.equal(output.code, 0, `exit code ${output.code}\nstdout: ${stdout}\nstderr: ${stderr}`);
  assert.deepEqual(JSON.parse(stdout.trim()), ["npx"]);
});
