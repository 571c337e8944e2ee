/**
 * Starts the real bundled server (`src/server/main.ts`) as a child process on
 * port 0 for integration tests, and stops it cleanly so Deno's op and resource
 * sanitizers stay happy: SIGTERM, await the exit status, and read stdout and
 * stderr to their end.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { DAGStructure } from "../../src/dag/types.ts";
import { readSSEEvents } from "../../src/sse/client.ts";
import { denoServeCommand, mcpPermissions, parseMcpConfig } from "../../src/tools/mcp-config.ts";
import { fixtureStdioEntry } from "../fixtures/mcp_fixture.ts";

const ROOT = new URL("../../", import.meta.url);
const MAIN = new URL("src/server/main.ts", ROOT);
const LISTENING = /^Listening on (http:\/\/\S+\/)$/;

/** A running server process. */
export interface ServerProcess {
  /** Base URL the server printed, ending in `/`. */
  readonly url: string;
  /** Resolves `path` (e.g. `/health`) against {@linkcode url}. */
  at(path: string): string;
  /** The server's process id. */
  readonly pid: number;
  /** Everything the process wrote on stderr so far (its JSON log lines). */
  stderr(): string;
  /**
   * Resolves as soon as `predicate` holds for everything written on stderr
   * so far, checked now and each time the process writes more (no polling);
   * rejects if stderr ends first or `predicate` throws.
   */
  untilStderr(predicate: (stderr: string) => boolean): Promise<void>;
  /** Sends a signal to the process. */
  kill(signal?: Deno.Signal): void;
  /** Resolves with the exit status, once the process is gone. */
  readonly status: Promise<Deno.CommandStatus>;
  /** SIGTERM (if still running), then waits for the exit and the end of both pipes. */
  stop(): Promise<Deno.CommandStatus>;
  /** Same as {@linkcode stop}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** The Deno permission flags of `deno task serve`, the default of {@linkcode startServer}. */
export const SERVE_PERMISSIONS: readonly string[] = [
  "--allow-net",
  "--allow-env=DAGSTREAM_*,REDIS_DEBUG_MAINTENANCE,REDIS_EMIT_DIAGNOSTICS",
];

/**
 * Spawns `deno run ... src/server/main.ts --port 0 ...flags` and resolves once
 * it printed `Listening on http://HOST:PORT/`. The child sees no `DAGSTREAM_*`
 * variable of the test runner, only those in `env`. It runs with the
 * permissions of `deno task serve` unless `options.permissions` says otherwise,
 * and `options.entry` replaces `main.ts` (e.g. a test server with extra tools).
 */
export async function startServer(
  flags: string[] = [],
  env: Record<string, string> = {},
  options: { permissions?: readonly string[]; entry?: URL } = {},
): Promise<ServerProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--unstable-no-legacy-abort",
      ...(options.permissions ?? SERVE_PERMISSIONS),
      (options.entry ?? MAIN).pathname,
      "--port",
      "0",
      ...flags,
    ],
    cwd: ROOT.pathname,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    clearEnv: true,
    env: { ...withoutDagstreamVariables(), ...env },
  }).spawn();

  let stderrText = "";
  let stderrEnded = false;
  const stderrWaiters = new Set<
    { predicate: (stderr: string) => boolean; resolve: () => void; reject: (e: Error) => void }
  >();
  const stderrDone = (async () => {
    try {
      for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
        stderrText += chunk;
        for (const waiter of stderrWaiters) {
          let holds: boolean;
          try {
            holds = waiter.predicate(stderrText);
          } catch (error) {
            stderrWaiters.delete(waiter);
            waiter.reject(error instanceof Error ? error : new Error(String(error)));
            continue;
          }
          if (holds) {
            stderrWaiters.delete(waiter);
            waiter.resolve();
          }
        }
      }
    } finally {
      stderrEnded = true;
      for (const waiter of stderrWaiters) {
        waiter.reject(new Error(`stderr ended before the awaited output:\n${stderrText}`));
      }
      stderrWaiters.clear();
    }
  })();
  const untilStderr = (predicate: (stderr: string) => boolean): Promise<void> => {
    try {
      if (predicate(stderrText)) return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
    if (stderrEnded) {
      return Promise.reject(new Error(`stderr ended before the awaited output:\n${stderrText}`));
    }
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    stderrWaiters.add({ predicate, resolve, reject });
    return promise;
  };

  const stdoutLines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let stdoutText = "";
  let url: string | undefined;
  let buffered = "";
  while (url === undefined) {
    const { value, done } = await stdoutLines.read();
    if (done) break;
    stdoutText += value;
    buffered += value;
    let newline: number;
    while (url === undefined && (newline = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, newline).trimEnd();
      buffered = buffered.slice(newline + 1);
      url = LISTENING.exec(line)?.[1];
    }
  }
  // Keep draining stdout so the child never blocks on a full pipe.
  const stdoutDone = (async () => {
    while (true) {
      const { value, done } = await stdoutLines.read();
      if (done) break;
      stdoutText += value;
    }
    stdoutLines.releaseLock();
  })();

  const status = child.status;
  let stopped: Promise<Deno.CommandStatus> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      try {
        child.kill("SIGTERM");
      } catch {
        // already exited
      }
      const result = await status;
      await Promise.all([stdoutDone, stderrDone]);
      return result;
    })();
    return stopped;
  };

  if (url === undefined) {
    const result = await stop();
    throw new Error(
      `the server exited (code ${result.code}) without printing its URL\n` +
        `stdout: ${stdoutText}\nstderr: ${stderrText}`,
    );
  }
  const base = url;
  return {
    url: base,
    pid: child.pid,
    at: (path) => new URL(path, base).href,
    stderr: () => stderrText,
    untilStderr,
    kill: (signal = "SIGTERM") => child.kill(signal),
    status,
    stop,
    async [Symbol.asyncDispose]() {
      await stop();
    },
  };
}

function withoutDagstreamVariables(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(Deno.env.toObject()).filter(([name]) => !name.startsWith("DAGSTREAM_")),
  );
}

/**
 * Runs `main.ts` with `args` to its exit (for flags that stop it at
 * startup), with the permissions of `deno task serve` unless told otherwise,
 * and no `DAGSTREAM_*` variable but those in `env`.
 */
export async function runMain(
  args: string[],
  env: Record<string, string> = {},
  permissions: readonly string[] = SERVE_PERMISSIONS,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--unstable-no-legacy-abort", ...permissions, MAIN.pathname, ...args],
    cwd: ROOT.pathname,
    stdin: "null",
    clearEnv: true,
    env: { ...withoutDagstreamVariables(), ...env },
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** Headers of a JSON request body, with an optional `Accept`. */
export function jsonHeaders(accept?: string, extra: Record<string, string> = {}): HeadersInit {
  const headers: Record<string, string> = { "Content-Type": "application/json", ...extra };
  if (accept !== undefined) headers.Accept = accept;
  return headers;
}

/** POSTs a DAG as JSON to `url`. */
export function postDag(
  url: string,
  dag: DAGStructure | unknown,
  accept?: string,
  extra: Record<string, string> = {},
): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: jsonHeaders(accept, extra),
    body: JSON.stringify(dag),
  });
}

/** A DAG of `n` independent `mock:echo` tasks `t1..tn`. */
export function echoDag(n: number, payload: Record<string, unknown> = {}): DAGStructure {
  return {
    tasks: Array.from({ length: n }, (_, i) => ({
      id: `t${i + 1}`,
      tool: "mock:echo",
      arguments: { i: i + 1, ...payload },
    })),
  };
}

/** POSTs `dag` to `/runs`, checks the 202, and returns the new run's id. */
export async function startRun(
  server: ServerProcess,
  dag: DAGStructure | unknown,
): Promise<string> {
  const response = await postDag(server.at("/runs"), dag);
  const text = await response.text();
  assert.equal(response.status, 202, text);
  return JSON.parse(text).runId;
}

/** `GET /runs` (with `headers`, e.g. a token), checked for a 200: how many runs the server has seen. */
export async function runCount(server: ServerProcess, headers: HeadersInit = {}): Promise<number> {
  const response = await fetch(server.at("/runs"), { headers });
  const text = await response.text();
  assert.equal(response.status, 200, text);
  return JSON.parse(text).runs.length;
}

/** A one-task DAG that waits `ms` (long enough to hold a run open until cancelled). */
export function holdDag(ms = 60_000): DAGStructure {
  return { tasks: [{ id: "hold", tool: "mock:delay", arguments: { ms } }] };
}

/**
 * Waits until a run is over and returns what `GET /runs/<id>` says then. It
 * follows the run's event stream, which the server closes once the run has
 * ended: the wait ends on that event, not on a clock. (A watcher whose next
 * events gave way is told how many it missed, and comes back after them.)
 */
export async function waitForRunEnd(
  server: ServerProcess,
  runId: string,
  init: RequestInit = {},
): Promise<{
  runId: string;
  status: string;
  result?: Record<string, unknown>;
  instance?: string;
  startedAt?: string;
  finishedAt?: string;
  dag?: unknown;
}> {
  let lastEventId = 0;
  while (true) {
    const response = await fetch(server.at(`/runs/${runId}`), init);
    const body = await response.json();
    if (response.status !== 200) throw new Error(`GET /runs/${runId}: ${response.status}`);
    if (body.status !== "running" && body.status !== "queued") return body;
    const headers = new Headers(init.headers);
    headers.set("Accept", "text/event-stream");
    headers.set("Last-Event-ID", String(lastEventId));
    const events = await fetch(server.at(`/runs/${runId}/events`), { ...init, headers });
    if (events.status === 204) continue; // over, with nothing after lastEventId
    if (events.status !== 200) {
      throw new Error(`GET /runs/${runId}/events: ${events.status} ${await events.text()}`);
    }
    for await (const event of readSSEEvents(events.body!)) {
      if (event.id !== undefined) lastEventId = Number(event.id);
      const data = event.data as { code?: string; missedEvents?: number };
      if (event.type === "error" && data.code === "events_lost") {
        lastEventId += data.missedEvents ?? 0;
      }
    }
  }
}

/** A server whose DAGs may call `gate:wait`; see {@linkcode startGatedServer}. */
export interface GatedServer extends AsyncDisposable {
  /** The server process. */
  readonly server: ServerProcess;
  /** Lets every present and future `gate:wait {key}` call return. */
  release(key: string): Promise<void>;
}

/**
 * Writes `mcpServers` to a temporary `mcpServers` file and starts the server
 * with it, with exactly the permissions the server derives for that config
 * (what it prints as the narrowest command). `stop()` of the result also
 * removes the file.
 */
export async function startWithMcpServers(
  mcpServers: Record<string, unknown>,
  flags: string[] = [],
  env: Record<string, string> = {},
): Promise<{ server: ServerProcess; configPath: string; [Symbol.asyncDispose](): Promise<void> }> {
  const configPath = await Deno.makeTempFile({ prefix: "dagstream-mcp-", suffix: ".json" });
  await Deno.writeTextFile(configPath, JSON.stringify({ mcpServers }));
  const config = parseMcpConfig({ mcpServers }, configPath);
  const command = denoServeCommand(mcpPermissions(config, configPath), []);
  const permissions = command.split(" ").filter((w) => /^'?--(allow|ignore)-/.test(w))
    .map((w) => w.replace(/^'|'$/g, ""));
  let server: ServerProcess;
  try {
    server = await startServer(["--mcp-config", configPath, ...flags], env, { permissions });
  } catch (error) {
    await Deno.remove(configPath);
    throw error;
  }
  return {
    server,
    configPath,
    async [Symbol.asyncDispose]() {
      await server.stop();
      await Deno.remove(configPath);
    },
  };
}

/**
 * Starts the server with the fixture MCP server (over stdio) as `gate`, so
 * that a DAG's task `{ tool: "gate:wait", arguments: { key } }` blocks until
 * the test calls `release(key)`. The task reports one `task_progress` event
 * once it is blocked. Lets a test order a run's steps by causality where
 * the built-in tools could only wait a number of milliseconds. The server
 * runs with exactly the permissions the server derives for that config.
 */
export async function startGatedServer(flags: string[] = []): Promise<GatedServer> {
  const { server, configPath } = await startWithMcpServers(
    { gate: fixtureStdioEntry() },
    flags,
  );
  return {
    server,
    async release(key: string) {
      const response = await postDag(server.at("/execute"), {
        tasks: [{ id: "release", tool: "gate:release", arguments: { key } }],
      }, "application/json");
      const result = await response.json();
      assert.equal(response.status, 200, JSON.stringify(result));
      assert.equal(result.results[0].status, "success", JSON.stringify(result.results[0]));
    },
    async [Symbol.asyncDispose]() {
      await server.stop();
      await Deno.remove(configPath);
    },
  };
}

/**
 * Checks an RFC 9457 problem answer: the status, `application/problem+json`,
 * `status` in the body equal to the HTTP status, the standard members, and
 * no stack trace. Returns the parsed body.
 */
export async function assertProblem(
  response: Response,
  status: number,
): Promise<Record<string, unknown>> {
  const text = await response.text();
  return checkProblem(response.status, response.headers.get("content-type"), text, status);
}

/** {@linkcode assertProblem} for a {@linkcode rawRequest} answer. */
export function assertRawProblem(response: RawResponse, status: number): Record<string, unknown> {
  return checkProblem(
    response.status,
    response.headers.get("content-type") ?? null,
    response.body,
    status,
  );
}

function checkProblem(
  actual: number,
  type: string | null,
  text: string,
  status: number,
): Record<string, unknown> {
  assert.equal(actual, status, `expected ${status}, got ${actual}: ${text}`);
  assert.equal(type, "application/problem+json", text);
  const body = JSON.parse(text);
  assert.equal(body.status, status);
  assert.equal(typeof body.type, "string");
  assert.equal(typeof body.title, "string");
  assert.equal(typeof body.detail, "string");
  assert.ok(!("stack" in body), "a problem has no stack member");
  assert.doesNotMatch(text, /\bat \S+ \(|\.ts:\d+:\d+|file:\/\//, "no stack trace in a problem");
  return body;
}

/** A raw HTTP/1.1 answer: status, headers (lower-case names) and body text. */
export interface RawResponse {
  status: number;
  headers: Map<string, string>;
  body: string;
}

/**
 * Sends one hand-written HTTP/1.1 request (`Connection: close`), for what
 * `fetch` cannot send: no `Accept` header, no `Content-Type` header, a
 * `Host` header of the caller's choice (given in `headers`, any case).
 */
export async function rawRequest(
  url: string,
  method: string,
  headers: Record<string, string>,
  body?: Uint8Array,
): Promise<RawResponse> {
  const { hostname, port, pathname, search } = new URL(url);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  const lines = [`${method} ${pathname}${search} HTTP/1.1`];
  if (!Object.keys(headers).some((name) => name.toLowerCase() === "host")) {
    lines.push(`Host: ${hostname}:${port}`);
  }
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  if (body !== undefined) lines.push(`Content-Length: ${body.byteLength}`);
  lines.push("Connection: close", "", "");
  const head = new TextEncoder().encode(lines.join("\r\n"));
  const request = new Uint8Array(head.byteLength + (body?.byteLength ?? 0));
  request.set(head);
  if (body !== undefined) request.set(body, head.byteLength);
  const writer = conn.writable.getWriter();
  await writer.write(request);
  writer.releaseLock();
  const text = await new Response(conn.readable).text();
  const split = text.indexOf("\r\n\r\n");
  const [statusLine, ...headerLines] = text.slice(0, split).split("\r\n");
  const map = new Map<string, string>();
  for (const line of headerLines) {
    const colon = line.indexOf(":");
    map.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  let rest = text.slice(split + 4);
  if (map.get("transfer-encoding") === "chunked") rest = dechunk(rest);
  return { status: Number(statusLine.split(" ")[1]), headers: map, body: rest };
}

function dechunk(text: string): string {
  let out = "";
  let at = 0;
  while (at < text.length) {
    const eol = text.indexOf("\r\n", at);
    const size = parseInt(text.slice(at, eol), 16);
    if (!(size > 0)) break;
    out += text.slice(eol + 2, eol + 2 + size);
    at = eol + 2 + size + 2;
  }
  return out;
}
