/**
 * MCP servers as a tool source: connects, with the official SDK
 * (`@modelcontextprotocol/sdk`), to every server of an `mcpServers`
 * configuration — stdio child processes and Streamable HTTP endpoints — and
 * offers each server's tools as `<server>:<tool>` through the
 * {@linkcode ToolRegistry} interface. The executor knows nothing of MCP: it
 * only sees a {@linkcode ToolExecutor}.
 *
 * - Output: a call's `structuredContent` when present; else a single text
 *   item, parsed as JSON when it is JSON, else its text; else the content
 *   array. `isError: true` fails the task with the tool's text.
 * - Arguments are checked against the tool's input schema before the call
 *   (with the validator every tool shares, `./schema.ts`); a mismatch fails
 *   the task with the schema's message. `checkArguments` checks a task's
 *   arguments before the run.
 * - The task's signal and timeout reach the call: the SDK sends the server
 *   `notifications/cancelled` and stops waiting. The server's progress
 *   notifications go to `ctx.progress` (a `task_progress` event).
 * - A server that fails to connect, or whose connection is lost (its process
 *   exits, its HTTP endpoint stops answering), is `down`: calls running on
 *   it fail at once with a message saying so, and it is reconnected with
 *   exponential backoff. {@linkcode McpToolSource.close} stops every child
 *   process.
 *
 * Loading this module loads the SDK, whose dependencies read a few
 * environment variables: run with `--allow-env` for them, or `--ignore-env`
 * (see docs/OPERATIONS.md).
 *
 * @module
 */

// @ts-types="npm:@modelcontextprotocol/sdk@1.32.2/client/index"
import { Client } from "npm:@modelcontextprotocol/sdk@1.32.2/client/index.js";
// @ts-types="npm:@modelcontextprotocol/sdk@1.32.2/client/stdio"
import { StdioClientTransport } from "npm:@modelcontextprotocol/sdk@1.32.2/client/stdio.js";
// @ts-types="npm:@modelcontextprotocol/sdk@1.32.2/client/streamableHttp"
import { StreamableHTTPClientTransport } from "npm:@modelcontextprotocol/sdk@1.32.2/client/streamableHttp.js";
// @ts-types="npm:@modelcontextprotocol/sdk@1.32.2/shared/transport"
import type { Transport } from "npm:@modelcontextprotocol/sdk@1.32.2/shared/transport.js";
// @ts-types="npm:@modelcontextprotocol/sdk@1.32.2/types"
import { ErrorCode, McpError, type Tool } from "npm:@modelcontextprotocol/sdk@1.32.2/types.js";
import denoJson from "../../deno.json" with { type: "json" };
import type { ToolContext, ToolExecutor } from "../dag/types.ts";
import { DEFAULT_TASK_TIMEOUT, withoutUndefined } from "../dag/defaults.ts";
import { describeError } from "../dag/errors.ts";
import type { ArgumentIssue } from "../dag/validate.ts";
import { argumentsError, submittedArgumentIssues } from "./schema.ts";
import type { ManagedToolRegistry, ToolInfo, ToolRegistry, ToolServerHealth } from "./registry.ts";
import type { McpConfig, McpServerSpec } from "./mcp-config.ts";

export type { McpConfig, McpServerSpec } from "./mcp-config.ts";
export { loadMcpConfig, McpConfigError, parseMcpConfig } from "./mcp-config.ts";

/** Settings of an {@linkcode McpToolSource}. */
export interface McpToolSourceOptions {
  /**
   * Most ms one tool call may take, handed to the SDK as the request
   * timeout. Default 30000 (the bundled server uses its `--task-timeout`).
   */
  callTimeoutMs?: number;
  /** Most ms to start a server and list its tools. Default 60000 (`npx` may download it first). */
  connectTimeoutMs?: number;
  /** Wait before the first reconnection attempt, in ms; it doubles after each failure. Default 500. */
  reconnectDelayMs?: number;
  /** Longest wait between reconnection attempts, in ms. Default 30000. */
  maxReconnectDelayMs?: number;
  /** Receives structured log records (connections, failures, servers' stderr lines). */
  log?: (record: Record<string, unknown>) => void;
}

const DEFAULTS = {
  callTimeoutMs: DEFAULT_TASK_TIMEOUT,
  connectTimeoutMs: 60_000,
  reconnectDelayMs: 500,
  maxReconnectDelayMs: 30_000,
};

/** Most bytes of a stdio server's stderr kept to explain its failures. */
const STDERR_TAIL_BYTES = 2048;

/**
 * How a tool call's result becomes a task's output:
 * `structuredContent` when present; else the text of a single text item,
 * parsed as JSON when it is JSON; else the content array. A result with
 * `isError: true` throws an Error whose message is the tool's text.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mapToolResult } from "./mcp.ts";
 * assert.deepEqual(mapToolResult({ content: [{ type: "text", text: '{"a":1}' }] }), { a: 1 });
 * assert.equal(mapToolResult({ content: [{ type: "text", text: "hello" }] }), "hello");
 * assert.deepEqual(mapToolResult({ content: [], structuredContent: { sum: 3 } }), { sum: 3 });
 * assert.throws(
 *   () => mapToolResult({ content: [{ type: "text", text: "disk on fire" }], isError: true }),
 *   { message: "disk on fire" },
 * );
 * ```
 */
export function mapToolResult(result: Record<string, unknown>): unknown {
  const content = Array.isArray(result.content) ? result.content as unknown[] : undefined;
  if (result.isError === true) {
    const text = textOf(content);
    throw new Error(text === "" ? "the tool reported an error (with no text)" : text);
  }
  if (result.structuredContent !== undefined) return result.structuredContent;
  if (content === undefined) {
    // Protocol 2024-10-07 servers answer { toolResult }.
    return "toolResult" in result ? result.toolResult : result;
  }
  if (content.length === 1 && isTextItem(content[0])) {
    const text = content[0].text;
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  return content;
}

/**
 * The tools of the MCP servers of a configuration, as one
 * {@linkcode ManagedToolRegistry}: `execute`, `has` and `list` name tools
 * `<server>:<tool>`; `health` says which servers are up; `close` stops them.
 *
 * @example Needs the MCP servers of `mcp.json` (here server-everything through `npx`)
 * ```ts ignore
 * import assert from "node:assert/strict";
 * import { loadMcpConfig, McpToolSource } from "./mcp.ts";
 * const mcp = await McpToolSource.connect(await loadMcpConfig("mcp.json"));
 * try {
 *   assert.equal(mcp.health().everything.status, "up");
 *   assert.ok(mcp.has("everything:echo"));
 *   const out = await mcp.execute("everything:echo", { message: "hi" }, {
 *     signal: AbortSignal.timeout(5000),
 *     taskId: "t1",
 *   });
 *   assert.equal(out, "Echo: hi");
 * } finally {
 *   await mcp.close(); // ends the servers' processes
 * }
 * ```
 */
export class McpToolSource implements ManagedToolRegistry {
  readonly #servers = new Map<string, ServerConnection>();
  #closing: Promise<void> | undefined;

  /**
   * Prepares a connection to each configured server; nothing starts before
   * {@linkcode McpToolSource.start}.
   */
  constructor(config: McpConfig, options: McpToolSourceOptions = {}) {
    const settings = { ...DEFAULTS, log: () => {}, ...withoutUndefined(options) };
    for (const [name, spec] of Object.entries(config.servers)) {
      this.#servers.set(name, new ServerConnection(name, spec, settings));
    }
  }

  /**
   * Creates the source and makes the first connection attempt to every
   * server, all at once. Never rejects: a server that cannot be reached is
   * `down` in {@linkcode McpToolSource.health} and is retried in the background.
   */
  static async connect(config: McpConfig, options?: McpToolSourceOptions): Promise<McpToolSource> {
    const source = new McpToolSource(config, options);
    await source.start();
    return source;
  }

  /** First connection attempt of every server; resolves when each is up or has failed. */
  async start(): Promise<void> {
    await Promise.all([...this.#servers.values()].map((server) => server.start()));
  }

  /** Calls `<server>:<tool>`; see the module documentation for the output and failures. */
  readonly execute: ToolExecutor = (tool, args, ctx) => {
    const found = this.#find(tool);
    if (found === undefined) {
      return Promise.reject(new Error(this.explainUnknown(tool) ?? `unknown tool "${tool}"`));
    }
    return found.server.call(found.tool, args, ctx);
  };

  /** Whether `name` is `<server>:<tool>` of a configured server that lists that tool. */
  readonly has = (name: string): boolean => {
    const found = this.#find(name);
    return found !== undefined && found.server.hasTool(found.tool);
  };

  /** Every known tool of every server (the last list known for a server that is down). */
  readonly list = (): ToolInfo[] => {
    const out: ToolInfo[] = [];
    for (const server of this.#servers.values()) {
      for (const tool of server.listTools()) out.push(tool);
    }
    return out.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  };

  /**
   * The problems of a task's arguments before the run, against the tool's
   * input schema (`$OUTPUT` references are not held against them); empty
   * for a tool not known.
   */
  readonly checkArguments = (name: string, args: Record<string, unknown>): ArgumentIssue[] => {
    const found = this.#find(name);
    return found?.server.checkArguments(found.tool, args) ?? [];
  };

  /** Why `name` is not a tool, when it names a configured server. */
  readonly explainUnknown = (name: string): string | undefined => {
    const found = this.#find(name);
    return found?.server.explainUnknown(found.tool);
  };

  /** Each server's state, by name. */
  readonly health = (): Record<string, ToolServerHealth> => {
    const out: Record<string, ToolServerHealth> = {};
    for (const [name, server] of this.#servers) out[name] = server.health();
    return out;
  };

  /**
   * Disconnects every server, stops retrying, and ends the child processes
   * (stdin closed, then SIGTERM, then SIGKILL, as the SDK does). Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= Promise.all([...this.#servers.values()].map((s) => s.close())).then(
      () => {},
    );
    return this.#closing;
  }

  /** The child process id of a stdio server while it is connected (for diagnostics and tests). */
  pid(server: string): number | undefined {
    return this.#servers.get(server)?.pid;
  }

  #find(name: string): { server: ServerConnection; tool: string } | undefined {
    const colon = name.indexOf(":");
    if (colon <= 0) return undefined;
    const server = this.#servers.get(name.slice(0, colon));
    return server === undefined ? undefined : { server, tool: name.slice(colon + 1) };
  }
}

type Settings = Required<McpToolSourceOptions>;

/** A progress notification's parameters, as the SDK hands them over. */
interface McpProgress {
  progress: number;
  total?: number;
  message?: string;
}

/** One configured server: its connection, its tools, and reconnection. */
class ServerConnection {
  readonly #name: string;
  readonly #spec: McpServerSpec;
  readonly #settings: Settings;
  #client: Client | undefined;
  #transport: Transport | undefined;
  #starting: Client | undefined;
  #connecting: Promise<boolean> | undefined;
  #tools = new Map<string, Tool>();
  #error: string | undefined = "not connected yet";
  #attempts = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  #stderrTail = "";
  #lost: string | undefined;

  constructor(name: string, spec: McpServerSpec, settings: Settings) {
    this.#name = name;
    this.#spec = spec;
    this.#settings = settings;
  }

  get pid(): number | undefined {
    const transport = this.#transport;
    return transport instanceof StdioClientTransport ? transport.pid ?? undefined : undefined;
  }

  async start(): Promise<void> {
    if (!await this.#attempt()) this.#scheduleReconnect();
  }

  hasTool(tool: string): boolean {
    return this.#tools.has(tool);
  }

  checkArguments(tool: string, args: Record<string, unknown>): ArgumentIssue[] {
    return submittedArgumentIssues(this.#tools.get(tool)?.inputSchema, args);
  }

  listTools(): ToolInfo[] {
    return [...this.#tools.values()].map((tool) => {
      const info: ToolInfo = {
        name: `${this.#name}:${tool.name}`,
        description: tool.description ?? tool.title ?? "",
        inputSchema: tool.inputSchema as Record<string, unknown>,
      };
      if (tool.outputSchema !== undefined) {
        info.outputSchema = tool.outputSchema as Record<string, unknown>;
      }
      return info;
    });
  }

  explainUnknown(tool: string): string | undefined {
    if (this.#tools.has(tool)) return undefined;
    const name = `${this.#name}:${tool}`;
    if (this.#client === undefined && this.#tools.size === 0) {
      return `unknown tool "${name}": MCP server "${this.#name}" is down (${this.#error}), ` +
        "so its tools are not known";
    }
    return `unknown tool "${name}": MCP server "${this.#name}" has no tool "${tool}"`;
  }

  health(): ToolServerHealth {
    const out: ToolServerHealth = {
      status: this.#client === undefined ? "down" : "up",
      transport: this.#spec.transport,
      tools: this.#tools.size,
    };
    if (this.#client === undefined && this.#error !== undefined) out.error = this.#error;
    if (this.#attempts > 0) out.reconnectAttempts = this.#attempts;
    return out;
  }

  async call(tool: string, args: Record<string, unknown>, ctx: ToolContext): Promise<unknown> {
    const name = `${this.#name}:${tool}`;
    let client = this.#client;
    if (client === undefined && this.#connecting !== undefined) {
      await untilAborted(this.#connecting, ctx.signal);
      client = this.#client;
    }
    if (client === undefined) {
      throw new Error(
        `MCP server "${this.#name}" is down: ${this.#error}; it is being reconnected`,
      );
    }
    if (!this.#tools.has(tool)) throw new Error(this.explainUnknown(tool));
    const invalid = argumentsError(name, this.#tools.get(tool)!.inputSchema, args);
    if (invalid !== undefined) throw new Error(invalid);
    const progress = ctx.progress;
    let result: Record<string, unknown>;
    try {
      const request = ctx.traceparent === undefined
        ? { name: tool, arguments: args }
        : { name: tool, arguments: args, _meta: { traceparent: ctx.traceparent } };
      result = await client.callTool(request, undefined, {
        signal: ctx.signal,
        timeout: this.#settings.callTimeoutMs,
        onprogress: progress === undefined
          ? undefined
          : (p: McpProgress) =>
            progress({ progress: p.progress, total: p.total, message: p.message }),
      }) as Record<string, unknown>;
    } catch (error) {
      throw new Error(this.#describeCallError(error, name, client));
    }
    return mapToolResult(result);
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const clients = [this.#client, this.#starting].filter((c) => c !== undefined);
    this.#client = undefined;
    this.#error = "closed";
    await Promise.all(clients.map(closeQuietly));
    await this.#connecting;
  }

  /** One connection attempt (shared by concurrent callers); true when connected. */
  #attempt(): Promise<boolean> {
    this.#connecting ??= this.#connect().then(() => true, (error) => {
      this.#error = this.#withStderr(describeError(error));
      this.#settings.log({
        msg: "mcp server down",
        server: this.#name,
        error: this.#error,
        attempt: this.#attempts + 1,
      });
      return false;
    }).finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  async #connect(): Promise<void> {
    if (this.#closed) throw new Error("closed");
    this.#stderrTail = "";
    const client = new Client(
      { name: "dagstream", version: denoJson.version },
      {
        capabilities: {},
        listChanged: {
          tools: {
            onChanged: (error: Error | null, tools: Tool[] | null) => {
              if (error === null && tools !== null && client === this.#client) {
                this.#setTools(tools);
              }
            },
          },
        },
      },
    );
    const transport = this.#createTransport();
    client.onerror = (error: Error) => this.#onError(client, error);
    client.onclose = () => this.#onClose(client);
    this.#starting = client;
    let tools: Tool[];
    try {
      await client.connect(transport, { timeout: this.#settings.connectTimeoutMs });
      tools = await listAllTools(client, this.#settings.connectTimeoutMs);
    } catch (error) {
      await closeQuietly(client);
      throw error;
    } finally {
      this.#starting = undefined;
    }
    if (this.#closed) {
      await closeQuietly(client);
      throw new Error("closed");
    }
    this.#client = client;
    this.#transport = transport;
    this.#error = undefined;
    this.#lost = undefined;
    this.#attempts = 0;
    this.#setTools(tools);
    this.#settings.log({
      msg: "mcp server up",
      server: this.#name,
      transport: this.#spec.transport,
      tools: tools.length,
      pid: this.pid,
    });
  }

  #createTransport(): Transport {
    const spec = this.#spec;
    if (spec.transport === "http") {
      return new StreamableHTTPClientTransport(new URL(spec.url), {
        requestInit: { headers: spec.headers },
      });
    }
    const transport = new StdioClientTransport({
      command: spec.command,
      args: spec.args,
      env: spec.env, // the SDK adds HOME, LOGNAME, PATH, SHELL, TERM and USER
      cwd: spec.cwd,
      stderr: "pipe",
    });
    let partial = "";
    transport.stderr?.on("data", (chunk: Uint8Array | string) => {
      const text = typeof chunk === "string" ? chunk : new TextDecoder().decode(chunk);
      this.#stderrTail = (this.#stderrTail + text).slice(-STDERR_TAIL_BYTES);
      const lines = (partial + text).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) {
        if (line.trim() !== "") {
          this.#settings.log({
            msg: "mcp server stderr",
            server: this.#name,
            line: line.trimEnd(),
          });
        }
      }
    });
    return transport;
  }

  #setTools(tools: Tool[]): void {
    this.#tools = new Map(tools.map((tool) => [tool.name, tool]));
  }

  #onClose(client: Client): void {
    if (client !== this.#client) return;
    this.#lose(
      client,
      this.#spec.transport === "stdio"
        ? this.#withStderr("the server process exited")
        : "the connection was closed",
    );
  }

  #onError(client: Client, error: Error): void {
    // While connecting, the failure is reported once, by the attempt itself.
    if (client !== this.#client) return;
    // Progress that arrives in the same read as its call's result is handled
    // after it by the SDK, which then no longer knows the token: expected.
    if (/progress notification for an unknown token/.test(error.message)) return;
    this.#settings.log({
      msg: "mcp server error",
      server: this.#name,
      error: describeError(error),
    });
    // Streamable HTTP reports an endpoint that stopped answering only here
    // (its requests would wait for their timeout): a network failure, or
    // the SDK giving up on resuming a broken stream, loses the connection.
    if (
      this.#spec.transport === "http" &&
      (error instanceof TypeError || /Maximum reconnection attempts/.test(error.message) ||
        /Session not found|\b404\b/.test(error.message))
    ) {
      this.#lose(client, `the server stopped answering (${describeError(error)})`);
      void closeQuietly(client);
    }
  }

  /** The connection is gone: calls on it fail, and reconnection starts. */
  #lose(client: Client, reason: string): void {
    if (client !== this.#client) return;
    this.#client = undefined;
    this.#transport = undefined;
    this.#lost = reason;
    this.#error = reason;
    this.#settings.log({ msg: "mcp server lost", server: this.#name, error: reason });
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#closed || this.#timer !== undefined || this.#connecting !== undefined) return;
    const { reconnectDelayMs, maxReconnectDelayMs } = this.#settings;
    const delay = Math.min(
      reconnectDelayMs * 2 ** Math.min(this.#attempts, 30),
      maxReconnectDelayMs,
    );
    this.#attempts++;
    this.#timer = setTimeout(async () => {
      this.#timer = undefined;
      if (!await this.#attempt()) this.#scheduleReconnect();
    }, delay);
  }

  #describeCallError(error: unknown, name: string, client: Client): string {
    const code = error instanceof McpError ? (error as { code?: unknown }).code : undefined;
    if (code === ErrorCode.ConnectionClosed) {
      if (this.#closed) return `MCP server "${this.#name}" was closed while "${name}" was running`;
      if (client !== this.#client) {
        return `MCP server "${this.#name}" disconnected while "${name}" was running: ` +
          `${this.#lost ?? describeError(error)}; it is being reconnected`;
      }
    }
    if (code === ErrorCode.RequestTimeout) {
      return `"${name}" timed out after ${this.#settings.callTimeoutMs} ms (MCP server "${this.#name}")`;
    }
    if (error instanceof TypeError && this.#spec.transport === "http") {
      return `MCP server "${this.#name}" is unreachable: ${describeError(error)}`;
    }
    return `"${name}" failed: ${describeError(error)}`;
  }

  #withStderr(message: string): string {
    const lines = this.#stderrTail.trim().split("\n").filter((l) => l.trim() !== "");
    if (lines.length === 0) return message;
    return `${message} (stderr: ${lines.slice(-3).join(" | ").slice(-500)})`;
  }
}

async function listAllTools(client: Client, timeout: number): Promise<Tool[]> {
  const tools: Tool[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < 1000; page++) {
    const result = await client.listTools(cursor === undefined ? {} : { cursor }, { timeout });
    for (const tool of result.tools) tools.push(tool);
    cursor = result.nextCursor;
    if (cursor === undefined) break;
  }
  return tools;
}

async function closeQuietly(client: Client): Promise<void> {
  try {
    await client.close();
  } catch {
    // already closed, or the process is gone
  }
}

/** Resolves when `promise` settles or `signal` aborts, whichever comes first. */
function untilAborted(promise: Promise<unknown>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      signal.removeEventListener("abort", done);
      resolve();
    };
    signal.addEventListener("abort", done, { once: true });
    promise.then(done, done);
  });
}

function textOf(content: unknown[] | undefined): string {
  return (content ?? []).filter(isTextItem).map((item) => item.text).join("\n");
}

function isTextItem(item: unknown): item is { type: "text"; text: string } {
  return item !== null && typeof item === "object" &&
    (item as { type?: unknown }).type === "text" &&
    typeof (item as { text?: unknown }).text === "string";
}

/** The registry interface this module implements, for type-only users. */
export type { ManagedToolRegistry, ToolRegistry };
