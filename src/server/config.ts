/**
 * Settings of the bundled server, with their defaults, and how the settings
 * given to `createApp` are completed.
 *
 * @module
 */

import {
  DEFAULT_MAX_TASKS,
  DEFAULT_SCHEDULING,
  DEFAULT_TASK_TIMEOUT,
  withoutUndefined,
} from "../dag/defaults.ts";
import {
  DEFAULT_HEARTBEAT_MS,
  DEFAULT_MAX_EVENT_PAYLOAD_BYTES,
  DEFAULT_RETRY_MS,
  FRAME_OVERHEAD_BYTES,
} from "../sse/frame.ts";
import { builtinTools } from "../tools/builtin.ts";
import { DEFAULT_MAX_HTTP_RESPONSE_BYTES, httpRequestTool } from "../tools/http-request.ts";
import {
  combineToolRegistries,
  createToolRegistry,
  type ManagedToolRegistry,
  type ToolRegistry,
} from "../tools/registry.ts";
import type { SchedulingMode } from "../dag/types.ts";
import { logToStderr } from "./log.ts";

/**
 * Settings of `createApp`; every field has a default.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveServerConfig, type ServerConfig } from "./config.ts";
 * const settings: ServerConfig = { token: "secret", maxTasks: 50 };
 * assert.equal(resolveServerConfig(settings).maxTasks, 50);
 * ```
 */
export interface ServerConfig {
  /** Bearer token every route but `/health` and the page requires; none when unset. */
  token?: string;
  /**
   * This server instance's id, shown in `/health` and on each run it executes
   * (1–64 characters: letters, digits, `.`, `_`, `-`). Default: 12 random hex
   * digits, new at each start.
   */
  instanceId?: string;
  /**
   * Where runs are shared: `memory` (this process only, the default) or a
   * Redis URL, `redis://[user:pass@]host:port[/db]`, for runs that any
   * instance using the same Redis can list, show, stream and cancel.
   */
  store?: string;
  /** With a Redis store: most runs waiting in the shared queue (503 beyond). Default 10,000. */
  maxQueuedRuns?: number;
  /**
   * Origin or origins allowed by CORS (`*` for any); CORS is off when unset.
   * Requests whose `Origin` is neither the server's own nor one of these are
   * refused with 403 (`Origin: null` always is).
   */
  corsOrigin?: string | readonly string[];
  /**
   * Host names the `Host` header may name besides the loopback ones, e.g. the
   * public name behind a reverse proxy. On a loopback bind (`loopbackOnly`),
   * `localhost`, `127.0.0.1` and `[::1]` are always allowed and any other name
   * is refused (DNS rebinding); elsewhere the check applies only when this
   * list is not empty.
   */
  allowedHosts?: string[];
  /**
   * Whether the server listens on a loopback address only (then the `Host`
   * check is on even without `allowedHosts`). Default true: `createApp`
   * cannot see the bind address, and the safe answer is the default.
   */
  loopbackOnly?: boolean;
  /** Most tasks in flight per run. Default unbounded. */
  maxConcurrency?: number;
  /** Milliseconds per task. Default 30000. */
  taskTimeout?: number;
  /** `"eager"` (default) or `"layered"`. */
  scheduling?: SchedulingMode;
  /** Most tasks per DAG. Default 1000. */
  maxTasks?: number;
  /** Largest request body, in bytes. Default 1 MiB. */
  maxBodyBytes?: number;
  /**
   * Bytes of events each run's log keeps. Default: enough for a whole run at
   * the other limits (`maxTasks` × (`maxEventPayloadBytes` + 1 KiB) + 4 KiB), and at
   * least 16 MiB — 66,564,096 bytes (63.5 MiB) at the default limits.
   */
  maxRunLogBytes?: number;
  /**
   * Most bytes all run logs may hold together, active and kept runs alike.
   * Finished runs give way first (oldest out); when active runs alone reach
   * it, a new run is refused with 503. Default 512 MiB.
   */
  maxLogBytesTotal?: number;
  /** Most open event streams (watchers) at once, server-wide; 503 beyond. Default 10,000. */
  maxWatchers?: number;
  /** Most runs executing at once. Default 1000. */
  maxActiveRuns?: number;
  /** Most runs kept, finished ones included. Default 1000. */
  maxRuns?: number;
  /** Seconds a finished run is kept. Default 600. */
  runTtlSeconds?: number;
  /** Idle ms before a keep-alive comment on a stream. Default 15000. */
  heartbeatMs?: number;
  /** `retry:` announced to SSE clients, in ms. Default 2000. */
  retryMs?: number;
  /** Cap on a `task_complete` event's data, in bytes. Default 65536. */
  maxEventPayloadBytes?: number;
  /**
   * Most bytes of JSON a run's tool arguments and outputs may total; past
   * it, tool calls of that run fail ("too large"). Bounds what `$OUTPUT`
   * references can blow up to. Default 64 MiB.
   */
  maxRunOutputBytes?: number;
  /**
   * Most bytes finished runs keep for late readers, their event logs,
   * outputs and submitted tasks together; past it the oldest finished runs are forgotten
   * (`GET /runs/<id>` answers 404), whatever `maxRuns` and `runTtlSeconds`
   * allow. Default 256 MiB.
   */
  maxKeptRunBytes?: number;
  /**
   * Hosts the `http:request` tool may call: `HOST` (every port) or
   * `HOST:PORT`, hosts as written in URLs (`localhost` and `127.0.0.1` are
   * different hosts). The tool is there only when this list is not empty.
   * A name resolving to a loopback, private or link-local address is
   * refused unless that address is listed too (`localhost` may reach
   * loopback). Default: none.
   */
  allowHttp?: string[];
  /** Most bytes of a response body `http:request` reads; past it the call fails. Default 1 MiB. */
  maxHttpResponseBytes?: number;
  /**
   * The tools runs may call. Default: the built-in mock tools. `http:request`
   * joins them when `allowHttp` is not empty.
   */
  tools?: ToolRegistry;
  /**
   * Tools served by other processes (MCP servers, see `src/tools/mcp.ts`),
   * offered in addition to `tools`. `/health` reports each server's state
   * under `mcpServers`, and `shutdown()` closes them (their child processes
   * end). None when unset.
   */
  mcp?: ManagedToolRegistry;
  /** Where structured log records go. Default: one JSON line each on stderr. */
  log?: (record: Record<string, unknown>) => void;
}

/**
 * A {@linkcode ServerConfig} with every default filled in; `tools` includes
 * the MCP servers' tools when `mcp` is set.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type ResolvedServerConfig, resolveServerConfig } from "./config.ts";
 * const config: ResolvedServerConfig = resolveServerConfig({});
 * assert.equal(config.token, undefined);
 * assert.ok(config.tools.has("mock:echo"));
 * ```
 */
export type ResolvedServerConfig =
  & Required<Omit<ServerConfig, "token" | "corsOrigin" | "maxConcurrency" | "mcp">>
  & Pick<ServerConfig, "token" | "corsOrigin" | "maxConcurrency" | "mcp">;

const MIB = 1024 * 1024;

/**
 * The defaults of {@linkcode ServerConfig} that do not depend on other
 * settings (`maxRunLogBytes` does: see {@linkcode defaultRunLogBytes}). The
 * executor's and the wire's defaults are those of the library.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SERVER_DEFAULTS } from "./config.ts";
 * assert.equal(SERVER_DEFAULTS.maxBodyBytes, 1024 * 1024);
 * assert.equal(SERVER_DEFAULTS.taskTimeout, 30_000);
 * ```
 */
export const SERVER_DEFAULTS = {
  store: "memory",
  maxQueuedRuns: 10_000,
  taskTimeout: DEFAULT_TASK_TIMEOUT,
  scheduling: DEFAULT_SCHEDULING,
  maxTasks: DEFAULT_MAX_TASKS,
  maxBodyBytes: MIB,
  maxLogBytesTotal: 512 * MIB,
  maxWatchers: 10_000,
  maxActiveRuns: 1000,
  maxRuns: 1000,
  runTtlSeconds: 600,
  heartbeatMs: DEFAULT_HEARTBEAT_MS,
  retryMs: DEFAULT_RETRY_MS,
  maxEventPayloadBytes: DEFAULT_MAX_EVENT_PAYLOAD_BYTES,
  maxRunOutputBytes: 64 * MIB,
  maxKeptRunBytes: 256 * MIB,
  allowedHosts: [] as string[],
  loopbackOnly: true,
  allowHttp: [] as string[],
  maxHttpResponseBytes: DEFAULT_MAX_HTTP_RESPONSE_BYTES,
} as const;

/** The least default run log size. */
const MIN_DEFAULT_RUN_LOG_BYTES = 16 * MIB;

/**
 * The default run log size: a whole run of `maxTasks` tasks whose events
 * all reach the payload cap fits, and never less than 16 MiB.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defaultRunLogBytes } from "./config.ts";
 * assert.equal(defaultRunLogBytes(1000, 65536), 66_564_096);
 * assert.equal(defaultRunLogBytes(1, 1024), 16 * 1024 * 1024);
 * ```
 */
export function defaultRunLogBytes(maxTasks: number, maxEventPayloadBytes: number): number {
  return Math.max(
    MIN_DEFAULT_RUN_LOG_BYTES,
    maxTasks * (maxEventPayloadBytes + FRAME_OVERHEAD_BYTES) + 4096,
  );
}

/**
 * Completes the settings given to `createApp`: each one left unset (or
 * `undefined`) takes its default, and the MCP servers' tools join `tools`, as
 * does `http:request` when `allowHttp` lists a host.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defaultRunLogBytes, resolveServerConfig } from "./config.ts";
 * const config = resolveServerConfig({ maxTasks: 10, taskTimeout: undefined });
 * assert.equal(config.taskTimeout, 30_000);
 * assert.equal(config.maxRunLogBytes, defaultRunLogBytes(10, config.maxEventPayloadBytes));
 * assert.deepEqual(config.tools.list().map((t) => t.name), [
 *   "mock:delay",
 *   "mock:echo",
 *   "mock:fail",
 *   "mock:flaky",
 * ]);
 * const withHttp = resolveServerConfig({ allowHttp: ["api.example.com"] });
 * assert.ok(withHttp.tools.has("http:request"));
 * ```
 */
export function resolveServerConfig(options: ServerConfig): ResolvedServerConfig {
  const given = withoutUndefined(options);
  const maxTasks = given.maxTasks ?? SERVER_DEFAULTS.maxTasks;
  const maxEventPayloadBytes = given.maxEventPayloadBytes ?? SERVER_DEFAULTS.maxEventPayloadBytes;
  const tools = withHttpTool(given.tools ?? createToolRegistry({ ...builtinTools }), given);
  if (given.store !== undefined && given.store !== "memory" && !isRedisUrl(given.store)) {
    throw new RangeError(
      `store must be "memory" or a redis:// URL, got ${describeStore(given.store)}`,
    );
  }
  if (given.instanceId !== undefined && !isInstanceId(given.instanceId)) {
    throw new RangeError(
      `instanceId must be 1-64 letters, digits, ".", "_" or "-", got ${
        JSON.stringify(given.instanceId)
      }`,
    );
  }
  return {
    ...SERVER_DEFAULTS,
    maxRunLogBytes: defaultRunLogBytes(maxTasks, maxEventPayloadBytes),
    log: logToStderr,
    instanceId: crypto.randomUUID().replaceAll("-", "").slice(0, 12),
    ...given,
    tools: given.mcp === undefined ? tools : combineToolRegistries(tools, given.mcp),
  };
}

/**
 * `tools` with `http:request` added when `allowHttp` lists a host. A bad
 * entry throws a `RangeError`.
 */
function withHttpTool(tools: ToolRegistry, given: ServerConfig): ToolRegistry {
  const allow = given.allowHttp ?? [];
  if (allow.length === 0) return tools;
  const http = httpRequestTool({
    allow,
    maxResponseBytes: given.maxHttpResponseBytes ?? SERVER_DEFAULTS.maxHttpResponseBytes,
  });
  return combineToolRegistries(tools, createToolRegistry({ "http:request": http }));
}

/**
 * Whether `value` can be an instance id: 1–64 letters, digits, `.`, `_` or
 * `-`, starting with a letter or digit.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isInstanceId } from "./config.ts";
 * assert.equal(isInstanceId("eu-west-1.a"), true);
 * assert.equal(isInstanceId("-x"), false);
 * assert.equal(isInstanceId("a b"), false);
 * ```
 */
export function isInstanceId(value: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(value);
}

/**
 * Whether `value` is a Redis URL: `redis://` or `rediss://` (TLS), a host,
 * an optional port, user, password and database number.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isRedisUrl } from "./config.ts";
 * assert.equal(isRedisUrl("redis://127.0.0.1:6379/0"), true);
 * assert.equal(isRedisUrl("http://127.0.0.1:6379"), false);
 * ```
 */
export function isRedisUrl(value: string): boolean {
  if (!/^rediss?:\/\//.test(value)) return false;
  try {
    const url = new URL(value);
    // The client decodes the user and password: they must decode.
    decodeURIComponent(url.username);
    decodeURIComponent(url.password);
    return url.hostname !== "" && /^(\/\d*)?$/.test(url.pathname);
  } catch {
    return false;
  }
}

/** A store setting as messages may show it, quoted, credentials masked ({@linkcode maskCredentials}). */
export function describeStore(value: string): string {
  const masked = maskCredentials(value);
  return JSON.stringify(masked.length > 100 ? `${masked.slice(0, 100)}…` : masked);
}

/**
 * A URL with whatever comes before its `@` (user and password) as `***`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { maskCredentials } from "./config.ts";
 * assert.equal(maskCredentials("redis://app:s3cret@cache:6379/0"), "redis://***@cache:6379/0");
 * assert.equal(maskCredentials("redis://cache:6379"), "redis://cache:6379");
 * ```
 */
export function maskCredentials(value: string): string {
  return value.replace(/^([a-z][a-z0-9+.-]*:\/*)?[^@]*@/i, (_, scheme = "") => `${scheme}***@`);
}
